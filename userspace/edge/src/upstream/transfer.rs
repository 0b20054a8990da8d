//! What a body mover works with for one response: both sockets, the server and request it
//! serves, the promised length, the pool's settings, the metrics and the client stall limit.

use std::net::SocketAddr;
use std::time::Duration;

use strata_http::request::RequestHead;
use tokio::net::TcpStream;

use super::pool::UpstreamPool;
use crate::metrics::ServerMetrics;

/// Everything a mover works with for one response.
pub struct Transfer<'a> {
    pub client: &'a mut TcpStream,
    pub up: &'a mut TcpStream,
    pub server: SocketAddr,
    pub head: &'a RequestHead,
    /// Body bytes the client was promised.
    pub len: u64,
    pub pool: &'a UpstreamPool,
    pub metrics: &'a ServerMetrics,
    pub stall: Duration,
}
