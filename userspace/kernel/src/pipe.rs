//! Kernel pipes used as in-kernel buffers by the splice paths (io_uring file → socket, and
//! splice(2) socket → socket), enlarged with F_SETPIPE_SZ so one fill moves up to 1 MiB.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Bytes a pipe is asked to hold.
pub const PIPE_CAPACITY: u32 = 1 << 20;

/// A pipe's two ends and the capacity the kernel granted.
#[derive(Debug)]
pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
    pub capacity: u32,
}

impl Pipe {
    /// Creates a pipe (non-blocking ends if asked) and asks for [`PIPE_CAPACITY`]; if the
    /// kernel refuses, the default 64 KiB stands.
    pub fn new(nonblocking: bool) -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        let flags = libc::O_CLOEXEC | if nonblocking { libc::O_NONBLOCK } else { 0 };
        // SAFETY: pipe2 writes two descriptors into the array on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), flags) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_SETPIPE_SZ takes an int size; failure leaves the default size in place.
        let size = unsafe {
            libc::fcntl(
                write.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                PIPE_CAPACITY as libc::c_int,
            )
        };
        Ok(Pipe {
            read,
            write,
            capacity: if size > 0 { size as u32 } else { 64 * 1024 },
        })
    }
}
