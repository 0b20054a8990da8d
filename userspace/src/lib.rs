//! strata: a kernel-assisted media edge. This library holds every role's code; the `strata`
//! binary (main.rs) only parses the command line and starts a role.

pub mod cache;
pub mod cli;
pub mod config;
pub mod control;
pub mod control_cli;
pub mod control_lookup;
pub mod demo_data;
pub mod file_store;
pub mod http;
pub mod kernel;
pub mod metrics;
pub mod name_lookup;
pub mod roles;
pub mod server;
pub mod upstream;
