//! Several control-plane instances on one three-member etcd: one leads (`meta/leader` under its
//! lease) and runs the ingestor, every instance serves the API and names the leader in its
//! status; kill -9 the leader and another instance takes over within the lease TTL and
//! finishes the work that was queued before the kill; a leader paused (SIGSTOP) past its lease
//! is deposed and, resumed, steps down instead of leading beside the new one; kill -9 the
//! leader while it places many files and every file still ends on every target, once.

use serde_json::json;
use strata_tests::control::Control;
use strata_tests::etcd::TestEtcd;
use strata_tests::*;

/// Leader lease of the instances under test (failover happens within it).
const LEADER_TTL: &str = "2s";

fn instance(dir: &std::path::Path, registry: &str, name: &str) -> Control {
    Control::start_on(dir, registry, &["--instance", name, "--leader-ttl", LEADER_TTL])
}

/// Instances cp-a (the leader, once it says so), cp-b and cp-c on one registry.
fn three_instances(dir: &std::path::Path, registry: &str) -> (Control, Control, Control) {
    let a = instance(dir, registry, "cp-a");
    a.wait_for("cp-a to lead", 400, |c| c.leader().as_deref() == Some("cp-a"));
    (
        a,
        instance(dir, registry, "cp-b"),
        instance(dir, registry, "cp-c"),
    )
}

#[test]
fn killing_the_leader_moves_leadership_and_the_queued_ingest_completes_on_the_new_leader() {
    let etcd = TestEtcd::cluster(3);
    let registry = etcd.url();
    let data = TempDir::new("cp-ha");
    let dir = data.path().join("control");
    let (mut a, b, c) = three_instances(&dir, &registry);
    for x in [&b, &c] {
        let s = x.status();
        assert_eq!(
            s["control"]["leader"], "cp-a",
            "every instance names the leader: {s}"
        );
        assert_eq!(s["control"]["is_leader"], false, "{s}");
    }
    let out = b.cli(&["control", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("leader cp-a"), "{text}");

    // Queue an ingest whose only target (east-1) is down, so the work waits in the queue.
    b.tenant("acme", "east", &[], 0);
    let east_root = data.path().join("east");
    std::fs::create_dir_all(&east_root).expect("root");
    let east = b.storage(&east_root, "east", "east-1");
    b.wait_for("east-1 up", 400, |x| x.is_up("east-1"));
    east.crash();
    b.wait_for("east-1 down", 400, |x| !x.is_up("east-1"));
    let src = TempDir::new("cp-ha-src");
    src.write("video.mp4", &pattern(7, 1 << 20));
    let out = b.ingest("acme", "show", src.path(), &["--no-wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    b.wait_for("the leader to try east-1", 600, |x| {
        x.status()["work"][0]["waiting"]
            .as_array()
            .is_some_and(|w| !w.is_empty())
    });

    // kill -9 the leader: another instance takes the key when its lease runs out.
    let killed = std::time::Instant::now();
    a.crash();
    b.wait_for("a new leader", 400, |x| {
        matches!(x.leader().as_deref(), Some("cp-b") | Some("cp-c"))
    });
    // Reported, not asserted: the failover time with a 2 s leader lease.
    eprintln!("failover: a new leader {:?} after the kill", killed.elapsed());
    let leader = b.leader().expect("a leader");
    assert_eq!(
        c.leader().as_deref(),
        Some(leader.as_str()),
        "both survivors agree"
    );
    let new = if leader == "cp-b" { &b } else { &c };
    assert_eq!(new.status()["control"]["is_leader"], true);
    assert_eq!(new.metric("strata_control_leader"), 1.0);

    // east-1 returns: the new leader's ingestor finishes the queued work.
    let _east = b.storage(&east_root, "east", "east-1");
    c.wait_for("the queued work to complete", 1200, |x| {
        x.metric("strata_control_work_items") == 0.0
    });
    let placed = std::fs::read(east_root.join("acme/show/video.mp4")).expect("placed on east-1");
    assert!(placed == pattern(7, 1 << 20), "east-1 holds the ingested bytes");
    assert_eq!(
        c.op("GET", "/v1/tenants/acme/contents/show", None)["record"]["state"],
        json!("ready")
    );
}

/// Each file in `dir` with its inode and change time (a file copied again gets new ones).
fn placed_files(dir: &std::path::Path) -> std::collections::BTreeMap<String, (u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    let name = e.file_name().to_string_lossy().into_owned();
                    Some((name, (m.ino(), m.ctime(), m.ctime_nsec())))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sends `signal` to a control-plane instance's process.
fn signal(control: &Control, signal: libc::c_int) {
    let pid = control.process.as_ref().expect("running").pid();
    // SAFETY: kill has no memory-safety preconditions; the pid is our own child.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

#[test]
fn a_leader_paused_past_its_lease_is_deposed_and_steps_down_when_resumed() {
    let etcd = TestEtcd::cluster(3);
    let registry = etcd.url();
    let data = TempDir::new("cp-ha-pause");
    let dir = data.path().join("control");
    let a = instance(&dir, &registry, "cp-a");
    a.wait_for("cp-a to lead", 400, |c| c.leader().as_deref() == Some("cp-a"));
    let b = instance(&dir, &registry, "cp-b");
    signal(&a, libc::SIGSTOP);
    b.wait_for("cp-b to take over from the paused leader", 400, |x| {
        x.leader().as_deref() == Some("cp-b")
    });
    signal(&a, libc::SIGCONT);
    a.wait_for("cp-a to step down", 400, |x| {
        x.status()["control"]["is_leader"] == false
    });
    assert_eq!(
        a.leader().as_deref(),
        Some("cp-b"),
        "the resumed instance names the new leader"
    );
    assert_eq!(b.status()["control"]["is_leader"], true);
}

#[test]
fn killing_the_leader_mid_ingest_of_many_files_leaves_every_file_everywhere_once() {
    let etcd = TestEtcd::cluster(3);
    let registry = etcd.url();
    let data = TempDir::new("cp-ha-many");
    let dir = data.path().join("control");
    let (mut a, b, c) = three_instances(&dir, &registry);
    b.tenant("acme", "east", &["west"], 0);
    let (east_root, west_root) = (data.path().join("east"), data.path().join("west"));
    for d in [&east_root, &west_root] {
        std::fs::create_dir_all(d).expect("root");
    }
    let _east = b.storage(&east_root, "east", "east-1");
    let _west = c.storage(&west_root, "west", "west-1");
    b.wait_for("storage up", 400, |x| x.is_up("east-1") && x.is_up("west-1"));
    let src = TempDir::new("cp-ha-many-src");
    let files: Vec<String> = (0..40).map(|i| format!("seg-{i:03}.ts")).collect();
    for (i, f) in files.iter().enumerate() {
        src.write(f, &pattern(100 + i as u64, 300_000));
    }
    let out = b.ingest("acme", "many", src.path(), &["--no-wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // kill -9 the leader while it places: once the first bytes reached east-1.
    let started = |root: &std::path::Path| {
        ["acme/many", ".strata-put"]
            .iter()
            .any(|d| std::fs::read_dir(root.join(d)).is_ok_and(|mut entries| entries.next().is_some()))
    };
    b.wait_for("the leader to start placing", 1200, |_| started(&east_root));
    a.crash();
    let before = placed_files(&east_root.join("acme/many"));
    let s = b.status();
    eprintln!(
        "at the kill: {} file(s) on east-1, {} item(s) queued, {}/{} targets done",
        before.len(),
        s["work"].as_array().map_or(0, Vec::len),
        s["work"][0]["targets_done"],
        s["work"][0]["targets"]
    );
    b.wait_for("a new leader", 400, |x| {
        matches!(x.leader().as_deref(), Some("cp-b") | Some("cp-c"))
    });
    c.wait_for("the work to complete", 1200, |x| {
        x.metric("strata_control_work_items") == 0.0
    });
    let shown = c.op("GET", "/v1/tenants/acme/contents/many", None);
    assert_eq!(shown["record"]["state"], "ready", "{shown}");
    assert_eq!(shown["record"]["placed"], json!(["archive", "east-1", "west-1"]));
    // Files the dead leader finished were not copied again (same inode and change time).
    let after = placed_files(&east_root.join("acme/many"));
    for (name, id) in &before {
        assert_eq!(
            after.get(name),
            Some(id),
            "{name} placed before the kill was copied again"
        );
    }
    let archive = dir.join("archive");
    for root in [&east_root, &west_root, &archive] {
        for (i, f) in files.iter().enumerate() {
            let placed = std::fs::read(root.join("acme/many").join(f))
                .unwrap_or_else(|e| panic!("{} in {}: {e}", f, root.display()));
            assert!(
                placed == pattern(100 + i as u64, 300_000),
                "{f} in {}",
                root.display()
            );
        }
        let put = root.join(".strata-put");
        let left: Vec<_> = std::fs::read_dir(&put)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "leftover partial placements: {left:?}");
    }
}
