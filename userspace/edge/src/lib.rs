//! strata's serving data plane, for both serving roles (storage server and edge): the listener
//! and connections, the idle parker, the file store, the upstream pool and reverse proxy for
//! misses, the edge cache, the admin listener and its metrics, the name lookup, tenants'
//! delivery policies (Cache-Control, CORS), the access log, and the agent
//! that reports to the control plane (with the storage role's object intake). Built on
//! `strata-http`, `strata-kernel` and `strata-wire`; knows nothing of the control plane's code.

pub mod access_log;
pub mod cache;
pub mod client_stream;
pub mod control_lookup;
pub mod delivery_policy;
pub mod director;
pub mod file_store;
pub mod jobs;
pub mod metrics;
pub mod name_lookup;
pub mod request_scope;
pub mod server;
pub mod settings;
pub mod small_bodies;
pub mod tls;
pub mod upstream;
