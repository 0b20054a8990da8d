//! Distribution jobs on an edge: the [`runner`] polls the control plane for commands and runs
//! each on a thread ([`transfer`]: fetch by ranges from storage or a peer with SHA-256
//! verification, pin, unpin, delete); [`peer`] serves this edge's verified files to other
//! edges by ranges, authenticated by the peer key (derived from the placement key).

pub mod peer;
pub mod runner;
pub mod transfer;
