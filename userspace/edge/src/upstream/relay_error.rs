//! Why moving a proxied body stopped short: the one error every body mover and socket wait
//! reports, so the proxy can tell a dying upstream (eject it) from a client that left.

use std::io;
use std::time::Duration;

use thiserror::Error;

/// Why a body relay stopped short.
#[derive(Debug, Error)]
pub enum RelayError {
    #[error("the storage server ended the body {missing} bytes early")]
    UpstreamEnded { missing: u64 },
    #[error("the storage server sent nothing for {0:?}")]
    UpstreamStalled(Duration),
    #[error("the client took nothing for {0:?}")]
    ClientStalled(Duration),
    #[error("client socket: {0}")]
    Client(io::Error),
    #[error("upstream socket: {0}")]
    Upstream(io::Error),
    #[error("creating a pipe: {0}")]
    Pipe(io::Error),
    /// The kernel would not take the upstream socket into the sockmap (it is no longer
    /// established: the server already closed). Nothing moved; another path can serve.
    #[error("sockmap refused the upstream socket: {0}")]
    SockmapRefused(String),
}
