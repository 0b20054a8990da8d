//! The map maker (the seed's network map): every `interval` it gathers the client blocks
//! (configured, seen by edges' telemetry, by client reports, by nameservers), their load, one
//! cost per (block, region) and each region's capacity, solves the assignment of block load to
//! region capacity as a min-cost flow (`strata-flow`), and publishes the result for `GET
//! /v1/map` and the nameservers.

pub mod costs;
pub mod inputs;
pub mod maker;
pub mod map_metrics;
pub mod settings;
pub mod shared_inputs;

pub use maker::MapMaker;
