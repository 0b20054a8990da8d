//! Moves exactly `len` body bytes from a storage server's socket to the client's: through a
//! pipe with splice(2) (the bytes never enter userspace), or by copying (the last fallback).
//!
//! Both read at most `len` bytes from the upstream socket, so bytes past the announced length
//! stay there (and the connection is not pooled); both report an upstream that ends early, so
//! the client's connection is closed rather than left looking complete.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::relay_error::RelayError;
use super::socket_watch::{SocketWatch, Want};
use strata_kernel::body_meter::{BodyMeter as _, BodyPathLabel};
use strata_kernel::pipe::Pipe;

use crate::metrics::ServerMetrics;

/// How proxied bodies move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ProxyPath {
    /// Per response, the path measured fastest for its link, body size and concurrency
    /// (sockmap when the capability probe at start passes, splice, copy).
    #[default]
    Auto,
    /// The kernel moves bytes socket to socket (sk_skb programs on a SOCKHASH).
    Sockmap,
    /// splice(2) through a pipe: no copy through userspace.
    Splice,
    /// read/write through a userspace buffer.
    Copy,
}

impl ProxyPath {
    pub fn label(self) -> BodyPathLabel {
        match self {
            ProxyPath::Sockmap => BodyPathLabel::ProxySockmap,
            ProxyPath::Auto | ProxyPath::Splice => BodyPathLabel::ProxySplice,
            ProxyPath::Copy => BodyPathLabel::ProxyCopy,
        }
    }
}

/// Relays `len` bytes from `up` to `client` by `path`.
pub async fn relay(
    path: ProxyPath,
    up: &mut TcpStream,
    client: &mut TcpStream,
    len: u64,
    upstream_timeout: Duration,
    stall: Duration,
    metrics: &ServerMetrics,
) -> Result<(), RelayError> {
    match path {
        ProxyPath::Copy => copy(up, client, len, upstream_timeout, stall, metrics).await,
        // The sockmap path moves pieces itself (proxy.rs); a whole body handed here splices.
        ProxyPath::Auto | ProxyPath::Sockmap | ProxyPath::Splice => {
            splice(up, client, len, upstream_timeout, stall, metrics).await
        }
    }
}

/// The copy relay to any client stream (an HTTPS client's body is encrypted on the way),
/// counted as a copy, flushed at the end.
pub async fn copy_body<W: AsyncWrite + Unpin>(
    up: &mut TcpStream,
    client: &mut W,
    len: u64,
    upstream_timeout: Duration,
    stall: Duration,
    metrics: &ServerMetrics,
) -> Result<(), RelayError> {
    if len == 0 {
        return Ok(());
    }
    metrics.body_started(BodyPathLabel::ProxyCopy);
    copy(up, client, len, upstream_timeout, stall, metrics).await?;
    match tokio::time::timeout(stall, client.flush()).await {
        Err(_) => Err(RelayError::ClientStalled(stall)),
        Ok(Err(e)) => Err(RelayError::Client(e)),
        Ok(Ok(())) => Ok(()),
    }
}

async fn copy<W: AsyncWrite + Unpin>(
    up: &mut TcpStream,
    client: &mut W,
    len: u64,
    upstream_timeout: Duration,
    stall: Duration,
    metrics: &ServerMetrics,
) -> Result<(), RelayError> {
    let mut left = len;
    let mut buf = vec![0u8; (left as usize).clamp(1, 256 * 1024)];
    while left > 0 {
        let want = (left as usize).min(buf.len());
        let n = match tokio::time::timeout(upstream_timeout, up.read(&mut buf[..want])).await {
            Err(_) => return Err(RelayError::UpstreamStalled(upstream_timeout)),
            Ok(Err(e)) => return Err(RelayError::Upstream(e)),
            Ok(Ok(0)) => return Err(RelayError::UpstreamEnded { missing: left }),
            Ok(Ok(n)) => n,
        };
        match tokio::time::timeout(stall, client.write_all(&buf[..n])).await {
            Err(_) => return Err(RelayError::ClientStalled(stall)),
            Ok(Err(e)) => return Err(RelayError::Client(e)),
            Ok(Ok(())) => {}
        }
        metrics.body_bytes(BodyPathLabel::ProxyCopy, n as u64);
        left -= n as u64;
    }
    Ok(())
}

/// One non-blocking splice(2) between two descriptors.
fn splice_once(from: RawFd, to: RawFd, len: u64) -> io::Result<u64> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: plain syscall on descriptors the caller keeps open; null offsets (sockets, pipes).
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len as usize,
            flags,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as u64)
    }
}

async fn splice(
    up: &mut TcpStream,
    client: &mut TcpStream,
    len: u64,
    upstream_timeout: Duration,
    stall: Duration,
    metrics: &ServerMetrics,
) -> Result<(), RelayError> {
    let pipe = Pipe::new(true).map_err(RelayError::Pipe)?;
    let capacity = u64::from(pipe.capacity);
    let (up_fd, client_fd) = (up.as_raw_fd(), client.as_raw_fd());
    let (pipe_r, pipe_w) = (pipe.read.as_raw_fd(), pipe.write.as_raw_fd());
    let up_watch = SocketWatch::new(up).map_err(RelayError::Upstream)?;
    let client_watch = SocketWatch::new(client).map_err(RelayError::Client)?;
    let mut left = len;
    let mut in_pipe = 0u64;
    let mut pipe_full = false;
    // The syscalls run directly, not gated by tokio's readiness: over veth, tokio was seen
    // holding a socket "not readable" while poll(2) said POLLIN, which stalled the relay.
    // The waits ask the kernel (SocketWatch).
    while left > 0 || in_pipe > 0 {
        // Fill: wait for the upstream only when the pipe is empty (else drain first).
        if left > 0 && in_pipe < capacity {
            let want = left.min(capacity - in_pipe);
            loop {
                match splice_once(up_fd, pipe_w, want) {
                    Ok(0) => return Err(RelayError::UpstreamEnded { missing: left }),
                    Ok(n) => {
                        left -= n;
                        in_pipe += n;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if in_pipe > 0 {
                            // Bytes waiting but the pipe took none: its slots are full (a
                            // slot holds one segment's worth, not a page's).
                            pipe_full = up_watch.has(Want::Readable);
                            break;
                        }
                        up_watch
                            .wait_or(
                                Want::Readable,
                                upstream_timeout,
                                RelayError::UpstreamStalled(upstream_timeout),
                            )
                            .await?;
                    }
                    Err(e) => return Err(RelayError::Upstream(e)),
                }
            }
        }
        // Drain whatever the pipe holds into the client.
        while in_pipe > 0 {
            match splice_once(pipe_r, client_fd, in_pipe) {
                Ok(n) => {
                    in_pipe -= n;
                    pipe_full = false;
                    metrics.body_bytes(BodyPathLabel::ProxySplice, n);
                    if left > 0 {
                        break; // refill while the client digests
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if left > 0 && in_pipe < capacity && !pipe_full {
                        // Both sides may be blocked: wait for whichever can move first.
                        let moved = tokio::select! {
                            r = up_watch.wait(Want::Readable, stall) => r.map_err(RelayError::Upstream)?,
                            r = client_watch.wait(Want::Writable, stall) => r.map_err(RelayError::Client)?,
                        };
                        if !moved {
                            return Err(RelayError::ClientStalled(stall));
                        }
                        break;
                    }
                    client_watch
                        .wait_or(Want::Writable, stall, RelayError::ClientStalled(stall))
                        .await?;
                }
                Err(e) => return Err(RelayError::Client(e)),
            }
        }
    }
    Ok(())
}

/// True if the socket has unread bytes waiting (an upstream that sent past its body).
pub fn has_pending_bytes(s: &TcpStream) -> bool {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes an int.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    rc != 0 || n > 0
}
