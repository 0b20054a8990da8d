//! The output: where each block's load goes, what fits nowhere, and what it all costs.

/// A maximum assignment of least cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Solution {
    /// Per block: `(region index, amount)` for every region that carries some of its load,
    /// in increasing region index; amounts are never zero.
    pub flows: Vec<Vec<(usize, u64)>>,
    /// Per block: the load that fits nowhere (its candidates' capacity is taken, or it has none).
    pub unassigned: Vec<u64>,
    /// Sum over every flow of amount × the candidate's cost.
    pub total_cost: u128,
}

impl Solution {
    /// Load of `block` that some region carries (0 for a block that does not exist).
    pub fn assigned(&self, block: usize) -> u64 {
        self.flows
            .get(block)
            .map_or(0, |f| f.iter().map(|&(_, amount)| amount).sum())
    }

    /// Load carried over all blocks.
    pub fn total_assigned(&self) -> u128 {
        self.flows
            .iter()
            .flatten()
            .map(|&(_, amount)| u128::from(amount))
            .sum()
    }
}
