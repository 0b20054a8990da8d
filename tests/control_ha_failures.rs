//! What servers and a highly available control plane do when parts of it fail: storage
//! servers and edges given every instance's URL (`--control A,B`) keep heartbeating and
//! looking up through another instance when theirs is killed; every instance serves the one
//! map the leader solved from all instances' inputs; one etcd member of three down, ingest and
//! heartbeats go on; two down, the API answers 503 naming the registry while edges keep
//! serving cached and proxied content; the two back, the queued ingest resumes and completes.

use serde_json::Value;
use strata_tests::control::Control;
use strata_tests::etcd::TestEtcd;
use strata_tests::*;

fn instance(dir: &std::path::Path, registry: &str, name: &str) -> Control {
    Control::start_on(
        dir,
        registry,
        &[
            "--instance",
            name,
            "--leader-ttl",
            "2s",
            "--map-interval",
            "300ms",
        ],
    )
}

/// `control`'s link flags for `name`, with `--control` naming every instance in `all`.
fn link_to_all(control: &Control, name: &str, all: &[&Control]) -> Vec<String> {
    let mut link = control.link_args(name);
    let at = link
        .iter()
        .position(|a| a == "--control")
        .expect("--control in the link flags");
    link[at + 1] = all.iter().map(|c| c.url()).collect::<Vec<_>>().join(",");
    link
}

fn storage(root: &std::path::Path, cluster: &str, link: &[String]) -> Strata {
    std::fs::create_dir_all(root).expect("storage root");
    let mut args = vec!["--cluster", cluster];
    args.extend(link.iter().map(String::as_str));
    Strata::storage(root, &args)
}

fn edge(cache: &std::path::Path, link: &[String], extra: &[&str]) -> Strata {
    std::fs::create_dir_all(cache).expect("edge cache");
    let mut args: Vec<&str> = link.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    Strata::edge(cache, &args)
}

/// Uploads `files` (name, bytes) as `tenant/content` without waiting for placement.
fn ingest_no_wait(control: &Control, content: &str, files: &[(String, Vec<u8>)]) {
    let src = TempDir::new(&format!("ha-src-{content}"));
    for (name, bytes) in files {
        src.write(name, bytes);
    }
    let out = control.ingest("acme", content, src.path(), &["--no-wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn content_state(control: &Control, content: &str) -> Value {
    control.op("GET", &format!("/v1/tenants/acme/contents/{content}"), None)["record"]["state"].clone()
}

#[test]
fn servers_given_every_instance_fail_over_when_theirs_dies_and_every_instance_serves_one_map() {
    let etcd = TestEtcd::cluster(3);
    let registry = etcd.url();
    let data = TempDir::new("cp-ha-links");
    let dir = data.path().join("control");
    let mut a = instance(&dir, &registry, "cp-a");
    a.wait_for("cp-a to lead", 400, |c| c.leader().as_deref() == Some("cp-a"));
    let b = instance(&dir, &registry, "cp-b");
    b.tenant("acme", "east", &[], 0);
    let east = storage(
        &data.path().join("east"),
        "east",
        &link_to_all(&b, "east-1", &[&a, &b]),
    );
    let edge = edge(
        &data.path().join("cache"),
        &link_to_all(&b, "edge-1", &[&a, &b]),
        &["--region", "east"],
    );
    b.wait_for("both servers up", 400, |x| x.is_up("east-1") && x.is_up("edge-1"));

    // The map: solved by the leader from the edge's heartbeats (sent to cp-a), served by both.
    b.wait_for(
        "cp-b to serve the leader's map with the edge's region",
        400,
        |x| {
            let map = x.op("GET", "/v1/map", None);
            map["regions"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["name"] == "east" && r["servers"][0]["name"] == "edge-1")
            })
        },
    );
    let (from_a, from_b) = (a.op("GET", "/v1/map", None), b.op("GET", "/v1/map", None));
    assert_eq!(
        from_a["version"], from_b["version"],
        "one map: {from_a} / {from_b}"
    );

    // kill -9 the instance both servers talk to first.
    a.crash();
    // Past several server TTLs (1 s): still up, so their heartbeats reached cp-b.
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(b.is_up("east-1") && b.is_up("edge-1"), "{}", b.status());
    b.wait_for("cp-b to lead", 400, |x| x.leader().as_deref() == Some("cp-b"));
    for (who, log) in [("east-1", east.log()), ("edge-1", edge.log())] {
        assert!(
            log.iter().any(|l| l.contains("trying the next one")),
            "{who} says it moved to another instance: {log:?}"
        );
    }
    // Content ingested through the survivor is served through the edge (a lookup via cp-b).
    let bytes = pattern(31, 200_000);
    ingest_no_wait(&b, "after", &[("clip.mp4".into(), bytes.clone())]);
    b.wait_for("the ingest to complete", 1200, |x| {
        content_state(x, "after") == "ready"
    });
    let mut served = get(edge.addr, "/acme/after/clip.mp4", &[]);
    for _ in 0..100 {
        if served.status == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        served = get(edge.addr, "/acme/after/clip.mp4", &[]);
    }
    assert_eq!(served.status, 200, "{}", served.text());
    assert!(served.body == bytes, "the edge serves the exact bytes");
}

#[test]
fn etcd_losing_one_member_changes_nothing_and_losing_quorum_pauses_the_api_not_the_viewers() {
    let mut etcd = TestEtcd::cluster(3);
    let registry = etcd.url();
    let data = TempDir::new("cp-ha-etcd");
    let dir = data.path().join("control");
    let a = instance(&dir, &registry, "cp-a");
    a.wait_for("cp-a to lead", 400, |c| c.leader().as_deref() == Some("cp-a"));
    let b = instance(&dir, &registry, "cp-b");
    a.tenant("acme", "east", &[], 0);
    let east_root = data.path().join("east");
    let _east = storage(&east_root, "east", &link_to_all(&a, "east-1", &[&a, &b]));
    let edge = edge(
        &data.path().join("cache"),
        &link_to_all(&a, "edge-1", &[&a, &b]),
        &[],
    );
    a.wait_for("both servers up", 400, |x| x.is_up("east-1") && x.is_up("edge-1"));
    let cached = pattern(41, 300_000);
    ingest_no_wait(&a, "cached", &[("clip.mp4".into(), cached.clone())]);
    a.wait_for("the first ingest", 1200, |x| {
        content_state(x, "cached") == "ready"
    });
    edge_serves(&edge, "/acme/cached/clip.mp4", &cached);

    // One member of three down (the raft leader, the harder case): everything goes on.
    let first = etcd.wait_leader();
    etcd.kill(first);
    let one_down: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| (format!("seg-{i}.ts"), pattern(500 + i, 100_000)))
        .collect();
    ingest_no_wait(&b, "one-down", &one_down);
    b.wait_for("the ingest with one member down", 1200, |x| {
        content_state(x, "one-down") == "ready"
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        a.is_up("east-1") && a.is_up("edge-1"),
        "heartbeats go on: {}",
        a.status()
    );

    // Queue work, then take a second member down: no quorum.
    let two_down: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| (format!("seg-{i}.ts"), pattern(700 + i, 200_000)))
        .collect();
    ingest_no_wait(&a, "two-down", &two_down);
    let second = (0..3).find(|&i| i != first).expect("another member");
    etcd.kill(second);
    a.wait_for_status("the API to answer 503 without quorum", 400, "/v1/tenants", 503);
    let (status, body) = a.call("GET", "/v1/tenants", Some(&a.operator.clone()), None);
    assert_eq!(status, 503);
    assert!(
        body.to_string().contains("registry"),
        "the 503 names the registry: {body}"
    );
    // Viewers: the cached asset, and one proxied from storage (not cached before).
    edge_serves(&edge, "/acme/cached/clip.mp4", &cached);
    edge_serves(&edge, "/acme/one-down/seg-3.ts", &one_down[3].1);

    // Both members back: the queued ingest resumes and completes; every file is exact.
    etcd.restart(second);
    etcd.restart(first);
    a.wait_for_status("the API to answer again", 600, "/v1/tenants", 200);
    b.wait_for("the queued ingest to complete", 2400, |x| {
        content_state(x, "two-down") == "ready"
    });
    for (name, bytes) in &two_down {
        let placed = std::fs::read(east_root.join("acme/two-down").join(name)).expect("placed");
        assert!(&placed == bytes, "{name} on east-1 is exact");
    }
    a.wait_for("servers up again", 400, |x| {
        x.is_up("east-1") && x.is_up("edge-1")
    });
}

/// GETs `path` through the edge: 200 and exactly `bytes`.
fn edge_serves(edge: &Strata, path: &str, bytes: &[u8]) {
    let r = get(edge.addr, path, &[]);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert!(r.body == bytes, "{path}: the exact bytes");
}
