//! `strata pop`: a point of presence on loopback in one process: the control plane, two storage
//! clusters ("east", home of tenant acme, and "west", home of globex; each the other's replica)
//! reporting to it, an edge in each of two regions ("east", "west") whose name lookup comes
//! from it, a live ingest cluster of two servers, a second
//! edge in "east" (on a miss its director fetches what the first east edge holds from it), and a nameserver (`cdn.test`) answering SRV
//! queries from its network map. On first start the demo
//! content is ingested through the real ingest path (HTTP upload, durable queue, placement on
//! home, replica and archive). The edge cache starts empty: a first request is a miss proxied
//! from the storage tier, a second within a minute admits the asset, later ones are local hits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::sync::watch;

use super::serve::stop_signal;
use crate::cli::PopArgs;
use crate::control_cli::{ClientArgs, IngestArgs};
use crate::demo_data;
use strata_control::plane::{write_secret, ControlPlane, ControlSettings};
use strata_control::servers::ServerBook;
use strata_control::tenants::{Cluster, Tenant, TenantBook, TenantError, Tier};
use strata_control::tokens::{Role, TokenBook};
use strata_dns::settings::DnsSettings;
use strata_edge::director::settings::DirectorSettings;
use strata_edge::server;
use strata_edge::server::control_agent::ControlLink;
use strata_edge::server::kernel_setup::EbpfMode;
use strata_edge::settings::ServeConfig;
use strata_edge::tls::https_settings::{CertificateFiles, HttpsListener};

/// The POP's clusters and tenants: (tenant, home, replica).
const TENANTS: &[(&str, &str, &str)] = &[("acme", "east", "west"), ("globex", "west", "east")];

/// Registers clusters and tenants (idempotent) and writes a service token file per server.
fn prepare(plane: &ControlPlane, token_dir: &Path) -> anyhow::Result<()> {
    let book = TenantBook { store: plane.store() };
    for name in ["east", "west"] {
        match book.add_cluster(&Cluster {
            name: name.into(),
            tier: Tier::Storage,
        }) {
            Ok(()) | Err(TenantError::ClusterExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for (tenant, home, replica) in TENANTS {
        let t = Tenant {
            name: tenant.to_string(),
            home_cluster: home.to_string(),
            replica_clusters: vec![replica.to_string()],
            quota_bytes: 10 << 30,
            hot_edges: 1,
            idle_archive_secs: 3600,
        };
        match book.create(&t) {
            Ok(()) | Err(TenantError::Exists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::create_dir_all(token_dir).with_context(|| format!("creating {}", token_dir.display()))?;
    let live = super::pop_live::SERVERS;
    for server in ["east-1", "west-1", "edge-1", "edge-2", "edge-3", "dns-1"]
        .into_iter()
        .chain(live)
    {
        let file = token_dir.join(format!("{server}.token"));
        if !file.exists() {
            let token = TokenBook { store: plane.store() }.issue(&Role::Service {
                server: server.into(),
            })?;
            write_secret(&file, &token)?;
        }
    }
    Ok(())
}

fn link(control: SocketAddr, token_dir: &Path, name: &str, cluster: &str) -> ControlLink {
    ControlLink {
        url: format!("http://{control}"),
        token_file: token_dir.join(format!("{name}.token")),
        name: name.into(),
        cluster: cluster.into(),
        ..ControlLink::default()
    }
}

/// Waits until `names` have registered and are up.
async fn wait_up(plane: &ControlPlane, names: &[&str]) -> anyhow::Result<()> {
    for _ in 0..200 {
        let all = ServerBook::all(plane.store())?;
        if names
            .iter()
            .all(|n| all.iter().any(|s| s.up && s.record.name == *n))
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("servers {names:?} did not register with the control plane within 10 s")
}

/// Ingests the demo content (first start only) through the control plane's API.
async fn ingest_demo(control: SocketAddr, data_dir: &Path, token_file: PathBuf) -> anyhow::Result<()> {
    let source = data_dir.join("demo-source");
    let _ = std::fs::remove_dir_all(&source);
    let written = demo_data::create(&source, &[])?;
    let mut contents: Vec<(String, String)> = written.into_iter().map(|(t, c, _)| (t, c)).collect();
    contents.dedup();
    for (tenant, content) in contents {
        let args = IngestArgs {
            tenant: tenant.clone(),
            content: content.clone(),
            hot: false,
            no_wait: false,
            quiet: true,
            dir: source.join(&tenant).join(&content),
            client: ClientArgs {
                url: format!("http://{control}"),
                token: None,
                token_file: Some(token_file.clone()),
            },
        };
        tokio::task::spawn_blocking(move || super::ingest::run(&args))
            .await
            .context("ingest task")?
            .with_context(|| format!("ingesting the demo content {tenant}/{content}"))?;
    }
    let _ = std::fs::remove_dir_all(&source);
    Ok(())
}

/// Runs the POP until Ctrl-C.
pub async fn run(args: PopArgs) -> anyhow::Result<()> {
    let control_dir = args.data_dir.join("control");
    let token_dir = control_dir.join("service-tokens");
    let east_root = args.data_dir.join("storage-east");
    let west_root = args.data_dir.join("storage-west");
    let edge_cache = args.data_dir.join("edge-cache");
    let edge_west_cache = args.data_dir.join("edge-west-cache");
    let edge_east_2_cache = args.data_dir.join("edge-east-2-cache");
    for dir in [
        &east_root,
        &west_root,
        &edge_cache,
        &edge_west_cache,
        &edge_east_2_cache,
    ] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut settings = ControlSettings {
        data_dir: control_dir.clone(),
        ..ControlSettings::default()
    };
    // A demo map that follows the POP quickly.
    settings.map.interval = Duration::from_secs(2);
    let control = super::control::start(settings, args.control_listen, stop_rx.clone()).await?;
    let plane = control.plane.clone();
    tokio::task::spawn_blocking({
        let plane = plane.clone();
        let token_dir = token_dir.clone();
        move || prepare(&plane, &token_dir)
    })
    .await
    .context("preparing the control plane")??;
    let storage = |root, listen, admin_listen, name: &str, cluster: &str| ServeConfig {
        root,
        listen,
        admin_listen,
        telemetry: EbpfMode::Off,
        control: link(control.addr, &token_dir, name, cluster),
        ..ServeConfig::storage_defaults()
    };
    let east_cfg = storage(
        east_root,
        args.storage_east_listen,
        args.storage_east_admin_listen,
        "east-1",
        "east",
    );
    let west_cfg = storage(
        west_root,
        args.storage_west_listen,
        args.storage_west_admin_listen,
        "west-1",
        "west",
    );
    let east = server::start("storage-east", &east_cfg, stop_rx.clone()).await?;
    let west = server::start("storage-west", &west_cfg, stop_rx.clone()).await?;
    wait_up(&plane, &["east-1", "west-1"]).await?;
    let first_start = strata_control::contents::ContentBook { store: plane.store() }
        .list(None)?
        .is_empty();
    if first_start {
        ingest_demo(control.addr, &args.data_dir, plane.operator_token_file.clone()).await?;
        tracing::info!("demo content ingested through the control plane (home, replica and archive)");
    }
    let edge_cfg = |root: PathBuf, listen, admin_listen, name: &str, region: &str| ServeConfig {
        root,
        listen,
        admin_listen,
        control: ControlLink {
            region: region.into(),
            ..link(control.addr, &token_dir, name, "")
        },
        // The POP's edges share this process: CPU cannot be told apart per edge.
        director: DirectorSettings {
            cpu_in_load: false,
            ..DirectorSettings::default()
        },
        // Each edge's access log beside the POP's data (SIGUSR1 reopens it).
        access_log: strata_edge::access_log::settings::AccessLogSettings {
            path: args
                .data_dir
                .join(format!("{name}-access.log"))
                .display()
                .to_string(),
            ..Default::default()
        },
        ..ServeConfig::edge_defaults()
    };
    let mut edge_1_cfg = edge_cfg(
        edge_cache.clone(),
        args.edge_listen,
        args.edge_admin_listen,
        "edge-1",
        "east",
    );
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        edge_1_cfg.https.push(HttpsListener {
            listen: args.edge_https_listen,
            certificates: vec![CertificateFiles {
                cert: cert.clone(),
                key: key.clone(),
                names: Vec::new(),
            }],
        });
    }
    let edge = server::start("edge", &edge_1_cfg, stop_rx.clone()).await?;
    let edge_west = server::start(
        "edge-west",
        &edge_cfg(
            edge_west_cache.clone(),
            args.edge_west_listen,
            args.edge_west_admin_listen,
            "edge-2",
            "west",
        ),
        stop_rx.clone(),
    )
    .await?;
    let edge_east_2 = server::start(
        "edge-east-2",
        &edge_cfg(
            edge_east_2_cache.clone(),
            args.edge_east_2_listen,
            args.edge_east_2_admin_listen,
            "edge-3",
            "east",
        ),
        stop_rx.clone(),
    )
    .await?;
    wait_up(&plane, &["edge-1", "edge-2", "edge-3"]).await?;
    let solver = plane.clone();
    tokio::task::spawn_blocking(move || {
        // The POP's one instance leads as soon as its election thread has run once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !solver.leadership.is_leader() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the POP's control plane did not become the leader within 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        solver.map.tick(solver.store(), &solver.leadership)
    })
    .await
    .context("solving the first map")??;
    let dns_cfg = DnsSettings {
        listen: args.dns_listen,
        admin_listen: args.dns_admin_listen,
        domain: args.dns_domain.clone(),
        control_url: format!("http://{}", control.addr),
        control_token_file: token_dir.join("dns-1.token"),
        name: "dns-1".into(),
        ..DnsSettings::default()
    };
    let publish_token = super::pop_live::publish_token(&plane, &token_dir)?;
    let live_listens = [0, 1].map(|i| {
        (
            args.live_listen
                .get(i)
                .copied()
                .unwrap_or(([127, 0, 0, 1], 0).into()),
            args.live_admin_listen
                .get(i)
                .copied()
                .unwrap_or(([127, 0, 0, 1], 0).into()),
        )
    });
    let live = super::pop_live::start(
        control.addr,
        &token_dir,
        &args.data_dir.join("live"),
        live_listens,
        stop_rx.clone(),
    )
    .await?;
    let dns = strata_dns::start(&dns_cfg, stop_rx).await?;
    print_urls(
        edge.local_addr,
        edge.admin_addr,
        control.addr,
        &plane.operator_token_file,
    );
    if let (Some(https), Some(cert)) = (edge.https.first(), &args.tls_cert) {
        print_https(*https, cert);
    }
    print_dns(dns.local_addr, &args.dns_domain, edge_west.local_addr);
    super::pop_live::print_live(&live, edge.local_addr, &publish_token);
    print_director(edge.local_addr, edge_east_2.local_addr, edge_east_2.admin_addr);
    stop_signal().await;
    tracing::info!("stopping the POP");
    let _ = stop_tx.send(true);
    dns.join().await;
    for l in live {
        l.join().await;
    }
    edge.join().await;
    edge_west.join().await;
    edge_east_2.join().await;
    east.join().await;
    west.join().await;
    control.join().await;
    Ok(())
}

fn print_dns(dns: SocketAddr, domain: &str, edge_west: SocketAddr) {
    let ip = u32::from(std::net::Ipv4Addr::LOCALHOST);
    println!("Client routing: a nameserver for {domain} at {dns}, edges in regions east and west (west: http://{edge_west}):");
    println!(
        "  dig @{} -p {} SRV _a1-{ip}._tcp.srv.{domain}   # regions ranked for 127.0.0.1",
        dns.ip(),
        dns.port()
    );
    println!(
        "  dig @{} -p {} A reast.{domain}                  # region east's edges",
        dns.ip(),
        dns.port()
    );
    println!("  strata control map                                # the network map (blocks, load, regions)");
}

fn print_director(edge: SocketAddr, edge_east_2: SocketAddr, admin: SocketAddr) {
    let url = "/acme/launch-trailer/video-1080p.mp4";
    println!(
        "The director: a second east edge at http://{edge_east_2} fetches what http://{edge} holds from it:"
    );
    println!("  curl -o /dev/null http://{edge_east_2}{url}    # after the edge above holds it: served from that edge");
    println!("  curl -s http://{admin}/state                   # its region's state table and decisions");
}

fn print_https(https: SocketAddr, cert: &Path) {
    let cert = std::fs::canonicalize(cert).unwrap_or_else(|_| cert.to_path_buf());
    println!(
        "HTTPS on the same edge: https://{https} (self-signed for localhost; curl trusts it with --cacert):"
    );
    println!(
        "  curl --cacert {} -o /dev/null -w '%{{http_code}} %{{size_download}}\\n' https://localhost:{}/acme/launch-trailer/video-1080p.mp4",
        cert.display(),
        https.port()
    );
}

fn print_urls(edge: SocketAddr, admin: SocketAddr, control: SocketAddr, token: &Path) {
    let url = "/acme/launch-trailer/video-1080p.mp4";
    let get = "curl -o /dev/null -w '%{http_code} %{size_download}\\n'";
    println!();
    println!("strata POP is up. Edge http://{edge} (admin http://{admin}), control plane http://{control}");
    println!("The edge cache starts empty. Try a cold asset twice, then again:");
    println!("  {get} http://{edge}{url}     # miss: proxied from east");
    println!("  {get} http://{edge}{url}     # miss again: admitted, the cache fills in the background");
    println!("  {get} http://{edge}{url}     # local hit");
    println!("  curl -s http://{edge}/acme/launch-trailer/assets.json   # the asset list");
    println!("  curl -s http://{admin}/metrics | grep -E '^strata_(misses|cache_hits|cache_fills|body_bytes)_total'");
    println!("Operate it (another shell):");
    let token = std::fs::canonicalize(token).unwrap_or_else(|_| token.to_path_buf());
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    println!(
        "  export PATH={}:$PATH STRATA_CONTROL=http://{control} STRATA_TOKEN_FILE={}",
        bin_dir.display(),
        token.display()
    );
    println!("  strata control status");
    let secret = std::fs::read_to_string(&token).unwrap_or_default();
    println!(
        "  status page in a browser: http://{control}/#token={}   (the token stays in the browser)",
        secret.trim()
    );
    println!("  strata ingest --tenant acme --content my-show --hot ./my-show-files/");
    println!("  strata job create --tenant acme --content launch-trailer --to all-edges   # a tracked push to every edge");
    println!("  ffplay http://{edge}/acme/test-card/video.mp4   (playable MP4 when ffmpeg made one)");
    println!("Ctrl-C stops it.");
}
