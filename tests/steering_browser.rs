//! HLS Content Steering with a real player: HLS content made by ffmpeg (H.264/AAC), two regions'
//! edges under a control plane, and hls.js (pinned, from npm, installed by `cargo xtask setup`
//! into target/npm) in headless Chromium on a page of another origin. The player starts on the
//! first region's pathway; when that region's cost is raised the steering manifest ranks the
//! other first, and the player moves there while `currentTime` keeps advancing.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use strata_tests::browser::{chromium, player_page_with, wait_report};
use strata_tests::control::Control;
use strata_tests::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(from).expect("read").flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

fn frags_from(r: &Value, host: &str) -> bool {
    r["frags"]
        .as_array()
        .is_some_and(|f| !f.is_empty() && f.iter().all(|u| u.as_str().is_some_and(|u| u.contains(host))))
}

#[test]
fn hls_js_follows_content_steering_to_the_other_region_and_keeps_playing() {
    let dir = TempDir::new("steering");
    let hls = dir.path().join("hls");
    strata_tests::media::make_hls(40, &hls);
    let (east_cache, west_cache) = (dir.path().join("east"), dir.path().join("west"));
    copy_dir(&hls, &east_cache.join("acme/show"));
    copy_dir(&hls, &west_cache.join("acme/show"));
    let control = Control::start(&dir.path().join("control"), &["--map-interval", "300ms"]);
    let east = control.edge(&east_cache, "east-1", &["--region", "east"]);
    let west = control.edge(&west_cache, "west-1", &["--region", "west"]);
    let ok = |o: std::process::Output| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(control.cli(&["control", "region", "set", "west", "--base-cost", "10"]));
    // The edge steers once its map has both regions, east first.
    let master_url = format!("http://{}/acme/show/master.m3u8", east.addr);
    let mut playlist = String::new();
    for _ in 0..100 {
        playlist = get(east.addr, "/acme/show/master.m3u8", &[]).text();
        if playlist.matches("PATHWAY-ID=").count() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        playlist.contains("#EXT-X-CONTENT-STEERING:SERVER-URI="),
        "{playlist}"
    );
    assert!(
        playlist.contains(&format!("http://{}/acme/show/", west.addr)),
        "{playlist}"
    );
    let resp = get(
        east.addr,
        "/.steering/acme/show?_HLS_pathway=east&_HLS_throughput=1000000",
        &[],
    );
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("*"),
        "CORS for a page of another origin"
    );
    let manifest: Value = serde_json::from_str(&resp.text()).expect("steering manifest JSON");
    assert_eq!(
        manifest["PATHWAY-PRIORITY"],
        serde_json::json!(["east", "west"]),
        "{manifest}"
    );
    // The player, on a page of another origin.
    let reports = Arc::new(Mutex::new(Vec::new()));
    let page = player_page_with(
        master_url,
        "{ maxBufferLength: 4, maxMaxBufferLength: 6 }",
        reports.clone(),
    );
    let mut browser = chromium(&format!("http://{page}/"), &dir.path().join("chromium"));
    let east_host = east.addr.to_string();
    let west_host = west.addr.to_string();
    let started = wait_report(&reports, 240, "playback on east", |r| {
        r["t"].as_f64().unwrap_or(0.0) >= 3.0 && frags_from(r, &east_host)
    });
    // East turns bad: its cost goes up, the map ranks west first, the manifest follows.
    ok(control.cli(&["control", "region", "set", "east", "--base-cost", "1000"]));
    let moved = wait_report(&reports, 240, "the player on west's pathway", |r| {
        frags_from(r, &west_host)
    });
    let t_moved = moved["t"].as_f64().unwrap_or(0.0);
    let later = wait_report(&reports, 120, "playback going on after the move", |r| {
        r["t"].as_f64().unwrap_or(0.0) >= t_moved + 3.0
    });
    let _ = browser.kill();
    let _ = browser.wait();
    eprintln!("started: {started}\nmoved: {moved}\nlater: {later}");
    assert!(
        later["t"].as_f64() > started["t"].as_f64(),
        "currentTime advanced: {started} → {later}"
    );
    assert_eq!(
        later["pathways"][0], "west",
        "hls.js ranks west first now: {later}"
    );
    assert!(
        control.metric("strata_control_map_client_reports_total") >= 1.0,
        "the player's _HLS_throughput reached the control plane through the edge"
    );
}
