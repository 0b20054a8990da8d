//! A real etcd cluster for tests: `etcd` (Debian's etcd-server) members on free loopback
//! ports, data in a temporary directory, killed and removed when dropped. One member for most
//! tests, three where quorum matters. Members can be killed and started again (same data, same
//! ports). Plain std only: strata-control's unit tests include this file too.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// A running test cluster.
pub struct TestEtcd {
    dir: PathBuf,
    token: String,
    members: Vec<Member>,
}

fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl TestEtcd {
    /// One member.
    pub fn single() -> TestEtcd {
        TestEtcd::cluster(1)
    }

    /// `n` members, all started and healthy.
    pub fn cluster(n: usize) -> TestEtcd {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let token = format!("strata-test-{}-{seq}", std::process::id());
        let dir = std::env::temp_dir().join(&token);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("etcd test directory");
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_loopback_port(),
                peer_port: free_loopback_port(),
                child: None,
            })
            .collect();
        let mut etcd = TestEtcd { dir, token, members };
        for i in 0..n {
            etcd.spawn(i);
        }
        etcd.wait_healthy();
        etcd
    }

    fn spawn(&mut self, i: usize) {
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let m = &self.members[i];
        let data = self.dir.join(&m.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", m.name)))
            .expect("etcd log file");
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let state = if data.exists() { "existing" } else { "new" };
        let child = Command::new("etcd")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            .args([
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
                "--log-level",
                "warn",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting etcd (apt-get install etcd-server): {e}"));
        self.members[i].child = Some(child);
    }

    /// Polls every running member's /health (every 50 ms, at most 600 times).
    pub fn wait_healthy(&self) {
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            let healthy = (0..600).any(|_| {
                let ok = health(m.client_port);
                if !ok {
                    std::thread::sleep(Duration::from_millis(50));
                }
                ok
            });
            assert!(
                healthy,
                "etcd member {} on 127.0.0.1:{} never became healthy; log in {}",
                m.name,
                m.client_port,
                self.dir.display()
            );
        }
    }

    /// `etcd://127.0.0.1:P1,127.0.0.1:P2,...` for `--registry`.
    pub fn url(&self) -> String {
        let endpoints: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect();
        format!("etcd://{}", endpoints.join(","))
    }

    /// The index of the member that is the raft leader, if a running one says it is (asked
    /// through etcd's JSON gateway, `/v3/maintenance/status`).
    pub fn leader(&self) -> Option<usize> {
        self.members.iter().position(|m| {
            m.child.is_some()
                && post(m.client_port, "/v3/maintenance/status", "{}").is_some_and(|body| {
                    let field = |name: &str| {
                        let start = body.find(&format!("\"{name}\":\""))? + name.len() + 4;
                        let len = body[start..].find('"')?;
                        Some(body[start..start + len].to_string())
                    };
                    field("leader").is_some() && field("leader") == field("member_id")
                })
        })
    }

    /// Polls until some member is the leader (every 50 ms, at most 200 times).
    pub fn wait_leader(&self) -> usize {
        for _ in 0..200 {
            if let Some(i) = self.leader() {
                return i;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no etcd member became leader; logs in {}", self.dir.display());
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data and ports, and waits until the running members
    /// are healthy.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_healthy();
    }
}

/// True when the member answers `{"health":"true"}`.
fn health(port: u16) -> bool {
    http(port, "GET", "/health", "").is_some_and(|b| b.contains("\"health\":\"true\""))
}

fn post(port: u16, path: &str, body: &str) -> Option<String> {
    http(port, "POST", path, body)
}

/// One HTTP/1.1 request to a member's client port; the whole response as text.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: etcd\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    Some(answer)
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
