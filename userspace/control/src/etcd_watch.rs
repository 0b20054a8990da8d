//! Watches on etcd for the etcd registry (`EtcdStore`): one task per watcher on the store's
//! runtime, forwarding etcd's events under a prefix as the trait's [`Change`]s. "From now on"
//! means from the revision read when `watch` is called; a broken stream (etcd restarting, a
//! member lost) is opened again from the revision after the last event seen, so nothing is
//! skipped unless it was compacted meanwhile (then it goes on from the compaction point, and
//! says so in the log). The task ends when the receiver is dropped.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::etcd_shared::EtcdShared;
use super::registry::{Change, Revision};

/// Pause before opening a broken watch again.
const RETRY_AFTER: Duration = Duration::from_millis(500);

pub(crate) fn watch(shared: &Arc<EtcdShared>, prefix: &str) -> UnboundedReceiver<Change> {
    let (tx, rx) = unbounded_channel();
    let start = match shared.revision() {
        Ok(r) => Some(r + 1),
        Err(e) => {
            tracing::warn!(error = %e, prefix, "watch: registry unreachable; watching from when it answers");
            None
        }
    };
    let weak = Arc::downgrade(shared);
    let prefix = prefix.to_string();
    shared.runtime.spawn(async move {
        let mut next = start;
        loop {
            let Some(shared) = weak.upgrade() else { return };
            let client = shared.client.clone();
            let key = shared.full_key(&prefix);
            drop(shared);
            tokio::select! {
                _ = tx.closed() => return,
                outcome = follow(client, &weak, &key, &prefix, next, &tx) => {
                    match outcome {
                        Ok(Some(rev)) => next = rev.or(next),
                        Ok(None) => return, // the receiver is gone
                        Err((rev, e)) => {
                            next = rev.or(next);
                            tracing::debug!(error = %e, prefix, "registry watch broke; opening it again");
                        }
                    }
                }
            }
            tokio::time::sleep(RETRY_AFTER).await;
        }
    });
    rx
}

/// Follows one etcd watch stream. `Ok(Some(next))`: the stream ended (reopen from `next`);
/// `Ok(None)`: the receiver is gone; `Err((next, why))`: it broke.
async fn follow(
    mut client: etcd_client::Client,
    weak: &std::sync::Weak<EtcdShared>,
    key: &str,
    prefix: &str,
    mut next: Option<Revision>,
    tx: &UnboundedSender<Change>,
) -> Result<Option<Option<Revision>>, (Option<Revision>, String)> {
    let mut options = if key.is_empty() {
        WatchOptions::new().with_all_keys()
    } else {
        WatchOptions::new().with_prefix()
    };
    if let Some(r) = next {
        options = options.with_start_revision(r as i64);
    }
    let mut stream = client
        .watch(key, Some(options))
        .await
        .map_err(|e| (next, e.to_string()))?;
    loop {
        let Some(resp) = stream.message().await.map_err(|e| (next, e.to_string()))? else {
            return Ok(Some(next));
        };
        if resp.canceled() {
            if resp.compact_revision() > 0 {
                tracing::warn!(
                    prefix,
                    compacted = resp.compact_revision(),
                    "registry watch fell behind a compaction; changes before it are lost"
                );
                next = Some(resp.compact_revision() as Revision);
            }
            return Err((next, format!("watch canceled: {}", resp.cancel_reason())));
        }
        let Some(shared) = weak.upgrade() else {
            return Ok(None);
        };
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let change = match event.event_type() {
                EventType::Put => match shared.entry(kv) {
                    Ok(entry) => Change::Put(entry),
                    Err(e) => {
                        tracing::warn!(error = %e, "registry watch: skipping a key");
                        continue;
                    }
                },
                EventType::Delete => match shared.entry(kv) {
                    Ok(entry) => Change::Delete {
                        key: entry.key,
                        revision: kv.mod_revision().max(0) as Revision,
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "registry watch: skipping a key");
                        continue;
                    }
                },
            };
            next = Some(kv.mod_revision().max(0) as Revision + 1);
            if tx.send(change).is_err() {
                return Ok(None);
            }
        }
    }
}
