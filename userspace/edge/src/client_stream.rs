//! A viewer's connection, plain TCP or TLS, as the connection handler and the miss proxy see
//! it: readiness and non-blocking reads for the head, writes that reach the socket, the
//! peer's address, and a file body sent by the kernel (io_uring splice / sendfile) on plain
//! TCP or read, encrypted and written on TLS. Only a plain connection can be parked idle or
//! have its body moved socket to socket (sockmap, splice); a TLS one keeps its task and its
//! misses take the copy relay.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use strata_kernel::body_meter::BodyMeter;
use strata_kernel::body_path::{send_span, BodyError, BodyPath, FileSpan};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::tls::file_body::send_file_span;
use crate::tls::https_metrics::HttpsMetrics;

/// A viewer's connection.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<TlsClient>),
}

/// A TLS session after its handshake, and where its encrypted bytes are counted.
pub struct TlsClient {
    pub stream: TlsStream<TcpStream>,
    pub metrics: Arc<HttpsMetrics>,
}

impl ClientStream {
    pub fn tls(stream: Box<TlsStream<TcpStream>>, metrics: Arc<HttpsMetrics>) -> ClientStream {
        ClientStream::Tls(Box::new(TlsClient {
            stream: *stream,
            metrics,
        }))
    }

    /// The TCP socket under the session.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(s) => s,
            ClientStream::Tls(t) => t.stream.get_ref().0,
        }
    }

    /// The plain TCP stream, for the kernel body paths; None under TLS.
    pub fn plain_mut(&mut self) -> Option<&mut TcpStream> {
        match self {
            ClientStream::Plain(s) => Some(s),
            ClientStream::Tls(_) => None,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls(_))
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().local_addr()
    }

    /// Waits until a read may return bytes (or end): the socket is readable, or under TLS the
    /// session already holds decrypted bytes. A wake-up may still find nothing (a partial TLS
    /// record): `try_read` then says WouldBlock.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            ClientStream::Plain(s) => s.readable().await,
            ClientStream::Tls(t) => {
                let (tcp, session) = t.stream.get_ref();
                if !session.wants_read() {
                    return Ok(());
                }
                tcp.readable().await
            }
        }
    }

    /// Whether the socket holds unread bytes (FIONREAD), whatever they decrypt to.
    pub fn socket_has_bytes(&self) -> bool {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through a valid pointer on an open socket.
        let rc = unsafe { libc::ioctl(self.tcp().as_raw_fd(), libc::FIONREAD, &mut n) };
        rc == 0 && n > 0
    }

    /// Reads what is there without waiting; WouldBlock when nothing is.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.try_read(buf),
            ClientStream::Tls(t) => {
                let mut cx = Context::from_waker(std::task::Waker::noop());
                let mut rb = ReadBuf::new(buf);
                match Pin::new(&mut t.stream).poll_read(&mut cx, &mut rb) {
                    Poll::Ready(Ok(())) => Ok(rb.filled().len()),
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    /// Appends what is there to `buf` (up to its capacity) without waiting.
    pub fn try_read_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.try_read_buf(buf),
            ClientStream::Tls(_) => {
                let old = buf.len();
                buf.resize(buf.capacity().max(old + 1), 0);
                let r = self.try_read(&mut buf[old..]);
                buf.truncate(old + *r.as_ref().unwrap_or(&0));
                r
            }
        }
    }

    /// Writes all of `bytes` and, under TLS, pushes the records to the socket.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes).await?;
        if self.is_tls() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what the socket takes of `parts` now, without waiting: one writev(2) on plain
    /// TCP (0 bytes on TLS, whose writes go through rustls). The bytes written.
    pub fn try_send_now(&mut self, parts: &[&[u8]]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(s) => {
                let slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
                match s.try_write_vectored(&slices) {
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                    Err(e) => Err(e),
                }
            }
            ClientStream::Tls(_) => Ok(0),
        }
    }

    /// Sends `span` of `file`: by the kernel path on plain TCP, encrypted in userspace on TLS.
    pub async fn send_file(
        &mut self,
        path: &BodyPath,
        file: &Arc<File>,
        span: FileSpan,
        stall: Duration,
        meter: &dyn BodyMeter,
    ) -> Result<(), BodyError> {
        match self {
            ClientStream::Plain(s) => send_span(path, s, file, span, stall, meter).await,
            // Through this stream's writes, so the bytes count as encrypted in userspace.
            ClientStream::Tls(_) => send_file_span(self, file, span, stall, meter).await,
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(t) => Pin::new(&mut t.stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(t) => {
                let r = Pin::new(&mut t.stream).poll_write(cx, buf);
                if let Poll::Ready(Ok(n)) = &r {
                    t.metrics.encrypted_in_userspace(*n as u64);
                }
                r
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(t) => Pin::new(&mut t.stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(t) => Pin::new(&mut t.stream).poll_shutdown(cx),
        }
    }
}
