//! strata's benchmark harness. Today: `bench load`, a keep-alive HTTP/1.1 load generator that
//! reports requests/s and Gbit/s and verifies every body's length. The scenarios, peers (nginx,
//! HAProxy), physical-limit probe and report of issue 6 build on it.

mod load;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bench", about = "strata benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Keep-alive load against one URL for a fixed time.
    Load(load::LoadArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Load(args) => load::run(&args),
    }
}
