//! A control plane with storage servers and edges reporting to it, as real processes on
//! loopback: `strata control serve` on a port the test picks (so a restart finds it again),
//! the JSON API spoken over real sockets, and the CLI (`strata ingest`, `strata control`) run
//! as a user would. The registry is the embedded redb file, or — inside [`on_backend`] with
//! [`Backend::Etcd`] — a one-member etcd the control plane starts beside itself
//! (`--registry etcd://...`), so one test body runs on both stores.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::etcd::TestEtcd;
use crate::{connect, nothing_follows, read_response, strata_bin, Strata};

/// Which registry the control planes a test starts use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded redb file in the data directory (the default).
    Redb,
    /// A one-member etcd started for each control plane.
    Etcd,
}

thread_local! {
    static BACKEND: std::cell::Cell<Backend> = const { std::cell::Cell::new(Backend::Redb) };
}

/// Runs `body` with every `Control::start` on this thread using `backend`.
pub fn on_backend(backend: Backend, body: impl FnOnce()) {
    BACKEND.with(|b| b.set(backend));
    body();
    BACKEND.with(|b| b.set(Backend::Redb));
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A running `strata control serve` and what a test needs to talk to it.
pub struct Control {
    pub process: Option<Strata>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub operator: String,
    extra: Vec<String>,
    /// The etcd holding the registry (with `Backend::Etcd`); dropped after the process.
    pub etcd: Option<TestEtcd>,
}

impl Control {
    /// Starts a control plane over `data_dir` with a 1 s server TTL, plus `extra` flags.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Control {
        Control::start_at(data_dir, std::net::Ipv4Addr::LOCALHOST, extra)
    }

    /// The same, listening on `ip` (an address of the test's namespace).
    pub fn start_at(data_dir: &Path, ip: std::net::Ipv4Addr, extra: &[&str]) -> Control {
        let addr: SocketAddr = format!("{ip}:{}", free_port()).parse().expect("addr");
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let etcd = (BACKEND.with(|b| b.get()) == Backend::Etcd).then(TestEtcd::single);
        if let Some(etcd) = &etcd {
            extra.extend(["--registry".to_string(), etcd.url()]);
        }
        let mut c = Control {
            process: None,
            addr,
            data_dir: data_dir.to_path_buf(),
            operator: String::new(),
            extra,
            etcd,
        };
        c.restart();
        c.operator = std::fs::read_to_string(data_dir.join("operator.token"))
            .expect("operator token written at first start")
            .trim()
            .to_string();
        c
    }

    /// Starts one of several control-plane instances on a shared registry (`--registry
    /// registry`, e.g. a [`TestEtcd::cluster`]), over `data_dir` (instances on one machine may
    /// share it: the operator token and the staging copies are there), plus `extra` flags.
    pub fn start_on(data_dir: &Path, registry: &str, extra: &[&str]) -> Control {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        extra.extend(["--registry".to_string(), registry.to_string()]);
        let mut c = Control {
            process: None,
            addr,
            data_dir: data_dir.to_path_buf(),
            operator: String::new(),
            extra,
            etcd: None,
        };
        c.restart();
        c.operator = std::fs::read_to_string(data_dir.join("operator.token"))
            .expect("operator token written at first start")
            .trim()
            .to_string();
        c
    }

    /// The control-plane leader's instance name per this instance's status (None: no leader).
    pub fn leader(&self) -> Option<String> {
        self.status()["control"]["leader"].as_str().map(str::to_string)
    }

    /// Starts the process again (same data directory and port) after a crash or stop.
    pub fn restart(&mut self) {
        let listen = self.addr.to_string();
        let dir = self.data_dir.to_str().expect("utf-8").to_string();
        let mut args = vec![
            "control",
            "serve",
            "--data-dir",
            &dir,
            "--listen",
            &listen,
            "--server-ttl",
            "1s",
        ];
        args.extend(self.extra.iter().map(String::as_str));
        self.process = Some(Strata::start(&args, 1));
    }

    /// SIGKILLs the control plane.
    pub fn crash(&mut self) {
        if let Some(p) = self.process.take() {
            p.crash();
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One API call with `token` (None: no Authorization header).
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        api(self.addr, method, path, token, body)
    }

    /// An operator call that must succeed.
    pub fn op(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, v) = self.call(method, path, Some(&self.operator.clone()), body);
        assert!((200..300).contains(&status), "{method} {path}: {status} {v}");
        v
    }

    /// Issues a service token for `server` and writes it to a file in the data directory.
    pub fn service_token_file(&self, server: &str) -> PathBuf {
        let v = self.op(
            "POST",
            "/v1/tokens",
            Some(&serde_json::json!({"role": "service", "server": server})),
        );
        let file = self.data_dir.join(format!("{server}.token"));
        std::fs::write(&file, v["token"].as_str().expect("token")).expect("write token file");
        file
    }

    /// The control plane's status JSON.
    pub fn status(&self) -> Value {
        self.op("GET", "/v1/status", None)
    }

    /// One sample of the control plane's /metrics; fails the test if it is absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let (_, text) = raw(self.addr, "GET", "/metrics", None, None);
        crate::metric_value(&text, sample)
    }

    /// `strata ARGS` as the operator (STRATA_CONTROL and STRATA_TOKEN set).
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(args, &self.operator)
    }

    /// `strata ingest --tenant T --content C --quiet EXTRA DIR` as the operator.
    pub fn ingest(&self, tenant: &str, content: &str, dir: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["ingest", "--tenant", tenant, "--content", content, "--quiet"];
        args.extend_from_slice(extra);
        args.push(dir.to_str().expect("utf-8"));
        self.cli(&args)
    }

    /// `strata ARGS` with `token`.
    pub fn cli_as(&self, args: &[&str], token: &str) -> Output {
        Command::new(strata_bin())
            .args(args)
            .env("STRATA_CONTROL", self.url())
            .env("STRATA_TOKEN", token)
            .env_remove("STRATA_TOKEN_FILE")
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("run strata")
    }

    /// The flags that join server `name` to this control plane (a fresh service token,
    /// heartbeats every 200 ms).
    pub fn link_args(&self, name: &str) -> Vec<String> {
        let token = self.service_token_file(name);
        let token = token.to_str().expect("utf-8").to_string();
        [
            "--control",
            &self.url(),
            "--control-token-file",
            &token,
            "--name",
            name,
            "--heartbeat",
            "200ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Starts a storage server of `cluster` named `name` over `root`.
    pub fn storage(&self, root: &Path, cluster: &str, name: &str) -> Strata {
        let link = self.link_args(name);
        let mut args = vec!["--cluster", cluster];
        args.extend(link.iter().map(String::as_str));
        Strata::storage(root, &args)
    }

    /// Starts an edge named `name` over `cache`, plus `extra`.
    pub fn edge(&self, cache: &Path, name: &str, extra: &[&str]) -> Strata {
        std::fs::create_dir_all(cache).expect("edge cache directory");
        let link = self.link_args(name);
        let mut args: Vec<&str> = link.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        Strata::edge(cache, &args)
    }

    /// Polls `check` (every 50 ms, at most `tries` times) until it holds; panics with `what`.
    pub fn wait_for(&self, what: &str, tries: u32, check: impl Fn(&Control) -> bool) {
        for _ in 0..tries {
            if check(self) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("gave up waiting for {what}; status: {}", self.status());
    }

    /// Polls `GET path` as the operator (every 100 ms, at most `tries` times) until it answers
    /// `status`; panics with `what` and the last answer.
    pub fn wait_for_status(&self, what: &str, tries: u32, path: &str, status: u16) {
        let mut last = (0, Value::Null);
        for _ in 0..tries {
            last = self.call("GET", path, Some(&self.operator.clone()), None);
            if last.0 == status {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "gave up waiting for {what}: GET {path} answered {} {}",
            last.0, last.1
        );
    }

    /// True when `server` is up per the status.
    pub fn is_up(&self, server: &str) -> bool {
        let s = self.status();
        let in_clusters = s["tiers"]["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["servers"].as_array().cloned().unwrap_or_default());
        let edges = s["edges"].as_array().cloned().unwrap_or_default();
        in_clusters
            .chain(edges)
            .any(|x| x["name"] == server && x["up"] == true)
    }

    /// Registers clusters and a tenant (home, replicas) through the API.
    pub fn tenant(&self, name: &str, home: &str, replicas: &[&str], quota: u64) {
        for c in std::iter::once(home).chain(replicas.iter().copied()) {
            let _ = self.call(
                "POST",
                "/v1/clusters",
                Some(&self.operator.clone()),
                Some(&serde_json::json!({"name": c, "tier": "storage"})),
            );
        }
        self.op(
            "POST",
            "/v1/tenants",
            Some(&serde_json::json!({"name": name, "home_cluster": home, "replica_clusters": replicas, "quota_bytes": quota, "hot_edges": 1})),
        );
    }
}

/// Sends one request and returns the status and body text.
pub fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut s = connect(addr);
    let body = body.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: control\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send request");
    let mut buf = Vec::new();
    let resp = read_response(&mut s, &mut buf, method == "HEAD");
    nothing_follows(&mut s, buf, &resp);
    (resp.status, resp.text())
}

/// One JSON API call: status and parsed body (Null when empty).
pub fn api(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (status, answer) = raw(addr, method, path, token, text.as_deref());
    let v = if answer.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&answer).unwrap_or(Value::String(answer))
    };
    (status, v)
}
