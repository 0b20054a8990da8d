//! Choosing and loading the kernel pieces a server runs on: the body path (io_uring splice or
//! sendfile), the eBPF connection telemetry, and the XDP guard. Each says at start what it
//! chose and, for a fallback, why.

use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use strata_common::GuardConfig;

use crate::upstream::body_relay::ProxyPath;
use strata_kernel::body_path::BodyPath;
use strata_kernel::conn_telemetry::ConnTelemetry;
use strata_kernel::guard_settings::GuardSettings;
use strata_kernel::sockmap_splice::SockmapSplice;
use strata_kernel::splice_worker::SplicePool;
use strata_kernel::xdp_guard::{GuardList, Prefix, XdpGuard};

/// Number of CPU cores, the default for worker counts.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// How response bodies leave the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BodyPathMode {
    /// io_uring splice if the kernel has it, else sendfile (logged).
    #[default]
    Auto,
    /// io_uring splice or refuse to start.
    #[value(name = "io_uring")]
    IoUring,
    /// sendfile(2) only.
    Sendfile,
}

/// Whether the eBPF connection telemetry is loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EbpfMode {
    /// Load it; if the kernel refuses, log why and serve without it.
    #[default]
    Auto,
    /// Load it or refuse to start.
    Required,
    /// Do not load it.
    Off,
}

/// How the data path runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataPath {
    pub body_path: BodyPathMode,
    /// io_uring worker rings; 0 means one per CPU core.
    pub splice_workers: usize,
    /// Threads that run the connection tasks; 0 means one per CPU core.
    pub worker_threads: usize,
    /// Bytes of small files (up to 64 KiB each: playlists, parts, thumbnails) held in memory
    /// and written with their head in one call; 0 turns it off.
    pub small_body_memory: u64,
}

impl Default for DataPath {
    fn default() -> Self {
        DataPath {
            body_path: BodyPathMode::default(),
            splice_workers: 0,
            worker_threads: 0,
            small_body_memory: 64 << 20,
        }
    }
}

/// Chooses the body path: io_uring splice when possible, per the configured mode.
pub fn choose_body_path(role: &str, mode: BodyPathMode, workers: usize) -> anyhow::Result<BodyPath> {
    let workers = if workers == 0 { cores() } else { workers };
    if mode == BodyPathMode::Sendfile {
        tracing::info!(role, "body path: sendfile(2) (chosen by configuration)");
        return Ok(BodyPath::Sendfile);
    }
    match SplicePool::start(workers) {
        Ok(pool) => {
            tracing::info!(
                role,
                workers = pool.workers(),
                "body path: io_uring splice (file -> pipe -> socket)"
            );
            Ok(BodyPath::IoUringSplice(pool))
        }
        Err(e) if mode == BodyPathMode::Auto => {
            tracing::warn!(role, error = %e, "io_uring splice unavailable; body path: sendfile(2) fallback");
            Ok(BodyPath::Sendfile)
        }
        Err(e) => Err(e).context("body_path = io_uring was asked for but io_uring splice is unavailable"),
    }
}

/// Loads the connection telemetry program per the configured mode.
pub fn load_telemetry(
    role: &str,
    mode: EbpfMode,
    port: u16,
    upstreams: &[std::net::SocketAddr],
) -> anyhow::Result<Option<Arc<ConnTelemetry>>> {
    if mode == EbpfMode::Off {
        return Ok(None);
    }
    match ConnTelemetry::attach(port, upstreams) {
        Ok(t) => {
            tracing::info!(role, cgroup = %t.cgroup().display(), port, "eBPF sock_ops conn_telemetry attached");
            Ok(Some(Arc::new(t)))
        }
        Err(e) if mode == EbpfMode::Auto => {
            tracing::warn!(role, error = %e, "eBPF connection telemetry unavailable; serving without it");
            Ok(None)
        }
        Err(e) => Err(e).context("telemetry = required but the eBPF program could not be attached"),
    }
}

/// Loads and attaches the XDP guard when an interface is configured; its lists and limits come
/// from the configuration. A configured guard that cannot attach stops the start-up.
pub fn load_guard(role: &str, settings: &GuardSettings) -> anyhow::Result<Option<Arc<XdpGuard>>> {
    if settings.interface.is_empty() {
        return Ok(None);
    }
    let interface = settings.interface.as_str();
    let mut guard =
        XdpGuard::load().context("guard.interface is set but the XDP guard could not be loaded")?;
    guard.set_limits(GuardConfig {
        syn_rate: settings.syn_rate,
        syn_burst: settings.syn_burst.max(settings.syn_rate.min(1)),
        packet_rate: settings.packet_rate,
        packet_burst: settings.packet_burst.max(settings.packet_rate.min(1)),
    })?;
    for (list, prefixes) in [
        (GuardList::Allow, &settings.allow),
        (GuardList::Block, &settings.block),
    ] {
        for text in prefixes {
            let prefix =
                Prefix::parse(text).with_context(|| format!("guard.{list:?} entry").to_lowercase())?;
            guard.add(list, prefix)?;
        }
    }
    let mode = match super::handover::inherited_guard_link(interface) {
        Some(pin) => guard
            .attach_inherited(interface, &pin)
            .context("taking over the previous process's XDP guard link")?,
        None => guard.attach(interface, settings.mode)?,
    };
    tracing::info!(
        role,
        interface,
        mode,
        syn_rate = settings.syn_rate,
        packet_rate = settings.packet_rate,
        allow = settings.allow.len(),
        block = settings.block.len(),
        "XDP guard attached ({mode} mode)"
    );
    Ok(Some(Arc::new(guard)))
}

/// Chooses how proxied bodies move: `auto` loads the sockmap programs and runs the capability
/// probe (a few bytes through them between two loopback connections), then chooses per
/// response among sockmap (when the probe passed), splice and copy by measured rate;
/// `sockmap` asked for explicitly must pass the probe or the start fails.
pub async fn choose_proxy_path(
    role: &str,
    mode: ProxyPath,
) -> anyhow::Result<(ProxyPath, Option<Arc<SockmapSplice>>)> {
    match mode {
        ProxyPath::Splice | ProxyPath::Copy => {
            tracing::info!(role, path = ?mode, "proxy body path chosen by configuration");
            return Ok((mode, None));
        }
        ProxyPath::Auto | ProxyPath::Sockmap => {}
    }
    let probed = match SockmapSplice::load() {
        Ok(splice) => {
            let probe = splice.clone();
            match tokio::task::spawn_blocking(move || probe.probe()).await {
                Ok(Ok(())) => Ok(splice),
                Ok(Err(e)) => Err(anyhow::Error::new(e)),
                Err(e) => Err(anyhow::anyhow!("probe task: {e}")),
            }
        }
        Err(e) => Err(anyhow::Error::new(e)),
    };
    match (probed, mode) {
        (Ok(splice), ProxyPath::Auto) => {
            tracing::info!(
                role,
                "proxy body path: auto, per response the fastest measured of sockmap (sk_skb programs loaded and probed), splice and copy"
            );
            Ok((ProxyPath::Auto, Some(splice)))
        }
        (Ok(splice), _) => {
            tracing::info!(
                role,
                "proxy body path: sockmap (sk_skb parser + verdict, socket -> socket in the kernel)"
            );
            Ok((ProxyPath::Sockmap, Some(splice)))
        }
        (Err(e), ProxyPath::Auto) => {
            tracing::warn!(role, error = %e, "sockmap splice unavailable; proxy body path: auto, per response the fastest measured of splice and copy");
            Ok((ProxyPath::Auto, None))
        }
        (Err(e), _) => Err(e.context("proxy_path = sockmap was asked for but the sockmap programs failed")),
    }
}
