//! HLS Content Steering with a real player: HLS content made by ffmpeg (H.264/AAC), two regions'
//! edges under a control plane, and hls.js (pinned, from npm, installed by `cargo xtask setup`
//! into target/npm) in headless Chromium on a page of another origin. The player starts on the
//! first region's pathway; when that region's cost is raised the steering manifest ranks the
//! other first, and the player moves there while `currentTime` keeps advancing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use strata_tests::control::Control;
use strata_tests::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(from).expect("read").flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

fn hls_js() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .join("target/npm/node_modules/hls.js/dist/hls.min.js");
    assert!(p.exists(), "{} missing: run cargo xtask setup", p.display());
    p
}

/// The page's origin: serves the page and hls.js, and collects the page's reports.
fn page_server(master: String, reports: Arc<Mutex<Vec<Value>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let js = std::fs::read(hls_js()).expect("hls.js");
    let page = format!(
        r#"<!doctype html><html><body><video id="v" muted autoplay playsinline></video>
<script src="/hls.min.js"></script><script>
const v = document.getElementById('v');
const hls = new Hls({{ maxBufferLength: 4, maxMaxBufferLength: 6 }});
const frags = []; let err = null;
hls.on(Hls.Events.FRAG_LOADED, (e, d) => frags.push(d.frag.url));
hls.on(Hls.Events.ERROR, (e, d) => {{ err = d.details; }});
hls.on(Hls.Events.MANIFEST_PARSED, () => v.play().catch(e => {{ err = String(e); }}));
hls.loadSource('{master}');
hls.attachMedia(v);
setInterval(() => fetch('/report', {{ method: 'POST', body: JSON.stringify({{
  t: v.currentTime, pathways: hls.pathwayPriority, frags: frags.slice(-2), err: err }}) }}), 500);
</script></body></html>"#
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (page, js, reports) = (page.clone(), js.clone(), reports.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut stream = stream;
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let (ctype, body): (&str, Vec<u8>) = if line.starts_with("POST /report") {
                    let mut b = vec![0u8; len];
                    let _ = reader.read_exact(&mut b);
                    if let Ok(v) = serde_json::from_slice(&b) {
                        reports.lock().expect("reports").push(v);
                    }
                    ("text/plain", b"ok".to_vec())
                } else if line.starts_with("GET /hls.min.js") {
                    ("application/javascript", js)
                } else {
                    ("text/html", page.into_bytes())
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    addr
}

fn chromium(url: &str, profile: &Path) -> Child {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--autoplay-policy=no-user-gesture-required",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--mute-audio",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium (installed by cargo xtask setup)")
}

/// The last report and whether it satisfies `done`; polls every 250 ms, at most `tries`.
fn wait_report(reports: &Mutex<Vec<Value>>, tries: u32, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..tries {
        if let Some(r) = reports.lock().expect("reports").last().cloned() {
            if done(&r) {
                return r;
            }
            last = r;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("gave up waiting for {what}; the player's last report: {last}");
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
    let page = page_server(master_url, reports.clone());
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
