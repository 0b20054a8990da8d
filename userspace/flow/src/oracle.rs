//! Test-only: slow, plainly correct answers to check `solve` against, and random small problems.
//!
//! - `bellman_ford`: successive shortest paths on the explicit network (source, every block,
//!   every region, sink; one arc per candidate as written, duplicates included), each path found
//!   by Bellman-Ford over the whole residual graph.
//! - `brute_force`: every integer split of every block's load over its candidates (as written),
//!   keeping the best that respects the capacities. Only for tiny problems.
//!
//! Both give the most load that fits and the least cost of carrying it. For problems too big
//! for them, `certify` checks a solution by the optimality conditions instead: a flow is a
//! maximum one when its residual graph has no path from the source to the sink, and the
//! cheapest of its value when the residual graph has no cycle of negative cost.

use rand::Rng;

use crate::problem::{Block, Candidate, Problem, Region};
use crate::solution::Solution;

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

/// Why `solution` is not a cheapest maximum flow of `problem`, if it is not. Assumes it is a
/// valid assignment (checked elsewhere). The residual graph is taken over the source, the
/// regions and the sink, each block folded into the edges it makes: source → r at cost c(b, r)
/// for a block b with load unassigned; r → source at −c(b, r) and r → r2 at c(b, r2) − c(b, r)
/// for a block with flow on r; r → sink for a region with room, sink → r for one carrying load.
pub fn certify(problem: &Problem, solution: &Solution) -> Result<(), String> {
    let regions = problem.regions.len();
    let (source, sink) = (regions, regions + 1);
    let nodes = regions + 2;
    let mut w: Vec<Vec<Option<i128>>> = vec![vec![None; nodes]; nodes];
    let mut edge = |from: usize, to: usize, cost: i128| {
        let slot = &mut w[from][to];
        *slot = Some(slot.map_or(cost, |c: i128| c.min(cost)));
    };
    let mut used = vec![0u128; regions];
    for (b, block) in problem.blocks.iter().enumerate() {
        let cost_of = |r: usize| {
            block
                .candidates
                .iter()
                .filter(|c| c.region == r)
                .map(|c| i128::from(c.cost))
                .min()
        };
        if solution.unassigned[b] > 0 {
            for c in &block.candidates {
                edge(source, c.region, i128::from(c.cost));
            }
        }
        for &(r, amount) in &solution.flows[b] {
            used[r] += u128::from(amount);
            let here = cost_of(r).ok_or(format!("block {b} flows to {r}, not a candidate"))?;
            edge(r, source, -here);
            for c in &block.candidates {
                if c.region != r {
                    edge(r, c.region, i128::from(c.cost) - here);
                }
            }
        }
    }
    for (r, region) in problem.regions.iter().enumerate() {
        if used[r] < u128::from(region.capacity) {
            edge(r, sink, 0);
        }
        if used[r] > 0 {
            edge(sink, r, 0);
        }
    }
    // Floyd–Warshall: shortest walks between every pair, a negative diagonal is a negative cycle.
    let mut d = w;
    for k in 0..nodes {
        let through_k = d[k].clone();
        for row in d.iter_mut() {
            let Some(to_k) = row[k] else { continue };
            for (to_j, k_to_j) in row.iter_mut().zip(&through_k) {
                if let Some(k_to_j) = k_to_j {
                    if to_j.is_none_or(|c| to_k + k_to_j < c) {
                        *to_j = Some(to_k + k_to_j);
                    }
                }
            }
        }
    }
    if d[source][sink].is_some() {
        return Err("the sink is still reachable: more load fits".into());
    }
    match (0..nodes).find(|&i| d[i][i].is_some_and(|c| c < 0)) {
        Some(i) => Err(format!(
            "a negative cycle through node {i}: the same load fits cheaper"
        )),
        None => Ok(()),
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

/// A random map of exactly `blocks` blocks of load 1–1000, each with `candidates` distinct
/// regions (of `regions`) at costs 0–`max_cost`, and regions whose capacities (uneven) add up
/// to about `capacity_percent` % of the total load.
pub fn random_map(
    rng: &mut impl Rng,
    (blocks, regions, candidates): (usize, usize, usize),
    max_cost: u64,
    capacity_percent: u64,
) -> Problem {
    let blocks: Vec<Block> = (0..blocks)
        .map(|_| Block {
            load: rng.random_range(1..=1000),
            candidates: rand::seq::index::sample(rng, regions, candidates)
                .into_iter()
                .map(|region| Candidate {
                    region,
                    cost: rng.random_range(0..=max_cost),
                })
                .collect(),
        })
        .collect();
    let total: u64 = blocks.iter().map(|b| b.load).sum();
    let weights: Vec<u64> = (0..regions).map(|_| rng.random_range(1..=100)).collect();
    let weight: u64 = weights.iter().sum();
    Problem {
        blocks,
        regions: weights
            .iter()
            .map(|w| Region {
                capacity: total * capacity_percent / 100 * w / weight,
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
    fn certify_accepts_the_best_and_rejects_load_left_out_or_placed_dearly() {
        let p = Problem {
            blocks: vec![
                Block {
                    load: 2,
                    candidates: vec![Candidate { region: 0, cost: 1 }, Candidate { region: 1, cost: 4 }],
                },
                Block {
                    load: 1,
                    candidates: vec![Candidate { region: 1, cost: 2 }],
                },
            ],
            regions: vec![Region { capacity: 2 }, Region { capacity: 2 }],
        };
        let solution = |flows: Vec<Vec<(usize, u64)>>, unassigned: Vec<u64>| Solution {
            flows,
            unassigned,
            total_cost: 0,
        };
        let best = solution(vec![vec![(0, 2)], vec![(1, 1)]], vec![0, 0]);
        assert_eq!(certify(&p, &best), Ok(()));
        let short = solution(vec![vec![(0, 2)], vec![]], vec![0, 1]);
        assert!(certify(&p, &short).is_err_and(|e| e.contains("reachable")));
        let dear = solution(vec![vec![(0, 1), (1, 1)], vec![(1, 1)]], vec![0, 0]);
        assert!(certify(&p, &dear).is_err_and(|e| e.contains("negative cycle")));
        // Carrying block 0's second unit on region 1 (cost 4) instead of block 1 (cost 2).
        let swapped = solution(vec![vec![(0, 2)], vec![]], vec![0, 1]);
        let p2 = Problem {
            regions: vec![Region { capacity: 2 }, Region { capacity: 0 }],
            ..p.clone()
        };
        assert_eq!(certify(&p2, &swapped), Ok(()));
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
