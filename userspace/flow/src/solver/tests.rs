//! `solve` on hand-made problems: one behaviour each.

use crate::error::FlowError;
use crate::problem::{Block, Candidate, Problem, Region};
use crate::solver::solve;

fn block(load: u64, candidates: &[(usize, u64)]) -> Block {
    Block {
        load,
        candidates: candidates
            .iter()
            .map(|&(region, cost)| Candidate { region, cost })
            .collect(),
    }
}

fn regions(capacities: &[u64]) -> Vec<Region> {
    capacities.iter().map(|&capacity| Region { capacity }).collect()
}

#[test]
fn load_goes_to_the_cheapest_candidate_when_it_fits() {
    let p = Problem {
        blocks: vec![block(5, &[(0, 3), (1, 1), (2, 2)])],
        regions: regions(&[10, 10, 10]),
    };
    let s = solve(&p).expect("valid");
    assert_eq!(s.flows, vec![vec![(1, 5)]]);
    assert_eq!(s.unassigned, vec![0]);
    assert_eq!(s.total_cost, 5);
}

#[test]
fn overflow_goes_to_the_next_cheapest_region_when_the_cheapest_is_full() {
    let p = Problem {
        blocks: vec![block(10, &[(0, 1), (1, 5), (2, 3)])],
        regions: regions(&[4, 10, 3]),
    };
    let s = solve(&p).expect("valid");
    // 4 on region 0 (cost 1), 3 on region 2 (cost 3), the last 3 on region 1 (cost 5).
    assert_eq!(s.flows, vec![vec![(0, 4), (1, 3), (2, 3)]]);
    assert_eq!(s.unassigned, vec![0]);
    assert_eq!(s.total_cost, 4 + 15 + 9);
}

#[test]
fn load_that_fits_nowhere_is_reported_unassigned() {
    let p = Problem {
        blocks: vec![block(8, &[(0, 1)]), block(5, &[(0, 2), (1, 1)])],
        regions: regions(&[6, 2]),
    };
    let s = solve(&p).expect("valid");
    assert_eq!(s.total_assigned(), 8);
    assert_eq!(s.unassigned.iter().sum::<u64>(), 5);
    for (b, blk) in p.blocks.iter().enumerate() {
        assert_eq!(s.assigned(b) + s.unassigned[b], blk.load, "block {b}");
    }
}

#[test]
fn carrying_more_load_beats_carrying_it_cheaper() {
    // Block 0 prefers region 0 by far, but only if it moves to region 1 does block 1 (which can
    // only use region 0) fit as well.
    let p = Problem {
        blocks: vec![block(1, &[(0, 1), (1, 100)]), block(1, &[(0, 50)])],
        regions: regions(&[1, 1]),
    };
    let s = solve(&p).expect("valid");
    assert_eq!(s.flows, vec![vec![(1, 1)], vec![(0, 1)]]);
    assert_eq!(s.unassigned, vec![0, 0]);
    assert_eq!(s.total_cost, 150);
}

#[test]
fn load_is_shifted_along_a_chain_of_regions_to_make_room() {
    // Block i sits on region i (cost 0) and may move to region i + 1 (cost 1); the last block
    // can only use region 0. Everything fits only if every block shifts one region along.
    let n = 6;
    let mut blocks: Vec<Block> = (0..n - 1).map(|i| block(1, &[(i, 0), (i + 1, 1)])).collect();
    blocks.push(block(1, &[(0, 10)]));
    let p = Problem {
        blocks,
        regions: regions(&vec![1; n]),
    };
    let s = solve(&p).expect("valid");
    assert!(s.unassigned.iter().all(|&u| u == 0), "{s:?}");
    assert_eq!(s.total_cost, (n as u128 - 1) + 10);
    for i in 0..n - 1 {
        assert_eq!(s.flows[i], vec![(i + 1, 1)]);
    }
}

#[test]
fn a_block_without_candidates_keeps_all_its_load_unassigned() {
    let p = Problem {
        blocks: vec![block(7, &[]), block(3, &[(0, 2)])],
        regions: regions(&[100]),
    };
    let s = solve(&p).expect("valid");
    assert_eq!(s.flows, vec![vec![], vec![(0, 3)]]);
    assert_eq!(s.unassigned, vec![7, 0]);
    assert_eq!(s.total_cost, 6);
}

#[test]
fn blocks_of_zero_load_get_no_flows() {
    let p = Problem {
        blocks: vec![block(0, &[(0, 1)]), block(0, &[])],
        regions: regions(&[5]),
    };
    let s = solve(&p).expect("valid");
    assert_eq!(s.flows, vec![vec![], vec![]]);
    assert_eq!(s.unassigned, vec![0, 0]);
    assert_eq!(s.total_cost, 0);
}

#[test]
fn a_region_of_zero_capacity_carries_nothing() {
    let p = Problem {
        blocks: vec![block(4, &[(0, 1), (1, 9)]), block(2, &[(0, 1)])],
        regions: regions(&[0, 3]),
    };
    let s = solve(&p).expect("valid");
    assert_eq!(s.flows, vec![vec![(1, 3)], vec![]]);
    assert_eq!(s.unassigned, vec![1, 2]);
}

#[test]
fn no_blocks_or_no_regions_is_an_empty_answer() {
    let s = solve(&Problem::default()).expect("valid");
    assert_eq!(s, Default::default());
    let p = Problem {
        blocks: vec![block(3, &[])],
        regions: Vec::new(),
    };
    let s = solve(&p).expect("valid");
    assert_eq!(s.unassigned, vec![3]);
    assert_eq!(s.flows, vec![vec![]]);
}

#[test]
fn a_region_named_twice_is_used_at_its_cheaper_cost() {
    let p = Problem {
        blocks: vec![block(4, &[(0, 9), (1, 5), (0, 2)])],
        regions: regions(&[10, 10]),
    };
    let s = solve(&p).expect("valid");
    assert_eq!(s.flows, vec![vec![(0, 4)]]);
    assert_eq!(s.total_cost, 8);
}

#[test]
fn a_candidate_naming_no_region_is_an_error_that_says_which() {
    let p = Problem {
        blocks: vec![block(1, &[(0, 1)]), block(1, &[(3, 1)])],
        regions: regions(&[1, 1]),
    };
    let err = solve(&p).expect_err("region 3 does not exist");
    assert_eq!(
        err,
        FlowError::UnknownRegion {
            block: 1,
            region: 3,
            regions: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "block 1 names region 3, but there are only 2 regions"
    );
}

#[test]
fn the_largest_loads_capacities_and_costs_do_not_overflow() {
    let max = u64::MAX;
    let p = Problem {
        blocks: vec![block(max, &[(0, max), (1, max - 1)]), block(max, &[(0, 0)])],
        regions: regions(&[max, max]),
    };
    let s = solve(&p).expect("fits in u128");
    assert_eq!(s.flows, vec![vec![(1, max)], vec![(0, max)]]);
    assert_eq!(s.total_cost, u128::from(max) * u128::from(max - 1));
}

#[test]
fn a_total_cost_beyond_u128_is_an_error() {
    let max = u64::MAX;
    let p = Problem {
        blocks: vec![block(max, &[(0, max)]), block(max, &[(1, max)])],
        regions: regions(&[max, max]),
    };
    assert_eq!(solve(&p), Err(FlowError::CostOverflow));
}

#[test]
fn the_same_problem_gives_the_same_answer() {
    let p = Problem {
        blocks: (0..40)
            .map(|i| block(1 + i % 7, &[(i as usize % 5, 3), ((i as usize + 2) % 5, 3)]))
            .collect(),
        regions: regions(&[9, 9, 9, 9, 9]),
    };
    assert_eq!(solve(&p), solve(&p));
}
