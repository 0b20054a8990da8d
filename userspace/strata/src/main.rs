//! The `strata` binary: parses the command line, sets up logging and the runtime, runs a role.
//! The top layer: it assembles the crates below (http, kernel, wire, edge, control) into roles
//! and client commands, and holds nothing a role needs at run time but its configuration.

mod cli;
mod config;
mod control_cli;
mod demo_data;
mod director_cli;
mod job_cli;
mod live_cli;
mod roles;

use std::io::IsTerminal as _;

use anyhow::Context as _;
use clap::Parser;
use cli::{Cli, Command, EdgeCommand, ServeArgs};
use strata_edge::settings::ServeConfig;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Storage(a) => {
            let mut defaults = ServeConfig::storage_defaults();
            if let Some(path) = &a.common.config {
                defaults = config::load(path, defaults).context("strata storage: configuration")?;
            }
            a.control.apply(&mut defaults.control);
            if let Some(c) = &a.cluster {
                defaults.control.cluster = c.clone();
            }
            let args = ServeArgs {
                config: None,
                ..a.common
            };
            serve("storage", &args, defaults, a.root)
        }
        Command::Edge(a) => match a.command {
            Some(EdgeCommand::Guard(ref g)) => roles::guard_cli::run(g),
            None => {
                let mut defaults = ServeConfig::edge_defaults();
                if let Some(path) = &a.common.config {
                    defaults = config::load(path, defaults).context("strata edge: configuration")?;
                }
                a.guard.apply(&mut defaults.guard);
                a.control.apply(&mut defaults.control);
                a.director.apply(&mut defaults.director);
                a.lookup
                    .apply(&mut defaults)
                    .context("strata edge: --cluster/--tenant")?;
                let args = ServeArgs {
                    config: None,
                    ..a.common
                };
                serve("edge", &args, defaults, a.cache_dir)
            }
        },
        Command::Pop(args) => runtime(0)?.block_on(roles::pop::run(args)),
        Command::Control(args) => roles::control_admin::run(args),
        Command::Ingest(args) => roles::ingest::run(&args),
        Command::Job(args) => roles::job::run(*args),
        Command::Fetch(args) => roles::fetch::run(&args),
        Command::Dns(args) => {
            let cfg = args.resolve().context("strata dns: configuration")?;
            if args.print_config {
                print!("{}", config::to_toml(&cfg));
                return Ok(());
            }
            runtime(0)?.block_on(roles::dns::run(cfg))
        }
        Command::Live(args) => {
            let cfg = args.resolve().context("strata live: configuration")?;
            if args.print_config {
                print!("{}", config::to_toml(&cfg));
                return Ok(());
            }
            runtime(0)?.block_on(strata_live::run(cfg)).context("strata live")
        }
    }
}

/// Runs a serving role (or prints its configuration).
fn serve(
    role: &'static str,
    args: &ServeArgs,
    defaults: ServeConfig,
    root: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let cfg = args
        .resolve(defaults, root)
        .with_context(|| format!("strata {role}: configuration"))?;
    if args.print_config {
        print!("{}", config::to_toml(&cfg));
        return Ok(());
    }
    runtime(cfg.data_path.worker_threads)?.block_on(roles::serve::run(role, cfg))
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let threads = if threads == 0 {
        strata_edge::server::kernel_setup::cores()
    } else {
        threads
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}
