//! The edge cache across real links (storage, edge and viewers in their own namespaces):
//! admission on the second request within the interval, exactly one fill however
//! many viewers miss at once, local hits afterwards, no partial file after a kill -9 mid-fill,
//! and least-recently-used eviction within the capacity.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use strata_tests::netns::in_netns;
use strata_tests::tiers::Tiers;
use strata_tests::*;

fn view(tiers: &Tiers, path: &str) -> Response {
    let edge = tiers.edge_addr();
    let path = path.to_string();
    tiers.as_viewer(move || get(edge, &path, &[]))
}

/// The metric once it reaches `want` (see `settle`).
fn wait_metric(server: &Strata, sample: &str, want: f64) -> f64 {
    settle(|| server.metric(sample), |v| v >= want)
}

const STARTED: &str = "strata_cache_fills_total{result=\"started\"}";
const COMPLETED: &str = "strata_cache_fills_total{result=\"completed\"}";

#[test]
fn second_request_admits_one_fill_for_many_viewers_then_local_hits() {
    if !kernel_features_or_skip("second_request_admits_one_fill_for_many_viewers_then_local_hits") {
        return;
    }
    let tiers = Tiers::new(1);
    let store = TempDir::new("cf-store");
    let data = pattern(21, 24 << 20);
    let sum = checksum(&data);
    store.write("acme/c/v.mp4", &data);
    store.write("acme/c/hot.mp4", b"hot asset");
    let storage = tiers.start_storage(0, store.path());
    let cache = TempDir::new("cf-cache");
    let edge = tiers.start_edge(cache.path(), &[0], &[], &["--admit-interval", "60s"]);
    // One request: proxied, nothing admitted.
    assert_eq!(checksum(&view(&tiers, "/acme/c/v.mp4").body), sum);
    assert_eq!(edge.metric(STARTED), 0.0, "one request does not fill");
    // Twenty viewers at once: the first of them is the second request → one fill, served from
    // that fetch; the rest follow the fill while it runs (read-while-writer).
    let edge_addr = tiers.edge_addr();
    tiers.as_viewer(move || {
        std::thread::scope(|scope| {
            for _ in 0..20 {
                scope.spawn(move || {
                    let r = get(edge_addr, "/acme/c/v.mp4", &[]);
                    assert_eq!((r.status, checksum(&r.body)), (200, sum));
                });
            }
        });
    });
    assert_eq!(wait_metric(&edge, COMPLETED, 1.0), 1.0);
    assert_eq!(edge.metric(STARTED), 1.0, "exactly one fill");
    let storage_bodies = storage.file_bodies();
    let proxied = edge.metric("strata_body_bytes_total{path=\"proxy_sockmap\"}");
    let local = edge.file_body_bytes();
    let hits = edge.metric("strata_cache_hits_total");
    // Now a local hit: the file paths' counter moves, the proxy's does not, storage sees nothing.
    let r = view(&tiers, "/acme/c/v.mp4");
    assert_eq!((r.status, checksum(&r.body)), (200, sum));
    assert_eq!(edge.metric("strata_cache_hits_total"), hits + 1.0);
    assert_eq!(edge.file_body_bytes(), local + data.len() as f64);
    assert_eq!(
        edge.metric("strata_body_bytes_total{path=\"proxy_sockmap\"}"),
        proxied
    );
    assert_eq!(storage.file_bodies(), storage_bodies);
    assert_eq!(
        std::fs::read(cache.path().join("acme/c/v.mp4"))
            .map(|b| checksum(&b))
            .ok(),
        Some(sum)
    );
    assert_eq!(edge.metric("strata_cache_bytes"), data.len() as f64);
    // Flagged hot: the first miss fills.
    let admin = edge.admin;
    let ns = tiers.lan.edge_ns.clone();
    let flagged = in_netns(&ns, move || {
        send(
            admin,
            &request("POST", "/cache/hot?path=/acme/c/hot.mp4", &[]),
            false,
        )
    });
    assert_eq!(flagged.status, 200, "{}", flagged.text());
    assert_eq!(view(&tiers, "/acme/c/hot.mp4").body, b"hot asset");
    assert_eq!(wait_metric(&edge, COMPLETED, 2.0), 2.0);
}

#[test]
fn kill_during_a_fill_leaves_nothing_that_is_served_as_complete() {
    if !kernel_features_or_skip("kill_during_a_fill_leaves_nothing_that_is_served_as_complete") {
        return;
    }
    let tiers = Tiers::new(1);
    // A storage stand-in: range requests (the proxy's) are answered in full; a whole-asset
    // GET (the fill's, which also serves the admitted viewer) gets half the body and then
    // nothing, so the edge is killed mid-fill.
    let data = pattern(22, 4 << 20);
    let addr = tiers.storage_addr(0);
    let listener = in_netns(tiers.storage_ns(0), move || {
        TcpListener::bind(addr).expect("bind")
    });
    let body = data.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { return };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let Ok(n) = c.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let req = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end + 4);
                    let range = req
                        .lines()
                        .find_map(|l| l.strip_prefix("Range: bytes="))
                        .and_then(|r| r.split_once('-'))
                        .map(|(a, b)| (a.parse::<usize>().unwrap_or(0), b.parse::<usize>().ok()));
                    let total = body.len();
                    let resp = match range {
                        Some((first, last)) => {
                            let last = last.unwrap_or(total - 1).min(total - 1);
                            let mut r = format!(
                                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {first}-{last}/{total}\r\n\r\n",
                                last - first + 1
                            )
                            .into_bytes();
                            r.extend_from_slice(&body[first..=last]);
                            r
                        }
                        None => {
                            let mut r =
                                format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n").into_bytes();
                            r.extend_from_slice(&body[..total / 2]);
                            let _ = c.write_all(&r);
                            std::thread::sleep(Duration::from_secs(60));
                            return;
                        }
                    };
                    if c.write_all(&resp).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let cache = TempDir::new("cf-cache");
    let args = ["--admit-interval", "60s"];
    let edge = tiers.start_edge(cache.path(), &[0], &[], &args);
    assert_eq!(checksum(&view(&tiers, "/acme/c/v.mp4").body), checksum(&data));
    // The second request is admitted and served from its own fill, which stalls halfway: this
    // viewer waits, and is cut short when the edge dies.
    let (edge_addr, ns) = (tiers.edge_addr(), tiers.viewer_ns());
    let second = std::thread::spawn(move || {
        in_netns(&ns, move || {
            let mut s = connect(edge_addr);
            s.write_all(request("GET", "/acme/c/v.mp4", &[]).as_bytes())
                .expect("write request");
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            got
        })
    });
    assert_eq!(wait_metric(&edge, STARTED, 1.0), 1.0);
    // Wait until the partial file exists, then crash.
    let fill_dir = cache.path().join(".strata-fill");
    let mut partial = 0;
    for _ in 0..200 {
        partial = std::fs::read_dir(&fill_dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        if partial > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(partial > 0, "a fill was in progress");
    edge.crash();
    let got = second.join().expect("second viewer");
    assert!(
        got.len() < data.len(),
        "the viewer of the cut fill got {} bytes, less than the asset",
        got.len()
    );
    assert!(
        !cache.path().join("acme/c/v.mp4").exists(),
        "nothing at the asset's path"
    );
    // Restarted: the leftover is removed, the asset is a miss (proxied, exact), never a hit.
    let edge = tiers.start_edge(cache.path(), &[0], &[], &args);
    assert_eq!(
        std::fs::read_dir(&fill_dir).map(|d| d.count()).unwrap_or(0),
        0,
        "leftovers removed"
    );
    let r = view(&tiers, "/acme/c/v.mp4");
    assert_eq!((r.status, checksum(&r.body)), (200, checksum(&data)));
    assert_eq!(edge.metric("strata_cache_hits_total"), 0.0);
    assert_eq!(edge.metric("strata_misses_total"), 1.0);
}

#[test]
fn eviction_keeps_the_cache_within_its_capacity_least_recently_used_first() {
    if !kernel_features_or_skip("eviction_keeps_the_cache_within_its_capacity_least_recently_used_first") {
        return;
    }
    let tiers = Tiers::new(1);
    let store = TempDir::new("cf-store");
    let assets: Vec<Vec<u8>> = (0..6).map(|i| pattern(30 + i, 1 << 20)).collect();
    for (i, a) in assets.iter().enumerate() {
        store.write(&format!("acme/c/a{i}.mp4"), a);
    }
    let _storage = tiers.start_storage(0, store.path());
    let cache = TempDir::new("cf-cache");
    let capacity = (3 << 20) + 1000;
    let cap = capacity.to_string();
    // Every pair admits (the floor of the threshold is the default ceiling): this test is
    // about eviction, not about which assets admission prefers once the cache is full.
    let args = ["--cache-capacity", &cap, "--admit-floor", "60s"];
    let edge = tiers.start_edge(cache.path(), &[0], &[], &args);
    for (i, a) in assets.iter().enumerate() {
        for _ in 0..2 {
            assert_eq!(
                checksum(&view(&tiers, &format!("/acme/c/a{i}.mp4")).body),
                checksum(a)
            );
        }
        assert_eq!(wait_metric(&edge, COMPLETED, (i + 1) as f64), (i + 1) as f64);
        if i == 3 {
            // a1 becomes the most recently used: a2 goes before it.
            assert_eq!(view(&tiers, "/acme/c/a1.mp4").status, 200);
        }
        assert!(edge.metric("strata_cache_bytes") <= capacity as f64);
    }
    let held: Vec<usize> = (0..6)
        .filter(|i| cache.path().join(format!("acme/c/a{i}.mp4")).exists())
        .collect();
    assert_eq!(held, vec![1, 4, 5], "the three most recently used stay");
    assert_eq!(edge.metric("strata_cache_evictions_total"), 3.0);
    assert!(edge.metric("strata_cache_bytes") <= capacity as f64);
}
