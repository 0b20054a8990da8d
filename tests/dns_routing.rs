//! Client routing with real processes and a real DNS client: a control plane whose map maker
//! solves the network map, edges in two regions reporting to it, `strata dns` answering from
//! the map, and `dig` asking it. Pins: SRV answers rank regions for the client's block (the
//! address in the name, the EDNS Client Subnet, or the resolver's own address); client reports
//! move a block to another region; load past a region's capacity overflows to the next one and
//! load that fits nowhere is reported; REFUSED, NXDOMAIN, NODATA and FORMERR where they belong;
//! a large answer truncated over UDP and whole over TCP.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use strata_tests::control::{raw, Control};
use strata_tests::dns::*;
use strata_tests::*;

/// A control plane solving every 300 ms and an edge in each of regions east and west.
struct Routing {
    _dir: TempDir,
    control: Control,
    east: Strata,
    west: Strata,
    dns: Strata,
}

fn routing(name: &str) -> Routing {
    let dir = TempDir::new(name);
    let control = Control::start(&dir.path().join("control"), &["--map-interval", "300ms"]);
    let east = control.edge(&dir.path().join("east"), "e1", &["--region", "east"]);
    let west = control.edge(&dir.path().join("west"), "e2", &["--region", "west"]);
    let dns = start_dns(&control, "cdn.test", None, "127.0.0.1");
    Routing {
        _dir: dir,
        control,
        east,
        west,
        dns,
    }
}

/// Asks `dig +short` until `done` holds (every 100 ms, at most 100 times); the last output.
fn dig_until(server: SocketAddr, args: &[&str], what: &str, done: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        last = dig(server, None, args);
        if done(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gave up waiting for {what}; dig {args:?} answered:\n{last}");
}

fn map_block(control: &Control, prefix: &str) -> Option<Value> {
    let map = control.op("GET", "/v1/map", None);
    map["blocks"]
        .as_array()?
        .iter()
        .find(|b| b["prefix"] == prefix)
        .cloned()
}

fn carried(block: &Value, region: &str) -> u64 {
    block["assigned"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a[0] == region)
        .and_then(|a| a[1].as_u64())
        .unwrap_or(0)
}

#[test]
fn srv_answers_rank_regions_for_the_clients_block_and_client_reports_move_it() {
    let r = routing("dns-rank");
    let ok = |o: std::process::Output| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(r.control
        .cli(&["control", "region", "set", "west", "--base-cost", "10"]));
    let server = r.dns.addr;
    // A client nobody has seen: the default order (east has the lower base cost).
    let fresh = format!(
        "_a1-{}._tcp.srv.cdn.test",
        ip_label(Ipv4Addr::new(198, 51, 100, 9))
    );
    let short = dig_until(server, &["+short", "SRV", &fresh], "both regions", |o| {
        srv_records(o).len() == 2
    });
    let records = srv_records(&short);
    assert_eq!(first_regions(&short), vec!["east"], "{short}");
    assert!(records[0].priority < records[1].priority, "{short}");
    assert_eq!(records[0].port, r.east.addr.port(), "east's edge port: {short}");
    assert_eq!(records[1].port, r.west.addr.port(), "west's edge port: {short}");
    assert_eq!(records[0].target, "a1.reast.cdn.test");
    let full = dig(server, None, &["SRV", &fresh]);
    assert!(
        full.contains("a1.reast.cdn.test.\t20\tIN\tA\t127.0.0.1"),
        "glue for the token:\n{full}"
    );
    // The resolver's own block (127.0.0.0/24) reports east as slow and failing: its queries go
    // to west first, while a client subnet sent in EDNS keeps its own order.
    let report = json!({"timings": [
        {"server": r.east.addr.to_string(), "bytes": 1 << 20, "ms": 5000, "errors": 3},
        {"server": r.west.addr.to_string(), "bytes": 1 << 20, "ms": 20, "errors": 0},
    ]});
    let (status, answer) = raw(
        r.control.addr,
        "POST",
        "/v1/reports",
        None,
        Some(&report.to_string()),
    );
    assert_eq!(status, 200, "{answer}");
    let own = dig_until(
        server,
        &["+short", "SRV", "_a1._tcp.srv.cdn.test"],
        "127.0.0.0/24 to move to west",
        |o| first_regions(o) == ["west"],
    );
    assert_eq!(srv_records(&own).len(), 2, "east stays as the fallback: {own}");
    let ecs = dig(
        server,
        None,
        &["+short", "+subnet=203.0.113.0/24", "SRV", "_a1._tcp.srv.cdn.test"],
    );
    assert_eq!(
        first_regions(&ecs),
        vec!["east"],
        "the client subnet's block, not the resolver's: {ecs}"
    );
    let in_name = format!("_a7-{}._tcp.srv.cdn.test", ip_label(Ipv4Addr::new(127, 0, 0, 9)));
    let named = dig(server, None, &["+short", "SRV", &in_name]);
    assert_eq!(
        first_regions(&named),
        vec!["west"],
        "the address in the name: {named}"
    );
    assert!(
        named.contains("a7.rwest.cdn.test"),
        "the bucket travels into the token: {named}"
    );
    let map = r.control.cli(&["control", "map"]);
    let table = String::from_utf8_lossy(&map.stdout).into_owned();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("127.0.0.0/24") && l.find("west") < l.find("east")),
        "strata control map shows 127.0.0.0/24 on west first:\n{table}"
    );
    // Bad reports: the field named, nothing counted.
    for (body, want) in [
        (
            "{\"timings\": [{\"server\": \"nowhere\", \"bytes\": 1, \"ms\": 1}]}",
            "timings[0].server",
        ),
        (
            "{\"timings\": [{\"server\": \"127.0.0.1:1\", \"bytes\": 5, \"ms\": 0}]}",
            "timings[0].ms",
        ),
        ("{\"timing\": []}", "timing"),
    ] {
        let (status, answer) = raw(r.control.addr, "POST", "/v1/reports", None, Some(body));
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.contains(want), "{body}: {answer}");
    }
    let huge = format!("{{\"timings\": [], \"pad\": \"{}\"}}", "x".repeat(20_000));
    assert_eq!(
        raw(r.control.addr, "POST", "/v1/reports", None, Some(&huge)).0,
        413
    );
    let statuses: Vec<u16> = (0..40)
        .map(|_| {
            raw(
                r.control.addr,
                "POST",
                "/v1/reports",
                None,
                Some("{\"timings\": []}"),
            )
            .0
        })
        .collect();
    assert!(
        statuses.contains(&429),
        "a flood of reports from one address is refused: {statuses:?}"
    );
}

#[test]
fn load_past_a_regions_capacity_overflows_to_the_next_and_what_fits_nowhere_is_reported() {
    let r = routing("dns-overflow");
    let ok = |o: std::process::Output| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(r.control
        .cli(&["control", "region", "set", "west", "--base-cost", "10"]));
    ok(r.control
        .cli(&["control", "region", "set", "east", "--capacity-bps", "1000000"]));
    let server = r.dns.addr;
    let ask = || {
        dig(
            server,
            None,
            &["+short", "+subnet=203.0.113.0/24", "SRV", "_a1._tcp.srv.cdn.test"],
        )
    };
    // Every query stands for a 2 Mbit/s viewer: east (1 Mbit/s) cannot carry the block alone.
    let mut block = None;
    for _ in 0..100 {
        for _ in 0..3 {
            ask();
        }
        block = map_block(&r.control, "203.0.113.0/24");
        if block.as_ref().is_some_and(|b| carried(b, "west") > 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let b = block.expect("the block the nameserver saw is in the map");
    assert_eq!(
        carried(&b, "east"),
        1_000_000,
        "the cheap region carries all it can: {b}"
    );
    assert!(carried(&b, "west") > 0, "the rest overflows to west: {b}");
    assert_eq!(b["unassigned_bps"], 0, "{b}");
    assert_eq!(
        first_regions(&ask()),
        vec!["east"],
        "the cheapest region still comes first"
    );
    // Now west is small too: what fits in neither is reported, never dropped silently.
    ok(r.control.cli(&[
        "control",
        "region",
        "set",
        "west",
        "--base-cost",
        "10",
        "--capacity-bps",
        "1000000",
    ]));
    let mut unassigned = 0;
    for _ in 0..100 {
        for _ in 0..3 {
            ask();
        }
        unassigned =
            map_block(&r.control, "203.0.113.0/24").map_or(0, |b| b["unassigned_bps"].as_u64().unwrap_or(0));
        if unassigned > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        unassigned > 0,
        "load beyond both regions is reported as unassigned"
    );
    let table = String::from_utf8_lossy(&r.control.cli(&["control", "map"]).stdout).into_owned();
    assert!(table.contains("UNASSIGNED"), "{table}");
    let metrics = raw(r.control.addr, "GET", "/metrics", None, None).1;
    assert!(
        metric_value(&metrics, "strata_control_map_unassigned_bps") > 0.0,
        "{metrics}"
    );
    assert!(metric_value(&metrics, "strata_control_map_solves_total") > 0.0);
}

#[test]
fn the_nameserver_refuses_other_zones_and_answers_nxdomain_nodata_and_formerr() {
    let r = routing("dns-codes");
    let server = r.dns.addr;
    dig_until(
        server,
        &["+short", "A", "reast.cdn.test"],
        "region east's edge",
        |o| o.trim() == "127.0.0.1",
    );
    assert_eq!(status(&dig(server, None, &["A", "www.example.com"])), "REFUSED");
    assert_eq!(status(&dig(server, None, &["A", "www.cdn.test"])), "NXDOMAIN");
    assert_eq!(
        status(&dig(server, None, &["A", "rnowhere.cdn.test"])),
        "NXDOMAIN"
    );
    assert_eq!(
        status(&dig(server, None, &["SRV", "_ax._tcp.srv.cdn.test"])),
        "NXDOMAIN"
    );
    let nodata = dig(server, None, &["AAAA", "reast.cdn.test"]);
    assert_eq!(status(&nodata), "NOERROR");
    assert!(
        nodata.contains("ANSWER: 0") && nodata.contains("SOA"),
        "NODATA with the SOA:\n{nodata}"
    );
    let soa = dig(server, None, &["+short", "SOA", "cdn.test"]);
    assert!(soa.starts_with("ns.cdn.test. hostmaster.cdn.test."), "{soa}");
    // A header that promises a question and carries none: FORMERR with the same id.
    let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut garbage = vec![0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    garbage.extend_from_slice(&[0x07, b'c', b'd']);
    sock.send_to(&garbage, server).expect("send");
    let mut buf = [0u8; 512];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer to a malformed query");
    assert!(n >= 12);
    assert_eq!(&buf[..2], &[0xbe, 0xef], "same id");
    assert_eq!(buf[3] & 0x0f, 1, "rcode FORMERR");
    // Fewer bytes than a header: nothing to answer, and the server goes on.
    sock.send_to(&[1, 2, 3], server).expect("send");
    assert!(sock.recv_from(&mut buf).is_err(), "no answer to 3 bytes");
    assert_eq!(
        dig(server, None, &["+short", "A", "reast.cdn.test"]).trim(),
        "127.0.0.1"
    );
    let metrics = r.dns.metrics();
    for sample in [
        "strata_dns_queries_total{qtype=\"A\",rcode=\"REFUSED\",transport=\"udp\"}",
        "strata_dns_queries_total{qtype=\"A\",rcode=\"NXDOMAIN\",transport=\"udp\"}",
        "strata_dns_queries_total{qtype=\"malformed\",rcode=\"FORMERR\",transport=\"udp\"}",
    ] {
        assert!(metric_value(&metrics, sample) >= 1.0, "{sample} in\n{metrics}");
    }
}

#[test]
fn a_large_answer_is_truncated_over_udp_and_whole_over_tcp() {
    let r = routing("dns-tc");
    // Forty edges of region "big" heartbeat through the control API, as edges do (forty A
    // records do not fit in 512 bytes).
    let names: Vec<String> = (0..40).map(|i| format!("big-{i}")).collect();
    let tokens: Vec<String> = names
        .iter()
        .map(|n| std::fs::read_to_string(r.control.service_token_file(n)).expect("token"))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let beat = {
        let (stop, addr) = (stop.clone(), r.control.addr);
        let names = names.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for (i, (name, token)) in names.iter().zip(&tokens).enumerate() {
                    let hb = json!({"server": {
                        "name": name, "role": "edge", "region": "big", "capacity_bps": 1_000_000_000u64,
                        "addr": format!("127.0.1.{}:8080", i + 1), "admin_addr": format!("127.0.1.{}:9080", i + 1),
                    }});
                    let (status, answer) = strata_tests::control::api(
                        addr,
                        "POST",
                        "/v1/heartbeat",
                        Some(token.trim()),
                        Some(&hb),
                    );
                    assert_eq!(status, 200, "{answer}");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let server = r.dns.addr;
    let tcp = dig_until(
        server,
        &["+tcp", "+short", "A", "rbig.cdn.test"],
        "thirty servers over TCP",
        |o| o.lines().count() == 40,
    );
    let udp = dig(server, None, &["+noedns", "+ignore", "A", "rbig.cdn.test"]);
    assert!(udp.contains(" tc "), "the UDP answer says truncated:\n{udp}");
    assert!(udp.contains("ANSWER: 0"), "{udp}");
    let retried = dig(server, None, &["+noedns", "A", "rbig.cdn.test"]);
    assert!(retried.contains("Truncated, retrying in TCP mode"), "{retried}");
    assert_eq!(retried.matches("\tIN\tA\t127.0.1.").count(), 40, "{retried}");
    let mut a: Vec<&str> = tcp.lines().collect();
    a.sort();
    a.dedup();
    assert_eq!(a.len(), 40, "every server once");
    // Another bucket, another order of the same servers (rendezvous hashing).
    let other = dig(server, None, &["+tcp", "+short", "A", "a2.rbig.cdn.test"]);
    assert_eq!(other.lines().count(), 40);
    assert_ne!(other, tcp, "bucket 2 ranks the servers differently from bucket 0");
    assert!(metric_value(&r.dns.metrics(), "strata_dns_truncated_total") >= 1.0);
    stop.store(true, Ordering::Relaxed);
    beat.join().expect("heartbeats");
    drop((r.east, r.west));
}
