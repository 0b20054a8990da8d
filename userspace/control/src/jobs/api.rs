//! The jobs API: `POST /v1/jobs` (create; a tenant's token only for its own content, 403
//! otherwise), `GET /v1/jobs`, `GET /v1/jobs/{id}` (every target's state, source, bytes and
//! rate), `POST /v1/jobs/{id}/cancel|repair|commands`, `GET /v1/jobs/{id}/events` (server-sent
//! events: every state change in order, from `Last-Event-ID` on, until the job ends), `GET
//! /v1/jobs/{id}/log` (the same events as one JSON document), and the
//! edges' `POST /v1/jobs/agent`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use strata_wire::jobs::{AgentPoll, AgentReply, CommandKind, JobRequest};

use super::agent::{apply_report, assignment, source_urls};
use super::model::{now_ms, JobState};
use super::store;
use crate::api_common::{blocking, ok, role, ApiResult, ApiState};
use crate::api_error::{parse_json, ApiError};
use crate::servers::ServerBook;
use crate::tokens::Role;

/// The jobs routes (merged into the API router).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/jobs", get(list).post(create))
        .route("/v1/jobs/agent", post(agent))
        .route("/v1/jobs/{id}", get(show))
        .route("/v1/jobs/{id}/events", get(events))
        .route("/v1/jobs/{id}/log", get(log))
        .route("/v1/jobs/{id}/{action}", post(action))
}

async fn create(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let r = role(&state, &headers)?;
    let req: JobRequest = parse_json(&body)?;
    r.may_manage(&req.tenant)?;
    let plane = state.plane.clone();
    let job = blocking(move || store::create(plane.store(), &req)).await?;
    tracing::info!(job = %job.id, tenant = %job.tenant, content = %job.content, targets = job.targets.len(), fanout = job.fanout, bytes = job.bytes(), "job created");
    let view = store::view(&job, &Default::default());
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn list(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    let r = role(&state, &headers)?;
    let plane = state.plane.clone();
    let jobs = blocking(move || Ok(store::list(plane.store())?)).await?;
    let rows: Vec<serde_json::Value> = jobs
        .iter()
        .filter(|j| r.may_manage(&j.tenant).is_ok())
        .map(|j| {
            let done = (0..j.targets.len())
                .filter(|&i| j.target_ended(i) && j.targets[i].state == strata_wire::jobs::TargetState::Done)
                .count();
            json!({"id": j.id, "tenant": j.tenant, "content": j.content, "state": j.state, "targets": j.targets.len(), "done": done, "created_ms": j.created_ms, "finished_ms": j.finished_ms})
        })
        .collect();
    ok(json!(rows))
}

/// The job, after checking the caller may see it.
async fn readable(state: &ApiState, headers: &HeaderMap, id: String) -> Result<super::model::Job, ApiError> {
    let r = role(state, headers)?;
    let plane = state.plane.clone();
    let job = blocking(move || store::must_get(plane.store(), &id)).await?;
    r.may_manage(&job.tenant)?;
    Ok(job)
}

async fn show(State(state): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let job = readable(&state, &headers, id).await?;
    let progress = state.plane.jobs_board.of(&job.id);
    ok(store::view(&job, &progress))
}

async fn log(State(state): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let job = readable(&state, &headers, id).await?;
    ok(json!({"id": job.id, "state": job.state, "notified_seq": job.notified_seq, "events": job.events}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendCommand {
    command: CommandKind,
}

async fn action(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    readable(&state, &headers, id.clone()).await?;
    let append = match action.as_str() {
        "commands" => Some(parse_json::<AppendCommand>(&body)?.command),
        "cancel" | "repair" => None,
        other => {
            return Err(ApiError::new(
                404,
                format!("no job action {other:?} (cancel, repair, commands)"),
            ))
        }
    };
    let plane = state.plane.clone();
    let what = action.clone();
    let (job, requeued) = blocking(move || {
        let mut requeued = 0;
        let job = store::update(plane.store(), &id, None, |j| {
            let now = now_ms();
            match what.as_str() {
                "cancel" => {
                    if j.state != JobState::Running {
                        return Err(ApiError::new(
                            409,
                            format!("job {} already ended ({:?})", j.id, j.state),
                        ));
                    }
                    j.cancel(now);
                }
                "repair" => {
                    if j.state == JobState::Cancelled {
                        return Err(ApiError::new(
                            409,
                            format!("job {} was cancelled; create a new one", j.id),
                        ));
                    }
                    requeued = j.repair(now);
                    if requeued == 0 {
                        return Ok(false);
                    }
                }
                _ => {
                    if j.state == JobState::Cancelled {
                        return Err(ApiError::new(409, format!("job {} was cancelled", j.id)));
                    }
                    if let Some(kind) = append {
                        j.append(kind, now);
                    }
                }
            }
            Ok(true)
        })?
        .ok_or_else(|| ApiError::new(404, format!("no job {id}")))?;
        Ok((job, requeued))
    })
    .await?;
    tracing::info!(job = %job.id, action = %action, requeued, "job changed by the operator");
    let mut view = store::view(&job, &state.plane.jobs_board.of(&job.id));
    view["requeued"] = json!(requeued);
    ok(view)
}

async fn events(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = readable(&state, &headers, id.clone()).await?;
    let from: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let plane = state.plane.clone();
    let initial: VecDeque<super::model::Event> =
        job.events.iter().filter(|e| e.seq > from).cloned().collect();
    let last = initial.back().map_or(from, |e| e.seq);
    let ended = job.state != JobState::Running;
    // State: (queued events, last seq queued, job ended when last read).
    let stream =
        futures_util::stream::unfold((initial, last, ended), move |(mut queue, mut last, mut ended)| {
            let plane = plane.clone();
            let id = id.clone();
            async move {
                loop {
                    if let Some(e) = queue.pop_front() {
                        let ev = SseEvent::default()
                            .id(e.seq.to_string())
                            .event(if e.target.is_some() { "target" } else { "job" })
                            .json_data(&e)
                            .unwrap_or_default();
                        return Some((Ok::<_, Infallible>(ev), (queue, last, ended)));
                    }
                    if ended {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let p = plane.clone();
                    let i = id.clone();
                    let read = tokio::task::spawn_blocking(move || store::get(p.store(), &i)).await;
                    let Ok(Ok(Some((job, _)))) = read else { continue };
                    for e in job.events.iter().filter(|e| e.seq > last) {
                        queue.push_back(e.clone());
                    }
                    last = queue.back().map_or(last, |e| e.seq);
                    ended = job.state != JobState::Running;
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

async fn agent(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let r = role(&state, &headers)?;
    let poll: AgentPoll = parse_json(&body)?;
    match &r {
        Role::Service { server } if *server == poll.server => {}
        Role::Service { server } => {
            return Err(ApiError::new(
                403,
                format!("this token belongs to server {server}, not {}", poll.server),
            ))
        }
        _ => {
            return Err(ApiError::new(
                403,
                "only edges' service tokens poll for job commands",
            ))
        }
    }
    let plane = state.plane.clone();
    let reply = blocking(move || {
        let store = plane.store();
        for report in &poll.reports {
            let mut fresh = Vec::new();
            let updated = store::update(store, &report.job, None, |j| {
                let before = j.events.len();
                let changed = apply_report(j, &poll.server, report, now_ms(), &plane.jobs_board);
                fresh = j.events[before..].to_vec();
                Ok(changed)
            })?;
            if let Some(j) = updated {
                super::model::log_events(&j.id, &fresh);
            }
        }
        let urls = source_urls(&ServerBook::all(store)?);
        let assignments = store::list(store)?
            .iter()
            .filter_map(|j| assignment(j, &poll.server, &urls))
            .collect();
        Ok(AgentReply {
            assignments,
            peer_key: Some(peer_key(&plane.placement_key)),
        })
    })
    .await?;
    ok(serde_json::to_value(reply).unwrap_or_default())
}

/// The key edges serve each other with: derived from the placement key (SHA-256 of it and a
/// label), so an edge never learns the key storage servers accept placements with.
pub fn peer_key(placement_key: &str) -> String {
    use sha2::{Digest, Sha256};
    strata_wire::content_digest::hex(&Sha256::digest(format!("{placement_key}:peer").as_bytes()))
}
