//! Live streaming fixture: a control plane, a home and a replica storage cluster, an ingest
//! cluster of `strata live` servers sharing one root, an edge, a tenant with its publish token;
//! and the real encoder (ffmpeg pushing HLS with `-method PUT`) and prober (ffprobe).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::control::Control;
use crate::{get, Strata, TempDir};

/// A whole live setup on loopback.
pub struct LivePop {
    pub dir: TempDir,
    pub control: Control,
    pub home: Strata,
    pub replica: Strata,
    pub ingest: Vec<Option<Strata>>,
    pub edge: Strata,
    /// acme's publish token.
    pub token: String,
}

impl LivePop {
    /// `ingest_servers` live servers in cluster `ingest`; tenant `acme` (home `home`, replica
    /// `replica`) with `idle_archive_secs`.
    pub fn start(name: &str, ingest_servers: usize, idle_archive_secs: u64, edge_extra: &[&str]) -> LivePop {
        let dir = TempDir::new(name);
        let control = Control::start(&dir.path().join("control"), &[]);
        control.tenant("acme", "home", &["replica"], 0);
        control.op(
            "PATCH",
            "/v1/tenants/acme",
            Some(&json!({ "idle_archive_secs": idle_archive_secs })),
        );
        let home = control.storage(&mkdir(dir.path(), "home"), "home", "home-1");
        let replica = control.storage(&mkdir(dir.path(), "replica"), "replica", "replica-1");
        let root = mkdir(dir.path(), "live-root");
        let ingest = (1..=ingest_servers)
            .map(|i| Some(start_live(&control, &root, &format!("live-{i}"))))
            .collect();
        let edge = control.edge(&dir.path().join("edge"), "edge-1", edge_extra);
        let token = control.op(
            "POST",
            "/v1/tokens",
            Some(&json!({"role": "tenant", "tenant": "acme"})),
        )["token"]
            .as_str()
            .expect("token")
            .to_string();
        LivePop {
            dir,
            control,
            home,
            replica,
            ingest,
            edge,
            token,
        }
    }

    /// The live servers' shared root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("live-root")
    }

    /// Ingest server `i`'s stream listener.
    pub fn ingest_addr(&self, i: usize) -> SocketAddr {
        self.ingest[i].as_ref().expect("ingest server running").addr
    }

    /// Starts ingest server `i` again (same name) after it was killed.
    pub fn restart_ingest(&mut self, i: usize) {
        let root = self.root();
        self.ingest[i] = Some(start_live(&self.control, &root, &format!("live-{}", i + 1)));
    }

    /// The control plane's `GET /v1/live` entry of `acme/stream`, if listed.
    pub fn listed(&self, stream: &str) -> Option<Value> {
        let v = self.control.op("GET", "/v1/live", None);
        v["streams"]
            .as_array()?
            .iter()
            .find(|s| s["tenant"] == "acme" && s["stream"] == stream)
            .cloned()
    }

    /// Polls `check` every 100 ms until it returns Some, at most `secs` seconds; panics with `what`.
    pub fn wait<T>(&self, what: &str, secs: u64, check: impl Fn(&LivePop) -> Option<T>) -> T {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            assert!(
                Instant::now() < until,
                "gave up waiting for {what}; /v1/live: {}",
                self.control.op("GET", "/v1/live", None)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The edge's answer for `/acme/{stream}/{file}`.
    pub fn edge_get(&self, stream: &str, file: &str) -> crate::Response {
        get(self.edge.addr, &format!("/acme/{stream}/{file}"), &[])
    }
}

fn mkdir(base: &Path, name: &str) -> PathBuf {
    let p = base.join(name);
    std::fs::create_dir_all(&p).expect("mkdir");
    p
}

/// `strata live` named `name` over `root`, in cluster `ingest`, heartbeating every 200 ms.
pub fn start_live(control: &Control, root: &Path, name: &str) -> Strata {
    start_live_with(control, root, name, &[])
}

/// The same plus `extra` flags.
pub fn start_live_with(control: &Control, root: &Path, name: &str, extra: &[&str]) -> Strata {
    let link = control.link_args(name);
    let mut args = vec![
        "live",
        "--root",
        root.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--cluster",
        "ingest",
        "--max-segment-bytes",
        "8000000",
    ];
    args.extend(link.iter().map(String::as_str));
    args.extend_from_slice(extra);
    Strata::start(&args, 1)
}

/// ffmpeg pushing `secs` seconds of testsrc + sine (H.264/AAC, 2 s segments) to `url` with
/// `-method PUT` and the bearer token; `segment_type` is `mpegts` or `fmp4`.
pub fn ffmpeg_publish(url: &str, token: &str, secs: u32, segment_type: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
        .args([
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "64k"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_list_size", "5"])
        .args(["-hls_segment_type", segment_type, "-hls_flags", "delete_segments"])
        .args(["-method", "PUT"])
        .args(["-headers", &format!("Authorization: Bearer {token}\r\n")])
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ffmpeg")
}

/// ffprobe's JSON for `url` (format and streams).
pub fn ffprobe(url: &str) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-of",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(url)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// Segment URIs of a playlist's text.
pub fn segments(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Sum of a playlist's #EXTINF durations.
pub fn duration(playlist: &str) -> f64 {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|v| v.split(',').next()?.parse::<f64>().ok())
        .sum()
}
