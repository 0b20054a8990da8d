//! Puts each request in its scope (`crate::request_scope`: the tenant's delivery policy, the
//! access log note) and hands the finished note to the access log.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use strata_http::request::RequestHead;

use super::context::ServerContext;
use super::steering::steering_target;
use crate::access_log::record::{tenant_of, AccessRecord, Outcome};
use crate::request_scope::{self, RequestScope};

/// Answers `head` with `answer` inside the request's scope and logs the response.
pub async fn logged<F: Future<Output = bool>>(
    ctx: &ServerContext,
    head: &RequestHead,
    client: Option<SocketAddr>,
    answer: F,
) -> bool {
    let (time, started) = (SystemTime::now(), Instant::now());
    // A steering manifest's path names its tenant after the steering prefix.
    let tenant = match steering_target(&head.path) {
        Some((tenant, _)) => Some(tenant.to_string()),
        None => tenant_of(&head.path),
    };
    let policy = match (&ctx.lookup, &tenant) {
        (Some(lookup), Some(t)) => lookup.delivery(t),
        _ => None,
    };
    let scope = RequestScope::new(head, tenant, policy, ctx.live_playlists.max_age());
    let (keep_alive, scope) = request_scope::run(scope, answer).await;
    if let Some(log) = &ctx.access_log {
        log.submit(scope.record(head, client, time, started));
    }
    keep_alive
}

/// Logs a response sent before a head could be parsed (400, 408, 431, 505; 503 over the
/// connection limit).
pub fn refused(ctx: &ServerContext, client: Option<SocketAddr>, status: u16, response: &[u8]) {
    let Some(log) = &ctx.access_log else { return };
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    log.submit(AccessRecord {
        time: SystemTime::now(),
        client,
        tenant: None,
        method: "-".into(),
        path: "-".into(),
        query: None,
        range: None,
        status,
        bytes: (response.len() - head_end) as u64,
        duration_ms: 0.0,
        outcome: Outcome::Error,
        body_path: "memory",
        upstream: None,
    });
}
