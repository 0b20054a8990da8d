//! Misses through the edge's reverse proxy (on loopback), each check run with the sockmap,
//! splice(2) and copy body paths: byte-exact relays with
//! the client's range carried upstream, pooled upstream connections, failover and its limits,
//! the miss policies, and upstream faults that must never look like complete responses.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use strata_tests::*;

fn edge_for(path: &str, storage: &[SocketAddr], extra: &[&str]) -> (TempDir, Strata) {
    let cache = TempDir::new("proxy-cache");
    let cluster = format!(
        "home={}",
        storage
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut args = vec![
        "--cluster",
        &cluster,
        "--tenant",
        "acme=home",
        "--proxy-path",
        path,
    ];
    // The proxy is under test: no cache admission, so repeated requests stay misses.
    args.extend(["--cache-capacity", "0"]);
    if !extra.contains(&"--miss") {
        args.extend(["--miss", "proxy"]);
    }
    args.extend_from_slice(extra);
    let edge = Strata::edge(cache.path(), &args);
    (cache, edge)
}

/// A port nothing listens on.
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn misses_are_relayed_byte_exact_with_the_clients_range(path: &str) {
    let store = TempDir::new("proxy-store");
    let data = pattern(41, 3 << 20);
    store.write("acme/c/v.mp4", &data);
    let storage = Strata::storage(store.path(), &[]);
    let (_cache, edge) = edge_for(path, &[storage.addr], &[]);
    let whole = get(edge.addr, "/acme/c/v.mp4", &[]);
    assert_eq!((whole.status, checksum(&whole.body)), (200, checksum(&data)));
    assert!(whole.header("ETag").is_some() && whole.header("Last-Modified").is_some());
    let r = get(edge.addr, "/acme/c/v.mp4", &[("Range", "bytes=1000-1999")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &data[1000..2000]));
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 1000-1999/{}", data.len()).as_str())
    );
    let q = get(edge.addr, "/acme/c/v.mp4?bytes=5-14", &[]);
    assert_eq!((q.status, q.body.as_slice()), (200, &data[5..15]));
    assert_eq!(
        get(edge.addr, "/acme/c/v.mp4", &[("Range", "bytes=9999999-")]).status,
        416
    );
    assert_eq!(get(edge.addr, "/acme/c/missing.mp4", &[]).status, 404);
    // The storage server was asked for 1,000 bytes, not the whole file.
    // Small ranges go out inline by sendfile, large bodies through the io_uring rings.
    let sent = storage.metric_absent_or_zero("strata_body_bytes_total{path=\"io_uring_splice\"}")
        + storage.metric_absent_or_zero("strata_body_bytes_total{path=\"sendfile\"}");
    assert_eq!(
        sent,
        (data.len() + 1000 + 10) as f64,
        "storage sent exactly what the clients asked for"
    );
    assert!(edge.metric("strata_misses_total") >= 5.0);
    let moved = match path {
        // auto moves each body by one of the three.
        "auto" => ["sockmap", "splice", "copy"]
            .iter()
            .map(|p| edge.metric(&format!("strata_body_bytes_total{{path=\"proxy_{p}\"}}")))
            .sum(),
        _ => edge.metric(&format!("strata_body_bytes_total{{path=\"proxy_{path}\"}}")),
    };
    assert!(
        moved >= (data.len() + 1010) as f64,
        "bodies went through the {path} path ({moved})"
    );
}

/// TCP sockets in TIME_WAIT toward `port` on this machine (from /proc/net/tcp).
fn time_wait_toward(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "06"
                && f[2]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

/// Splice and copy reuse one pooled upstream connection for every body. A body that went
/// through the sockmap retires its connection (a socket that has been in the sockmap moves
/// later bodies more slowly) with a reset, so the edge keeps no TIME_WAIT socket per body.
fn upstream_connections_are_pooled_except_after_a_sockmap_body(path: &str) {
    let store = TempDir::new("proxy-pool");
    let data = pattern(42, 20_000);
    store.write("acme/c/seg.m4s", &data);
    let storage = Strata::storage(store.path(), &[]);
    let (_cache, edge) = edge_for(path, &[storage.addr], &[]);
    let time_wait_before = time_wait_toward(storage.addr.port());
    let mut s = connect(edge.addr);
    let mut buf = Vec::new();
    let bodies = 1000;
    for i in 0..bodies {
        s.write_all(request("GET", "/acme/c/seg.m4s", &[]).as_bytes())
            .expect("write");
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(
            (r.status, checksum(&r.body)),
            (200, checksum(&data)),
            "request {i}"
        );
    }
    let connections = storage.metric("strata_connections_total");
    let by_sockmap = match path {
        "sockmap" => bodies as f64,
        "auto" => metric_sum(
            &edge.metrics(),
            "strata_proxy_auto_choices_total",
            &["path=\"sockmap\""],
        ),
        _ => 0.0,
    };
    if path == "auto" {
        assert!(by_sockmap > 0.0, "auto measured the sockmap path too");
    }
    // Each sockmap body retires its connection; each run of other bodies shares one.
    assert!(
        connections >= by_sockmap && connections <= 2.0 * by_sockmap + 1.0,
        "{path}: {connections} upstream connections for {bodies} bodies, {by_sockmap} through the sockmap"
    );
    if by_sockmap == 0.0 {
        assert_eq!(
            connections, 1.0,
            "{path}: one upstream connection, reused {bodies} times"
        );
    }
    assert_eq!(
        time_wait_toward(storage.addr.port()).saturating_sub(time_wait_before),
        0,
        "{path}: retired upstream connections close with a reset, not into TIME_WAIT"
    );
}

fn failover_to_a_replica_and_502_when_every_server_is_down(path: &str) {
    let store = TempDir::new("proxy-failover");
    let data = pattern(43, 10_000);
    store.write("acme/c/v.mp4", &data);
    let replica = Strata::storage(store.path(), &[]);
    let dead = dead_addr();
    let cache = TempDir::new("proxy-failover-cache");
    let home = format!("home={dead}");
    let repl = format!("repl={}", replica.addr);
    let edge = Strata::edge(
        cache.path(),
        &[
            "--cluster",
            &home,
            "--cluster",
            &repl,
            "--tenant",
            "acme=home,repl",
            "--proxy-path",
            path,
            "--cache-capacity",
            "0",
        ],
    );
    for _ in 0..5 {
        assert_eq!(
            get(edge.addr, "/acme/c/v.mp4", &[]).body,
            data,
            "served by the replica"
        );
    }
    assert!(edge.metric(&format!("strata_upstream_errors_total{{server=\"{dead}\"}}")) >= 1.0);
    drop(replica);
    let r = get(edge.addr, "/acme/c/v.mp4", &[]);
    assert_eq!(r.status, 502);
    assert!(
        r.text().contains("no storage server could serve /acme/c/v.mp4"),
        "{}",
        r.text()
    );
}

fn redirect_and_error_miss_policies(path: &str) {
    let store = TempDir::new("proxy-policy");
    store.write("acme/c/v.mp4", &pattern(44, 100));
    let storage = Strata::storage(store.path(), &[]);
    let (_c1, redirecting) = edge_for(path, &[storage.addr], &["--miss", "redirect"]);
    let r = get(redirecting.addr, "/acme/c/v.mp4?bytes=0-9", &[]);
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("Location"),
        Some(format!("http://{}/acme/c/v.mp4?bytes=0-9", storage.addr).as_str())
    );
    let (_c2, strict) = edge_for(path, &[storage.addr], &["--miss", "error"]);
    assert_eq!(get(strict.addr, "/acme/c/v.mp4", &[]).status, 404);
}

/// A fake storage server that answers every request with `response` and then closes; counts
/// the requests it was asked.
fn fake_upstream(response: &[u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let asked = Arc::new(AtomicUsize::new(0));
    let (count, response) = (asked.clone(), response.to_vec());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            let mut req = [0u8; 4096];
            if c.read(&mut req).is_ok_and(|n| n > 0) {
                count.fetch_add(1, Ordering::SeqCst);
            }
            let _ = c.write_all(&response);
        }
    });
    (addr, asked)
}

fn upstream_dying_mid_body_closes_the_client_connection(path: &str) {
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
    resp.extend_from_slice(&[7u8; 5000]);
    let (up, _) = fake_upstream(&resp);
    let (_cache, edge) = edge_for(path, &[up], &[]);
    let mut s = connect(edge.addr);
    s.write_all(request("GET", "/acme/c/v.mp4", &[]).as_bytes())
        .expect("write");
    // The edge must close the connection (EOF), not leave the client waiting for the rest.
    let got = read_to_eof(&mut s, CLOSE_WITHIN);
    let head_end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head relayed")
        + 4;
    assert!(String::from_utf8_lossy(&got[..head_end]).contains("Content-Length: 1000000"));
    let body = &got[head_end..];
    assert!(
        body.len() <= 5000 && body.iter().all(|b| *b == 7),
        "the client got at most the bytes that existed, unchanged, then EOF: short, never complete"
    );
    assert_eq!(
        get(edge.addr, "/healthz-is-not-content", &[]).status,
        404,
        "the edge keeps serving"
    );
}

fn bytes_past_the_announced_length_never_reach_the_client(path: &str) {
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789".to_vec();
    resp.extend_from_slice(b"SMUGGLED-BYTES");
    let (up, _) = fake_upstream(&resp);
    let (_cache, edge) = edge_for(path, &[up], &[]);
    let mut s = connect(edge.addr);
    let mut buf = Vec::new();
    for _ in 0..3 {
        s.write_all(request("GET", "/acme/c/v.mp4", &[]).as_bytes())
            .expect("write");
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(r.body, b"0123456789");
    }
    assert!(
        buf.is_empty(),
        "nothing after the body: {:?}",
        String::from_utf8_lossy(&buf)
    );
}

fn upstream_5xx_fails_over_and_is_relayed_when_nothing_else_answers(path: &str) {
    const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    let (failing, failing_asked) = fake_upstream(UNAVAILABLE);
    // Connection: close, so that every request opens a fresh connection to it (none pooled).
    let (good, good_asked) =
        fake_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789");
    let (_cache, edge) = edge_for(path, &[failing, good], &[]);
    // Round robin puts the failing server first for some of these: each of those fails over.
    for i in 0..4 {
        let r = get(edge.addr, "/acme/c/v.mp4", &[]);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"0123456789"[..]),
            "request {i}: served by the other server"
        );
    }
    let tried = failing_asked.load(Ordering::SeqCst);
    assert!(tried >= 1, "the failing server was asked first at least once");
    assert_eq!(
        good_asked.load(Ordering::SeqCst),
        4,
        "every request ended at the good server"
    );
    assert_eq!(
        edge.metric(&format!("strata_upstream_errors_total{{server=\"{failing}\"}}")),
        tried as f64,
        "each 503 counted as a failed attempt"
    );
    // Every server answers 5xx: the client gets 502 naming what the last one said.
    let (also_failing, also_asked) = fake_upstream(UNAVAILABLE);
    let (_cache2, edge2) = edge_for(path, &[failing, also_failing], &[]);
    let before = failing_asked.load(Ordering::SeqCst);
    let r = get(edge2.addr, "/acme/c/v.mp4", &[]);
    assert_eq!(r.status, 502);
    assert!(r.text().contains("answered 503"), "{}", r.text());
    assert_eq!(
        (
            failing_asked.load(Ordering::SeqCst) - before,
            also_asked.load(Ordering::SeqCst)
        ),
        (1, 1),
        "both servers were asked before the 502"
    );
}

fn storage_tier_connections_are_measured_per_server(path: &str) {
    if !kernel_features_or_skip("storage_tier_connections_are_measured_per_server") {
        return;
    }
    let store = TempDir::new("proxy-telemetry");
    let data = pattern(45, 1 << 20);
    store.write("acme/c/v.mp4", &data);
    let a = Strata::storage(store.path(), &[]);
    let b = Strata::storage(store.path(), &[]);
    // No idle upstream connections: each proxied request opens and closes its own, so the
    // per-server byte counts (added at close) are complete when the test reads them.
    let conf = TempDir::new("proxy-telemetry-conf");
    let toml = conf.write("edge.toml", b"[upstream]\nmax_idle_per_server = 0\n");
    let (_cache, edge) = edge_for(
        path,
        &[a.addr, b.addr],
        &["--config", toml.to_str().expect("utf-8")],
    );
    for _ in 0..4 {
        assert_eq!(
            checksum(&get(edge.addr, "/acme/c/v.mp4", &[]).body),
            checksum(&data)
        );
    }
    let field = |entry: &str, name: &str| -> u64 {
        let at = entry.find(&format!("\"{name}\":")).expect("field") + name.len() + 3;
        entry[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("number")
    };
    for server in [a.addr, b.addr] {
        let entry = loop {
            let json = edge.admin_get("/telemetry/prefixes").text();
            let key = format!("\"kind\":\"upstream\",\"prefix\":\"{server}\"");
            if let Some(start) = json.find(&key) {
                let entry = json[start..].split('}').next().expect("object").to_string();
                if field(&entry, "bytes_received") >= 2 * data.len() as u64 {
                    break entry;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        assert_eq!(
            field(&entry, "connections"),
            2,
            "{server}: round robin gave it 2 of 4: {entry}"
        );
        assert!(
            field(&entry, "bytes_received") < 2 * data.len() as u64 + 2048,
            "{entry}"
        );
    }
}

/// Runs each check once per proxy body path, and with `auto` choosing among them.
macro_rules! on_every_path {
    ($($check:ident),* $(,)?) => {
        $(
            mod $check {
                #[test]
                fn sockmap() {
                    super::$check("sockmap");
                }
                #[test]
                fn splice() {
                    super::$check("splice");
                }
                #[test]
                fn copy() {
                    super::$check("copy");
                }
                #[test]
                fn auto() {
                    super::$check("auto");
                }
            }
        )*
    };
}

on_every_path!(
    misses_are_relayed_byte_exact_with_the_clients_range,
    upstream_connections_are_pooled_except_after_a_sockmap_body,
    failover_to_a_replica_and_502_when_every_server_is_down,
    redirect_and_error_miss_policies,
    upstream_dying_mid_body_closes_the_client_connection,
    bytes_past_the_announced_length_never_reach_the_client,
    upstream_5xx_fails_over_and_is_relayed_when_nothing_else_answers,
    storage_tier_connections_are_measured_per_server
);

/// Sums the samples of a metric family whose labels contain every one of `labels`.
fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_large_body_through_the_sockmap_takes_a_new_upstream_connection_for_each_piece() {
    if !kernel_features_or_skip(
        "a_large_body_through_the_sockmap_takes_a_new_upstream_connection_for_each_piece",
    ) {
        return;
    }
    let store = TempDir::new("proxy-pieces");
    // Five pieces of 4 MiB (`max_in_flight_per_client`).
    let data = pattern(7, 20 << 20);
    store.write("acme/c/long.mp4", &data);
    let storage = Strata::storage(store.path(), &[]);
    let (_cache, edge) = edge_for("sockmap", &[storage.addr], &[]);
    let mut s = connect(edge.addr);
    let mut buf = Vec::new();
    s.write_all(request("GET", "/acme/c/long.mp4", &[]).as_bytes())
        .expect("write");
    let r = read_response(&mut s, &mut buf, false);
    assert_eq!((r.status, checksum(&r.body)), (200, checksum(&data)));
    assert!(
        edge.metric("strata_body_bytes_total{path=\"proxy_sockmap\"}") >= (4 << 20) as f64,
        "the first piece went through the sockmap"
    );
    // A piece that lags (over 250 ms to reach the client's socket) sends the rest by splice
    // over one more connection, so there are two to five.
    let connections = storage.metric("strata_connections_total");
    assert!(
        (2.0..=5.0).contains(&connections),
        "{connections} upstream connections for five pieces"
    );
    // Every connection a piece went through the sockmap on is closed; one that carried the
    // rest by splice may be pooled.
    let pooled = if connections == 5.0 { 0.0 } else { 1.0 };
    assert!(
        settle(|| storage.metric("strata_connections_open"), |v| v <= pooled) <= pooled,
        "connections left open after the body"
    );
}

#[test]
fn with_two_sockmap_pieces_in_flight_bodies_arrive_exactly_and_in_order() {
    if !kernel_features_or_skip("with_two_sockmap_pieces_in_flight_bodies_arrive_exactly_and_in_order") {
        return;
    }
    let store = TempDir::new("proxy-window");
    // Ten pieces of 2 MiB, two redirected at once; then a range across several pieces.
    let data = pattern(11, 20 << 20);
    store.write("acme/c/long.mp4", &data);
    let storage = Strata::storage(store.path(), &[]);
    let conf = TempDir::new("proxy-window-conf");
    let toml = conf.write("edge.toml", b"[upstream]\nsockmap_pieces_in_flight = 2\n");
    let (_cache, edge) = edge_for(
        "sockmap",
        &[storage.addr],
        &["--config", toml.to_str().expect("utf-8")],
    );
    let mut s = connect(edge.addr);
    let mut buf = Vec::new();
    for round in 0..3 {
        s.write_all(request("GET", "/acme/c/long.mp4", &[]).as_bytes())
            .expect("write");
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(
            (r.status, checksum(&r.body)),
            (200, checksum(&data)),
            "round {round}"
        );
    }
    let (first, last) = (3_000_000usize, 9_500_000usize);
    s.write_all(
        request(
            "GET",
            "/acme/c/long.mp4",
            &[("Range", &format!("bytes={first}-{last}"))],
        )
        .as_bytes(),
    )
    .expect("write");
    let r = read_response(&mut s, &mut buf, false);
    assert_eq!(
        (r.status, checksum(&r.body)),
        (206, checksum(&data[first..=last]))
    );
    assert!(
        edge.metric("strata_body_bytes_total{path=\"proxy_sockmap\"}") >= (8 << 20) as f64,
        "pieces went through the sockmap"
    );
    // Ten pieces per body, each over its own connection unless a lagging client sent the rest
    // by splice: more than one connection per body.
    assert!(storage.metric("strata_connections_total") > 4.0);
}

#[test]
fn auto_measures_every_path_then_moves_bodies_by_the_fastest_and_says_so() {
    let sockmap = kernel_features_or_skip("auto_measures_every_path_then_moves_bodies_by_the_fastest");
    let store = TempDir::new("proxy-auto");
    let data = pattern(43, 256 << 10);
    store.write("acme/c/part.m4s", &data);
    let storage = Strata::storage(store.path(), &[]);
    let (_cache, edge) = edge_for("auto", &[storage.addr], &[]);
    let family = "strata_proxy_auto_choices_total";
    let fastest_choices = |m: &str| metric_sum(m, family, &["why=\"fastest\""]);
    let mut s = connect(edge.addr);
    let mut buf = Vec::new();
    // One body at a time, 256 KiB: one class. Each path gets two epochs (each at least 8
    // bodies and 250 ms), then the class takes the fastest.
    let mut sent = 0;
    while sent < 20_000 {
        s.write_all(request("GET", "/acme/c/part.m4s", &[]).as_bytes())
            .expect("write");
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(
            (r.status, checksum(&r.body)),
            (200, checksum(&data)),
            "request {sent}"
        );
        sent += 1;
        if sent % 100 == 0 && fastest_choices(&edge.metrics()) >= 100.0 {
            break;
        }
    }
    let m = edge.metrics();
    assert!(
        fastest_choices(&m) >= 100.0,
        "after {sent} bodies, still measuring:\n{m}"
    );
    let paths: &[&str] = if sockmap {
        &["sockmap", "splice", "copy"]
    } else {
        &["splice", "copy"]
    };
    assert_eq!(
        metric_sum(&m, family, &[]),
        sent as f64,
        "every body's choice is counted:\n{m}"
    );
    let rate = |p: &str| {
        metric_sum(
            &m,
            "strata_proxy_auto_rate_bytes_per_second",
            &[
                "link=\"127.0.0.1\"",
                "size=\"le_1MiB\"",
                "load=\"1\"",
                &format!("path=\"{p}\""),
            ],
        )
    };
    for p in paths {
        assert!(rate(p) > 0.0, "{p} measured:\n{m}");
        assert!(
            metric_sum(&m, family, &[&format!("path=\"{p}\""), "why=\"measuring\""]) >= 16.0,
            "{p} had two epochs of at least 8 bodies:\n{m}"
        );
    }
    // Near-equal paths may trade places; one measured at under half the best never leads.
    let best = paths.iter().map(|p| rate(p)).fold(0.0, f64::max);
    for p in paths.iter().filter(|p| rate(p) * 2.0 < best) {
        assert_eq!(
            metric_sum(&m, family, &[&format!("path=\"{p}\""), "why=\"fastest\""]),
            0.0,
            "{p} measured at under half the best rate yet was chosen as fastest:\n{m}"
        );
    }
    // The log line is read from the process's stderr a moment after it is written.
    let logged = |l: &String| {
        l.contains("proxy auto: fastest path for this class of responses changed") && l.contains("MB/s")
    };
    let lines = settle(
        || edge.log().iter().filter(|l| logged(l)).count() as f64,
        |n| n > 0.0,
    );
    assert!(
        lines > 0.0,
        "the choice is logged with the rates: {:?}",
        edge.log()
    );
}
