//! Distribution-job fixtures: a storage server and `n` edges, each in a network namespace of
//! its own behind one bridge, the control plane on the test's host joined to the bridge; a
//! content ingested through the real ingest path; helpers to create a job and wait for its end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::control::Control;
use crate::netns::Lan;
use crate::{Strata, TempDir};

/// The hosts of a job test.
pub struct JobNet {
    pub lan: Lan,
    pub dir: TempDir,
    pub control: Control,
    pub storage: Strata,
    pub edges: Vec<Option<Strata>>,
    pub edge_names: Vec<String>,
}

impl JobNet {
    /// Storage on LAN host 0, edges `edge-1`..`edge-n` on hosts 1..=n.
    pub fn new(name: &str, n: usize) -> JobNet {
        let lan = Lan::new(n + 1);
        let ops = lan.join_root(250);
        let dir = TempDir::new(name);
        let control = Control::start_at(&dir.path().join("control"), ops, &[]);
        control.tenant("acme", "home", &[], 1 << 40);
        let root = dir.path().join("storage");
        std::fs::create_dir_all(&root).expect("storage root");
        let storage = {
            let a = lan.client_addr(0);
            let (listen, admin) = (format!("{a}:8080"), format!("{a}:9080"));
            let link = control.link_args("store-1");
            let mut args = vec![
                "storage",
                "--root",
                root.to_str().expect("utf-8"),
                "--listen",
                &listen,
                "--admin-listen",
                &admin,
                "--body-path",
                "io_uring",
                "--cluster",
                "home",
            ];
            args.extend(link.iter().map(String::as_str));
            Strata::start_in(Some(&lan.client_ns[0]), &args, 1)
        };
        let mut net = JobNet {
            lan,
            dir,
            control,
            storage,
            edges: Vec::new(),
            edge_names: Vec::new(),
        };
        for i in 1..=n {
            net.edge_names.push(format!("edge-{i}"));
            net.edges.push(None);
            net.start_edge(i);
        }
        let names = net.edge_names.clone();
        net.control.wait_for("storage and every edge up", 400, |c| {
            c.is_up("store-1") && names.iter().all(|n| c.is_up(n))
        });
        net
    }

    /// The cache directory of edge `i` (1-based).
    pub fn cache(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("edge-{i}"))
    }

    /// Starts (or restarts) edge `i` (1-based).
    pub fn start_edge(&mut self, i: usize) {
        let cache = self.cache(i);
        std::fs::create_dir_all(&cache).expect("edge cache");
        let a = self.lan.client_addr(i);
        let (listen, admin) = (format!("{a}:8080"), format!("{a}:9080"));
        let link = self.control.link_args(&format!("edge-{i}"));
        let mut args = vec![
            "edge",
            "--cache-dir",
            cache.to_str().expect("utf-8"),
            "--listen",
            &listen,
            "--admin-listen",
            &admin,
            "--body-path",
            "io_uring",
            "--region",
            "r1",
        ];
        args.extend(link.iter().map(String::as_str));
        self.edges[i - 1] = Some(Strata::start_in(Some(&self.lan.client_ns[i]), &args, 1));
    }

    /// Ingests `files` (name, bytes) as content `content` of acme and waits until it is ready.
    pub fn ingest(&self, content: &str, files: &[(&str, &[u8])]) {
        let src = self.dir.path().join(format!("src-{content}"));
        std::fs::create_dir_all(&src).expect("source dir");
        for (name, bytes) in files {
            std::fs::write(src.join(name), bytes).expect("source file");
        }
        let out = self.control.ingest("acme", content, &src, &[]);
        assert!(
            out.status.success(),
            "ingest failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The host interface of LAN host `i` (0 = storage).
    pub fn ifname(&self, i: usize) -> String {
        self.lan.client_if(i)
    }

    /// Shapes everything host `i` sends (its upload) with tc tbf.
    pub fn shape_upload(&self, i: usize, rate: &str) {
        let out = std::process::Command::new("tc")
            .args([
                "-n",
                &self.lan.client_ns[i],
                "qdisc",
                "add",
                "dev",
                &self.ifname(i),
                "root",
                "tbf",
            ])
            .args(["rate", rate, "burst", "32kb", "latency", "400ms"])
            .output()
            .expect("tc");
        assert!(
            out.status.success(),
            "tc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates a job as the operator; its id.
    pub fn create(&self, body: &Value) -> String {
        let v = self.control.op("POST", "/v1/jobs", Some(body));
        v["id"].as_str().expect("job id").to_string()
    }

    pub fn job(&self, id: &str) -> Value {
        self.control.op("GET", &format!("/v1/jobs/{id}"), None)
    }

    /// Polls the job until `done` holds (every 200 ms, at most `tries` times).
    pub fn wait_job(&self, id: &str, what: &str, tries: u32, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..tries {
            if let (200, v) = self.control.call(
                "GET",
                &format!("/v1/jobs/{id}"),
                Some(&self.control.operator),
                None,
            ) {
                if done(&v) {
                    return v;
                }
                last = v;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("gave up waiting for {what}; job: {last:#}");
    }

    /// Waits until the job ended (any end state).
    pub fn wait_end(&self, id: &str, tries: u32) -> Value {
        self.wait_job(id, "the job's end", tries, |v| v["state"] != "running")
    }

    /// Bytes of response bodies the storage server sent (all kernel paths).
    pub fn storage_egress(&self) -> u64 {
        body_bytes(&self.storage.metrics())
    }
}

/// Sum of `strata_body_bytes_total` over its labels.
pub fn body_bytes(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("strata_body_bytes_total"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The job request for `content` of acme to `to`.
pub fn request(content: &str, to: &str, fanout: u32) -> Value {
    json!({"tenant": "acme", "content": content, "to": to, "fanout": fanout})
}

/// SHA-256 of a file (hex).
pub fn file_sha(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| crate::sha256_hex(&b))
}
