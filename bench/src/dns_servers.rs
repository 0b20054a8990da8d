//! Scenario (f)'s processes, started like the other servers (pinned, logging into logs/,
//! stopped when dropped): strata's control plane (on the load generator's CPU: it only feeds
//! the map), a `strata dns` nameserver and Knot DNS over a static zone (each on the server CPU).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use crate::peer_configs;
use crate::servers::{free_addr, ServerEnv, ServerProcess};

/// The zone both nameservers answer for.
pub const DOMAIN: &str = "cdn.test";

impl ServerEnv {
    /// `strata control serve` over `data_dir`, solving the map every second, on `cpu`.
    pub fn strata_control(&self, name: &str, data_dir: &Path, cpu: usize) -> anyhow::Result<ServerProcess> {
        let addr = free_addr()?;
        let mut cmd = Command::new(&self.strata);
        cmd.args(["control", "serve", "--data-dir"])
            .arg(data_dir)
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--map-interval", "1s"])
            .env("RUST_LOG", "warn");
        ServerProcess::spawn(name, cmd, addr, None, cpu, &self.logs)
    }

    /// `strata dns` for `DOMAIN`, reading the map from `control` with the token in `token_file`.
    pub fn strata_dns(
        &self,
        name: &str,
        control: SocketAddr,
        token_file: &Path,
    ) -> anyhow::Result<ServerProcess> {
        let (addr, admin) = (free_addr()?, free_addr()?);
        let mut cmd = Command::new(&self.strata);
        cmd.arg("dns")
            .arg("--control")
            .arg(format!("http://{control}"))
            .arg("--control-token-file")
            .arg(token_file)
            .args(["--name", "dns-1", "--domain", DOMAIN, "--listen"])
            .arg(addr.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .env("RUST_LOG", "warn");
        ServerProcess::spawn(name, cmd, addr, Some(admin), self.cpu, &self.logs)
    }

    /// knotd in the foreground over `zone` (the zone file's text), config and files in the
    /// work directory.
    pub fn knot(&self, name: &str, zone: &str) -> anyhow::Result<ServerProcess> {
        let addr = free_addr()?;
        let dir = self.work.join("peers").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db")).with_context(|| format!("creating {}/db", dir.display()))?;
        let zone_file = dir.join(format!("{DOMAIN}.zone"));
        std::fs::write(&zone_file, zone).with_context(|| format!("writing {}", zone_file.display()))?;
        let conf = dir.join("knot.conf");
        std::fs::write(&conf, peer_configs::knot(addr, &dir, DOMAIN, &zone_file))
            .with_context(|| format!("writing {}", conf.display()))?;
        let mut cmd = Command::new("knotd");
        cmd.arg("-c").arg(&conf);
        ServerProcess::spawn(name, cmd, addr, None, self.cpu, &self.logs)
    }
}
