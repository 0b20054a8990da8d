//! One request/response-head exchange with a storage server: the request goes out, the
//! response head comes back (the body stays on the socket for a body mover). The first exchange
//! of a response also takes the connection from the pool, replacing once a pooled connection
//! the server closed meanwhile.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::pool::UpstreamPool;
use super::upstream_head::{read_upstream_head, upstream_request, HeadFailure, UpstreamAsk, UpstreamHead};

/// Sends `request` on `up` and reads the response head.
pub async fn exchange(
    up: &mut TcpStream,
    request: &str,
    timeout: Duration,
) -> Result<UpstreamHead, HeadFailure> {
    up.write_all(request.as_bytes()).await.map_err(|e| HeadFailure {
        reason: format!("sending request: {e}"),
        timeout: false,
    })?;
    read_upstream_head(up, timeout).await
}

/// A connection to `server` with the answer to `ask`; a pooled connection the server closed
/// meanwhile is replaced by a fresh one once.
pub async fn first_exchange(
    pool: &UpstreamPool,
    server: SocketAddr,
    ask: &UpstreamAsk<'_>,
) -> Result<(TcpStream, UpstreamHead), HeadFailure> {
    let timeout = pool.settings().response_timeout;
    let request = upstream_request(ask, server);
    let mut tries = 0;
    loop {
        tries += 1;
        let (mut up, reused) = pool.checkout(server).await.map_err(|e| HeadFailure {
            timeout: e.kind() == std::io::ErrorKind::TimedOut,
            reason: format!("connect: {e}"),
        })?;
        match exchange(&mut up, &request, timeout).await {
            Ok(h) => return Ok((up, h)),
            Err(_) if reused && tries == 1 => continue,
            Err(e) => return Err(e),
        }
    }
}
