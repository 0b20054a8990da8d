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
    let ratio = ours / theirs;
    Verdict {
        met: ratio >= 1.0,
        text: format!("{label}: ×{ratio:.2} (goal ≥ ×1.00; {ours:.2} vs {theirs:.2})"),
    }
}

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

/// Judges every goal the run has figures for.
pub fn judge(r: &Results) -> Vec<Verdict> {
    let mut out = Vec::new();
    for w in &r.workloads {
        let title = format!("{} × {}", w.title, w.connections);
        let strata_servers = w
            .servers
            .iter()
            .filter(|s| s.strata && s.failure.is_none() && !s.runs.is_empty());
        for s in strata_servers {
            let m = &s.summary;
            let peers: Vec<&ServerResult> = match w.scenario.as_str() {
                "a" => server(w, "nginx sendfile").into_iter().collect(),
                "b" => ["haproxy splice-response", "nginx proxy_pass"]
                    .iter()
                    .filter_map(|n| server(w, n))
                    .collect(),
                _ => Vec::new(),
            };
            for p in &peers {
                let label = |what: &str| format!("{title}: {} {what} vs {}", s.name, p.name);
                let pm = &p.summary;
                match (w.scenario.as_str(), p.name.as_str()) {
                    ("a", _) => out.push(at_most(
                        label("server CPU per GB"),
                        m.server_cpu_s_per_gb.median,
                        pm.server_cpu_s_per_gb.median,
                        0.8,
                    )),
                    ("b", "haproxy splice-response") => out.push(at_most(
                        label("machine CPU per GB"),
                        m.machine_cpu_s_per_gb.median,
                        pm.machine_cpu_s_per_gb.median,
                        0.7,
                    )),
                    ("b", _) => out.push(at_most(
                        label("machine CPU per GB"),
                        m.machine_cpu_s_per_gb.median,
                        pm.machine_cpu_s_per_gb.median,
                        0.5,
                    )),
                    _ => {}
                }
            }
            if let Some(best) = peers.iter().max_by(|a, b| {
                a.summary
                    .gbit_per_sec
                    .median
                    .total_cmp(&b.summary.gbit_per_sec.median)
            }) {
                out.push(at_least(
                    format!("{title}: {} throughput vs {}", s.name, best.name),
                    m.gbit_per_sec.median,
                    best.summary.gbit_per_sec.median,
                ));
            }
            if w.connections == 64 {
                if let Some(best) = peers
                    .iter()
                    .min_by(|a, b| a.summary.p99_ms.median.total_cmp(&b.summary.p99_ms.median))
                {
                    out.push(at_most(
                        format!("{title}: {} p99 vs {}", s.name, best.name),
                        m.p99_ms.median,
                        best.summary.p99_ms.median,
                        1.0,
                    ));
                }
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
    for i in r.idle.iter().filter(|i| i.strata && i.failure.is_none()) {
        let kib = i.kib_per_connection.median;
        out.push(Verdict {
            met: kib <= 0.5,
            text: format!(
                "(d) {} RSS per idle connection: {kib:.3} KiB (goal ≤ 0.5 KiB)",
                i.name
            ),
        });
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
