//! One request's scope, held in a tokio task-local while the request is answered: the
//! tenant's delivery policy and the request's `Origin` (what every response head of the
//! request adds: `Cache-Control`, CORS), and the note the access log is written from (status,
//! body bytes and path, outcome, upstream server), filled in by whichever code path answers.
//!
//! A task-local instead of a parameter through every path: the hit path, the proxy, the
//! director and the live playlists all build heads and move bodies, and the metrics already
//! see every status and body byte; they report here too. Outside a scope (the storage
//! role's 503 on accept, background fills) the calls do nothing and heads get the defaults.

use std::borrow::Cow;
use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use strata_http::request::RequestHead;
use strata_http::response::HeadBuilder;
use strata_kernel::body_meter::BodyPathLabel;

use crate::access_log::record::{redacted_query, AccessRecord, Outcome};
use crate::delivery_policy::{Cors, DeliveryPolicy, Kind};

tokio::task_local! {
    static SCOPE: RefCell<RequestScope>;
}

/// What one request's responses carry and report.
#[derive(Debug, Default)]
pub struct RequestScope {
    pub tenant: Option<String>,
    pub policy: Option<Arc<DeliveryPolicy>>,
    pub origin: Option<String>,
    /// The edge's live playlist TTL (the default max-age of live playlists).
    pub live_ttl_secs: u64,
    pub note: Note,
}

/// The access log's facts about the response, gathered while it is sent.
#[derive(Debug, Default)]
pub struct Note {
    pub status: u16,
    pub bytes: u64,
    pub body_path: Option<&'static str>,
    pub outcome: Option<Outcome>,
    pub upstream: Option<SocketAddr>,
}

impl RequestScope {
    /// The scope of `head` for `tenant`, under the tenant's `policy`.
    pub fn new(
        head: &RequestHead,
        tenant: Option<String>,
        policy: Option<Arc<DeliveryPolicy>>,
        live_ttl_secs: u64,
    ) -> RequestScope {
        RequestScope {
            tenant,
            policy,
            origin: head.origin.clone(),
            live_ttl_secs,
            note: Note::default(),
        }
    }

    fn cors(&self) -> Cors {
        match &self.policy {
            Some(p) => p.cors(self.origin.as_deref()),
            None => Cors::Any,
        }
    }

    fn cache_control(&self, status: u16, kind: Kind) -> Cow<'static, str> {
        match &self.policy {
            Some(p) => p.cache_control(status, kind, self.live_ttl_secs),
            None => DeliveryPolicy::default().cache_control(status, kind, self.live_ttl_secs),
        }
    }

    /// The access log line of the answered request.
    pub fn record(
        self,
        head: &RequestHead,
        client: Option<SocketAddr>,
        time: SystemTime,
        started: Instant,
    ) -> AccessRecord {
        let note = self.note;
        let outcome = note.outcome.unwrap_or(Outcome::Error);
        AccessRecord {
            time,
            client,
            tenant: self.tenant,
            method: match head.method() {
                strata_http::request::Method::Get => "GET".into(),
                strata_http::request::Method::Head => "HEAD".into(),
                strata_http::request::Method::Other(m) => m.clone(),
            },
            path: head.path.clone(),
            query: head.query.as_deref().map(redacted_query),
            range: head.range.clone(),
            status: note.status,
            bytes: note.bytes,
            duration_ms: (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            outcome,
            body_path: note.body_path.unwrap_or("none"),
            upstream: note.upstream,
        }
    }
}

/// Runs `fut` inside `scope`; returns its output and the scope as `fut` left it.
pub async fn run<F: Future>(scope: RequestScope, fut: F) -> (F::Output, RequestScope) {
    SCOPE
        .scope(RefCell::new(scope), async {
            let out = fut.await;
            let scope = SCOPE.with(|s| std::mem::take(&mut *s.borrow_mut()));
            (out, scope)
        })
        .await
}

fn with<R>(f: impl FnOnce(&mut RequestScope) -> R) -> Option<R> {
    SCOPE.try_with(|s| f(&mut s.borrow_mut())).ok()
}

/// The status sent (the last one counts: an error after a failed attempt replaces nothing
/// already sent, because nothing was).
pub fn note_status(status: u16) {
    with(|s| s.note.status = status);
}

/// A body started on a kernel path.
pub fn note_body_started(path: BodyPathLabel) {
    with(|s| s.note.body_path = Some(path.as_str()));
}

/// More body bytes left through the kernel path.
pub fn note_body_bytes(n: u64) {
    with(|s| s.note.bytes += n);
}

/// A body of `n` bytes written from memory.
pub fn note_memory_body(n: u64) {
    with(|s| {
        s.note.body_path = Some("memory");
        s.note.bytes += n;
    });
}

/// A whole response (head and body in one buffer) written from memory.
pub fn note_memory_response(bytes: &[u8]) {
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |p| p + 4);
    let body = (bytes.len() - head_end) as u64;
    if body > 0 {
        note_memory_body(body);
    }
}

/// Where the content came from.
pub fn note_outcome(outcome: Outcome) {
    with(|s| s.note.outcome = Some(outcome));
}

/// The server the body is fetched from.
pub fn note_upstream(server: SocketAddr) {
    with(|s| s.note.upstream = Some(server));
}

/// `builder` with the request's CORS headers and the `Cache-Control` of a `status` response of
/// `kind` (defaults outside a scope).
pub fn decorate(builder: HeadBuilder, status: u16, kind: Kind) -> HeadBuilder {
    let headers = with(|s| (s.cors(), s.cache_control(status, kind)));
    let (cors, cc) = headers.unwrap_or_else(|| {
        (
            Cors::Any,
            DeliveryPolicy::default().cache_control(status, kind, 1),
        )
    });
    cors.apply(builder).header("Cache-Control", &cc)
}

/// The CORS and `Cache-Control` headers of an error response with `status`.
pub fn error_headers(status: u16) -> Vec<(&'static str, String)> {
    with(|s| {
        let mut h = s.cors().headers();
        h.push(("Cache-Control", s.cache_control(status, Kind::Vod).into_owned()));
        h
    })
    .unwrap_or_default()
}

/// The answer to a CORS preflight under the request's policy.
pub fn preflight(keep_alive: bool) -> (u16, Vec<u8>) {
    with(|s| {
        s.cors()
            .preflight(s.origin.as_deref(), s.tenant.as_deref(), keep_alive)
    })
    .unwrap_or_else(|| Cors::Any.preflight(None, None, keep_alive))
}
