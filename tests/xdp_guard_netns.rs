//! The XDP guard on a real link: an edge and clients in network namespaces joined by veth
//! through a bridge, the guard attached to the edge's interface.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use strata_tests::netns::{connect_from, in_netns, ip_output, syn_flood, Lan};
use strata_tests::*;

fn edge_on(lan: &Lan, dir: &TempDir, extra: &[&str]) -> Strata {
    let listen = format!("{}:0", lan.edge_addr());
    let mut args = vec![
        "edge",
        "--cache-dir",
        dir.path().to_str().expect("utf-8"),
        "--listen",
        &listen,
        "--admin-listen",
        &listen,
        "--body-path",
        "io_uring",
        "--telemetry",
        "required",
        "--guard-interface",
        &lan.edge_if,
    ];
    args.extend_from_slice(extra);
    Strata::start_in(Some(&lan.edge_ns), &args, 1)
}

/// Fetches `path` from `source` (inside client namespace `ns`); None if it cannot connect.
fn fetch_from(ns: &str, source: std::net::Ipv4Addr, edge: SocketAddr, path: &str) -> Option<Vec<u8>> {
    let path = path.to_string();
    in_netns(ns, move || {
        let mut s = connect_from(source, edge, Duration::from_secs(2))?;
        s.write_all(request("GET", &path, &[]).as_bytes()).ok()?;
        let r = read_response(&mut s, &mut Vec::new(), false);
        assert_eq!(r.status, 200);
        Some(r.body)
    })
}

fn xdp_attached(lan: &Lan) -> bool {
    ip_output(&["-n", &lan.edge_ns, "link", "show", "dev", &lan.edge_if]).contains("xdp")
}

#[test]
fn blocked_prefix_cannot_connect_until_unblocked_at_run_time() {
    if !kernel_features_or_skip("blocked_prefix_cannot_connect") {
        return;
    }
    let lan = Lan::new(1);
    let dir = TempDir::new("guard-block");
    let data = pattern(21, 300_000);
    dir.write("acme/c/seg.m4s", &data);
    let blocked = lan.add_client_addr(0, 100);
    let allowed = lan.client_addr(0);
    let block = format!("{blocked}/32");
    let edge = edge_on(&lan, &dir, &["--guard-block", &block]);
    assert!(xdp_attached(&lan), "guard attached to {}", lan.edge_if);
    let ns = lan.client_ns[0].clone();

    assert_eq!(
        fetch_from(&ns, blocked, edge.addr, "/acme/c/seg.m4s"),
        None,
        "blocked source cannot connect"
    );
    assert_eq!(
        fetch_from(&ns, allowed, edge.addr, "/acme/c/seg.m4s").as_deref(),
        Some(&data[..]),
        "allowed source fetches"
    );

    // Unblock through the real CLI, run from the client host against the edge's admin port.
    let admin = edge.admin.to_string();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(strata_bin())
        .args(["edge", "guard", "--admin", &admin, "del", "block", &block])
        .output()
        .expect("strata edge guard del");
    assert!(
        out.status.success(),
        "guard del: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fetch_from(&ns, blocked, edge.addr, "/acme/c/seg.m4s").as_deref(),
        Some(&data[..]),
        "unblocked without restarting the edge"
    );
    let m = edge.metrics();
    assert!(
        metric_value(
            &m,
            "strata_xdp_packets_total{verdict=\"drop\",reason=\"blocklist\"}"
        ) >= 1.0,
        "{m}"
    );
    assert!(
        edge.log().iter().any(|l| l.contains("xdp_guard: 1 drops")),
        "the XDP program's log reached tracing"
    );
}

#[test]
fn bounded_syn_flood_is_dropped_while_another_client_keeps_fetching() {
    if !kernel_features_or_skip("bounded_syn_flood_is_dropped") {
        return;
    }
    let lan = Lan::new(2);
    let dir = TempDir::new("guard-flood");
    let data = pattern(22, 256 * 1024);
    dir.write("acme/c/seg.m4s", &data);
    let (rate, burst) = (50u32, 100u32);
    let edge = edge_on(
        &lan,
        &dir,
        &[
            "--guard-syn-rate",
            &rate.to_string(),
            "--guard-syn-burst",
            &burst.to_string(),
        ],
    );
    let target = edge.addr;
    let flooder = lan.client_addr(0);
    let flood_ns = lan.client_ns[0].clone();
    const FLOOD: u32 = 20_000;
    let started = std::time::Instant::now();
    let flood = std::thread::spawn(move || in_netns(&flood_ns, move || syn_flood(flooder, target, FLOOD)));
    let viewer = lan.client_addr(1);
    let viewer_ns = lan.client_ns[1].clone();
    for i in 0..20 {
        let body =
            fetch_from(&viewer_ns, viewer, target, "/acme/c/seg.m4s").unwrap_or_else(|| panic!("fetch {i}"));
        assert_eq!(checksum(&body), checksum(&data), "fetch {i} during the flood");
    }
    let sent = flood.join().expect("flood thread");
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(sent, FLOOD);
    let m = edge.metrics();
    let dropped = metric_value(
        &m,
        "strata_xdp_packets_total{verdict=\"drop\",reason=\"syn_rate\"}",
    );
    // Everything beyond the burst and what the rate refills while the flood lasts is dropped.
    let allowed_at_most = f64::from(burst) + f64::from(rate) * (elapsed + 1.0);
    assert!(dropped <= f64::from(FLOOD), "dropped {dropped} of {FLOOD}");
    assert!(
        dropped >= f64::from(FLOOD) - allowed_at_most,
        "dropped {dropped} of {FLOOD} in {elapsed:.2}s"
    );
    eprintln!(
        "flood: sent {sent} SYNs in {elapsed:.2}s, dropped {dropped} ({:.1}%)",
        100.0 * dropped / f64::from(sent)
    );
}

#[test]
fn stopping_or_killing_the_edge_removes_the_xdp_program() {
    if !kernel_features_or_skip("stopping_or_killing_the_edge_removes_the_xdp_program") {
        return;
    }
    let lan = Lan::new(1);
    let dir = TempDir::new("guard-detach");
    let edge = edge_on(&lan, &dir, &[]);
    assert!(xdp_attached(&lan));
    assert_eq!(edge.stop(), Some(0));
    assert!(!xdp_attached(&lan), "clean stop detaches");
    let edge = edge_on(&lan, &dir, &[]);
    assert!(xdp_attached(&lan));
    edge.crash();
    // The bpf_link dies with the process; the kernel may take a moment to release it.
    while xdp_attached(&lan) {
        std::thread::sleep(Duration::from_millis(50));
    }
}
