//! The residual graph of the flow network, compressed to its region nodes.
//!
//! In the full residual graph every path from the source to the sink alternates blocks and
//! regions: source → block (the block still has load to place) → region (any candidate) →
//! block (back along an arc that carries flow) → another region → … → sink (the last region
//! has room left). Blocks are many and regions few, so the block nodes are folded into edges
//! between the regions:
//!
//! - *entry* into region `r`: the cheapest arc into `r` of a block with load still to place,
//!   at that arc's cost;
//! - *move* from region `a` to region `b`: the cheapest block that sends flow to `a` and has
//!   `b` as a candidate, at cost(b) − cost(a) (shifting a unit of its load from `a` to `b`);
//! - *exit* from a region with room left, at no cost.
//!
//! Each entry and move edge is a min-heap of the arcs that realise it. Costs never change, so
//! the heaps stay ordered; an arc that stops qualifying (its block's load is all placed, its
//! flow fell to zero) is left in place and dropped when it reaches the top, which is checked
//! right when it stops qualifying: every heap's top is always valid. The tops are copied into
//! dense per-region and per-pair tables, which is all a path search reads.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::arcs::Arcs;

/// One edge of a path in the compressed graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// From the source into `arc`'s region, placing load of `arc`'s block.
    Enter { arc: usize },
    /// Shift load of one block from `from`'s region to `to`'s (two arcs of the same block).
    Move { from: usize, to: usize },
}

/// No edge between a pair of regions, in the table of move costs.
pub const NO_MOVE: i128 = i128::MAX;

/// The flow so far and the compressed residual graph it leaves.
pub struct Residual<'a> {
    pub arcs: &'a Arcs,
    /// Per block: load not yet placed.
    pub unplaced: Vec<u64>,
    /// Per arc: load it carries.
    pub flow: Vec<u64>,
    /// Per region: capacity not yet used.
    pub room: Vec<u64>,
    regions: usize,
    /// Per region: (cost, arc) of arcs into it.
    entries: Vec<BinaryHeap<Reverse<(u64, usize)>>>,
    /// Per (from region × regions + to region): (cost difference, from arc, to arc).
    moves: Vec<BinaryHeap<Reverse<(i128, usize, usize)>>>,
    /// The top of each entry heap.
    entry_top: Vec<Option<(u64, usize)>>,
    /// The cost at the top of each move heap, or `NO_MOVE`; and its arcs.
    move_cost: Vec<i128>,
    move_arcs: Vec<(usize, usize)>,
}

impl<'a> Residual<'a> {
    /// The empty flow: every block's load unplaced, every region's capacity free.
    pub fn new(arcs: &'a Arcs, loads: Vec<u64>, capacities: Vec<u64>) -> Residual<'a> {
        let regions = capacities.len();
        let mut entries = vec![BinaryHeap::new(); regions];
        for arc in 0..arcs.len() {
            if loads.get(arcs.block[arc]).is_some_and(|&l| l > 0) {
                entries[arcs.region[arc]].push(Reverse((arcs.cost[arc], arc)));
            }
        }
        let entry_top = entries
            .iter()
            .map(|h| h.peek().map(|&Reverse(top)| top))
            .collect();
        Residual {
            arcs,
            unplaced: loads,
            flow: vec![0; arcs.len()],
            room: capacities,
            regions,
            entries,
            moves: vec![BinaryHeap::new(); regions * regions],
            entry_top,
            move_cost: vec![NO_MOVE; regions * regions],
            move_arcs: vec![(0, 0); regions * regions],
        }
    }

    /// Number of region nodes.
    pub fn regions(&self) -> usize {
        self.regions
    }

    /// The cheapest entry edge into `region`: (cost, arc).
    pub fn cheapest_entry(&self, region: usize) -> Option<(u64, usize)> {
        self.entry_top[region]
    }

    /// The cost of the cheapest move edge from region `from` to each region (`NO_MOVE`: none).
    pub fn move_costs_from(&self, from: usize) -> &[i128] {
        &self.move_cost[from * self.regions..(from + 1) * self.regions]
    }

    /// The arcs (from, to) of the cheapest move edge from region `from` to region `to`, when
    /// `move_costs_from(from)[to]` is not `NO_MOVE`.
    pub fn cheapest_move_arcs(&self, from: usize, to: usize) -> (usize, usize) {
        self.move_arcs[from * self.regions + to]
    }

    /// The region a path of hops ends in.
    pub fn last_region(&self, path: &[Hop]) -> Option<usize> {
        path.last().map(|hop| match *hop {
            Hop::Enter { arc } | Hop::Move { to: arc, .. } => self.arcs.region[arc],
        })
    }

    /// Pushes as much load as fits along `path` (source → regions → the sink out of its last
    /// region) and returns how much: the least of the first block's unplaced load, the flow
    /// on each arc a move takes load off, and the last region's room.
    pub fn augment(&mut self, path: &[Hop]) -> u64 {
        let Some(last) = self.last_region(path) else {
            return 0;
        };
        let mut amount = self.room[last];
        for hop in path {
            amount = amount.min(match *hop {
                Hop::Enter { arc } => self.unplaced[self.arcs.block[arc]],
                Hop::Move { from, .. } => self.flow[from],
            });
        }
        if amount == 0 {
            return 0;
        }
        self.room[last] -= amount;
        // In path order, an arc a move takes load off has received any load this path gives it.
        for hop in path {
            match *hop {
                Hop::Enter { arc } => {
                    let block = self.arcs.block[arc];
                    self.unplaced[block] -= amount;
                    if self.unplaced[block] == 0 {
                        self.block_placed(block);
                    }
                    self.add_flow(arc, amount);
                }
                Hop::Move { from, to } => {
                    self.flow[from] -= amount;
                    if self.flow[from] == 0 {
                        self.flow_stopped(from);
                    }
                    self.add_flow(to, amount);
                }
            }
        }
        amount
    }

    /// `block`'s load is all placed: its arcs leave the tops of the entry heaps.
    fn block_placed(&mut self, block: usize) {
        for arc in self.arcs.of_block(block) {
            let region = self.arcs.region[arc];
            let heap = &mut self.entries[region];
            while heap
                .peek()
                .is_some_and(|&Reverse((_, top))| self.unplaced[self.arcs.block[top]] == 0)
            {
                heap.pop();
            }
            self.entry_top[region] = heap.peek().map(|&Reverse(top)| top);
        }
    }

    /// `arc` carries nothing any more: its moves leave the tops of the move heaps.
    fn flow_stopped(&mut self, arc: usize) {
        let arcs = self.arcs;
        let from_region = arcs.region[arc];
        for other in arcs.of_block(arcs.block[arc]) {
            if other != arc {
                let pair = from_region * self.regions + arcs.region[other];
                let heap = &mut self.moves[pair];
                while heap
                    .peek()
                    .is_some_and(|&Reverse((_, top, _))| self.flow[top] == 0)
                {
                    heap.pop();
                }
                self.set_move_top(pair);
            }
        }
    }

    /// Copies the top of move heap `pair` into the tables.
    fn set_move_top(&mut self, pair: usize) {
        match self.moves[pair].peek() {
            Some(&Reverse((cost, from, to))) => {
                self.move_cost[pair] = cost;
                self.move_arcs[pair] = (from, to);
            }
            None => self.move_cost[pair] = NO_MOVE,
        }
    }

    /// Adds flow to `arc`; when it starts carrying, its block can now move load off its region.
    fn add_flow(&mut self, arc: usize, amount: u64) {
        let was = self.flow[arc];
        self.flow[arc] = was + amount;
        if was > 0 {
            return;
        }
        let arcs = self.arcs;
        let from_region = arcs.region[arc];
        for other in arcs.of_block(arcs.block[arc]) {
            if other != arc {
                let cost = i128::from(arcs.cost[other]) - i128::from(arcs.cost[arc]);
                let pair = from_region * self.regions + arcs.region[other];
                self.moves[pair].push(Reverse((cost, arc, other)));
                self.set_move_top(pair);
            }
        }
    }
}
