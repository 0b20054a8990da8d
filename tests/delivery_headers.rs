//! What responses tell browsers and downstream caches, per tenant: `Cache-Control` by kind
//! (immutable on-demand assets on misses and hits, short live playlists, a short negative TTL
//! for 404, `no-store` for other errors) and the tenant's overrides set with `strata control
//! tenant delivery`; CORS per tenant: any origin by default, then only the listed origins
//! (echoed with `Vary: Origin` on hits, misses, live playlists and steering manifests; others
//! get no allow header, and their preflight 403); and in headless Chromium a page on an
//! allowed origin plays HLS with hls.js while one on another origin is blocked.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_tests::browser::{chromium, player_page, wait_report};
use strata_tests::control::Control;
use strata_tests::live::LivePop;
use strata_tests::*;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn cli_ok(control: &Control, args: &[&str]) -> String {
    let out = control.cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Polls GET until `check` holds (the lookup reaches the edge with a heartbeat); the response.
fn wait_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    what: &str,
    check: impl Fn(&Response) -> bool,
) -> Response {
    let mut r = get(addr, path, headers);
    for _ in 0..150 {
        if check(&r) {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
        r = get(addr, path, headers);
    }
    panic!(
        "gave up waiting for {what}: {} {:?} {}",
        r.status,
        r.headers,
        r.text()
    );
}

fn publish(addr: SocketAddr, path: &str, token: &str, body: &[u8]) -> u16 {
    let mut s = connect(addr);
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: live\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(body).expect("body");
    let mut buf = Vec::new();
    read_response(&mut s, &mut buf, false).status
}

fn cc(r: &Response) -> Option<&str> {
    r.header("cache-control")
}

#[test]
fn cache_control_by_kind_and_cors_by_tenant_on_hits_misses_live_and_steering() {
    let pop = LivePop::start("delivery", 1, 600, &["--telemetry", "off"]);
    let control = &pop.control;
    let edge = &pop.edge;
    let src = TempDir::new("delivery-src");
    let clip = pattern(11, 100_000);
    src.write("clip.mp4", &clip);
    src.write("other.mp4", &clip[..5000]);
    let out = control.ingest("acme", "show", src.path(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ingest = pop.ingest_addr(0);
    assert_eq!(
        publish(ingest, "/acme/cam/seg0.ts", &pop.token, &pattern(2, 3000)),
        201
    );
    let pl = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg0.ts\n";
    assert_eq!(publish(ingest, "/acme/cam/index.m3u8", &pop.token, pl), 201);

    // Defaults. A miss (proxied), then the same asset as a hit once filled.
    let miss = wait_get(
        edge.addr,
        "/acme/show/clip.mp4",
        &[],
        "the asset through the edge",
        |r| r.status == 200,
    );
    assert_eq!(cc(&miss), Some(IMMUTABLE), "miss: {:?}", miss.headers);
    assert_eq!(miss.header("access-control-allow-origin"), Some("*"));
    let cached = pop.dir.path().join("edge/acme/show/clip.mp4");
    wait_get(
        edge.addr,
        "/acme/show/clip.mp4",
        &[],
        "the fill on the edge's disk",
        |_| cached.exists(),
    );
    let hit = get(edge.addr, "/acme/show/clip.mp4", &[]);
    assert_eq!(cc(&hit), Some(IMMUTABLE), "hit: {:?}", hit.headers);
    let range = get(edge.addr, "/acme/show/clip.mp4", &[("Range", "bytes=0-99")]);
    assert_eq!((range.status, cc(&range)), (206, Some(IMMUTABLE)));
    let missing = get(edge.addr, "/acme/show/none.mp4", &[]);
    assert_eq!((missing.status, cc(&missing)), (404, Some("public, max-age=10")));
    let unsat = get(edge.addr, "/acme/show/clip.mp4", &[("Range", "bytes=999999-")]);
    assert_eq!((unsat.status, cc(&unsat)), (416, Some("no-store")));
    let live = wait_get(edge.addr, "/acme/cam/index.m3u8", &[], "the live playlist", |r| {
        r.status == 200
    });
    assert_eq!(
        cc(&live),
        Some("public, max-age=1"),
        "live playlist: {:?}",
        live.headers
    );

    // Overrides, set on the control plane, reach the edge with the lookup table.
    let shown = cli_ok(
        control,
        &[
            "control",
            "tenant",
            "delivery",
            "acme",
            "--cache-control-vod",
            "public, max-age=600",
            "--cache-control-live-playlist",
            "max-age=2, stale-while-revalidate=2",
            "--cache-control-error",
            "no-store",
        ],
    );
    assert!(shown.contains("public, max-age=600"), "{shown}");
    let hit = wait_get(
        edge.addr,
        "/acme/show/clip.mp4",
        &[],
        "the vod override on a hit",
        |r| cc(r) == Some("public, max-age=600"),
    );
    assert_eq!(hit.body, clip);
    let missing = get(edge.addr, "/acme/show/none.mp4", &[]);
    assert_eq!(cc(&missing), Some("no-store"));
    let live = get(edge.addr, "/acme/cam/index.m3u8", &[]);
    assert_eq!(cc(&live), Some("max-age=2, stale-while-revalidate=2"));
    // A bad value is refused with the field named, and nothing changes.
    let bad = control.cli(&[
        "control",
        "tenant",
        "delivery",
        "acme",
        "--cors-origin",
        "good.example",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("cors_origins"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // CORS: any origin by default; then only the listed one.
    let good = "https://good.example";
    let evil = "https://evil.example";
    let r = get(edge.addr, "/acme/show/clip.mp4", &[("Origin", evil)]);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    cli_ok(
        control,
        &["control", "tenant", "delivery", "acme", "--cors-origin", good],
    );
    let r = wait_get(
        edge.addr,
        "/acme/show/clip.mp4",
        &[("Origin", good)],
        "the origin list at the edge",
        |r| r.header("access-control-allow-origin") == Some(good),
    );
    assert_eq!(r.header("vary"), Some("Origin"), "hit: {:?}", r.headers);
    assert!(r
        .header("access-control-expose-headers")
        .is_some_and(|h| h.contains("Content-Range")));
    let r = get(edge.addr, "/acme/show/clip.mp4", &[("Origin", evil)]);
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (200, None),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = get(edge.addr, "/acme/show/other.mp4", &[("Origin", good)]);
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (200, Some(good)),
        "miss: {:?}",
        r.headers
    );
    let r = get(edge.addr, "/acme/show/other.mp4", &[("Origin", evil)]);
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "miss: {:?}",
        r.headers
    );
    let r = get(edge.addr, "/acme/cam/index.m3u8", &[("Origin", good)]);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(good),
        "live: {:?}",
        r.headers
    );
    let r = get(edge.addr, "/acme/cam/index.m3u8", &[("Origin", evil)]);
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "live: {:?}",
        r.headers
    );
    let steer = "/.steering/acme/show?_HLS_pathway=x&_HLS_throughput=1000";
    let r = get(edge.addr, steer, &[("Origin", good)]);
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (200, Some(good)),
        "steering: {:?}",
        r.headers
    );
    let r = get(edge.addr, steer, &[("Origin", evil)]);
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "steering: {:?}",
        r.headers
    );
    let r = get(edge.addr, "/acme/show/none.mp4", &[("Origin", good)]);
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (404, Some(good)),
        "404: {:?}",
        r.headers
    );
    // Preflights.
    let pre = |origin: &str| {
        send(
            edge.addr,
            &request(
                "OPTIONS",
                "/acme/show/clip.mp4",
                &[
                    ("Origin", origin),
                    ("Access-Control-Request-Method", "GET"),
                    ("Access-Control-Request-Headers", "range"),
                ],
            ),
            false,
        )
    };
    let ok = pre(good);
    assert_eq!(
        (ok.status, ok.header("access-control-allow-origin")),
        (204, Some(good))
    );
    let refused = pre(evil);
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("access-control-allow-origin"), None);
    // curl, as an operator would check it.
    let curl = |origin: &str| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-D", "-", "-H"])
            .arg(format!("Origin: {origin}"))
            .arg(format!("http://{}/acme/show/clip.mp4", edge.addr))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
    };
    assert!(curl(good).contains(&format!("access-control-allow-origin: {good}\r\n")));
    assert!(!curl(evil).contains("access-control-allow-origin"));
    // Back to any origin and the default Cache-Control.
    cli_ok(
        control,
        &[
            "control",
            "tenant",
            "delivery",
            "acme",
            "--cors-any",
            "--cache-control-vod",
            "default",
        ],
    );
    wait_get(
        edge.addr,
        "/acme/show/clip.mp4",
        &[("Origin", evil)],
        "any origin again",
        |r| r.header("access-control-allow-origin") == Some("*") && cc(r) == Some(IMMUTABLE),
    );

    // Signed content: private by default, so no shared cache hands it to viewers without a token.
    cli_ok(control, &["control", "tenant", "access", "acme", "signed"]);
    let refused = wait_get(
        edge.addr,
        "/acme/show/clip.mp4",
        &[],
        "signed access at the edge",
        |r| r.status == 403,
    );
    assert_eq!(cc(&refused), Some("no-store"), "{:?}", refused.headers);
    let url = cli_ok(
        control,
        &["control", "sign", "/acme/show/clip.mp4", "--ttl", "1h"],
    );
    let signed = get(edge.addr, url.trim(), &[]);
    assert_eq!(signed.status, 200, "{}", signed.text());
    assert_eq!(cc(&signed), Some("private, max-age=31536000, immutable"));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

#[test]
fn hls_js_and_a_range_fetch_on_an_allowed_origin_work_and_on_another_origin_are_blocked() {
    let dir = TempDir::new("cors-browser");
    let hls = dir.path().join("hls");
    strata_tests::media::make_hls(20, &hls);
    let cache = dir.path().join("cache");
    copy_dir(&hls, &cache.join("acme/show"));
    let control = Control::start(&dir.path().join("control"), &[]);
    control.tenant("acme", "east", &[], 0);
    let edge = control.edge(&cache, "edge-1", &["--telemetry", "off"]);
    let playlist = format!("http://{}/acme/show/index.m3u8", edge.addr);
    let (allowed_reports, blocked_reports) =
        (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let allowed = player_page(playlist.clone(), allowed_reports.clone());
    let blocked = player_page(playlist, blocked_reports.clone());
    let allowed_origin = format!("http://{allowed}");
    cli_ok(
        &control,
        &[
            "control",
            "tenant",
            "delivery",
            "acme",
            "--cors-origin",
            &allowed_origin,
        ],
    );
    wait_get(
        edge.addr,
        "/acme/show/index.m3u8",
        &[("Origin", allowed_origin.as_str())],
        "the origin list at the edge",
        |r| r.header("access-control-allow-origin") == Some(allowed_origin.as_str()),
    );
    let mut browser = chromium(&format!("http://{allowed}/"), &dir.path().join("chromium-a"));
    let played = wait_report(&allowed_reports, 240, "playback on the allowed origin", |r| {
        r["t"].as_f64().unwrap_or(0.0) >= 2.0 && !r["range"].is_null()
    });
    // The page's own fetch() of a range, cross-origin: 206 with Content-Range readable.
    assert_eq!(played["range"]["status"], 206, "{played}");
    assert_eq!(played["range"]["length"], 10, "{played}");
    assert!(
        played["range"]["content_range"]
            .as_str()
            .is_some_and(|c| c.starts_with("bytes 0-9/")),
        "Content-Range exposed to the page: {played}"
    );
    let _ = browser.kill();
    let _ = browser.wait();
    let mut browser = chromium(&format!("http://{blocked}/"), &dir.path().join("chromium-b"));
    let refused = wait_report(
        &blocked_reports,
        240,
        "the player on another origin failing",
        |r| !r["err"].is_null() && !r["range"].is_null(),
    );
    assert!(
        refused["range"]["error"].is_string(),
        "the range fetch from another origin is refused by the browser: {refused}"
    );
    // A few more reports: it never plays.
    std::thread::sleep(Duration::from_secs(2));
    let last = blocked_reports
        .lock()
        .expect("reports")
        .last()
        .cloned()
        .unwrap_or_default();
    let _ = browser.kill();
    let _ = browser.wait();
    eprintln!("allowed: {played}\nblocked: {refused}");
    assert_eq!(
        last["t"].as_f64().unwrap_or(0.0),
        0.0,
        "blocked page did not play: {last}"
    );
    assert!(last["frags"].as_array().is_none_or(|f| f.is_empty()), "{last}");
}
