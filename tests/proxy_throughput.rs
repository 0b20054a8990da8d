//! Every proxy path under keep-alive load across veth: 1 MiB bodies by sockmap, splice and copy
//! in one run, alternating, each body checksummed. It also prints throughput, the edge's own CPU
//! and the whole machine's per GB (see them with `-- --nocapture`); it asserts no speed.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_tests::tiers::Tiers;
use strata_tests::*;

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// utime + stime of a process, in seconds.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    (f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime")) / ticks_per_sec()
}

/// Busy CPU seconds of the whole machine (all but idle and iowait).
fn machine_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let f: Vec<f64> = stat
        .lines()
        .next()
        .expect("cpu line")
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().expect("n"))
        .collect();
    (f.iter().sum::<f64>() - f[3] - f[4]) / ticks_per_sec()
}

fn run_load(tiers: &Tiers, sums: &Arc<Vec<u64>>, connections: usize, secs: u64) -> (u64, f64) {
    let edge = tiers.edge_addr();
    let bytes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (b, s, sums) = (bytes.clone(), stop.clone(), sums.clone());
    let start = Instant::now();
    let viewers = std::thread::spawn({
        let ns = tiers.viewer_ns();
        move || {
            strata_tests::netns::in_netns(&ns, move || {
                std::thread::scope(|scope| {
                    for c in 0..connections {
                        let (b, s, sums) = (b.clone(), s.clone(), sums.clone());
                        scope.spawn(move || {
                            let mut conn = connect(edge);
                            let mut buf = Vec::new();
                            let mut i = c;
                            while !s.load(Ordering::Relaxed) {
                                let path = format!("/acme/c/seg{}.m4s", i % 8);
                                conn.write_all(request("GET", &path, &[]).as_bytes())
                                    .expect("write");
                                let r = read_response(&mut conn, &mut buf, false);
                                assert_eq!(r.body.len(), 1 << 20);
                                assert_eq!(
                                    checksum(&r.body),
                                    sums[i % 8],
                                    "{path}: body differs from the stored asset"
                                );
                                b.fetch_add(r.body.len() as u64, Ordering::Relaxed);
                                i += 1;
                            }
                        });
                    }
                });
            })
        }
    });
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    viewers.join().expect("viewers");
    (bytes.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}

#[test]
fn every_proxy_path_moves_one_mib_bodies_exactly_under_load() {
    if !kernel_features_or_skip("every_proxy_path_moves_one_mib_bodies_exactly_under_load") {
        return;
    }
    let tiers = Tiers::new(1);
    let store = TempDir::new("tp-store");
    let mut sums = Vec::new();
    for i in 0..8 {
        let seg = pattern(200 + i, 1 << 20);
        sums.push(checksum(&seg));
        store.write(&format!("acme/c/seg{i}.m4s"), &seg);
    }
    let sums = Arc::new(sums);
    let _storage = tiers.start_storage(0, store.path());
    println!("| path | conns | Gbit/s | edge CPU-s/GB | machine CPU-s/GB |");
    println!("|---|---|---|---|---|");
    for round in 0..2 {
        for path in ["sockmap", "splice", "copy"] {
            let cache = TempDir::new("tp-cache");
            let edge = tiers.start_edge(
                cache.path(),
                &[0],
                &[],
                &["--proxy-path", path, "--cache-capacity", "0"],
            );
            let _ = run_load(&tiers, &sums, 1, 1); // warm the pool and page cache
            for conns in [1, 16] {
                let (e0, m0) = (process_cpu(edge.pid()), machine_cpu());
                let (bytes, secs) = run_load(&tiers, &sums, conns, 3);
                assert!(bytes > 0, "{path}: {conns} connections moved nothing");
                let (e1, m1) = (process_cpu(edge.pid()), machine_cpu());
                let gb = bytes as f64 / 1e9;
                println!(
                    "| {path} (run {}) | {conns} | {:.2} | {:.3} | {:.3} |",
                    round + 1,
                    bytes as f64 * 8.0 / secs / 1e9,
                    (e1 - e0) / gb,
                    (m1 - m0) / gb
                );
            }
        }
    }
}
