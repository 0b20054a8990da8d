//! Socket options the data path sets: TCP_CORK around a response, TCP_NODELAY.

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

/// True if the socket can take more bytes now (poll with a zero timeout).
pub fn poll_writable(sock: &impl AsRawFd) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
        return Err(io::Error::new(io::ErrorKind::BrokenPipe, "client socket closed"));
    }
    Ok(pfd.revents & libc::POLLOUT != 0)
}
