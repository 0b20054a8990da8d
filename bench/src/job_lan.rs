//! Scenario (g)'s network: a bridge namespace, a storage host and `n` edge hosts, each in a
//! network namespace of its own with one veth into the bridge, and the harness's own namespace
//! joined to the bridge (the control plane listens there). Addresses from 198.19.77.0/24
//! (RFC 2544 benchmark space). Everything is removed when dropped.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{bail, Context as _};

/// The LAN of a job benchmark.
pub struct JobLan {
    tag: String,
    bridge: String,
    /// Host namespaces: 0 the storage server, 1..=n the edges.
    pub hosts: Vec<String>,
}

pub(crate) fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl JobLan {
    pub fn new(edges: usize) -> anyhow::Result<JobLan> {
        let tag = format!("bj{}", std::process::id() % 100_000);
        let lan = JobLan {
            bridge: format!("{tag}sw"),
            hosts: (0..=edges).map(|i| format!("{tag}h{i}")).collect(),
            tag: tag.clone(),
        };
        ip(&["netns", "add", &lan.bridge])?;
        ip(&["-n", &lan.bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &lan.bridge, "link", "set", "br0", "up"])?;
        for (i, ns) in lan.hosts.iter().enumerate() {
            ip(&["netns", "add", ns])?;
            let (ours, peer) = (lan.ifname(i), format!("{tag}p{i}"));
            ip(&["link", "add", &ours, "type", "veth", "peer", "name", &peer])?;
            ip(&["link", "set", &ours, "netns", ns])?;
            ip(&["link", "set", &peer, "netns", &lan.bridge])?;
            ip(&["-n", &lan.bridge, "link", "set", &peer, "master", "br0", "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", lan.addr(i)),
                "dev",
                &ours,
            ])?;
            ip(&["-n", ns, "link", "set", &ours, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        let (ours, peer) = (format!("{tag}r"), format!("{tag}rp"));
        ip(&["link", "add", &ours, "type", "veth", "peer", "name", &peer])?;
        ip(&["link", "set", &peer, "netns", &lan.bridge])?;
        ip(&["-n", &lan.bridge, "link", "set", &peer, "master", "br0", "up"])?;
        ip(&["addr", "add", &format!("{}/24", lan.root_addr()), "dev", &ours])?;
        ip(&["link", "set", &ours, "up"])?;
        Ok(lan)
    }

    /// Host `i`'s interface (inside its namespace).
    pub fn ifname(&self, i: usize) -> String {
        format!("{}e{i}", self.tag)
    }

    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, 77, i as u8 + 1)
    }

    /// The harness's own address on the LAN.
    pub fn root_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, 77, 250)
    }

    /// Shapes everything host `i` sends with tc tbf.
    pub fn shape_upload(&self, i: usize, rate: &str) -> anyhow::Result<()> {
        let out = Command::new("tc")
            .args([
                "-n",
                &self.hosts[i],
                "qdisc",
                "replace",
                "dev",
                &self.ifname(i),
                "root",
                "tbf",
            ])
            .args(["rate", rate, "burst", "32kb", "latency", "400ms"])
            .output()
            .context("running tc")?;
        if !out.status.success() {
            bail!(
                "tc tbf on host {i}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for JobLan {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.bridge]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
