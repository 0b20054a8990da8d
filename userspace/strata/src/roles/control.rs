//! `strata control serve`: opens the control plane's data directory and serves its API until
//! stopped. Also started in-process by `strata pop`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use strata_control::api::router;
use strata_control::api_common::ApiState;
use strata_control::control_metrics::ControlMetrics;
use strata_control::map::map_metrics::MapCollector;
use strata_control::plane::{ControlPlane, ControlSettings};

/// A running control plane.
pub struct RunningControl {
    pub addr: SocketAddr,
    pub plane: Arc<ControlPlane>,
    task: JoinHandle<()>,
}

impl RunningControl {
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Opens the data directory and starts serving the API on `listen`.
pub async fn start(
    settings: ControlSettings,
    listen: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<RunningControl> {
    let open_settings = settings.clone();
    let plane = tokio::task::spawn_blocking(move || ControlPlane::open(&open_settings))
        .await
        .context("opening the control plane")??;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("control: binding the API listener {listen}"))?;
    let addr = listener.local_addr()?;
    let app = router(ApiState {
        plane: plane.clone(),
        metrics: Arc::new(ControlMetrics::new().with_collector(Box::new(MapCollector(plane.map.clone())))),
    });
    tracing::info!(
        role = "control",
        local_addr = %addr,
        admin_addr = %addr,
        data_dir = %settings.data_dir.display(),
        archive = %plane.archive_root.display(),
        "serving"
    );
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "control API listener failed");
        }
    });
    Ok(RunningControl { addr, plane, task })
}

/// Runs `strata control serve` until Ctrl-C or SIGTERM.
pub async fn serve(settings: ControlSettings) -> anyhow::Result<()> {
    let listen = settings.listen;
    let (stop_tx, stop_rx) = watch::channel(false);
    let running = start(settings, listen, stop_rx).await?;
    super::serve::stop_signal().await;
    tracing::info!("stopping the control plane");
    let _ = stop_tx.send(true);
    running.join().await;
    Ok(())
}
