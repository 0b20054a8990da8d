//! The director (seed 004): every edge keeps its region's state table (each edge's cache
//! contents and load, from the control plane) and, on a local miss, sends the request to the
//! region's edge that holds the asset with the lowest load instead of the storage tier.
//!
//! - `settings.rs`: `[director]`; `edge_director.rs`: the director of one edge (table, marks,
//!   counters);
//! - `choice.rs`: the decision (holders, bounded load, lowest wins, stale marks);
//! - `state_row.rs`: this edge's own row (contents summary, version, load factor);
//! - `peer_fetch.rs`: the miss path's director step (proxy from the peer or 302 to it) and the
//!   hop mark a peer answers;
//! - `director_metrics.rs`, `admin_state.rs`: `/metrics` and the admin `/state`.

pub mod admin_state;
pub mod choice;
pub mod director_metrics;
pub mod edge_director;
pub mod peer_fetch;
pub mod settings;
pub mod state_row;
