//! `strata pop`: a storage server and an edge on loopback in one process, with demo content,
//! printing URLs to try.

use anyhow::Context as _;
use tokio::sync::watch;

use super::serve::stop_signal;
use crate::cli::PopArgs;
use crate::config::{EbpfMode, ServeConfig};
use crate::{demo_data, server};

/// Runs the POP until Ctrl-C.
pub async fn run(args: PopArgs) -> anyhow::Result<()> {
    let storage_root = args.data_dir.join("storage");
    let edge_cache = args.data_dir.join("edge-cache");
    for dir in [&storage_root, &edge_cache] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if demo_data::is_empty_dir(&storage_root) {
        let written = demo_data::create(&storage_root, &edge_cache)?;
        tracing::info!(assets = written.len(), dir = %args.data_dir.display(), "created demo content");
    }
    let storage_cfg = ServeConfig {
        root: storage_root,
        listen: args.storage_listen,
        admin_listen: args.storage_admin_listen,
        telemetry: EbpfMode::Off,
        ..ServeConfig::storage_defaults()
    };
    let edge_cfg = ServeConfig {
        root: edge_cache.clone(),
        listen: args.edge_listen,
        admin_listen: args.edge_admin_listen,
        ..ServeConfig::edge_defaults()
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let storage = server::start("storage", &storage_cfg, stop_rx.clone()).await?;
    let edge = server::start("edge", &edge_cfg, stop_rx).await?;
    print_urls(&edge_cache, edge.local_addr, edge.admin_addr, storage.local_addr);
    stop_signal().await;
    tracing::info!("stopping the POP");
    let _ = stop_tx.send(true);
    edge.join().await;
    storage.join().await;
    Ok(())
}

fn print_urls(
    edge_cache: &std::path::Path,
    edge: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    storage: std::net::SocketAddr,
) {
    let mut cached: Vec<String> = Vec::new();
    for (tenant, content, asset, _) in demo_data::DEMO_ASSETS {
        if edge_cache.join(tenant).join(content).join(asset).is_file() {
            cached.push(format!("/{tenant}/{content}/{asset}"));
        }
    }
    let first = cached
        .first()
        .cloned()
        .unwrap_or_else(|| "/acme/launch-trailer/init.mp4".into());
    println!();
    println!("strata POP is up. Edge http://{edge}  storage http://{storage}  admin http://{admin}");
    println!("Try:");
    println!("  curl -o /dev/null -w '%{{http_code}} %{{size_download}}\\n' http://{edge}{first}");
    println!("  curl -r 100-199 -o /dev/null -w '%{{http_code}} %{{size_download}}\\n' http://{edge}{first}");
    println!(
        "  curl -o /dev/null -w '%{{http_code}} %{{size_download}}\\n' 'http://{edge}{first}?bytes=100-199'"
    );
    println!("  curl -I http://{edge}{first}");
    for url in cached.iter().skip(1) {
        println!("  curl -o /dev/null http://{edge}{url}");
    }
    if edge_cache.join("acme/test-card/video.mp4").is_file() {
        println!("  ffplay http://{edge}/acme/test-card/video.mp4   (playable MP4)");
    }
    println!("  curl http://{storage}/globex/keynote-2026/video-720p.mp4 -o /dev/null   (storage tier)");
    println!("  curl http://{admin}/metrics");
    println!("Ctrl-C stops it.");
}
