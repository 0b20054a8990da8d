//! Keeps etcd's history bounded: every `COMPACT_EVERY` the registry compacts to the revision it
//! read one period earlier, so a watcher less than a period behind loses nothing and revisions
//! older than two periods are gone. Strata does this itself so an etcd cluster needs no
//! `--auto-compaction-*` flag (one set on the cluster does no harm: compacting twice to an
//! old revision is refused by etcd and ignored here). Several deployments sharing a cluster
//! each compact; the history kept is then the shortest of their periods.

use std::sync::Weak;
use std::time::Duration;

use super::etcd_shared::EtcdShared;

/// Time between two compactions.
const COMPACT_EVERY: Duration = Duration::from_secs(300);

pub(crate) fn spawn(weak: Weak<EtcdShared>) {
    let Some(shared) = weak.upgrade() else { return };
    shared.runtime.spawn(async move {
        let mut previous: Option<i64> = None;
        loop {
            tokio::time::sleep(COMPACT_EVERY).await;
            let Some(shared) = weak.upgrade() else { return };
            let mut client = shared.client.clone();
            let registry = shared.target.to_string();
            let probe = shared.full_key(super::etcd_shared::REVISION_PROBE);
            drop(shared);
            if let Some(rev) = previous.filter(|r| *r > 0) {
                match client.compact(rev, None).await {
                    Ok(_) => tracing::debug!(%registry, revision = rev, "compacted the registry's history"),
                    Err(e) if e.to_string().contains("compacted") => {}
                    Err(e) => tracing::warn!(%registry, revision = rev, error = %e, "compacting the registry failed; will retry"),
                }
            }
            previous = match client.get(probe, None).await {
                Ok(r) => r.header().map(|h| h.revision()),
                Err(_) => previous,
            };
        }
    });
}
