//! Scenario (g) written up: per registry backend, the servers one control plane carries, each
//! ramp step's heartbeat latency and rate, and API writes per second (markdown table and
//! console lines).

use std::fmt::Write as _;

use crate::control_capacity::{BackendCapacity, CapacityResult, P99_LIMIT_MS};
use crate::scenarios::{LOAD_CPU, SERVER_CPU};

/// "carries N servers (first over: M)" for one backend.
fn carried(b: &BackendCapacity) -> String {
    match (b.carried, b.exceeded_at) {
        (Some(n), Some(m)) => format!("carries {n} servers (p99 passes 1 s at {m})"),
        (Some(n), None) => format!("carries at least {n} servers (the largest step)"),
        (None, Some(m)) => format!("p99 passes 1 s already at {m} servers"),
        (None, None) => "not measured".into(),
    }
}

pub fn table(s: &mut String, r: &CapacityResult) {
    let _ = writeln!(s, "\n## (g) control-plane capacity per registry backend\n");
    let _ = writeln!(
        s,
        "Simulated servers heartbeat every {} ms at random phases, each on its own keep-alive \
         connection (`bench beat` helpers on CPU {LOAD_CPU}); one in {} is a storage server, the rest \
         are edges whose reports carry {} cached files, demand for {} ingested assets and telemetry \
         for {} client blocks. The control plane (defaults: server TTL 5 s, map every 10 s) and, for \
         etcd, its three members run on CPU {SERVER_CPU}. Steps double the fleet until the p99 of \
         heartbeat latency (from when a beat was due to its answer) passes {:.0} ms or over 1% of \
         beats fail; each step is measured for {:.0} s after {:.0} s of warm-up. Machine cores count \
         everything on the machine (other work included: a busy machine lowers the figures).\n",
        r.interval_ms,
        r.storage_every,
        r.held_per_edge,
        r.demand_per_beat,
        r.blocks_per_edge,
        P99_LIMIT_MS,
        r.measure_seconds,
        r.warmup_seconds
    );
    for b in &r.backends {
        let _ = writeln!(s, "**{}**: {}.\n", b.backend, carried(b));
        if let Some(f) = &b.failure {
            let _ = writeln!(s, "Stopped: {}\n", f.replace('|', "/"));
        }
        if !b.steps.is_empty() {
            let _ = writeln!(
                s,
                "| servers | heartbeats/s | p50 ms | p99 ms | max ms | failed | body bytes (avg) | CPU ms per beat (control + etcd) | cores: control plane, etcd, helpers, machine |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
            for st in &b.steps {
                let _ = writeln!(
                    s,
                    "| {}{} | {:.0} | {:.1} | {:.1} | {:.0} | {} of {} | {:.0} | {:.2} | {:.2}, {:.2}, {:.2}, {:.2} |",
                    st.servers,
                    if st.carried() { "" } else { " (over)" },
                    st.heartbeats_per_sec,
                    st.p50_ms,
                    st.p99_ms,
                    st.max_ms,
                    st.failed,
                    st.due,
                    st.avg_body_bytes,
                    st.cpu_ms_per_beat(),
                    st.control_cores,
                    st.etcd_cores,
                    st.helper_cores,
                    st.machine_cores
                );
            }
            if let Some(e) = b.steps.iter().find_map(|st| st.first_error.as_ref()) {
                let _ = writeln!(s, "\nFirst failed beat: {}", e.replace('|', "/"));
            }
            let _ = writeln!(s);
        }
        for w in &b.writes {
            let latency = if w.p99_ms > 0.0 {
                format!(", p50 {:.1} ms, p99 {:.1} ms", w.p50_ms, w.p99_ms)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "- API writes, {} by {} concurrent clients: **{:.0}/s** ({} writes, {} failed{latency}){}",
                w.what,
                w.writers,
                w.per_sec,
                w.writes,
                w.failed,
                w.first_error
                    .as_ref()
                    .map(|e| format!("; first failure: {}", e.replace('|', "/")))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(s);
    }
}

/// One console line per backend.
pub fn lines(r: &CapacityResult) -> Vec<String> {
    r.backends
        .iter()
        .map(|b| {
            let writes = b
                .writes
                .first()
                .map(|w| format!(", {:.0} API writes/s", w.per_sec))
                .unwrap_or_default();
            match &b.failure {
                Some(f) => format!("{}: failed: {f}", b.backend),
                None => format!("{}: {}{writes}", b.backend, carried(b)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control_capacity::{StepFigures, WriteFigures};

    #[test]
    fn the_line_names_the_last_step_carried_and_the_first_over() {
        let step = |servers, p99_ms| StepFigures {
            servers,
            due: 100,
            p99_ms,
            ..Default::default()
        };
        let r = CapacityResult {
            interval_ms: 1000,
            warmup_seconds: 2.0,
            measure_seconds: 3.0,
            storage_every: 10,
            held_per_edge: 200,
            demand_per_beat: 8,
            blocks_per_edge: 32,
            backends: vec![BackendCapacity {
                backend: "redb".into(),
                steps: vec![step(250, 5.0), step(500, 2000.0)],
                carried: Some(250),
                exceeded_at: Some(500),
                writes: vec![WriteFigures {
                    per_sec: 900.0,
                    ..Default::default()
                }],
                failure: None,
            }],
        };
        assert_eq!(
            lines(&r),
            ["redb: carries 250 servers (p99 passes 1 s at 500), 900 API writes/s"]
        );
        let mut md = String::new();
        table(&mut md, &r);
        assert!(md.contains("| 500 (over) |"), "{md}");
    }
}
