//! The edge's side of the storage tier: the upstream connection pool and the reverse proxy
//! that serves misses, with its body paths (sockmap, splice, copy).

pub mod body_relay;
pub mod pool;
pub mod proxy;
pub mod socket_watch;
pub mod sockmap_relay;
pub mod upstream_head;
