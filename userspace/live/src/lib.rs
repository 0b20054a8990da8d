//! strata-live: the live ingest server (`strata live`). Encoders publish HLS/CMAF over plain
//! HTTP (`PUT`/`POST`/`DELETE` under `/{tenant}/{stream}/`, ffmpeg's `-method PUT`); every
//! segment is recorded on the cluster's shared root while edges fetch the live playlist and
//! segments from the same URLs; ended streams are archived through the control plane's ingest
//! API to on-demand storage. Depends only on strata-http and strata-wire.

pub mod archiver;
pub mod body_sink;
pub mod context;
pub mod control_agent;
pub mod live_metrics;
pub mod playlist;
pub mod publish;
pub mod publish_auth;
pub mod publish_error;
pub mod router;
pub mod settings;
pub mod stream_state;
pub mod streams;
pub mod viewer;

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use context::LiveContext;
use live_metrics::LiveMetrics;
use publish_auth::PublishAuth;
use settings::LiveSettings;
use strata_wire::client::{read_token_file, ServiceClient};
use streams::Streams;

/// Why the ingest server could not start.
#[derive(Debug, Error)]
pub enum LiveError {
    #[error("--control is required: the ingest server checks publish tokens and archives through the control plane")]
    NoControl,
    #[error("--name is required: the server's name in the registry")]
    NoName,
    #[error(transparent)]
    Token(#[from] strata_wire::client::ClientError),
    #[error("recording root {path}: {message}")]
    Root { path: String, message: String },
    #[error("listening on {addr}: {message}")]
    Listen { addr: String, message: String },
}

/// A started ingest server.
pub struct RunningLive {
    pub local_addr: std::net::SocketAddr,
    pub admin_addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningLive {
    /// Waits until the server stopped (after `stop` changed).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Starts an ingest server; it stops when `stop` changes.
pub async fn start(
    settings: LiveSettings,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<RunningLive, LiveError> {
    if settings.control.url.is_empty() {
        return Err(LiveError::NoControl);
    }
    if settings.control.name.is_empty() {
        return Err(LiveError::NoName);
    }
    let token = read_token_file(&settings.control.token_file)?;
    let streams = Streams::open(&settings.root).map_err(|e| LiveError::Root {
        path: settings.root.display().to_string(),
        message: e.to_string(),
    })?;
    let listen_err = |addr: std::net::SocketAddr, e: std::io::Error| LiveError::Listen {
        addr: addr.to_string(),
        message: e.to_string(),
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| listen_err(settings.listen, e))?;
    let admin = tokio::net::TcpListener::bind(settings.admin_listen)
        .await
        .map_err(|e| listen_err(settings.admin_listen, e))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| listen_err(settings.listen, e))?;
    let admin_addr = admin
        .local_addr()
        .map_err(|e| listen_err(settings.admin_listen, e))?;
    let client = ServiceClient::new(&settings.control.url, &token, Duration::from_secs(30));
    let ctx = Arc::new(LiveContext {
        auth: PublishAuth::new(&settings.control.url, settings.limits.token_cache),
        streams,
        metrics: LiveMetrics::new(),
        settings,
    });
    let heartbeats = control_agent::spawn(ctx.clone(), client.clone(), local_addr, admin_addr, stop.clone());
    let archiver = tokio::spawn(archiver::run(ctx.clone(), client, stop.clone()));
    tracing::info!(
        role = "live",
        name = %ctx.settings.control.name,
        %local_addr,
        %admin_addr,
        root = %ctx.settings.root.display(),
        cluster = %ctx.settings.cluster,
        "serving"
    );
    let serve = router::serve_streams(listener, router::streams(ctx.clone()), stop.clone());
    let mut admin_stop = stop.clone();
    let serve_admin = axum::serve(admin, router::admin(ctx.clone())).with_graceful_shutdown(async move {
        let _ = admin_stop.changed().await;
    });
    let task = tokio::spawn(async move {
        let ((), admin_result) = tokio::join!(serve, async { serve_admin.await });
        if let Err(e) = admin_result {
            tracing::error!(error = %e, "admin listener failed");
        }
        let _ = archiver.await;
        let _ = tokio::task::spawn_blocking(move || heartbeats.join()).await;
    });
    Ok(RunningLive {
        local_addr,
        admin_addr,
        task,
    })
}

/// Runs the ingest server until SIGINT/SIGTERM.
pub async fn run(settings: LiveSettings) -> Result<(), LiveError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = start(settings, stop_rx).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
    tracing::info!(role = "live", "stopping the ingest server");
    let _ = stop_tx.send(true);
    running.join().await;
    Ok(())
}
