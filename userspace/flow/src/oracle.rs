//! Test-only: slow, plainly correct answers to check `solve` against, and random small problems.
//!
//! - `bellman_ford`: successive shortest paths on the explicit network (source, every block,
//!   every region, sink; one arc per candidate as written, duplicates included), each path found
//!   by Bellman-Ford over the whole residual graph.
//! - `brute_force`: every integer split of every block's load over its candidates (as written),
//!   keeping the best that respects the capacities. Only for tiny problems.
//!
//! Both give the most load that fits and the least cost of carrying it.

use rand::Rng;

use crate::problem::{Block, Candidate, Problem, Region};

/// The most load that fits and the least cost of carrying that much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Optimum {
    pub carried: u128,
    pub cost: u128,
}

struct Edge {
    to: usize,
    cap: u64,
    cost: i128,
}

/// Successive shortest paths with Bellman-Ford on the explicit residual network.
pub fn bellman_ford(problem: &Problem) -> Optimum {
    let blocks = problem.blocks.len();
    let regions = problem.regions.len();
    let (source, sink) = (0, blocks + regions + 1);
    let nodes = sink + 1;
    let mut edges: Vec<Edge> = Vec::new();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    let mut add = |from: usize, to: usize, cap: u64, cost: i128| {
        out[from].push(edges.len());
        edges.push(Edge { to, cap, cost });
        out[to].push(edges.len());
        edges.push(Edge {
            to: from,
            cap: 0,
            cost: -cost,
        });
    };
    for (b, block) in problem.blocks.iter().enumerate() {
        add(source, 1 + b, block.load, 0);
        for c in &block.candidates {
            add(1 + b, 1 + blocks + c.region, block.load, i128::from(c.cost));
        }
    }
    for (r, region) in problem.regions.iter().enumerate() {
        add(1 + blocks + r, sink, region.capacity, 0);
    }
    let mut carried = 0u128;
    let mut cost = 0i128;
    loop {
        let mut dist: Vec<Option<i128>> = vec![None; nodes];
        let mut via: Vec<Option<usize>> = vec![None; nodes];
        dist[source] = Some(0);
        for _ in 0..nodes {
            let mut changed = false;
            for u in 0..nodes {
                let Some(du) = dist[u] else { continue };
                for &e in &out[u] {
                    let edge = &edges[e];
                    if edge.cap > 0 && dist[edge.to].is_none_or(|dv| du + edge.cost < dv) {
                        dist[edge.to] = Some(du + edge.cost);
                        via[edge.to] = Some(e);
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let Some(path_cost) = dist[sink] else { break };
        let mut amount = u64::MAX;
        let mut at = sink;
        while let Some(e) = via[at] {
            amount = amount.min(edges[e].cap);
            at = edges[e ^ 1].to;
        }
        let mut at = sink;
        while let Some(e) = via[at] {
            edges[e].cap -= amount;
            edges[e ^ 1].cap += amount;
            at = edges[e ^ 1].to;
        }
        carried += u128::from(amount);
        cost += path_cost * i128::from(amount);
    }
    Optimum {
        carried,
        cost: u128::try_from(cost).expect("a non-negative cost"),
    }
}

/// Every integer assignment; tiny problems only (it is exponential).
pub fn brute_force(problem: &Problem) -> Optimum {
    let mut room: Vec<u64> = problem.regions.iter().map(|r| r.capacity).collect();
    let mut best = Optimum { carried: 0, cost: 0 };
    assign_block(problem, 0, &mut room, 0, 0, &mut best);
    best
}

fn assign_block(p: &Problem, b: usize, room: &mut [u64], carried: u128, cost: u128, best: &mut Optimum) {
    let Some(block) = p.blocks.get(b) else {
        if carried > best.carried || (carried == best.carried && cost < best.cost) {
            *best = Optimum { carried, cost };
        }
        return;
    };
    split(p, b, &block.candidates, block.load, room, carried, cost, best);
}

/// Gives `left` of block `b`'s load (or less: the rest is unassigned) to `candidates`.
#[allow(clippy::too_many_arguments)]
fn split(
    p: &Problem,
    b: usize,
    candidates: &[Candidate],
    left: u64,
    room: &mut [u64],
    carried: u128,
    cost: u128,
    best: &mut Optimum,
) {
    let Some((c, rest)) = candidates.split_first() else {
        assign_block(p, b + 1, room, carried, cost, best);
        return;
    };
    for amount in 0..=left.min(room[c.region]) {
        room[c.region] -= amount;
        split(
            p,
            b,
            rest,
            left - amount,
            room,
            carried + u128::from(amount),
            cost + u128::from(amount) * u128::from(c.cost),
            best,
        );
        room[c.region] += amount;
    }
}

/// Bounds for a random problem (each inclusive).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub blocks: usize,
    pub regions: usize,
    pub candidates: usize,
    pub load: u64,
    pub capacity: u64,
    pub cost: u64,
}

/// A random valid problem within `shape`: any counts up to the bounds, candidates possibly
/// repeating a region, zero loads and capacities included.
pub fn random_problem(rng: &mut impl Rng, shape: Shape) -> Problem {
    let regions = rng.random_range(0..=shape.regions);
    let blocks = (0..rng.random_range(0..=shape.blocks))
        .map(|_| Block {
            load: rng.random_range(0..=shape.load),
            candidates: if regions == 0 {
                Vec::new()
            } else {
                (0..rng.random_range(0..=shape.candidates))
                    .map(|_| Candidate {
                        region: rng.random_range(0..regions),
                        cost: rng.random_range(0..=shape.cost),
                    })
                    .collect()
            },
        })
        .collect();
    Problem {
        blocks,
        regions: (0..regions)
            .map(|_| Region {
                capacity: rng.random_range(0..=shape.capacity),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn bellman_ford_agrees_with_brute_force_on_tiny_problems() {
        let mut rng = StdRng::seed_from_u64(7);
        let shape = Shape {
            blocks: 3,
            regions: 3,
            candidates: 3,
            load: 4,
            capacity: 5,
            cost: 6,
        };
        for i in 0..300 {
            let p = random_problem(&mut rng, shape);
            assert_eq!(bellman_ford(&p), brute_force(&p), "problem {i}: {p:?}");
        }
    }

    #[test]
    fn bellman_ford_moves_load_to_make_room_for_a_block_with_one_choice() {
        // Block 0 can go to 0 (cost 1) or 1 (cost 2); block 1 only to 0 (cost 5). Both fit only
        // if block 0 takes region 1.
        let p = Problem {
            blocks: vec![
                Block {
                    load: 1,
                    candidates: vec![Candidate { region: 0, cost: 1 }, Candidate { region: 1, cost: 2 }],
                },
                Block {
                    load: 1,
                    candidates: vec![Candidate { region: 0, cost: 5 }],
                },
            ],
            regions: vec![Region { capacity: 1 }; 2],
        };
        assert_eq!(bellman_ford(&p), Optimum { carried: 2, cost: 7 });
    }
}
