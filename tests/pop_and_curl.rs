//! `strata pop` on loopback, driven by real curl: a control plane, two storage clusters and an
//! edge whose cache starts empty, the demo content ingested through the control plane; a cold asset is a miss, then (requested again) filled, then a local hit; the
//! URLs it prints answer, including `curl -r 100-199` (206, 100 bytes) and `?bytes=100-199`.

use std::process::Command;

use strata_tests::*;

fn curl(args: &[&str]) -> (u16, u64) {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}"])
        .args(args)
        .output()
        .expect("curl is installed (cargo xtask setup installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, size) = text.split_once(' ').expect("curl -w output");
    (code.parse().expect("code"), size.parse().expect("size"))
}

#[test]
fn pop_serves_demo_content_to_curl_with_ranges() {
    let data = TempDir::new("pop");
    let data_dir = data.path().to_str().expect("utf-8");
    let pop = Strata::start(
        &[
            "pop",
            "--data-dir",
            data_dir,
            "--edge-listen",
            "127.0.0.1:0",
            "--edge-admin-listen",
            "127.0.0.1:0",
            "--storage-east-listen",
            "127.0.0.1:0",
            "--storage-east-admin-listen",
            "127.0.0.1:0",
            "--storage-west-listen",
            "127.0.0.1:0",
            "--storage-west-admin-listen",
            "127.0.0.1:0",
            "--control-listen",
            "127.0.0.1:0",
            "--edge-west-listen",
            "127.0.0.1:0",
            "--edge-west-admin-listen",
            "127.0.0.1:0",
            "--dns-listen",
            "127.0.0.1:0",
            "--dns-admin-listen",
            "127.0.0.1:0",
        ],
        6,
    );
    let (edge, edge_admin) = pop.role("edge");
    let (storage, _) = pop.role("storage-west");
    let edge_metric = |sample: &str| metric_value(&get(edge_admin, "/metrics", &[]).text(), sample);
    // Miss, miss (admitted: one fill), then a local hit, as the edge's metrics tell.
    let cold = format!("http://{edge}/acme/launch-trailer/video-1080p.mp4");
    assert_eq!(curl(&[&cold]), (200, 8 << 20));
    assert_eq!(edge_metric("strata_cache_hits_total"), 0.0);
    assert_eq!(curl(&[&cold]), (200, 8 << 20));
    assert_eq!(edge_metric("strata_misses_total"), 2.0);
    let filled = settle(
        || edge_metric("strata_cache_fills_total{result=\"completed\"}"),
        |v| v == 1.0,
    );
    assert_eq!(filled, 1.0, "the second request filled the cache");
    assert_eq!(curl(&[&cold]), (200, 8 << 20));
    assert_eq!(edge_metric("strata_cache_hits_total"), 1.0, "then a local hit");
    assert_eq!(edge_metric("strata_misses_total"), 2.0);
    let url = format!("http://{edge}/acme/launch-trailer/init.mp4");
    assert_eq!(curl(&[&url]), (200, 128 * 1024));
    assert_eq!(curl(&["-r", "100-199", &url]), (206, 100));
    assert_eq!(curl(&[&format!("{url}?bytes=100-199")]), (200, 100));
    assert_eq!(
        curl(&[&format!("http://{storage}/globex/keynote-2026/video-720p.mp4")]),
        (200, 4 << 20)
    );
    assert_eq!(
        curl(&[&format!("http://{edge}/globex/keynote-2026/video-720p.mp4")]),
        (200, 4 << 20),
        "proxied from west"
    );
    assert_eq!(curl(&[&format!("http://{edge_admin}/healthz")]).0, 200);
    // Client routing: the POP's nameserver ranks both regions' edges for 127.0.0.1.
    let (dns, _) = pop.role("dns");
    let (edge_west, _) = pop.role("edge-west");
    let srv = strata_tests::dns::dig(dns, None, &["+short", "SRV", "_a1-2130706433._tcp.srv.cdn.test"]);
    let records = strata_tests::dns::srv_records(&srv);
    let ports: Vec<u16> = records.iter().map(|r| r.port).collect();
    assert!(
        records.len() == 2 && ports.contains(&edge.port()) && ports.contains(&edge_west.port()),
        "both regions' edges in the SRV answer: {srv}"
    );
    assert_eq!(
        curl(&[&format!("http://{edge_west}/globex/keynote-2026/video-720p.mp4")]),
        (200, 4 << 20),
        "the west region's edge serves too"
    );
    assert_eq!(pop.stop(), Some(0), "Ctrl-C/SIGTERM shuts the POP down cleanly");
}
