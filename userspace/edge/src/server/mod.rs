//! The HTTP file server shared by the storage and edge roles: listener, connection limit,
//! kernel body path selection, eBPF telemetry, and the admin listener.

pub mod admin;
pub mod conn_slot;
pub mod connection;
pub mod context;
pub mod control_agent;
pub mod demand_counter;
pub mod drain;
pub mod handover;
pub mod https_listener;
pub mod idle_parker;
pub mod kernel_setup;
pub mod limits;
pub mod lingering_close;
pub mod listen_fds;
pub mod live_playlist;
pub mod miss_policy;
pub mod object_intake;
pub mod process_admin;
pub mod request_log;
pub mod sd_notify;
pub mod signed_access;
pub mod steering;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::cache::cache_metrics::CacheCollector;
use crate::cache::EdgeCache;
use crate::control_lookup::ControlLookup;
use crate::file_store::FileStore;
use crate::metrics::ServerMetrics;
use crate::name_lookup::{NameLookup, StaticLookup};
use crate::settings::ServeConfig;
use crate::upstream::pool::UpstreamPool;
use crate::upstream::pool_metrics::PoolCollector;
use context::ServerContext;
use demand_counter::DemandCounter;
use idle_parker::IdleParker;
use miss_policy::MissPolicy;
use strata_http::response::error_response;
use strata_kernel::kernel_metrics::KernelCollector;
use strata_kernel::KernelPrograms;
use strata_wire::heartbeat::ServerRole;

/// A started server.
pub struct RunningServer {
    pub role: &'static str,
    pub local_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The HTTPS listeners' addresses.
    pub https: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    drainer: Drainer,
    /// Drained after the tasks end, so the last lines reach the file.
    access_log: Option<Arc<crate::access_log::AccessLog>>,
    // Dropping them detaches the eBPF programs.
    _programs: KernelPrograms,
}

impl RunningServer {
    /// Waits until the accept loops end (after shutdown).
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(log) = &self.access_log {
            log.drain(std::time::Duration::from_secs(2)).await;
        }
    }

    /// Before a handover: pins the XDP guard's link for the successor; returns the environment
    /// that tells the successor where (empty without a guard).
    pub fn prepare_handover(&self) -> Result<Vec<(String, String)>, handover::HandoverError> {
        let Some(guard) = &self._programs.guard else {
            return Ok(Vec::new());
        };
        let Some((interface, _)) = guard.attached() else {
            return Ok(Vec::new());
        };
        let pin = handover::guard_pin_path();
        guard
            .pin_for_successor(&pin)
            .map_err(|e| handover::HandoverError::Prepare(e.to_string()))?;
        Ok(vec![(
            handover::GUARD_LINK_ENV.to_string(),
            format!("{interface}={}", pin.display()),
        )])
    }

    /// After a handover that failed: the successor did not take the guard's link; this process
    /// keeps it as before.
    pub fn handover_failed(&self) {
        if let Some(guard) = &self._programs.guard {
            guard.withdraw_pin(&handover::guard_pin_path());
        }
    }

    /// What drains this server's open connections after a handover.
    pub fn drainer(&self) -> Drainer {
        self.drainer.clone()
    }
}

/// Drains a server's client connections (see `drain`): each ends after its next response.
#[derive(Clone)]
pub struct Drainer {
    // Held while draining: the idle parker runs as long as the context lives, and parked
    // connections must still be resumed (and answered with `Connection: close`).
    ctx: Arc<ServerContext>,
}

impl Drainer {
    /// Starts draining: from now on every response says `Connection: close`.
    pub fn start(&self) {
        self.ctx.drain.start();
    }

    /// Starts draining and waits until no client connection is open, or `deadline` passes;
    /// returns the connections still open then.
    pub async fn drain(&self, deadline: std::time::Duration) -> u64 {
        self.ctx.drain.start();
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let open = self.ctx.metrics.open_connections();
            if open == 0 || tokio::time::Instant::now() >= until {
                // The drained connections' last access log lines, before the process exits.
                if let Some(log) = &self.ctx.access_log {
                    log.drain(std::time::Duration::from_secs(2)).await;
                }
                return open;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Binds a listening socket with a backlog fit for many clients, or takes over the one a
/// previous process handed over for the same address (see `listen_fds`).
fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    listen_fds::take_env()?;
    let listener = match listen_fds::take_inherited(addr) {
        Some(l) => {
            l.set_nonblocking(true)
                .with_context(|| format!("inherited listener {addr}: O_NONBLOCK"))?;
            TcpListener::from_std(l).with_context(|| format!("inherited listener {addr}"))?
        }
        None => bind_new(addr)?,
    };
    listen_fds::record_bound(addr, std::os::fd::AsRawFd::as_raw_fd(&listener));
    Ok(listener)
}

fn bind_new(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .with_context(|| format!("creating a socket for {addr}"))?;
    socket
        .set_reuseaddr(true)
        .with_context(|| format!("SO_REUSEADDR on {addr}"))?;
    socket.bind(addr).with_context(|| format!("binding {addr}"))?;
    socket
        .listen(4096)
        .with_context(|| format!("listening on {addr}"))
}

/// Raises the soft open-file limit to the hard one and returns it.
fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// `max_connections`, resolving 0 to what the open-file limit allows.
fn effective_max_connections(role: &str, configured: usize) -> usize {
    let nofile = raise_nofile_limit();
    let fit = nofile.saturating_sub(1024).max(64) as usize;
    if configured == 0 {
        tracing::info!(
            role,
            open_file_limit = nofile,
            max_connections = fit,
            "max_connections from the open-file limit"
        );
        return fit;
    }
    if configured > fit {
        tracing::warn!(role, open_file_limit = nofile, max_connections = configured, "max_connections is above what the open-file limit allows; expect accept errors (EMFILE) near the top");
    }
    configured
}

/// Starts a storage or edge server; returns once it is listening.
pub async fn start(
    role: &'static str,
    cfg: &ServeConfig,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<RunningServer> {
    cfg.validate()?;
    let store = FileStore::open(&cfg.root)
        .with_context(|| format!("{role}: opening the directory it serves"))?
        .with_small_bodies(cfg.data_path.small_body_memory);
    let listener = bind(cfg.listen).with_context(|| format!("{role}: client listener"))?;
    let local_addr = listener.local_addr()?;
    let https = https_listener::prepare(role, &cfg.https)?;
    let mut https_listeners = Vec::new();
    for acceptor in https.iter().flat_map(|h| &h.acceptors) {
        let l = bind(acceptor.listen).with_context(|| format!("{role}: HTTPS listener"))?;
        https_listeners.push((l.local_addr()?, l, acceptor.clone()));
    }
    let body_path =
        kernel_setup::choose_body_path(role, cfg.data_path.body_path, cfg.data_path.splice_workers)?;
    let mut upstream_settings = cfg.upstream.clone();
    let mut sockmap = None;
    let controlled = cfg.control.enabled();
    let proxies = cfg.miss == MissPolicy::Proxy && (!cfg.lookup.tenants.is_empty() || controlled);
    let control_client = if controlled {
        Some(
            control_agent::client(&cfg.control)
                .with_context(|| format!("{role}: joining the control plane {}", cfg.control.url))?,
        )
    } else {
        None
    };
    let is_edge = role.starts_with("edge");
    let cache = if proxies && cfg.cache.capacity > 0 {
        Some(Arc::new(
            EdgeCache::open(&cfg.root, cfg.cache.clone())
                .with_context(|| format!("{role}: indexing the cache directory {}", cfg.root.display()))?,
        ))
    } else {
        None
    };
    if proxies {
        let (path, splice) = kernel_setup::choose_proxy_path(role, cfg.upstream.proxy_path).await?;
        upstream_settings.proxy_path = path;
        sockmap = splice;
    }
    let mut upstream = UpstreamPool::new(upstream_settings);
    if let Some(s) = &sockmap {
        upstream = upstream.with_sockmap(s.clone());
    }
    let upstream = Arc::new(upstream);
    let programs = KernelPrograms {
        telemetry: kernel_setup::load_telemetry(
            role,
            cfg.telemetry,
            local_addr.port(),
            &cfg.lookup.all_servers(),
        )?,
        guard: kernel_setup::load_guard(role, &cfg.guard)?,
        splice: sockmap,
    };
    let mut collectors: Vec<Box<dyn prometheus_client::collector::Collector>> = vec![
        Box::new(KernelCollector::new(programs.clone())),
        Box::new(PoolCollector(upstream.clone())),
        Box::new(handover::HandoverCollector),
    ];
    if let Some(c) = &cache {
        collectors.push(Box::new(CacheCollector(c.clone())));
    }
    if let Some(h) = &https {
        collectors.push(Box::new(crate::tls::https_metrics::HttpsCollector(
            h.metrics.clone(),
        )));
    }
    let live_playlists = Arc::new(live_playlist::LivePlaylists::new(cfg.upstream.live_playlist_ttl));
    collectors.push(Box::new(live_playlist::LivePlaylistCollector(
        live_playlists.clone(),
    )));
    let director = (controlled && is_edge && proxies && !cfg.control.region.is_empty()).then(|| {
        crate::director::edge_director::Director::new(cfg.director.clone(), cfg.control.name.clone())
    });
    if let Some(d) = &director {
        collectors.push(Box::new(crate::director::director_metrics::DirectorCollector(
            d.clone(),
        )));
    }
    let access_log = crate::access_log::AccessLog::start(role, &cfg.access_log)
        .with_context(|| format!("{role}: starting the access log"))?;
    if let Some(log) = &access_log {
        collectors.push(Box::new(crate::access_log::log_metrics::AccessLogCollector(
            log.counters(),
        )));
        crate::access_log::reopen_on_sigusr1(log.clone())?;
    }
    let metrics = ServerMetrics::new(role, body_path.label(), collectors);
    let admin_listener = bind(cfg.admin_listen).with_context(|| format!("{role}: admin listener"))?;
    let admin_addr = admin_listener.local_addr()?;
    let parker = if cfg.limits.park_after.is_zero() {
        None
    } else {
        IdleParker::new()
            .map_err(|e| tracing::warn!(role, error = %e, "idle parker unavailable"))
            .ok()
    };
    let control_lookup = match (&control_client, proxies && is_edge) {
        (Some(client), true) => {
            let lookup = Arc::new(ControlLookup::default());
            if let Err(e) = control_agent::fetch_lookup(client, &lookup).await {
                tracing::warn!(role, error = %e, "the control plane's name lookup is not reachable yet; misses answer 404 until it is");
            }
            Some(lookup)
        }
        _ => None,
    };
    let demand = (controlled && is_edge).then(|| Arc::new(DemandCounter::default()));
    let steering =
        (controlled && is_edge).then(|| Arc::new(steering::Steering::new(steering::MANIFEST_TTL_SECS)));
    let (player_tx, player_rx) = if controlled && is_edge {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let (failed_tx, failed_rx) = if controlled && is_edge {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let placement_key: control_agent::PlacementKey = Default::default();

    let mut limits = cfg.limits.clone();
    limits.max_connections = effective_max_connections(role, limits.max_connections);
    let ctx = Arc::new(ServerContext {
        store,
        body_path,
        limits,
        metrics: metrics.clone(),
        parker: parker.clone(),
        miss: cfg.miss,
        lookup: match &control_lookup {
            Some(l) => Some(l.clone() as Arc<dyn NameLookup>),
            None if cfg.lookup.tenants.is_empty() => None,
            None => Some(
                Arc::new(StaticLookup::new(cfg.lookup.clone()).context("lookup configuration")?)
                    as Arc<dyn NameLookup>,
            ),
        },
        upstream: upstream.clone(),
        cache: cache.clone(),
        demand: demand.clone(),
        failed_reads: failed_tx,
        steering: steering.clone(),
        player_reports: player_tx,
        live_playlists,
        director: director.clone(),
        drain: Default::default(),
        access_log: access_log.clone(),
    });
    let drainer = Drainer { ctx: ctx.clone() };
    if let Some(p) = &parker {
        p.run_on(
            tokio::runtime::Handle::current(),
            &ctx,
            connection::serve_connection,
        )
        .context("starting the idle parker thread")?;
    }
    tracing::info!(role, %local_addr, %admin_addr, root = %cfg.root.display(), "serving");
    let ctx_max_connections = ctx.limits.max_connections as u64;
    let slots = Arc::new(Semaphore::new(ctx.limits.max_connections));
    let mut tasks = Vec::new();
    let mut https_addrs = Vec::new();
    for (addr, l, acceptor) in https_listeners {
        tracing::info!(role, https = %addr, "HTTPS listener up");
        https_addrs.push(addr);
        tasks.push(tokio::spawn(https_listener::accept_loop(
            l,
            acceptor,
            ctx.clone(),
            slots.clone(),
            shutdown.clone(),
        )));
    }
    let accept = tokio::spawn(accept_loop(listener, ctx, slots, shutdown.clone()));
    let intake = match (&cache, controlled, is_edge) {
        (_, true, false) => Some(object_intake::routes(cfg.root.clone(), placement_key.clone())),
        (Some(c), true, true) => Some(crate::jobs::peer::routes(c.clone(), placement_key.clone())),
        _ => None,
    };
    let intake = match (intake, director.clone().map(crate::director::admin_state::routes)) {
        (Some(a), Some(b)) => Some(a.merge(b)),
        (a, b) => a.or(b),
    };
    if let (Some(client), Some(c), true) = (&control_client, &cache, is_edge) {
        tasks.push(tokio::spawn(crate::jobs::runner::run(
            client.clone(),
            cfg.control.name.clone(),
            c.clone(),
            placement_key.clone(),
            shutdown.clone(),
        )));
    }
    if let Some(client) = control_client {
        let parts = control_agent::AgentParts {
            role: if is_edge {
                ServerRole::Edge
            } else {
                ServerRole::Storage
            },
            local_addr,
            admin_addr,
            placement_key,
            lookup: control_lookup,
            cache: cache.clone(),
            pool: upstream,
            demand,
            metrics: metrics.clone(),
            telemetry: programs.telemetry.clone(),
            failed_reads: failed_rx,
            steering,
            player_reports: player_rx,
            director,
            max_connections: ctx_max_connections,
        };
        tasks.push(tokio::spawn(control_agent::run(
            cfg.control.clone(),
            client,
            parts,
            shutdown.clone(),
        )));
    }
    let admin = tokio::spawn(admin::serve(
        admin_listener,
        metrics,
        programs.clone(),
        cache,
        intake,
        shutdown,
    ));
    Ok(RunningServer {
        role,
        local_addr,
        admin_addr,
        https: https_addrs,
        tasks: {
            tasks.extend([accept, admin]);
            tasks
        },
        drainer,
        access_log,
        _programs: programs,
    })
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    slots: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::debug!(max_connections = ctx.limits.max_connections, "accepting");
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE/ENFILE and friends: back off briefly rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            ctx.metrics.connection_rejected();
            tokio::spawn(reject(stream, ctx.clone()));
            continue;
        };
        let slot = conn_slot::ConnSlot::new(permit, ctx.metrics.clone());
        tokio::spawn(connection::serve_connection(stream, ctx.clone(), slot, None));
    }
}

/// Answers a connection over the limit with 503 and closes it.
async fn reject(stream: TcpStream, ctx: Arc<ServerContext>) {
    let msg = format!(
        "server at its limit of {} connections; retry shortly",
        ctx.limits.max_connections
    );
    let resp = error_response(503, &msg, false, &[("Retry-After", "1")]);
    ctx.metrics.response(503);
    if stream.try_write(&resp).is_ok_and(|n| n == resp.len()) {
        let client = ctx.access_log.as_ref().and_then(|_| stream.peer_addr().ok());
        request_log::refused(&ctx, client, 503, &resp);
    }
}
