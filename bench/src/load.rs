//! Keep-alive HTTP/1.1 load: N connections (one thread each) request targets from a list
//! (round-robin, or Zipf-distributed) back to back for a fixed time. Each response's status and
//! Content-Length are checked against the target; bodies are spliced to /dev/null, and every
//! `check_every`-th one is read and its CRC-32 compared. Latency (request write to last body
//! byte) goes into per-connection HdrHistograms merged at the end. Over HTTPS (`tls`) each
//! connection is a rustls session and bodies are decrypted into a buffer (tls_load.rs).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use rand::SeedableRng;

use crate::body_sink::BodySink;
use crate::tally::Tally;
use crate::url_mix::UrlMix;

/// One thing to ask for and what must come back.
#[derive(Clone, Debug)]
pub struct Target {
    /// The whole request (head only, GET).
    pub request: Vec<u8>,
    pub expect_len: u64,
    /// CRC-32 of the expected body, when known (checked on sampled responses).
    pub expect_crc: Option<u32>,
}

impl Target {
    /// A GET of `path`, optionally of the byte range `[start, start + len)`.
    pub fn get(path: &str, range: Option<(u64, u64)>, expect_len: u64, expect_crc: Option<u32>) -> Target {
        let range = range
            .map(|(s, l)| format!("Range: bytes={s}-{}\r\n", s + l - 1))
            .unwrap_or_default();
        Target {
            request: format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{range}\r\n").into_bytes(),
            expect_len,
            expect_crc,
        }
    }
}

/// A load run's shape.
#[derive(Clone)]
pub struct LoadPlan {
    pub addr: SocketAddr,
    pub targets: Arc<Vec<Target>>,
    pub zipf: Option<f64>,
    pub connections: usize,
    pub duration: Duration,
    /// Checksum one response in this many per connection (0: never).
    pub check_every: u64,
    /// Record which target each request asked for, and when (for scenario (c)'s exact LRU).
    pub record_sequence: bool,
    /// Speak HTTPS with this client configuration (server name `localhost`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// What a run counted.
#[derive(Debug)]
pub struct LoadOutcome {
    pub tally: Tally,
    pub seconds: f64,
}

impl LoadOutcome {
    pub fn gbit_per_sec(&self) -> f64 {
        self.tally.bytes as f64 * 8.0 / self.seconds / 1e9
    }
    pub fn requests_per_sec(&self) -> f64 {
        self.tally.requests as f64 / self.seconds
    }
}

/// Reads one response head (into `buf`, which may then hold body bytes too) and checks it
/// against `target`; returns the body length and how many of its bytes `buf` already holds.
pub(crate) fn read_head(
    s: &mut impl std::io::Read,
    buf: &mut Vec<u8>,
    target: &Target,
) -> anyhow::Result<(u64, usize)> {
    let head = crate::http_get::read_head(s, buf)?;
    if head.status != 200 && head.status != 206 {
        bail!("status {}", head.status);
    }
    let len = head.content_length;
    if len != target.expect_len {
        bail!("Content-Length {len}, expected {}", target.expect_len);
    }
    if buf.len() as u64 > len {
        bail!("{} bytes past the body", buf.len() as u64 - len);
    }
    Ok((len, buf.len()))
}

/// Sends one request and consumes its response; returns the body length.
fn exchange(
    s: &mut TcpStream,
    sink: &mut BodySink,
    buf: &mut Vec<u8>,
    target: &Target,
    check: bool,
) -> anyhow::Result<u64> {
    s.write_all(&target.request).context("sending a request")?;
    buf.clear();
    let (len, held) = read_head(s, buf, target)?;
    let rest = len - held as u64;
    match target.expect_crc.filter(|_| check) {
        Some(expected) => {
            let mut h = crc32fast::Hasher::new();
            h.update(&buf[..held]);
            sink.read_hashed(s, rest, &mut h)?;
            let got = h.finalize();
            if got != expected {
                bail!("body CRC {got:08x}, expected {expected:08x}");
            }
        }
        None => sink.discard(s, rest)?,
    }
    Ok(len)
}

/// One connection's loop until `stop`.
fn connection_loop(plan: &LoadPlan, seed: u64, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let (Ok(mut mix), Ok(mut sink)) = (UrlMix::new(plan.targets.len(), plan.zipf), BodySink::new()) else {
        tally.error();
        return tally;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut buf = Vec::with_capacity(16 << 10);
    let mut conn: Option<TcpStream> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let s = match conn.as_mut() {
            Some(s) => s,
            None => match TcpStream::connect(plan.addr) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    conn.insert(s)
                }
                Err(_) => {
                    tally.error();
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let pick = mix.pick(&mut rng);
        let target = &plan.targets[pick];
        n += 1;
        let check = plan.check_every > 0 && n.is_multiple_of(plan.check_every);
        let began = Instant::now();
        if plan.record_sequence {
            tally.picks.push((began, pick as u32));
        }
        match exchange(s, &mut sink, &mut buf, target, check) {
            Ok(len) => {
                tally.record(len, began.elapsed().as_micros() as u64);
                if check {
                    tally.checked += 1;
                }
            }
            Err(e) => {
                if tally.errors == 0 {
                    tally.first_error = Some(format!("{e:#}"));
                }
                tally.error();
                conn = None;
            }
        }
    }
    tally
}

/// Fetches every target once on one connection and checks each body's CRC-32: the bytes a
/// server gives for the targets, verified outside a timed run (h2load checks no bodies).
pub fn verify_each(addr: SocketAddr, targets: &[Target]) -> anyhow::Result<u64> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    let mut sink = BodySink::new()?;
    let mut buf = Vec::with_capacity(16 << 10);
    let mut checked = 0;
    for t in targets {
        exchange(&mut s, &mut sink, &mut buf, t, true).with_context(|| {
            format!(
                "verifying {}",
                String::from_utf8_lossy(&t.request).lines().next().unwrap_or("")
            )
        })?;
        checked += u64::from(t.expect_crc.is_some());
    }
    Ok(checked)
}

/// Runs the plan for its duration and merges every connection's tally.
pub fn run_load(plan: &LoadPlan) -> anyhow::Result<LoadOutcome> {
    UrlMix::new(plan.targets.len(), plan.zipf)?; // refuse a bad list or exponent before starting
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::with_capacity(plan.connections);
    for c in 0..plan.connections {
        let (plan, stop) = (plan.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("load-{c}"))
                .stack_size(256 << 10)
                .spawn(move || match plan.tls.clone() {
                    Some(tls) => crate::tls_load::connection_loop(&plan, tls, c as u64 + 1, &stop),
                    None => connection_loop(&plan, c as u64 + 1, &stop),
                })
                .context("starting a load thread")?,
        );
    }
    let started = Instant::now();
    std::thread::sleep(plan.duration);
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for t in threads {
        match t.join() {
            Ok(tally) => total.merge(&tally),
            Err(_) => total.error(),
        }
    }
    Ok(LoadOutcome {
        tally: total,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[derive(Args)]
pub struct LoadArgs {
    /// Server address, e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    /// Path to request, e.g. /acme/c/seg.m4s (repeatable: a list).
    #[arg(long = "path", required = true)]
    paths: Vec<String>,
    /// Expected body length of every path (checked on each response).
    #[arg(long)]
    expect_len: u64,
    /// Draw paths Zipf-distributed with this exponent (first path most popular) instead of
    /// round-robin.
    #[arg(long)]
    zipf: Option<f64>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

/// `bench load`: one ad-hoc run against any server, printed on one line.
pub fn run(args: &LoadArgs) -> anyhow::Result<()> {
    let targets = args
        .paths
        .iter()
        .map(|p| Target::get(p, None, args.expect_len, None))
        .collect();
    let out = run_load(&LoadPlan {
        addr: args.addr,
        targets: Arc::new(targets),
        zipf: args.zipf,
        connections: args.connections,
        duration: Duration::from_secs(args.seconds),
        check_every: 0,
        record_sequence: false,
        tls: None,
    })?;
    let t = &out.tally;
    println!(
        "requests/s {:.0}  Gbit/s {:.2}  p50 {} us  p99 {} us  p99.9 {} us  requests {}  errors {}  seconds {:.1}",
        out.requests_per_sec(),
        out.gbit_per_sec(),
        t.latency_us(0.5),
        t.latency_us(0.99),
        t.latency_us(0.999),
        t.requests,
        t.errors,
        out.seconds
    );
    if let Some(e) = &t.first_error {
        println!("first error: {e}");
    }
    Ok(())
}
