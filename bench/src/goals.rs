//! The goals for the numbers, checked against a run and stated plainly in the report:
//! each says met or short, with the figures behind it. They are goals, never test assertions.

use crate::map_solve::{MapCase, MapSolveResult, GOAL_SECONDS};
use crate::scenarios::{Results, ServerResult, WorkloadResult};

/// One goal as judged on one run.
pub struct Verdict {
    pub met: bool,
    pub text: String,
}

fn server<'a>(w: &'a WorkloadResult, name: &str) -> Option<&'a ServerResult> {
    w.servers
        .iter()
        .find(|s| s.name == name && s.failure.is_none() && !s.runs.is_empty())
}

fn at_most(label: String, ours: f64, theirs: f64, factor: f64) -> Verdict {
    let ratio = ours / theirs;
    Verdict {
        met: ratio <= factor,
        text: format!("{label}: ×{ratio:.2} (goal ≤ ×{factor:.2}; {ours:.3} vs {theirs:.3})"),
    }
}

fn at_least(label: String, ours: f64, theirs: f64) -> Verdict {
    at_least_by(label, ours, theirs, 1.0)
}

fn at_least_by(label: String, ours: f64, theirs: f64, factor: f64) -> Verdict {
    let ratio = ours / theirs;
    Verdict {
        met: ratio >= factor,
        text: format!("{label}: ×{ratio:.2} (goal ≥ ×{factor:.2}; {ours:.2} vs {theirs:.2})"),
    }
}

/// Small objects: strata's request path must beat nginx's requests/s by this much.
const SMALL_OBJECT_FACTOR: f64 = 1.2;

/// Scenario (c): points of byte hit ratio above an exact LRU of the same capacity.
const LRU_MARGIN: f64 = 0.08;

/// The map solve's median time against its goal.
fn map_solve(m: &MapSolveResult, c: &MapCase) -> Verdict {
    let ms = c.solve_ms.median;
    Verdict {
        met: ms < GOAL_SECONDS * 1000.0,
        text: format!(
            "(e) map solve, {} blocks × {} regions × {} candidates, {}: median {ms:.1} ms per solve (goal < {GOAL_SECONDS:.0} s)",
            m.blocks, m.regions, m.candidates_per_block, c.title
        ),
    }
}

/// The peer a scenario's strata figures are judged against.
fn peer_of(w: &WorkloadResult) -> Option<&ServerResult> {
    match w.scenario.as_str() {
        "a" => server(w, "nginx sendfile"),
        "b" => server(w, "haproxy splice-response"),
        "c" => server(w, "nginx proxy_cache"),
        _ => None,
    }
}

/// Judges every goal the run has figures for (issue 19's table): (a) throughput, server CPU
/// per GB and p99 against nginx, small objects by requests/s ≥ ×1.20; (b) throughput, machine
/// CPU per GB and p99 against HAProxy; (c) byte hit ratio ≥ exact LRU + 8 points and
/// throughput against nginx proxy_cache; (d) idle RSS per connection against nginx.
pub fn judge(r: &Results) -> Vec<Verdict> {
    let mut out = Vec::new();
    for w in &r.workloads {
        let title = format!("{} × {}", w.title, w.connections);
        let Some(p) = peer_of(w) else { continue };
        let pm = &p.summary;
        let strata_servers = w
            .servers
            .iter()
            .filter(|s| s.strata && s.failure.is_none() && !s.runs.is_empty());
        for s in strata_servers {
            let m = &s.summary;
            let label = |what: &str| format!("{title}: {} {what} vs {}", s.name, p.name);
            if w.title.contains("small objects") {
                out.push(at_least_by(
                    label("requests/s"),
                    m.requests_per_sec.median,
                    pm.requests_per_sec.median,
                    SMALL_OBJECT_FACTOR,
                ));
                continue;
            }
            out.push(at_least(
                label("throughput"),
                m.gbit_per_sec.median,
                pm.gbit_per_sec.median,
            ));
            match w.scenario.as_str() {
                "a" => {
                    out.push(at_most(
                        label("server CPU per GB"),
                        m.server_cpu_s_per_gb.median,
                        pm.server_cpu_s_per_gb.median,
                        1.0,
                    ));
                    out.push(at_most(label("p99"), m.p99_ms.median, pm.p99_ms.median, 1.0));
                }
                "b" => {
                    out.push(at_most(
                        label("machine CPU per GB"),
                        m.machine_cpu_s_per_gb.median,
                        pm.machine_cpu_s_per_gb.median,
                        1.0,
                    ));
                    out.push(at_most(label("p99"), m.p99_ms.median, pm.p99_ms.median, 1.0));
                }
                "c" => {
                    if let (Some(ours), Some(lru)) = (&m.byte_hit_ratio, &m.lru_byte_hit_ratio) {
                        out.push(Verdict {
                            met: ours.median >= lru.median + LRU_MARGIN,
                            text: format!(
                                "{title}: {} byte hit ratio {:.2} vs exact LRU {:.2} on the same requests (goal ≥ LRU + {:.2})",
                                s.name, ours.median, lru.median, LRU_MARGIN
                            ),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(m) = &r.map_solve {
        for c in m
            .cases
            .iter()
            .filter(|c| c.failure.is_none() && !c.runs.is_empty())
        {
            out.push(map_solve(m, c));
        }
    }
    let nginx_idle = r
        .idle
        .iter()
        .find(|i| !i.strata && i.failure.is_none() && !i.runs.is_empty());
    for i in r.idle.iter().filter(|i| i.strata && i.failure.is_none()) {
        if let Some(n) = nginx_idle {
            out.push(at_most(
                format!("(d) {} RSS per idle connection (KiB) vs {}", i.name, n.name),
                i.kib_per_connection.median,
                n.kib_per_connection.median,
                1.0,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_against_the_goal_decide_met_or_short() {
        assert!(at_most("x".into(), 0.35, 0.5, 0.7).met);
        assert!(!at_most("x".into(), 0.4, 0.5, 0.7).met);
        let v = at_least("t".into(), 9.0, 10.0);
        assert!(!v.met);
        assert!(v.text.contains("×0.90"), "{}", v.text);
    }

    #[test]
    fn a_map_solve_is_met_under_a_second_and_short_at_or_over_it() {
        let m = MapSolveResult {
            blocks: 10,
            regions: 2,
            candidates_per_block: 1,
            cases: Vec::new(),
        };
        let case = |median: f64| MapCase {
            title: "capacity 90% of load".into(),
            capacity_percent: 90,
            runs: vec![median / 1000.0],
            solve_ms: crate::figures::Spread {
                median,
                min: median,
                max: median,
            },
            carried_share: 0.9,
            blocks_split: 0,
            blocks_short: 0,
            failure: None,
        };
        let met = map_solve(&m, &case(250.0));
        assert!(met.met);
        assert!(met.text.contains("median 250.0 ms"), "{}", met.text);
        assert!(!map_solve(&m, &case(1000.0)).met);
    }
}
