//! Loads the `body_splice` sk_skb programs (stream parser + verdict) and runs flows through
//! them: a budget of body bytes moved from a storage server's socket to a client's socket by
//! the kernel, which userspace never reads.
//!
//! The programs are attached to the SOCKHASH of upstream sockets; client sockets go into a
//! second SOCKHASH that only serves as a redirect target, so their own receive path is
//! unchanged, and they stay in it for their whole life (removing a client socket with a
//! non-empty queue would drop the queue; the kernel removes it when the socket closes). A
//! flow's end is learnt from the ring buffer (or, if an event is late, from the flow itself);
//! the upstream socket then leaves the map, which restores its normal receive path.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf, SockHash};
use aya::programs::SkSkb;
use aya::Ebpf;
use strata_common::{
    splice_event, SpliceCounters, SpliceEvent, SpliceFlow, SPLICE_CLIENTS_MAP, SPLICE_COUNTERS_MAP,
    SPLICE_EVENTS_MAP, SPLICE_FLOWS_MAP, SPLICE_PARSER_PROG, SPLICE_UPSTREAMS_MAP, SPLICE_VERDICT_PROG,
};
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use super::ebpf_log;
use super::socket_opts::{kick_receive, set_send_buffer, socket_cookie};

/// The compiled eBPF object.
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/strata-body-splice"));

/// BPF_NOEXIST: insert only if the key is new.
const BPF_NOEXIST: u64 = 1;

/// Why the sockmap path cannot be used, or a flow could not start.
#[derive(Debug, Error)]
pub enum SpliceError {
    #[error("the strata binary was built without its eBPF programs (AYA_BUILD_SKIP?)")]
    NotBuilt,
    #[error("loading the body_splice eBPF object failed (needs root or CAP_BPF+CAP_NET_ADMIN): {0}")]
    Load(#[from] aya::EbpfError),
    #[error("eBPF program or map {0} missing from the body_splice object")]
    Missing(&'static str),
    #[error("body_splice program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("body_splice map: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error("socket {what}: {source}")]
    Socket {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("capability probe: {0}")]
    Probe(String),
}

fn socket_err(what: &'static str) -> impl FnOnce(std::io::Error) -> SpliceError {
    move |source| SpliceError::Socket { what, source }
}

struct SpliceMaps {
    upstreams: SockHash<MapData, u64>,
    clients: SockHash<MapData, u64>,
    flows: BpfHashMap<MapData, u64, SpliceFlow>,
    counters: PerCpuArray<MapData, SpliceCounters>,
}

type Waiters = Arc<Mutex<HashMap<u64, Arc<Notify>>>>;

/// The loaded programs and their maps.
pub struct SockmapSplice {
    maps: Mutex<SpliceMaps>,
    waiters: Waiters,
    /// Bytes granted to flows and not yet confirmed in the client sockets.
    in_flight: AtomicU64,
    // Keeps the programs attached (they are attached to the map, which lives as long).
    _ebpf: Ebpf,
}

impl std::fmt::Debug for SockmapSplice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockmapSplice")
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish()
    }
}

impl SockmapSplice {
    /// Loads and attaches the programs and starts the event reader (needs a tokio runtime).
    pub fn load() -> Result<Arc<SockmapSplice>, SpliceError> {
        if PROGRAM.is_empty() {
            return Err(SpliceError::NotBuilt);
        }
        let mut ebpf = Ebpf::load(PROGRAM)?;
        ebpf_log::forward(&mut ebpf, SPLICE_VERDICT_PROG);
        let take =
            |ebpf: &mut Ebpf, name: &'static str| ebpf.take_map(name).ok_or(SpliceError::Missing(name));
        let upstreams: SockHash<MapData, u64> = take(&mut ebpf, SPLICE_UPSTREAMS_MAP)?.try_into()?;
        let clients: SockHash<MapData, u64> = take(&mut ebpf, SPLICE_CLIENTS_MAP)?.try_into()?;
        let flows: BpfHashMap<MapData, u64, SpliceFlow> = take(&mut ebpf, SPLICE_FLOWS_MAP)?.try_into()?;
        let counters: PerCpuArray<MapData, SpliceCounters> =
            take(&mut ebpf, SPLICE_COUNTERS_MAP)?.try_into()?;
        let events: RingBuf<MapData> = take(&mut ebpf, SPLICE_EVENTS_MAP)?.try_into()?;
        let map_fd = upstreams.fd().try_clone().map_err(aya::maps::MapError::from)?;
        for name in [SPLICE_PARSER_PROG, SPLICE_VERDICT_PROG] {
            let program: &mut SkSkb = ebpf
                .program_mut(name)
                .ok_or(SpliceError::Missing(name))?
                .try_into()?;
            program.load()?;
            program.attach(&map_fd)?;
        }
        let waiters: Waiters = Arc::default();
        spawn_event_reader(events, waiters.clone()).map_err(socket_err("registering the event ring"))?;
        Ok(Arc::new(SockmapSplice {
            maps: Mutex::new(SpliceMaps {
                upstreams,
                clients,
                flows,
                counters,
            }),
            waiters,
            in_flight: AtomicU64::new(0),
            _ebpf: ebpf,
        }))
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, SpliceMaps> {
        // A panic while holding the lock cannot leave the maps inconsistent (each operation is
        // one syscall), so a poisoned lock is still usable.
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `client` a redirect target (once per socket; again is a no-op) and returns its key.
    /// A new target gets a send buffer of `send_buffer` bytes: redirected bytes that find the
    /// buffer full wait for the kernel's next retry, a timer tick later (4 ms at HZ=250).
    pub fn add_client(&self, client: &impl AsRawFd, send_buffer: usize) -> Result<u64, SpliceError> {
        let cookie = socket_cookie(client).map_err(socket_err("SO_COOKIE of the client"))?;
        let inserted = self
            .maps()
            .clients
            .insert(cookie, client.as_raw_fd(), BPF_NOEXIST);
        match inserted {
            Ok(()) => {
                if let Err(e) = set_send_buffer(client, send_buffer) {
                    tracing::debug!(error = %e, "could not enlarge a client's send buffer");
                }
                Ok(cookie)
            }
            Err(aya::maps::MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::EEXIST) => {
                Ok(cookie)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Starts moving `len` bytes from `upstream` to the client registered as `client_cookie`.
    /// Bytes already queued on the upstream socket are the first ones moved.
    pub fn begin(
        &self,
        upstream: &impl AsRawFd,
        client_cookie: u64,
        len: u64,
    ) -> Result<ActiveFlow<'_>, SpliceError> {
        let cookie = socket_cookie(upstream).map_err(socket_err("SO_COOKIE of the upstream"))?;
        let notify = Arc::new(Notify::new());
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cookie, notify.clone());
        let flow = ActiveFlow {
            splice: self,
            upstream_cookie: cookie,
            notify,
            ended: false,
        };
        {
            let mut maps = self.maps();
            let state = SpliceFlow {
                client_cookie,
                unparsed: len,
                budget: len,
                ..Default::default()
            };
            maps.flows.insert(cookie, state, 0)?;
            maps.upstreams.insert(cookie, upstream.as_raw_fd(), 0)?;
        }
        // Bytes that arrived before the insert wait for the next receive event: make one.
        kick_receive(upstream).map_err(socket_err("SO_RCVLOWAT kick of the upstream"))?;
        Ok(flow)
    }

    /// The programs' totals over all CPUs.
    pub fn counters(&self) -> SpliceCounters {
        let mut total = SpliceCounters::default();
        if let Ok(per_cpu) = self.maps().counters.get(&0, 0) {
            for c in per_cpu.iter() {
                total.redirected_bytes += c.redirected_bytes;
                total.messages += c.messages;
                total.excess_bytes += c.excess_bytes;
                total.redirect_failures += c.redirect_failures;
            }
        }
        total
    }

    /// Reserves `len` bytes of the in-flight budget `cap`; false (nothing reserved) if it would
    /// go over.
    pub fn reserve(&self, len: u64, cap: u64) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now + len <= cap).then_some(now + len)
            })
            .is_ok()
    }

    /// Returns bytes reserved with [`SockmapSplice::reserve`].
    pub fn release(&self, len: u64) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_sub(len))
            });
    }

    /// Bytes reserved now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Capability probe: moves a few bytes between two loopback connections through the
    /// programs and checks they arrive exactly. Blocking; runs once at start.
    pub fn probe(&self) -> Result<(), SpliceError> {
        use std::io::{Read, Write};
        let probe = |e: std::io::Error| SpliceError::Probe(e.to_string());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(probe)?;
        let addr = listener.local_addr().map_err(probe)?;
        let mut origin = std::net::TcpStream::connect(addr).map_err(probe)?;
        let (upstream, _) = listener.accept().map_err(probe)?;
        let mut viewer = std::net::TcpStream::connect(addr).map_err(probe)?;
        let (client, _) = listener.accept().map_err(probe)?;
        let message = b"strata sockmap probe";
        origin.write_all(message).map_err(probe)?;
        let client_cookie = self.add_client(&client, 64 * 1024)?;
        let flow = self.begin(&upstream, client_cookie, message.len() as u64)?;
        viewer
            .set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(probe)?;
        let mut got = [0u8; 20];
        viewer
            .read_exact(&mut got)
            .map_err(|e| SpliceError::Probe(format!("the probe bytes did not arrive: {e}")))?;
        let state = flow.end();
        if &got != message || state.budget != 0 {
            return Err(SpliceError::Probe(format!(
                "bytes arrived changed or the budget was not spent ({state:?})"
            )));
        }
        Ok(())
    }
}

/// A flow in progress. Dropping it (or [`ActiveFlow::end`]) takes the upstream socket out of
/// the map and forgets the flow.
pub struct ActiveFlow<'a> {
    splice: &'a SockmapSplice,
    upstream_cookie: u64,
    notify: Arc<Notify>,
    ended: bool,
}

impl ActiveFlow<'_> {
    /// The flow as the programs left it (None if it is gone).
    pub fn state(&self) -> Option<SpliceFlow> {
        self.splice.maps().flows.get(&self.upstream_cookie, 0).ok()
    }

    /// Resolves when the programs post an event for this flow (budget spent or redirect refused).
    pub async fn event(&self) {
        self.notify.notified().await
    }

    /// Takes the upstream out of the map and returns the flow's final state.
    pub fn end(mut self) -> SpliceFlow {
        self.finish()
    }

    fn finish(&mut self) -> SpliceFlow {
        self.ended = true;
        let mut maps = self.splice.maps();
        // First stop the programs, then read what they did.
        let _ = maps.upstreams.remove(&self.upstream_cookie);
        let state = maps.flows.get(&self.upstream_cookie, 0).unwrap_or_default();
        let _ = maps.flows.remove(&self.upstream_cookie);
        drop(maps);
        self.splice
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.upstream_cookie);
        state
    }
}

impl Drop for ActiveFlow<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.finish();
        }
    }
}

/// Reads flow events from the ring buffer and wakes the flow's waiter.
fn spawn_event_reader(events: RingBuf<MapData>, waiters: Waiters) -> std::io::Result<()> {
    // SAFETY: the ring buffer owns its map fd and reading items neither closes nor replaces it,
    // so the registered fd stays valid for the AsyncFd's life.
    let mut ring = unsafe { AsyncFd::register_with_interest(events, tokio::io::Interest::READABLE) }?;
    tokio::spawn(async move {
        loop {
            let mut guard = match ring.readable_mut().await {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!(error = %e, "sockmap event ring failed; flows fall back to polling");
                    return;
                }
            };
            while let Some(item) = guard.get_inner_mut().next() {
                let Ok(event) = bytemuck::try_pod_read_unaligned::<SpliceEvent>(&item) else {
                    continue;
                };
                if event.kind == splice_event::REDIRECT_FAILED {
                    tracing::debug!(upstream = event.upstream_cookie, "sockmap redirect refused");
                }
                let waiter = waiters
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&event.upstream_cookie)
                    .cloned();
                if let Some(w) = waiter {
                    w.notify_one();
                }
            }
            guard.clear_ready();
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads the real programs (needs root, as the test suite runs) and runs the probe.
    #[tokio::test]
    async fn probe_moves_bytes_through_the_loaded_programs() {
        let splice = SockmapSplice::load().expect("loading body_splice");
        tokio::task::spawn_blocking(move || {
            splice.probe().expect("probe");
            let c = splice.counters();
            assert_eq!(c.redirected_bytes, 20);
            assert_eq!(c.excess_bytes, 0);
        })
        .await
        .unwrap();
    }
}

#[cfg(test)]
mod event_tests {
    use super::*;

    /// A spent budget wakes the flow's waiter through the ring buffer, not a poll.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_spent_budget_posts_an_event_that_wakes_the_flow() {
        use std::io::Write;
        let splice = SockmapSplice::load().expect("loading body_splice");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut origin = std::net::TcpStream::connect(addr).unwrap();
        let (upstream, _) = listener.accept().unwrap();
        let _viewer = std::net::TcpStream::connect(addr).unwrap();
        let (client, _) = listener.accept().unwrap();
        let cookie = splice.add_client(&client, 64 * 1024).unwrap();
        for round in 0..20 {
            let flow = splice.begin(&upstream, cookie, 1000).unwrap();
            origin.write_all(&[round as u8; 1000]).unwrap();
            tokio::time::timeout(Duration::from_secs(5), flow.event())
                .await
                .unwrap_or_else(|_| panic!("round {round}: no event"));
            assert_eq!(flow.end().budget, 0);
        }
    }
}
