//! What the etcd registry's parts share: the etcd client, the small tokio runtime it runs on
//! (owned by the store, shut down without blocking when the last handle goes), and one way to
//! call etcd from synchronous code — spawn on that runtime, wait on a std channel (safe on any
//! thread; `block_on` would panic inside the caller's runtime), retry what is safe to retry,
//! and turn failures into [`RegistryError`]s naming the registry, the operation and the key.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, KeyValue};

use super::registry::{Entry, LeaseId, RegistryError, Revision};
use super::registry_url::EtcdTarget;

/// Longest wait for one etcd request before the registry counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for a TCP/HTTP2 connection to a member.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A key never written, read for the revision in every answer's header.
pub(crate) const REVISION_PROBE: &str = "meta/.revision-probe";

/// What every call shares: the client, the runtime it runs on, and how to name this registry.
pub(crate) struct EtcdShared {
    pub(crate) client: Client,
    /// Where calls, watches and the compactor run.
    pub(crate) runtime: tokio::runtime::Handle,
    /// Owned only to be shut down without blocking on drop (the last handle may go inside
    /// an async context, where dropping a runtime panics).
    owned_runtime: Option<tokio::runtime::Runtime>,
    pub(crate) target: EtcdTarget,
}

impl Drop for EtcdShared {
    fn drop(&mut self) {
        if let Some(rt) = self.owned_runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `fut` on `runtime` and waits for it on a std channel (safe on any thread).
fn wait_on<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<Result<T, tokio::time::error::Elapsed>, std::sync::mpsc::RecvError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(tokio::time::timeout(REQUEST_TIMEOUT, fut).await);
    });
    rx.recv()
}

impl EtcdShared {
    /// Runs `f` (given a client clone) on the store's runtime and waits for its answer;
    /// `what` names the operation and key in errors. A member that cannot be reached, or has
    /// no leader, is tried again (the balanced client then picks another endpoint) until
    /// `REQUEST_TIMEOUT` has passed; `idempotent: false` (a write) retries only when the
    /// request cannot have left (a refused connection), so it never applies twice.
    pub(crate) fn call<T, F, Fut>(&self, what: &str, idempotent: bool, f: F) -> Result<T, RegistryError>
    where
        T: Send + 'static,
        F: Fn(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let client = self.client.clone();
        let attempts = async move {
            loop {
                match f(client.clone()).await {
                    Err(e) if retryable(&e, idempotent) => {
                        tokio::time::sleep(RETRY_AFTER).await;
                        tracing::debug!(error = %e, "registry request failed; trying again");
                    }
                    other => return other,
                }
            }
        };
        match wait_on(&self.runtime, attempts) {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(self.error(what, &e)),
            Ok(Err(_)) => Err(self.unavailable(what, &format!("no answer within {REQUEST_TIMEOUT:?}"))),
            Err(_) => Err(self.unavailable(what, "the registry's runtime stopped")),
        }
    }

    pub(crate) fn unavailable(&self, what: &str, message: &str) -> RegistryError {
        RegistryError::Unavailable {
            registry: self.target.to_string(),
            what: what.into(),
            message: message.into(),
        }
    }

    /// Unreachable or leaderless → `Unavailable`; an unknown lease → `NoLease` (by the
    /// caller); anything else etcd refused → `Storage` naming the operation.
    fn error(&self, what: &str, e: &etcd_client::Error) -> RegistryError {
        if transient(e) {
            self.unavailable(what, &e.to_string())
        } else {
            RegistryError::Storage {
                path: format!("{} ({what})", self.target),
                message: e.to_string(),
            }
        }
    }

    pub(crate) fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.target.prefix)
    }

    /// A stored key-value as the trait's entry (the deployment prefix removed).
    pub(crate) fn entry(&self, kv: &KeyValue) -> Result<Entry, RegistryError> {
        let raw = String::from_utf8_lossy(kv.key());
        let key = raw
            .strip_prefix(self.target.prefix.as_str())
            .ok_or_else(|| RegistryError::Corrupt {
                key: raw.to_string(),
                message: format!("outside the registry prefix {:?}", self.target.prefix),
            })?;
        Ok(Entry {
            key: key.to_string(),
            value: kv.value().to_vec(),
            revision: kv.mod_revision().max(0) as Revision,
            lease: (kv.lease() != 0).then_some(LeaseId(kv.lease() as u64)),
        })
    }
}

/// gRPC status codes that mean "not reachable now" (tonic is not a direct dependency):
/// CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, UNAVAILABLE.
const TRANSIENT_GRPC_CODES: [i32; 4] = [1, 2, 4, 14];

/// Unreachable, or without a leader: the cluster may answer later.
fn transient(e: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    match e {
        E::TransportError(_) | E::IoError(_) => true,
        E::GRpcStatus(s) => {
            TRANSIENT_GRPC_CODES.contains(&i32::from(s.code())) || s.message().contains("no leader")
        }
        _ => false,
    }
}

/// Whether to try again: any transient failure of a read; for a write only one that
/// cannot have reached etcd (no connection, a request still queued on a connection that
/// closed (hyper's `Canceled`: never written), or refused for want of a leader).
fn retryable(e: &etcd_client::Error, idempotent: bool) -> bool {
    if !transient(e) {
        return false;
    }
    let text = format!("{e:?}");
    idempotent || text.contains("ConnectError") || text.contains("Canceled") || text.contains("no leader")
}

/// Pause between two tries of one request.
const RETRY_AFTER: Duration = Duration::from_millis(100);

impl EtcdShared {
    /// A client of `target` on a runtime of its own (connecting lazily: an unreachable cluster
    /// fails the first call, not this).
    pub(crate) fn connect(target: &EtcdTarget) -> Result<EtcdShared, RegistryError> {
        let setup = |message: String| RegistryError::Unavailable {
            registry: target.to_string(),
            what: "connect".into(),
            message,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("registry-etcd")
            .enable_all()
            .build()
            .map_err(|e| setup(format!("starting the etcd client runtime: {e}")))?;
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_require_leader(true);
        let endpoints: Vec<String> = target.endpoints.iter().map(|e| format!("http://{e}")).collect();
        let client = match wait_on(runtime.handle(), Client::connect(endpoints, Some(options))) {
            Ok(Ok(Ok(c))) => c,
            Ok(Ok(Err(e))) => return Err(setup(e.to_string())),
            Ok(Err(_)) => return Err(setup(format!("no answer within {REQUEST_TIMEOUT:?}"))),
            Err(_) => return Err(setup("the client runtime stopped".into())),
        };
        Ok(EtcdShared {
            client,
            runtime: runtime.handle().clone(),
            owned_runtime: Some(runtime),
            target: target.clone(),
        })
    }
}

impl EtcdShared {
    /// The cluster's current revision.
    pub(crate) fn revision(&self) -> Result<Revision, RegistryError> {
        // Any read answers with the store's revision; one key that is never written is cheapest.
        let k = self.full_key(REVISION_PROBE);
        let resp = self.call("read the revision", true, move |mut c| {
            let k = k.clone();
            async move { c.get(k, None).await }
        })?;
        Ok(resp.header().map_or(0, |h| h.revision().max(0) as Revision))
    }
}
