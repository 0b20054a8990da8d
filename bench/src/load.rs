//! Keep-alive HTTP/1.1 load: N connections (one thread each) request the same path back to back
//! for a fixed time, read and discard bodies in large reads, and check each body's length.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;

#[derive(Args)]
pub struct LoadArgs {
    /// Server address, e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    /// Path to request, e.g. /acme/c/seg.m4s.
    #[arg(long)]
    path: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

struct Totals {
    requests: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
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
    let totals = Arc::new(Totals {
        requests: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let request = format!("GET {} HTTP/1.1\r\nHost: bench\r\n\r\n", args.path);
    let mut threads = Vec::new();
    for _ in 0..args.connections {
        let (totals, stop, request, addr) = (totals.clone(), stop.clone(), request.clone(), args.addr);
        threads.push(std::thread::spawn(move || {
            let mut scratch = vec![0u8; 1 << 20];
            let mut buf = Vec::new();
            let mut conn: Option<TcpStream> = None;
            while !stop.load(Ordering::Relaxed) {
                let s = match conn.as_mut() {
                    Some(s) => s,
                    None => match TcpStream::connect(addr) {
                        Ok(s) => conn.insert(s),
                        Err(_) => {
                            totals.errors.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                    },
                };
                let sent = s.write_all(request.as_bytes());
                match sent
                    .map_err(anyhow::Error::from)
                    .and_then(|_| one_response(s, &mut buf, &mut scratch))
                {
                    Ok(n) => {
                        totals.requests.fetch_add(1, Ordering::Relaxed);
                        totals.bytes.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(_) => {
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                        buf.clear();
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(args.seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let req = totals.requests.load(Ordering::Relaxed) as f64;
    let bytes = totals.bytes.load(Ordering::Relaxed) as f64;
    println!(
        "requests/s {:.0}  Gbit/s {:.2}  requests {}  errors {}  seconds {:.1}",
        req / secs,
        bytes * 8.0 / secs / 1e9,
        req,
        totals.errors.load(Ordering::Relaxed),
        secs
    );
    Ok(())
}
