//! The machine's own limit for moving file bytes over loopback: senders that do nothing but
//! sendfile(2) a cached file in a loop (server core) and readers that splice everything to
//! /dev/null (load-generator core), over one connection and over as many connections as each
//! scenario uses. Every server's figure is shown as a fraction of the limit at its concurrency.

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

/// Runs the loop for `duration` over `connections` connections, each with its own sender
/// thread on `sender_cpu` and reader thread on `reader_cpu`.
pub fn sendfile_loop(
    file: &Path,
    duration: Duration,
    connections: usize,
    sender_cpu: usize,
    reader_cpu: usize,
) -> anyhow::Result<LimitRun> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the limit probe's listener")?;
    let addr = listener.local_addr()?;
    let src = Arc::new(File::open(file).with_context(|| format!("opening {}", file.display()))?);
    let size = src.metadata()?.len() as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let (reader_stop, counted) = (stop.clone(), received.clone());
        readers.push(std::thread::spawn(move || -> anyhow::Result<()> {
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
        }));
    }
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let (sock, _) = listener.accept().context("accepting a limit reader")?;
        let (sender_stop, src) = (stop.clone(), src.clone());
        senders.push(std::thread::spawn(move || -> anyhow::Result<()> {
            pin_to_cpu(sender_cpu)?;
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
        }));
    }
    // Let the connection reach its pace, then measure a window of known bytes.
    std::thread::sleep(Duration::from_millis(300));
    let (m0, t0) = (machine_busy_seconds(), Instant::now());
    let before = received.load(Ordering::Relaxed);
    std::thread::sleep(duration);
    let bytes = received.load(Ordering::Relaxed) - before;
    let (m1, secs) = (machine_busy_seconds(), t0.elapsed().as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("a limit reader panicked"))??;
    }
    for sender in senders {
        sender
            .join()
            .map_err(|_| anyhow::anyhow!("a limit sender panicked"))??;
    }
    anyhow::ensure!(bytes > 0, "the limit probe moved no bytes in {secs:.1} s");
    let gb = bytes as f64 / 1e9;
    Ok(LimitRun {
        gbit_per_sec: bytes as f64 * 8.0 / secs / 1e9,
        machine_cpu_s_per_gb: if gb > 0.0 { (m1 - m0) / gb } else { 0.0 },
    })
}
