//! The cheapest path from the source to the sink in the compressed residual graph (the
//! primal-dual method): Dijkstra over the region nodes with node potentials (Johnson's reduced
//! costs), so the negative move costs never matter; then, until none is left, paths made only
//! of edges of reduced cost 0, found by depth-first search, before the next Dijkstra.
//!
//! Potentials: the source's is 0, each region and the sink has one; an edge u → v of cost c has
//! reduced cost c + p(u) − p(v), which stays ≥ 0 on every residual edge. After a search with
//! sink distance D, every node's potential grows by min(its distance, D) (unreached nodes: D);
//! this keeps every reduced cost ≥ 0 and makes each edge of the path found exactly 0, so the
//! reverse edges an augmentation creates are 0 too. A path of reduced cost 0 is therefore
//! always a cheapest one, whichever search found it.
//!
//! The graph is dense (an edge per pair of regions) and small, so Dijkstra finds its next node
//! by a scan rather than a heap. In the depth-first search, a region from which the sink could
//! not be reached stays out until the next Dijkstra: augmenting only adds edges between regions
//! of the path it took, so it cannot give such a region a way out.

use crate::region_graph::{Hop, Residual, NO_MOVE};

const UNREACHED: i128 = i128::MAX;

/// Potentials and scratch space carried from one search to the next.
pub struct PathFinder {
    potential: Vec<i128>,
    sink_potential: i128,
    dist: Vec<i128>,
    done: Vec<bool>,
    via: Vec<Option<Hop>>,
    /// Regions the depth-first search found no way to the sink from, since the last Dijkstra.
    dead: Vec<bool>,
    /// Regions the current depth-first search has entered.
    seen: Vec<bool>,
}

impl PathFinder {
    /// For a graph with `regions` region nodes and no flow yet (all costs ≥ 0, potentials 0).
    pub fn new(regions: usize) -> PathFinder {
        PathFinder {
            potential: vec![0; regions],
            sink_potential: 0,
            dist: vec![UNREACHED; regions],
            done: vec![false; regions],
            via: vec![None; regions],
            dead: vec![false; regions],
            seen: vec![false; regions],
        }
    }

    /// A cheapest path from the source to a region with room left, or `None` when the sink
    /// cannot be reached (the flow is maximum).
    pub fn next_path(&mut self, g: &Residual<'_>) -> Option<Vec<Hop>> {
        self.tight_path(g).or_else(|| self.dijkstra(g))
    }

    /// A path of reduced cost 0 under the current potentials, by depth-first search.
    fn tight_path(&mut self, g: &Residual<'_>) -> Option<Vec<Hop>> {
        let n = g.regions();
        self.seen.fill(false);
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in 0..n {
            if self.dead[root] || self.seen[root] {
                continue;
            }
            let Some((cost, arc)) = g.cheapest_entry(root) else {
                continue;
            };
            if i128::from(cost) != self.potential[root] {
                continue;
            }
            self.via[root] = Some(Hop::Enter { arc });
            self.seen[root] = true;
            if self.exit_is_tight(g, root) {
                return self.path_to(g, root);
            }
            // (region, next region to try from it)
            stack.push((root, 0));
            while let Some(&mut (u, ref mut next)) = stack.last_mut() {
                let costs = g.move_costs_from(u);
                let base = self.potential[u];
                let found = (*next..n).find(|&v| {
                    costs[v] != NO_MOVE
                        && !self.seen[v]
                        && !self.dead[v]
                        && base + costs[v] == self.potential[v]
                });
                let Some(v) = found else {
                    self.dead[u] = true;
                    stack.pop();
                    continue;
                };
                *next = v + 1;
                let (from, to) = g.cheapest_move_arcs(u, v);
                self.via[v] = Some(Hop::Move { from, to });
                self.seen[v] = true;
                if self.exit_is_tight(g, v) {
                    return self.path_to(g, v);
                }
                stack.push((v, 0));
            }
        }
        None
    }

    /// Whether `region` has room left and its edge to the sink has reduced cost 0.
    fn exit_is_tight(&self, g: &Residual<'_>, region: usize) -> bool {
        g.room[region] > 0 && self.potential[region] == self.sink_potential
    }

    /// A cheapest path by Dijkstra; updates the potentials and starts a new phase of
    /// depth-first searches.
    fn dijkstra(&mut self, g: &Residual<'_>) -> Option<Vec<Hop>> {
        let n = g.regions();
        self.dead.fill(false);
        self.dist.fill(UNREACHED);
        self.done.fill(false);
        self.via.fill(None);
        for r in 0..n {
            if let Some((cost, arc)) = g.cheapest_entry(r) {
                let d = i128::from(cost) - self.potential[r];
                debug_assert!(d >= 0, "negative reduced entry cost into region {r}");
                self.dist[r] = d;
                self.via[r] = Some(Hop::Enter { arc });
            }
        }
        let mut sink = UNREACHED;
        let mut sink_via = None;
        while let Some(u) = self.nearest_open() {
            let du = self.dist[u];
            if du >= sink {
                break;
            }
            self.done[u] = true;
            if g.room[u] > 0 {
                let d = du + self.potential[u] - self.sink_potential;
                debug_assert!(d >= du, "negative reduced exit cost from region {u}");
                if d < sink {
                    sink = d;
                    sink_via = Some(u);
                }
            }
            let base = du + self.potential[u];
            for (v, &cost) in g.move_costs_from(u).iter().enumerate() {
                if cost == NO_MOVE || self.done[v] {
                    continue;
                }
                let d = base + cost - self.potential[v];
                debug_assert!(d >= du, "negative reduced move cost {u} → {v}");
                if d < self.dist[v] {
                    self.dist[v] = d;
                    let (from, to) = g.cheapest_move_arcs(u, v);
                    self.via[v] = Some(Hop::Move { from, to });
                }
            }
        }
        let last = sink_via?;
        for (p, &d) in self.potential.iter_mut().zip(&self.dist) {
            *p += d.min(sink);
        }
        self.sink_potential += sink;
        self.path_to(g, last)
    }

    /// The open region nearest the source, if any is reached.
    fn nearest_open(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (r, (&d, &done)) in self.dist.iter().zip(&self.done).enumerate() {
            if !done && d != UNREACHED && best.is_none_or(|b| d < self.dist[b]) {
                best = Some(r);
            }
        }
        best
    }

    /// The hops of the search tree from the source to `last`.
    fn path_to(&self, g: &Residual<'_>, last: usize) -> Option<Vec<Hop>> {
        let mut path = Vec::new();
        let mut at = last;
        // A tree path visits each region once.
        for _ in 0..g.regions() {
            let hop = self.via[at]?;
            path.push(hop);
            match hop {
                Hop::Enter { .. } => {
                    path.reverse();
                    return Some(path);
                }
                Hop::Move { from, .. } => at = g.arcs.region[from],
            }
        }
        None
    }
}
