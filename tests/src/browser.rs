//! hls.js in headless Chromium: a page origin that serves a player page for one playlist URL and
//! hls.js (pinned, from npm, installed by `cargo xtask setup` into target/npm), and collects the
//! page's reports (currentTime, the last fragments loaded, the last error, and what a
//! cross-origin `fetch()` of the playlist's first 10 bytes by Range got) every 500 ms.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// hls.js from the build tree.
pub fn hls_js() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .join("target/npm/node_modules/hls.js/dist/hls.min.js");
    assert!(p.exists(), "{} missing: run cargo xtask setup", p.display());
    p
}

/// Serves a page playing `playlist` muted with hls.js; reports go to `reports`.
pub fn player_page(playlist: String, reports: Arc<Mutex<Vec<Value>>>) -> SocketAddr {
    player_page_with(playlist, "{}", reports)
}

/// [`player_page`] with hls.js made by `new Hls(hls_config)` (a JS object literal).
pub fn player_page_with(playlist: String, hls_config: &str, reports: Arc<Mutex<Vec<Value>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let js = std::fs::read(hls_js()).expect("hls.js");
    let page = format!(
        r#"<!doctype html><html><body><video id="v" muted autoplay playsinline></video>
<script src="/hls.min.js"></script><script>
const v = document.getElementById('v');
const hls = new Hls({hls_config});
const frags = []; let err = null;
hls.on(Hls.Events.FRAG_LOADED, (e, d) => frags.push(d.frag.url));
hls.on(Hls.Events.ERROR, (e, d) => {{ err = d.details; }});
hls.on(Hls.Events.MANIFEST_PARSED, () => v.play().catch(e => {{ err = String(e); }}));
hls.loadSource('{playlist}');
hls.attachMedia(v);
let range = null;
fetch('{playlist}', {{ headers: {{ Range: 'bytes=0-9' }} }})
  .then(async r => {{ range = {{ status: r.status, content_range: r.headers.get('Content-Range'), length: (await r.arrayBuffer()).byteLength }}; }})
  .catch(e => {{ range = {{ error: String(e) }}; }});
setInterval(() => fetch('/report', {{ method: 'POST', body: JSON.stringify({{
  t: v.currentTime, frags: frags.slice(-2), err: err, range: range, pathways: hls.pathwayPriority, live: hls.levels.length ? hls.levels[0].details && hls.levels[0].details.live : null }}) }}), 500);
</script></body></html>"#
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (page, js, reports) = (page.clone(), js.clone(), reports.clone());
            std::thread::spawn(move || serve_one(stream, &page, &js, &reports));
        }
    });
    addr
}

fn serve_one(stream: std::net::TcpStream, page: &str, js: &[u8], reports: &Mutex<Vec<Value>>) {
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
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
        ("application/javascript", js.to_vec())
    } else {
        ("text/html", page.as_bytes().to_vec())
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// Headless Chromium (autoplay allowed, muted) on `url` with its own profile directory.
pub fn chromium(url: &str, profile: &Path) -> Child {
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

/// The first report satisfying `done`; polls every 250 ms, at most `tries` times.
pub fn wait_report(
    reports: &Mutex<Vec<Value>>,
    tries: u32,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
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
