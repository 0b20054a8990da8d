//! Scenario (b) over veth: the storage origin in a network namespace of its own, reached from
//! the proxies (in the root namespace) over a veth pair, as a storage tier on another host is.
//! The pair keeps the kernel's veth defaults (GSO on, GRO off: no NAPI without XDP), unlike a
//! real NIC that aggregates received segments; the report's title says "veth". The namespace
//! and the pair go away when this is dropped.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use crate::job_lan::ip;
use crate::servers::{ServerEnv, ServerProcess};

/// The origin's namespace and its veth pair.
pub struct VethOrigin {
    ns: String,
    host_if: String,
}

/// Addresses of the pair's two ends.
const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
const ORIGIN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 2);

impl VethOrigin {
    /// Creates the namespace and the pair (needs root).
    pub fn new() -> anyhow::Result<VethOrigin> {
        let tag = format!("bo{}", std::process::id() % 100_000);
        let v = VethOrigin {
            ns: format!("{tag}ns"),
            host_if: format!("{tag}h"),
        };
        let peer = format!("{tag}o");
        let _ = Command::new("ip").args(["netns", "del", &v.ns]).output();
        ip(&["netns", "add", &v.ns])?;
        ip(&["link", "add", &v.host_if, "type", "veth", "peer", "name", &peer])?;
        ip(&["link", "set", &peer, "netns", &v.ns])?;
        ip(&["addr", "add", &format!("{HOST_ADDR}/30"), "dev", &v.host_if])?;
        ip(&["link", "set", &v.host_if, "up"])?;
        ip(&[
            "-n",
            &v.ns,
            "addr",
            "add",
            &format!("{ORIGIN_ADDR}/30"),
            "dev",
            &peer,
        ])?;
        ip(&["-n", &v.ns, "link", "set", &peer, "up"])?;
        ip(&["-n", &v.ns, "link", "set", "lo", "up"])?;
        Ok(v)
    }

    /// A strata storage server over `root` inside the namespace, listening on the pair's far end.
    pub fn storage(&self, env: &ServerEnv, root: &Path) -> anyhow::Result<ServerProcess> {
        let addr = SocketAddr::V4(SocketAddrV4::new(ORIGIN_ADDR, 8081));
        let admin = SocketAddr::V4(SocketAddrV4::new(ORIGIN_ADDR, 9081));
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/var/run/netns/{}", self.ns))
            .arg(&env.strata)
            .arg("storage")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .args([
                "--worker-threads",
                "1",
                "--splice-workers",
                "1",
                "--telemetry",
                "off",
            ])
            .arg("--root")
            .arg(root)
            .env("RUST_LOG", "warn");
        ServerProcess::spawn("origin-veth", cmd, addr, Some(admin), env.cpu, &env.logs)
            .context("starting the origin in its namespace")
    }
}

impl Drop for VethOrigin {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}
