//! `cargo xtask`: the one entry point a strata user needs. Each command first runs the parts
//! of `setup` that are missing, so a fresh machine needs nothing else.

mod bench;
mod build;
mod fuzz;
mod install;
mod pop_cert;
mod setup;
mod shell;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Set up, build, test, run and install strata")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing need: nightly rust-src, bpf-linker, Debian packages.
    Setup,
    /// Build the strata binary (release) with its embedded eBPF programs.
    Build,
    /// Run every test: unit tests and the integration tests against real strata processes.
    Test {
        /// Extra arguments for `cargo test` (after --), e.g. a test name filter.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build, then start a whole POP on loopback with demo content (`strata pop`).
    Run {
        /// Extra arguments for `strata pop`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Install on this machine: binary, systemd units, configs, state directories.
    Install(install::InstallArgs),
    /// Benchmark strata against nginx, HAProxy and the machine's limit; writes bench/results/.
    Bench(bench::BenchArgs),
    /// Run the fuzz targets (cargo fuzz, nightly) for a while each.
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Setup => setup::run(),
        Cmd::Build => {
            setup::ensure()?;
            build::release_binary().map(|_| ())
        }
        Cmd::Test { args } => {
            setup::ensure()?;
            build::test(&args)
        }
        Cmd::Run { args } => {
            setup::ensure()?;
            build::run_pop(&args)
        }
        Cmd::Install(args) => install::run(args),
        Cmd::Bench(args) => {
            setup::ensure()?;
            bench::run(&args)
        }
        Cmd::Fuzz(args) => {
            setup::ensure()?;
            fuzz::run(args)
        }
    }
}
