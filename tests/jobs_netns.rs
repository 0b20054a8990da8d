//! Distribution jobs across real links: a storage server and edges, each in a network namespace
//! of its own behind one bridge. Pins: a 64 MiB content reaches 12 edges byte-exact while the
//! storage server, its link shaped with tbf, sends at most `fanout` copies and the job beats
//! what storage alone would need at that rate; a receiver of a slow source switches to a faster
//! one at an offset past zero and ends byte-exact; a job survives kill -9 of the control plane.

use serde_json::Value;
use strata_tests::jobs::{file_sha, request, JobNet};
use strata_tests::*;

const MIB: usize = 1 << 20;

fn events_of(job: &Value, target: &str) -> Vec<Value> {
    job["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["target"] == target)
        .cloned()
        .collect()
}

#[test]
fn a_64_mib_content_cascades_to_12_edges_with_storage_sending_at_most_fanout_copies() {
    if !kernel_features_or_skip("jobs_cascade") {
        return;
    }
    let net = JobNet::new("jobs-cascade", 12);
    let bytes = pattern(16, 64 * MIB);
    let sha = sha256_hex(&bytes);
    net.ingest("premiere", &[("video-1080p.mp4", &bytes)]);
    // The storage server's link: 200 Mbit/s (tbf), everything it sends.
    let rate_bits: u64 = 200_000_000;
    net.shape_upload(0, "200mbit");
    let before = net.storage_egress();
    let fanout = 2u64;
    let id = net.create(&request("premiere", "all-edges", fanout as u32));
    let job = net.wait_end(&id, 3000);
    assert_eq!(job["state"], "done", "every target done: {job:#}");
    let took_ms =
        job["finished_ms"].as_u64().expect("finished") - job["created_ms"].as_u64().expect("created");
    let egress = net.storage_egress() - before;
    let size = bytes.len() as u64;
    for i in 1..=12 {
        let copy = net.cache(i).join("acme/premiere/video-1080p.mp4");
        assert_eq!(file_sha(&copy).as_deref(), Some(sha.as_str()), "edge-{i}'s copy");
    }
    let from_peers = job["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| t["from_storage"] == false)
        .count();
    // Storage alone: 12 copies through the shaped link.
    let alone_ms = 12 * size * 8 * 1000 / rate_bits;
    eprintln!(
        "JOB RESULT: 12 edges x {} MiB in {took_ms} ms (storage alone at 200 Mbit/s: {alone_ms} ms); storage sent {egress} bytes = {:.2} x size; {from_peers} targets fed by peers",
        size >> 20,
        egress as f64 / size as f64
    );
    assert!(
        egress <= fanout * size,
        "storage sent {egress} bytes, more than fanout {fanout} x {size}"
    );
    assert!(
        from_peers >= 10,
        "at most fanout targets from storage, the rest from peers: {job:#}"
    );
    assert!(
        took_ms < alone_ms,
        "the cascade took {took_ms} ms, storage alone would take {alone_ms} ms"
    );
}

#[test]
fn a_receiver_of_a_slow_source_switches_to_a_faster_one_at_its_offset_and_the_bytes_are_exact() {
    if !kernel_features_or_skip("jobs_switch") {
        return;
    }
    let net = JobNet::new("jobs-switch", 3);
    let bytes = pattern(17, 24 * MIB);
    let sha = sha256_hex(&bytes);
    net.ingest("show", &[("video-720p.mp4", &bytes)]);
    // edge-1 receives fast but sends slowly; edge-2 receives at a moderate rate, sends fast.
    net.shape_upload(1, "16mbit");
    net.lan.shape_download(2, "100mbit");
    let id = net.create(&request("show", "edge-1,edge-2,edge-3", 2));
    let job = net.wait_end(&id, 1500);
    assert_eq!(job["state"], "done", "{job:#}");
    let copy = net.cache(3).join("acme/show/video-720p.mp4");
    assert_eq!(file_sha(&copy).as_deref(), Some(sha.as_str()), "edge-3's copy");
    // The event log (SSE reads the same log) shows edge-3 leaving edge-1 for edge-2 mid-way.
    let record = net.control.op("GET", &format!("/v1/jobs/{id}/log"), None);
    let events = events_of(&record, "edge-3");
    let switch = events
        .iter()
        .find(|e| e["state"] == "switched")
        .unwrap_or_else(|| panic!("edge-3 never switched: {events:#?}"));
    assert_eq!(switch["source"], "edge-2", "{switch}");
    let at = switch["offset"].as_u64().expect("offset");
    assert!(at > 0 && at < bytes.len() as u64, "switched at offset {at}");
    let first = events
        .iter()
        .find(|e| e["state"] == "transferring")
        .expect("a transferring event");
    assert_eq!(
        first["source"], "edge-1",
        "edge-3 started from edge-1: {events:#?}"
    );
    eprintln!("SWITCH RESULT: edge-3 switched from edge-1 to edge-2 at byte {at}");
}

#[test]
fn a_job_completes_after_the_control_plane_is_killed_mid_transfer() {
    if !kernel_features_or_skip("jobs_control_crash") {
        return;
    }
    let mut net = JobNet::new("jobs-crash", 3);
    let bytes = pattern(18, 32 * MIB);
    let sha = sha256_hex(&bytes);
    net.ingest("show", &[("video-720p.mp4", &bytes)]);
    net.shape_upload(0, "40mbit");
    let id = net.create(&request("show", "all-edges", 1));
    net.wait_job(&id, "a transfer under way", 600, |v| {
        v["targets"].as_array().is_some_and(|t| {
            t.iter()
                .any(|t| t["state"] == "transferring" && t["offset"].as_u64() > Some(0))
        })
    });
    net.control.crash();
    std::thread::sleep(std::time::Duration::from_millis(500));
    net.control.restart();
    let job = net.wait_end(&id, 3000);
    assert_eq!(job["state"], "done", "{job:#}");
    for i in 1..=3 {
        let copy = net.cache(i).join("acme/show/video-720p.mp4");
        assert_eq!(file_sha(&copy).as_deref(), Some(sha.as_str()), "edge-{i}'s copy");
    }
    // Each target counted done once for its fetch.
    let record = net.control.op("GET", &format!("/v1/jobs/{id}/log"), None);
    for name in ["edge-1", "edge-2", "edge-3"] {
        let dones = events_of(&record, name)
            .iter()
            .filter(|e| e["state"] == "done")
            .count();
        assert_eq!(dones, 1, "{name} done once");
    }
}

#[test]
fn a_target_killed_mid_transfer_times_out_and_after_restart_and_repair_ends_done() {
    if !kernel_features_or_skip("jobs_target_crash") {
        return;
    }
    let mut net = JobNet::new("jobs-target", 2);
    let bytes = pattern(19, 32 * MIB);
    let sha = sha256_hex(&bytes);
    net.ingest("show", &[("video-720p.mp4", &bytes)]);
    net.shape_upload(0, "40mbit");
    let id = net.create(&request("show", "all-edges", 2));
    net.wait_job(&id, "edge-2 under way", 600, |v| {
        v["targets"].as_array().is_some_and(|t| {
            t.iter().any(|t| {
                t["server"] == "edge-2" && t["state"] == "transferring" && t["offset"].as_u64() > Some(0)
            })
        })
    });
    net.edges[1].take().expect("edge-2 runs").crash();
    let job = net.wait_end(&id, 1500);
    let target = |job: &Value, name: &str| {
        job["targets"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["server"] == name).cloned())
            .expect("target")
    };
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(target(&job, "edge-2")["state"], "timed_out", "{job:#}");
    assert_eq!(target(&job, "edge-1")["state"], "done", "{job:#}");
    net.start_edge(2);
    net.control.wait_for("edge-2 back", 200, |c| c.is_up("edge-2"));
    let out = net.control.cli(&["job", "repair", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let job = net.wait_end(&id, 1500);
    assert_eq!(job["state"], "done", "{job:#}");
    for i in 1..=2 {
        let copy = net.cache(i).join("acme/show/video-720p.mp4");
        assert_eq!(file_sha(&copy).as_deref(), Some(sha.as_str()), "edge-{i}'s copy");
    }
    // edge-1 was re-verified locally, not sent again.
    assert_eq!(target(&job, "edge-1")["source"], "local", "{job:#}");
}
