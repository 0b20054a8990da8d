//! Reload and upgrade without dropping viewers: while 200 clients stream large bodies (local
//! hits and misses proxied from a storage server) and other clients open fresh connections
//! without pause, the edge is reloaded (SIGHUP) and upgraded (`strata edge upgrade`, the binary
//! replaced on disk). Every body arrives complete and byte-exact, every fresh connection is
//! answered, and each old process drains and exits. A broken configuration on SIGHUP (and on
//! `strata edge reload`) is refused with the file named, and the old process serves on.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_tests::*;

/// Streaming clients.
const CLIENTS: usize = 200;
/// Threads opening a fresh connection per request, without pause.
const CONNECTORS: usize = 8;
/// Size of each streamed asset.
const BODY: usize = 4 << 20;
/// Each client reads 64 KiB per `PACE`: about 1 MiB/s, so a body takes ~4 s and all clients
/// are mid-body when a handover starts.
const PACE: Duration = Duration::from_millis(60);
/// Most bodies one client fetches (the test stops them earlier).
const MAX_ROUNDS: usize = 60;
/// Generous bound for each wait (never asserted as a duration: only to stop a broken run).
const PATIENCE: Duration = Duration::from_secs(300);

/// Successor processes the test must not leave behind (they are not its children).
#[derive(Default)]
struct Successors(Mutex<Vec<u32>>);

impl Successors {
    fn add(&self, pid: u32) {
        self.0.lock().unwrap().push(pid);
    }
}

impl Drop for Successors {
    fn drop(&mut self) {
        for pid in self.0.lock().unwrap().iter() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("strata") {
                // SAFETY: kill with a pid checked to be a strata process.
                unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
            }
        }
    }
}

/// The pid the admin listener's process reports.
fn serving_pid(admin: SocketAddr) -> u32 {
    let r = get(admin, "/process", &[]);
    assert_eq!(r.status, 200, "GET /process: {}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v["pid"].as_u64().expect("pid") as u32
}

/// Polls `ask` (the pid answering on the admin listener) until it names a process other than
/// `old`, and returns that pid. Until the old process stops accepting, either may answer, so
/// the successor's pid is the first answer that differs — never a second, later question.
fn successor_of(old: u32, ask: impl Fn() -> u32) -> u32 {
    let start = std::time::Instant::now();
    loop {
        let pid = ask();
        if pid != old {
            return pid;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "gave up waiting for a successor of pid {old}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls until `done` holds (at most PATIENCE; then fails with `what`).
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` has exited (gone, or a zombie not yet reaped).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    bodies: AtomicU64,
    bytes: AtomicU64,
    in_body: AtomicU64,
    /// Requests on a reused keep-alive connection the server had closed before any byte of a
    /// response (retried on a fresh connection, as HTTP allows for GET).
    keepalive_retries: AtomicU64,
    /// Responses that said `Connection: close` (drain).
    closes: AtomicU64,
    connector_ok: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        eprintln!("FAILURE: {what}");
        self.failures.lock().unwrap().push(what);
    }
}

/// A response head: status, headers (lower-case names), body bytes read with it.
type Head = (u16, Vec<(String, String)>, Vec<u8>);

/// Reads a response head (and whatever body bytes came with it). None if the connection closed
/// or failed before any byte.
fn read_head(s: &mut TcpStream) -> Result<Option<Head>, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(format!("closed inside a response head after {} bytes", buf.len())),
            Ok(n) => n,
            Err(_) if buf.is_empty() => return Ok(None),
            Err(e) => return Err(format!("reading a response head: {e}")),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(used)) => {
                let status = resp.code.unwrap_or(0);
                let headers = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                return Ok(Some((status, headers, buf[used..].to_vec())));
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(format!("bad response head: {e}")),
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// One streaming client: keep-alive GETs of large assets, read at a pace, compared byte by byte.
fn stream_client(
    i: usize,
    addr: SocketAddr,
    assets: &[(String, Arc<Vec<u8>>)],
    stop: &AtomicBool,
    t: &Tally,
) {
    let mut kept: Option<TcpStream> = None;
    for round in 0..MAX_ROUNDS {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (path, want) = &assets[(i + round) % assets.len()];
        loop {
            let (mut s, reused) = match kept.take() {
                Some(s) => (s, true),
                None => match TcpStream::connect(addr) {
                    Ok(s) => (s, false),
                    Err(e) => {
                        t.fail(format!("client {i}: connect refused or failed: {e}"));
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                },
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
            let req = format!("GET {path} HTTP/1.1\r\nHost: edge\r\n\r\n");
            let head = match s.write_all(req.as_bytes()) {
                Ok(()) => read_head(&mut s),
                Err(_) => Ok(None),
            };
            let (status, headers, mut got) = match head {
                Ok(Some(h)) => h,
                Ok(None) if reused => {
                    t.keepalive_retries.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Ok(None) => {
                    t.fail(format!(
                        "client {i}: a fresh connection closed without a response ({path})"
                    ));
                    break;
                }
                Err(e) => {
                    t.fail(format!("client {i}: {e} ({path})"));
                    break;
                }
            };
            let len: usize = header(&headers, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if status != 200 || len != want.len() {
                t.fail(format!("client {i}: {path} answered {status} with length {len}"));
                break;
            }
            t.in_body.fetch_add(1, Ordering::Relaxed);
            let mut at = 0usize;
            let mut ok = got.len() <= want.len() && got[..] == want[..got.len()];
            at += got.len();
            let mut chunk = vec![0u8; 64 << 10];
            while ok && at < want.len() {
                std::thread::sleep(PACE);
                let room = (want.len() - at).min(chunk.len());
                match s.read(&mut chunk[..room]) {
                    Ok(0) => {
                        t.fail(format!(
                            "client {i}: {path} cut after {at} of {} bytes",
                            want.len()
                        ));
                        ok = false;
                    }
                    Ok(n) => {
                        if chunk[..n] != want[at..at + n] {
                            t.fail(format!("client {i}: {path} differs at bytes {at}..{}", at + n));
                            ok = false;
                        }
                        at += n;
                    }
                    Err(e) => {
                        t.fail(format!("client {i}: {path} failed after {at} bytes: {e}"));
                        ok = false;
                    }
                }
            }
            got.clear();
            t.in_body.fetch_sub(1, Ordering::Relaxed);
            if ok {
                t.bodies.fetch_add(1, Ordering::Relaxed);
                t.bytes.fetch_add(at as u64, Ordering::Relaxed);
                if header(&headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
                    t.closes.fetch_add(1, Ordering::Relaxed);
                } else {
                    kept = Some(s);
                }
            }
            break;
        }
    }
}

/// One connector: a fresh connection per request, without pause, until told to stop.
fn connector(addr: SocketAddr, path: &str, want: &[u8], stop: &AtomicBool, t: &Tally) {
    while !stop.load(Ordering::Relaxed) {
        let mut s = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                t.fail(format!("connector: connect refused or failed: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        let req = format!("GET {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n");
        let mut raw = Vec::new();
        let res = s.write_all(req.as_bytes()).and_then(|()| s.read_to_end(&mut raw));
        let ok = res.is_ok()
            && raw.starts_with(b"HTTP/1.1 200")
            && raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .is_some_and(|p| raw[p + 4..] == *want);
        if ok {
            t.connector_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            t.fail(format!(
                "connector: fresh connection not answered in full ({:?}, {} bytes)",
                res.err(),
                raw.len()
            ));
        }
    }
}

/// A copy of the strata binary in `dir` (the one the edge runs, replaced to upgrade).
fn binary_copy(dir: &Path) -> PathBuf {
    let to = dir.join("strata");
    let tmp = dir.join("strata.new");
    std::fs::copy(strata_bin(), &tmp).expect("copy the strata binary");
    std::fs::rename(&tmp, &to).expect("put the strata binary in place");
    to
}

fn inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0)
}

#[test]
fn reload_and_upgrade_under_200_streaming_clients_cut_no_body_and_refuse_no_connection() {
    if !kernel_features_or_skip(
        "reload_and_upgrade_under_200_streaming_clients_cut_no_body_and_refuse_no_connection",
    ) {
        return;
    }
    let store = TempDir::new("reload-store");
    let cache = TempDir::new("reload-cache");
    let bins = TempDir::new("reload-bin");
    let mut assets = Vec::new();
    for n in 0..4u64 {
        // Hits: in the edge's cache directory. Misses: only on the storage server.
        let hit = Arc::new(pattern(100 + n, BODY));
        cache.write(&format!("acme/show/hit-{n}.mp4"), &hit);
        assets.push((format!("/acme/show/hit-{n}.mp4"), hit));
        let miss = Arc::new(pattern(200 + n, BODY));
        store.write(&format!("acme/show/miss-{n}.mp4"), &miss);
        assets.push((format!("/acme/show/miss-{n}.mp4"), miss));
    }
    let small = pattern(300, 64 << 10);
    cache.write("acme/show/small.bin", &small);
    let storage = Strata::storage(store.path(), &[]);
    let config = cache.path().join("edge.toml");
    std::fs::write(&config, "[handover]\ndrain_timeout = \"120s\"\n").expect("config");
    let bin = binary_copy(bins.path());
    let cluster = format!("home={}", storage.addr);
    let cache_dir = cache.path().to_str().expect("utf-8");
    let config_arg = config.to_str().expect("utf-8");
    let args = [
        "edge",
        "--cache-dir",
        cache_dir,
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--body-path",
        "io_uring",
        "--telemetry",
        "required",
        "--config",
        config_arg,
        "--cluster",
        &cluster,
        "--tenant",
        "acme=home",
    ];
    let edge = Strata::start_bin_in(&bin, None, &args, &[], 1);
    let (addr, admin) = (edge.addr, edge.admin);
    let successors = Successors::default();
    let first = edge.pid();
    assert_eq!(serving_pid(admin), first);

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let stop_connectors = Arc::new(AtomicBool::new(false));
    let assets = Arc::new(assets);
    let small = Arc::new(small);
    let mut threads = Vec::new();
    for i in 0..CLIENTS {
        let (assets, stop, t) = (assets.clone(), stop.clone(), tally.clone());
        threads.push(
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || stream_client(i, addr, &assets, &stop, &t))
                .expect("client thread"),
        );
    }
    let mut connectors = Vec::new();
    for _ in 0..CONNECTORS {
        let (small, stop, t) = (small.clone(), stop_connectors.clone(), tally.clone());
        connectors.push(std::thread::spawn(move || {
            connector(addr, "/acme/show/small.bin", &small, &stop, &t)
        }));
    }
    let busy = || tally.in_body.load(Ordering::Relaxed) >= (CLIENTS as u64 * 3) / 4;
    wait_until("most clients streaming a body", || {
        tally.bodies.load(Ordering::Relaxed) >= CLIENTS as u64 && busy()
    });

    // Reload: SIGHUP; the same binary takes over.
    let (in_body, before) = (
        tally.in_body.load(Ordering::Relaxed),
        tally.connector_ok.load(Ordering::Relaxed),
    );
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(first as libc::pid_t, libc::SIGHUP) };
    let second = successor_of(first, || serving_pid(admin));
    successors.add(second);
    wait_until("the reloaded process draining and exiting", || exited(first));
    let during_reload = tally.connector_ok.load(Ordering::Relaxed) - before;
    eprintln!("reload: pid {first} -> {second}; {in_body} bodies in flight at SIGHUP; {during_reload} fresh connections answered until the old process exited");

    // Upgrade: a new binary on disk, `strata edge upgrade`. First every client has had its
    // `Connection: close` from the drained process (so its connection now is to the new one),
    // and most are mid-body again.
    wait_until(
        "every client moved to the reloaded process and most streaming",
        || tally.closes.load(Ordering::Relaxed) >= CLIENTS as u64 && busy(),
    );
    binary_copy(bins.path());
    let (in_body, before) = (
        tally.in_body.load(Ordering::Relaxed),
        tally.connector_ok.load(Ordering::Relaxed),
    );
    let out = Command::new(&bin)
        .args(["edge", "upgrade", "--admin", &admin.to_string()])
        .output()
        .expect("run strata edge upgrade");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "strata edge upgrade failed: {said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let third = successor_of(second, || serving_pid(admin));
    successors.add(third);
    assert_ne!(third, second, "upgrade: {said}");
    assert!(
        said.contains(&third.to_string()),
        "the command names the new pid: {said}"
    );
    assert_eq!(
        inode(&format!("/proc/{third}/exe")),
        inode(bin.to_str().expect("utf-8")),
        "the upgraded process runs the binary now on disk"
    );
    wait_until("the upgraded process draining and exiting", || exited(second));
    let during_upgrade = tally.connector_ok.load(Ordering::Relaxed) - before;
    eprintln!("upgrade: pid {second} -> {third}; {in_body} bodies in flight; {during_upgrade} fresh connections answered until the old process exited");

    // A few more bodies from the new process, then stop.
    let bodies = tally.bodies.load(Ordering::Relaxed);
    wait_until("bodies served by the upgraded process", || {
        tally.bodies.load(Ordering::Relaxed) >= bodies + CLIENTS as u64
    });
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }
    stop_connectors.store(true, Ordering::Relaxed);
    for t in connectors {
        t.join().expect("connector thread");
    }
    let failures = tally.failures.lock().unwrap().clone();
    eprintln!(
        "bodies {} ({} MiB) byte-exact; {} drain closes; {} keep-alive retries; {} fresh connections answered; {} failures",
        tally.bodies.load(Ordering::Relaxed),
        tally.bytes.load(Ordering::Relaxed) >> 20,
        tally.closes.load(Ordering::Relaxed),
        tally.keepalive_retries.load(Ordering::Relaxed),
        tally.connector_ok.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        during_reload > 0 && during_upgrade > 0,
        "connections were opened during both handovers"
    );
    assert!(
        tally.closes.load(Ordering::Relaxed) >= 2 * CLIENTS as u64 - 10,
        "nearly every client was told Connection: close by each draining process"
    );
    // A client reusing its connection right after a response is answered (with close) by the
    // draining process, never closed on: the handover adds no keep-alive race.
    assert_eq!(
        tally.keepalive_retries.load(Ordering::Relaxed),
        0,
        "keep-alive requests closed on"
    );
    // SAFETY: kill with the successor's pid.
    unsafe { libc::kill(third as libc::pid_t, libc::SIGTERM) };
    wait_until("the last process stopping", || exited(third));
}

#[test]
fn broken_config_on_reload_is_refused_naming_the_file_and_the_old_process_serves_on() {
    if !kernel_features_or_skip(
        "broken_config_on_reload_is_refused_naming_the_file_and_the_old_process_serves_on",
    ) {
        return;
    }
    let cache = TempDir::new("reload-broken");
    let body = pattern(7, 300_000);
    cache.write("acme/show/a.bin", &body);
    let config = cache.path().join("edge.toml");
    std::fs::write(&config, "[limits]\nidle_timeout = \"30s\"\n").expect("config");
    let edge = Strata::edge(
        cache.path(),
        &["--config", config.to_str().expect("utf-8"), "--miss", "error"],
    );
    let successors = Successors::default();
    let pid = edge.pid();
    std::fs::write(&config, "[limits]\nidle_timeout = \"thirty seconds\"\n").expect("break the config");
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
    let shown = config.display().to_string();
    wait_until("the reload error in the log", || {
        edge.log()
            .iter()
            .any(|l| l.contains("reload failed") && l.contains(&shown))
    });
    let out = Command::new(strata_bin())
        .args(["edge", "reload", "--admin", &edge.admin.to_string()])
        .output()
        .expect("run strata edge reload");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !out.status.success(),
        "a broken config fails the reload command: {said}"
    );
    assert!(
        said.starts_with("422 ") && said.contains(&shown),
        "the answer names the file: {said}"
    );
    assert_eq!(serving_pid(edge.admin), pid, "the old process still serves");
    assert_eq!(
        edge.metric("strata_handovers_failed_total"),
        2.0,
        "SIGHUP and the command"
    );
    assert_eq!(edge.metric("strata_handover_generation"), 0.0);
    let r = get(edge.addr, "/acme/show/a.bin", &[]);
    assert_eq!((r.status, checksum(&r.body)), (200, checksum(&body)));
    // Fixed: the reload goes through.
    std::fs::write(&config, "[limits]\nidle_timeout = \"20s\"\n").expect("fix the config");
    let out = Command::new(strata_bin())
        .args(["edge", "reload", "--admin", &edge.admin.to_string()])
        .output()
        .expect("run strata edge reload");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "reload: {said}");
    // Both processes accept on the one admin socket until the old one stops: ask until the new answers.
    let new = successor_of(pid, || serving_pid(edge.admin));
    successors.add(new);
    assert_ne!(new, pid, "{said}");
    let r = get(edge.addr, "/acme/show/a.bin", &[]);
    assert_eq!((r.status, checksum(&r.body)), (200, checksum(&body)));
    wait_until("the old process exiting", || exited(pid));
    assert_eq!(
        edge.metric("strata_handover_generation"),
        1.0,
        "the new process counts the reload"
    );
}

/// Fetches `path` from `source` in client namespace `ns`; None if it cannot connect.
fn fetch_from(ns: &str, source: std::net::Ipv4Addr, edge: SocketAddr, path: &str) -> Option<Vec<u8>> {
    let path = path.to_string();
    netns::in_netns(ns, move || {
        let mut s = netns::connect_from(source, edge, Duration::from_secs(2))?;
        s.write_all(request("GET", &path, &[]).as_bytes()).ok()?;
        let r = read_response(&mut s, &mut Vec::new(), false);
        assert_eq!(r.status, 200);
        Some(r.body)
    })
}

/// Mounts the BPF file system at /sys/fs/bpf if it is not there (systemd hosts have it; the
/// guard's link is pinned there for the successor).
fn ensure_bpffs() {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    if !mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf") && l.contains(" bpf "))
    {
        let ok = Command::new("mount")
            .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mounting bpffs at /sys/fs/bpf");
    }
}

#[test]
fn xdp_guard_link_passes_to_the_reloaded_process_with_its_new_lists_and_outlives_the_old() {
    if !kernel_features_or_skip("xdp_guard_link_passes_to_the_reloaded_process") {
        return;
    }
    ensure_bpffs();
    let lan = netns::Lan::new(1);
    let dir = TempDir::new("reload-guard");
    let data = pattern(23, 200_000);
    dir.write("acme/c/seg.m4s", &data);
    let first_blocked = lan.add_client_addr(0, 100);
    let then_blocked = lan.add_client_addr(0, 101);
    let config = dir.path().join("edge.toml");
    std::fs::write(&config, format!("[guard]\nblock = [\"{first_blocked}/32\"]\n")).expect("config");
    let listen = format!("{}:0", lan.edge_addr());
    let args = [
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
        "--config",
        config.to_str().expect("utf-8"),
        "--guard-interface",
        &lan.edge_if,
    ];
    let edge = Strata::start_in(Some(&lan.edge_ns), &args, 1);
    let successors = Successors::default();
    let ns = lan.client_ns[0].clone();
    let attached =
        || netns::ip_output(&["-n", &lan.edge_ns, "link", "show", "dev", &lan.edge_if]).contains("xdp");
    let pid_of = |edge: &Strata| -> u32 {
        let r = edge.admin_get("/process");
        serde_json::from_slice::<serde_json::Value>(&r.body).expect("json")["pid"]
            .as_u64()
            .expect("pid") as u32
    };
    assert!(attached());
    assert_eq!(fetch_from(&ns, first_blocked, edge.addr, "/acme/c/seg.m4s"), None);
    assert_eq!(
        fetch_from(&ns, then_blocked, edge.addr, "/acme/c/seg.m4s").as_deref(),
        Some(&data[..])
    );

    std::fs::write(&config, format!("[guard]\nblock = [\"{then_blocked}/32\"]\n")).expect("config");
    let old = edge.pid();
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(old as libc::pid_t, libc::SIGHUP) };
    successors.add(successor_of(old, || pid_of(&edge)));
    wait_until("the old process exiting", || exited(old));
    assert!(
        edge.log()
            .iter()
            .any(|l| l.contains("XDP guard attached (inherited mode)")),
        "the successor took the link over"
    );
    assert!(
        attached(),
        "the guard stays attached after the old process exited"
    );
    assert_eq!(
        fetch_from(&ns, first_blocked, edge.addr, "/acme/c/seg.m4s").as_deref(),
        Some(&data[..]),
        "the new configuration's lists apply"
    );
    assert_eq!(fetch_from(&ns, then_blocked, edge.addr, "/acme/c/seg.m4s"), None);
    let guard = edge.admin_get("/guard");
    assert!(
        guard.text().contains(&format!("{then_blocked}/32")),
        "{}",
        guard.text()
    );
}

#[test]
fn an_edge_under_a_control_plane_is_never_marked_down_through_reload_and_upgrade() {
    if !kernel_features_or_skip("an_edge_under_a_control_plane_is_never_marked_down") {
        return;
    }
    // Servers are down after 1 s without a heartbeat (--server-ttl 1s); the edge beats every 200 ms.
    let data = TempDir::new("reload-control");
    let control = control::Control::start(&data.path().join("control"), &[]);
    let edge = control.edge(&data.path().join("cache"), "e1", &[]);
    control.wait_for("e1 up", 200, |c| c.is_up("e1"));
    let successors = Successors::default();
    let pid_of = || serving_pid(edge.admin);
    let stop = AtomicBool::new(false);
    let (polls, downs) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if !control.is_up("e1") {
                    downs.fetch_add(1, Ordering::Relaxed);
                }
                polls.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let first = edge.pid();
        // SAFETY: kill with our child's pid.
        unsafe { libc::kill(first as libc::pid_t, libc::SIGHUP) };
        let second = successor_of(first, pid_of);
        successors.add(second);
        wait_until("the old process exiting", || exited(first));
        let out = Command::new(strata_bin())
            .args(["edge", "upgrade", "--admin", &edge.admin.to_string()])
            .output()
            .expect("run strata edge upgrade");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        successors.add(successor_of(second, pid_of));
        wait_until("the old process exiting", || exited(second));
        // Two lease lifetimes more: a missing heartbeat would show by now.
        let seen = polls.load(Ordering::Relaxed);
        wait_until("two seconds of polls", || {
            polls.load(Ordering::Relaxed) >= seen + 40
        });
        stop.store(true, Ordering::Relaxed);
    });
    eprintln!(
        "control plane polled {} times through the handovers; down {} times",
        polls.load(Ordering::Relaxed),
        downs.load(Ordering::Relaxed)
    );
    assert_eq!(
        downs.load(Ordering::Relaxed),
        0,
        "the edge was marked down during a handover"
    );
    assert!(control.is_up("e1"));
}

#[test]
fn systemd_hears_ready_at_start_and_the_new_main_pid_at_reload() {
    if !kernel_features_or_skip("systemd_hears_ready_at_start_and_the_new_main_pid_at_reload") {
        return;
    }
    // systemd's side of sd_notify: a datagram socket named by NOTIFY_SOCKET.
    let dir = TempDir::new("reload-notify");
    let socket_path = dir.path().join("notify");
    let systemd = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind notify socket");
    systemd.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let recv = || {
        let mut buf = [0u8; 256];
        let n = systemd.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let args = [
        "edge",
        "--cache-dir",
        cache.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--miss",
        "error",
    ];
    let notify = socket_path.to_str().expect("utf-8");
    let edge = Strata::start_bin_in(&strata_bin(), None, &args, &[("NOTIFY_SOCKET", notify)], 1);
    let successors = Successors::default();
    assert_eq!(recv(), "READY=1");
    let out = Command::new(strata_bin())
        .args(["edge", "reload", "--admin", &edge.admin.to_string()])
        .output()
        .expect("run strata edge reload");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let said = recv();
    let new = successor_of(edge.pid(), || serving_pid(edge.admin));
    successors.add(new);
    assert_eq!(
        said,
        format!("MAINPID={new}"),
        "the old process names its successor as main"
    );
}

#[test]
fn an_upgrade_to_a_binary_that_fails_or_hangs_is_called_off_and_the_old_process_serves_on() {
    if !kernel_features_or_skip("an_upgrade_to_a_binary_that_fails_or_hangs_is_called_off") {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("reload-badbin");
    let body = pattern(9, 100_000);
    dir.write("cache/acme/show/a.bin", &body);
    let config = dir.path().join("edge.toml");
    std::fs::write(&config, "[handover]\nready_timeout = \"2s\"\n").expect("config");
    let bin = binary_copy(dir.path());
    let cache = dir.path().join("cache");
    let args = [
        "edge",
        "--cache-dir",
        cache.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--miss",
        "error",
        "--config",
        config.to_str().expect("utf-8"),
    ];
    let edge = Strata::start_bin_in(&bin, None, &args, &[], 1);
    let upgrade_to = |script: &str| {
        let tmp = dir.path().join("strata.new");
        std::fs::write(&tmp, script).expect("script");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::rename(&tmp, &bin).expect("replace the binary");
        let out = Command::new(strata_bin())
            .args(["edge", "upgrade", "--admin", &edge.admin.to_string()])
            .output()
            .expect("run strata edge upgrade");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, said) = upgrade_to("#!/bin/sh\necho 'cannot start' >&2\nexit 3\n");
    assert!(
        !ok && said.starts_with("500 ") && said.contains("exited (exit status: 3)"),
        "{said}"
    );
    let (ok, said) = upgrade_to("#!/bin/sh\nexec sleep 600\n");
    assert!(
        !ok && said.contains("not serving within 2s") && said.contains("stopped"),
        "{said}"
    );
    assert_eq!(
        serving_pid(edge.admin),
        edge.pid(),
        "the old process still serves"
    );
    let r = get(edge.addr, "/acme/show/a.bin", &[]);
    assert_eq!((r.status, checksum(&r.body)), (200, checksum(&body)));
}

#[test]
fn a_storage_server_reloads_by_sighup_the_same_way() {
    if !kernel_features_or_skip("a_storage_server_reloads_by_sighup_the_same_way") {
        return;
    }
    let root = TempDir::new("reload-storage");
    let body = pattern(11, 500_000);
    root.write("acme/show/a.bin", &body);
    let storage = Strata::storage(root.path(), &[]);
    let successors = Successors::default();
    let old = storage.pid();
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(old as libc::pid_t, libc::SIGHUP) };
    successors.add(successor_of(old, || serving_pid(storage.admin)));
    wait_until("the old process exiting", || exited(old));
    let r = get(storage.addr, "/acme/show/a.bin", &[]);
    assert_eq!((r.status, checksum(&r.body)), (200, checksum(&body)));
}

#[test]
fn a_reload_that_moves_the_listener_serves_on_the_new_address_and_closes_the_old() {
    if !kernel_features_or_skip("a_reload_that_moves_the_listener") {
        return;
    }
    let dir = TempDir::new("reload-move");
    let body = pattern(13, 100_000);
    dir.write("cache/acme/show/a.bin", &body);
    let (from, to) = (control::free_port(), control::free_port());
    let config = dir.path().join("edge.toml");
    let write_config = |port: u16| {
        std::fs::write(
            &config,
            format!("listen = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:0\"\n"),
        )
        .expect("config")
    };
    write_config(from);
    let cache = dir.path().join("cache");
    let args = [
        "edge",
        "--cache-dir",
        cache.to_str().expect("utf-8"),
        "--miss",
        "error",
        "--config",
        config.to_str().expect("utf-8"),
    ];
    let edge = Strata::start_bin_in(&strata_bin(), None, &args, &[], 1);
    assert_eq!(edge.addr.port(), from);
    let successors = Successors::default();
    write_config(to);
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(edge.pid() as libc::pid_t, libc::SIGHUP) };
    successors.add(successor_of(edge.pid(), || serving_pid(edge.admin)));
    wait_until("the old process exiting", || exited(edge.pid()));
    let moved: SocketAddr = format!("127.0.0.1:{to}").parse().expect("addr");
    let r = get(moved, "/acme/show/a.bin", &[]);
    assert_eq!((r.status, checksum(&r.body)), (200, checksum(&body)));
    assert!(
        TcpStream::connect(edge.addr).is_err(),
        "the old address is closed once nobody serves it"
    );
}
