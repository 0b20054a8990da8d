//! Test harness: starts real `strata` processes on loopback, speaks HTTP/1.1 to them over real
//! sockets, and reads their metrics. Every server listens on port 0; the harness learns the
//! real addresses from the server's own start-up log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod browser;
pub mod control;
pub mod dns;
pub mod etcd;
pub mod https;
pub mod jobs;
pub mod live;
pub mod media;
pub mod netns;
pub mod routing;
pub mod tiers;

/// The strata binary under test: $STRATA_BIN (set by `cargo xtask test`) or target/{release,debug}.
pub fn strata_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    if let Some(p) = std::env::var_os("STRATA_BIN") {
        // Relative paths are taken from the workspace root (tests run in tests/).
        return root.join(p);
    }
    for profile in ["release", "debug"] {
        let p = root.join("target").join(profile).join("strata");
        if p.exists() {
            return p;
        }
    }
    panic!("no strata binary: run the tests with `cargo xtask test` (or set STRATA_BIN)");
}

/// True when running in CI, where kernel features must be present (tests fail, never skip).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Whether this process may load eBPF and use io_uring; outside CI a test may skip (loudly).
pub fn kernel_features_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && !in_ci() {
        eprintln!("SKIPPED {test}: needs root for eBPF (outside CI only; CI runs as root and fails instead)");
        return false;
    }
    true
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("strata-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `bytes` at `rel` (creating parent directories) and returns the full path.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, bytes).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), distinct per seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
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

/// 64-bit checksum of a byte string.
pub fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// SHA-256 of `bytes`, lower-case hex (as asset lists write it).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a value with `read` until `done` holds of it, for at most ten seconds, and returns the
/// last value read: for state a server reaches a moment after its client saw the response
/// (a pooled connection, a finished fill). The caller asserts on what it returns.
pub fn settle(read: impl Fn() -> f64, done: impl Fn(f64) -> bool) -> f64 {
    let mut value = read();
    for _ in 0..200 {
        if done(value) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        value = read();
    }
    value
}

/// The paths a body served from a file can take.
pub const FILE_PATHS: [&str; 3] = ["io_uring_splice", "sendfile", "memory"];

/// Drops `path`'s pages from the page cache (fsync, then POSIX_FADV_DONTNEED), so the next read
/// needs the disk: the edge sends such a body through its io_uring rings, a warm one inline by
/// sendfile.
pub fn drop_from_page_cache(path: &Path) {
    use std::os::fd::AsRawFd as _;
    let f = std::fs::File::open(path).expect("open to drop from the page cache");
    f.sync_all().expect("fsync");
    // SAFETY: plain advice on a valid descriptor.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise(DONTNEED) on {}", path.display());
}

/// A running strata process; killed when dropped.
pub struct Strata {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// Every other server the process started (pop): role → (addr, admin).
    pub servers: Vec<(String, SocketAddr, SocketAddr)>,
    log: Arc<Mutex<Vec<String>>>,
    /// The network namespace the process runs in, if not the test's own.
    netns: Option<String>,
}

impl Strata {
    /// `strata storage --root DIR` on loopback with the io_uring path required, plus `extra`.
    pub fn storage(root: &Path, extra: &[&str]) -> Strata {
        let mut args = vec!["storage", "--root", root.to_str().expect("utf-8 path")];
        args.extend(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
        if !extra.contains(&"--body-path") {
            args.extend(["--body-path", "io_uring"]);
        }
        args.extend_from_slice(extra);
        Strata::start(&args, 1)
    }

    /// `strata edge --cache-dir DIR` on loopback with io_uring and eBPF telemetry required.
    pub fn edge(cache: &Path, extra: &[&str]) -> Strata {
        let mut args = vec!["edge", "--cache-dir", cache.to_str().expect("utf-8 path")];
        args.extend(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
        if !extra.contains(&"--body-path") {
            args.extend(["--body-path", "io_uring"]);
        }
        if !extra.contains(&"--telemetry") {
            args.extend(["--telemetry", "required"]);
        }
        args.extend_from_slice(extra);
        Strata::start(&args, 1)
    }

    /// Starts `strata ARGS` and waits for `servers` "serving" log lines.
    pub fn start(args: &[&str], servers: usize) -> Strata {
        Strata::start_in(None, args, servers)
    }

    /// Starts `strata ARGS` inside network namespace `netns` (with `ip netns exec`).
    pub fn start_in(netns: Option<&str>, args: &[&str], servers: usize) -> Strata {
        Strata::start_bin_in(&strata_bin(), netns, args, &[], servers)
    }

    /// Starts the strata binary at `bin` (a copy, to upgrade by replacing it) with `args` and
    /// extra environment `env`.
    pub fn start_bin_in(
        bin: &Path,
        netns: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
        servers: usize,
    ) -> Strata {
        let mut cmd = Command::new(bin);
        cmd.envs(env.iter().copied());
        let mut netns_file = None;
        if let Some(ns) = netns {
            // Enter only the network namespace (not `ip netns exec`, which also remounts /sys
            // and so hides the cgroup v2 hierarchy the sock_ops program attaches to).
            let path = format!("/var/run/netns/{ns}");
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: pre_exec runs in the forked child before exec; setns is async-signal-safe.
            unsafe {
                use std::os::fd::AsRawFd;
                use std::os::unix::process::CommandExt;
                let fd = file.as_raw_fd();
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            // The namespace file must stay open until the child has forked.
            netns_file = Some(file);
        }
        let mut child = cmd
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn strata");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[strata] {line}");
                if line.contains(" serving ") || line.contains("Error") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().expect("log lock").push(line);
            }
        });
        let mut found = Vec::new();
        while found.len() < servers {
            let started = std::time::Instant::now();
            let line = loop {
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(l) => break l,
                    Err(_) => {
                        let exited = child.try_wait().ok().flatten();
                        if exited.is_some() || started.elapsed() > Duration::from_secs(120) {
                            let _ = child.kill();
                            std::thread::sleep(Duration::from_millis(100));
                            panic!(
                                "strata {args:?} did not start ({exited:?}); log: {:?}",
                                log.lock().expect("log").clone()
                            );
                        }
                    }
                }
            };
            if line.contains("Error") && !line.contains(" serving ") {
                let _ = child.kill();
                panic!("strata {args:?} failed to start: {line}");
            }
            let field = |name: &str| -> SocketAddr {
                let start = line.find(&format!("{name}=")).expect("address field") + name.len() + 1;
                let rest = &line[start..];
                rest.split_whitespace()
                    .next()
                    .expect("value")
                    .parse()
                    .expect("socket address")
            };
            let role = line
                .split("role=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_string();
            found.push((role, field("local_addr"), field("admin_addr")));
        }
        let (_, addr, admin) = found[0].clone();
        drop(netns_file);
        Strata {
            child,
            addr,
            admin,
            servers: found,
            log,
            netns: netns.map(String::from),
        }
    }

    /// The address of the server with `role` (for multi-server processes such as pop).
    pub fn role(&self, role: &str) -> (SocketAddr, SocketAddr) {
        let s = self
            .servers
            .iter()
            .find(|s| s.0 == role)
            .unwrap_or_else(|| panic!("no {role} server"));
        (s.1, s.2)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines the process has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// The Prometheus text from /metrics.
    pub fn metrics(&self) -> String {
        let admin = self.admin;
        let resp = match &self.netns {
            Some(ns) => netns::in_netns(ns, move || get(admin, "/metrics", &[])),
            None => get(admin, "/metrics", &[]),
        };
        assert_eq!(resp.status, 200, "GET /metrics");
        String::from_utf8(resp.body).expect("utf-8 metrics")
    }

    /// GET `path` on the admin listener (from inside the server's namespace if it has one).
    pub fn admin_get(&self, path: &str) -> Response {
        let admin = self.admin;
        let path = path.to_string();
        match &self.netns {
            Some(ns) => netns::in_netns(ns, move || get(admin, &path, &[])),
            None => get(admin, &path, &[]),
        }
    }

    /// The value of one sample (`name{labels}` exactly as exposed); fails the test if the
    /// sample is absent (a misspelt name, or a part of the server that is not loaded).
    pub fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.metrics(), sample)
    }

    /// The value of one sample, or 0 if it is absent: only where absence is the point (a
    /// label value that appears once first counted, a part that may not be loaded).
    pub fn metric_absent_or_zero(&self, sample: &str) -> f64 {
        metric_absent_or_zero(&self.metrics(), sample)
    }

    /// Body bytes served from files, whichever path carried them (io_uring splice for bodies
    /// that needed the disk, sendfile for warm ones, memory for small files).
    pub fn file_body_bytes(&self) -> f64 {
        self.over_file_paths("strata_body_bytes_total")
    }

    /// Bodies served from files, whichever path carried them.
    pub fn file_bodies(&self) -> f64 {
        self.over_file_paths("strata_bodies_total")
    }

    /// `family{path=P}` summed over the file paths P.
    fn over_file_paths(&self, family: &str) -> f64 {
        let m = self.metrics();
        FILE_PATHS
            .iter()
            .map(|p| metric_absent_or_zero(&m, &format!("{family}{{path=\"{p}\"}}")))
            .sum()
    }

    /// Kills the process with SIGKILL (a crash) and waits for it.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit code.
    pub fn stop(mut self) -> Option<i32> {
        // SAFETY: kill with a valid pid and signal number.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Strata {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a sample line (`name{labels}` exactly as exposed) in Prometheus text, if the
/// sample is there; fails the test if its value is not a number.
pub fn metric_sample(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("metric sample {sample} has a value that is not a number: {v:?}"))
        })
}

/// The value of a sample line in Prometheus text; fails the test if the sample is absent, so
/// that a misspelt name or a part that is not loaded never reads as 0. Where absence is the
/// point, say so with [`metric_absent_or_zero`].
pub fn metric_value(text: &str, sample: &str) -> f64 {
    metric_sample(text, sample).unwrap_or_else(|| {
        let name = sample.split('{').next().unwrap_or(sample);
        let family: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && l.starts_with(name))
            .collect();
        panic!("metric sample {sample} is absent; samples of {name}: {family:?}")
    })
}

/// The value of a sample line, or 0 if it is absent: for samples whose absence means "never
/// counted" (a label value created on first use, a part that may not be loaded).
pub fn metric_absent_or_zero(text: &str, sample: &str) -> f64 {
    metric_sample(text, sample).unwrap_or(0.0)
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Connects to `addr` with a generous read timeout (so a broken server fails the test rather
/// than hanging it).
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    s
}

/// A GET request head with Host and extra header lines.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r
}

/// Reads one response from a connection; `head_only` for responses to HEAD.
pub fn read_response(stream: &mut impl Read, buf: &mut Vec<u8>, head_only: bool) -> Response {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let parsed = resp.parse(buf).unwrap_or_else(|e| {
            panic!(
                "not a valid response head ({e}): {:?}",
                String::from_utf8_lossy(&buf[..buf.len().min(200)])
            )
        });
        if let httparse::Status::Complete(n) = parsed {
            let status = resp.code.expect("status");
            let headers: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                .collect();
            let len: usize = if head_only || status == 304 {
                0
            } else {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().expect("content-length"))
                    .unwrap_or(0)
            };
            buf.drain(..n);
            while buf.len() < len {
                let mut chunk = vec![0u8; (len - buf.len()).min(1 << 20)];
                let got = stream.read(&mut chunk).expect("read body");
                assert!(
                    got > 0,
                    "connection closed after {} of {len} body bytes",
                    buf.len()
                );
                buf.extend_from_slice(&chunk[..got]);
            }
            let body: Vec<u8> = buf.drain(..len).collect();
            return Response {
                status,
                headers,
                body,
            };
        }
        let mut chunk = [0u8; 16384];
        let got = stream.read(&mut chunk).expect("read head");
        assert!(
            got > 0,
            "connection closed before a complete response head ({} bytes)",
            buf.len()
        );
        buf.extend_from_slice(&chunk[..got]);
    }
}

/// One request on a fresh connection.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    send(addr, &request("GET", path, headers), false)
}

/// Sends raw request bytes on a fresh connection and reads one response; then checks that
/// nothing follows it (see [`nothing_follows`]).
pub fn send(addr: SocketAddr, raw: &str, head_only: bool) -> Response {
    let mut s = connect(addr);
    s.write_all(raw.as_bytes()).expect("write request");
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, head_only);
    nothing_follows(&mut s, buf, &r);
    r
}

/// After the last response a client wants on `stream` (`buf`: what was read past it): the
/// client ends its side, the server must close its side, and no byte may arrive in between.
/// A body longer than its Content-Length, or one sent after a 304 or a HEAD, fails here.
pub fn nothing_follows(stream: &mut TcpStream, mut buf: Vec<u8>, r: &Response) {
    match stream.shutdown(std::net::Shutdown::Write) {
        Ok(()) => buf.extend(read_to_eof(stream, CLOSE_WITHIN)),
        // The server already reset the connection (it answered and closed while the request
        // was still arriving, as after a 431): nothing more can arrive.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotConnected
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
            ) => {}
        Err(e) => panic!("shutdown the client's side: {e}"),
    }
    assert!(
        buf.is_empty(),
        "{} bytes followed the {} response (Content-Length {:?}): {:?}",
        buf.len(),
        r.status,
        r.header("Content-Length"),
        String::from_utf8_lossy(&buf[..buf.len().min(200)])
    );
}

/// How long a test waits for a peer to close a connection it must close: far longer than any
/// close takes, short enough that a peer that never closes fails the test promptly.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(20);

/// Reads until the peer closes the connection (EOF, or a reset) and returns what arrived
/// before; fails the test if the connection is still open after `within`.
pub fn read_to_eof(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = std::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            !left.is_zero(),
            "the peer did not close the connection within {within:?} ({} bytes arrived)",
            got.len()
        );
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!(
                    "the peer did not close the connection within {within:?} ({} bytes arrived)",
                    got.len()
                )
            }
            Err(e) => panic!("reading until the peer closes: {e}"),
        }
    }
}

/// Asserts the server closes `stream` (EOF or reset) within [`CLOSE_WITHIN`], sending nothing
/// more.
pub fn closed_by_server(stream: &mut TcpStream) {
    let rest = read_to_eof(stream, CLOSE_WITHIN);
    assert!(
        rest.is_empty(),
        "{} bytes arrived before the close: {:?}",
        rest.len(),
        String::from_utf8_lossy(&rest[..rest.len().min(200)])
    );
}
