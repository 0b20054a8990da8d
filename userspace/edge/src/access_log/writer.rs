//! The access log's writer thread: every few milliseconds takes the records off the queue,
//! formats them, appends them to the destination and flushes after each batch; a line counts as written only once its batch
//! was flushed. A reopen request (SIGUSR1) is honoured between batches: the old file is
//! flushed first, so every counted line is in exactly one file.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::record::AccessRecord;
use super::settings::Destination;

/// How long the writer sleeps after it emptied the queue (lines reach the file within about
/// this long; the default queue holds 65,536 lines, over 3 million lines a second).
const TICK: Duration = Duration::from_millis(20);
/// Most lines written before a flush.
const BATCH: u64 = 1024;

/// The access log's counters, shared by the connection tasks, the writer and /metrics.
#[derive(Debug, Default)]
pub struct LogCounters {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub reopens: AtomicU64,
    pub write_errors: AtomicU64,
    /// Set by SIGUSR1, taken by the writer.
    pub reopen_asked: AtomicBool,
    /// Lines the queue took, and lines the writer is done with (written or lost to an error):
    /// the queue is drained when they are equal.
    pub accepted: AtomicU64,
    pub finished: AtomicU64,
}

enum Sink {
    Stdout(io::Stdout),
    File(BufWriter<File>),
}

impl Sink {
    fn out(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(s) => s,
            Sink::File(f) => f,
        }
    }
}

/// The writer thread's state.
pub struct LogWriter {
    destination: Destination,
    sink: Sink,
    counters: Arc<LogCounters>,
}

fn open_file(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the access log {}", path.display()))?;
    Ok(BufWriter::with_capacity(256 * 1024, file))
}

impl LogWriter {
    /// Opens the destination (the file is created if missing and appended to).
    pub fn open(destination: Destination, counters: Arc<LogCounters>) -> anyhow::Result<LogWriter> {
        let sink = match &destination {
            Destination::File(p) => Sink::File(open_file(p)?),
            Destination::Stdout | Destination::Off => Sink::Stdout(io::stdout()),
        };
        Ok(LogWriter {
            destination,
            sink,
            counters,
        })
    }

    /// Writes lines until every sender is gone. The thread drains the queue every [`TICK`]
    /// instead of waiting on it, so a connection task's send never has to wake it (no futex
    /// wake-up and context switch per line on the serving path).
    pub fn run(mut self, rx: Receiver<AccessRecord>) {
        let mut line = Vec::with_capacity(512);
        loop {
            if self.counters.reopen_asked.swap(false, Ordering::AcqRel) {
                self.reopen();
            }
            let mut batch = 0u64;
            let mut failed = false;
            let mut gone = false;
            while batch < BATCH {
                let record = match rx.try_recv() {
                    Ok(r) => r,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                };
                line.clear();
                record.write_json(&mut line);
                line.push(b'\n');
                if self.sink.out().write_all(&line).is_err() {
                    failed = true;
                }
                batch += 1;
            }
            if batch > 0 {
                if self.sink.out().flush().is_err() {
                    failed = true;
                }
                if failed {
                    self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(destination = %self.destination, lines = batch, "writing the access log failed; these lines are lost");
                } else {
                    self.counters.written.fetch_add(batch, Ordering::Relaxed);
                }
                self.counters.finished.fetch_add(batch, Ordering::Release);
            }
            if gone {
                return;
            }
            if batch < BATCH {
                std::thread::sleep(TICK);
            }
        }
    }

    /// Flushes the current file and opens the path again (logrotate renamed the old one).
    fn reopen(&mut self) {
        let Destination::File(path) = &self.destination else {
            return;
        };
        let _ = self.sink.out().flush();
        match open_file(path) {
            Ok(f) => {
                self.sink = Sink::File(f);
                self.counters.reopens.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "reopening the access log failed; still writing to the old file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::record::Outcome;

    fn record(n: u16) -> AccessRecord {
        AccessRecord {
            time: std::time::SystemTime::now(),
            client: None,
            tenant: None,
            method: "GET".into(),
            path: format!("/t/c/{n}"),
            query: None,
            range: None,
            status: 200,
            bytes: 0,
            duration_ms: 0.0,
            outcome: Outcome::Hit,
            body_path: "none",
            upstream: None,
        }
    }

    #[test]
    fn lines_before_a_reopen_stay_in_the_renamed_file_and_later_ones_go_to_the_new() {
        let dir = std::env::temp_dir().join(format!("strata-alog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let counters = Arc::new(LogCounters::default());
        let writer = LogWriter::open(Destination::File(path.clone()), counters.clone()).unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        let thread = std::thread::spawn(move || writer.run(rx));
        tx.send(record(1)).unwrap();
        tx.send(record(2)).unwrap();
        while counters.written.load(Ordering::Relaxed) < 2 {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        counters.reopen_asked.store(true, Ordering::Release);
        while counters.reopens.load(Ordering::Relaxed) < 1 {
            std::thread::sleep(Duration::from_millis(5));
        }
        tx.send(record(3)).unwrap();
        drop(tx);
        thread.join().unwrap();
        let old = std::fs::read_to_string(dir.join("access.log.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(old.lines().count(), 2, "{old}");
        assert_eq!(new.lines().count(), 1, "{new}");
        assert!(new.contains("/t/c/3"));
        assert_eq!(counters.written.load(Ordering::Relaxed), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
