//! Keep-alive HTTP/1.1 load: N connections (one thread each) request paths from a list (round-
//! robin, or Zipf-distributed with `--zipf`) back to back for a fixed time, read and discard
//! bodies in large reads, check each body's length, and report requests/s, Gbit/s, latency
//! percentiles (HdrHistogram, merged over connections) and errors.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use rand::SeedableRng;

use crate::tally::Tally;
use crate::url_mix::UrlMix;

#[derive(Args)]
pub struct LoadArgs {
    /// Server address, e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    /// Path to request, e.g. /acme/c/seg.m4s (repeatable: a list).
    #[arg(long = "path", required = true)]
    paths: Vec<String>,
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

/// Reads one response; returns its body length.
fn one_response(s: &mut TcpStream, buf: &mut Vec<u8>, scratch: &mut [u8]) -> anyhow::Result<u64> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(n) = resp.parse(buf).context("bad response head")? {
            if resp.code != Some(200) && resp.code != Some(206) {
                bail!("status {:?}", resp.code);
            }
            let len: u64 = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .context("no Content-Length")?;
            buf.drain(..n);
            let mut left = len;
            let take = (buf.len() as u64).min(left);
            buf.drain(..take as usize);
            left -= take;
            while left > 0 {
                let want = (left as usize).min(scratch.len());
                let got = s.read(&mut scratch[..want])?;
                if got == 0 {
                    bail!("connection closed mid-body");
                }
                left -= got as u64;
            }
            return Ok(len);
        }
        let got = s.read(scratch)?;
        if got == 0 {
            bail!("connection closed before a response");
        }
        buf.extend_from_slice(&scratch[..got]);
    }
}

pub fn run(args: &LoadArgs) -> anyhow::Result<()> {
    UrlMix::new(args.paths.len(), args.zipf)?; // refuse a bad list or exponent before starting
    let stop = Arc::new(AtomicBool::new(false));
    let requests: Arc<Vec<String>> = Arc::new(
        args.paths
            .iter()
            .map(|p| format!("GET {p} HTTP/1.1\r\nHost: bench\r\n\r\n"))
            .collect(),
    );
    let mut threads = Vec::new();
    for c in 0..args.connections {
        let (stop, requests, addr, zipf) = (stop.clone(), requests.clone(), args.addr, args.zipf);
        threads.push(std::thread::spawn(move || -> Tally {
            let mut tally = Tally::default();
            let Ok(mut mix) = UrlMix::new(requests.len(), zipf) else {
                return tally;
            };
            let mut rng = rand::rngs::StdRng::seed_from_u64(c as u64);
            let mut scratch = vec![0u8; 1 << 20];
            let mut buf = Vec::new();
            let mut conn: Option<TcpStream> = None;
            while !stop.load(Ordering::Relaxed) {
                let s = match conn.as_mut() {
                    Some(s) => s,
                    None => match TcpStream::connect(addr) {
                        Ok(s) => conn.insert(s),
                        Err(_) => {
                            tally.error();
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                    },
                };
                let request = &requests[mix.pick(&mut rng)];
                let began = Instant::now();
                let answered = s
                    .write_all(request.as_bytes())
                    .map_err(anyhow::Error::from)
                    .and_then(|_| one_response(s, &mut buf, &mut scratch));
                match answered {
                    Ok(n) => tally.record(n, began.elapsed().as_micros() as u64),
                    Err(_) => {
                        tally.error();
                        conn = None;
                        buf.clear();
                    }
                }
            }
            tally
        }));
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(args.seconds));
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for t in threads {
        if let Ok(tally) = t.join() {
            total.merge(&tally);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "requests/s {:.0}  Gbit/s {:.2}  p50 {} us  p99 {} us  p99.9 {} us  requests {}  errors {}  seconds {:.1}",
        total.requests as f64 / secs,
        total.bytes as f64 * 8.0 / secs / 1e9,
        total.latency_us(0.5),
        total.latency_us(0.99),
        total.latency_us(0.999),
        total.requests,
        total.errors,
        secs
    );
    Ok(())
}
