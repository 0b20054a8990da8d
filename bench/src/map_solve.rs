//! Scenario (e), the network map's solve time: strata-flow's min-cost flow on a map the size of
//! a large deployment (10,000 client blocks, 50 regions, 5 candidate regions per block, random
//! loads, costs and capacities from a fixed seed), once with less capacity than load and once
//! with more, each solved several times in this process. CPU only: no server runs.

use std::time::Instant;

use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use strata_flow::{solve, Block, Candidate, Problem, Region};

use crate::figures::Spread;

pub const BLOCKS: usize = 10_000;
pub const REGIONS: usize = 50;
pub const CANDIDATES: usize = 5;
/// Total capacity as a share of total load, one case each: short of it, and above it.
pub const CAPACITY_PERCENTS: [u64; 2] = [90, 110];
/// The goal for one solve (median over the runs).
pub const GOAL_SECONDS: f64 = 1.0;

/// One case: the same map at one capacity share, solved `runs.len()` times.
#[derive(Debug, Serialize)]
pub struct MapCase {
    pub title: String,
    pub capacity_percent: u64,
    /// Seconds of each solve.
    pub runs: Vec<f64>,
    pub solve_ms: Spread,
    /// Share of the total load the solution carries.
    pub carried_share: f64,
    /// Blocks whose load is split over more than one region.
    pub blocks_split: usize,
    /// Blocks with some load that fits nowhere.
    pub blocks_short: usize,
    /// Why it has no figures, when the solver refused the problem.
    pub failure: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MapSolveResult {
    pub blocks: usize,
    pub regions: usize,
    pub candidates_per_block: usize,
    pub cases: Vec<MapCase>,
}

/// The map: `BLOCKS` blocks of 1 Mbit/s–1 Gbit/s, each with `CANDIDATES` distinct random
/// regions at costs 1–1000, and `REGIONS` regions whose capacities (uneven, 0.5–1.5 × the mean)
/// add up to `capacity_percent` % of the total load. The same seed gives the same map.
pub fn map(seed: u64, capacity_percent: u64) -> Problem {
    let mut rng = StdRng::seed_from_u64(seed);
    let blocks: Vec<Block> = (0..BLOCKS)
        .map(|_| Block {
            load: rng.random_range(1_000_000..=1_000_000_000),
            candidates: sample(&mut rng, REGIONS, CANDIDATES)
                .into_iter()
                .map(|region| Candidate {
                    region,
                    cost: rng.random_range(1..=1000),
                })
                .collect(),
        })
        .collect();
    let total_load: u128 = blocks.iter().map(|b| u128::from(b.load)).sum();
    let weights: Vec<u64> = (0..REGIONS).map(|_| rng.random_range(500..=1500)).collect();
    let total_weight: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let regions = weights
        .iter()
        .map(|&w| Region {
            capacity: u64::try_from(
                total_load * u128::from(capacity_percent) * u128::from(w) / 100 / total_weight,
            )
            .unwrap_or(u64::MAX),
        })
        .collect();
    Problem { blocks, regions }
}

/// Solves each case `reps` times, one step of `bar` per case.
pub fn measure(reps: usize, bar: &ProgressBar) -> MapSolveResult {
    let cases = CAPACITY_PERCENTS
        .iter()
        .map(|&percent| {
            let title = format!("capacity {percent}% of load");
            bar.set_message(format!("(e) map solve, {title}"));
            let case = measure_case(title, percent, reps);
            bar.inc(1);
            case
        })
        .collect();
    MapSolveResult {
        blocks: BLOCKS,
        regions: REGIONS,
        candidates_per_block: CANDIDATES,
        cases,
    }
}

fn measure_case(title: String, capacity_percent: u64, reps: usize) -> MapCase {
    let problem = map(0x5eed_0000 + capacity_percent, capacity_percent);
    let mut case = MapCase {
        title,
        capacity_percent,
        runs: Vec::new(),
        solve_ms: Spread::default(),
        carried_share: 0.0,
        blocks_split: 0,
        blocks_short: 0,
        failure: None,
    };
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let solved = solve(&problem);
        let seconds = start.elapsed().as_secs_f64();
        match solved {
            Ok(solution) => {
                case.runs.push(seconds);
                let total: u128 = problem.blocks.iter().map(|b| u128::from(b.load)).sum();
                case.carried_share = solution.total_assigned() as f64 / total.max(1) as f64;
                case.blocks_split = solution.flows.iter().filter(|f| f.len() > 1).count();
                case.blocks_short = solution.unassigned.iter().filter(|&&u| u > 0).count();
            }
            Err(e) => {
                case.failure = Some(e.to_string());
                break;
            }
        }
    }
    case.solve_ms = Spread::of(&case.runs.iter().map(|s| s * 1000.0).collect::<Vec<_>>());
    case
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_is_the_same_for_the_same_seed_and_has_the_stated_shape() {
        let a = map(1, 90);
        assert_eq!(a, map(1, 90));
        assert_ne!(a, map(2, 90));
        assert_eq!(a.blocks.len(), BLOCKS);
        assert_eq!(a.regions.len(), REGIONS);
        for b in &a.blocks {
            let mut regions: Vec<usize> = b.candidates.iter().map(|c| c.region).collect();
            regions.sort_unstable();
            regions.dedup();
            assert_eq!(regions.len(), CANDIDATES);
        }
    }

    #[test]
    fn total_capacity_is_the_requested_share_of_total_load() {
        for percent in CAPACITY_PERCENTS {
            let p = map(3, percent);
            let load: u128 = p.blocks.iter().map(|b| u128::from(b.load)).sum();
            let capacity: u128 = p.regions.iter().map(|r| u128::from(r.capacity)).sum();
            let share = capacity as f64 / load as f64 * 100.0;
            assert!((share - percent as f64).abs() < 0.01, "{percent}%: {share}");
        }
    }
}
