//! The access log: one JSON line per response, written off the hot path. Connection tasks hand
//! a finished [`record::AccessRecord`] to a bounded queue ([`AccessLog::submit`] never waits:
//! a full queue drops the line and counts it); one writer thread formats and appends the
//! lines to a file (reopened on SIGUSR1, for logrotate) or to stdout.

pub mod log_metrics;
pub mod record;
pub mod settings;
pub mod writer;

use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use record::AccessRecord;
use settings::{AccessLogSettings, Destination};
use writer::{LogCounters, LogWriter};

/// The connection tasks' side of the access log.
#[derive(Debug)]
pub struct AccessLog {
    tx: SyncSender<AccessRecord>,
    counters: Arc<LogCounters>,
}

impl AccessLog {
    /// Starts the writer thread for `settings`; None when the log is off. The destination is
    /// opened here, so a path that cannot be written fails the start with its name.
    pub fn start(role: &str, settings: &AccessLogSettings) -> anyhow::Result<Option<Arc<AccessLog>>> {
        let destination = settings.destination();
        if destination == Destination::Off {
            return Ok(None);
        }
        let counters = Arc::new(LogCounters::default());
        let (tx, rx) = sync_channel(settings.queue_lines.max(1));
        let writer = LogWriter::open(destination.clone(), counters.clone())?;
        std::thread::Builder::new()
            .name(format!("{role}-access-log"))
            .spawn(move || writer.run(rx))
            .map_err(|e| anyhow::anyhow!("starting the access log writer thread: {e}"))?;
        tracing::info!(role, destination = %destination, queue_lines = settings.queue_lines, "access log on");
        Ok(Some(Arc::new(AccessLog { tx, counters })))
    }

    /// Queues one line; a full queue drops it (counted), never blocking the caller.
    pub fn submit(&self, record: AccessRecord) {
        match self.tx.try_send(record) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits (at most `within`) until every line queued so far is written, so stopping the
    /// server does not lose the last lines.
    pub async fn drain(&self, within: std::time::Duration) {
        let until = tokio::time::Instant::now() + within;
        let accepted = self.counters.accepted.load(Ordering::Relaxed);
        while self.counters.finished.load(Ordering::Acquire) < accepted {
            if tokio::time::Instant::now() >= until {
                tracing::warn!(
                    unwritten = accepted - self.counters.finished.load(Ordering::Acquire),
                    "access log lines still queued at stop"
                );
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Asks the writer to reopen its file (after logrotate renamed it).
    pub fn reopen(&self) {
        self.counters.reopen_asked.store(true, Ordering::Release);
    }

    /// The counters /metrics reports.
    pub fn counters(&self) -> Arc<LogCounters> {
        self.counters.clone()
    }
}

/// Reopens `log`'s file on every SIGUSR1 until the process ends.
pub fn reopen_on_sigusr1(log: Arc<AccessLog>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut usr1 = signal(SignalKind::user_defined1())
        .map_err(|e| anyhow::anyhow!("installing the SIGUSR1 handler (access log reopen): {e}"))?;
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            tracing::info!("SIGUSR1: reopening the access log");
            log.reopen();
        }
    });
    Ok(())
}
