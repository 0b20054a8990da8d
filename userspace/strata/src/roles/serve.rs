//! `strata storage` and `strata edge`: one HTTP file server until Ctrl-C or SIGTERM, with
//! reload and upgrade by handover (see `strata_edge::server::handover`):
//!
//! - SIGHUP or `POST /process/reload` (`strata edge reload`): the configuration is read again
//!   from the same file and flags; if it is invalid, the error (naming the file) is logged and
//!   answered and nothing changes; if it is valid, a new process of the same binary starts
//!   with it and takes the listeners over — every setting, listen addresses, certificates and
//!   eBPF ones included, takes effect, since it is a fresh process;
//! - SIGUSR2 or `POST /process/upgrade` (`strata edge upgrade`): the same with the binary the
//!   process was started from as it is on disk now (a new version);
//!
//! then this process tells systemd the new main PID, stops accepting, and drains its open
//! connections (until none is left or `handover.drain_timeout`) before it exits.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use strata_edge::server;
use strata_edge::server::handover::{self, HandoverError, Started, Successor};
use strata_edge::server::{listen_fds, process_admin, sd_notify};
use strata_edge::settings::ServeConfig;

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
pub async fn stop_signal() {
    let term = async {
        match signal(SignalKind::terminate()) {
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

/// Runs one serving role until a stop signal, or until a successor took it over and this
/// process drained. `reread` reads the configuration again for a reload.
pub async fn run(
    role: &'static str,
    cfg: ServeConfig,
    reread: fn() -> anyhow::Result<ServeConfig>,
) -> anyhow::Result<()> {
    handover::remember_binary();
    // Before the server starts: from its first log line on, SIGHUP must not kill it.
    let mut hangup = signal(SignalKind::hangup())?;
    let mut upgrade = signal(SignalKind::user_defined2())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let running = server::start(role, &cfg, stop_rx).await?;
    listen_fds::close_unclaimed();
    if !handover::report_ready() {
        sd_notify::notify("READY=1");
    }
    let mut requests = process_admin::install();
    let stop = stop_signal();
    tokio::pin!(stop);
    let started = loop {
        let (which, reply) = tokio::select! {
            _ = &mut stop => {
                tracing::info!(role, "stopping");
                let _ = stop_tx.send(true);
                running.join().await;
                return Ok(());
            }
            _ = hangup.recv() => (Successor::SameBinary, None),
            _ = upgrade.recv() => (Successor::OnDisk, None),
            Some(req) = async {
                match requests.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => (req.which, Some(req.reply)),
        };
        let what = match which {
            Successor::SameBinary => "reload",
            Successor::OnDisk => "upgrade",
        };
        tracing::info!(role, binary = %handover::describe(which), "{what}: starting a successor");
        match hand_over(which, &cfg, reread, &running).await {
            Ok(started) => {
                if let Some(r) = reply {
                    let _ = r.send(Ok(Started {
                        pid: started.pid,
                        binary: started.binary.clone(),
                    }));
                }
                break started;
            }
            Err(e) => {
                handover::count_failure();
                tracing::error!(role, error = %e, "{what} failed; still serving");
                if let Some(r) = reply {
                    let _ = r.send(Err(e));
                }
            }
        }
    };
    // Further requests (a second reload while this one drains) are refused.
    drop(requests);
    if sd_notify::notify(&format!("MAINPID={}", started.pid)) {
        tracing::info!(pid = started.pid, "told systemd the new main process");
    }
    let drainer = running.drainer();
    drainer.start();
    let _ = stop_tx.send(true);
    running.join().await;
    tracing::info!(
        role,
        successor = started.pid,
        "stopped accepting; draining open connections"
    );
    let deadline = cfg.handover.drain_timeout;
    tokio::select! {
        left = drainer.drain(deadline) => {
            if left == 0 {
                tracing::info!(role, "drained; exiting");
            } else {
                tracing::warn!(role, open = left, ?deadline, "drain deadline passed (handover.drain_timeout); closing the connections still open");
            }
        }
        _ = &mut stop => tracing::warn!(role, "stop signal while draining; exiting now"),
    }
    Ok(())
}

/// Validates the configuration (reload) and starts the successor.
async fn hand_over(
    which: Successor,
    current: &ServeConfig,
    reread: fn() -> anyhow::Result<ServeConfig>,
    running: &server::RunningServer,
) -> Result<Started, HandoverError> {
    let ready_timeout = match which {
        Successor::SameBinary => {
            let cfg = tokio::task::spawn_blocking(reread)
                .await
                .map_err(|e| HandoverError::Config(format!("reading the configuration: {e}")))?
                .map_err(|e| HandoverError::Config(format!("{e:#}")))?;
            cfg.handover.ready_timeout
        }
        // A new binary may know settings this one does not: it checks its configuration itself.
        Successor::OnDisk => current.handover.ready_timeout,
    };
    let env = running.prepare_handover()?;
    let started = handover::start_successor(which, ready_timeout, &env).await;
    if started.is_err() {
        running.handover_failed();
    }
    started
}
