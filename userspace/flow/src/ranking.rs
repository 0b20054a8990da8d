//! The order a client should try a block's regions in, from a solved map.

use crate::arcs::distinct_candidates;
use crate::problem::Problem;
use crate::solution::Solution;

/// `block`'s regions in the order a client should try them: the regions carrying its load
/// first (cheapest first; equal costs: the one carrying more first), then its other candidates
/// by cost (equal costs: lower region index first). Each region appears once; candidates naming
/// a region that does not exist are left out; a block that does not exist has none.
pub fn ranked_regions(problem: &Problem, solution: &Solution, block: usize) -> Vec<usize> {
    let Some(b) = problem.blocks.get(block) else {
        return Vec::new();
    };
    let flows = solution.flows.get(block).map_or(&[][..], Vec::as_slice);
    let carried = |region: usize| -> u64 {
        flows
            .iter()
            .filter(|&&(r, _)| r == region)
            .map(|&(_, amount)| amount)
            .sum()
    };
    let mut ranked: Vec<(bool, u64, std::cmp::Reverse<u64>, usize)> = distinct_candidates(b)
        .into_iter()
        .filter(|c| c.region < problem.regions.len())
        .map(|c| {
            let amount = carried(c.region);
            (amount == 0, c.cost, std::cmp::Reverse(amount), c.region)
        })
        .collect();
    ranked.sort_unstable();
    ranked.into_iter().map(|(_, _, _, region)| region).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{Block, Candidate, Region};

    fn problem(candidates: &[(usize, u64)]) -> Problem {
        Problem {
            blocks: vec![Block {
                load: 10,
                candidates: candidates
                    .iter()
                    .map(|&(region, cost)| Candidate { region, cost })
                    .collect(),
            }],
            regions: vec![Region { capacity: 10 }; 5],
        }
    }

    fn solution(flows: Vec<(usize, u64)>) -> Solution {
        Solution {
            flows: vec![flows],
            unassigned: vec![0],
            total_cost: 0,
        }
    }

    #[test]
    fn regions_carrying_the_load_come_first_cheapest_first_then_the_rest_by_cost() {
        let p = problem(&[(0, 1), (1, 5), (2, 3), (3, 2), (4, 9)]);
        let s = solution(vec![(1, 4), (4, 6)]);
        assert_eq!(ranked_regions(&p, &s, 0), vec![1, 4, 0, 3, 2]);
    }

    #[test]
    fn equal_costs_put_the_larger_share_first_then_the_lower_index() {
        let p = problem(&[(3, 2), (1, 2), (2, 2), (0, 2)]);
        let s = solution(vec![(2, 3), (3, 7)]);
        assert_eq!(ranked_regions(&p, &s, 0), vec![3, 2, 0, 1]);
    }

    #[test]
    fn a_region_named_twice_appears_once_at_its_cheaper_cost() {
        let p = problem(&[(0, 5), (1, 4), (0, 1)]);
        let s = solution(vec![]);
        assert_eq!(ranked_regions(&p, &s, 0), vec![0, 1]);
    }

    #[test]
    fn a_missing_block_or_region_ranks_nothing_for_it() {
        let p = problem(&[(7, 1), (2, 3)]);
        let s = solution(vec![]);
        assert_eq!(ranked_regions(&p, &s, 0), vec![2]);
        assert!(ranked_regions(&p, &s, 1).is_empty());
    }
}
