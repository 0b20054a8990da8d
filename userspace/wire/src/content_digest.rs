//! A content's identity as every server sees it: hex of digests, the SHA-256 of a file, the
//! extended attribute placement writes it to (`user.strata.sha256`), and the strong ETag every
//! server serves for it. The one place digests and random bytes turn into text.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, as hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// The extended attribute holding a placed file's SHA-256 (64 hex digits; 32 on edge fills).
pub const SHA256_XATTR: &str = "user.strata.sha256";

/// Writes [`SHA256_XATTR`] on the file at `path`.
pub fn set_sha256_xattr(path: &Path, hex: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path holds a NUL byte"))?;
    // SAFETY: valid C strings and a buffer of hex.len() bytes.
    let rc = unsafe {
        libc::setxattr(
            c_path.as_ptr(),
            c"user.strata.sha256".as_ptr(),
            hex.as_ptr().cast(),
            hex.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The ETag of a content with this SHA-256 (hex), as storage servers serve it.
pub fn etag_of_sha256(sha256_hex: &str) -> String {
    format!("\"{}\"", &sha256_hex[..sha256_hex.len().min(32)])
}
