//! Helpers for the nameserver tests: `strata dns` joined to a control plane, `dig` (from
//! Debian's bind9-dnsutils) run as a user runs it, and the SRV answers it prints.

use std::net::SocketAddr;
use std::process::Command;

use crate::control::Control;
use crate::Strata;

/// Starts `strata dns` for `domain` on an ephemeral port, refreshing the map every 200 ms
/// and reporting query counts every 300 ms.
pub fn start_dns(control: &Control, domain: &str, netns: Option<&str>, listen_ip: &str) -> Strata {
    let token = control.service_token_file("dns-1");
    let url = control.url();
    let listen = format!("{listen_ip}:0");
    let args = [
        "dns",
        "--listen",
        &listen,
        "--admin-listen",
        &listen,
        "--domain",
        domain,
        "--control",
        &url,
        "--control-token-file",
        token.to_str().expect("utf-8"),
        "--name",
        "dns-1",
        "--map-refresh",
        "200ms",
        "--report-every",
        "300ms",
    ];
    Strata::start_in(netns, &args, 1)
}

/// `dig @server -p port ARGS` (inside `netns` when given); its standard output.
pub fn dig(server: SocketAddr, netns: Option<&str>, args: &[&str]) -> String {
    let at = format!("@{}", server.ip());
    let port = server.port().to_string();
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "dig"]);
            c
        }
        None => Command::new("dig"),
    };
    let out = cmd
        .arg(&at)
        .args(["-p", &port, "+time=2", "+tries=2"])
        .args(args)
        .output()
        .expect("dig (bind9-dnsutils) is installed by cargo xtask setup");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One SRV record as `dig +short` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// The SRV records of a `dig +short` output, lowest priority first (then as answered).
pub fn srv_records(short: &str) -> Vec<Srv> {
    let mut records: Vec<Srv> = short
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f[..] {
                [p, w, port, target] => Some(Srv {
                    priority: p.parse().ok()?,
                    weight: w.parse().ok()?,
                    port: port.parse().ok()?,
                    target: target.trim_end_matches('.').to_string(),
                }),
                _ => None,
            }
        })
        .collect();
    records.sort_by_key(|r| r.priority);
    records
}

/// The region of an SRV target (`a1.rwest.cdn.test` → `west`).
pub fn region_of(target: &str) -> Option<String> {
    target
        .split('.')
        .find_map(|l| l.strip_prefix('r').filter(|r| !r.is_empty()).map(String::from))
}

/// The regions an SRV answer ranks first (every region at the lowest priority).
pub fn first_regions(short: &str) -> Vec<String> {
    let records = srv_records(short);
    let Some(best) = records.first().map(|r| r.priority) else {
        return Vec::new();
    };
    let mut regions: Vec<String> = records
        .iter()
        .filter(|r| r.priority == best)
        .filter_map(|r| region_of(&r.target))
        .collect();
    regions.sort();
    regions.dedup();
    regions
}

/// The status dig printed (NOERROR, NXDOMAIN, REFUSED, ...).
pub fn status(full: &str) -> String {
    full.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("")
        .to_string()
}

/// The IPv4 address as the seed writes it in an SRV name: a decimal u32 in network byte order.
pub fn ip_label(ip: std::net::Ipv4Addr) -> String {
    u32::from(ip).to_string()
}
