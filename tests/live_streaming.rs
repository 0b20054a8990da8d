//! Live streaming with real clients: ffmpeg publishes HLS (MPEG-TS and fMP4 segments) to a
//! `strata live` ingest cluster with `-method PUT` and the tenant's publish token; ffprobe reads
//! the live playlist through an edge (the control plane's lookup sends the edge to the ingest
//! cluster while the stream is live); after ENDLIST the recording is archived through the
//! durable work queue onto home, replica and archive with identical bytes, and the same URL
//! serves the whole recording. Also: bad publishes get the right status and leave nothing
//! servable; 200 viewers polling one edge cost the ingest about one fetch per playlist update.

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime};

use strata_tests::live::{duration, ffmpeg_publish, ffprobe, segments, LivePop};
use strata_tests::*;

fn codecs(probe: &serde_json::Value) -> Vec<String> {
    probe["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["codec_name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn ffmpeg_publishes_mpegts_and_fmp4_the_edge_serves_them_live_and_after_endlist_the_same_url_serves_the_archived_recording(
) {
    let pop = LivePop::start("live-e2e", 1, 600, &[]);
    let ingest = pop.ingest_addr(0);
    let streams = [("ts", "mpegts"), ("cmaf", "fmp4")];
    let started = Instant::now();
    let mut encoders: Vec<_> = streams
        .iter()
        .map(|(s, t)| ffmpeg_publish(&format!("http://{ingest}/acme/{s}/index.m3u8"), &pop.token, 14, t))
        .collect();
    let mut first_playable = None;
    for (stream, _) in streams {
        let live = pop.wait("the live playlist at the edge", 60, |p| {
            let r = p.edge_get(stream, "index.m3u8");
            (r.status == 200 && !segments(&r.text()).is_empty()).then_some(r)
        });
        first_playable.get_or_insert(started.elapsed());
        assert!(
            !live.text().contains("#EXT-X-ENDLIST"),
            "live, not ended: {}",
            live.text()
        );
        assert_eq!(live.header("Cache-Control"), Some("public, max-age=1"));
        assert!(live.header("Age").is_some(), "an Age header");
        let probe = ffprobe(&format!("http://{}/acme/{stream}/index.m3u8", pop.edge.addr));
        let c = codecs(&probe);
        assert!(
            c.contains(&"h264".to_string()) && c.contains(&"aac".to_string()),
            "{stream}: {c:?}"
        );
        let listed = pop.listed(stream).expect("listed by /v1/live");
        assert_eq!(listed["phase"], "live");
        assert_eq!(listed["cluster"], "ingest");
        let status = pop.control.cli(&["control", "status"]);
        let status = String::from_utf8_lossy(&status.stdout);
        assert!(
            status
                .lines()
                .any(|l| l.contains(&format!("acme/{stream}")) && l.contains("live") && l.contains("live-1")),
            "strata control status lists the live stream: {status}"
        );
    }
    // Publish → listed at the edge: a segment's rename on the ingest root to its first
    // appearance in the edge's playlist.
    let mut seen: std::collections::BTreeSet<String> = segments(&pop.edge_get("ts", "index.m3u8").text())
        .into_iter()
        .collect();
    let mut latencies = Vec::new();
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let r = pop.edge_get("ts", "index.m3u8");
        if r.status == 200 {
            for s in segments(&r.text()) {
                if seen.insert(s.clone()) {
                    let mtime = std::fs::metadata(pop.root().join("acme/ts").join(&s))
                        .and_then(|m| m.modified())
                        .expect("segment on the ingest root");
                    latencies.push(SystemTime::now().duration_since(mtime).unwrap_or_default());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "first playlist with a segment at the edge {:?} after ffmpeg started; segment published → listed at the edge: {latencies:?}",
        first_playable
    );
    for e in &mut encoders {
        assert!(e.wait().expect("ffmpeg").success(), "ffmpeg publish failed");
    }
    for (stream, _) in streams {
        pop.wait("the archived recording", 120, |p| {
            (p.listed(stream)?["phase"] == "archived").then_some(())
        });
        let content = pop
            .control
            .op("GET", &format!("/v1/tenants/acme/contents/{stream}"), None);
        assert_eq!(content["record"]["state"], "ready");
        // The same URL, now from storage: every segment, ENDLIST.
        let vod = pop.wait("the VOD playlist at the edge", 30, |p| {
            let r = p.edge_get(stream, "index.m3u8");
            (r.status == 200 && r.text().contains("#EXT-X-ENDLIST")).then_some(r.text())
        });
        assert!(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{vod}");
        let d = duration(&vod);
        assert!(
            (d - 14.0).abs() < 1.5,
            "{stream}: recording lasts {d} s, 14 s were pushed"
        );
        let probe = ffprobe(&format!("http://{}/acme/{stream}/index.m3u8", pop.edge.addr));
        let probed: f64 = probe["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .expect("duration");
        assert!(
            (probed - 14.0).abs() < 1.5,
            "{stream}: ffprobe says {probed} s, 14 s were pushed"
        );
        // Byte-identical on home, replica and archive, as recorded.
        for asset in content["record"]["assets"].as_array().expect("assets") {
            let name = asset["name"].as_str().expect("name");
            let want = asset["sha256"].as_str().expect("sha256");
            for base in [
                pop.dir.path().join("home"),
                pop.dir.path().join("replica"),
                pop.dir.path().join("control/archive"),
            ] {
                let bytes = std::fs::read(base.join("acme").join(stream).join(name))
                    .unwrap_or_else(|e| panic!("{stream}/{name} under {}: {e}", base.display()));
                assert_eq!(
                    sha256_hex(&bytes),
                    want,
                    "{stream}/{name} under {}",
                    base.display()
                );
            }
        }
        for seg in segments(&vod) {
            let r = pop.edge_get(stream, &seg);
            assert_eq!(r.status, 200, "{stream}/{seg} through the edge");
        }
    }
    // The same key published again: a new recording whose files are named apart from the
    // archived one's, served live through the edge that holds the archived recording.
    let mut again = ffmpeg_publish(
        &format!("http://{ingest}/acme/ts/index.m3u8"),
        &pop.token,
        6,
        "mpegts",
    );
    let live = pop.wait("the second recording live at the edge", 60, |p| {
        let r = p.edge_get("ts", "index.m3u8");
        let text = r.text();
        (r.status == 200 && !text.contains("#EXT-X-ENDLIST") && !segments(&text).is_empty()).then_some(text)
    });
    let first = segments(&live).into_iter().next().expect("a segment");
    assert!(
        first.starts_with("g1-"),
        "named apart from the archived recording: {live}"
    );
    let served = pop.edge_get("ts", &first);
    let recorded =
        std::fs::read(pop.root().join("acme/ts").join(&first)).expect("recorded on the ingest root");
    assert!(
        served.status == 200 && served.body == recorded,
        "{first}: the new recording's bytes"
    );
    assert!(again.wait().expect("ffmpeg").success(), "second publish");
}

/// One raw publish request; the status and body text.
fn publish_raw(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = connect(addr);
    s.write_all(head.as_bytes()).expect("head");
    // A server that refuses early (413) may close before the whole body is sent.
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, false);
    (r.status, r.text())
}

fn put(path: &str, token: Option<&str>, body: &[u8]) -> String {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "PUT {path} HTTP/1.1\r\nHost: live\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
}

#[test]
fn bad_publishes_get_the_right_status_with_a_message_and_leave_nothing_servable() {
    let pop = LivePop::start("live-bad", 1, 600, &[]);
    pop.control.tenant("other", "home", &[], 0);
    let other = pop.control.op(
        "POST",
        "/v1/tokens",
        Some(&serde_json::json!({"role": "tenant", "tenant": "other"})),
    )["token"]
        .as_str()
        .expect("token")
        .to_string();
    let addr = pop.ingest_addr(0);
    let tok = Some(pop.token.as_str());
    let seg = pattern(1, 5000);
    // A good stream first (chunked body, as ffmpeg sends), which must stay intact.
    let chunked = format!(
        "PUT /acme/good/seg0.ts HTTP/1.1\r\nHost: live\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        pop.token
    );
    let mut body = Vec::new();
    for piece in seg.chunks(1500) {
        body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(publish_raw(addr, &chunked, &body).0, 201);
    let pl = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg0.ts\n";
    assert_eq!(
        publish_raw(addr, &put("/acme/good/index.m3u8", tok, pl), pl).0,
        201
    );

    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        (
            "no token",
            put("/acme/s/a.ts", None, &seg),
            seg.clone(),
            401,
            "publish token",
        ),
        (
            "another tenant's token",
            put("/acme/s/a.ts", Some(&other), &seg),
            seg.clone(),
            403,
            "another tenant",
        ),
        (
            "traversal",
            put("/acme/..%2Fother/a.ts", tok, &seg),
            seg.clone(),
            400,
            "bad path",
        ),
        (
            "not a stream file",
            put("/acme/s/a.exe", tok, &seg),
            seg.clone(),
            415,
            "a.exe",
        ),
        (
            "garbage playlist",
            put("/acme/s/index.m3u8", tok, b"hello"),
            b"hello".to_vec(),
            400,
            "#EXTM3U",
        ),
        (
            "oversized segment",
            put("/acme/s/big.ts", tok, &vec![0u8; 8_000_001]),
            vec![0u8; 8_000_001],
            413,
            "limit",
        ),
    ];
    for (what, head, body, status, says) in cases {
        let (got, text) = publish_raw(addr, &head, &body);
        assert_eq!(got, status, "{what}: {text}");
        assert!(
            text.contains(says),
            "{what}: message {text:?} should say {says:?}"
        );
    }
    // A body cut short: the connection dies mid-body.
    {
        let mut s = connect(addr);
        s.write_all(put("/acme/s/cut.ts", tok, &seg).as_bytes())
            .expect("head");
        s.write_all(&seg[..2000]).expect("half the body");
        drop(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    for f in ["a.ts", "a.exe", "big.ts", "cut.ts", "index.m3u8"] {
        let r = get(addr, &format!("/acme/s/{f}"), &[]);
        assert_eq!(r.status, 404, "{f} must not be servable");
    }
    let leftovers: Vec<String> = std::fs::read_dir(pop.root().join("acme/s"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        leftovers.iter().all(|n| n == ".rec"),
        "nothing but the state directory is left: {leftovers:?}"
    );
    // The good stream is unaffected, through the ingest and through the edge.
    let r = get(addr, "/acme/good/seg0.ts", &[]);
    assert_eq!((r.status, r.body.clone()), (200, seg.clone()));
    let r = pop.wait("the good stream at the edge", 30, |p| {
        let r = p.edge_get("good", "index.m3u8");
        (r.status == 200).then_some(r)
    });
    assert!(r.text().contains("seg0.ts"));
    assert_eq!(pop.edge_get("good", "seg0.ts").body, seg);
}

#[test]
fn two_hundred_viewers_polling_the_live_playlist_through_one_edge_cost_the_ingest_about_one_fetch_per_update()
{
    let dir = TempDir::new("live-collapse-config");
    let config = dir.write("edge.toml", b"[upstream]\nlive_playlist_ttl = \"2s\"\n");
    let pop = LivePop::start(
        "live-collapse",
        1,
        600,
        &["--config", config.to_str().expect("utf-8")],
    );
    let ingest = pop.ingest_addr(0);
    let mut encoder = ffmpeg_publish(
        &format!("http://{ingest}/acme/crowd/index.m3u8"),
        &pop.token,
        40,
        "mpegts",
    );
    pop.wait("the live playlist at the edge", 60, |p| {
        (p.edge_get("crowd", "index.m3u8").status == 200).then_some(())
    });
    let live = pop.ingest[0].as_ref().expect("ingest");
    let updates0 = live.metric("strata_live_publishes_total{kind=\"playlist\"}");
    let fetches0 = live.metric("strata_live_viewer_requests_total{kind=\"playlist\"}");
    let requests0 = pop.edge.metric("strata_live_playlist_requests_total");
    let edge = pop.edge.addr;
    let until = Instant::now() + Duration::from_secs(12);
    let viewers: Vec<_> = (0..200)
        .map(|_| {
            std::thread::spawn(move || {
                let mut n = 0u32;
                while Instant::now() < until {
                    let r = get(edge, "/acme/crowd/index.m3u8", &[]);
                    assert_eq!(r.status, 200);
                    assert!(r.text().starts_with("#EXTM3U"));
                    n += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                n
            })
        })
        .collect();
    let polls: u32 = viewers.into_iter().map(|v| v.join().expect("viewer")).sum();
    let updates = live.metric("strata_live_publishes_total{kind=\"playlist\"}") - updates0;
    let fetches = live.metric("strata_live_viewer_requests_total{kind=\"playlist\"}") - fetches0;
    let requests = pop.edge.metric("strata_live_playlist_requests_total") - requests0;
    eprintln!(
        "200 viewers: {polls} polls, {requests} live playlist requests at the edge, {fetches} fetches at the ingest, {updates} playlist updates: {:.2} fetches per update, collapse ratio {:.0}:1",
        fetches / updates.max(1.0),
        requests / fetches.max(1.0)
    );
    assert!(
        requests >= polls as f64,
        "every poll went through the live playlist path"
    );
    assert!(updates >= 3.0, "the encoder kept publishing");
    assert!(fetches >= 1.0);
    assert!(
        fetches <= updates * 1.5 + 2.0,
        "{fetches} ingest fetches for {updates} playlist updates"
    );
    assert!(
        !pop.dir.path().join("edge/acme/crowd/index.m3u8").exists(),
        "a live playlist is never admitted to the edge's disk cache"
    );
    let _ = encoder.kill();
    let _ = encoder.wait();
}

/// Recorded segments of run 0 (names without the `r{N}-` prefix of later runs).
fn first_run(playlist: &str) -> usize {
    segments(playlist).iter().filter(|s| !s.starts_with('r')).count()
}

#[test]
fn an_ingest_server_killed_mid_stream_costs_at_most_the_segment_in_flight_the_encoder_goes_on_at_the_other_and_idle_time_archives_it(
) {
    let mut pop = LivePop::start("live-failover", 2, 4, &[]);
    let (a, b) = (pop.ingest_addr(0), pop.ingest_addr(1));
    let mut first = ffmpeg_publish(
        &format!("http://{a}/acme/fo/index.m3u8"),
        &pop.token,
        60,
        "mpegts",
    );
    let recorded = pop.wait("three recorded segments", 60, |p| {
        let n = p.listed("fo")?["segments"].as_u64()?;
        (n >= 3).then_some(n)
    });
    pop.ingest[0].take().expect("live-1").crash();
    let _ = first.kill();
    let _ = first.wait();
    // The encoder, pointed at the cluster's other server, goes on (a restart: a new run).
    let mut second = ffmpeg_publish(
        &format!("http://{b}/acme/fo/index.m3u8"),
        &pop.token,
        60,
        "mpegts",
    );
    let live = pop.wait("the second run live at the edge", 60, |p| {
        let r = p.edge_get("fo", "index.m3u8");
        let text = r.text();
        (r.status == 200 && segments(&text).iter().filter(|s| s.starts_with("r1-")).count() >= 2)
            .then_some(text)
    });
    assert!(live.contains("#EXT-X-DISCONTINUITY"), "{live}");
    // The encoder dies too (SIGKILL): the tenant's idle time (4 s) ends the stream.
    let _ = second.kill();
    let _ = second.wait();
    pop.wait("the archived recording", 120, |p| {
        (p.listed("fo")?["phase"] == "archived").then_some(())
    });
    let vod = pop.wait("the VOD playlist at the edge", 30, |p| {
        let r = p.edge_get("fo", "index.m3u8");
        (r.status == 200 && r.text().contains("#EXT-X-ENDLIST")).then_some(r.text())
    });
    eprintln!("recorded before the kill: {recorded}; archived: {vod}");
    assert!(
        first_run(&vod) as u64 >= recorded,
        "every segment recorded before the kill is archived ({recorded} then): {vod}"
    );
    assert_eq!(vod.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{vod}");
    for seg in segments(&vod) {
        assert_eq!(pop.edge_get("fo", &seg).status, 200, "{seg} through the edge");
    }
    let probe = ffprobe(&format!("http://{}/acme/fo/index.m3u8", pop.edge.addr));
    let probed: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("duration");
    assert!(
        (probed - duration(&vod)).abs() < 1.5,
        "ffprobe {probed} s, playlist {} s",
        duration(&vod)
    );
}

#[test]
fn the_control_plane_killed_during_archiving_finishes_it_after_restart_without_duplicates() {
    let mut pop = LivePop::start("live-ctl-kill", 1, 600, &[]);
    let ingest = pop.ingest_addr(0);
    let mut encoder = ffmpeg_publish(
        &format!("http://{ingest}/acme/ck/index.m3u8"),
        &pop.token,
        8,
        "fmp4",
    );
    assert!(encoder.wait().expect("ffmpeg").success());
    pop.wait("the stream ending", 60, |p| {
        let phase = p.listed("ck")?["phase"].as_str()?.to_string();
        (phase != "live").then_some(())
    });
    pop.control.crash();
    std::thread::sleep(Duration::from_millis(1500));
    pop.control.restart();
    pop.wait("the archived recording", 120, |p| {
        (p.listed("ck")?["phase"] == "archived").then_some(())
    });
    let contents = pop.control.op("GET", "/v1/tenants/acme/contents", None);
    let names: Vec<String> = contents
        .as_array()
        .or_else(|| contents["contents"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c["content"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        names,
        vec!["ck".to_string()],
        "one recording, no duplicate: {contents}"
    );
    let content = pop.control.op("GET", "/v1/tenants/acme/contents/ck", None);
    assert_eq!(content["record"]["state"], "ready");
    assert_eq!(
        content["work"].as_array().map(Vec::len),
        Some(0),
        "no work left: {content}"
    );
    for asset in content["record"]["assets"].as_array().expect("assets") {
        let name = asset["name"].as_str().expect("name");
        for base in ["home", "replica", "control/archive"] {
            let bytes =
                std::fs::read(pop.dir.path().join(base).join("acme/ck").join(name)).expect("placed file");
            assert_eq!(
                sha256_hex(&bytes),
                asset["sha256"].as_str().expect("sha"),
                "{base}/{name}"
            );
        }
    }
    let vod = pop.edge_get("ck", "index.m3u8").text();
    assert!((duration(&vod) - 8.0).abs() < 1.5, "{vod}");
}

#[test]
fn hls_js_in_chromium_plays_the_live_stream_through_an_edge_and_then_the_archived_recording() {
    use std::sync::{Arc, Mutex};
    use strata_tests::browser::{chromium, player_page, wait_report};
    let pop = LivePop::start("live-hlsjs", 1, 600, &[]);
    let ingest = pop.ingest_addr(0);
    let mut encoder = ffmpeg_publish(
        &format!("http://{ingest}/acme/hj/index.m3u8"),
        &pop.token,
        36,
        "mpegts",
    );
    pop.wait("the live playlist at the edge", 60, |p| {
        let r = p.edge_get("hj", "index.m3u8");
        (r.status == 200 && segments(&r.text()).len() >= 2).then_some(())
    });
    let url = format!("http://{}/acme/hj/index.m3u8", pop.edge.addr);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let page = player_page(url.clone(), reports.clone());
    let mut browser = chromium(&format!("http://{page}/"), &pop.dir.path().join("chromium"));
    let started = wait_report(&reports, 240, "live playback", |r| {
        r["t"].as_f64().unwrap_or(0.0) > 0.5
    });
    let t0 = started["t"].as_f64().unwrap_or(0.0);
    let later = wait_report(&reports, 240, "ten more seconds of live playback", |r| {
        r["t"].as_f64().unwrap_or(0.0) >= t0 + 10.0
    });
    let _ = browser.kill();
    let _ = browser.wait();
    eprintln!("live: started {started}, later {later}");
    assert_eq!(later["live"], true, "hls.js saw a live playlist: {later}");
    assert!(later["frags"].as_array().is_some_and(|f| !f.is_empty()));
    // After the encoder ends, the same URL plays the archived recording.
    assert!(encoder.wait().expect("ffmpeg").success());
    pop.wait("the archived recording", 120, |p| {
        (p.listed("hj")?["phase"] == "archived").then_some(())
    });
    pop.wait("the VOD playlist at the edge", 30, |p| {
        p.edge_get("hj", "index.m3u8")
            .text()
            .contains("#EXT-X-ENDLIST")
            .then_some(())
    });
    let reports = Arc::new(Mutex::new(Vec::new()));
    let page = player_page(url, reports.clone());
    let mut browser = chromium(&format!("http://{page}/"), &pop.dir.path().join("chromium-vod"));
    let vod = wait_report(&reports, 240, "playback of the archived recording", |r| {
        r["t"].as_f64().unwrap_or(0.0) >= 5.0
    });
    let _ = browser.kill();
    let _ = browser.wait();
    assert_eq!(vod["live"], false, "the archived recording is VOD: {vod}");
}

/// A tmpfs of `size` mounted at `dir` for the life of the value.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "mount tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn one_stream_over_the_tenant_limit_gets_429_and_a_full_disk_507_leaving_nothing_and_other_streams_intact() {
    let pop = LivePop::start("live-limits", 0, 600, &[]);
    let root = pop.dir.path().join("small-root");
    let _disk = SmallDisk::mount(&root, "1m");
    let live = strata_tests::live::start_live_with(
        &pop.control,
        &root,
        "live-small",
        &["--max-streams-per-tenant", "1"],
    );
    let tok = Some(pop.token.as_str());
    let seg = pattern(3, 1000);
    assert_eq!(
        publish_raw(live.addr, &put("/acme/one/seg0.ts", tok, &seg), &seg).0,
        201
    );
    let (status, text) = publish_raw(live.addr, &put("/acme/two/seg0.ts", tok, &seg), &seg);
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("limit"), "{text}");
    let big = pattern(4, 2 << 20);
    let (status, text) = publish_raw(live.addr, &put("/acme/one/seg1.ts", tok, &big), &big);
    assert_eq!(status, 507, "{text}");
    assert!(text.contains("full"), "{text}");
    assert_eq!(
        get(live.addr, "/acme/one/seg1.ts", &[]).status,
        404,
        "nothing half-written is served"
    );
    let names: Vec<String> = std::fs::read_dir(root.join("acme/one"))
        .expect("stream dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        names.iter().all(|n| n == ".rec" || n == "seg0.ts"),
        "no .part left: {names:?}"
    );
    let r = get(live.addr, "/acme/one/seg0.ts", &[]);
    assert_eq!(
        (r.status, r.body),
        (200, seg),
        "the stream's earlier segment is intact"
    );
    drop(live);
}
