//! The machine's own limit for moving file bytes over loopback: one connection, a sender that
//! does nothing but sendfile(2) a cached file in a loop (server core), and a reader that splices
//! everything to /dev/null (load-generator core). Every server's figure is shown as a fraction
//! of this.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::body_sink::BodySink;
use crate::proc_stats::machine_busy_seconds;
use crate::servers::pin_to_cpu;

/// One run of the loop.
#[derive(Clone, Debug, Serialize)]
pub struct LimitRun {
    pub gbit_per_sec: f64,
    pub machine_cpu_s_per_gb: f64,
}

/// Runs the loop for `duration` with the sender on `sender_cpu` and the reader on `reader_cpu`.
pub fn sendfile_loop(
    file: &Path,
    duration: Duration,
    sender_cpu: usize,
    reader_cpu: usize,
) -> anyhow::Result<LimitRun> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the limit probe's listener")?;
    let addr = listener.local_addr()?;
    let src = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = src.metadata()?.len() as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let sender_stop = stop.clone();
    let sender = std::thread::spawn(move || -> anyhow::Result<()> {
        pin_to_cpu(sender_cpu)?;
        let (sock, _) = listener.accept().context("accepting the reader")?;
        let mut offset: i64 = 0;
        while !sender_stop.load(Ordering::Relaxed) {
            let left = size - offset as usize;
            match nix::sys::sendfile::sendfile(
                sock.as_fd(),
                src.as_fd(),
                Some(&mut offset),
                left.min(4 << 20),
            ) {
                Ok(_) => {}
                Err(_) if sender_stop.load(Ordering::Relaxed) => break,
                Err(e) => return Err(e).context("sendfile"),
            }
            if offset as usize >= size {
                offset = 0;
            }
        }
        Ok(())
    });
    let reader_stop = stop.clone();
    let received = Arc::new(AtomicU64::new(0));
    let counted = received.clone();
    let reader = std::thread::spawn(move || -> anyhow::Result<()> {
        pin_to_cpu(reader_cpu)?;
        let sock = TcpStream::connect(addr).context("connecting to the sender")?;
        let mut sink = BodySink::new()?;
        while !reader_stop.load(Ordering::Relaxed) {
            if sink.discard(&sock, 1 << 20).is_err() {
                break;
            }
            counted.fetch_add(1 << 20, Ordering::Relaxed);
        }
        Ok(())
    });
    // Let the connection reach its pace, then measure a window of known bytes.
    std::thread::sleep(Duration::from_millis(300));
    let (m0, t0) = (machine_busy_seconds(), Instant::now());
    let before = received.load(Ordering::Relaxed);
    std::thread::sleep(duration);
    let bytes = received.load(Ordering::Relaxed) - before;
    let (m1, secs) = (machine_busy_seconds(), t0.elapsed().as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the limit reader panicked"))??;
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("the limit sender panicked"))??;
    anyhow::ensure!(bytes > 0, "the limit probe moved no bytes in {secs:.1} s");
    let gb = bytes as f64 / 1e9;
    Ok(LimitRun {
        gbit_per_sec: bytes as f64 * 8.0 / secs / 1e9,
        machine_cpu_s_per_gb: if gb > 0.0 { (m1 - m0) / gb } else { 0.0 },
    })
}
