//! Where the load generator's response bodies go: spliced from the socket through a pipe into
//! /dev/null (the kernel moves page references, the generator's core never copies a byte), or,
//! for the sampled responses that are checksummed, read into a buffer and hashed.

use std::fs::File;
use std::io::Read;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{bail, Context as _};
use nix::fcntl::{splice, SpliceFFlags};

/// Pipe capacity asked for; the kernel caps it at /proc/sys/fs/pipe-max-size (1 MiB default).
const PIPE_BYTES: usize = 1 << 20;

/// A per-connection discarding sink.
pub struct BodySink {
    pipe_read: OwnedFd,
    pipe_write: OwnedFd,
    pipe_len: usize,
    dev_null: File,
    scratch: Vec<u8>,
}

impl BodySink {
    pub fn new() -> anyhow::Result<BodySink> {
        let (pipe_read, pipe_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating the discard pipe")?;
        // SAFETY: F_SETPIPE_SZ on a pipe we own; failure leaves the default size.
        let set = unsafe {
            libc::fcntl(
                pipe_write.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                PIPE_BYTES as libc::c_int,
            )
        };
        let pipe_len = if set > 0 { set as usize } else { 64 << 10 };
        let dev_null = File::options()
            .write(true)
            .open("/dev/null")
            .context("opening /dev/null")?;
        Ok(BodySink {
            pipe_read,
            pipe_write,
            pipe_len,
            dev_null,
            scratch: vec![0; 1 << 20],
        })
    }

    /// Moves `len` body bytes from `sock` to /dev/null without copying them.
    pub fn discard(&mut self, sock: &TcpStream, mut len: u64) -> anyhow::Result<()> {
        while len > 0 {
            let want = (len as usize).min(self.pipe_len);
            let got = splice(
                sock.as_fd(),
                None,
                self.pipe_write.as_fd(),
                None,
                want,
                SpliceFFlags::SPLICE_F_MOVE,
            )
            .context("splice socket → pipe")?;
            if got == 0 {
                bail!("connection closed mid-body ({len} bytes missing)");
            }
            let mut drained = 0;
            while drained < got {
                drained += splice(
                    self.pipe_read.as_fd(),
                    None,
                    self.dev_null.as_fd(),
                    None,
                    got - drained,
                    SpliceFFlags::SPLICE_F_MOVE,
                )
                .context("splice pipe → /dev/null")?;
            }
            len -= got as u64;
        }
        Ok(())
    }

    /// Reads `len` body bytes from `sock` into `hasher` (the sampled, checksummed responses).
    pub fn read_hashed(
        &mut self,
        sock: &mut TcpStream,
        mut len: u64,
        hasher: &mut crc32fast::Hasher,
    ) -> anyhow::Result<()> {
        while len > 0 {
            let want = (len as usize).min(self.scratch.len());
            let got = sock.read(&mut self.scratch[..want]).context("reading a body")?;
            if got == 0 {
                bail!("connection closed mid-body ({len} bytes missing)");
            }
            hasher.update(&self.scratch[..got]);
            len -= got as u64;
        }
        Ok(())
    }
}
