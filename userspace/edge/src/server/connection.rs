//! One client connection: the seed's service co-routine, as a tokio task.
//!
//! While idle the task holds no read buffer: it waits for readability, then reads the request
//! head into a per-thread scratch buffer (a heap buffer only for heads that arrive in pieces or
//! for pipelined leftovers). Everything a request needs lives in a boxed future that exists only
//! while it is served, so an idle keep-alive connection costs little more than its socket. The
//! asset last served stays open for the life of the connection, as the seed does for
//! persistent connections. HTTPS connections are served by the same code through
//! [`ClientStream`]; they are never parked (the TLS session lives in the task).

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::conn_slot::{CachedAsset, ConnSlot};
use super::context::ServerContext;
use super::lingering_close::lingering_close;
use super::request_log;
use super::signed_access;
use super::steering::{is_multivariant, manifest, steer_playlist, steering_target, Steering, MAX_PLAYLIST};
use crate::access_log::record::Outcome;
use crate::cache::admission::Decision;
use crate::cache::fill::spawn_fill;
use crate::cache::fill_reader::{serve_from_fill, FromFill, Viewer};
use crate::client_stream::ClientStream;
use crate::delivery_policy::Kind;
use crate::director::peer_fetch::{direct, hop_miss, PeerStep};
use crate::file_store::{advise, content_type, OpenAsset, StoreError};
use crate::request_scope::{self, note_outcome};
use crate::server::miss_policy::MissPolicy;
use crate::small_bodies::SmallBody;
use crate::upstream::proxy::{proxy, ProxyResult};
use strata_http::content_path::{ContentPath, PathError};
use strata_http::file_plan::{plan_file_response, FilePlan, PlanError, Validators};
use strata_http::request::{parse_request_head, HeadError, Method, RequestHead};
use strata_http::response::{error_response, HeadBuilder};
use strata_http::signed_url::SignedParams;
use strata_kernel::body_meter::{BodyMeter as _, BodyPathLabel};
use strata_kernel::body_path::{BodyError, FileSpan};
use strata_kernel::socket_opts::set_cork;

/// Read-ahead window hinted at the start of every body.
const READ_AHEAD: u64 = 4 << 20;

/// Per-connection state kept between requests.
struct ConnState {
    stream: ClientStream,
    /// Bytes of the next (pipelined) request already read.
    leftover: Option<Vec<u8>>,
    /// The asset served last, kept open.
    open_asset: Option<CachedAsset>,
}

fn path_key(path: &ContentPath) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

/// Size of the per-thread scratch buffer request heads are first read into.
const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH].into_boxed_slice());
}

/// What the first read of a request produced.
enum FirstRead {
    /// The readiness was spurious: no byte to read (tokio's readiness is now cleared).
    Nothing,
    Done(HeadRead),
    /// Bytes of a head not yet complete (possibly none): continue with a heap buffer.
    Partial(Vec<u8>),
}

/// Reads whatever the socket has into the thread's scratch buffer and parses a head from it,
/// without awaiting: the common case (a whole head in one segment) allocates nothing.
fn read_first(state: &mut ConnState, max_header_bytes: usize) -> FirstRead {
    SCRATCH_BUF.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let room = max_header_bytes.min(scratch.len());
        let n = match state.stream.try_read(&mut scratch[..room]) {
            Ok(0) => return FirstRead::Done(HeadRead::Gone),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return FirstRead::Nothing,
            Err(_) => return FirstRead::Done(HeadRead::Gone),
        };
        match parse_request_head(&scratch[..n]) {
            Ok(Some((head, used))) => {
                if used < n {
                    state.leftover = Some(scratch[used..n].to_vec());
                }
                FirstRead::Done(HeadRead::Head(head))
            }
            Ok(None) => FirstRead::Partial(scratch[..n].to_vec()),
            Err(e) => FirstRead::Done(refusal(e)),
        }
    })
}

/// The response that ends a connection whose head could not be parsed.
fn refusal(e: HeadError) -> HeadRead {
    let status = match e {
        HeadError::TooManyHeaders => 431,
        HeadError::Version => 505,
        HeadError::Malformed(_) => 400,
    };
    HeadRead::Refuse(status, e.to_string())
}

/// Serves a plain TCP connection (see [`serve_client`]; no future of its own around it).
pub fn serve_connection(
    stream: TcpStream,
    ctx: Arc<ServerContext>,
    slot: ConnSlot,
    open_asset: Option<CachedAsset>,
) -> impl std::future::Future<Output = ()> + Send {
    serve_client(ClientStream::Plain(stream), ctx, slot, open_asset)
}

/// Serves `stream` until the client leaves, asks to close, errs or times out, or (plain TCP)
/// goes quiet for `park_after` (then it is handed to the idle parker and this task ends).
pub async fn serve_client(
    stream: ClientStream,
    ctx: Arc<ServerContext>,
    slot: ConnSlot,
    open_asset: Option<CachedAsset>,
) {
    let mut state = ConnState {
        stream,
        leftover: None,
        open_asset,
    };
    let limits = &ctx.limits;
    let park = ctx.parker.is_some()
        && !state.stream.is_tls()
        && !limits.park_after.is_zero()
        && limits.park_after < limits.idle_timeout;
    let wait = if park {
        limits.park_after
    } else {
        limits.idle_timeout
    };
    loop {
        let first = if state.leftover.is_none() {
            match tokio::time::timeout(wait, state.stream.readable()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) if park => return park_connection(state, &ctx, slot),
                Err(_) => {
                    ctx.metrics.timeout();
                    break;
                }
            }
            // Read before building the request's (boxed) state: a spurious wake-up, which
            // tokio reports for fresh sockets, must not allocate anything.
            // TLS: bytes on the socket that make no whole record yet are a head arriving:
            // they get the head timeout, not the idle one (a record trickled byte by byte
            // cannot hold the connection forever).
            let tls_bytes = state.stream.is_tls() && state.stream.socket_has_bytes();
            match read_first(&mut state, ctx.limits.max_header_bytes) {
                FirstRead::Nothing if tls_bytes => Some(FirstRead::Partial(Vec::new())),
                FirstRead::Nothing => continue,
                other => Some(other),
            }
        } else {
            None
        };
        if !Box::pin(serve_one(&mut state, &ctx, first)).await {
            break;
        }
    }
}

/// Hands a quiet connection to the idle parker for the rest of its idle timeout.
fn park_connection(state: ConnState, ctx: &ServerContext, slot: ConnSlot) {
    let Some(parker) = &ctx.parker else { return };
    let ConnState {
        stream: ClientStream::Plain(stream),
        open_asset,
        ..
    } = state
    else {
        return;
    };
    match stream.into_std() {
        Ok(stream) => {
            let deadline = Instant::now() + ctx.limits.idle_timeout.saturating_sub(ctx.limits.park_after);
            parker.park(stream, open_asset, slot, deadline);
        }
        Err(e) => tracing::debug!(error = %e, "could not park an idle connection; closing it"),
    }
}

/// What reading a request head produced.
enum HeadRead {
    Head(RequestHead),
    /// The client closed or the socket failed: close without a response.
    Gone,
    /// A response that ends the connection (400, 408, 431, 505).
    Refuse(u16, String),
}

/// Serves one request. Returns whether the connection stays open.
async fn serve_one(state: &mut ConnState, ctx: &ServerContext, first: Option<FirstRead>) -> bool {
    let mut head = match read_head(state, ctx, first).await {
        HeadRead::Head(h) => h,
        HeadRead::Gone => return false,
        HeadRead::Refuse(status, message) => {
            let bytes = error_response(status, &message, false, &[]);
            let client = ctx
                .access_log
                .as_ref()
                .and_then(|_| state.stream.peer_addr().ok());
            request_log::refused(ctx, client, status, &bytes);
            if respond(state, ctx, status, bytes).await {
                let limits = &ctx.limits;
                lingering_close(&mut state.stream, limits.lingering_time, limits.lingering_timeout).await;
            }
            return false;
        }
    };
    if ctx.drain.is_draining() {
        // A successor serves new connections: this response is this connection's last.
        head.keep_alive = false;
    }
    let client = ctx
        .access_log
        .as_ref()
        .and_then(|_| state.stream.peer_addr().ok());
    request_log::logged(ctx, &head, client, respond_to(state, ctx, &head)).await
}

/// Answers one parsed request. Returns whether the connection stays open.
async fn respond_to(state: &mut ConnState, ctx: &ServerContext, head: &RequestHead) -> bool {
    let keep_alive = head.keep_alive;
    let (status, bytes) = match answer(state, ctx, head).await {
        Answer::Done(ok) => return ok && keep_alive,
        Answer::Error(status, message, mut extra) => {
            extra.extend(request_scope::error_headers(status));
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            (status, error_response(status, &message, keep_alive, &extra))
        }
    };
    respond(state, ctx, status, bytes).await && keep_alive
}

/// Reads until one complete request head is buffered, within the header timeout and size limit.
async fn read_head(state: &mut ConnState, ctx: &ServerContext, first: Option<FirstRead>) -> HeadRead {
    let limits = &ctx.limits;
    // A head already read by the idle loop comes first; its pipelined successors, if any,
    // wait in `leftover` for the next round.
    let mut buf = match first {
        Some(FirstRead::Done(r)) => return r,
        Some(FirstRead::Partial(b)) => b,
        Some(FirstRead::Nothing) | None => state.leftover.take().unwrap_or_default(),
    };
    let deadline = tokio::time::Instant::now() + limits.header_read_timeout;
    loop {
        if !buf.is_empty() {
            match parse_request_head(&buf) {
                Ok(Some((head, used))) => {
                    buf.drain(..used);
                    if !buf.is_empty() {
                        state.leftover = Some(buf);
                    }
                    return HeadRead::Head(head);
                }
                Ok(None) if buf.len() >= limits.max_header_bytes => {
                    return HeadRead::Refuse(
                        431,
                        format!("request head larger than {} bytes", limits.max_header_bytes),
                    );
                }
                Ok(None) => {}
                Err(e) => return refusal(e),
            }
        }
        // Grow the buffer geometrically, never past the head limit, so one read cannot
        // take more than max_header_bytes.
        let target = limits.max_header_bytes.min((buf.len() * 2).max(2048));
        if buf.capacity() < target {
            buf.reserve_exact(target - buf.len());
        }
        match tokio::time::timeout_at(deadline, state.stream.readable()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return HeadRead::Gone,
            Err(_) => {
                ctx.metrics.timeout();
                if buf.is_empty() {
                    return HeadRead::Gone;
                }
                return HeadRead::Refuse(
                    408,
                    format!(
                        "request head not complete within {:?}",
                        limits.header_read_timeout
                    ),
                );
            }
        }
        match state.stream.try_read_buf(&mut buf) {
            Ok(0) => return HeadRead::Gone,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return HeadRead::Gone,
        }
    }
}

/// How a request was answered.
enum Answer {
    /// The response went out (true) or the connection broke mid-response (false).
    Done(bool),
    /// An error response to send: status, one-line message, extra headers.
    Error(u16, String, Vec<(&'static str, String)>),
}

async fn answer(state: &mut ConnState, ctx: &ServerContext, head: &RequestHead) -> Answer {
    let method = head.method();
    if let Method::Other(m) = method {
        if m == "OPTIONS" {
            note_outcome(Outcome::Generated);
            let (status, bytes) = request_scope::preflight(head.keep_alive);
            return Answer::Done(respond(state, ctx, status, bytes).await);
        }
        return Answer::Error(
            405,
            format!("method {m} not allowed; use GET or HEAD"),
            vec![("Allow", "GET, HEAD, OPTIONS".into())],
        );
    }
    if let (Some(steering), Some((tenant, content))) = (&ctx.steering, steering_target(&head.path)) {
        note_outcome(Outcome::Generated);
        return steering_manifest(state, ctx, head, steering, tenant, content).await;
    }
    let path = match ContentPath::parse(&head.path) {
        Ok(p) => p,
        Err(e @ PathError::Bad(_)) => return Answer::Error(400, e.to_string(), vec![]),
        Err(e @ PathError::NotContent) => return Answer::Error(404, e.to_string(), vec![]),
    };
    let signed = match signed_access::check(ctx, &path, head.query.as_deref(), || {
        state.stream.peer_addr().ok().map(|a| a.ip())
    }) {
        Ok(signed) => signed,
        Err(e) => return Answer::Error(e.status(), e.to_string(), vec![]),
    };
    let ctype = content_type(&path.asset);
    // A live stream's playlist changes every segment: never from the disk, where a recording
    // archived earlier under the same key may lie.
    if path.asset.ends_with(".m3u8") && ctx.lookup.as_ref().is_some_and(|l| l.live(&path).is_some()) {
        return miss(state, ctx, head, &path, head.path.clone(), signed.as_ref()).await;
    }
    // Small files are served from memory, except playlists rewritten per viewer.
    let rewritten = path.asset.ends_with(".m3u8") && (ctx.steering.is_some() || signed.is_some());
    if let Some(small) = (!rewritten).then(|| ctx.store.small_body(&path)).flatten() {
        note_outcome(Outcome::Hit);
        note_hit(ctx, &path, small.identity.len);
        return memory_hit(state, ctx, head, ctype, &small).await;
    }
    let asset = match cached_or_open(state, ctx, &path) {
        Ok(a) => {
            note_outcome(Outcome::Hit);
            note_hit(ctx, &path, a.len);
            a
        }
        Err(StoreError::NotFound(_)) if head.hop => {
            let message = hop_miss(ctx.director.as_deref(), ctx.cache.as_deref(), &path.relative());
            return Answer::Error(404, message, vec![]);
        }
        Err(StoreError::NotFound(p)) => return miss(state, ctx, head, &path, p, signed.as_ref()).await,
        Err(e @ StoreError::Forbidden(_)) => return Answer::Error(403, e.to_string(), vec![]),
        Err(e) => {
            tracing::error!(error = %e, "opening asset failed");
            return Answer::Error(500, "could not read the asset".into(), vec![]);
        }
    };
    if let (Some(steering), true) = (&ctx.steering, path.asset.ends_with(".m3u8")) {
        if let Some(text) = multivariant_text(&asset) {
            return steered_playlist(state, ctx, head, steering, &path, &text, signed.as_ref()).await;
        }
    }
    if let (Some(params), true) = (&signed, path.asset.ends_with(".m3u8")) {
        if let Some(text) = playlist_text(&asset) {
            let body = signed_access::propagate(&text, params);
            return small_body(state, ctx, head, "application/vnd.apple.mpegurl", body.as_bytes()).await;
        }
    }
    if let Some(small) = (!rewritten)
        .then(|| ctx.store.keep_small(&path, &asset))
        .flatten()
    {
        return memory_hit(state, ctx, head, ctype, &small).await;
    }
    let etag = asset.etag();
    let validators = Validators {
        len: asset.len,
        etag: &etag,
        mtime: asset.mtime,
    };
    let plan = match plan_or_error(head, validators) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let head_bytes = file_head(head, &plan, ctype, &etag, &asset.last_modified(), asset.len);
    ctx.metrics.response(plan.status);
    let body = match (plan.send_body, plan.body) {
        (true, Some(body)) => body,
        _ => return Answer::Done(write_all(state, ctx, &head_bytes).await),
    };
    advise(
        &asset.file,
        libc::POSIX_FADV_WILLNEED,
        body.start,
        body.len().min(READ_AHEAD),
    );
    // Cork so the head and the first body bytes leave together; uncorking flushes the tail.
    let corked = set_cork(state.stream.tcp(), true).is_ok();
    if !write_all(state, ctx, &head_bytes).await {
        return Answer::Done(false);
    }
    let span = FileSpan {
        offset: body.start,
        len: body.len(),
    };
    let sent = state
        .stream
        .send_file(
            &ctx.body_path,
            &asset.file,
            span,
            ctx.limits.send_stall_timeout,
            ctx.metrics.as_ref(),
        )
        .await;
    if corked {
        let _ = set_cork(state.stream.tcp(), false);
    }
    match sent {
        Ok(()) => Answer::Done(true),
        Err(e) => {
            match &e {
                BodyError::Truncated { .. } => {
                    tracing::warn!(path = %head.path, error = %e, "body cut short; closing connection")
                }
                BodyError::Stalled(_) => ctx.metrics.timeout(),
                _ => tracing::debug!(error = %e, "body not delivered; closing connection"),
            }
            Answer::Done(false)
        }
    }
}

/// Plans a file response, or the error answer for a request the file cannot answer.
fn plan_or_error(head: &RequestHead, v: Validators<'_>) -> Result<FilePlan, Answer> {
    plan_file_response(head, v).map_err(|e| match e {
        e @ PlanError::BadQuery(_) => Answer::Error(400, e.to_string(), vec![]),
        e @ PlanError::Unsatisfiable { len, .. } => Answer::Error(
            416,
            e.to_string(),
            vec![("Content-Range", format!("bytes */{len}"))],
        ),
    })
}

/// The head of a response from a file of `len` bytes (from disk or memory).
fn file_head(
    head: &RequestHead,
    plan: &FilePlan,
    ctype: &str,
    etag: &str,
    last_modified: &str,
    len: u64,
) -> Vec<u8> {
    let mut builder = HeadBuilder::new(plan.status);
    if plan.status != 304 {
        builder = builder
            .header("Content-Type", ctype)
            .header_u64("Content-Length", plan.body.map_or(0, |b| b.len()));
    }
    builder = request_scope::decorate(builder.header("Accept-Ranges", "bytes"), plan.status, Kind::Vod)
        .header("ETag", etag)
        .header("Last-Modified", last_modified);
    if let (true, Some(body)) = (plan.partial, plan.body) {
        builder = builder.content_range(body, len);
    }
    builder.connection(head.keep_alive).finish()
}

/// A hit on a small file held in memory: head and body leave in one writev.
async fn memory_hit(
    state: &mut ConnState,
    ctx: &ServerContext,
    head: &RequestHead,
    ctype: &str,
    small: &SmallBody,
) -> Answer {
    let etag = small.etag();
    let validators = Validators {
        len: small.identity.len,
        etag: &etag,
        mtime: small.identity.mtime,
    };
    let plan = match plan_or_error(head, validators) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let response = file_head(
        head,
        &plan,
        ctype,
        &etag,
        &small.last_modified(),
        small.identity.len,
    );
    ctx.metrics.response(plan.status);
    let body = match (plan.send_body, plan.body) {
        // The plan's range is inclusive and within the length the bytes were read at.
        (true, Some(body)) => match small.bytes.get(body.start as usize..=body.end as usize) {
            Some(bytes) => bytes,
            None => return Answer::Error(500, "small body shorter than its length".into(), vec![]),
        },
        _ => &[][..],
    };
    if !body.is_empty() {
        ctx.metrics.body_started(BodyPathLabel::Memory);
    }
    let sent = write_parts(state, ctx, &response, body).await;
    if sent && !body.is_empty() {
        ctx.metrics.body_bytes(BodyPathLabel::Memory, body.len() as u64);
    }
    Answer::Done(sent)
}

/// Tells the cache (recency) and the demand counter (syncd) about a hit.
fn note_hit(ctx: &ServerContext, path: &ContentPath, len: u64) {
    if ctx.cache.is_some() || ctx.demand.is_some() {
        let rel = path.relative();
        if let Some(cache) = &ctx.cache {
            cache.hit(&rel, len);
        }
        if let Some(demand) = &ctx.demand {
            demand.record(rel, len);
        }
    }
}

/// The text of `asset` if it is a multivariant playlist small enough to rewrite.
fn multivariant_text(asset: &OpenAsset) -> Option<String> {
    playlist_text(asset).filter(|text| is_multivariant(text))
}

/// A playlist small enough to rewrite, as text.
fn playlist_text(asset: &OpenAsset) -> Option<String> {
    use std::os::unix::fs::FileExt as _;
    if asset.len > MAX_PLAYLIST {
        return None;
    }
    let mut buf = vec![0u8; asset.len as usize];
    asset.file.read_exact_at(&mut buf, 0).ok()?;
    String::from_utf8(buf).ok()
}

/// Sends a small in-memory body (`HEAD` gets the head alone).
async fn small_body(
    state: &mut ConnState,
    ctx: &ServerContext,
    head: &RequestHead,
    ctype: &str,
    body: &[u8],
) -> Answer {
    let bytes = HeadBuilder::new(200)
        .header("Content-Type", ctype)
        .header_u64("Content-Length", body.len() as u64);
    let bytes = request_scope::decorate(bytes, 200, Kind::Generated)
        .connection(head.keep_alive)
        .finish();
    ctx.metrics.response(200);
    if !write_all(state, ctx, &bytes).await {
        return Answer::Done(false);
    }
    if head.method() == &Method::Head {
        return Answer::Done(true);
    }
    Answer::Done(write_memory_body(state, ctx, body).await)
}

/// The multivariant playlist with a pathway per region and the steering tag.
async fn steered_playlist(
    state: &mut ConnState,
    ctx: &ServerContext,
    head: &RequestHead,
    steering: &Steering,
    path: &ContentPath,
    text: &str,
    signed: Option<&SignedParams>,
) -> Answer {
    let (Ok(client), Ok(local)) = (state.stream.peer_addr(), state.stream.local_addr()) else {
        return Answer::Done(false);
    };
    let mut steered = steer_playlist(steering, client.ip(), text, &path.tenant, &path.content_id, local);
    if let Some(params) = signed {
        steered = signed_access::propagate(&steered, params);
    }
    small_body(
        state,
        ctx,
        head,
        "application/vnd.apple.mpegurl",
        steered.as_bytes(),
    )
    .await
}

/// The steering manifest for this client; its report goes to the control agent.
async fn steering_manifest(
    state: &mut ConnState,
    ctx: &ServerContext,
    head: &RequestHead,
    steering: &Steering,
    tenant: &str,
    content: &str,
) -> Answer {
    let Ok(client) = state.stream.peer_addr() else {
        return Answer::Done(false);
    };
    let query = head
        .path
        .split_once('?')
        .map(|(_, q)| q)
        .or(head.query.as_deref());
    let (body, report) = manifest(steering, client.ip(), tenant, content, query);
    if let (Some(report), Some(tx)) = (report, &ctx.player_reports) {
        let _ = tx.try_send(report);
    }
    small_body(state, ctx, head, "application/json", body.as_bytes()).await
}

/// An asset the store does not hold: proxy it, redirect to a storage server, or 404, as the
/// miss policy says.
async fn miss(
    state: &mut ConnState,
    ctx: &ServerContext,
    head: &RequestHead,
    path: &ContentPath,
    shown: String,
    signed: Option<&SignedParams>,
) -> Answer {
    let not_found = || Answer::Error(404, format!("no such asset {shown}"), vec![]);
    let (MissPolicy::Proxy | MissPolicy::Redirect, Some(lookup)) = (ctx.miss, &ctx.lookup) else {
        return not_found();
    };
    ctx.metrics.miss();
    note_outcome(Outcome::Miss);
    if let Some(demand) = &ctx.demand {
        demand.record(path.relative(), 0);
    }
    let live = lookup.live(path);
    if live.is_some() {
        note_outcome(Outcome::Live);
    }
    if let (Some(live), true) = (&live, path.asset.ends_with(".m3u8")) {
        let servers = ctx.upstream.order(std::slice::from_ref(live));
        return live_playlist(state, ctx, head, &servers, signed).await;
    }
    let clusters = match live {
        Some(live) => vec![live],
        None => lookup.locate(path),
    };
    if clusters.is_empty() {
        return Answer::Error(
            404,
            format!(
                "no such asset {shown} (tenant {} unknown to this edge)",
                path.tenant
            ),
            vec![],
        );
    }
    // Signed URLs may bind the viewer's address, which a peer would see as this edge's:
    // those misses go to the storage tier.
    if let (Some(director), None) = (&ctx.director, signed) {
        let stall = ctx.limits.send_stall_timeout;
        let rel = path.relative();
        match direct(
            director,
            &mut state.stream,
            head,
            &rel,
            &ctx.upstream,
            &ctx.metrics,
            stall,
        )
        .await
        {
            PeerStep::Served { keep_alive } => {
                note_outcome(Outcome::Peer);
                return Answer::Done(keep_alive);
            }
            PeerStep::Redirect(location) => {
                let message = format!("asset is at {location}");
                return Answer::Error(302, message, vec![("Location", location)]);
            }
            PeerStep::Storage => {}
        }
    }
    let servers = ctx.upstream.order(&clusters);
    if let (Some(params), true) = (signed, path.asset.ends_with(".m3u8")) {
        // A signed playlist is rewritten for its viewer, so it is fetched into memory.
        return live_playlist(state, ctx, head, &servers, Some(params)).await;
    }
    if ctx.miss == MissPolicy::Redirect {
        let Some(server) = servers.first() else {
            return not_found();
        };
        let query = head.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
        let location = format!("http://{server}{}{query}", head.path);
        return Answer::Error(
            302,
            format!("asset is at {location}"),
            vec![("Location", location)],
        );
    }
    if let Some(answer) = fill_while_serving(state, ctx, head, path, &servers).await {
        return answer;
    }
    match proxy(
        &mut state.stream,
        head,
        &servers,
        &ctx.upstream,
        &ctx.metrics,
        ctx.limits.send_stall_timeout,
    )
    .await
    {
        ProxyResult::Sent {
            keep_alive, lost_on, ..
        } => {
            if let Some(tx) = &ctx.failed_reads {
                for server in lost_on {
                    let _ = tx.send((path.relative(), server));
                }
            }
            Answer::Done(keep_alive)
        }
        ProxyResult::Failed { status, message } => Answer::Error(status, message, vec![]),
    }
}

/// A GET miss the cache admits (or whose fill already runs) is served from that fill as it is
/// written: the origin sends the asset once, for the cache and every viewer. `None`: proxy it.
async fn fill_while_serving(
    state: &mut ConnState,
    ctx: &ServerContext,
    head: &RequestHead,
    path: &ContentPath,
    servers: &[std::net::SocketAddr],
) -> Option<Answer> {
    let cache = ctx.cache.as_ref().filter(|_| head.method() == &Method::Get)?;
    let rel = path.relative();
    let counters = &cache.counters;
    let followed = match cache.decide(&rel, Instant::now()) {
        Decision::Fill => {
            let raw = head.path.clone();
            let fill = spawn_fill(
                cache.clone(),
                ctx.upstream.clone(),
                path.clone(),
                raw,
                servers.to_vec(),
            );
            Some((fill, &counters.served_own_fill))
        }
        // A fill pushed by syncd is followed too; one that just ended leaves a proxy.
        Decision::Filling => cache.fills.get(&rel).map(|f| (f, &counters.served_joined_fill)),
        Decision::Skip { .. } => None,
    };
    let proxied = || {
        counters
            .served_proxied
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        None
    };
    let Some((fill, counter)) = followed else {
        return proxied();
    };
    note_outcome(Outcome::Fill);
    let viewer = Viewer {
        client: &mut state.stream,
        head,
        content_type: content_type(&path.asset),
        body_path: &ctx.body_path,
        stall: ctx.limits.send_stall_timeout,
        metrics: &ctx.metrics,
    };
    match serve_from_fill(viewer, &fill).await {
        FromFill::Unavailable => {
            note_outcome(Outcome::Miss);
            proxied()
        }
        FromFill::Refused(status, message, extra) => Some(Answer::Error(status, message, extra)),
        FromFill::Served(keep_alive) => {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(Answer::Done(keep_alive))
        }
    }
}

/// A playlist served from memory: a live stream's (held while fresh, else one shared fetch
/// from the ingest cluster), or one rewritten for a signed viewer; never admitted to the disk
/// cache.
async fn live_playlist(
    state: &mut ConnState,
    ctx: &ServerContext,
    head: &RequestHead,
    servers: &[std::net::SocketAddr],
    signed: Option<&SignedParams>,
) -> Answer {
    let held = match ctx.live_playlists.get(&ctx.upstream, &head.path, servers).await {
        Ok(h) => h,
        Err((status, message)) => return Answer::Error(status, message, vec![]),
    };
    // Under a signed URL the token goes on to every segment (and the body is this viewer's).
    let rewritten =
        signed.map(|params| signed_access::propagate(&String::from_utf8_lossy(&held.body), params));
    let body: &[u8] = rewritten.as_deref().map_or(&held.body[..], str::as_bytes);
    // A body rewritten for a signed viewer is that viewer's alone.
    let kind = if rewritten.is_some() {
        Kind::Generated
    } else {
        Kind::LivePlaylist
    };
    let builder = HeadBuilder::new(200)
        .header("Content-Type", &held.content_type)
        .header_u64("Content-Length", body.len() as u64)
        .header_u64("Age", held.age());
    let mut builder = request_scope::decorate(builder, 200, kind);
    if let (Some(etag), None) = (&held.etag, &rewritten) {
        builder = builder.header("ETag", etag);
    }
    let bytes = builder.connection(head.keep_alive).finish();
    ctx.metrics.response(200);
    if !write_all(state, ctx, &bytes).await {
        return Answer::Done(false);
    }
    if head.method() == &Method::Head {
        return Answer::Done(true);
    }
    Answer::Done(write_memory_body(state, ctx, body).await)
}

/// Returns the open asset for `path`, reusing the connection's descriptor while the file is
/// unchanged.
fn cached_or_open(
    state: &mut ConnState,
    ctx: &ServerContext,
    path: &ContentPath,
) -> Result<OpenAsset, StoreError> {
    let key = path_key(path);
    if let Some(cached) = &state.open_asset {
        if cached.key == key && ctx.store.still_current(path, &cached.asset) {
            return Ok(cached.asset.clone());
        }
    }
    let asset = ctx.store.open_asset(path)?;
    state.open_asset = Some(CachedAsset {
        key,
        asset: asset.clone(),
    });
    Ok(asset)
}

/// Writes an error or head-only response, counting its status.
async fn respond(state: &mut ConnState, ctx: &ServerContext, status: u16, bytes: Vec<u8>) -> bool {
    ctx.metrics.response(status);
    let sent = write_all(state, ctx, &bytes).await;
    if sent {
        request_scope::note_memory_response(&bytes);
    }
    sent
}

/// Writes a body from memory, noting its bytes for the access log.
async fn write_memory_body(state: &mut ConnState, ctx: &ServerContext, body: &[u8]) -> bool {
    let sent = write_all(state, ctx, body).await;
    if sent {
        request_scope::note_memory_body(body.len() as u64);
    }
    sent
}

async fn write_all(state: &mut ConnState, ctx: &ServerContext, bytes: &[u8]) -> bool {
    write_parts(state, ctx, bytes, &[]).await
}

/// Writes `head` then `body`: first straight into the socket (one writev, no timer: a small
/// response nearly always fits), then what is left within the send-stall timeout.
async fn write_parts(state: &mut ConnState, ctx: &ServerContext, head: &[u8], body: &[u8]) -> bool {
    let written = match state.stream.try_send_now(&[head, body]) {
        Ok(n) => n,
        Err(_) => return false,
    };
    if written == head.len() + body.len() {
        return true;
    }
    let (head_rest, body_rest) = if written < head.len() {
        (&head[written..], body)
    } else {
        (&[][..], &body[written - head.len()..])
    };
    let stall: Duration = ctx.limits.send_stall_timeout;
    let rest = async {
        if !head_rest.is_empty() {
            state.stream.send(head_rest).await?;
        }
        if !body_rest.is_empty() {
            state.stream.send(body_rest).await?;
        }
        Ok::<(), std::io::Error>(())
    };
    match tokio::time::timeout(stall, rest).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            ctx.metrics.timeout();
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn connection_task_future_stays_small() {
        // The future of a connection between requests is what each connection costs until the
        // idle parker takes it (then only a slab entry remains); keep it from growing unnoticed.
        fn size_of_future<F: std::future::Future>(_: &F) -> usize {
            std::mem::size_of::<F>()
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let client = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let ctx = std::sync::Arc::new(super::super::context::test_context());
            let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
            let permit = slots.try_acquire_owned().expect("permit");
            let slot = super::super::conn_slot::ConnSlot::new(permit, ctx.metrics.clone());
            let fut = super::serve_connection(client, ctx, slot, None);
            let size = size_of_future(&fut);
            eprintln!("serve_connection future: {size} bytes");
            assert!(size <= 640, "idle connection future grew to {size} bytes");
        });
    }
}
