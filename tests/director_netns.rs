//! The director (seed 004) across real links: four edges of region east and a storage server,
//! each on a host (network namespace) of its own, the control plane and the viewer (the test)
//! on the test's host, all joined through a bridge. Edges publish their state rows (cache
//! contents, load) through the control plane and get their region's table back.
//!
//! Pins: an asset cached on edges 2 and 3, edge 3 loaded (idle connections hold 60 of its 100
//! slots): requests to edge 1 are served from edge 2 — edge 2's hit counter moves, edge 3's and
//! the storage server's do not — byte-exact, ranges too; an edge in `--director redirect` mode
//! answers 302 to edge 2 and `curl -L` gets the exact bytes; edge 2 killed: edge 1 still
//! answers (storage tier), no viewer error, and edge 2's row leaves the table within its
//! lease; edge 3 unloaded serves; a stale entry (edge 3's file gone) still succeeds and the
//! table corrects itself.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;
use strata_tests::control::Control;
use strata_tests::netns::Lan;
use strata_tests::*;

const SIZE: usize = 5 * 1024 * 1024 + 123;
const PATH: &str = "/acme/clip/video.mp4";
const ASSET: &str = "acme/clip/video.mp4";

struct Edge {
    proc: Strata,
    addr: SocketAddr,
    admin: SocketAddr,
    cache: std::path::PathBuf,
}

fn start_edge(
    lan: &Lan,
    control: &Control,
    host: usize,
    name: &str,
    cache: &std::path::Path,
    extra: &[&str],
) -> Edge {
    std::fs::create_dir_all(cache).expect("cache dir");
    let listen = format!("{}:8080", lan.client_addr(host));
    let admin = format!("{}:9080", lan.client_addr(host));
    let link = control.link_args(name);
    let mut args = vec![
        "edge",
        "--cache-dir",
        cache.to_str().expect("utf-8"),
        "--listen",
        &listen,
        "--admin-listen",
        &admin,
        "--telemetry",
        "off",
        "--region",
        "east",
        "--max-connections",
        "100",
        "--idle-timeout",
        "600s",
    ];
    args.extend(link.iter().map(String::as_str));
    args.extend_from_slice(extra);
    let proc = Strata::start_in(Some(&lan.client_ns[host]), &args, 1);
    Edge {
        addr: proc.addr,
        admin: proc.admin,
        proc,
        cache: cache.to_path_buf(),
    }
}

/// The edge's admin `/state` (reachable from the test's host through the bridge).
fn state(e: &Edge) -> Value {
    let r = get(e.admin, "/state", &[]);
    assert_eq!(r.status, 200, "GET /state on {}", e.admin);
    serde_json::from_slice(&r.body).expect("state JSON")
}

fn row<'a>(state: &'a Value, edge: &str) -> Option<&'a Value> {
    state["rows"].as_array()?.iter().find(|r| r["edge"] == edge)
}

fn holds(state: &Value, edge: &str) -> bool {
    row(state, edge).is_some_and(|r| {
        r["contents"]["assets"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == ASSET))
    })
}

fn load(state: &Value, edge: &str) -> f64 {
    row(state, edge)
        .and_then(|r| r["load"]["value"].as_f64())
        .unwrap_or(-1.0)
}

fn wait_until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("gave up waiting for {what}");
}

/// Responses a server sent, all statuses together.
fn responses(p: &Strata) -> f64 {
    p.metrics()
        .lines()
        .filter(|l| l.starts_with("strata_http_responses_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn hits(e: &Edge) -> f64 {
    e.proc.metric("strata_cache_hits_total")
}

fn decisions(e: &Edge, outcome: &str) -> f64 {
    e.proc.metric(&format!(
        "strata_director_decisions_total{{outcome=\"{outcome}\"}}"
    ))
}

#[test]
fn a_miss_is_served_by_the_least_loaded_peer_holding_it_and_falls_back_when_that_peer_is_gone_or_stale() {
    if !kernel_features_or_skip("director") {
        return;
    }
    // Hosts: c0..c2 edges 1..3, c3 the storage server, c4 edge 4 (redirect mode).
    let lan = Lan::new(5);
    let ops = lan.join_root(250);
    let dir = TempDir::new("director-netns");
    let data = pattern(404, SIZE);
    let sum = checksum(&data);
    dir.write(&format!("storage{PATH}"), &data);
    dir.write(&format!("e2{PATH}"), &data);
    dir.write(&format!("e3{PATH}"), &data);
    // syncd must not push the asset to edge 1 from the storage tier meanwhile.
    let control = Control::start_at(&dir.path().join("control"), ops, &["--push-min-requests", "1000"]);
    control.tenant("acme", "east", &[], 0);
    let storage_root = dir.path().join("storage");
    let link = control.link_args("s1");
    let listen = format!("{}:8081", lan.client_addr(3));
    let admin = format!("{}:9081", lan.client_addr(3));
    let mut sargs = vec![
        "storage",
        "--root",
        storage_root.to_str().expect("utf-8"),
        "--listen",
        &listen,
        "--admin-listen",
        &admin,
        "--cluster",
        "east",
    ];
    sargs.extend(link.iter().map(String::as_str));
    let storage = Strata::start_in(Some(&lan.client_ns[3]), &sargs, 1);
    let e1_log = dir.path().join("e1-access.log");
    let e1_log_arg = e1_log.to_string_lossy().to_string();
    let e1 = start_edge(
        &lan,
        &control,
        0,
        "e1",
        &dir.path().join("e1"),
        &["--access-log", &e1_log_arg],
    );
    let e2 = start_edge(&lan, &control, 1, "e2", &dir.path().join("e2"), &[]);
    let e3 = start_edge(&lan, &control, 2, "e3", &dir.path().join("e3"), &[]);
    let e4 = start_edge(
        &lan,
        &control,
        4,
        "e4",
        &dir.path().join("e4"),
        &["--director", "redirect"],
    );
    // Edge 3 under load: 60 of its 100 connection slots held by idle viewers.
    let held: Vec<TcpStream> = (0..60).map(|_| connect(e3.addr)).collect();
    wait_until("edge 1's table: e2 and e3 hold the asset, e3 loaded", || {
        let s = state(&e1);
        holds(&s, "e2") && holds(&s, "e3") && load(&s, "e3") >= 0.5 && row(&s, "e4").is_some()
    });
    let s = state(&e1);
    assert!(!holds(&s, "e1"), "edge 1 does not hold it: {s}");
    assert!(
        load(&s, "e3") > s["load_bound"].as_f64().unwrap_or(0.0),
        "e3 above the bound: {s}"
    );

    // Served from edge 2: whole, a range, and again.
    let (h2, h3, st) = (hits(&e2), hits(&e3), responses(&storage));
    let r = get(e1.addr, PATH, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.body.len(), checksum(&r.body)),
        (SIZE, sum),
        "byte-exact from the peer"
    );
    let r = get(e1.addr, PATH, &[("Range", "bytes=1000000-3999999")]);
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1000000-3999999/{SIZE}").as_str())
    );
    assert_eq!(
        r.body,
        data[1_000_000..4_000_000],
        "range byte-exact from the peer"
    );
    let r = get(e1.addr, PATH, &[("Range", "bytes=-100")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &data[SIZE - 100..]));
    assert!(hits(&e2) >= h2 + 3.0, "edge 2 served them as local hits");
    assert_eq!(hits(&e3), h3, "the loaded edge 3 was passed over");
    assert_eq!(responses(&storage), st, "the storage server saw no request");
    assert_eq!(decisions(&e1, "peer"), 3.0);
    assert!(e1.proc.metric("strata_director_peer_bytes_total") >= (SIZE + 3_000_000 + 100) as f64);
    assert!(
        !e1.cache.join(ASSET).exists(),
        "a peer-served miss is not copied here"
    );
    // Edge 1's access log says where each of them came from.
    wait_until("edge 1's access log lines for the peer-served requests", || {
        std::fs::read_to_string(&e1_log).is_ok_and(|t| t.matches("\"outcome\":\"peer\"").count() >= 3)
    });
    let logged = std::fs::read_to_string(&e1_log).expect("edge 1's access log");
    for line in logged.lines().filter(|l| l.contains("\"outcome\":\"peer\"")) {
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(v["upstream"], e2.addr.to_string(), "{line}");
        assert_eq!(v["path"], PATH, "{line}");
    }

    // Redirect mode: 302 to edge 2 with the hop mark; curl -L gets the exact bytes.
    let r = get(e4.addr, PATH, &[]);
    assert_eq!(r.status, 302, "{}", r.text());
    let location = r.header("location").expect("Location").to_string();
    assert_eq!(location, format!("http://{}{PATH}?strata-hop=1", e2.addr));
    let out_file = dir.path().join("curl.out");
    let h2 = hits(&e2);
    let out = std::process::Command::new("curl")
        .args(["-sS", "-L", "-o"])
        .arg(&out_file)
        .args(["-w", "%{http_code} %{num_redirects}"])
        .arg(format!("http://{}{PATH}", e4.addr))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200 1",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&out_file).expect("curl output"),
        data,
        "curl -L: exact bytes"
    );
    assert_eq!(
        hits(&e2),
        h2 + 1.0,
        "the redirected viewer was a local hit on edge 2"
    );

    // Edge 2 dies: before its lease runs out the table still names it; edge 1 still answers
    // (edge 3 is over the bound: the storage tier), no viewer error.
    let st = responses(&storage);
    let over_bound = decisions(&e1, "over_bound");
    e2.proc.crash();
    let r = get(e1.addr, PATH, &[]);
    assert_eq!(
        (r.status, r.body.len(), checksum(&r.body)),
        (200, SIZE, sum),
        "no viewer error"
    );
    assert!(responses(&storage) > st, "the storage tier served it");
    // The dead peer was tried and marked stale — unless its lease ran out first, and then the
    // only holder left (edge 3) was over the bound.
    assert!(
        e1.proc.metric("strata_director_stale_entries_total") >= 1.0
            || decisions(&e1, "over_bound") > over_bound
    );
    wait_until("edge 2's row leaves the table with its lease", || {
        row(&state(&e1), "e2").is_none()
    });

    // Edge 3's load goes: it is now the holder to go to.
    drop(held);
    wait_until("edge 3 back under the bound", || {
        let s = state(&e1);
        load(&s, "e3") < 0.1
    });
    let h3 = hits(&e3);
    let r = get(e1.addr, "/acme/clip/video.mp4", &[("Range", "bytes=0-99")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &data[..100]));
    assert_eq!(hits(&e3), h3 + 1.0, "edge 3 served it");

    // A stale entry: edge 3's file vanishes, its row still lists it. Edge 1's request still
    // succeeds (storage tier), and the table corrects itself.
    std::fs::remove_file(e3.cache.join(ASSET)).expect("remove edge 3's copy");
    let stale_before = e1.proc.metric("strata_director_stale_entries_total");
    let r = get(e1.addr, PATH, &[]);
    assert_eq!(
        (r.status, r.body.len(), checksum(&r.body)),
        (200, SIZE, sum),
        "no viewer error"
    );
    assert!(e1.proc.metric("strata_director_stale_entries_total") > stale_before);
    assert!(e3.proc.metric("strata_director_hop_misses_total") >= 1.0);
    wait_until("edge 1's table no longer says edge 3 holds it", || {
        !holds(&state(&e1), "e3")
    });
    let status = control.status();
    let east = status["director"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["region"] == "east").cloned())
        .expect("director section of the status");
    assert!(
        east["edges"].as_array().is_some_and(|e| e.len() == 3),
        "e1, e3, e4 up: {east}"
    );
    drop((e1, e3, e4, storage));
}
