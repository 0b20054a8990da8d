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
use strata_edge::server::handover::Successor;
use strata_edge::settings::ServeConfig;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some(resolved) = serve_config(&cli.command) {
        let (role, print_config, cfg) = resolved?;
        if print_config {
            print!("{}", config::to_toml(&cfg));
            return Ok(());
        }
        return runtime(cfg.data_path.worker_threads)?.block_on(roles::serve::run(role, cfg, reread_config));
    }
    match cli.command {
        Command::Storage(_) => unreachable!("handled by serve_config"),
        Command::Edge(a) => match a.command {
            Some(EdgeCommand::Guard(ref g)) => roles::guard_cli::run(g),
            Some(EdgeCommand::Reload(ref p)) => roles::process_cli::run(p, Successor::SameBinary),
            Some(EdgeCommand::Upgrade(ref p)) => roles::process_cli::run(p, Successor::OnDisk),
            None => unreachable!("handled by serve_config"),
        },
        Command::Pop(args) => runtime(0)?.block_on(roles::pop::run(args)),
        Command::Control(args) => roles::control_admin::run(args),
        Command::Ingest(args) => roles::ingest::run(&args),
        Command::Job(args) => {
            roles::cli_output::exit_quietly_on_closed_stdout();
            roles::job::run(*args)
        }
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

/// The role, `--print-config` and configuration of `strata storage` / `strata edge` (None for
/// the other commands): defaults, then the TOML file, then the role's flags, then the common
/// flags.
fn serve_config(command: &Command) -> Option<anyhow::Result<(&'static str, bool, ServeConfig)>> {
    let (role, common, defaults) = match command {
        Command::Storage(a) => {
            let resolved = (|| {
                let mut defaults = ServeConfig::storage_defaults();
                if let Some(path) = &a.common.config {
                    defaults = config::load(path, defaults)?;
                }
                a.control.apply(&mut defaults.control);
                if let Some(c) = &a.cluster {
                    defaults.control.cluster = c.clone();
                }
                Ok::<_, anyhow::Error>((defaults, a.root.clone()))
            })();
            ("storage", &a.common, resolved)
        }
        Command::Edge(a) if a.command.is_none() => {
            let resolved = (|| {
                let mut defaults = ServeConfig::edge_defaults();
                if let Some(path) = &a.common.config {
                    defaults = config::load(path, defaults)?;
                }
                a.guard.apply(&mut defaults.guard);
                a.control.apply(&mut defaults.control);
                a.director.apply(&mut defaults.director);
                for flag in &a.https {
                    strata_edge::tls::https_settings::HttpsListener::add_flag(&mut defaults.https, flag)
                        .map_err(anyhow::Error::msg)?;
                }
                a.lookup.apply(&mut defaults).context("--cluster/--tenant")?;
                Ok::<_, anyhow::Error>((defaults, a.cache_dir.clone()))
            })();
            ("edge", &a.common, resolved)
        }
        _ => return None,
    };
    let args = ServeArgs {
        config: None,
        ..common.clone()
    };
    Some(
        defaults
            .and_then(|(defaults, root)| Ok(args.resolve(defaults, root)?))
            .map(|cfg| (role, common.print_config, cfg))
            .with_context(|| format!("strata {role}: configuration")),
    )
}

/// Reads this process's configuration again, from its own command line (a reload).
fn reread_config() -> anyhow::Result<ServeConfig> {
    let cli =
        Cli::try_parse_from(std::env::args_os()).context("parsing this process's command line again")?;
    match serve_config(&cli.command) {
        Some(resolved) => resolved.map(|(_, _, cfg)| cfg),
        None => anyhow::bail!("this process is not a storage server or an edge"),
    }
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
