//! The access log: one JSON line per response with the right fields for a miss, a miss that
//! starts a fill, a hit, a range (206), a 404, a 416, a live playlist and a live segment;
//! signature values never logged; and rotation under load (rename + SIGUSR1 over and over
//! while clients fetch): the lines in all the files add up to what the server counted as
//! written, and every request appears exactly once.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use strata_tests::control::Control;
use strata_tests::live::LivePop;
use strata_tests::*;

/// Every JSON line of the files in `dir` whose name starts with `access.log`.
fn log_lines(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("log dir").flatten() {
        if !e.file_name().to_string_lossy().starts_with("access.log") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).expect("log file");
        for line in text.lines() {
            out.push(serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}")));
        }
    }
    out
}

/// Waits until the server counted `n` lines written (or dropped).
fn wait_written(server: &Strata, n: f64) -> f64 {
    for _ in 0..400 {
        let m = server.metrics();
        let written = metric_absent_or_zero(&m, "strata_access_log_lines_total");
        let dropped = metric_absent_or_zero(&m, "strata_access_log_dropped_total");
        if written + dropped >= n {
            return written;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "the access log did not count {n} lines; metrics:\n{}",
        server.metrics()
    );
}

/// The one line whose query carries `n={tag}`.
fn line_for<'a>(lines: &'a [Value], tag: &str) -> &'a Value {
    let want = format!("n={tag}");
    let found: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["query"]
                .as_str()
                .is_some_and(|q| q.split('&').any(|kv| kv == want))
        })
        .collect();
    assert_eq!(found.len(), 1, "one line for {tag}: {found:?}");
    found[0]
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

#[test]
fn access_log_lines_name_hit_miss_fill_range_errors_and_live_with_the_right_fields() {
    let logs = TempDir::new("alog-lines");
    let log_path = logs.path().join("access.log");
    let pop = LivePop::start(
        "alog",
        1,
        600,
        &[
            "--telemetry",
            "off",
            "--access-log",
            log_path.to_str().expect("utf-8"),
        ],
    );
    let control: &Control = &pop.control;
    let src = TempDir::new("alog-src");
    let clip = pattern(9, 200_000);
    src.write("clip.mp4", &clip);
    let out = control.ingest("acme", "show", src.path(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let edge = &pop.edge;
    // Wait for the lookup to reach the edge (untagged requests are not asserted on).
    for _ in 0..200 {
        if get(edge.addr, "/acme/show/clip.mp4?warm=1", &[]).status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cached = pop.dir.path().join("edge/acme/show/clip.mp4");
    // The warm-up was the first request; with a fresh one the admission interval may have
    // passed, so ask until a fill starts, then until the fill is on disk.
    let r = get(edge.addr, "/acme/show/clip.mp4?n=fill", &[]);
    assert_eq!((r.status, r.body.len()), (200, clip.len()));
    for _ in 0..200 {
        if cached.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cached.exists(), "the fill reached the edge's disk");
    let hit = get(edge.addr, "/acme/show/clip.mp4?n=hit", &[]);
    assert_eq!(hit.body, clip);
    let range = get(
        edge.addr,
        "/acme/show/clip.mp4?n=range",
        &[("Range", "bytes=100-1099")],
    );
    assert_eq!((range.status, range.body.len()), (206, 1000));
    let unsat = get(
        edge.addr,
        "/acme/show/clip.mp4?n=unsat",
        &[("Range", "bytes=900000-")],
    );
    assert_eq!(unsat.status, 416);
    let missing = get(edge.addr, "/acme/show/nothing.mp4?n=missing", &[]);
    assert_eq!(missing.status, 404);
    let never = get(edge.addr, "/acme/other/a.mp4?n=miss&sig=secretvalue&exp=1", &[]);
    assert_eq!(never.status, 404);

    // A live stream: a segment and a playlist pushed to the ingest server.
    let ingest = pop.ingest_addr(0);
    let seg = pattern(3, 40_000);
    assert_eq!(publish(ingest, "/acme/cam/seg0.ts", &pop.token, &seg), 201);
    let pl = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg0.ts\n";
    assert_eq!(publish(ingest, "/acme/cam/index.m3u8", &pop.token, pl), 201);
    let playlist = pop.wait("the live playlist through the edge", 60, |p| {
        let r = p.edge_get("cam", "index.m3u8?warm=1");
        (r.status == 200).then_some(r)
    });
    let live_pl = get(edge.addr, "/acme/cam/index.m3u8?n=live", &[]);
    assert_eq!(live_pl.status, 200);
    let segment = get(edge.addr, "/acme/cam/seg0.ts?n=liveseg", &[]);
    assert_eq!(segment.body, seg);

    let refused = send(edge.addr, "GET no-slash HTTP/1.1\r\nHost: x\r\n\r\n", false);
    assert_eq!(refused.status, 400);

    let requests = 11.0; // tagged ones, plus the untagged ones before them
    let _ = wait_written(edge, requests);
    // Give the writer its batch; the metrics count lines only after they are flushed.
    let lines = {
        let mut lines = log_lines(logs.path());
        for _ in 0..100 {
            if lines.iter().any(|l| l["query"] == "n=liveseg") && lines.iter().any(|l| l["status"] == 400) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            lines = log_lines(logs.path());
        }
        lines
    };
    let storage = pop.home.addr.to_string();
    let check = |tag: &str, status: u64, bytes: usize, outcome: &str| -> Value {
        let l = line_for(&lines, tag).clone();
        assert_eq!(l["status"], status, "{tag}: {l}");
        assert_eq!(l["bytes"], bytes as u64, "{tag}: {l}");
        assert_eq!(l["outcome"], outcome, "{tag}: {l}");
        assert_eq!(l["method"], "GET", "{tag}: {l}");
        assert_eq!(l["tenant"], "acme", "{tag}: {l}");
        let time = l["time"].as_str().expect("time");
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{tag}: RFC 3339 with ms: {time}"
        );
        assert!(
            l["client"].as_str().is_some_and(|c| c.starts_with("127.0.0.1:")),
            "{tag}: {l}"
        );
        assert!(l["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{tag}: {l}");
        l
    };
    let fill = check("fill", 200, clip.len(), "fill");
    assert_eq!(fill["upstream"], storage.as_str(), "{fill}");
    // Served from the fill as it is written (read-while-writer), by the file body path.
    assert!(
        ["io_uring_splice", "sendfile"].contains(&fill["body_path"].as_str().unwrap_or("")),
        "{fill}"
    );
    assert_eq!(fill["path"], "/acme/show/clip.mp4");
    let hit = check("hit", 200, clip.len(), "hit");
    assert!(
        ["io_uring_splice", "sendfile"].contains(&hit["body_path"].as_str().unwrap_or("")),
        "{hit}"
    );
    assert!(hit["upstream"].is_null(), "{hit}");
    let range = check("range", 206, 1000, "hit");
    assert_eq!(range["range"], "bytes=100-1099");
    let unsat = check("unsat", 416, unsat.body.len(), "hit");
    assert_eq!(unsat["range"], "bytes=900000-");
    assert_eq!(unsat["body_path"], "memory");
    let missing = check("missing", 404, missing.body.len(), "miss");
    // Home and replica both answered 404; the line names the last one asked.
    let replica = pop.replica.addr.to_string();
    assert!(
        missing["upstream"] == storage.as_str() || missing["upstream"] == replica.as_str(),
        "{missing}"
    );
    let never = check("miss", 404, never.body.len(), "miss");
    let q = never["query"].as_str().expect("query");
    assert!(
        q.contains("sig=-") && !lines.iter().any(|l| l.to_string().contains("secretvalue")),
        "{never}"
    );
    let live = check("live", 200, live_pl.body.len(), "live");
    assert_eq!(live["body_path"], "memory", "{live}");
    assert_eq!(live["path"], "/acme/cam/index.m3u8");
    let liveseg = check("liveseg", 200, seg.len(), "live");
    assert_eq!(liveseg["upstream"], ingest.to_string().as_str(), "{liveseg}");
    assert!(!playlist.body.is_empty());
    let bad = lines
        .iter()
        .find(|l| l["status"] == 400)
        .unwrap_or_else(|| panic!("a line for the malformed head"));
    assert_eq!(
        (bad["method"].as_str(), bad["outcome"].as_str()),
        (Some("-"), Some("error")),
        "{bad}"
    );
    let m = edge.metrics();
    assert!(
        metric_sample(&m, "strata_access_log_dropped_total").is_some(),
        "dropped counter exposed:\n{m}"
    );
}

#[test]
fn rotating_the_access_log_under_load_loses_no_line_counted_as_written() {
    let root = TempDir::new("alog-rot-root");
    let body = pattern(4, 4096);
    root.write("acme/show/a.bin", &body);
    let logs = TempDir::new("alog-rot");
    let log_path = logs.path().join("access.log");
    let server = Strata::storage(root.path(), &["--access-log", log_path.to_str().expect("utf-8")]);
    const CLIENTS: usize = 8;
    const PER_CLIENT: usize = 1500;
    let done = Arc::new(AtomicBool::new(false));
    let rotator = {
        let (done, dir, pid) = (done.clone(), logs.path().to_path_buf(), server.pid());
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
                n += 1;
                if std::fs::rename(dir.join("access.log"), dir.join(format!("access.log.{n}"))).is_ok() {
                    // SAFETY: kill(2) on the server process this test started.
                    unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
                }
            }
            n
        })
    };
    let addr = server.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let mut buf = Vec::new();
                for i in 0..PER_CLIENT {
                    let id = c * PER_CLIENT + i;
                    let req = request("GET", &format!("/acme/show/a.bin?id={id}"), &[]);
                    s.write_all(req.as_bytes()).expect("request");
                    let r = read_response(&mut s, &mut buf, false);
                    assert_eq!((r.status, r.body.len()), (200, body.len()));
                }
                let mut rest = Vec::new();
                s.shutdown(std::net::Shutdown::Write).ok();
                let _ = s.read_to_end(&mut rest);
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    done.store(true, Ordering::Relaxed);
    let rotations = rotator.join().expect("rotator");
    let total = (CLIENTS * PER_CLIENT) as f64;
    let written = wait_written(&server, total);
    let m = server.metrics();
    let dropped = metric_value(&m, "strata_access_log_dropped_total");
    let reopens = metric_value(&m, "strata_access_log_reopens_total");
    let lines = log_lines(logs.path());
    let files = std::fs::read_dir(logs.path()).expect("dir").count();
    eprintln!("{rotations} renames, {reopens} reopens, {files} files, {written} written, {dropped} dropped");
    assert!(reopens >= 5.0, "the file was reopened under load: {reopens}");
    assert_eq!(
        lines.len() as f64,
        written,
        "lines in all files == lines counted as written"
    );
    assert_eq!(written + dropped, total);
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for l in &lines {
        let id = l["query"]
            .as_str()
            .and_then(|q| q.strip_prefix("id="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("line without an id: {l}"));
        *seen.entry(id).or_default() += 1;
        assert_eq!(l["outcome"], "hit");
        assert_eq!(l["bytes"], body.len() as u64);
    }
    assert!(seen.values().all(|&n| n == 1), "every request at most once");
    assert_eq!(
        seen.len() as f64,
        written,
        "every counted line is a distinct request"
    );
    if dropped == 0.0 {
        assert_eq!(seen.len(), CLIENTS * PER_CLIENT, "every request logged");
    }
}

#[test]
fn a_stalled_log_destination_drops_and_counts_lines_and_never_holds_a_response() {
    use std::os::unix::fs::OpenOptionsExt;
    let root = TempDir::new("alog-drop-root");
    let body = pattern(5, 1000);
    root.write("acme/show/a.bin", &body);
    let logs = TempDir::new("alog-drop");
    // The log is a pipe nobody reads yet: the writer fills its buffer and then waits.
    let fifo = logs.path().join("access.log");
    let c_path = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the pipe's read end");
    let config = logs.path().join("storage.toml");
    std::fs::write(
        &config,
        format!("[access_log]\npath = \"{}\"\nqueue_lines = 16\n", fifo.display()),
    )
    .expect("config");
    let server = Strata::storage(root.path(), &["--config", config.to_str().expect("utf-8")]);
    const REQUESTS: usize = 3000;
    let mut s = connect(server.addr);
    let mut buf = Vec::new();
    for id in 0..REQUESTS {
        s.write_all(request("GET", &format!("/acme/show/a.bin?id={id}"), &[]).as_bytes())
            .expect("request");
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(
            (r.status, r.body.len()),
            (200, body.len()),
            "request {id} served while the log is stalled"
        );
    }
    let m = server.metrics();
    let dropped = metric_value(&m, "strata_access_log_dropped_total");
    assert!(dropped > 0.0, "a full queue drops lines and counts them:\n{m}");
    // Read the pipe now: the writer goes on, and what it counts as written arrives.
    let mut text = Vec::new();
    let mut chunk = vec![0u8; 65536];
    let mut written = 0.0;
    for _ in 0..2000 {
        loop {
            match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&chunk[..n]),
                Err(_) => break,
            }
        }
        let m = server.metrics();
        written = metric_value(&m, "strata_access_log_lines_total");
        let dropped = metric_value(&m, "strata_access_log_dropped_total");
        let lines = text.iter().filter(|&&b| b == b'\n').count() as f64;
        if written + dropped == REQUESTS as f64 && lines == written {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let dropped = metric_value(&server.metrics(), "strata_access_log_dropped_total");
    let lines = String::from_utf8_lossy(&text).lines().count() as f64;
    eprintln!("{REQUESTS} requests: {written} lines written, {dropped} dropped");
    assert_eq!(
        written + dropped,
        REQUESTS as f64,
        "every line written or counted as dropped"
    );
    assert_eq!(lines, written, "every line counted as written arrived");
}
