//! `strata storage` and `strata edge`: one HTTP file server until Ctrl-C or SIGTERM.

use tokio::sync::watch;

use strata_edge::server;
use strata_edge::settings::ServeConfig;

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
pub async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Runs one serving role until a stop signal.
pub async fn run(role: &'static str, cfg: ServeConfig) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let running = server::start(role, &cfg, stop_rx).await?;
    stop_signal().await;
    tracing::info!(role, "stopping");
    let _ = stop_tx.send(true);
    running.join().await;
    Ok(())
}
