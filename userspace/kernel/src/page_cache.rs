//! Asks the kernel whether a file's bytes are in the page cache, without waiting for the disk:
//! a one-byte `preadv2(RWF_NOWAIT)` fails with EAGAIN when the read would block. The hit path
//! uses it to send warm bodies inline by sendfile(2) and give cold ones to the io_uring rings,
//! whose reads never stall a connection thread.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Whether the byte at `offset` of `file` can be read without waiting for the disk. False
/// when it cannot (or the file system does not support RWF_NOWAIT for buffered reads).
pub fn byte_in_page_cache(file: &File, offset: u64) -> bool {
    let mut byte = 0u8;
    let iov = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    // SAFETY: one iovec over a live one-byte buffer; the fd is valid while `file` lives.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset as libc::off_t, libc::RWF_NOWAIT) };
    n == 1
}

/// Whether the first and the last byte of `len` bytes at `offset` are in the page cache.
pub fn span_in_page_cache(file: &File, offset: u64, len: u64) -> bool {
    len > 0 && byte_in_page_cache(file, offset) && byte_in_page_cache(file, offset + len - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn a_file_just_written_is_warm_and_after_dropping_its_pages_cold() {
        let path = std::env::temp_dir().join(format!("strata-page-cache-{}", std::process::id()));
        let mut f = File::create(&path).expect("create");
        f.write_all(&vec![7u8; 4 << 20]).expect("write");
        f.sync_all().expect("sync");
        let f = File::open(&path).expect("open");
        assert!(span_in_page_cache(&f, 0, 4 << 20), "just written");
        // SAFETY: plain advice on a valid descriptor.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert!(
            !span_in_page_cache(&f, 1 << 20, 1 << 20),
            "dropped from the page cache"
        );
        assert!(!span_in_page_cache(&f, 0, 0), "an empty span is not a hit");
        let _ = std::fs::remove_file(&path);
    }
}
