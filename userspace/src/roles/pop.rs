//! `strata pop`: a point of presence on loopback in one process: two storage clusters ("east",
//! home of tenant acme, and "west", home of globex; each the other's replica) and an edge whose
//! cache starts empty, so a first request is a miss proxied from the storage tier, a second
//! within a minute admits the asset and fills the cache, and later ones are local hits.

use anyhow::Context as _;
use tokio::sync::watch;

use super::serve::stop_signal;
use crate::cli::PopArgs;
use crate::config::{EbpfMode, ServeConfig};
use crate::{demo_data, server};

/// Runs the POP until Ctrl-C.
pub async fn run(args: PopArgs) -> anyhow::Result<()> {
    let east_root = args.data_dir.join("storage-east");
    let west_root = args.data_dir.join("storage-west");
    let edge_cache = args.data_dir.join("edge-cache");
    for dir in [&east_root, &west_root, &edge_cache] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if demo_data::is_empty_dir(&east_root) {
        let written = demo_data::create(&east_root, &[&west_root])?;
        tracing::info!(assets = written.len(), dir = %args.data_dir.display(), "created demo content on both storage clusters");
    }
    let storage = |root, listen, admin_listen| ServeConfig {
        root,
        listen,
        admin_listen,
        telemetry: EbpfMode::Off,
        ..ServeConfig::storage_defaults()
    };
    let east_cfg = storage(
        east_root,
        args.storage_east_listen,
        args.storage_east_admin_listen,
    );
    let west_cfg = storage(
        west_root,
        args.storage_west_listen,
        args.storage_west_admin_listen,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let east = server::start("storage-east", &east_cfg, stop_rx.clone()).await?;
    let west = server::start("storage-west", &west_cfg, stop_rx.clone()).await?;
    let mut edge_cfg = ServeConfig {
        root: edge_cache.clone(),
        listen: args.edge_listen,
        admin_listen: args.edge_admin_listen,
        ..ServeConfig::edge_defaults()
    };
    edge_cfg
        .lookup
        .clusters
        .insert("east".into(), vec![east.local_addr]);
    edge_cfg
        .lookup
        .clusters
        .insert("west".into(), vec![west.local_addr]);
    edge_cfg
        .lookup
        .tenants
        .insert("acme".into(), vec!["east".into(), "west".into()]);
    edge_cfg
        .lookup
        .tenants
        .insert("globex".into(), vec!["west".into(), "east".into()]);
    let edge = server::start("edge", &edge_cfg, stop_rx).await?;
    print_urls(edge.local_addr, edge.admin_addr, east.local_addr, west.local_addr);
    stop_signal().await;
    tracing::info!("stopping the POP");
    let _ = stop_tx.send(true);
    edge.join().await;
    east.join().await;
    west.join().await;
    Ok(())
}

fn print_urls(
    edge: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    east: std::net::SocketAddr,
    west: std::net::SocketAddr,
) {
    let url = "/acme/launch-trailer/video-1080p.mp4";
    let get = "curl -o /dev/null -w '%{http_code} %{size_download}\\n'";
    println!();
    println!("strata POP is up. Edge http://{edge} (admin http://{admin}), storage east http://{east}, west http://{west}");
    println!("The edge cache starts empty. Try a cold asset twice, then again:");
    println!("  {get} http://{edge}{url}     # miss: proxied from east");
    println!("  {get} http://{edge}{url}     # miss again: admitted, the cache fills in the background");
    println!("  {get} http://{edge}{url}     # local hit");
    println!("  curl -s http://{admin}/metrics | grep -E '^strata_(misses|cache_hits|cache_fills|body_bytes)_total'");
    println!("Ranges: curl -r 100-199 ... (206) or '...?bytes=100-199' (200); tenant globex lives on west:");
    println!("  {get} http://{edge}/globex/keynote-2026/video-720p.mp4");
    println!("  ffplay http://{edge}/acme/test-card/video.mp4   (playable MP4 when ffmpeg made one)");
    println!("Ctrl-C stops it.");
}
