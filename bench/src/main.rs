//! strata's benchmark harness. Today: `bench load`, a keep-alive HTTP/1.1 load generator over a
//! URL list (round-robin or Zipf) that verifies every body's length and reports requests/s,
//! Gbit/s, latency percentiles and errors. The scenarios, peers (nginx,
//! HAProxy), physical-limit probe and report of issue 6 build on it.

mod load;
mod tally;
mod url_mix;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bench", about = "strata benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Keep-alive load against a list of URLs for a fixed time.
    Load(load::LoadArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Load(args) => load::run(&args),
    }
}
