//! `bench run --quick --no-peers` against the real strata binary: the report files exist and
//! hold plausible figures (every workload moved checksummed bytes without an error, the idle
//! scenario reached its levels, the map solve timed both its cases, the nameserver answered
//! dnsperf's queries, the control plane took heartbeats and API writes on each registry backend
//! it could start, the plots are PNGs). No speed is asserted. Scenario (f) needs dnsperf
//! (its load generator, installed by `cargo xtask bench`); where it is missing the run leaves
//! (f) out and says so.

use std::process::Command;

use strata_tests::{kernel_features_or_skip, strata_bin, TempDir};

fn number(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number: {at}"))
}

#[test]
fn quick_run_against_strata_alone_writes_a_plausible_report_and_plots() {
    if !kernel_features_or_skip("quick_run_against_strata_alone_writes_a_plausible_report_and_plots") {
        return;
    }
    let out = TempDir::new("bench-quick");
    let dnsperf = dnsperf_installed();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bench"));
    cmd.args(["run", "--quick", "--no-peers", "--out"])
        .arg(out.path())
        .arg("--strata")
        .arg(strata_bin());
    if !dnsperf {
        eprintln!("dnsperf is not installed: scenario (f) left out (apt-get install dnsperf)");
        cmd.args(["--only", "a,b,c,d,e,g,h,i,j"]);
    }
    let status = cmd.status().expect("start bench");
    assert!(status.success(), "bench run --quick failed: {status}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).expect("report.json"))
            .expect("valid JSON");
    assert_eq!(json["quick"], true);
    assert!(json["machine"]["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(number(&json, &["results", "limit", "gbit_per_sec", "median"]) > 0.0);

    let workloads = json["results"]["workloads"].as_array().expect("workloads");
    let scenarios: Vec<&str> = workloads.iter().filter_map(|w| w["scenario"].as_str()).collect();
    for s in ["a", "b", "c", "j"] {
        assert!(scenarios.contains(&s), "scenario {s} missing: {scenarios:?}");
    }
    let mut proxy_modes = Vec::new();
    for w in workloads {
        for server in w["servers"].as_array().expect("servers") {
            let name = server["name"].as_str().expect("name");
            assert!(
                server["failure"].is_null(),
                "{name} failed: {}",
                server["failure"]
            );
            assert_eq!(server["strata"], true, "only strata runs with --no-peers");
            let run = &server["runs"][0];
            assert!(number(run, &["requests"]) > 0.0, "{name}: no request answered");
            assert_eq!(number(run, &["errors"]), 0.0, "{name}: {}", run["first_error"]);
            assert!(number(run, &["checksummed"]) > 0.0, "{name}: no body checksummed");
            for figure in [
                "gbit_per_sec",
                "p99_ms",
                "server_cpu_s_per_gb",
                "machine_cpu_s_per_gb",
                "peak_rss_mib",
            ] {
                assert!(number(run, &[figure]) > 0.0, "{name}: {figure} is not positive");
            }
            if w["scenario"] == "b" {
                proxy_modes.push(name.to_string());
            }
            if w["scenario"] == "c" {
                let hit = number(run, &["byte_hit_ratio"]);
                assert!((0.0..=1.0).contains(&hit), "{name}: byte hit ratio {hit}");
            }
        }
    }
    // Loopback, then the origin behind a veth pair in its own namespace.
    assert_eq!(
        proxy_modes,
        ["strata auto", "strata sockmap", "strata splice", "strata copy"].repeat(2)
    );

    let idle = &json["results"]["idle"][0];
    assert_eq!(idle["name"], "strata");
    let levels = idle["runs"][0]["levels"].as_array().expect("idle levels");
    assert_eq!(
        levels
            .iter()
            .map(|l| number(l, &["connections"]))
            .collect::<Vec<_>>(),
        [0.0, 500.0, 1000.0, 2000.0]
    );
    assert!(levels.iter().all(|l| number(l, &["rss_kib"]) > 0.0));
    assert!(number(idle, &["kib_per_connection", "median"]).is_finite());

    let cases = json["results"]["map_solve"]["cases"]
        .as_array()
        .expect("map solve cases");
    assert_eq!(cases.len(), 2, "{cases:?}");
    for case in cases {
        assert!(case["failure"].is_null(), "map solve failed: {}", case["failure"]);
        assert!(number(case, &["solve_ms", "median"]) > 0.0);
        let carried = number(case, &["carried_share"]);
        assert!(carried > 0.0 && carried <= 1.0, "carried share {carried}");
    }

    if dnsperf {
        check_dns(&json["results"]["dns"]);
    }
    check_capacity(&json["results"]["control_capacity"]);
    check_director(&json["results"]["director"]);

    let md = std::fs::read_to_string(out.path().join("report.md")).expect("report.md");
    assert_eq!(md.contains("## (f) DNS"), dnsperf, "{md}");
    assert!(
        md.contains("## (a) local hit")
            && md.contains("## (d) idle keep-alive connections")
            && md.contains("## (e) map solve")
            && md.contains("## (g) control-plane capacity"),
        "{md}"
    );
    assert!(md.contains("of the limit"), "{md}");
    for png in ["throughput.png", "p99.png", "idle_rss.png"] {
        let bytes = std::fs::read(out.path().join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 4096,
            "{png} is not a plot"
        );
    }
}

/// Scenario (g): on redb (and on etcd where it is installed) the first step's heartbeats were
/// answered and API writes went through.
fn check_capacity(g: &serde_json::Value) {
    let backends = g["backends"].as_array().expect("control capacity backends");
    assert_eq!(backends.len(), 2, "{backends:?}");
    let etcd = Command::new("etcd").arg("--version").output().is_ok();
    for b in backends
        .iter()
        .filter(|b| etcd || !b["backend"].as_str().unwrap_or("").starts_with("etcd"))
    {
        assert!(b["failure"].is_null(), "{}: {}", b["backend"], b["failure"]);
        let first = &b["steps"][0];
        assert!(
            number(first, &["answered"]) > 0.0,
            "no heartbeat answered: {first}"
        );
        assert!(number(first, &["p50_ms"]) > 0.0);
        assert!(number(&b["writes"][0], &["per_sec"]) > 0.0, "no API write: {b}");
    }
}

/// Scenario (h): both setups ran without a viewer error; with the director on, bytes moved
/// between the edges.
fn check_director(d: &serde_json::Value) {
    let modes = d["modes"].as_array().expect("director modes");
    assert_eq!(modes.len(), 2, "director off and on: {d}");
    for m in modes {
        assert!(m["failure"].is_null(), "{}: {}", m["name"], m["failure"]);
        let run = &m["runs"][0];
        assert!(
            number(run, &["viewer_bytes"]) > 0.0,
            "{}: nothing served",
            m["name"]
        );
        assert_eq!(number(run, &["errors"]), 0.0, "{}: viewer errors", m["name"]);
    }
    assert_eq!(
        number(&modes[0]["runs"][0], &["peer_bytes"]),
        0.0,
        "director off: no peer bytes"
    );
    assert!(
        number(&modes[1]["runs"][0], &["peer_bytes"]) > 0.0,
        "director on: bytes between edges"
    );
}

fn dnsperf_installed() -> bool {
    Command::new("dnsperf").arg("-h").output().is_ok()
}

/// Scenario (f) with strata alone: its nameserver answered every kind of query in the mix.
fn check_dns(dns: &serde_json::Value) {
    let servers = dns["servers"].as_array().expect("dns servers");
    assert_eq!(servers.len(), 1, "only strata runs with --no-peers: {servers:?}");
    let s = &servers[0];
    assert_eq!(s["name"], "strata dns");
    assert!(s["failure"].is_null(), "strata dns failed: {}", s["failure"]);
    assert!(dns["zone_records"].is_null(), "no peer zone without peers");
    assert_eq!(number(dns, &["heartbeat_failures"]), 0.0);
    let run = &s["runs"][0];
    assert!(number(run, &["completed"]) > 0.0, "no query answered");
    assert_eq!(number(run, &["not_noerror"]), 0.0, "answers other than NOERROR");
    // An SRV answer of the test map (four regions, their edges as glue) is far above 100 bytes.
    assert!(
        number(run, &["avg_response_bytes"]) > 100.0,
        "answers without records: {run}"
    );
    for figure in ["queries_per_sec", "server_cpu_us_per_query", "avg_latency_ms"] {
        assert!(number(run, &[figure]) > 0.0, "{figure} is not positive");
    }
}
