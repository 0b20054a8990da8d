//! A viewer served from a fill in progress (read-while-writer): once the storage server's head
//! arrived, the viewer gets a head planned like a hit's (ranges, conditionals, validators), then
//! the bytes already in the fill's file by the configured body path (sendfile or io_uring
//! splice, straight from the page cache) and the rest as the fill writes them. A range inside
//! the written part goes out at once. A fill that fails before its head leaves the viewer to be
//! proxied; one that fails after the viewer's head closes the viewer's connection, so a short
//! body is never framed as complete.

use std::os::unix::fs::MetadataExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use super::fill_progress::{FillHead, FillProgress, Progress};
use crate::client_stream::ClientStream;
use crate::delivery_policy::Kind;
use crate::metrics::ServerMetrics;
use strata_http::file_plan::{plan_file_response, PlanError, Validators};
use strata_http::request::RequestHead;
use strata_http::response::HeadBuilder;
use strata_kernel::body_meter::{BodyMeter, BodyPathLabel};
use strata_kernel::body_path::{BodyPath, FileSpan};

/// How serving from a fill went.
pub enum FromFill {
    /// The fill ended before the storage server's head (or failed before this viewer got
    /// anything): nothing was sent, proxy instead.
    Unavailable,
    /// The request cannot be served from this asset: status, message, extra headers.
    Refused(u16, String, Vec<(&'static str, String)>),
    /// A response went out; whether the connection may be reused.
    Served(bool),
}

/// What one viewer's send needs besides the fill.
pub struct Viewer<'a> {
    /// Plain TCP (the body by the kernel path) or TLS (read and encrypted in userspace).
    pub client: &'a mut ClientStream,
    pub head: &'a RequestHead,
    pub content_type: &'a str,
    pub body_path: &'a BodyPath,
    pub stall: Duration,
    pub metrics: &'a ServerMetrics,
}

/// Serves `v` from `fill`, following it until the response's last byte is written.
pub async fn serve_from_fill(v: Viewer<'_>, fill: &FillProgress) -> FromFill {
    let mut rx = fill.subscribe();
    let started = match rx.wait_for(|p| *p != Progress::Connecting).await {
        Ok(p) => *p,
        Err(_) => Progress::Failed,
    };
    let Some(head) = fill.head().filter(|_| started != Progress::Failed) else {
        return FromFill::Unavailable;
    };
    let etag = served_etag(head);
    let validators = Validators {
        len: head.len,
        etag: &etag,
        mtime: head.mtime,
    };
    let plan = match plan_file_response(v.head, validators) {
        Ok(p) => p,
        Err(e @ PlanError::BadQuery(_)) => return FromFill::Refused(400, e.to_string(), vec![]),
        Err(e @ PlanError::Unsatisfiable { len, .. }) => {
            let range = ("Content-Range", format!("bytes */{len}"));
            return FromFill::Refused(416, e.to_string(), vec![range]);
        }
    };
    let mut builder = HeadBuilder::new(plan.status);
    if plan.status != 304 {
        builder = builder
            .header("Content-Type", v.content_type)
            .header_u64("Content-Length", plan.body.map_or(0, |b| b.len()));
    }
    builder =
        crate::request_scope::decorate(builder.header("Accept-Ranges", "bytes"), plan.status, Kind::Vod)
            .header("ETag", &etag)
            .header("Last-Modified", &httpdate::fmt_http_date(head.mtime));
    if let (true, Some(body)) = (plan.partial, plan.body) {
        builder = builder.content_range(body, head.len);
    }
    let head_bytes = builder.connection(v.head.keep_alive).finish();
    if let Some(server) = fill.server() {
        crate::request_scope::note_upstream(server);
    }
    tracing::debug!(path = %v.head.path, status = plan.status, written = fill.written(), len = head.len, "miss served from the fill (read-while-writer)");
    v.metrics.response(plan.status);
    if !matches!(
        tokio::time::timeout(v.stall, v.client.send(&head_bytes)).await,
        Ok(Ok(()))
    ) {
        return FromFill::Served(false);
    }
    let body = match (plan.send_body, plan.body) {
        (true, Some(body)) => body,
        _ => return FromFill::Served(v.head.keep_alive),
    };
    let meter = OneBody {
        inner: v.metrics,
        started: AtomicBool::new(false),
    };
    let (mut pos, end) = (body.start, body.end + 1);
    while pos < end {
        let now = *rx.borrow_and_update();
        let available = match now {
            Progress::Written(n) => n,
            Progress::Complete => head.len,
            Progress::Connecting => 0,
            Progress::Failed => {
                tracing::warn!(path = %v.head.path, sent = pos - body.start, "the fill this viewer followed failed; closing its connection");
                return FromFill::Served(false);
            }
        };
        if available <= pos {
            if rx.changed().await.is_err() && fill.now() != Progress::Complete {
                return FromFill::Served(false);
            }
            continue;
        }
        let span = FileSpan {
            offset: pos,
            len: available.min(end) - pos,
        };
        if let Err(e) = v
            .client
            .send_file(v.body_path, &head.file, span, v.stall, &meter)
            .await
        {
            tracing::debug!(error = %e, "viewer of a fill left; the fill goes on");
            return FromFill::Served(false);
        }
        pos += span.len;
    }
    FromFill::Served(v.head.keep_alive)
}

/// The ETag a hit on the finished file will carry: the storage server's content tag (the fill
/// keeps it on the file), else this file's own (inode, length, modification time).
fn served_etag(head: &FillHead) -> String {
    if let Some(tag) = head.etag.as_deref().filter(|e| is_content_tag(e)) {
        return tag.to_string();
    }
    let ino = head.file.metadata().map(|m| m.ino()).unwrap_or(0);
    let mtime_ns = head
        .mtime
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("\"{ino:x}-{:x}-{mtime_ns:x}\"", head.len)
}

/// A quoted 32-hex-digit tag (128 bits of the content's SHA-256).
fn is_content_tag(etag: &str) -> bool {
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Counts one body however many spans it is sent in.
struct OneBody<'a> {
    inner: &'a ServerMetrics,
    started: AtomicBool,
}

impl BodyMeter for OneBody<'_> {
    fn body_started(&self, path: BodyPathLabel) {
        if !self.started.swap(true, Ordering::Relaxed) {
            self.inner.body_started(path);
        }
    }
    fn body_bytes(&self, path: BodyPathLabel, n: u64) {
        self.inner.body_bytes(path, n);
    }
    fn send_wait(&self) {
        self.inner.send_wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_quoted_sha_prefix_is_a_content_tag() {
        assert!(is_content_tag("\"0123456789abcdef0123456789abcdef\""));
        assert!(!is_content_tag("\"12-34-56\""));
        assert!(!is_content_tag("0123456789abcdef0123456789abcdef"));
    }
}
