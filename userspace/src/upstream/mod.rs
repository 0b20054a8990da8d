//! The edge's side of the storage tier: the upstream connection pool and the reverse proxy
//! that serves misses.

pub mod body_relay;
pub mod pool;
pub mod proxy;
