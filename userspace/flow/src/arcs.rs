//! The problem's block → region arcs, checked and flattened: one arc per distinct (block,
//! candidate region), at the cheaper cost when a block names a region twice, grouped by block,
//! cheapest first within a block.

use std::ops::Range;

use crate::error::FlowError;
use crate::problem::{Block, Candidate, Problem};

/// Every arc of a problem; arc `i` is `(block[i], region[i], cost[i])`.
pub struct Arcs {
    /// The arcs of block `b` are `first[b]..first[b + 1]`.
    first: Vec<usize>,
    pub block: Vec<usize>,
    pub region: Vec<usize>,
    pub cost: Vec<u64>,
}

impl Arcs {
    /// The arcs of `problem`, or the first candidate that names a region that does not exist.
    pub fn new(problem: &Problem) -> Result<Arcs, FlowError> {
        let regions = problem.regions.len();
        let total: usize = problem.blocks.iter().map(|b| b.candidates.len()).sum();
        let mut arcs = Arcs {
            first: Vec::with_capacity(problem.blocks.len() + 1),
            block: Vec::with_capacity(total),
            region: Vec::with_capacity(total),
            cost: Vec::with_capacity(total),
        };
        arcs.first.push(0);
        for (b, block) in problem.blocks.iter().enumerate() {
            if let Some(bad) = block.candidates.iter().find(|c| c.region >= regions) {
                return Err(FlowError::UnknownRegion {
                    block: b,
                    region: bad.region,
                    regions,
                });
            }
            for c in distinct_candidates(block) {
                arcs.block.push(b);
                arcs.region.push(c.region);
                arcs.cost.push(c.cost);
            }
            arcs.first.push(arcs.block.len());
        }
        Ok(arcs)
    }

    /// Number of arcs.
    pub fn len(&self) -> usize {
        self.block.len()
    }

    /// The arcs of block `b`.
    pub fn of_block(&self, b: usize) -> Range<usize> {
        match (self.first.get(b), self.first.get(b + 1)) {
            (Some(&start), Some(&end)) => start..end,
            _ => 0..0,
        }
    }
}

/// A block's candidates with each region once, at its cheapest cost, ordered by (cost, region).
pub fn distinct_candidates(block: &Block) -> Vec<Candidate> {
    let mut list = block.candidates.clone();
    list.sort_unstable_by_key(|c| (c.region, c.cost));
    list.dedup_by_key(|c| c.region);
    list.sort_unstable_by_key(|c| (c.cost, c.region));
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Region;

    fn cand(region: usize, cost: u64) -> Candidate {
        Candidate { region, cost }
    }

    #[test]
    fn a_region_named_twice_keeps_its_cheaper_cost_and_candidates_come_cheapest_first() {
        let block = Block {
            load: 1,
            candidates: vec![cand(2, 9), cand(0, 5), cand(2, 3), cand(1, 5)],
        };
        assert_eq!(
            distinct_candidates(&block),
            vec![cand(2, 3), cand(0, 5), cand(1, 5)]
        );
    }

    #[test]
    fn a_candidate_past_the_last_region_is_rejected_with_its_block() {
        let problem = Problem {
            blocks: vec![
                Block {
                    load: 1,
                    candidates: vec![cand(0, 1)],
                },
                Block {
                    load: 1,
                    candidates: vec![cand(0, 1), cand(2, 1)],
                },
            ],
            regions: vec![Region { capacity: 1 }; 2],
        };
        assert_eq!(
            Arcs::new(&problem).err(),
            Some(FlowError::UnknownRegion {
                block: 1,
                region: 2,
                regions: 2
            })
        );
    }

    #[test]
    fn arcs_are_grouped_by_block() {
        let problem = Problem {
            blocks: vec![
                Block {
                    load: 1,
                    candidates: vec![cand(1, 4), cand(0, 2)],
                },
                Block::default(),
                Block {
                    load: 1,
                    candidates: vec![cand(1, 1)],
                },
            ],
            regions: vec![Region { capacity: 1 }; 2],
        };
        let arcs = Arcs::new(&problem).expect("valid");
        assert_eq!(arcs.len(), 3);
        assert_eq!(arcs.of_block(0), 0..2);
        assert_eq!(arcs.of_block(1), 2..2);
        assert_eq!(arcs.of_block(2), 2..3);
        assert_eq!(arcs.of_block(3), 0..0);
        assert_eq!(arcs.region, vec![0, 1, 1]);
        assert_eq!(arcs.cost, vec![2, 4, 1]);
        assert_eq!(arcs.block, vec![0, 0, 2]);
    }
}
