//! The input: blocks (client /24s) with a load and the regions they may be sent to, each at a
//! cost, and regions with a capacity. Loads, capacities and costs are plain integers in whatever
//! unit the caller chose (bits/s and a latency score, say); only their ratios matter.

/// Everything the solver assigns: blocks onto regions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problem {
    pub blocks: Vec<Block>,
    pub regions: Vec<Region>,
}

/// One IP block: the load it brings and the regions that may serve it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Block {
    pub load: u64,
    /// Regions that may carry this block's load. A region named twice counts once, at the
    /// cheaper of its costs. A block without candidates leaves all its load unassigned.
    pub candidates: Vec<Candidate>,
}

/// A region a block may be sent to, and what each unit of load sent there costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Index into [`Problem::regions`].
    pub region: usize,
    /// Cost per unit of load; smaller is better.
    pub cost: u64,
}

/// One region: how much load it can carry in all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub capacity: u64,
}
