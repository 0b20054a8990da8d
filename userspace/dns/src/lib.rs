//! strata's authoritative nameserver (`strata dns`): answers the seed's DNS SRV queries with
//! regions ranked by the control plane's network map for the client's block, and region tokens
//! with the region's servers in rendezvous order. Several may run; each fetches the map and
//! answers from memory, so a control plane outage does not stop answers.

pub mod answer;
pub mod dns_metrics;
pub mod feed;
pub mod rendezvous;
pub mod scheme;
pub mod server;
pub mod settings;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use axum::routing::get;
use hickory_proto::rr::Name;
use strata_wire::client::{read_token_file, ServiceClient};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use answer::AnswerSettings;
use dns_metrics::DnsMetrics;
use server::Shared;
use settings::DnsSettings;
use strata_wire::map_view::MapView;

/// A started nameserver.
pub struct RunningDns {
    pub local_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningDns {
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the nameserver; returns once it listens (it answers SERVFAIL-free from an empty map
/// until the first fetch, which it tries once before returning).
pub async fn start(cfg: &DnsSettings, shutdown: watch::Receiver<bool>) -> anyhow::Result<RunningDns> {
    let zone = Name::from_ascii(&cfg.domain)
        .with_context(|| format!("dns: domain {:?} is not a domain name", cfg.domain))?
        .to_lowercase();
    let mut zone = zone;
    zone.set_fqdn(true);
    if cfg.control_url.is_empty() {
        anyhow::bail!("dns: --control URL is required (the nameserver answers from the control plane's map)");
    }
    let token = read_token_file(&cfg.control_token_file).with_context(|| {
        format!(
            "dns: reading the service token {}",
            cfg.control_token_file.display()
        )
    })?;
    let client = ServiceClient::new(&cfg.control_url, &token, std::time::Duration::from_secs(10));
    let metrics = DnsMetrics::new();
    let shared = Arc::new(Shared {
        view: RwLock::new(Arc::new(MapView::default())),
        answers: AnswerSettings {
            zone,
            ttl: cfg.ttl,
            epsilon: cfg.epsilon,
            max_udp: cfg.max_udp,
        },
        metrics: metrics.clone(),
        queries: Mutex::new(HashMap::new()),
    });
    if let Err(e) = feed::fetch_map(&client, &shared).await {
        tracing::warn!(control = %cfg.control_url, error = %e, "dns: the control plane's map is not reachable yet; answering with no regions until it is");
    }
    let (udp, tcp) = bind_udp_and_tcp(cfg.listen).await?;
    let local_addr = udp.local_addr()?;
    let udp = Arc::new(udp);
    let admin = TcpListener::bind(cfg.admin_listen)
        .await
        .with_context(|| format!("dns: binding the admin listener {}", cfg.admin_listen))?;
    let admin_addr = admin.local_addr()?;
    let mut tasks = Vec::new();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    for _ in 0..workers {
        tasks.push(tokio::spawn(server::serve_udp(
            udp.clone(),
            shared.clone(),
            shutdown.clone(),
        )));
    }
    tasks.push(tokio::spawn(server::serve_tcp(
        tcp,
        shared.clone(),
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(feed::run(
        client,
        cfg.name.clone(),
        shared.clone(),
        cfg.map_refresh,
        cfg.report_every,
        shutdown.clone(),
    )));
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { m.render() }
            }),
        );
    let mut stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let wait = async move {
            let _ = stop.changed().await;
        };
        if let Err(e) = axum::serve(admin, app).with_graceful_shutdown(wait).await {
            tracing::error!(error = %e, "dns: admin listener failed");
        }
    }));
    tracing::info!(role = "dns", %local_addr, %admin_addr, domain = %cfg.domain, "serving");
    Ok(RunningDns {
        local_addr,
        admin_addr,
        tasks,
    })
}

/// Binds UDP and TCP on one port. With port 0 the kernel picks the UDP port;
/// if another process already holds that port for TCP, another pair is tried.
async fn bind_udp_and_tcp(listen: SocketAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    const ATTEMPTS_WITH_ANY_PORT: usize = 20;
    let attempts = if listen.port() == 0 {
        ATTEMPTS_WITH_ANY_PORT
    } else {
        1
    };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(listen)
            .await
            .with_context(|| format!("dns: binding UDP {listen}"))?;
        let local_addr = udp.local_addr()?;
        match TcpListener::bind(local_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last_error = Some((local_addr, e)),
        }
    }
    match last_error {
        Some((addr, e)) => Err(anyhow::Error::new(e).context(format!("dns: binding TCP {addr}"))),
        None => anyhow::bail!("dns: binding {listen}: no attempt made"),
    }
}
