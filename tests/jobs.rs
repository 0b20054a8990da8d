//! Distribution jobs on loopback: a control plane, a storage server and edges as real
//! processes. Pins: bad input (unknown content, unknown targets, another tenant's content, a
//! malformed job) gets a clear error and starts nothing; a webhook receiver gets every
//! notification at least once with idempotency keys (a failed delivery is retried) and an SSE
//! watcher sees every state change in order; `pin` keeps a file through an eviction request and
//! `delete` removes it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use strata_tests::control::Control;
use strata_tests::*;

struct Net {
    _dir: TempDir,
    control: Control,
    _storage: Strata,
    _edges: Vec<Strata>,
    caches: Vec<std::path::PathBuf>,
}

fn net(name: &str, edges: usize) -> Net {
    let dir = TempDir::new(name);
    let control = Control::start(&dir.path().join("control"), &[]);
    control.tenant("acme", "home", &[], 1 << 40);
    control.tenant("globex", "home", &[], 1 << 40);
    let root = dir.path().join("storage");
    std::fs::create_dir_all(&root).expect("root");
    let storage = control.storage(&root, "home", "store-1");
    let mut caches = Vec::new();
    let mut procs = Vec::new();
    for i in 1..=edges {
        let cache = dir.path().join(format!("edge-{i}"));
        procs.push(control.edge(&cache, &format!("edge-{i}"), &[]));
        caches.push(cache);
    }
    control.wait_for("storage and edges up", 400, |c| {
        c.is_up("store-1") && (1..=edges).all(|i| c.is_up(&format!("edge-{i}")))
    });
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).expect("src");
    std::fs::write(src.join("video-720p.mp4"), pattern(21, 3 << 20)).expect("asset");
    std::fs::write(
        src.join("subs-en.vtt"),
        b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n",
    )
    .expect("asset");
    let out = control.ingest("acme", "show", &src, &[]);
    assert!(
        out.status.success(),
        "ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Net {
        _dir: dir,
        control,
        _storage: storage,
        _edges: procs,
        caches,
    }
}

fn wait_end(c: &Control, id: &str) -> Value {
    for _ in 0..1500 {
        let v = c.op("GET", &format!("/v1/jobs/{id}"), None);
        if v["state"] != "running" {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("job {id} never ended");
}

#[test]
fn bad_job_requests_get_clear_errors_and_start_nothing() {
    if !kernel_features_or_skip("jobs_bad_input") {
        return;
    }
    let n = net("jobs-bad", 1);
    let c = &n.control;
    let op = Some(c.operator.clone());
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"tenant": "acme", "content": "nope", "to": "all-edges"}),
            404,
            "no content nope",
        ),
        (
            json!({"tenant": "acme", "content": "show", "to": "edge-1,edge-99"}),
            400,
            "edge-99",
        ),
        (
            json!({"tenant": "acme", "content": "show", "to": "region:mars"}),
            400,
            "region:mars",
        ),
        (
            json!({"tenant": "acme", "content": "show", "to": "all-edges", "fanout": 0}),
            400,
            "fanout",
        ),
        (
            json!({"tenant": "acme", "content": "show", "to": "all-edges", "assets": ["x.mp4"]}),
            400,
            "x.mp4",
        ),
        (
            json!({"tenant": "acme", "content": "show", "to": "all-edges", "notify_url": "ftp://x"}),
            400,
            "notify_url",
        ),
        (
            json!({"tenant": "acme", "content": "show", "to": "all-edges", "commands": ["explode"]}),
            400,
            "explode",
        ),
        (json!({"tenant": "acme", "content": "show"}), 400, "to"),
        (
            json!({"tenant": "initech", "content": "show", "to": "all-edges"}),
            404,
            "initech",
        ),
    ];
    for (body, status, needle) in &cases {
        let (got, v) = c.call("POST", "/v1/jobs", op.as_deref(), Some(body));
        assert_eq!(got, *status, "{body} → {v}");
        assert!(
            v.to_string().contains(needle),
            "{body}: the error names {needle}: {v}"
        );
    }
    let (got, v) = strata_tests::control::raw(c.addr, "POST", "/v1/jobs", op.as_deref(), Some("{not json"));
    assert_eq!(got, 400, "malformed JSON: {v}");
    // Another tenant's token: 403 for acme's content; 401 without a token.
    let globex = c.op(
        "POST",
        "/v1/tokens",
        Some(&json!({"role": "tenant", "tenant": "globex"})),
    );
    let globex = globex["token"].as_str().expect("token");
    let body = json!({"tenant": "acme", "content": "show", "to": "all-edges"});
    let (got, v) = c.call("POST", "/v1/jobs", Some(globex), Some(&body));
    assert_eq!(got, 403, "{v}");
    assert!(v.to_string().contains("acme"), "{v}");
    assert_eq!(c.call("POST", "/v1/jobs", None, Some(&body)).0, 401);
    // Nothing was started.
    let jobs = c.op("GET", "/v1/jobs", None);
    assert_eq!(jobs.as_array().map(Vec::len), Some(0), "{jobs}");
    assert!(!n.caches[0].join("acme/show/video-720p.mp4").exists());
    // The tenant's own token may.
    let acme = c.op(
        "POST",
        "/v1/tokens",
        Some(&json!({"role": "tenant", "tenant": "acme"})),
    );
    let (got, v) = c.call("POST", "/v1/jobs", acme["token"].as_str(), Some(&body));
    assert_eq!(got, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!(
        c.call("GET", &format!("/v1/jobs/{id}"), Some(globex), None).0,
        403
    );
    assert_eq!(
        c.call(
            "POST",
            &format!("/v1/jobs/{id}/explode"),
            op.as_deref(),
            Some(&json!({}))
        )
        .0,
        404
    );
    assert_eq!(wait_end(c, &id)["state"], "done");
    assert_eq!(c.call("GET", "/v1/jobs/job-nope", op.as_deref(), None).0, 404);
}

/// What the webhook receiver got: (Idempotency-Key header, JSON body) per accepted request.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook receiver: answers 500 to its first request, 200 afterwards; keeps every request.
fn webhook() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        let mut first = true;
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut reader = BufReader::new(s.try_clone().expect("clone"));
            let (mut key, mut len) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("idempotency-key:") {
                    key = v.trim().to_string();
                }
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let status = if first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            first = false;
            let _ = s.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
            );
            if status.starts_with("200") {
                sink.lock()
                    .expect("lock")
                    .push((key, serde_json::from_slice(&body).unwrap_or(Value::Null)));
            }
        }
    });
    (url, got)
}

/// Reads an SSE stream until the server ends it; (id, data) of each event.
fn sse(c: &Control, path: &str, last_event_id: u64) -> Vec<(u64, Value)> {
    let mut s = connect(c.addr);
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\nLast-Event-ID: {last_event_id}\r\nConnection: close\r\n\r\n", c.operator).expect("send");
    let mut text = Vec::new();
    let _ = s.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    let mut out = Vec::new();
    let mut id = 0;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("id: ").or_else(|| line.strip_prefix("id:")) {
            id = v.trim().parse().unwrap_or(0);
        }
        if let Some(v) = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:")) {
            out.push((id, serde_json::from_str(v.trim()).unwrap_or(Value::Null)));
        }
    }
    out
}

#[test]
fn webhooks_arrive_at_least_once_with_idempotency_keys_and_sse_shows_every_state_change_in_order() {
    if !kernel_features_or_skip("jobs_notify") {
        return;
    }
    let n = net("jobs-notify", 3);
    let c = &n.control;
    let (url, hooks) = webhook();
    let v = c.op(
        "POST",
        "/v1/jobs",
        Some(
            &json!({"tenant": "acme", "content": "show", "to": "all-edges", "fanout": 1, "notify_url": url}),
        ),
    );
    let id = v["id"].as_str().expect("id").to_string();
    // Chunked SSE from the start (Last-Event-ID 0): ends by itself when the job ends.
    let streamed = sse(c, &format!("/v1/jobs/{id}/events"), 0);
    let job = wait_end(c, &id);
    assert_eq!(job["state"], "done", "{job:#}");
    let log = c.op("GET", &format!("/v1/jobs/{id}/log"), None);
    let logged: Vec<u64> = log["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    let ids: Vec<u64> = streamed.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, logged, "the stream carries the whole log, in order");
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "consecutive: {ids:?}");
    for name in ["edge-1", "edge-2", "edge-3"] {
        let states: Vec<&str> = streamed
            .iter()
            .filter(|(_, e)| e["target"] == name)
            .filter_map(|(_, e)| e["state"].as_str())
            .collect();
        assert_eq!(states.last(), Some(&"done"), "{name}: {states:?}");
    }
    assert_eq!(
        streamed.last().map(|(_, e)| e["state"].clone()),
        Some(json!("done"))
    );
    // Resuming from an id skips what was seen.
    let resumed = sse(c, &format!("/v1/jobs/{id}/events"), 2);
    assert_eq!(resumed.first().map(|(i, _)| *i), Some(3));
    assert_eq!(resumed.len(), streamed.len() - 2);
    // Webhooks: every target's done and the job's end, keys unique per event.
    let wanted = 4;
    for _ in 0..300 {
        if hooks.lock().expect("lock").len() >= wanted {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = hooks.lock().expect("lock").clone();
    let mut keys: Vec<String> = got.iter().map(|(k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        wanted,
        "one key per notification (repeats share it): {got:#?}"
    );
    for (key, body) in &got {
        assert_eq!(body["idempotency_key"].as_str(), Some(key.as_str()));
        assert_eq!(body["job"].as_str(), Some(id.as_str()));
    }
    let targets_done = got
        .iter()
        .filter(|(_, b)| b["event"]["state"] == "done" && b["event"]["target"].is_string())
        .count();
    assert!(targets_done >= 3, "{got:#?}");
    assert!(got
        .iter()
        .any(|(_, b)| b["event"]["target"].is_null() && b["event"]["state"] == "done"));
}

#[test]
fn pin_keeps_a_file_through_an_eviction_request_and_delete_removes_it() {
    if !kernel_features_or_skip("jobs_pin") {
        return;
    }
    let n = net("jobs-pin", 1);
    let c = &n.control;
    let v = c.op(
        "POST",
        "/v1/jobs",
        Some(&json!({"tenant": "acme", "content": "show", "to": "edge-1", "commands": ["fetch", "pin"]})),
    );
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!(wait_end(c, &id)["state"], "done");
    let file = n.caches[0].join("acme/show/video-720p.mp4");
    assert!(file.exists());
    let pins = std::fs::read_to_string(n.caches[0].join(".strata-pins")).expect("pins saved");
    assert!(pins.contains("acme/show/video-720p.mp4"), "{pins}");
    // An operator's eviction (syncd's path) leaves the pinned file.
    c.op("POST", "/v1/tenants/acme/contents/show/evict", Some(&json!({})));
    std::thread::sleep(Duration::from_secs(2));
    assert!(file.exists(), "pinned: not evicted");
    let out = c.cli(&["job", "command", &id, "delete"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(wait_end(c, &id)["state"], "done");
    assert!(!file.exists(), "deleted");
    let out = c.cli(&["job", "status", &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("edge-1") && text.contains("1 of 1 targets done"),
        "{text}"
    );
}
