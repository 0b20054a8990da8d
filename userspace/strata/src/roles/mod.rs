//! The roles the `strata` binary runs: storage, edge, control (serve and the operator's
//! commands), ingest, distribution jobs, and pop (all of them on loopback).

pub mod cli_output;
pub mod control;
pub mod control_admin;
pub mod director_status;
pub mod dns;
pub mod fetch;
pub mod guard_cli;
pub mod ingest;
pub mod job;
pub mod map_admin;
pub mod pop;
pub mod pop_live;
pub mod process_cli;
pub mod serve;
