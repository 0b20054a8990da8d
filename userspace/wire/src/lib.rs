//! What crosses a process boundary between strata's servers and its control plane, and the
//! client that carries it: heartbeats and their replies, the name lookup table, the network
//! map and the reports that feed it, asset lists,
//! placed objects and their digests (the `user.strata.sha256` attribute, the content ETag), and
//! the blocking HTTP client every party uses for the `/v1/` API. Depends on nothing of strata's.

pub mod assets;
pub mod client;
pub mod content_digest;
pub mod delivery;
pub mod heartbeat;
pub mod jobs;
pub mod live;
pub mod lookup;
pub mod map_view;
pub mod network_map;
pub mod objects;
pub mod range_fetch;
pub mod state_table;
