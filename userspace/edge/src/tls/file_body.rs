//! A file body over TLS without kernel offload: read a chunk of the file (pread), let rustls
//! encrypt it into records, write them, until the span is sent. sendfile and splice cannot
//! carry it: the kernel would send plaintext. The chunk is read where the task runs, as
//! nginx's workers do without thread pools: hits are in the page cache, and the read-ahead
//! hint at the start of every body keeps them there.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::time::Duration;

use strata_kernel::body_meter::{BodyMeter, BodyPathLabel};
use strata_kernel::body_path::{BodyError, FileSpan};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

/// Bytes read from the file per write (a multiple of TLS's 16 KiB record).
const CHUNK: usize = 128 * 1024;

/// Sends `span` of `file` through `out` (a TLS stream), flushing the last records. A file that
/// ends before the span does is `Truncated` (the caller closes the connection).
pub async fn send_file_span<W: AsyncWrite + Unpin>(
    out: &mut W,
    file: &File,
    span: FileSpan,
    stall: Duration,
    meter: &dyn BodyMeter,
) -> Result<(), BodyError> {
    meter.body_started(BodyPathLabel::TlsUserspace);
    let mut buf = vec![0u8; (span.len as usize).clamp(1, CHUNK)];
    let mut offset = span.offset;
    let mut left = span.len;
    while left > 0 {
        let want = (left as usize).min(buf.len());
        let n = match file.read_at(&mut buf[..want], offset) {
            Ok(0) => return Err(BodyError::Truncated { missing: left }),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BodyError::Io(e)),
        };
        match tokio::time::timeout(stall, out.write_all(&buf[..n])).await {
            Err(_) => return Err(BodyError::Stalled(stall)),
            Ok(Err(e)) => return Err(BodyError::Io(e)),
            Ok(Ok(())) => {}
        }
        meter.body_bytes(BodyPathLabel::TlsUserspace, n as u64);
        offset += n as u64;
        left -= n as u64;
    }
    match tokio::time::timeout(stall, out.flush()).await {
        Err(_) => Err(BodyError::Stalled(stall)),
        Ok(Err(e)) => Err(BodyError::Io(e)),
        Ok(Ok(())) => Ok(()),
    }
}
