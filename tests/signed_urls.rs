//! Signed URLs end to end: a tenant switched to `signed` is refused without a signature (403)
//! by its edge once the lookup carries its keys; URLs signed by the control plane
//! (`strata control sign`) are served byte-exact, ranges too; a tampered signature, another
//! path, another client address and an expired URL are refused (403, 403, 403, 410); after a
//! key rotation URLs signed before still work, after a second one they do not; a playlist
//! signed by prefix has the token carried on to every segment, so ffprobe plays it through the
//! edge; switching back to public serves unsigned URLs again.

use std::process::Command;

use strata_tests::control::Control;
use strata_tests::*;

fn sign(control: &Control, path: &str, extra: &[&str]) -> String {
    let mut args = vec!["control", "sign", path];
    args.extend_from_slice(extra);
    let out = control.cli(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn access(control: &Control, rule: &str) {
    let out = control.cli(&["control", "tenant", "access", "acme", rule]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Polls GET `path` through the edge until it answers `status` (the lookup reaches the edge
/// with its next heartbeat); the last response.
fn wait_status(edge: &Strata, path: &str, status: u16) -> Response {
    let mut r = get(edge.addr, path, &[]);
    for _ in 0..100 {
        if r.status == status {
            return r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        r = get(edge.addr, path, &[]);
    }
    panic!("{path}: wanted {status}, got {} {}", r.status, r.text());
}

#[test]
fn signed_tenants_are_served_only_under_valid_signatures_and_hls_carries_the_token() {
    let dir = TempDir::new("signed");
    let control = Control::start(&dir.path().join("control"), &[]);
    control.tenant("acme", "east", &[], 0);
    let east = dir.path().join("east");
    std::fs::create_dir_all(&east).expect("root");
    let _storage = control.storage(&east, "east", "east-1");
    let edge = control.edge(&dir.path().join("cache"), "edge-1", &["--telemetry", "off"]);
    control.wait_for("servers up", 400, |c| c.is_up("east-1") && c.is_up("edge-1"));
    let src = TempDir::new("signed-src");
    let clip = pattern(5, 300_000);
    src.write("clip.mp4", &clip);
    assert!(control.ingest("acme", "show", src.path(), &[]).status.success());
    let hls = dir.path().join("hls");
    strata_tests::media::make_hls(8, &hls);
    let out = control.ingest("acme", "live", &hls, &["--hot"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pushed = dir.path().join("cache/acme/live/index.m3u8");
    control.wait_for("the HLS content pushed to the edge", 600, |_| pushed.exists());

    // Public: served as before.
    assert_eq!(wait_status(&edge, "/acme/show/clip.mp4", 200).body, clip);
    access(&control, "signed");
    let refused = wait_status(&edge, "/acme/show/clip.mp4", 403);
    assert!(
        refused.text().contains("needs a signed URL"),
        "{}",
        refused.text()
    );

    let url = sign(&control, "/acme/show/clip.mp4", &["--ttl", "1h"]);
    let r = get(edge.addr, &url, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == clip, "exact bytes under a signature");
    let r = get(edge.addr, &url, &[("Range", "bytes=100-199")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &clip[100..200]));

    let tampered = format!(
        "{}{}",
        &url[..url.len() - 1],
        if url.ends_with('0') { "1" } else { "0" }
    );
    assert_eq!(get(edge.addr, &tampered, &[]).status, 403);
    let other_path = url.replace("/acme/show/clip.mp4", "/acme/live/index.m3u8");
    assert_eq!(get(edge.addr, &other_path, &[]).status, 403);
    let for_someone_else = sign(&control, "/acme/show/clip.mp4", &["--ip", "10.9.9.9"]);
    let r = get(edge.addr, &for_someone_else, &[]);
    assert_eq!(r.status, 403);
    assert!(r.text().contains("another client address"), "{}", r.text());
    let short = sign(&control, "/acme/show/clip.mp4", &["--ttl", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = get(edge.addr, &short, &[]);
    assert_eq!(r.status, 410, "{}", r.text());
    assert!(r.text().contains("expired"), "{}", r.text());

    // Rotation: the previous key stays valid, the one before it does not.
    assert!(control
        .cli(&["control", "tenant", "keys", "acme"])
        .status
        .success());
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(
        get(edge.addr, &url, &[]).status,
        200,
        "signed before one rotation"
    );
    assert!(control
        .cli(&["control", "tenant", "keys", "acme"])
        .status
        .success());
    wait_status(&edge, &url, 403);

    // HLS under a prefix signature: ffprobe follows the playlist's segments with the token,
    // from a playlist the edge holds (pushed hot) and from one it fetches on a miss.
    let vod = control.ingest("acme", "vod", &hls, &[]);
    assert!(vod.status.success(), "{}", String::from_utf8_lossy(&vod.stderr));
    let signed_vod = sign(&control, "/acme/vod/index.m3u8", &["--prefix", "/acme/vod/"]);
    ffprobe_reads_8_seconds(&edge, &signed_vod);
    let signed_playlist = sign(&control, "/acme/live/index.m3u8", &["--prefix", "/acme/live/"]);
    let playlist = get(edge.addr, &signed_playlist, &[]);
    assert_eq!(playlist.status, 200, "{}", playlist.text());
    let query = signed_playlist.split_once('?').expect("query").1;
    assert!(
        playlist.text().contains(&format!("seg000.ts?{query}")),
        "{}",
        playlist.text()
    );
    assert_eq!(
        get(edge.addr, "/acme/live/seg000.ts", &[]).status,
        403,
        "a segment alone needs the token"
    );
    ffprobe_reads_8_seconds(&edge, &signed_playlist);

    access(&control, "public");
    assert_eq!(wait_status(&edge, "/acme/show/clip.mp4", 200).body, clip);
}

/// ffprobe reads the signed playlist through the edge: 8 s of media.
fn ffprobe_reads_8_seconds(edge: &Strata, signed_playlist: &str) {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(format!("http://{}{signed_playlist}", edge.addr))
        .output()
        .expect("ffprobe (installed by cargo xtask setup)");
    let duration: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!(
        probe.status.success() && (duration - 8.0).abs() < 0.5,
        "ffprobe read {duration} s of {signed_playlist}: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
}
