//! The `strata` binary: parses the command line, sets up logging and the runtime, runs a role.

use anyhow::Context as _;
use clap::Parser;
use strata::cli::{Cli, Command};
use strata::config::ServeConfig;
use strata::roles;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let (role, cfg) = match cli.command {
        Command::Storage(a) => (
            "storage",
            a.common.resolve(ServeConfig::storage_defaults(), a.root.clone()),
            a.common.print_config,
        ),
        Command::Edge(a) => (
            "edge",
            a.common
                .resolve(ServeConfig::edge_defaults(), a.cache_dir.clone()),
            a.common.print_config,
        ),
        Command::Pop(args) => return runtime(0)?.block_on(roles::pop::run(args)),
    }
    .pipe(|(role, cfg, print)| (role, cfg.map(|c| (c, print))));
    let (cfg, print) = cfg.with_context(|| format!("strata {role}: configuration"))?;
    if print {
        print!("{}", cfg.to_toml());
        return Ok(());
    }
    runtime(cfg.data_path.worker_threads)?.block_on(roles::serve::run(role, cfg))
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let threads = if threads == 0 {
        strata::server::cores()
    } else {
        threads
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}
impl<T> Pipe for T {}
