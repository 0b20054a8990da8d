//! eBPF connection telemetry on real links: a client behind a link shaped with tc tbf and an
//! unshaped client, in separate /24s, fetch from the same edge; the per-/24 statistics the
//! edge exposes must tell them apart and count exactly what they did.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use strata_tests::netns::{connect_from, in_netns, Lan};
use strata_tests::*;

const SIZE: usize = 512 * 1024;
const FETCHES: usize = 3;

fn fetch_n(ns: &str, source: Ipv4Addr, edge: SocketAddr, data: &[u8]) {
    let sum = checksum(data);
    in_netns(ns, move || {
        for i in 0..FETCHES {
            let mut s =
                connect_from(source, edge, Duration::from_secs(5)).unwrap_or_else(|| panic!("connect {i}"));
            s.write_all(request("GET", "/acme/c/seg.m4s", &[("Connection", "close")]).as_bytes())
                .expect("write");
            let r = read_response(&mut s, &mut Vec::new(), false);
            assert_eq!(
                (r.status, checksum(&r.body)),
                (200, sum),
                "fetch {i} from {source}"
            );
        }
    });
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    connections: u64,
    bytes_acked: u64,
    srtt_us_mean: u64,
    delivery_rate_bps: u64,
}

/// Parses one prefix's entry out of /telemetry/prefixes (a JSON array of flat objects).
fn entry(json: &str, prefix: &str) -> Option<Seen> {
    let start = json.find(&format!("\"prefix\":\"{prefix}\""))?;
    let obj = &json[start..json[start..].find('}')? + start];
    let field = |name: &str| -> u64 {
        let at = obj.find(&format!("\"{name}\":")).expect("field") + name.len() + 3;
        obj[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("number")
    };
    Some(Seen {
        connections: field("connections"),
        bytes_acked: field("bytes_acked"),
        srtt_us_mean: field("srtt_us_mean"),
        delivery_rate_bps: field("delivery_rate_bps"),
    })
}

#[test]
fn shaped_client_shows_larger_rtt_and_lower_delivery_rate_per_24() {
    if !kernel_features_or_skip("shaped_client_shows_larger_rtt") {
        return;
    }
    let lan = Lan::new(2);
    let dir = TempDir::new("telemetry");
    let data = pattern(31, SIZE);
    dir.write("acme/c/seg.m4s", &data);
    // The shaped client lives in its own /24, reached through a second edge address.
    let other = if lan.subnet == 254 { 1 } else { lan.subnet + 1 };
    let edge2 = Ipv4Addr::new(198, 18, other, 1);
    let shaped = Ipv4Addr::new(198, 18, other, 2);
    lan.add_addr(&lan.edge_ns, &lan.edge_if, &format!("{edge2}/24"));
    lan.add_addr(&lan.client_ns[0], &lan.client_if(0), &format!("{shaped}/24"));
    lan.shape_download(0, "4mbit");
    let edge = Strata::start_in(
        Some(&lan.edge_ns),
        &[
            "edge",
            "--cache-dir",
            dir.path().to_str().expect("utf-8"),
            "--listen",
            "0.0.0.0:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--body-path",
            "io_uring",
            "--telemetry",
            "required",
        ],
        1,
    );
    let port = edge.addr.port();
    let shaped_ns = lan.client_ns[0].clone();
    let plain_ns = lan.client_ns[1].clone();
    let plain = lan.client_addr(1);
    let data2 = data.clone();
    let edge1 = SocketAddr::from((lan.edge_addr(), port));
    let t = std::thread::spawn(move || fetch_n(&shaped_ns, shaped, SocketAddr::from((edge2, port)), &data2));
    fetch_n(&plain_ns, plain, edge1, &data);
    t.join().expect("shaped client");

    let shaped_prefix = format!("198.18.{other}.0/24");
    let plain_prefix = format!("198.18.{}.0/24", lan.subnet);
    // Connections are counted when they reach TCP_CLOSE, a moment after the client's close.
    let (s, p) = loop {
        let json = edge.admin_get("/telemetry/prefixes").text();
        if let (Some(s), Some(p)) = (entry(&json, &shaped_prefix), entry(&json, &plain_prefix)) {
            if s.connections == FETCHES as u64 && p.connections == FETCHES as u64 {
                break (s, p);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("shaped {s:?}\nplain  {p:?}");
    for (name, seen) in [("shaped", s), ("plain", p)] {
        let body = (FETCHES * SIZE) as u64;
        assert!(
            seen.bytes_acked >= body && seen.bytes_acked <= body + FETCHES as u64 * 1024,
            "{name}: bytes acked {} for {body} body bytes",
            seen.bytes_acked
        );
    }
    assert!(
        s.srtt_us_mean > 4 * p.srtt_us_mean.max(1),
        "shaped RTT {} vs plain {}",
        s.srtt_us_mean,
        p.srtt_us_mean
    );
    assert!(
        s.delivery_rate_bps * 4 < p.delivery_rate_bps,
        "shaped rate {} vs plain {}",
        s.delivery_rate_bps,
        p.delivery_rate_bps
    );
    let m = edge.metrics();
    assert!(
        metric_value(&m, "strata_tcp_srtt_seconds_count") >= (2 * FETCHES) as f64,
        "{m}"
    );
}
