//! The ingest server's heartbeats: it registers with the control plane as a `live` server of
//! its ingest cluster and reports its streams every beat (the control plane's lookup sends
//! edges to the cluster while a stream is live, and `GET /v1/live` lists them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strata_wire::client::ServiceClient;
use strata_wire::heartbeat::{Heartbeat, HeartbeatReply, ServerRecord, ServerRole};
use strata_wire::live::{LivePhase, LiveReport};

use crate::context::LiveContext;
use crate::live_metrics::PhaseLabels;

/// Starts the heartbeat thread; it stops when `shutdown` changes.
pub fn spawn(
    ctx: Arc<LiveContext>,
    client: ServiceClient,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::thread::JoinHandle<()> {
    let record = ServerRecord {
        name: ctx.settings.control.name.clone(),
        role: ServerRole::Live,
        cluster: Some(ctx.settings.cluster.clone()),
        addr,
        admin_addr,
        region: None,
        capacity_bps: 0,
    };
    std::thread::Builder::new()
        .name("live-heartbeat".into())
        .spawn(move || {
            let mut healthy: Option<bool> = None;
            loop {
                if shutdown.has_changed().unwrap_or(true) {
                    return;
                }
                let streams = ctx.streams.report_blocking();
                for phase in [LivePhase::Live, LivePhase::Ending, LivePhase::Archiving, LivePhase::Archived] {
                    let n = streams.iter().filter(|s| s.phase == phase).count();
                    ctx.metrics
                        .streams
                        .get_or_create(&PhaseLabels { phase: phase_name(phase) })
                        .set(n as i64);
                }
                let hb = Heartbeat {
                    server: record.clone(),
                    edge: None,
                    live: Some(LiveReport { streams }),
                };
                match client.post::<_, HeartbeatReply>("/v1/heartbeat", &hb) {
                    Ok(_) => {
                        if healthy != Some(true) {
                            tracing::info!(control = %client.base(), cluster = %record.cluster.as_deref().unwrap_or(""), "registered with the control plane");
                        }
                        healthy = Some(true);
                    }
                    Err(e) => {
                        if healthy != Some(false) {
                            tracing::warn!(control = %client.base(), error = %e, "heartbeat to the control plane failed; retrying every beat");
                        }
                        healthy = Some(false);
                    }
                }
                std::thread::sleep(ctx.settings.control.heartbeat.max(Duration::from_millis(50)));
            }
        })
        .expect("spawn the heartbeat thread")
}

pub fn phase_name(p: LivePhase) -> &'static str {
    match p {
        LivePhase::Live => "live",
        LivePhase::Ending => "ending",
        LivePhase::Archiving => "archiving",
        LivePhase::Archived => "archived",
    }
}
