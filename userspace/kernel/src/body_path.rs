//! Moves a byte range of a file to a client socket through the kernel: io_uring splice on the
//! worker rings (bodies over [`INLINE_BODY_MAX`] that need the disk: the reads never stall a
//! connection thread), or sendfile(2) from the connection's task (small bodies, bodies already
//! in the page cache, and everything when io_uring is not available).
//!
//! Both paths stop with an error (and the connection is closed) if the file turns out shorter
//! than the length already promised in Content-Length, so a truncated body can never look
//! complete; and both give up when the client takes no byte for `stall` (send-stall timeout).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::socket_opts::{dup_fd, poll_writable};
use super::splice_worker::{SpliceError, SpliceJob, SplicePool};
use crate::body_meter::{BodyMeter, BodyPathLabel};
use crate::page_cache::span_in_page_cache;

/// How bodies are sent.
#[derive(Clone)]
pub enum BodyPath {
    /// file → pipe → socket by linked io_uring SPLICE operations on the worker rings.
    IoUringSplice(Arc<SplicePool>),
    /// sendfile(2) from the connection's task.
    Sendfile,
}

impl BodyPath {
    pub fn label(&self) -> BodyPathLabel {
        match self {
            BodyPath::IoUringSplice(_) => BodyPathLabel::IoUringSplice,
            BodyPath::Sendfile => BodyPathLabel::Sendfile,
        }
    }
}

/// Why a body could not be sent in full.
#[derive(Debug, Error)]
pub enum BodyError {
    #[error("client took no data for {0:?}")]
    Stalled(Duration),
    #[error("file ended {missing} bytes before the promised length (truncated while serving?)")]
    Truncated { missing: u64 },
    #[error("sending body: {0}")]
    Io(#[from] io::Error),
    #[error("splice worker: {0}")]
    Splice(#[from] SpliceError),
}

/// A byte span of a file: `len` bytes from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpan {
    pub offset: u64,
    pub len: u64,
}

/// Bodies up to this size go out by sendfile(2) from the connection's task even on the
/// io_uring path: handing a small body to a worker ring (a dup of the socket, a pipe, a hop to
/// another thread and back) costs more than the one sendfile call that sends it whole. Bench
/// row "(a) small objects" measures the two paths against each other.
pub const INLINE_BODY_MAX: u64 = 64 << 10;

/// The path `span` of `file` takes on `path`: on the io_uring path, small bodies and bodies
/// whose first and last bytes are in the page cache go inline by sendfile(2) (measured: as fast
/// or faster, and a p99 like nginx's rather than 1.5–2.7 × it, bench (a)); bodies that need the
/// disk go to the worker rings, so their reads never stall a connection thread.
pub fn path_for(path: &BodyPath, file: &File, span: FileSpan) -> BodyPathLabel {
    match path {
        BodyPath::IoUringSplice(_)
            if span.len > INLINE_BODY_MAX && !span_in_page_cache(file, span.offset, span.len) =>
        {
            BodyPathLabel::IoUringSplice
        }
        _ => BodyPathLabel::Sendfile,
    }
}

/// Sends `span` of `file` to `stream`, counting bytes under the label of the path it took.
pub async fn send_span(
    path: &BodyPath,
    stream: &TcpStream,
    file: &Arc<File>,
    span: FileSpan,
    stall: Duration,
    metrics: &dyn BodyMeter,
) -> Result<(), BodyError> {
    let label = path_for(path, file, span);
    metrics.body_started(label);
    match (path, label) {
        (BodyPath::IoUringSplice(pool), BodyPathLabel::IoUringSplice) => {
            splice_span(pool, stream, file, span, stall, metrics).await
        }
        _ => sendfile_span(stream, file, span, stall, metrics).await,
    }
}

/// Waits until the socket has room again, at most `stall`.
async fn wait_writable(
    stream: &TcpStream,
    stall: Duration,
    metrics: &dyn BodyMeter,
) -> Result<(), BodyError> {
    metrics.send_wait();
    let deadline = tokio::time::Instant::now() + stall;
    loop {
        match tokio::time::timeout_at(deadline, stream.writable()).await {
            Err(_) => return Err(BodyError::Stalled(stall)),
            Ok(r) => r?,
        }
        // tokio's readiness may be stale (the kernel op that hit EAGAIN ran on a worker ring):
        // check for real, and let try_io clear the readiness if there is no room yet.
        match stream.try_io(Interest::WRITABLE, || {
            if poll_writable(stream)? {
                Ok(())
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            }
        }) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

async fn splice_span(
    pool: &SplicePool,
    stream: &TcpStream,
    file: &Arc<File>,
    span: FileSpan,
    stall: Duration,
    metrics: &dyn BodyMeter,
) -> Result<(), BodyError> {
    let socket = Arc::new(dup_fd(stream)?);
    let pipe = Arc::new(pool.take_pipe()?);
    let affinity = pool.next_affinity();
    let mut offset = span.offset;
    let mut unread = span.len;
    let mut in_pipe: u64 = 0;
    while unread > 0 || in_pipe > 0 {
        let fill = if in_pipe == 0 {
            unread.min(u64::from(pipe.capacity)) as u32
        } else {
            0
        };
        let drain = if fill > 0 { fill } else { in_pipe as u32 };
        let job = SpliceJob {
            file: file.clone(),
            file_offset: offset,
            fill,
            pipe: pipe.clone(),
            socket: socket.clone(),
            drain,
        };
        let outcome = pool.run(affinity, job).await?;
        if let Some(filled) = outcome.filled {
            let n = u64::from(filled?);
            if n == 0 {
                return Err(BodyError::Truncated { missing: unread });
            }
            offset += n;
            unread -= n;
            in_pipe += n;
        }
        let drained = match outcome.drained {
            Ok(n) => u64::from(n),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) || e.raw_os_error() == Some(libc::ECANCELED) => {
                0
            }
            Err(e) => return Err(e.into()),
        };
        in_pipe -= drained;
        metrics.body_bytes(BodyPathLabel::IoUringSplice, drained);
        if in_pipe > 0 && drained < u64::from(drain) {
            wait_writable(stream, stall, metrics).await?;
        }
    }
    // Every byte left the pipe, so it can serve another transfer.
    drop(socket);
    if let Ok(pipe) = Arc::try_unwrap(pipe) {
        pool.put_pipe(pipe);
    }
    Ok(())
}

async fn sendfile_span(
    stream: &TcpStream,
    file: &Arc<File>,
    span: FileSpan,
    stall: Duration,
    metrics: &dyn BodyMeter,
) -> Result<(), BodyError> {
    let mut offset = span.offset as libc::off_t;
    let end = (span.offset + span.len) as libc::off_t;
    while offset < end {
        let count = ((end - offset) as usize).min(1 << 30);
        let sent = stream.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors are valid for the call; offset points to a live off_t.
            let n = unsafe { libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut offset, count) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as u64)
            }
        });
        match sent {
            Ok(0) => {
                return Err(BodyError::Truncated {
                    missing: (end - offset) as u64,
                })
            }
            Ok(n) => metrics.body_bytes(BodyPathLabel::Sendfile, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_writable(stream, stall, metrics).await?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
