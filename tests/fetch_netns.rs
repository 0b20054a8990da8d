//! The intelligent client (`strata fetch`) across real links: edges of regions east and west on
//! hosts of their own, a viewer host, the control plane and nameserver on the test's host.
//! Pins: a download stays byte-exact while its server's link is shaped down mid-run, the client
//! moves to the other region at an offset past zero (the trace shows it) and no byte is fetched
//! twice except hedged pieces, and its report reaches the control plane; `--play` over a link
//! slower than the top rendition settles on a lower one and rebuffers less than a player pinned
//! to the top rendition on the same link.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use strata_tests::control::Control;
use strata_tests::dns::{dig, srv_records, start_dns};
use strata_tests::netns::Lan;
use strata_tests::routing::{edge, reshape, shape_toward};
use strata_tests::*;

/// A content on both edges: (asset name, bytes, bitrate) each, and its asset list.
fn place(caches: &[&Path], assets: &[(&str, &[u8], Option<u64>)]) {
    let list: Vec<Value> = assets
        .iter()
        .map(|(name, bytes, bitrate)| {
            serde_json::json!({
                "name": name, "url": format!("/acme/show/{name}"), "type": "video",
                "codec": "avc1.64001f", "bitrate": bitrate, "resolution": "1280x720",
                "size": bytes.len(), "sha256": sha256_hex(bytes), "etag": "x",
            })
        })
        .collect();
    let doc = serde_json::json!({"tenant": "acme", "content": "show", "assets": list});
    for cache in caches {
        let dir = cache.join("acme/show");
        std::fs::create_dir_all(&dir).expect("content dir");
        for (name, bytes, _) in assets {
            std::fs::write(dir.join(name), bytes).expect("asset");
        }
        std::fs::write(dir.join("assets.json"), doc.to_string()).expect("asset list");
    }
}

/// Two regions' edges, a control plane and a nameserver; the viewer is client host 2.
struct Net {
    lan: Lan,
    dir: TempDir,
    control: Control,
    _east: Strata,
    _west: Strata,
    dns: Strata,
}

fn net(name: &str, assets: &[(&str, &[u8], Option<u64>)]) -> Net {
    let lan = Lan::new(3);
    let ops = lan.join_root(250);
    let dir = TempDir::new(name);
    let (east_cache, west_cache) = (dir.path().join("east"), dir.path().join("west"));
    place(&[&east_cache, &west_cache], assets);
    let control = Control::start_at(&dir.path().join("control"), ops, &["--map-interval", "500ms"]);
    let east = edge(&lan, &control, 0, "east-1", "east", &east_cache);
    let west = edge(&lan, &control, 1, "west-1", "west", &west_cache);
    let dns = start_dns(&control, "cdn.test", None, &ops.to_string());
    control.wait_for("both regions in the map", 200, |c| {
        let map = c.op("GET", "/v1/map", None);
        map["regions"].as_array().is_some_and(|r| {
            r.iter()
                .filter(|r| r["servers"].as_array().is_some_and(|s| !s.is_empty()))
                .count()
                == 2
        })
    });
    let mut answered = 0;
    for _ in 0..100 {
        let short = dig(dns.addr, None, &["+short", "SRV", "_a1._tcp.srv.cdn.test"]);
        answered = srv_records(&short).len();
        if answered == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(answered, 2, "the nameserver answers with both regions");
    Net {
        lan,
        dir,
        control,
        _east: east,
        _west: west,
        dns,
    }
}

impl Net {
    /// `strata fetch ARGS` on the viewer's host, started (not waited for).
    fn fetch(&self, args: &[&str]) -> Child {
        let dns = self.dns.addr.to_string();
        Command::new("ip")
            .args(["netns", "exec", &self.lan.client_ns[2]])
            .arg(strata_bin())
            .args([
                "fetch",
                "--dns",
                &dns,
                "--domain",
                "cdn.test",
                "--control",
                &self.control.url(),
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strata fetch")
    }

    /// Shapes edge host `c`'s link toward the viewer.
    fn shape(&self, c: usize, rate: &str) {
        let viewer = format!("{}/32", self.lan.client_addr(2));
        shape_toward(&self.lan.client_ns[c], &self.lan.client_if(c), &viewer, rate);
    }

    fn reshape(&self, c: usize, rate: &str) {
        reshape(&self.lan.client_ns[c], &self.lan.client_if(c), rate);
    }
}

fn finished(child: Child) -> Output {
    let out = child.wait_with_output().expect("strata fetch ends");
    assert!(
        out.status.success(),
        "strata fetch failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn trace(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_download_stays_exact_and_moves_region_when_its_link_is_shaped_down_mid_run() {
    if !kernel_features_or_skip("a_download_stays_exact_and_moves_region") {
        return;
    }
    let size = 24 << 20;
    let data = pattern(91, size);
    let n = net("fetch-switch", &[("video-720p.mp4", &data, Some(3_000_000))]);
    // East is the faster region at first; west is slower but steady.
    n.shape(0, "60mbit");
    n.shape(1, "20mbit");
    let out = n.dir.path().join("video.mp4");
    let trace_file = n.dir.path().join("trace.jsonl");
    let child = n.fetch(&[
        "-o",
        out.to_str().expect("utf-8"),
        "--trace",
        trace_file.to_str().expect("utf-8"),
        "acme/show/video-720p.mp4",
    ]);
    // Once a quarter has arrived from east, east's link drops to 2 Mbit/s.
    let mut seen = 0;
    for _ in 0..600 {
        seen = trace(&trace_file)
            .iter()
            .filter_map(|l| l["len"].as_u64())
            .sum::<u64>();
        if seen >= (size / 4) as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        seen >= (size / 4) as u64,
        "the download never got going: {seen} bytes traced"
    );
    n.reshape(0, "2mbit");
    let output = finished(child);
    let got = std::fs::read(&out).expect("the output file");
    assert!(got == data, "the output is byte-exact");
    assert!(!n.dir.path().join("video.mp4.part").exists());
    let lines = trace(&trace_file);
    let east = format!("{}:8080", n.lan.client_addr(0));
    let west = format!("{}:8080", n.lan.client_addr(1));
    assert_eq!(
        lines.first().map(|l| l["server"].clone()),
        Some(Value::from(east.clone())),
        "starts on east"
    );
    let switch = lines
        .iter()
        .find(|l| l["event"] == "switch" && l["server"] == west.as_str())
        .unwrap_or_else(|| panic!("a switch to west: {lines:?}"));
    assert!(
        switch["offset"].as_u64().unwrap_or(0) > 0,
        "the switch happens mid-asset: {switch}"
    );
    // The pieces tile the asset: nothing fetched twice except hedged pieces (traced once).
    let mut pieces: Vec<(u64, u64)> = lines
        .iter()
        .filter(|l| l["event"] == "piece" || l["event"] == "hedge")
        .map(|l| (l["offset"].as_u64().unwrap_or(0), l["len"].as_u64().unwrap_or(0)))
        .collect();
    pieces.sort();
    let mut next = 0;
    for (offset, len) in &pieces {
        assert_eq!(*offset, next, "pieces tile the asset without overlap: {pieces:?}");
        next = offset + len;
    }
    assert_eq!(next, size as u64);
    assert!(
        lines
            .iter()
            .any(|l| l["server"] == west.as_str() && l["event"] != "switch"),
        "west served pieces after the switch"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("SHA-256 checked"), "{stdout}");
    n.control.wait_for("the client's report", 100, |c| {
        c.metric("strata_control_map_client_reports_total") >= 1.0
    });
}

#[test]
fn play_over_a_slow_link_settles_on_a_lower_rendition_and_rebuffers_less_than_the_top_one() {
    if !kernel_features_or_skip("play_over_a_slow_link_settles_on_a_lower_rendition") {
        return;
    }
    // Eight seconds of media: 2 Mbit/s and 400 kbit/s renditions.
    let high = pattern(5, 2_000_000);
    let low = pattern(6, 400_000);
    let n = net(
        "fetch-play",
        &[
            ("video-high.mp4", &high, Some(2_000_000)),
            ("video-low.mp4", &low, Some(400_000)),
        ],
    );
    for c in [0, 1] {
        n.shape(c, "1mbit");
    }
    let run = |extra: &[&str], name: &str| -> Value {
        let qoe = n.dir.path().join(format!("{name}.json"));
        let mut args = vec!["--play", "--qoe", qoe.to_str().expect("utf-8")];
        args.extend_from_slice(extra);
        finished(n.fetch(&args));
        serde_json::from_slice(&std::fs::read(&qoe).expect("qoe file")).expect("qoe json")
    };
    let adaptive = run(&["acme/show"], "adaptive");
    let fixed = run(&["acme/show/video-high.mp4"], "fixed");
    eprintln!("adaptive: {adaptive}\nfixed: {fixed}");
    assert_eq!(adaptive["main_rendition"], "video-low.mp4", "{adaptive}");
    assert_eq!(fixed["main_rendition"], "video-high.mp4", "{fixed}");
    let rebuffers = |q: &Value| q["rebuffers"].as_u64().unwrap_or(0);
    assert!(
        rebuffers(&adaptive) < rebuffers(&fixed),
        "adaptive rebuffered {} times, the top rendition {} times",
        rebuffers(&adaptive),
        rebuffers(&fixed)
    );
}
