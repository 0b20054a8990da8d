//! The edge's side of the storage tier: the upstream connection pool and the reverse proxy
//! that serves misses, with its body movers (sockmap, splice, copy).

pub mod body_mover;
pub mod body_relay;
pub mod exchange;
pub mod path_choice;
pub mod pool;
pub mod pool_metrics;
pub mod proxy;
pub mod relay_error;
pub mod socket_watch;
pub mod sockmap_mover;
pub mod sockmap_relay;
pub mod transfer;
pub mod upstream_head;
