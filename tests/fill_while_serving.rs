//! Fill while serving across real links (storage, edge and viewers in their own namespaces,
//! the storage → edge link throttled with htb+tbf so a fill stays in progress long enough to
//! be watched): the viewer's own fetch fills the cache byte-exact and the origin sends the asset
//! once; viewers arriving mid-fill (whole and ranges) read what is written and follow the rest;
//! a viewer leaving mid-fill, a storage server dying mid-fill and a kill -9 of the edge mid-fill
//! never leave a partial file that is served as a hit.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use strata_tests::netns::in_netns;
use strata_tests::routing::shape_toward;
use strata_tests::tiers::Tiers;
use strata_tests::*;

const STARTED: &str = "strata_cache_fills_total{result=\"started\"}";
const COMPLETED: &str = "strata_cache_fills_total{result=\"completed\"}";
const FAILED: &str = "strata_cache_fills_total{result=\"failed\"}";
const WRITTEN: &str = "strata_cache_fill_written_bytes";
const RUNNING: &str = "strata_cache_fills_running";
const OWN: &str = "strata_cache_miss_served_total{via=\"own_fill\"}";
const JOINED: &str = "strata_cache_miss_served_total{via=\"joined_fill\"}";
const PROXIED: &str = "strata_cache_miss_served_total{via=\"proxied\"}";
const HITS: &str = "strata_cache_hits_total";

/// Polls `read` until `done` holds (a generous deadline: a throttled fill takes seconds) and
/// returns the last value read; the caller asserts on it.
fn poll(read: impl Fn() -> f64, done: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut value = read();
    while !done(value) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        value = read();
    }
    value
}

/// Storage 0 serving `data` at /acme/c/v.mp4 and an edge; the storage → edge link shaped to
/// `rate` when given.
fn setup(
    tiers: &Tiers,
    store: &TempDir,
    cache: &TempDir,
    data: &[u8],
    rate: Option<&str>,
) -> (Strata, Strata) {
    store.write("acme/c/v.mp4", data);
    let storage = tiers.start_storage(0, store.path());
    if let Some(rate) = rate {
        let edge_ip = tiers.lan.edge_addr().to_string();
        shape_toward(tiers.storage_ns(0), &tiers.lan.client_if(0), &edge_ip, rate);
    }
    let edge = tiers.start_edge(cache.path(), &[0], &[], &["--admit-interval", "60s"]);
    (storage, edge)
}

/// Flags the asset hot on `edge`: its next miss starts a fill.
fn flag_hot(tiers: &Tiers, edge: &Strata) {
    let admin = edge.admin;
    let flagged = in_netns(&tiers.lan.edge_ns, move || {
        send(
            admin,
            &request("POST", "/cache/hot?path=/acme/c/v.mp4", &[]),
            false,
        )
    });
    assert_eq!(flagged.status, 200, "{}", flagged.text());
}

fn view(tiers: &Tiers, range: Option<String>) -> Response {
    let edge = tiers.edge_addr();
    tiers.as_viewer(move || match range {
        Some(r) => get(edge, "/acme/c/v.mp4", &[("Range", &r)]),
        None => get(edge, "/acme/c/v.mp4", &[]),
    })
}

/// A viewer that sends a GET and reads until the connection closes, in the background.
fn raw_viewer(tiers: &Tiers) -> std::thread::JoinHandle<Vec<u8>> {
    let edge = tiers.edge_addr();
    let ns = tiers.viewer_ns();
    std::thread::spawn(move || {
        in_netns(&ns, move || {
            let mut s = connect(edge);
            s.write_all(request("GET", "/acme/c/v.mp4", &[("Connection", "close")]).as_bytes())
                .expect("write request");
            let mut got = Vec::new();
            let mut chunk = vec![0u8; 1 << 16];
            loop {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
            }
        })
    })
}

fn head_end(bytes: &[u8]) -> usize {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .expect("a response head arrived")
}

#[test]
fn an_admitted_miss_fills_from_the_viewers_own_fetch_and_the_origin_sends_it_once() {
    if !kernel_features_or_skip(
        "an_admitted_miss_fills_from_the_viewers_own_fetch_and_the_origin_sends_it_once",
    ) {
        return;
    }
    let tiers = Tiers::new(1);
    let (store, cache) = (TempDir::new("fws-store"), TempDir::new("fws-cache"));
    let data = pattern(41, 12 << 20);
    let sum = checksum(&data);
    let (storage, edge) = setup(&tiers, &store, &cache, &data, None);
    // A first request has no pair: proxied, not admitted.
    let r = view(&tiers, None);
    assert_eq!((r.status, checksum(&r.body)), (200, sum));
    assert_eq!(edge.metric(STARTED), 0.0);
    assert_eq!(
        edge.metric("strata_cache_admissions_total{result=\"rejected\"}"),
        1.0
    );
    assert_eq!(edge.metric(PROXIED), 1.0);
    let (origin_bytes, origin_bodies) = (storage.file_body_bytes(), storage.file_bodies());
    // The second starts well within the threshold: admitted, and served from its own fill.
    let r = view(&tiers, None);
    assert_eq!((r.status, checksum(&r.body)), (200, sum));
    assert_eq!(
        edge.metric("strata_cache_admissions_total{result=\"admitted\"}"),
        1.0
    );
    assert_eq!(poll(|| edge.metric(COMPLETED), |v| v >= 1.0), 1.0);
    assert_eq!(edge.metric(OWN), 1.0);
    assert_eq!(edge.metric(STARTED), 1.0, "one fill");
    assert_eq!(
        storage.file_body_bytes() - origin_bytes,
        data.len() as f64,
        "the origin sent the asset once, for the viewer and the cache"
    );
    assert_eq!(storage.file_bodies() - origin_bodies, 1.0);
    let filled = std::fs::read(cache.path().join("acme/c/v.mp4")).expect("the filled file");
    assert_eq!(checksum(&filled), sum, "byte-exact fill");
    // The admission threshold is exported (the cache has room: the configured 60 s).
    assert_eq!(edge.metric("strata_cache_admit_threshold_milliseconds"), 60_000.0);
    // Then a local hit: the origin sees nothing more.
    let r = view(&tiers, Some("bytes=100-199".into()));
    assert_eq!((r.status, &r.body[..]), (206, &data[100..200]));
    assert_eq!(edge.metric(HITS), 1.0);
    assert_eq!(storage.file_body_bytes() - origin_bytes, data.len() as f64);
}

#[test]
fn viewers_arriving_mid_fill_read_what_is_written_and_follow_the_rest() {
    if !kernel_features_or_skip("viewers_arriving_mid_fill_read_what_is_written_and_follow_the_rest") {
        return;
    }
    let tiers = Tiers::new(1);
    let (store, cache) = (TempDir::new("fws-store"), TempDir::new("fws-cache"));
    let len = 6 << 20;
    let data = pattern(42, len);
    let (storage, edge) = setup(&tiers, &store, &cache, &data, Some("16mbit"));
    let origin_bytes = storage.file_body_bytes();
    flag_hot(&tiers, &edge);
    let first = raw_viewer(&tiers);
    // Wait until the fill has written a first MiB (of six, at 2 MB/s).
    let written = poll(|| edge.metric(WRITTEN), |v| v >= (1 << 20) as f64);
    assert!(
        written >= (1 << 20) as f64,
        "the fill progressed ({written} bytes)"
    );
    assert_eq!(edge.metric(RUNNING), 1.0);
    // A range inside the written part goes out at once, while the fill still runs.
    let r = view(&tiers, Some("bytes=1000-65535".into()));
    assert_eq!((r.status, &r.body[..]), (206, &data[1000..65536]));
    assert_eq!(edge.metric(COMPLETED), 0.0, "served before the fill ended");
    assert!(
        !cache.path().join("acme/c/v.mp4").exists(),
        "nothing at the asset's path until the fill is complete"
    );
    // Several at once: whole, a range across the written edge, the tail.
    let data = std::sync::Arc::new(data);
    let viewers: Vec<_> = [
        None,
        Some((500_000usize, 3_000_000usize)),
        Some((len - 100_000, len - 1)),
        None,
    ]
    .into_iter()
    .map(|range| {
        let tiers_edge = tiers.edge_addr();
        let ns = tiers.viewer_ns();
        let data = data.clone();
        std::thread::spawn(move || {
            in_netns(&ns, move || {
                let r = match range {
                    Some((a, b)) => get(
                        tiers_edge,
                        "/acme/c/v.mp4",
                        &[("Range", &format!("bytes={a}-{b}"))],
                    ),
                    None => get(tiers_edge, "/acme/c/v.mp4", &[]),
                };
                match range {
                    Some((a, b)) => assert_eq!((r.status, checksum(&r.body)), (206, checksum(&data[a..=b]))),
                    None => assert_eq!((r.status, checksum(&r.body)), (200, checksum(&data))),
                }
            })
        })
    })
    .collect();
    for v in viewers {
        v.join().expect("viewer got exact bytes");
    }
    let got = first.join().expect("first viewer");
    let body = &got[head_end(&got)..];
    assert_eq!(
        checksum(body),
        checksum(&data),
        "the viewer that started the fill"
    );
    assert_eq!(poll(|| edge.metric(COMPLETED), |v| v >= 1.0), 1.0);
    assert_eq!(edge.metric(OWN), 1.0);
    assert_eq!(edge.metric(JOINED), 5.0);
    assert_eq!(edge.metric(HITS), 0.0);
    assert_eq!(
        storage.file_body_bytes() - origin_bytes,
        len as f64,
        "six viewers, one origin fetch"
    );
}

#[test]
fn a_viewer_leaving_mid_fill_leaves_the_fill_running_and_nothing_partial_served_as_a_hit() {
    if !kernel_features_or_skip(
        "a_viewer_leaving_mid_fill_leaves_the_fill_running_and_nothing_partial_served_as_a_hit",
    ) {
        return;
    }
    let tiers = Tiers::new(1);
    let (store, cache) = (TempDir::new("fws-store"), TempDir::new("fws-cache"));
    let len = 4 << 20;
    let data = pattern(43, len);
    let (_storage, edge) = setup(&tiers, &store, &cache, &data, Some("16mbit"));
    flag_hot(&tiers, &edge);
    // A viewer reads the head and a little of the body, then leaves.
    let edge_addr = tiers.edge_addr();
    let partial = tiers.as_viewer(move || {
        let mut s = connect(edge_addr);
        s.write_all(request("GET", "/acme/c/v.mp4", &[]).as_bytes())
            .expect("write request");
        let mut got = vec![0u8; 4096];
        s.read_exact(&mut got).expect("the first bytes");
        got
    });
    assert!(String::from_utf8_lossy(&partial).starts_with("HTTP/1.1 200"));
    let written = poll(|| edge.metric(WRITTEN), |v| v > 0.0);
    assert!(
        written > 0.0 && written < len as f64,
        "mid-fill ({written} bytes)"
    );
    assert!(!cache.path().join("acme/c/v.mp4").exists());
    // The fill runs on without its viewer, to the end, and only then is it a hit.
    assert_eq!(poll(|| edge.metric(COMPLETED), |v| v >= 1.0), 1.0);
    assert_eq!(edge.metric(HITS), 0.0);
    let filled = std::fs::read(cache.path().join("acme/c/v.mp4")).expect("the filled file");
    assert_eq!(checksum(&filled), checksum(&data));
    let r = view(&tiers, None);
    assert_eq!((r.status, checksum(&r.body)), (200, checksum(&data)));
    assert_eq!(edge.metric(HITS), 1.0);
}

#[test]
fn a_storage_server_dying_mid_fill_discards_it_and_cuts_its_viewers_short() {
    if !kernel_features_or_skip("a_storage_server_dying_mid_fill_discards_it_and_cuts_its_viewers_short") {
        return;
    }
    let tiers = Tiers::new(1);
    let (store, cache) = (TempDir::new("fws-store"), TempDir::new("fws-cache"));
    let len = 4 << 20;
    let data = pattern(44, len);
    let (storage, edge) = setup(&tiers, &store, &cache, &data, Some("16mbit"));
    flag_hot(&tiers, &edge);
    let viewer = raw_viewer(&tiers);
    let written = poll(|| edge.metric(WRITTEN), |v| v > 0.0);
    assert!(
        written > 0.0 && written < len as f64,
        "mid-fill ({written} bytes)"
    );
    storage.crash();
    let got = viewer.join().expect("viewer");
    let body = got.len() - head_end(&got);
    assert!(
        body < len,
        "the viewer's body was cut short ({body} of {len} bytes), never framed complete"
    );
    assert_eq!(poll(|| edge.metric(FAILED), |v| v >= 1.0), 1.0);
    assert!(!cache.path().join("acme/c/v.mp4").exists(), "nothing placed");
    let leftovers = std::fs::read_dir(cache.path().join(".strata-fill"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "the partial file was removed");
    assert_eq!(edge.metric("strata_cache_files"), 0.0);
}

#[test]
fn kill_9_of_the_edge_mid_fill_leaves_nothing_served_as_a_hit_after_restart() {
    if !kernel_features_or_skip("kill_9_of_the_edge_mid_fill_leaves_nothing_served_as_a_hit_after_restart") {
        return;
    }
    let tiers = Tiers::new(1);
    let (store, cache) = (TempDir::new("fws-store"), TempDir::new("fws-cache"));
    let len = 4 << 20;
    let data = pattern(45, len);
    let (_storage, edge) = setup(&tiers, &store, &cache, &data, Some("16mbit"));
    flag_hot(&tiers, &edge);
    let viewer = raw_viewer(&tiers);
    let written = poll(|| edge.metric(WRITTEN), |v| v > 0.0);
    assert!(
        written > 0.0 && written < len as f64,
        "mid-fill ({written} bytes)"
    );
    let fill_dir = cache.path().join(".strata-fill");
    assert_eq!(std::fs::read_dir(&fill_dir).map(|d| d.count()).unwrap_or(0), 1);
    edge.crash();
    let got = viewer.join().expect("viewer");
    assert!(
        got.len() - head_end(&got) < len,
        "the viewer's body was cut short"
    );
    assert!(!cache.path().join("acme/c/v.mp4").exists());
    let edge = tiers.start_edge(cache.path(), &[0], &[], &["--admit-interval", "60s"]);
    assert_eq!(
        std::fs::read_dir(&fill_dir).map(|d| d.count()).unwrap_or(0),
        0,
        "leftovers removed at start"
    );
    let r = view(&tiers, None);
    assert_eq!((r.status, checksum(&r.body)), (200, checksum(&data)));
    assert_eq!(edge.metric(HITS), 0.0, "a miss, never a hit");
    assert_eq!(edge.metric("strata_misses_total"), 1.0);
}

#[test]
fn a_fill_that_cannot_start_leaves_its_viewer_to_the_proxy() {
    if !kernel_features_or_skip("a_fill_that_cannot_start_leaves_its_viewer_to_the_proxy") {
        return;
    }
    let tiers = Tiers::new(1);
    let (store, cache) = (TempDir::new("fws-store"), TempDir::new("fws-cache"));
    let data = pattern(46, 2 << 20);
    store.write("acme/c/v.mp4", &data);
    let storage = tiers.start_storage(0, store.path());
    // A cache smaller than the asset: admitted (hot), but the fill gives up at the head.
    let edge = tiers.start_edge(cache.path(), &[0], &[], &["--cache-capacity", "1048576"]);
    flag_hot(&tiers, &edge);
    let r = view(&tiers, None);
    assert_eq!(
        (r.status, checksum(&r.body)),
        (200, checksum(&data)),
        "proxied, exact"
    );
    assert_eq!(poll(|| edge.metric(FAILED), |v| v >= 1.0), 1.0);
    assert_eq!(edge.metric(PROXIED), 1.0);
    assert_eq!(edge.metric(OWN), 0.0);
    assert!(storage.file_bodies() >= 1.0);
    assert!(!cache.path().join("acme/c/v.mp4").exists());
}

#[test]
fn a_reload_mid_fill_leaves_the_fill_to_the_draining_process_and_its_viewer_gets_every_byte() {
    if !kernel_features_or_skip(
        "a_reload_mid_fill_leaves_the_fill_to_the_draining_process_and_its_viewer_gets_every_byte",
    ) {
        return;
    }
    let tiers = Tiers::new(1);
    let (store, cache) = (TempDir::new("fws-store"), TempDir::new("fws-cache"));
    let data = pattern(46, 4 << 20);
    let (_storage, edge) = setup(&tiers, &store, &cache, &data, Some("16mbit"));
    flag_hot(&tiers, &edge);
    let viewer = raw_viewer(&tiers);
    let written = poll(|| edge.metric(WRITTEN), |v| v > 0.0);
    assert!(
        written > 0.0 && written < data.len() as f64,
        "mid-fill ({written} bytes)"
    );
    // Reload: a successor takes the listeners and clears the fill directory of leftovers, but
    // not of the fill its predecessor is still writing.
    let old = edge.pid();
    let _successors = KillEdgesOf(cache.path().to_path_buf());
    // SAFETY: a signal to the edge this test started.
    unsafe { libc::kill(old as libc::pid_t, libc::SIGHUP) };
    let got = viewer.join().expect("viewer thread");
    let body = &got[head_end(&got)..];
    assert_eq!(body.len(), data.len(), "the fill's viewer got the whole body");
    assert_eq!(checksum(body), checksum(&data));
    let admin = edge.admin;
    let ask = || {
        in_netns(&tiers.lan.edge_ns, move || {
            let r = get(admin, "/process", &[]);
            serde_json::from_slice::<serde_json::Value>(&r.body).map_or(0, |v| v["pid"].as_u64().unwrap_or(0))
        })
    };
    let successor = poll(|| ask() as f64, |pid| pid > 0.0 && pid as u32 != old) as u32;
    assert_ne!(successor, old, "a successor answers");
    // The predecessor renames the fill into place after its last byte went to the viewer.
    let placed = cache.path().join("acme/c/v.mp4");
    poll(|| f64::from(u8::from(placed.exists())), |v| v > 0.0);
    let filled = std::fs::read(&placed).expect("the filled file");
    assert_eq!(
        checksum(&filled),
        checksum(&data),
        "the predecessor finished its fill"
    );
    let r = view(&tiers, None);
    assert_eq!((r.status, checksum(&r.body)), (200, checksum(&data)));
}

/// Kills, when dropped, every strata process serving `.0` (a reload's successors are not the
/// test's children, and a failed assertion must not leave them running).
struct KillEdgesOf(std::path::PathBuf);

impl Drop for KillEdgesOf {
    fn drop(&mut self) {
        let dir = self.0.to_string_lossy().to_string();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("strata") && cmdline.contains(&dir) {
                // SAFETY: kill with a pid checked to be a strata process over this test's cache.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}
