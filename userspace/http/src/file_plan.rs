//! Decides how to answer a GET or HEAD for a file: 200, 206, 304 or 416, and which bytes.
//!
//! Pure logic over the request head and the file's validators (RFC 9110 §13 preconditions,
//! §14 ranges), so every branch is unit-tested without sockets. Several ranges in one `Range:`
//! header are answered with 200 and the whole body (documented in the README) rather than
//! multipart/byteranges: players fetch one range per request, and a single body keeps the
//! zero-copy path simple.

use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use super::range::{find_query_bytes, parse_query_bytes, parse_range_header, ByteRange, RangeHeader};
use super::request::{Method, RequestHead};

/// The validators of the file being served.
#[derive(Clone, Copy, Debug)]
pub struct Validators<'a> {
    pub len: u64,
    pub etag: &'a str,
    pub mtime: SystemTime,
}

/// What to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilePlan {
    /// 200, 206 or 304.
    pub status: u16,
    /// The bytes the body carries (also what Content-Length counts); `None` for an empty body.
    pub body: Option<ByteRange>,
    /// Whether a Content-Range header describes `body` (206 only).
    pub partial: bool,
    /// False for HEAD and 304: the head is sent, the body is not.
    pub send_body: bool,
}

/// Requests that cannot be answered with the file.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlanError {
    /// 400: `?bytes=` is not START-END.
    #[error("bad bytes= query: {0}")]
    BadQuery(String),
    /// 416: no requested byte lies inside the file.
    #[error("range not satisfiable: {reason}")]
    Unsatisfiable { reason: String, len: u64 },
}

/// Plans the response to `head` for a file with validators `v`.
pub fn plan_file_response(head: &RequestHead, v: Validators<'_>) -> Result<FilePlan, PlanError> {
    let is_get = head.method() == &Method::Get;
    if not_modified(head, v) {
        return Ok(FilePlan {
            status: 304,
            body: None,
            partial: false,
            send_body: false,
        });
    }
    let whole = |status| FilePlan {
        status,
        body: (v.len > 0).then(|| ByteRange {
            start: 0,
            end: v.len - 1,
        }),
        partial: false,
        send_body: is_get,
    };
    let unsatisfiable = |reason: String| PlanError::Unsatisfiable { reason, len: v.len };

    if let Some(value) = head.query.as_deref().and_then(find_query_bytes) {
        let spec = parse_query_bytes(value).map_err(|e| PlanError::BadQuery(e.to_string()))?;
        let range = spec
            .resolve(v.len)
            .ok_or_else(|| unsatisfiable(format!("bytes={value} lies outside {} bytes", v.len)))?;
        return Ok(FilePlan {
            status: 200,
            body: Some(range),
            partial: false,
            send_body: is_get,
        });
    }

    let Some(range_value) = head.range.as_deref().filter(|_| is_get) else {
        return Ok(whole(200));
    };
    if let Some(if_range) = head.if_range.as_deref() {
        if !if_range_matches(if_range, v) {
            return Ok(whole(200));
        }
    }
    let specs = match parse_range_header(range_value) {
        Ok(RangeHeader::OtherUnit) => return Ok(whole(200)),
        Ok(RangeHeader::Bytes(specs)) => specs,
        Err(e) => return Err(unsatisfiable(e.to_string())),
    };
    let satisfiable: Vec<ByteRange> = specs.iter().filter_map(|s| s.resolve(v.len)).collect();
    match (specs.len(), satisfiable.first()) {
        (_, None) => Err(unsatisfiable(format!(
            "{range_value} lies outside {} bytes",
            v.len
        ))),
        (1, Some(&r)) => Ok(FilePlan {
            status: 206,
            body: Some(r),
            partial: true,
            send_body: true,
        }),
        (_, Some(_)) => Ok(whole(200)),
    }
}

/// RFC 9110 §13.2.2 steps 3 and 4 for GET/HEAD: If-None-Match, else If-Modified-Since.
fn not_modified(head: &RequestHead, v: Validators<'_>) -> bool {
    if let Some(inm) = head.if_none_match.as_deref() {
        return inm
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || weak_eq(tag, v.etag));
    }
    if let Some(ims) = head.if_modified_since.as_deref() {
        if let Ok(since) = httpdate::parse_http_date(ims) {
            return unix_secs(v.mtime) <= unix_secs(since);
        }
    }
    false
}

/// If-Range (RFC 9110 §13.1.5): a strong ETag must match exactly; a date must equal
/// Last-Modified.
fn if_range_matches(if_range: &str, v: Validators<'_>) -> bool {
    if if_range.starts_with("W/") {
        return false;
    }
    if if_range.starts_with('"') {
        return if_range == v.etag;
    }
    match httpdate::parse_http_date(if_range) {
        Ok(date) => unix_secs(date) == unix_secs(v.mtime),
        Err(_) => false,
    }
}

/// Weak comparison: equal opaque tags, ignoring any W/ prefix.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const ETAG: &str = "\"abc-64-1\"";

    fn v() -> Validators<'static> {
        Validators {
            len: 100,
            etag: ETAG,
            mtime: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    fn get() -> RequestHead {
        RequestHead {
            method: Some(Method::Get),
            path: "/t/c/a".into(),
            ..Default::default()
        }
    }

    fn range(r: &str) -> RequestHead {
        RequestHead {
            range: Some(r.into()),
            ..get()
        }
    }

    fn span(p: &FilePlan) -> (u64, u64) {
        let b = p.body.unwrap();
        (b.start, b.end)
    }

    #[test]
    fn plain_get_is_whole_200() {
        let p = plan_file_response(&get(), v()).unwrap();
        assert_eq!((p.status, span(&p), p.send_body), (200, (0, 99), true));
    }

    #[test]
    fn single_range_is_206() {
        let p = plan_file_response(&range("bytes=10-19"), v()).unwrap();
        assert_eq!((p.status, span(&p), p.partial), (206, (10, 19), true));
        let p = plan_file_response(&range("bytes=-10"), v()).unwrap();
        assert_eq!(span(&p), (90, 99));
    }

    #[test]
    fn unsatisfiable_and_garbage_ranges_are_416() {
        for r in [
            "bytes=100-",
            "bytes=200-300",
            "bytes=-0",
            "bytes=x-y",
            "bytes=9-1",
        ] {
            let e = plan_file_response(&range(r), v()).unwrap_err();
            assert!(matches!(e, PlanError::Unsatisfiable { len: 100, .. }), "{r}");
        }
    }

    #[test]
    fn several_ranges_get_the_whole_body() {
        let p = plan_file_response(&range("bytes=0-1,5-6"), v()).unwrap();
        assert_eq!((p.status, span(&p)), (200, (0, 99)));
        assert!(plan_file_response(&range("bytes=500-,600-"), v()).is_err());
    }

    #[test]
    fn head_ignores_range_and_sends_no_body() {
        let h = RequestHead {
            method: Some(Method::Head),
            ..range("bytes=0-1")
        };
        let p = plan_file_response(&h, v()).unwrap();
        assert_eq!((p.status, p.send_body, span(&p)), (200, false, (0, 99)));
    }

    #[test]
    fn query_bytes_is_200_with_exactly_those_bytes() {
        let h = RequestHead {
            query: Some("bytes=10-19".into()),
            ..range("bytes=0-0")
        };
        let p = plan_file_response(&h, v()).unwrap();
        assert_eq!((p.status, span(&p), p.partial), (200, (10, 19), false));
        let bad = RequestHead {
            query: Some("bytes=abc".into()),
            ..get()
        };
        assert!(matches!(
            plan_file_response(&bad, v()),
            Err(PlanError::BadQuery(_))
        ));
        let out = RequestHead {
            query: Some("bytes=100-200".into()),
            ..get()
        };
        assert!(matches!(
            plan_file_response(&out, v()),
            Err(PlanError::Unsatisfiable { .. })
        ));
    }

    #[test]
    fn if_none_match_and_if_modified_since_give_304() {
        let h = RequestHead {
            if_none_match: Some(format!("\"zzz\", W/{ETAG}")),
            ..get()
        };
        assert_eq!(plan_file_response(&h, v()).unwrap().status, 304);
        let h = RequestHead {
            if_none_match: Some("\"zzz\"".into()),
            ..get()
        };
        assert_eq!(plan_file_response(&h, v()).unwrap().status, 200);
        let date = httpdate::fmt_http_date(v().mtime);
        let h = RequestHead {
            if_modified_since: Some(date),
            ..get()
        };
        assert_eq!(plan_file_response(&h, v()).unwrap().status, 304);
        let older = httpdate::fmt_http_date(v().mtime - Duration::from_secs(10));
        let h = RequestHead {
            if_modified_since: Some(older),
            ..get()
        };
        assert_eq!(plan_file_response(&h, v()).unwrap().status, 200);
    }

    #[test]
    fn if_range_gates_the_range() {
        let h = RequestHead {
            if_range: Some(ETAG.into()),
            ..range("bytes=0-9")
        };
        assert_eq!(plan_file_response(&h, v()).unwrap().status, 206);
        let h = RequestHead {
            if_range: Some("\"other\"".into()),
            ..range("bytes=0-9")
        };
        assert_eq!(plan_file_response(&h, v()).unwrap().status, 200);
        let h = RequestHead {
            if_range: Some(format!("W/{ETAG}")),
            ..range("bytes=0-9")
        };
        assert_eq!(plan_file_response(&h, v()).unwrap().status, 200);
        let lm = httpdate::fmt_http_date(v().mtime);
        let h = RequestHead {
            if_range: Some(lm),
            ..range("bytes=0-9")
        };
        assert_eq!(plan_file_response(&h, v()).unwrap().status, 206);
    }

    #[test]
    fn empty_file_has_no_body_and_ranges_are_416() {
        let empty = Validators { len: 0, ..v() };
        let p = plan_file_response(&get(), empty).unwrap();
        assert_eq!((p.status, p.body), (200, None));
        assert!(plan_file_response(&range("bytes=0-"), empty).is_err());
    }
}
