//! The control plane with real processes: `strata control serve`, storage servers and edges
//! reporting to it, content ingested with `strata ingest` as a user runs it. Pins: placement on
//! home, replicas and archive with identical bytes; a fixed home cluster whose servers may
//! move; refusals with the right status and nothing changed; no lost or duplicated work after
//! kill -9 (duplicates counted by inode, change time and bytes placed); waiting for a storage
//! server that is down; syncd moving a shifted working set onto an edge; restores from the
//! archive while viewers keep getting correct bytes. Every test body runs twice: `redb::NAME`
//! on the embedded registry, `etcd::NAME` with the registry on a one-member etcd
//! (`--registry etcd://...`); `etcd_down_*` only on etcd.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use strata_tests::control::{on_backend, Backend, Control};
use strata_tests::*;

/// One `#[test]` per body and backend: `redb::NAME` and `etcd::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod redb {
            use super::*;
            $( #[test] fn $name() { on_backend(Backend::Redb, super::$name) } )*
        }
        mod etcd {
            use super::*;
            $( #[test] fn $name() { on_backend(Backend::Etcd, super::$name) } )*
        }
    };
}

on_both_backends!(
    ingest_places_content_on_home_replica_and_archive_and_the_edge_serves_it_miss_then_hit,
    the_home_cluster_is_fixed_and_moving_its_servers_keeps_urls_working,
    refusals_have_the_right_status_and_message_and_change_nothing,
    killing_the_control_plane_mid_ingest_loses_no_work_and_duplicates_nothing,
    a_storage_server_down_during_ingest_is_waited_for_and_the_work_completes_when_it_returns,
    syncd_moves_a_shifted_working_set_onto_a_small_edge_cache_and_the_old_set_is_evicted,
    a_file_lost_on_the_home_cluster_is_restored_from_the_archive_while_viewers_get_correct_bytes,
);

/// Writes `files` (name, seed, length) into a fresh source directory.
fn source(name: &str, files: &[(&str, u64, usize)]) -> TempDir {
    let dir = TempDir::new(name);
    for (file, seed, len) in files {
        dir.write(file, &pattern(*seed, *len));
    }
    dir
}

/// Asserts `root/tenant/content/file` holds exactly the bytes of `src/file`.
fn same_file(root: &Path, tenant: &str, content: &str, src: &Path, file: &str) {
    let placed = root.join(tenant).join(content).join(file);
    let got = std::fs::read(&placed).unwrap_or_else(|e| panic!("{}: {e}", placed.display()));
    let want = std::fs::read(src.join(file)).expect("source file");
    assert!(got == want, "{} differs from the ingested file", placed.display());
}

/// No temporary placement files were left in a storage root or the archive.
fn no_leftovers(root: &Path) {
    let put = root.join(".strata-put");
    let left: Vec<_> = std::fs::read_dir(&put)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "leftover partial placements: {left:?}");
}

/// A control plane, tenant acme (home east, replica west) and one storage server per cluster.
struct Site {
    data: TempDir,
    control: Control,
    east_root: std::path::PathBuf,
    west_root: std::path::PathBuf,
    _east: Strata,
    west: Option<Strata>,
}

fn site(name: &str) -> Site {
    let data = TempDir::new(name);
    let control = Control::start(&data.path().join("control"), &[]);
    control.tenant("acme", "east", &["west"], 0);
    let (east_root, west_root) = (data.path().join("east"), data.path().join("west"));
    for d in [&east_root, &west_root] {
        std::fs::create_dir_all(d).expect("root");
    }
    let east = control.storage(&east_root, "east", "east-1");
    let west = control.storage(&west_root, "west", "west-1");
    control.wait_for("storage up", 400, |c| c.is_up("east-1") && c.is_up("west-1"));
    Site {
        data,
        control,
        east_root,
        west_root,
        _east: east,
        west: Some(west),
    }
}

fn ok(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "command failed: {text}");
    text
}

fn ingest_places_content_on_home_replica_and_archive_and_the_edge_serves_it_miss_then_hit() {
    if !kernel_features_or_skip("ingest_places_content") {
        return;
    }
    let Site {
        data,
        control,
        east_root,
        west_root,
        _east,
        west: _west,
    } = site("cp-ingest");
    let edge = control.edge(&data.path().join("edge"), "edge-1", &[]);
    control.wait_for("edge up", 400, |c| c.is_up("edge-1"));
    let src = source(
        "cp-src",
        &[
            ("video-1080p.mp4", 1, 3 << 20),
            ("audio-en.aac", 2, 200_000),
            ("subs-fr.vtt", 3, 999),
        ],
    );
    let out = ok(&control.ingest("acme", "show", src.path(), &[]));
    assert!(out.contains("is ready"), "{out}");
    let archive = control.data_dir.join("archive");
    for root in [&east_root, &west_root, &archive] {
        for f in ["video-1080p.mp4", "audio-en.aac", "subs-fr.vtt"] {
            same_file(root, "acme", "show", src.path(), f);
        }
        no_leftovers(root);
    }
    let shown = control.op("GET", "/v1/tenants/acme/contents/show", None);
    assert_eq!(shown["record"]["state"], "ready");
    let placed: Vec<&str> = shown["record"]["placed"]
        .as_array()
        .expect("placed")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(placed, ["archive", "east-1", "west-1"]);
    // The asset list through the edge: kinds, languages, sizes and the ETags the tier serves.
    let list = get(edge.addr, "/acme/show/assets.json", &[]);
    assert_eq!(list.status, 200);
    let list: serde_json::Value = serde_json::from_slice(&list.body).expect("assets.json is JSON");
    let video = list["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .find(|a| a["name"] == "video-1080p.mp4")
        .expect("video listed")
        .clone();
    assert_eq!(
        (
            video["type"].as_str(),
            video["resolution"].as_str(),
            video["size"].as_u64()
        ),
        (Some("video"), Some("1080p"), Some(3 << 20))
    );
    let subs = list["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .find(|a| a["name"] == "subs-fr.vtt")
        .expect("subs listed")
        .clone();
    assert_eq!(
        (subs["type"].as_str(), subs["language"].as_str()),
        (Some("subtitles"), Some("fr"))
    );
    // Miss, miss (admitted, filled), then a local hit; same bytes and ETag every time.
    let want = pattern(1, 3 << 20);
    for _ in 0..2 {
        let r = get(edge.addr, "/acme/show/video-1080p.mp4", &[]);
        assert_eq!(r.status, 200);
        assert!(r.body == want, "proxied bytes differ");
        assert_eq!(
            r.header("etag"),
            video["etag"].as_str(),
            "the registry's ETag is the tier's"
        );
    }
    let filled = settle(
        || edge.metric("strata_cache_fills_total{result=\"completed\"}"),
        |v| v >= 1.0,
    );
    assert_eq!(filled, 1.0);
    let hits = edge.metric("strata_cache_hits_total");
    let r = get(edge.addr, "/acme/show/video-1080p.mp4", &[]);
    assert!(r.status == 200 && r.body == want, "local hit bytes");
    assert_eq!(
        r.header("etag"),
        video["etag"].as_str(),
        "the filled copy keeps the ETag"
    );
    assert_eq!(edge.metric("strata_cache_hits_total"), hits + 1.0, "a local hit");
    // The operator's view names the tiers, tenants and the edge's cache table.
    control.wait_for("the edge to report its cache table", 400, |c| {
        c.status()["edges"][0]["held_files"] == 1
    });
    let status = ok(&control.cli(&["control", "status"]));
    for needle in [
        "cluster east",
        "east-1",
        "edge-1",
        "acme",
        "WORK QUEUE",
        "in 1 files",
    ] {
        assert!(status.contains(needle), "status lacks {needle:?}:\n{status}");
    }
    let listed = ok(&control.cli(&["control", "contents", "acme"]));
    assert!(listed.contains("show") && listed.contains("ready"), "{listed}");
    // Flagged hot at ingest: pushed to the tenant's one hot edge before any viewer asks.
    let hot = source("cp-hot-src", &[("video-480p.mp4", 9, 1 << 20)]);
    ok(&control.ingest("acme", "premiere", hot.path(), &["--hot"]));
    let pushed = data.path().join("edge/acme/premiere/video-480p.mp4");
    control.wait_for("the hot content on the edge", 600, |_| pushed.exists());
    // It went out as a distribution job (fetch, then pin), tracked like any other.
    control.wait_for("the hot content's job to finish", 600, |c| {
        c.op("GET", "/v1/jobs", None).as_array().is_some_and(|jobs| {
            jobs.iter()
                .any(|j| j["content"] == "premiere" && j["state"] == "done" && j["done"] == 1)
        })
    });
    assert_eq!(
        edge.metric("strata_cache_pinned_files"),
        1.0,
        "pinned on its edge"
    );
    let misses = edge.metric("strata_misses_total");
    let r = get(edge.addr, "/acme/premiere/video-480p.mp4", &[]);
    assert!(r.status == 200 && r.body == pattern(9, 1 << 20));
    assert_eq!(
        edge.metric("strata_misses_total"),
        misses,
        "the first viewer already hits"
    );
}

fn the_home_cluster_is_fixed_and_moving_its_servers_keeps_urls_working() {
    let data = TempDir::new("cp-home");
    let control = Control::start(&data.path().join("control"), &[]);
    control.tenant("solo", "east", &[], 0);
    let root = data.path().join("east");
    std::fs::create_dir_all(&root).expect("root");
    let first = control.storage(&root, "east", "east-1");
    let edge = control.edge(
        &data.path().join("edge"),
        "edge-1",
        &["--cache-capacity", "0", "--telemetry", "off"],
    );
    control.wait_for("servers up", 400, |c| c.is_up("east-1") && c.is_up("edge-1"));
    let src = source("cp-home-src", &[("video-720p.mp4", 7, 1 << 20)]);
    ok(&control.ingest("solo", "clip", src.path(), &[]));
    // Changing the home is refused, and nothing changes.
    let (status, v) = control.call(
        "PATCH",
        "/v1/tenants/solo",
        Some(&control.operator.clone()),
        Some(&json!({"home_cluster": "west"})),
    );
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap_or_default().contains("cannot change"),
        "{v}"
    );
    let cli = control.cli(&["control", "tenant", "set", "solo", "--home", "west"]);
    assert!(!cli.status.success());
    assert_eq!(
        control.op("GET", "/v1/tenants/solo", None)["tenant"]["home_cluster"],
        "east"
    );
    let url = "/solo/clip/video-720p.mp4";
    assert_eq!(get(edge.addr, url, &[]).body, pattern(7, 1 << 20));
    // The cluster's server moves: a new server (another address) over the same disk.
    let old_addr = first.addr;
    first.crash();
    let second = control.storage(&root, "east", "east-2");
    assert_ne!(second.addr, old_addr);
    control.wait_for("east-1 down, east-2 up", 400, |c| {
        !c.is_up("east-1") && c.is_up("east-2")
    });
    let mut served = None;
    for _ in 0..200 {
        let r = get(edge.addr, url, &[]);
        if r.status == 200 {
            served = Some(r.body);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        served,
        Some(pattern(7, 1 << 20)),
        "the same URL works through the moved server"
    );
}

fn refusals_have_the_right_status_and_message_and_change_nothing() {
    let data = TempDir::new("cp-refuse");
    let control = Control::start(&data.path().join("control"), &[]);
    control.tenant("acme", "east", &[], 1_000_000);
    control.tenant("globex", "east", &[], 0);
    let root = data.path().join("east");
    std::fs::create_dir_all(&root).expect("root");
    let _east = control.storage(&root, "east", "east-1");
    control.wait_for("east-1 up", 400, |c| c.is_up("east-1"));
    // Quota: refused before upload, naming quota and usage; nothing staged or recorded.
    let big = source("cp-big", &[("video.mp4", 1, 1_500_000)]);
    let out = control.ingest("acme", "big", big.path(), &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("413") && err.contains("quota is 1000000 bytes") && err.contains("uses 0 bytes"),
        "{err}"
    );
    assert_eq!(control.op("GET", "/v1/tenants/acme/contents", None), json!([]));
    let staged = std::fs::read_dir(control.data_dir.join("staging"))
        .expect("staging")
        .count();
    assert_eq!(staged, 0, "nothing was uploaded");
    // Unknown tenant and content: 404 with a message.
    let (s, v) = control.call("GET", "/v1/tenants/nobody", Some(&control.operator.clone()), None);
    assert_eq!((s, v["error"].as_str()), (404, Some("no tenant nobody")));
    let (s, v) = control.call(
        "GET",
        "/v1/tenants/acme/contents/nothing",
        Some(&control.operator.clone()),
        None,
    );
    assert_eq!(s, 404);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no content nothing"),
        "{v}"
    );
    // Malformed input: 400 naming the field.
    let (s, v) = control.call(
        "POST",
        "/v1/tenants",
        Some(&control.operator.clone()),
        Some(&json!({"name": "x", "home_cluster": "east", "quota_bytes": "lots"})),
    );
    assert_eq!(s, 400);
    assert!(
        v["error"].as_str().unwrap_or_default().contains("quota_bytes"),
        "{v}"
    );
    let (s, v) = control.call(
        "POST",
        "/v1/tenants",
        Some(&control.operator.clone()),
        Some(&json!({"name": "x"})),
    );
    assert_eq!(s, 400);
    assert!(
        v["error"].as_str().unwrap_or_default().contains("home_cluster"),
        "{v}"
    );
    let (s, v) = control.call(
        "POST",
        "/v1/tenants",
        Some(&control.operator.clone()),
        Some(&json!({"name": "Bad/Name", "home_cluster": "east"})),
    );
    assert_eq!(s, 400);
    assert!(
        v["error"].as_str().unwrap_or_default().starts_with("tenant "),
        "{v}"
    );
    // No token, a wrong token: 401.
    assert_eq!(control.call("GET", "/v1/tenants", None, None).0, 401);
    assert_eq!(
        control.call("GET", "/v1/tenants", Some("strata_wrong"), None).0,
        401
    );
    // A tenant's token on another tenant: 403, and nothing changes.
    let acme = control.op(
        "POST",
        "/v1/tokens",
        Some(&json!({"role": "tenant", "tenant": "acme"})),
    )["token"]
        .as_str()
        .expect("token")
        .to_string();
    let small = source("cp-small", &[("clip.mp4", 2, 1000)]);
    let out = control.cli_as(
        &[
            "ingest",
            "--tenant",
            "globex",
            "--content",
            "stolen",
            "--quiet",
            small.path().to_str().expect("utf-8"),
        ],
        &acme,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, _) = control.call("POST", "/v1/tenants/globex/contents/x/hot", Some(&acme), None);
    assert_eq!(s, 403);
    assert_eq!(
        control.call("GET", "/v1/tenants", Some(&acme), None).0,
        403,
        "tenant tokens do not list tenants"
    );
    assert_eq!(control.op("GET", "/v1/tenants/globex/contents", None), json!([]));
    // The tenant's own token works on its own content.
    let out = control.cli_as(
        &[
            "ingest",
            "--tenant",
            "acme",
            "--content",
            "mine",
            "--quiet",
            small.path().to_str().expect("utf-8"),
        ],
        &acme,
    );
    ok(&out);
    assert_eq!(
        control
            .op("GET", "/v1/tenants/acme/contents", None)
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

/// The files a content directory holds, each with its inode and change time (a placement
/// writes a temporary file and renames it over the name: a new inode).
fn placed_files(dir: &Path) -> BTreeMap<String, (u64, i64, i64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let m = e.metadata().expect("stat a placed file");
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, (m.ino(), m.ctime(), m.ctime_nsec(), m.len()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until no placement upload is in progress in `root` (its temporary directory stays
/// empty for a few looks): the storage server has dropped the upload a killed control plane
/// was sending, or finished it.
fn no_upload_in_progress(root: &Path) {
    let put = root.join(".strata-put");
    let empty = || std::fs::read_dir(&put).map_or(true, |mut d| d.next().is_none());
    let mut quiet = 0;
    for _ in 0..200 {
        quiet = if empty() { quiet + 1 } else { 0 };
        if quiet == 5 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("an upload into {} never ended", put.display());
}

fn killing_the_control_plane_mid_ingest_loses_no_work_and_duplicates_nothing() {
    let Site {
        data: _data,
        mut control,
        east_root,
        west_root,
        _east,
        west,
    } = site("cp-kill");
    // west-1 is held down, so the placement cannot be finished when the kill lands, whenever
    // that is: the replica target waits for west-1.
    west.expect("west-1 started").crash();
    control.wait_for("west-1 down", 400, |c| !c.is_up("west-1"));
    let names: Vec<String> = (0..150).map(|i| format!("seg-{i:04}.m4s")).collect();
    let files: Vec<(&str, u64, usize)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u64 + 10, 256 * 1024))
        .collect();
    let src = source("cp-kill-src", &files);
    ok(&control.ingest("acme", "many", src.path(), &["--no-wait"]));
    // Kill -9 once placement has started.
    control.wait_for("placement under way", 2000, |c| {
        c.metric("strata_control_placed_bytes") > 0.0
    });
    control.crash();
    // What the killed process left behind, read after its death (nothing moves any more).
    let archive = control.data_dir.join("archive");
    no_upload_in_progress(&east_root);
    let roots = [&east_root, &west_root, &archive];
    let content = |root: &Path| root.join("acme").join("many");
    let at_kill: Vec<_> = roots.iter().map(|r| placed_files(&content(r))).collect();
    assert!(
        at_kill[1].is_empty(),
        "west-1 was down, yet holds {:?}",
        at_kill[1].keys()
    );
    eprintln!(
        "killed with {} of {} files on east-1, {} in the archive, none on west-1 (down)",
        at_kill[0].len(),
        names.len() + 1,
        at_kill[2].len()
    );
    control.restart();
    let _west = control.storage(&west_root, "west", "west-1");
    control.wait_for("the queue to drain after restart", 2400, |c| {
        c.metric("strata_control_work_items") == 0.0
    });
    let shown = control.op("GET", "/v1/tenants/acme/contents/many", None);
    assert_eq!(shown["record"]["state"], "ready");
    let mut missing_at_kill = 0u64;
    for (root, before) in roots.iter().zip(&at_kill) {
        for n in &names {
            same_file(root, "acme", "many", src.path(), n);
        }
        let now = placed_files(&content(root));
        assert!(
            now.len() == names.len() + 1 && now.contains_key("assets.json"),
            "every file once, plus assets.json, in {}: {:?}",
            root.display(),
            now.keys()
        );
        // Nothing copied twice: a file that was whole at the kill was never written again.
        for (name, was) in before {
            assert_eq!(
                now.get(name),
                Some(was),
                "{}: {name} was placed before the kill and written again after it (inode, ctime)",
                root.display()
            );
        }
        missing_at_kill += now
            .iter()
            .filter(|(name, _)| !before.contains_key(*name))
            .map(|(_, m)| m.3)
            .sum::<u64>();
        no_leftovers(root);
    }
    // And what was missing was copied once: the restarted control plane moved exactly those bytes.
    assert_eq!(
        control.metric("strata_control_placed_bytes"),
        missing_at_kill as f64,
        "bytes placed after the restart, against the bytes missing at the kill"
    );
    assert_eq!(
        control
            .op("GET", "/v1/tenants/acme/contents", None)
            .as_array()
            .map(Vec::len),
        Some(1),
        "one content, once"
    );
    // The ingestor removes the staging copy right after the commit that ends the item.
    let staging = control.data_dir.join("staging");
    control.wait_for(
        "the staging copy to be removed once everything is placed",
        2000,
        |_| std::fs::read_dir(&staging).expect("staging").count() == 0,
    );
}

fn a_storage_server_down_during_ingest_is_waited_for_and_the_work_completes_when_it_returns() {
    let Site {
        data: _data,
        control,
        east_root,
        west_root,
        _east,
        west,
    } = site("cp-down");
    west.expect("west-1 started").crash();
    control.wait_for("west-1 down", 400, |c| !c.is_up("west-1"));
    let src = source(
        "cp-down-src",
        &[("video.mp4", 5, 2 << 20), ("thumb-01.jpg", 6, 5000)],
    );
    ok(&control.ingest("acme", "waits", src.path(), &["--no-wait"]));
    control.wait_for("the home copy and the wait on west-1", 1200, |c| {
        let s = c.status();
        s["work"][0]["waiting"].as_array().is_some_and(|w| {
            w.iter()
                .any(|t| t["target"] == "west-1" && t["error"].as_str().unwrap_or_default().contains("down"))
        }) && s["work"][0]["targets_done"] == 2
    });
    same_file(&east_root, "acme", "waits", src.path(), "video.mp4");
    assert_eq!(
        control.op("GET", "/v1/tenants/acme/contents/waits", None)["record"]["state"],
        "placing"
    );
    let _west = control.storage(&west_root, "west", "west-1");
    control.wait_for("the work to complete", 1200, |c| {
        c.metric("strata_control_work_items") == 0.0
    });
    same_file(&west_root, "acme", "waits", src.path(), "video.mp4");
    same_file(&west_root, "acme", "waits", src.path(), "thumb-01.jpg");
    assert_eq!(
        control.op("GET", "/v1/tenants/acme/contents/waits", None)["record"]["state"],
        "ready"
    );
}

fn syncd_moves_a_shifted_working_set_onto_a_small_edge_cache_and_the_old_set_is_evicted() {
    if !kernel_features_or_skip("syncd_moves_a_shifted_working_set") {
        return;
    }
    let data = TempDir::new("cp-syncd");
    let control = Control::start(
        &data.path().join("control"),
        &["--demand-half-life", "1s", "--push-min-requests", "2"],
    );
    control.tenant("acme", "east", &[], 0);
    let root = data.path().join("east");
    std::fs::create_dir_all(&root).expect("root");
    let _east = control.storage(&root, "east", "east-1");
    // 8 MiB of cache; admission off in practice (two requests within 1 ms), so only syncd fills.
    let cache_dir = data.path().join("edge");
    let edge = control.edge(
        &cache_dir,
        "edge-1",
        &["--cache-capacity", "8388608", "--admit-interval", "1ms"],
    );
    control.wait_for("servers up", 400, |c| c.is_up("east-1") && c.is_up("edge-1"));
    let a: Vec<String> = (0..6).map(|i| format!("a-{i}.m4s")).collect();
    let b: Vec<String> = (0..6).map(|i| format!("b-{i}.m4s")).collect();
    let files: Vec<(&str, u64, usize)> = a
        .iter()
        .chain(&b)
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u64 + 100, 1 << 20))
        .collect();
    let src = source("cp-syncd-src", &files);
    ok(&control.ingest("acme", "set", src.path(), &[]));
    // One round: every asset of `set` once; returns the round's hit ratio from the edge's metrics.
    let round = |set: &[String]| -> f64 {
        let hits = edge.metric("strata_cache_hits_total");
        let misses = edge.metric("strata_misses_total");
        for (i, n) in set.iter().enumerate() {
            let r = get(edge.addr, &format!("/acme/set/{n}"), &[]);
            assert_eq!(r.status, 200);
            let seed = if n.starts_with("a-") {
                100 + i as u64
            } else {
                106 + i as u64
            };
            assert!(r.body == pattern(seed, 1 << 20), "{n}: wrong bytes");
        }
        let h = edge.metric("strata_cache_hits_total") - hits;
        let m = edge.metric("strata_misses_total") - misses;
        h / (h + m)
    };
    let until_hot = |set: &[String]| -> (f64, f64, usize) {
        let first = round(set);
        let mut last = first;
        let mut rounds = 1;
        while last < 1.0 && rounds < 300 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            last = round(set);
            rounds += 1;
        }
        (first, last, rounds)
    };
    let (a_first, a_last, a_rounds) = until_hot(&a);
    eprintln!("syncd: set A hit ratio {a_first:.2} in the first round, {a_last:.2} after {a_rounds} rounds");
    assert_eq!(a_first, 0.0, "the cache starts empty");
    assert_eq!(a_last, 1.0, "syncd put set A on the edge");
    let (b_first, b_last, b_rounds) = until_hot(&b);
    eprintln!("syncd: demand shifted; set B hit ratio {b_first:.2} in the first round, {b_last:.2} after {b_rounds} rounds");
    assert_eq!(b_first, 0.0, "set B was not on the edge when demand shifted");
    assert_eq!(b_last, 1.0, "syncd moved set B onto the edge");
    // 8 MiB hold eight 1 MiB files: all of B and at most two of A.
    let held_a = a
        .iter()
        .filter(|n| cache_dir.join("acme/set").join(n).exists())
        .count();
    assert!(
        held_a <= 2,
        "the old set was evicted to make room (still held: {held_a})"
    );
    assert!(edge.metric("strata_cache_evictions_total") >= 4.0);
    // syncd's decision is visible while B is in demand (demand decays with a 1 s half-life:
    // keep asking for B until a heartbeat has carried it to /v1/hot).
    let wanted_all_b = |hot: &serde_json::Value| {
        let wanted: Vec<&str> = hot["edges"][0]["wanted"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w[0].as_str())
            .collect();
        b.iter()
            .all(|n| wanted.contains(&format!("acme/set/{n}").as_str()))
    };
    let mut hot = control.op("GET", "/v1/hot", None);
    for _ in 0..50 {
        if wanted_all_b(&hot) {
            break;
        }
        round(&b);
        std::thread::sleep(std::time::Duration::from_millis(100));
        hot = control.op("GET", "/v1/hot", None);
    }
    assert!(wanted_all_b(&hot), "syncd's decision is visible: {hot}");
}

fn a_file_lost_on_the_home_cluster_is_restored_from_the_archive_while_viewers_get_correct_bytes() {
    let Site {
        data,
        control,
        east_root,
        west_root,
        _east,
        west: _west,
    } = site("cp-restore");
    let edge = control.edge(
        &data.path().join("edge"),
        "edge-1",
        &["--cache-capacity", "0", "--telemetry", "off"],
    );
    control.wait_for("edge up", 400, |c| c.is_up("edge-1"));
    let src = source(
        "cp-restore-src",
        &[("video.mp4", 21, 2 << 20), ("audio-en.aac", 22, 300_000)],
    );
    ok(&control.ingest("acme", "lost", src.path(), &[]));
    // The home copy disappears; viewers keep asking.
    let lost = east_root.join("acme/lost/video.mp4");
    std::fs::remove_file(&lost).expect("delete the home copy");
    let want = pattern(21, 2 << 20);
    let mut requests = 0;
    while !lost.exists() && requests < 2000 {
        let r = get(edge.addr, "/acme/lost/video.mp4", &[]);
        assert_eq!(r.status, 200, "served from the replica meanwhile");
        assert!(r.body == want, "correct bytes while the home copy is missing");
        requests += 1;
    }
    control.wait_for("the restore to finish", 400, |c| {
        c.metric("strata_control_work_items") == 0.0
    });
    same_file(&east_root, "acme", "lost", src.path(), "video.mp4");
    assert!(control.metric("strata_control_restores_queued") >= 1.0);
    let r = get(edge.addr, "/acme/lost/video.mp4", &[]);
    assert!(r.status == 200 && r.body == want);
    // The repair command finds a corrupted copy and restores it too.
    std::fs::write(west_root.join("acme/lost/audio-en.aac"), b"garbage").expect("corrupt the replica");
    let out = ok(&control.cli(&["control", "repair", "acme", "lost"]));
    assert!(out.contains("west-1: audio-en.aac"), "{out}");
    control.wait_for("the repair's restore", 400, |c| {
        c.metric("strata_control_work_items") == 0.0
    });
    same_file(&west_root, "acme", "lost", src.path(), "audio-en.aac");
    no_leftovers(&east_root);
    no_leftovers(&west_root);
}

#[test]
fn etcd_down_gives_503_naming_the_registry_and_the_api_recovers_without_a_restart() {
    on_backend(Backend::Etcd, || {
        let data = TempDir::new("cp-etcd-down");
        let mut control = Control::start(&data.path().join("control"), &[]);
        control.tenant("acme", "east", &[], 0);
        let operator = control.operator.clone();
        let registry = control.etcd.as_ref().expect("an etcd registry").url();
        control.etcd.as_mut().expect("an etcd registry").kill(0);
        for path in ["/v1/tenants/acme", "/v1/status"] {
            let (status, body) = control.call("GET", path, Some(&operator), None);
            assert_eq!(status, 503, "GET {path} with etcd down: {body}");
            let message = body["error"].as_str().unwrap_or_default();
            assert!(
                message.contains(&registry) && message.contains("unavailable"),
                "GET {path}: the message names the registry {registry}: {message}"
            );
        }
        let (status, body) = control.call(
            "POST",
            "/v1/tenants",
            Some(&operator),
            Some(&json!({"name": "beta", "home_cluster": "east", "replica_clusters": [], "quota_bytes": 0, "hot_edges": 1})),
        );
        assert_eq!(status, 503, "a write with etcd down: {body}");
        // etcd back: the same process answers again (bounded polling, no restart).
        control.etcd.as_mut().expect("an etcd registry").restart(0);
        control.wait_for_status(
            "the API to answer again after etcd returned",
            100,
            "/v1/tenants/acme",
            200,
        );
        control.op(
            "POST",
            "/v1/tenants",
            Some(&json!({"name": "beta", "home_cluster": "east", "replica_clusters": [], "quota_bytes": 0, "hot_edges": 1})),
        );
        assert_eq!(
            control.op("GET", "/v1/tenants/beta", None)["tenant"]["name"],
            "beta"
        );
    });
}
