//! The small-object load: nghttp2's h2load (`--h1`, one event-driven thread on the load CPU)
//! instead of the thread-per-connection generator, which at 4 KiB per response measures its
//! own context switches more than the server. Every request h2load makes is in its log file
//! (start, status, microseconds to the end of the response): the latencies go into the same
//! HdrHistogram tally as the other scenarios, and anything but 200 counts as an error. Body
//! bytes come from h2load's own `traffic: ... data` count; after the run every target is
//! fetched once more and its CRC-32 checked.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::load::{LoadOutcome, Target};
use crate::tally::Tally;

/// The URL of each target (GET without a range) on `addr`.
fn urls(addr: SocketAddr, targets: &[Target]) -> anyhow::Result<Vec<String>> {
    targets
        .iter()
        .map(|t| {
            let line = String::from_utf8_lossy(&t.request);
            let path = line
                .split(' ')
                .nth(1)
                .with_context(|| format!("no path in the request {line:?}"))?;
            if line.contains("Range:") {
                bail!("h2load cannot ask for ranges: {line:?}");
            }
            Ok(format!("http://{addr}{path}"))
        })
        .collect()
}

/// Runs h2load over `targets` with `connections` for `duration` (whole seconds, at least 1);
/// `log` is a scratch file for its per-request log.
pub fn run(
    addr: SocketAddr,
    targets: &[Target],
    connections: usize,
    duration: Duration,
    log: &Path,
) -> anyhow::Result<LoadOutcome> {
    let urls = urls(addr, targets)?;
    let secs = duration.as_secs().max(1);
    let _ = std::fs::remove_file(log);
    let out = Command::new("h2load")
        .args([
            "--h1",
            "-t",
            "1",
            "-c",
            &connections.to_string(),
            "-D",
            &secs.to_string(),
        ])
        .arg(format!("--log-file={}", log.display()))
        .args(&urls)
        .output()
        .context("running h2load (Debian nghttp2-client; cargo xtask bench installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "h2load failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let logged =
        std::fs::read_to_string(log).with_context(|| format!("reading h2load's log {}", log.display()))?;
    let mut tally = tally_of(&logged)?;
    match crate::load::verify_each(addr, targets) {
        Ok(checked) => tally.checked += checked,
        Err(e) => {
            tally.error();
            tally.first_error.get_or_insert_with(|| format!("{e:#}"));
        }
    }
    tally.bytes = data_bytes(&text).with_context(|| format!("no data count in h2load's output: {text}"))?;
    let expected = targets.first().map_or(0, |t| t.expect_len) * tally.requests;
    if targets.iter().all(|t| t.expect_len == targets[0].expect_len) && tally.bytes < expected {
        tally.error();
        tally.first_error.get_or_insert_with(|| {
            format!(
                "{} body bytes for {} responses of {} bytes",
                tally.bytes, tally.requests, targets[0].expect_len
            )
        });
    }
    Ok(LoadOutcome {
        tally,
        seconds: secs as f64,
    })
}

/// The tally of an h2load log: one line per request, `start_us \t status \t duration_us`.
fn tally_of(log: &str) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split('\t');
        let (_start, status, micros) = (cols.next(), cols.next(), cols.next());
        let status: i64 = status
            .and_then(|s| s.trim().parse().ok())
            .with_context(|| format!("bad h2load log line {line:?}"))?;
        let micros: u64 = micros
            .and_then(|s| s.trim().parse().ok())
            .with_context(|| format!("bad h2load log line {line:?}"))?;
        if status == 200 {
            tally.record(0, micros);
        } else {
            tally.error();
            tally
                .first_error
                .get_or_insert_with(|| format!("status {status} from h2load's request"));
        }
    }
    Ok(tally)
}

/// The body bytes from h2load's `traffic: 3.40MB (3565000) total, ... 3.20MB (3355000) data`.
fn data_bytes(summary: &str) -> Option<u64> {
    let line = summary.lines().find(|l| l.trim_start().starts_with("traffic:"))?;
    let data = line.split(',').find(|part| part.trim_end().ends_with("data"))?;
    let open = data.find('(')?;
    let close = data[open..].find(')')? + open;
    data[open + 1..close].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_count_is_read_from_the_traffic_line() {
        let out = "finished in 2.00s, 1000.00 req/s, 4.10MB/s\n\
                   traffic: 8.57MB (8984000) total, 380.86KB (390000) headers (space savings 0.00%), 7.81MB (8192000) data\n";
        assert_eq!(data_bytes(out), Some(8_192_000));
        assert_eq!(data_bytes("no traffic here"), None);
    }

    #[test]
    fn log_lines_become_latencies_and_non_200_are_errors() {
        let t =
            tally_of("1700000000000000\t200\t150\n1700000000000100\t200\t250\n1700000000000200\t404\t90\n")
                .unwrap();
        assert_eq!((t.requests, t.errors), (2, 1));
        assert!(t.latency_us(0.99) >= 249, "{}", t.latency_us(0.99));
        assert!(tally_of("garbage").is_err());
    }

    #[test]
    fn ranges_are_refused_and_paths_become_urls() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let whole = Target::get("/acme/c/a.m4s", None, 4096, None);
        assert_eq!(
            urls(addr, &[whole]).unwrap(),
            vec!["http://127.0.0.1:8080/acme/c/a.m4s"]
        );
        let ranged = Target::get("/acme/c/a.m4s", Some((0, 10)), 10, None);
        assert!(urls(addr, &[ranged]).is_err());
    }
}
