//! Keep-alive connections to storage servers, reused across client requests, with round-robin
//! over the servers that hold a content and ejection of servers that keep failing.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::{TcpSocket, TcpStream};

use super::body_relay::ProxyPath;
use super::path_choice::PathChooser;
use crate::name_lookup::ClusterServers;
use strata_kernel::sockmap_splice::SockmapSplice;

/// How the edge talks to the storage tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time to wait for a response head (and between body bytes).
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Idle keep-alive connections kept per storage server.
    pub max_idle_per_server: usize,
    /// Consecutive failures that eject a server.
    pub eject_after_failures: u32,
    /// How long an ejected server is skipped before it is tried again.
    #[serde(with = "humantime_serde")]
    pub eject_for: Duration,
    /// How proxied bodies move: auto (default: per response, the path measured fastest for
    /// its link, size and concurrency, among sockmap when the probe passes, splice and copy),
    /// sockmap, splice or copy.
    pub proxy_path: ProxyPath,
    /// Sockmap path: bytes in flight toward one client (granted to the kernel, not yet in the
    /// client's socket); bodies are fetched in pieces of this size.
    pub max_in_flight_per_client: u64,
    /// Sockmap path: pieces of one body redirected and not yet in the client's socket (their
    /// size is `max_in_flight_per_client` shared among them). 1, the default, waits for each
    /// piece to be in the socket before the next flow starts: on Linux 6.18 two measured the
    /// same (one 256 MiB object across veth: 1.30-1.53 against 1.27-1.60 GB/s).
    pub sockmap_pieces_in_flight: usize,
    /// Sockmap path: bytes in flight toward all clients; a piece over it moves by splice.
    pub max_in_flight_total: u64,
    /// Sockmap path: a client whose piece takes longer than this to enter its socket gets the
    /// rest of its body by splice (whose pipe holds less).
    #[serde(with = "humantime_serde")]
    pub lag_after: Duration,
    /// SO_RCVBUF of storage-tier sockets in bytes (0: the kernel's autotuning). Bounds what a
    /// body waiting for a slow client holds in the edge's receive queue.
    pub receive_buffer: u64,
    /// How long an edge holds a live stream's playlist in memory before fetching it again
    /// (concurrent viewers share one fetch); also the `max-age` viewers get.
    #[serde(with = "humantime_serde")]
    pub live_playlist_ttl: Duration,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(10),
            max_idle_per_server: 64,
            eject_after_failures: 3,
            eject_for: Duration::from_secs(10),
            proxy_path: Default::default(),
            max_in_flight_per_client: 4 << 20,
            sockmap_pieces_in_flight: 1,
            max_in_flight_total: 256 << 20,
            lag_after: Duration::from_millis(250),
            receive_buffer: 1 << 20,
            live_playlist_ttl: Duration::from_secs(1),
        }
    }
}

#[derive(Default)]
struct ServerState {
    idle: Vec<TcpStream>,
    failures: u32,
    ejected_until: Option<Instant>,
}

/// The pool of upstream connections of one edge.
pub struct UpstreamPool {
    settings: UpstreamSettings,
    sockmap: Option<Arc<SockmapSplice>>,
    /// Set when the path is `auto`.
    chooser: Option<PathChooser>,
    servers: Mutex<HashMap<SocketAddr, ServerState>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool")
            .field("settings", &self.settings)
            .field("idle", &self.idle_total())
            .finish()
    }
}

impl UpstreamPool {
    pub fn new(settings: UpstreamSettings) -> UpstreamPool {
        let chooser = (settings.proxy_path == ProxyPath::Auto).then(|| PathChooser::new(false));
        UpstreamPool {
            settings,
            sockmap: None,
            chooser,
            servers: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
        }
    }

    pub fn settings(&self) -> &UpstreamSettings {
        &self.settings
    }

    /// Uses the loaded sockmap programs for bodies (the settings' path must say sockmap, or
    /// auto, which then chooses among sockmap, splice and copy).
    pub fn with_sockmap(mut self, splice: Arc<SockmapSplice>) -> UpstreamPool {
        self.sockmap = Some(splice);
        if self.settings.proxy_path == ProxyPath::Auto {
            self.chooser = Some(PathChooser::new(true));
        }
        self
    }

    /// The sockmap programs, when bodies may move by sockmap.
    pub fn sockmap(&self) -> Option<&Arc<SockmapSplice>> {
        self.sockmap
            .as_ref()
            .filter(|_| matches!(self.settings.proxy_path, ProxyPath::Sockmap | ProxyPath::Auto))
    }

    /// The per-response path choice, when the path is `auto`.
    pub fn chooser(&self) -> Option<&PathChooser> {
        self.chooser.as_ref()
    }

    /// The order to try servers in: each cluster's servers rotated round-robin, home cluster
    /// first; servers ejected now go last (so they are still tried when nothing else is left).
    pub fn order(&self, clusters: &[ClusterServers]) -> Vec<SocketAddr> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let mut ready = Vec::new();
        let mut ejected = Vec::new();
        let now = Instant::now();
        let servers = self.servers.lock().ok();
        for c in clusters {
            let n = c.servers.len();
            for i in 0..n {
                let addr = c.servers[(turn + i) % n];
                let out = servers
                    .as_ref()
                    .and_then(|s| s.get(&addr))
                    .and_then(|s| s.ejected_until)
                    .is_some_and(|until| until > now);
                if out {
                    ejected.push(addr);
                } else {
                    ready.push(addr);
                }
            }
        }
        ready.extend(ejected);
        ready
    }

    /// An idle connection to `addr` (true: reused) or a new one.
    pub async fn checkout(&self, addr: SocketAddr) -> io::Result<(TcpStream, bool)> {
        if let Some(s) = self
            .servers
            .lock()
            .ok()
            .and_then(|mut m| m.get_mut(&addr).and_then(|s| s.idle.pop()))
        {
            return Ok((s, true));
        }
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if self.settings.receive_buffer > 0 {
            // A fixed receive buffer turns off autotuning, which would otherwise grow the queue
            // of a body waiting for a slow client up to tcp_rmem's maximum.
            socket.set_recv_buffer_size(self.settings.receive_buffer.min(u64::from(u32::MAX)) as u32)?;
        }
        let stream = tokio::time::timeout(self.settings.connect_timeout, socket.connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connect to {addr} timed out")))??;
        let _ = stream.set_nodelay(true);
        Ok((stream, false))
    }

    /// Returns a connection whose last response was read exactly to its end.
    pub fn checkin(&self, addr: SocketAddr, stream: TcpStream) {
        if let Ok(mut m) = self.servers.lock() {
            let s = m.entry(addr).or_default();
            if s.idle.len() < self.settings.max_idle_per_server {
                s.idle.push(stream);
            }
        }
    }

    /// Idle connections held for `addr` (for metrics and tests).
    pub fn idle(&self, addr: SocketAddr) -> usize {
        self.servers
            .lock()
            .ok()
            .and_then(|m| m.get(&addr).map(|s| s.idle.len()))
            .unwrap_or(0)
    }

    /// Idle connections held for all servers.
    pub fn idle_total(&self) -> usize {
        self.servers
            .lock()
            .map(|m| m.values().map(|s| s.idle.len()).sum())
            .unwrap_or(0)
    }

    pub fn success(&self, addr: SocketAddr) {
        if let Ok(mut m) = self.servers.lock() {
            let s = m.entry(addr).or_default();
            s.failures = 0;
            s.ejected_until = None;
        }
    }

    /// Counts a failure; returns true if it ejected the server.
    pub fn failure(&self, addr: SocketAddr) -> bool {
        let Ok(mut m) = self.servers.lock() else {
            return false;
        };
        let s = m.entry(addr).or_default();
        s.failures += 1;
        s.idle.clear();
        if s.failures >= self.settings.eject_after_failures {
            s.failures = 0;
            s.ejected_until = Some(Instant::now() + self.settings.eject_for);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clusters() -> Vec<ClusterServers> {
        vec![
            ClusterServers {
                cluster: "home".into(),
                servers: vec!["127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap()],
            },
            ClusterServers {
                cluster: "replica".into(),
                servers: vec!["127.0.0.1:3".parse().unwrap()],
            },
        ]
    }

    #[test]
    fn order_rotates_within_home_and_keeps_replicas_after() {
        let p = UpstreamPool::new(UpstreamSettings::default());
        let a = p.order(&clusters());
        let b = p.order(&clusters());
        assert_eq!(a.len(), 3);
        assert_ne!(a[0], b[0], "round robin over the home cluster");
        assert_eq!(a[2].port(), 3);
        assert_eq!(b[2].port(), 3);
    }

    #[test]
    fn repeated_failures_eject_a_server_to_the_back() {
        let p = UpstreamPool::new(UpstreamSettings {
            eject_after_failures: 2,
            ..Default::default()
        });
        let bad: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(!p.failure(bad));
        assert!(p.failure(bad));
        for _ in 0..4 {
            assert_eq!(*p.order(&clusters()).last().unwrap(), bad);
        }
        p.success(bad);
        assert!(p.order(&clusters()).iter().take(2).any(|a| *a == bad));
    }
}
