//! Webhook notifications: a thread that, while this instance leads, POSTs each job's
//! notifiable events (a target done / failed / timed out, the job's end) in order to the job's
//! `notify_url` as JSON with an `Idempotency-Key` (`{job}:{seq}`), and records the last one
//! the receiver acknowledged (2xx) in the job record. Delivery is at least once: a crash
//! between the POST and the commit sends that event again with the same key, which the
//! receiver uses to drop the repeat. Failures are retried with exponential backoff (250 ms to
//! 30 s) per job, without holding up other jobs' notifications.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::model::Job;
use super::store;
use crate::leader::Leadership;
use crate::registry::RegistryStore;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Starts the notifier thread; it ends when the store is gone.
pub fn spawn(store: std::sync::Weak<dyn RegistryStore>, leadership: Arc<Leadership>) -> std::io::Result<()> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(5)))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    std::thread::Builder::new()
        .name("strata-job-notify".into())
        .spawn(move || {
            let mut backoff: HashMap<String, (Instant, Duration)> = HashMap::new();
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let Some(store) = store.upgrade() else { return };
                let Some(guard) = leadership.guard() else { continue };
                let jobs = match store::list(store.as_ref()) {
                    Ok(j) => j,
                    Err(e) => {
                        tracing::warn!(error = %e, "notifier: listing jobs failed");
                        continue;
                    }
                };
                for job in jobs {
                    let Some(url) = job.notify_url.clone() else { continue };
                    if backoff.get(&job.id).is_some_and(|(at, _)| *at > Instant::now()) {
                        continue;
                    }
                    let Some(event) = job.events.iter().find(|e| e.seq > job.notified_seq && e.notifies()) else {
                        // Only non-notifying events are new: move past them.
                        if let Some(last) = job.events.last().filter(|l| l.seq > job.notified_seq) {
                            let seq = last.seq;
                            let _ = advance(store.as_ref(), &job.id, seq, &guard);
                        }
                        continue;
                    };
                    let body = payload(&job, event);
                    let key = format!("{}:{}", job.id, event.seq);
                    let sent = agent
                        .post(&url)
                        .header("idempotency-key", &key)
                        .header("content-type", "application/json")
                        .send(body.to_string());
                    let ok = match &sent {
                        Ok(r) => (200..300).contains(&r.status().as_u16()),
                        Err(_) => false,
                    };
                    if ok {
                        backoff.remove(&job.id);
                        if let Err(e) = advance(store.as_ref(), &job.id, event.seq, &guard) {
                            tracing::warn!(job = %job.id, error = %e.message, "recording a delivered notification failed; it is sent again");
                        }
                    } else {
                        let why = match sent {
                            Ok(r) => format!("answered {}", r.status()),
                            Err(e) => e.to_string(),
                        };
                        let next = backoff
                            .get(&job.id)
                            .map_or(FIRST_BACKOFF, |(_, d)| (*d * 2).min(MAX_BACKOFF));
                        tracing::warn!(job = %job.id, %url, key = %key, retry_in = ?next, error = %why, "webhook notification failed; will retry");
                        backoff.insert(job.id.clone(), (Instant::now() + next, next));
                    }
                }
            }
        })?;
    Ok(())
}

fn advance(
    store: &dyn RegistryStore,
    id: &str,
    seq: u64,
    guard: &crate::registry::Guard,
) -> Result<(), crate::api_error::ApiError> {
    store::update(store, id, Some(guard), |j| {
        if j.notified_seq >= seq {
            return Ok(false);
        }
        j.notified_seq = seq;
        Ok(true)
    })
    .map(|_| ())
}

/// The JSON a webhook receives.
pub fn payload(job: &Job, event: &super::model::Event) -> serde_json::Value {
    json!({
        "idempotency_key": format!("{}:{}", job.id, event.seq),
        "job": job.id,
        "tenant": job.tenant,
        "content": job.content,
        "job_state": job.state,
        "event": event,
    })
}
