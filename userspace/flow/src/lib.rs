//! Min-cost flow of IP-block load onto region capacity (the seed's network map): blocks with a
//! load and candidate regions at a cost each, regions with a capacity; the assignment that
//! carries as much load as fits at the least total cost. Pure: no I/O, nothing of strata's.
//!
//! The network is source → block (capacity = the block's load) → region (only to the block's
//! candidates, unbounded, at the candidate's cost) → sink (capacity = the region's capacity).
//! [`solve`] returns a maximum flow of least cost among the maximum ones, exactly (integers
//! throughout), with the load that fits nowhere reported per block; [`ranked_regions`] turns a
//! block's share of it into the order a client should try regions in.
//!
//! The solver is successive shortest paths on the residual graph compressed to its region
//! nodes (there are few regions and many blocks): see `solver` and `region_graph`.

mod arcs;
pub mod error;
pub mod problem;
pub mod ranking;
mod region_graph;
mod shortest_path;
pub mod solution;
mod solver;

pub use error::FlowError;
pub use problem::{Block, Candidate, Problem, Region};
pub use ranking::ranked_regions;
pub use solution::Solution;
pub use solver::solve;

#[cfg(test)]
mod oracle;
