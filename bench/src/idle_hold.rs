//! Scenario (d), idle keep-alive connections: helper processes (`bench hold`, each under the
//! 20,000-open-files limit, each from its own loopback source address) open connections to the
//! server, make one request on each, and then hold them quiet; the server's RSS is read at each
//! level and the slope (KiB per connection) fitted through the levels.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
use serde::Serialize;

use crate::proc_stats::tree_rss_kib;
use crate::servers::ServerProcess;

/// Most connections one helper process holds (its own fd limit is 20,000).
const PER_HOLDER: usize = 5000;

#[derive(Args)]
pub struct HoldArgs {
    /// Server address.
    #[arg(long)]
    addr: SocketAddrV4,
    /// Connections to open and hold.
    #[arg(long)]
    count: usize,
    /// Loopback source address to connect from (spreads the source ports).
    #[arg(long)]
    source: Ipv4Addr,
    /// Path requested once on each connection.
    #[arg(long)]
    path: String,
}

fn connect_from(source: Ipv4Addr, addr: SocketAddrV4) -> anyhow::Result<TcpStream> {
    let fd: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket")?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(source, 0)),
    )
    .with_context(|| format!("binding to {source}"))?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(addr))
        .with_context(|| format!("connecting {source} → {addr}"))?;
    Ok(TcpStream::from(fd))
}

/// `bench hold`: open, request once, report `held N` on stdout, hold until stdin closes.
pub fn hold(args: &HoldArgs) -> anyhow::Result<()> {
    let limit =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).context("getrlimit")?;
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, limit.1, limit.1)
        .context("raising the open-files limit to its hard limit")?;
    let mut held = Vec::with_capacity(args.count);
    for i in 0..args.count {
        let mut s = connect_from(args.source, args.addr)
            .with_context(|| format!("connection {i} of {}", args.count))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        crate::http_get::exchange(&mut s, &args.path)
            .with_context(|| format!("request on connection {i}"))?;
        held.push(s);
    }
    println!("held {}", held.len());
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    Ok(())
}

/// RSS at one level.
#[derive(Clone, Debug, Serialize)]
pub struct IdleLevel {
    pub connections: usize,
    pub rss_kib: u64,
}

/// One server's levels and the fitted slope.
#[derive(Clone, Debug, Serialize)]
pub struct IdleRun {
    pub levels: Vec<IdleLevel>,
    /// Least-squares slope of RSS over connections, in KiB per connection.
    pub kib_per_connection: f64,
}

struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take()); // the helper exits when its stdin closes
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_holder(
    exe: &Path,
    addr: SocketAddrV4,
    count: usize,
    source: Ipv4Addr,
    path: &str,
) -> anyhow::Result<Holder> {
    let mut child = Command::new(exe)
        .args(["hold", "--addr", &addr.to_string(), "--count", &count.to_string()])
        .args(["--source", &source.to_string(), "--path", path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} hold", exe.display()))?;
    let out = child.stdout.take().context("holder stdout")?;
    let holder = Holder(child);
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .context("reading the holder's report")?;
    if line.trim() != format!("held {count}") {
        bail!(
            "a holder of {count} connections from {source} failed (said {:?}); see its error above",
            line.trim()
        );
    }
    Ok(holder)
}

/// Raises the held connections level by level and reads the server's RSS after `settle` at
/// each (strata parks connections quiet for 2 s; the same wait applies to every server).
pub fn measure(
    exe: &Path,
    server: &ServerProcess,
    path: &str,
    levels: &[usize],
    settle: Duration,
) -> anyhow::Result<IdleRun> {
    let SocketAddr::V4(addr) = server.addr else {
        bail!("idle scenario needs an IPv4 server address, got {}", server.addr);
    };
    std::thread::sleep(settle);
    let mut points = vec![IdleLevel {
        connections: 0,
        rss_kib: tree_rss_kib(server.pid()),
    }];
    let mut holders = Vec::new();
    let mut total = 0;
    for &level in levels {
        while total < level {
            let n = (level - total).min(PER_HOLDER);
            let source = Ipv4Addr::new(127, 0, 1, 1 + holders.len() as u8);
            holders.push(start_holder(exe, addr, n, source, path)?);
            total += n;
        }
        std::thread::sleep(settle);
        points.push(IdleLevel {
            connections: total,
            rss_kib: tree_rss_kib(server.pid()),
        });
    }
    drop(holders);
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.connections as f64, p.rss_kib as f64))
        .collect();
    Ok(IdleRun {
        kib_per_connection: slope(&xy),
        levels: points,
    })
}

/// Least-squares slope of y over x (0 with fewer than two distinct x).
pub fn slope(xy: &[(f64, f64)]) -> f64 {
    let n = xy.len() as f64;
    let (mx, my) = (
        xy.iter().map(|p| p.0).sum::<f64>() / n,
        xy.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = xy.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_is_exact_and_noise_averages_out() {
        let line: Vec<(f64, f64)> = [0.0, 5000.0, 10000.0, 18900.0]
            .iter()
            .map(|&x| (x, 20_000.0 + 0.25 * x))
            .collect();
        assert!((slope(&line) - 0.25).abs() < 1e-9);
        let noisy = [(0.0, 100.0), (1.0, 102.0), (2.0, 103.0), (3.0, 106.0)];
        assert!((slope(&noisy) - 1.9).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 5.0)]), 0.0);
    }
}
