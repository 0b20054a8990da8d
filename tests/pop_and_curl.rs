//! `strata pop` on loopback, driven by real curl: a control plane, two storage clusters and an
//! edge whose cache starts empty, the demo content ingested through the control plane; a cold asset is a miss, then (requested again) filled, then a local hit; the
//! URLs it prints answer, including `curl -r 100-199` (206) and `?bytes=100-199`, each with
//! exactly the demo asset's bytes.

use std::process::Command;

use strata_tests::*;

/// Runs curl with `args` and returns the status code and the body it downloaded.
fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let dir = TempDir::new("curl");
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-s", "-w", "%{http_code}", "-o"])
        .arg(&body)
        .args(args)
        .output()
        .expect("curl is installed (cargo xtask setup installs it)");
    let code = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("curl -w status code");
    (code, std::fs::read(&body).unwrap_or_default())
}

/// The bytes of demo asset `n` (1-based, in the order of `DEMO_ASSETS` in the binary's
/// demo_data.rs), made by the same generator, independently of any server.
fn demo_asset(n: u64, len: usize) -> Vec<u8> {
    let mut state = n | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Asserts a curl result is `status` with exactly `want`, naming the request.
fn same(got: (u16, Vec<u8>), status: u16, want: &[u8], what: &str) {
    assert_eq!(got.0, status, "{what}: status");
    assert_eq!(got.1.len(), want.len(), "{what}: length");
    assert!(got.1 == want, "{what}: the bytes differ from the demo asset's");
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
            "--live-listen",
            "127.0.0.1:0",
            "127.0.0.1:0",
            "--live-admin-listen",
            "127.0.0.1:0",
            "127.0.0.1:0",
            "--edge-east-2-listen",
            "127.0.0.1:0",
            "--edge-east-2-admin-listen",
            "127.0.0.1:0",
        ],
        9,
    );
    let (edge, edge_admin) = pop.role("edge");
    let (storage, _) = pop.role("storage-west");
    let edge_metric = |sample: &str| metric_value(&get(edge_admin, "/metrics", &[]).text(), sample);
    let video = demo_asset(4, 8 << 20); // acme/launch-trailer/video-1080p.mp4
    let init = demo_asset(1, 128 * 1024); // acme/launch-trailer/init.mp4
    let keynote = demo_asset(6, 4 << 20); // globex/keynote-2026/video-720p.mp4
                                          // Miss, miss (admitted: one fill), then a local hit, as the edge's metrics tell.
    let cold = format!("http://{edge}/acme/launch-trailer/video-1080p.mp4");
    same(curl(&[&cold]), 200, &video, "first miss");
    assert_eq!(edge_metric("strata_cache_hits_total"), 0.0);
    same(curl(&[&cold]), 200, &video, "second miss");
    assert_eq!(edge_metric("strata_misses_total"), 2.0);
    let filled = settle(
        || edge_metric("strata_cache_fills_total{result=\"completed\"}"),
        |v| v == 1.0,
    );
    assert_eq!(filled, 1.0, "the second request filled the cache");
    same(curl(&[&cold]), 200, &video, "local hit");
    assert_eq!(edge_metric("strata_cache_hits_total"), 1.0, "then a local hit");
    assert_eq!(edge_metric("strata_misses_total"), 2.0);
    // The second east edge does not hold it; its director fetches it from the first, once
    // the first's state row (which now lists it) has reached it.
    let (edge2, edge2_admin) = pop.role("edge-east-2");
    let held_by_neighbour = settle(
        || {
            let state = get(edge2_admin, "/state", &[]).text();
            f64::from(u8::from(
                state.contains("\"acme/launch-trailer/video-1080p.mp4\""),
            ))
        },
        |v| v == 1.0,
    );
    assert_eq!(
        held_by_neighbour, 1.0,
        "edge-east-2's table shows its neighbour holds the video"
    );
    same(
        curl(&[&format!("http://{edge2}/acme/launch-trailer/video-1080p.mp4")]),
        200,
        &video,
        "the second east edge, from its neighbour",
    );
    let edge2_metric = |sample: &str| metric_value(&get(edge2_admin, "/metrics", &[]).text(), sample);
    assert_eq!(
        edge2_metric("strata_director_decisions_total{outcome=\"peer\"}"),
        1.0,
        "{}",
        get(edge2_admin, "/state", &[]).text()
    );
    // (A proxied body may be fetched in pieces: each is a hit there.)
    assert!(
        edge_metric("strata_cache_hits_total") >= 2.0,
        "served by the neighbour as a local hit"
    );
    let url = format!("http://{edge}/acme/launch-trailer/init.mp4");
    same(curl(&[&url]), 200, &init, "init.mp4");
    same(
        curl(&["-r", "100-199", &url]),
        206,
        &init[100..200],
        "curl -r 100-199",
    );
    same(
        curl(&[&format!("{url}?bytes=100-199")]),
        200,
        &init[100..200],
        "?bytes=100-199",
    );
    same(
        curl(&[&format!("http://{storage}/globex/keynote-2026/video-720p.mp4")]),
        200,
        &keynote,
        "from storage west",
    );
    same(
        curl(&[&format!("http://{edge}/globex/keynote-2026/video-720p.mp4")]),
        200,
        &keynote,
        "proxied from west",
    );
    assert_eq!(curl(&[&format!("http://{edge_admin}/healthz")]).0, 200);
    // Client routing: the POP's nameserver ranks both regions' edges for 127.0.0.1.
    let (dns, _) = pop.role("dns");
    let (edge_west, _) = pop.role("edge-west");
    let srv = strata_tests::dns::dig(dns, None, &["+short", "SRV", "_a1-2130706433._tcp.srv.cdn.test"]);
    let records = strata_tests::dns::srv_records(&srv);
    let ports: Vec<u16> = records.iter().map(|r| r.port).collect();
    // Region east has two edges on different ports: a record per edge, less any the
    // nameserver leaves out for load.
    let east = ports
        .iter()
        .filter(|p| [edge.port(), edge2.port()].contains(p))
        .count();
    assert!(
        east >= 1 && ports.contains(&edge_west.port()) && records.len() == east + 1,
        "both regions' edges in the SRV answer: {srv}"
    );
    same(
        curl(&[&format!("http://{edge_west}/globex/keynote-2026/video-720p.mp4")]),
        200,
        &keynote,
        "the west region's edge serves too",
    );
    // Live: ffmpeg publishes to the POP's ingest cluster with acme's publish token; the edge
    // serves the live playlist.
    let (live, _) = pop.role("live");
    let token = std::fs::read_to_string(data.path().join("control/service-tokens/acme-publish.token"))
        .expect("the POP wrote acme's publish token");
    let mut encoder = strata_tests::live::ffmpeg_publish(
        &format!("http://{live}/acme/pop-live/index.m3u8"),
        token.trim(),
        6,
        "mpegts",
    );
    let mut listed = Vec::new();
    for _ in 0..600 {
        let (status, body) = curl(&[&format!("http://{edge}/acme/pop-live/index.m3u8")]);
        listed = strata_tests::live::segments(&String::from_utf8_lossy(&body));
        if status == 200 && !listed.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !listed.is_empty(),
        "the live playlist through the edge lists segments"
    );
    assert!(
        encoder.wait().expect("ffmpeg").success(),
        "ffmpeg published to the POP"
    );
    assert_eq!(pop.stop(), Some(0), "Ctrl-C/SIGTERM shuts the POP down cleanly");
}
