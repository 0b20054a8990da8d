//! The roles the `strata` binary runs: storage, edge, and pop (both on loopback).

pub mod guard_cli;
pub mod pop;
pub mod serve;
