//! The registry on an etcd v3 cluster: [`RegistryStore`] with etcd's own revisions, guarded
//! commits as transactions (`Absent` → create_revision = 0, `At` → mod_revision = rev), leases
//! as etcd leases and watches as etcd watches (in `etcd_watch`). The trait is synchronous and is
//! called from API handlers, blocking threads and plain threads alike, so the async client runs
//! on a small runtime the store owns: each call is spawned there and waited for on a std
//! channel (never `block_on`, which would panic inside the caller's runtime). An etcd that does
//! not answer within a few seconds gives [`RegistryError::Unavailable`] (the API's 503); the
//! client reconnects by itself when the cluster is back. History is compacted by strata
//! (`etcd_compaction`), so etcd needs no auto-compaction flag. The client, its runtime and the
//! call machinery live in `etcd_shared`.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp};

use super::registry::{Change, Entry, Guard, LeaseId, Op, RegistryError, RegistryStore, Revision};
use super::registry_url::EtcdTarget;

use super::etcd_shared::EtcdShared;

/// The etcd-backed registry; cheap to clone.
#[derive(Clone)]
pub struct EtcdStore {
    pub(crate) shared: Arc<EtcdShared>,
}

impl EtcdStore {
    /// Connects to `target` (lazily: an unreachable cluster fails the first call, not this) and
    /// starts the compactor.
    pub fn connect(target: &EtcdTarget) -> Result<EtcdStore, RegistryError> {
        let shared = Arc::new(EtcdShared::connect(target)?);
        super::etcd_compaction::spawn(Arc::downgrade(&shared));
        Ok(EtcdStore { shared })
    }

    fn guard(&self, g: &Guard) -> Compare {
        match g {
            Guard::Absent(k) => Compare::create_revision(self.shared.full_key(k), CompareOp::Equal, 0),
            Guard::At(k, rev) => {
                Compare::mod_revision(self.shared.full_key(k), CompareOp::Equal, *rev as i64)
            }
        }
    }

    fn op(&self, op: &Op) -> TxnOp {
        match op {
            Op::Put { key, value, lease } => {
                let options = lease.map(|l| PutOptions::new().with_lease(l.0 as i64));
                TxnOp::put(self.shared.full_key(key), value.clone(), options)
            }
            Op::Delete { key } => TxnOp::delete(self.shared.full_key(key), None::<DeleteOptions>),
        }
    }
}

impl RegistryStore for EtcdStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, RegistryError> {
        let k = self.shared.full_key(key);
        let resp = self.shared.call(&format!("get {key}"), true, move |mut c| {
            let k = k.clone();
            async move { c.get(k, None).await }
        })?;
        resp.kvs().first().map(|kv| self.shared.entry(kv)).transpose()
    }

    fn list(&self, prefix: &str) -> Result<Vec<Entry>, RegistryError> {
        let k = self.shared.full_key(prefix);
        let resp = self.shared.call(&format!("list {prefix}*"), true, move |mut c| {
            let k = k.clone();
            async move { c.get(k, Some(GetOptions::new().with_prefix())).await }
        })?;
        resp.kvs().iter().map(|kv| self.shared.entry(kv)).collect()
    }

    fn commit(&self, guards: &[Guard], ops: &[Op]) -> Result<Option<Revision>, RegistryError> {
        let txn = Txn::new()
            .when(guards.iter().map(|g| self.guard(g)).collect::<Vec<_>>())
            .and_then(ops.iter().map(|o| self.op(o)).collect::<Vec<_>>());
        let what = match ops.first() {
            Some(Op::Put { key, .. }) | Some(Op::Delete { key }) => format!("commit to {key}"),
            None => "commit".to_string(),
        };
        let result = self.shared.call(&what, false, move |mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        });
        let resp = match result {
            Ok(r) => r,
            Err(RegistryError::Storage { message, .. }) if message.contains("lease not found") => {
                let lease = ops.iter().find_map(|o| match o {
                    Op::Put { lease: Some(l), .. } => Some(*l),
                    _ => None,
                });
                return Err(RegistryError::NoLease(lease.unwrap_or(LeaseId(0))));
            }
            Err(e) => return Err(e),
        };
        if !resp.succeeded() {
            return Ok(None);
        }
        Ok(Some(resp.header().map_or(0, |h| h.revision().max(0) as Revision)))
    }

    fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, RegistryError> {
        // etcd counts whole seconds (and raises a TTL below its minimum, about 2 s, to it).
        let secs = ttl.as_millis().div_ceil(1000).max(1) as i64;
        let resp = self.shared.call("grant lease", false, move |mut c| async move {
            c.lease_grant(secs, None).await
        })?;
        Ok(LeaseId(resp.id() as u64))
    }

    fn keep_alive(&self, lease: LeaseId) -> Result<(), RegistryError> {
        // One request on a keep-alive stream; the client reads its answer (TTL 0: expired).
        let result = self.shared.call(
            &format!("keep lease {:x} alive", lease.0),
            true,
            move |mut c| async move { c.lease_keep_alive(lease.0 as i64).await.map(|_| ()) },
        );
        match result {
            Err(RegistryError::Storage { message, .. }) if message.contains("lease not found") => {
                Err(RegistryError::NoLease(lease))
            }
            other => other,
        }
    }

    fn watch(&self, prefix: &str) -> tokio::sync::mpsc::UnboundedReceiver<Change> {
        super::etcd_watch::watch(&self.shared, prefix)
    }

    fn revision(&self) -> Result<Revision, RegistryError> {
        self.shared.revision()
    }
}
