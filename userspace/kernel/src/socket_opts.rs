//! Socket options and socket state the data path uses: TCP_CORK around a response, socket
//! cookies, the SO_RCVLOWAT kick of the sockmap path, and TCP_INFO's count of bytes written.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Corks (true) or uncorks (false) a TCP socket: while corked, the head and the first body
/// bytes leave in full segments; uncorking flushes.
pub fn set_cork(sock: &impl AsRawFd, on: bool) -> io::Result<()> {
    set_int(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_CORK, on.into())
}

/// Duplicates a socket descriptor so an in-flight kernel job can own a reference to it.
pub fn dup_fd(sock: &impl AsRawFd) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let fd = unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is new and owned by nobody else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// poll(2) with a zero timeout: the events the socket has now, of `events` plus the errors and
/// hang-ups the kernel always reports.
pub fn poll_now(sock: &impl AsRawFd, events: libc::c_short) -> io::Result<libc::c_short> {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    if unsafe { libc::poll(&mut pfd, 1, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pfd.revents)
}

/// True if the socket can take more bytes now (poll with a zero timeout).
pub fn poll_writable(sock: &impl AsRawFd) -> io::Result<bool> {
    let revents = poll_now(sock, libc::POLLOUT)?;
    if revents & (libc::POLLERR | libc::POLLHUP) != 0 {
        return Err(io::Error::new(io::ErrorKind::BrokenPipe, "client socket closed"));
    }
    Ok(revents & libc::POLLOUT != 0)
}

/// The socket's cookie (SO_COOKIE): the key of the sockmap maps, unique for the socket's life.
pub fn socket_cookie(sock: &impl AsRawFd) -> io::Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: SO_COOKIE writes a u64 into the buffer we pass with its size.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cookie)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets SO_RCVLOWAT to 1, which makes the kernel run the socket's data-ready callback: bytes
/// that were queued before the socket entered a sockmap go through its programs now.
pub fn kick_receive(sock: &impl AsRawFd) -> io::Result<()> {
    set_int(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVLOWAT, 1)
}

/// The head of `struct tcp_info` (linux/tcp.h) up to `tcpi_bytes_retrans`.
#[repr(C)]
#[derive(Default)]
struct TcpInfoHead {
    state_etc: [u8; 8],
    rto_to_rcv_mss: [u32; 4],
    unacked_to_fackets: [u32; 5],
    last_times: [u32; 4],
    pmtu_to_reordering: [u32; 8],
    rcv_rtt: u32,
    rcv_space: u32,
    total_retrans: u32,
    pacing_rate: u64,
    max_pacing_rate: u64,
    bytes_acked: u64,
    bytes_received: u64,
    segs_out: u32,
    segs_in: u32,
    notsent_bytes: u32,
    min_rtt: u32,
    data_segs_in: u32,
    data_segs_out: u32,
    delivery_rate: u64,
    busy_time: u64,
    rwnd_limited: u64,
    sndbuf_limited: u64,
    delivered: u32,
    delivered_ce: u32,
    bytes_sent: u64,
    bytes_retrans: u64,
}

/// What a TCP socket has taken from its writers so far, as TCP_INFO tells: bytes sent once
/// (sent minus retransmitted) plus bytes queued but not yet sent. Bytes a sockmap redirect has
/// queued toward the socket count only once they are in the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrittenBytes {
    /// Total bytes accepted into the socket.
    pub total: u64,
    /// Of those, not yet sent.
    pub not_sent: u64,
}

pub fn written_bytes(sock: &impl AsRawFd) -> io::Result<WrittenBytes> {
    let mut info = TcpInfoHead::default();
    let mut len = std::mem::size_of::<TcpInfoHead>() as libc::socklen_t;
    // SAFETY: TCP_INFO writes at most `len` bytes into the struct.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut TcpInfoHead).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if (len as usize) < std::mem::size_of::<TcpInfoHead>() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "TCP_INFO lacks tcpi_bytes_sent (kernel older than 4.19)",
        ));
    }
    let not_sent = u64::from(info.notsent_bytes);
    Ok(WrittenBytes {
        total: info.bytes_sent.saturating_sub(info.bytes_retrans) + not_sent,
        not_sent,
    })
}

/// A peer that closed or failed: POLLRDHUP, POLLHUP or POLLERR on the socket now.
pub fn peer_gone(sock: &impl AsRawFd) -> bool {
    poll_now(sock, libc::POLLRDHUP).map_or(true, |r| {
        r & (libc::POLLRDHUP | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
    })
}

/// True if the connection failed (error, or both directions closed). A half-close is not a
/// failure: the peer may still read.
pub fn connection_failed(sock: &impl AsRawFd) -> bool {
    poll_now(sock, 0).map_or(true, |r| r & (libc::POLLERR | libc::POLLHUP) != 0)
}

/// Sets the socket's send buffer to `bytes` (the kernel doubles it), past net.core.wmem_max
/// when the process may (SO_SNDBUFFORCE, CAP_NET_ADMIN), else up to it.
pub fn set_send_buffer(sock: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    let value = bytes.min(i32::MAX as usize / 2) as libc::c_int;
    set_int(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, value)
        .or_else(|_| set_int(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_info_head_matches_the_kernel_layout() {
        // tcpi_bytes_sent is at offset 200 and tcpi_bytes_retrans at 208 in linux/tcp.h.
        assert_eq!(std::mem::offset_of!(TcpInfoHead, notsent_bytes), 144);
        assert_eq!(std::mem::offset_of!(TcpInfoHead, bytes_sent), 200);
        assert_eq!(std::mem::size_of::<TcpInfoHead>(), 216);
    }

    #[test]
    fn written_bytes_counts_what_a_socket_took() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut b, _) = listener.accept().unwrap();
        let before = written_bytes(&a).unwrap().total;
        a.write_all(&[7u8; 10_000]).unwrap();
        assert_eq!(written_bytes(&a).unwrap().total, before + 10_000);
        let mut got = vec![0u8; 10_000];
        b.read_exact(&mut got).unwrap();
        assert!(!peer_gone(&a));
        drop(b);
        // The FIN arrives a moment later; wait for it (bounded), then it must show.
        for _ in 0..500 {
            if peer_gone(&a) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(peer_gone(&a));
        assert_ne!(socket_cookie(&a).unwrap(), socket_cookie(&listener).unwrap());
    }
}
