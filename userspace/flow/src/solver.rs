//! `solve`: successive shortest paths. Starting from no flow, push load along a cheapest path
//! from the source to the sink of the residual graph until the sink cannot be reached. Each
//! augmentation along a cheapest path keeps the flow the cheapest for the load it carries, and
//! when no path is left the load carried is the most that fits: the result is a maximum flow of
//! minimum cost, exactly (integer arithmetic; the reduced path costs are 128-bit).
//!
//! The paths are searched in the residual graph compressed to regions (`region_graph`), so a
//! search costs O(regions²) heap peeks whatever the number of blocks.

use crate::arcs::Arcs;
use crate::error::FlowError;
use crate::problem::Problem;
use crate::region_graph::Residual;
use crate::shortest_path::PathFinder;
use crate::solution::Solution;

/// The assignment of `problem`'s block load onto its regions that carries the most load, and
/// among those the cheapest. A block naming a region twice is taken at the cheaper cost.
///
/// Fails on a candidate naming a region that does not exist, or (only with loads and costs
/// near `u64::MAX`) a total cost beyond `u128`.
pub fn solve(problem: &Problem) -> Result<Solution, FlowError> {
    let arcs = Arcs::new(problem)?;
    let mut residual = Residual::new(
        &arcs,
        problem.blocks.iter().map(|b| b.load).collect(),
        problem.regions.iter().map(|r| r.capacity).collect(),
    );
    let mut finder = PathFinder::new(problem.regions.len());
    while let Some(path) = finder.next_path(&residual) {
        if residual.augment(&path) == 0 {
            // Cannot happen (every edge of a path has room); stop rather than spin.
            debug_assert!(false, "a shortest path carried nothing");
            break;
        }
    }
    solution(&arcs, &residual)
}

/// The flows, unplaced load and total cost of a finished residual graph.
fn solution(arcs: &Arcs, residual: &Residual<'_>) -> Result<Solution, FlowError> {
    let blocks = residual.unplaced.len();
    let mut flows = Vec::with_capacity(blocks);
    let mut total_cost: u128 = 0;
    for b in 0..blocks {
        let mut list: Vec<(usize, u64)> = arcs
            .of_block(b)
            .filter(|&arc| residual.flow[arc] > 0)
            .map(|arc| (arcs.region[arc], residual.flow[arc]))
            .collect();
        list.sort_unstable();
        flows.push(list);
        for arc in arcs.of_block(b) {
            let cost = u128::from(residual.flow[arc]) * u128::from(arcs.cost[arc]);
            total_cost = total_cost.checked_add(cost).ok_or(FlowError::CostOverflow)?;
        }
    }
    Ok(Solution {
        flows,
        unassigned: residual.unplaced.clone(),
        total_cost,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod against_oracle;
