//! Waiting for a socket the relays drive with raw syscalls (splice(2), the sockmap programs).
//!
//! The kernel's answer (poll(2) with a zero timeout) decides; epoll readiness only wakes the
//! task. The readiness comes from a registration of its own (a duplicate descriptor), so
//! clearing a stale readiness here never clears the readiness the socket's tokio stream keeps
//! for its own later reads and writes: doing that once left a keep-alive client waiting for a
//! writability edge that never came.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::relay_error::RelayError;
use strata_kernel::socket_opts::{dup_fd, poll_now};

/// Longest sleep between two looks at the kernel's answer, whatever epoll says.
const LOOK_AGAIN: Duration = Duration::from_millis(100);

/// A second, private epoll registration of a socket.
pub struct SocketWatch {
    fd: AsyncFd<OwnedFd>,
}

/// What to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Bytes to read, or the peer's close.
    Readable,
    /// Room to write.
    Writable,
    /// The peer closed (or the socket failed); bytes waiting to be read do not count.
    Closed,
}

impl SocketWatch {
    pub fn new(sock: &TcpStream) -> io::Result<SocketWatch> {
        let fd = dup_fd(sock)?;
        // SAFETY: the watch owns its duplicate descriptor and never closes or replaces it while
        // registered (AsyncFd deregisters before dropping it).
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE | Interest::WRITABLE) }?;
        Ok(SocketWatch { fd })
    }

    /// poll(2) now: true if the socket has what `want` asks for, or an error or hang-up.
    pub fn has(&self, want: Want) -> bool {
        let events = match want {
            Want::Readable => libc::POLLIN | libc::POLLRDHUP,
            Want::Writable => libc::POLLOUT,
            Want::Closed => libc::POLLRDHUP,
        };
        poll_now(self.fd.get_ref(), events).map_or(true, |r| r != 0)
    }

    /// Like [`SocketWatch::wait`], but the limit passing is the error `stalled`.
    pub async fn wait_or(&self, want: Want, limit: Duration, stalled: RelayError) -> Result<(), RelayError> {
        let io_err = match want {
            Want::Writable => RelayError::Client,
            Want::Readable | Want::Closed => RelayError::Upstream,
        };
        if self.wait(want, limit).await.map_err(io_err)? {
            Ok(())
        } else {
            Err(stalled)
        }
    }

    pub async fn wait(&self, want: Want, limit: Duration) -> io::Result<bool> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.has(want) {
                return Ok(true);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let slice = (deadline - now).min(LOOK_AGAIN);
            let ready = match want {
                Want::Readable | Want::Closed => tokio::time::timeout(slice, self.fd.readable()).await,
                Want::Writable => tokio::time::timeout(slice, self.fd.writable()).await,
            };
            if let Ok(guard) = ready {
                let mut guard = guard?;
                if self.has(want) {
                    return Ok(true);
                }
                // Stale: forget it (anything that arrives from now on raises it again).
                guard.clear_ready();
            }
        }
    }
}
