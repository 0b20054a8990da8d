//! syncd: keeps each edge's hot working set on the edge. Edges report per-asset requests with
//! every heartbeat; syncd keeps an exponentially decaying demand score per edge and asset
//! (half-life configurable), ranks the assets, and answers with the set the edge should hold:
//! the most demanded assets while they fit in 90% of
//! the edge's capacity (the rest stays free for admissions). The edge fills what it lacks and
//! makes room by evicting its least-recently-used files. Operator evictions ride the same reply.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use strata_wire::heartbeat::EdgeReport;

/// Share of an edge's capacity syncd fills.
const FILL_SHARE: f64 = 0.9;
/// Scores below this are forgotten.
const FORGET_BELOW: f64 = 0.05;

/// One ranked asset as `/v1/hot` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Ranked {
    pub path: String,
    pub score: f64,
    pub size: Option<u64>,
    pub held: bool,
    pub wanted: bool,
}

/// One edge as syncd sees it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EdgeView {
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub held_files: usize,
    pub open_connections: u64,
    pub hits: u64,
    pub misses: u64,
    /// Assets the edge was told to hold and did not yet (fills asked for), since start.
    pub pushes: u64,
    pub wanted: Vec<(String, u64)>,
    pub ranking: Vec<Ranked>,
    #[serde(skip)]
    scores: HashMap<String, f64>,
    #[serde(skip)]
    held: HashSet<String>,
    #[serde(skip)]
    evict: Vec<String>,
    /// Sizes of registered assets already looked up (an ingested asset never changes size).
    #[serde(skip)]
    sizes: HashMap<String, u64>,
    #[serde(skip)]
    last: Option<Instant>,
}

/// The sync daemon's state.
pub struct Syncd {
    half_life: Duration,
    /// Least decayed requests before an asset is pushed.
    min_score: f64,
    edges: Mutex<HashMap<String, EdgeView>>,
}

impl Syncd {
    pub fn new(half_life: Duration, min_score: f64) -> Syncd {
        Syncd {
            half_life,
            min_score,
            edges: Mutex::new(HashMap::new()),
        }
    }

    /// Takes an edge's report; answers the set it should hold and what to evict now.
    /// `size_of` gives a registered asset's size (None: unknown, never pushed). Content flagged
    /// hot is not syncd's: it goes out as a distribution job and is pinned on its edges.
    pub fn on_report(
        &self,
        edge: &str,
        report: &EdgeReport,
        size_of: &dyn Fn(&str) -> Option<u64>,
    ) -> (Vec<(String, u64)>, Vec<String>) {
        let mut edges = self.edges.lock().unwrap_or_else(|p| p.into_inner());
        let view = edges.entry(edge.to_string()).or_default();
        let now = Instant::now();
        if let Some(last) = view.last {
            let halvings = now.duration_since(last).as_secs_f64() / self.half_life.as_secs_f64().max(0.001);
            let factor = 0.5f64.powf(halvings);
            view.scores.retain(|_, s| {
                *s *= factor;
                *s >= FORGET_BELOW
            });
            let scores = &view.scores;
            view.sizes.retain(|p, _| scores.contains_key(p));
        }
        view.last = Some(now);
        for d in &report.demand {
            *view.scores.entry(d.path.clone()).or_default() += d.requests as f64;
        }
        view.capacity_bytes = report.capacity_bytes;
        view.used_bytes = report.used_bytes;
        view.held_files = report.held.len();
        view.open_connections = report.open_connections;
        view.hits = report.hits;
        view.misses = report.misses;
        view.held = report.held.iter().map(|(p, _)| p.clone()).collect();

        let budget = (report.capacity_bytes as f64 * FILL_SHARE) as u64;
        let mut wanted: Vec<(String, u64)> = Vec::new();
        let mut used = 0u64;
        let mut ranked: Vec<(String, f64)> = view.scores.iter().map(|(p, s)| (p.clone(), *s)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut ranking = Vec::new();
        for (path, score) in ranked {
            let size = match view.sizes.get(&path) {
                Some(known) => Some(*known),
                None => {
                    let found = size_of(&path);
                    if let Some(n) = found {
                        view.sizes.insert(path.clone(), n);
                    }
                    found
                }
            };
            let mut take = false;
            if let Some(size) = size {
                if score >= self.min_score && used + size <= budget && !wanted.iter().any(|(p, _)| p == &path)
                {
                    used += size;
                    take = true;
                    wanted.push((path.clone(), size));
                }
            }
            if ranking.len() < 50 {
                ranking.push(Ranked {
                    held: view.held.contains(&path),
                    wanted: take || wanted.iter().any(|(p, _)| p == &path),
                    path,
                    score: (score * 100.0).round() / 100.0,
                    size,
                });
            }
        }
        view.pushes += wanted.iter().filter(|(p, _)| !view.held.contains(p)).count() as u64;
        view.ranking = ranking;
        view.wanted = wanted.clone();
        let evict = std::mem::take(&mut view.evict);
        (wanted, evict)
    }

    /// Asks every edge to drop `paths` with its next heartbeat and forgets their demand.
    pub fn evict(&self, paths: &[String]) {
        let mut edges = self.edges.lock().unwrap_or_else(|p| p.into_inner());
        for view in edges.values_mut() {
            for p in paths {
                view.scores.remove(p);
            }
            view.evict.extend(paths.iter().cloned());
        }
    }

    /// Edges that hold `path` per their last report.
    pub fn holders(&self, path: &str) -> Vec<String> {
        let edges = self.edges.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<String> = edges
            .iter()
            .filter(|(_, v)| v.held.contains(path))
            .map(|(n, _)| n.clone())
            .collect();
        out.sort();
        out
    }

    /// Free cache bytes of an edge per its last report.
    pub fn free_bytes(&self, edge: &str) -> u64 {
        let edges = self.edges.lock().unwrap_or_else(|p| p.into_inner());
        edges
            .get(edge)
            .map_or(0, |v| v.capacity_bytes.saturating_sub(v.used_bytes))
    }

    /// Every edge's view (status, /v1/hot).
    pub fn views(&self) -> Vec<(String, EdgeView)> {
        let edges = self.edges.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = edges.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Total pushes (fills asked of edges) since start.
    pub fn pushes(&self) -> u64 {
        let edges = self.edges.lock().unwrap_or_else(|p| p.into_inner());
        edges.values().map(|v| v.pushes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_wire::heartbeat::AssetDemand;

    fn report(capacity: u64, held: &[&str], demand: &[(&str, u64)]) -> EdgeReport {
        EdgeReport {
            capacity_bytes: capacity,
            held: held.iter().map(|p| (p.to_string(), 10)).collect(),
            demand: demand
                .iter()
                .map(|(p, n)| AssetDemand {
                    path: p.to_string(),
                    requests: *n,
                    bytes: 0,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_most_demanded_assets_that_fit_are_wanted_and_old_demand_fades() {
        let s = Syncd::new(Duration::from_millis(50), 2.0);
        let size = |_: &str| Some(10);
        let (w, _) = s.on_report(
            "e",
            &report(35, &[], &[("a", 5), ("b", 9), ("c", 3), ("d", 1)]),
            &size,
        );
        let names: Vec<_> = w.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            ["b", "a", "c"],
            "ranked by demand, d below the minimum; 3 × 10 ≤ 31.5"
        );
        std::thread::sleep(Duration::from_millis(400));
        let (w, _) = s.on_report("e", &report(35, &["a", "b", "c"], &[("x", 4), ("y", 4)]), &size);
        let names: Vec<_> = w.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["x", "y"], "eight half-lives later the old set has faded");
    }

    #[test]
    fn the_budget_takes_the_most_demanded_and_evictions_are_delivered_once() {
        let s = Syncd::new(Duration::from_secs(60), 1.0);
        let size = |_: &str| Some(10);
        let (w, _) = s.on_report("e", &report(25, &[], &[("a", 9), ("b", 8), ("c", 7)]), &size);
        assert_eq!(w.len(), 2, "22.5 bytes of budget: a and b");
        assert_eq!(w[0].0, "a");
        s.evict(&["a".to_string()]);
        let (_, ev) = s.on_report("e", &report(25, &[], &[]), &size);
        assert_eq!(ev, ["a"]);
        let (w, ev) = s.on_report("e", &report(25, &[], &[]), &size);
        assert!(ev.is_empty());
        assert!(!w.iter().any(|(p, _)| p == "a"), "evicted demand is forgotten");
    }
}
