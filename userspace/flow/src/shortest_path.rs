//! The cheapest path from the source to the sink in the compressed residual graph (the
//! primal-dual method): Dijkstra over the region nodes with node potentials (Johnson's reduced
//! costs), so the negative move costs never matter; then, until none is left, paths made only
//! of edges of reduced cost 0, found by breadth-first search, before the next Dijkstra.
//!
//! Potentials: the source's is 0, each region and the sink has one; an edge u → v of cost c has
//! reduced cost c + p(u) − p(v), which stays ≥ 0 on every residual edge. After a search with
//! sink distance D, every node's potential grows by min(its distance, D) (unreached nodes: D);
//! this keeps every reduced cost ≥ 0 and makes each edge of the path found exactly 0, so the
//! reverse edges an augmentation creates are 0 too. A path of reduced cost 0 is therefore
//! always a cheapest one, whichever search found it, and the breadth-first search can be left
//! out at any time without changing the answer's cost: it only saves Dijkstras where costs tie.
//!
//! The graph is dense (an edge per pair of regions) and small, so Dijkstra finds its next node
//! by a scan rather than a heap. The breadth-first search takes the path of fewest hops: long
//! paths shift load through many blocks and split it into small pieces.

use crate::region_graph::{Hop, Residual, NO_MOVE};

const UNREACHED: i128 = i128::MAX;

/// Potentials and scratch space carried from one search to the next.
pub struct PathFinder {
    potential: Vec<i128>,
    sink_potential: i128,
    dist: Vec<i128>,
    done: Vec<bool>,
    via: Vec<Option<Hop>>,
    /// Regions the current breadth-first search has entered.
    seen: Vec<bool>,
    /// Whether a breadth-first search found a path since the last Dijkstra.
    found_tight: bool,
    /// Phases still to run without breadth-first search, and how many the last pause was.
    pause: u32,
    last_pause: u32,
}

/// The longest pause of breadth-first search, in phases.
const MAX_PAUSE: u32 = 32;

impl PathFinder {
    /// For a graph with `regions` region nodes and no flow yet (all costs ≥ 0, potentials 0).
    pub fn new(regions: usize) -> PathFinder {
        PathFinder {
            potential: vec![0; regions],
            sink_potential: 0,
            dist: vec![UNREACHED; regions],
            done: vec![false; regions],
            via: vec![None; regions],
            seen: vec![false; regions],
            found_tight: false,
            pause: 0,
            last_pause: 0,
        }
    }

    /// A cheapest path from the source to a region with room left, or `None` when the sink
    /// cannot be reached (the flow is maximum).
    ///
    /// Searches paths of reduced cost 0 first; when such searches keep finding nothing right
    /// after a Dijkstra (all costs distinct, say), pauses them for a growing number of phases.
    pub fn next_path(&mut self, g: &Residual<'_>) -> Option<Vec<Hop>> {
        if self.pause > 0 {
            self.pause -= 1;
        } else if let Some(path) = self.tight_path(g) {
            self.found_tight = true;
            return Some(path);
        } else if self.found_tight {
            self.last_pause = 0;
        } else {
            self.last_pause = (self.last_pause * 2).clamp(1, MAX_PAUSE);
            self.pause = self.last_pause;
        }
        self.found_tight = false;
        self.dijkstra(g)
    }

    /// A path of reduced cost 0 under the current potentials with the fewest hops, by
    /// breadth-first search from every region a tight entry edge reaches.
    fn tight_path(&mut self, g: &Residual<'_>) -> Option<Vec<Hop>> {
        let n = g.regions();
        self.seen.fill(false);
        let mut queue: Vec<usize> = Vec::new();
        for root in 0..n {
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
            queue.push(root);
        }
        // The queue is `queue[head..]`; what is before it has been searched.
        let mut head = 0;
        while let Some(&u) = queue.get(head) {
            head += 1;
            let costs = g.move_costs_from(u);
            let base = self.potential[u];
            for (v, &cost) in costs.iter().enumerate() {
                if cost == NO_MOVE || self.seen[v] || base + cost != self.potential[v] {
                    continue;
                }
                let (from, to) = g.cheapest_move_arcs(u, v);
                self.via[v] = Some(Hop::Move { from, to });
                self.seen[v] = true;
                if self.exit_is_tight(g, v) {
                    return self.path_to(g, v);
                }
                queue.push(v);
            }
        }
        None
    }

    /// Whether `region` has room left and its edge to the sink has reduced cost 0.
    fn exit_is_tight(&self, g: &Residual<'_>, region: usize) -> bool {
        g.room[region] > 0 && self.potential[region] == self.sink_potential
    }

    /// A cheapest path by Dijkstra; updates the potentials (a new phase).
    fn dijkstra(&mut self, g: &Residual<'_>) -> Option<Vec<Hop>> {
        let n = g.regions();
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
