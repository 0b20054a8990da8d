//! Client-routing fixtures across real links: an edge of a region on a LAN host, and traffic
//! shaping toward one destination only (htb class with a tbf queue), changeable mid-run.

use std::process::Command;

use crate::control::Control;
use crate::netns::Lan;
use crate::Strata;

/// An edge of `region` on client host `c` of the LAN, serving `cache`.
pub fn edge(
    lan: &Lan,
    control: &Control,
    c: usize,
    name: &str,
    region: &str,
    cache: &std::path::Path,
) -> Strata {
    let listen = format!("{}:8080", lan.client_addr(c));
    let admin = format!("{}:9080", lan.client_addr(c));
    let link = control.link_args(name);
    let mut args = vec![
        "edge",
        "--cache-dir",
        cache.to_str().expect("utf-8"),
        "--listen",
        &listen,
        "--admin-listen",
        &admin,
        "--body-path",
        "io_uring",
        "--telemetry",
        "required",
        "--region",
        region,
    ];
    args.extend(link.iter().map(String::as_str));
    Strata::start_in(Some(&lan.client_ns[c]), &args, 1)
}

/// Runs `tc ARGS` in namespace `ns`.
fn tc(ns: &str, args: &[&str]) {
    let out = Command::new("tc")
        .args(["-n", ns])
        .args(args)
        .output()
        .expect("tc");
    assert!(
        out.status.success(),
        "tc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Shapes traffic from namespace `ns`'s interface `ifname` toward `dst` (only): an htb class
/// of `rate` with a tbf queue for that destination, everything else unshaped.
pub fn shape_toward(ns: &str, ifname: &str, dst: &str, rate: &str) {
    let tc = |args: &[&str]| tc(ns, args);
    tc(&[
        "qdisc", "add", "dev", ifname, "root", "handle", "1:", "htb", "default", "10", "r2q", "1000",
    ]);
    tc(&[
        "class", "add", "dev", ifname, "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit",
    ]);
    tc(&[
        "class", "add", "dev", ifname, "parent", "1:", "classid", "1:30", "htb", "rate", rate,
    ]);
    tc(&[
        "qdisc", "add", "dev", ifname, "parent", "1:30", "handle", "30:", "tbf", "rate", rate, "burst",
        "16kb", "latency", "400ms",
    ]);
    tc(&[
        "filter", "add", "dev", ifname, "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip",
        "dst", dst, "flowid", "1:30",
    ]);
}

/// Changes the rate of what [`shape_toward`] shaped on `ifname`.
pub fn reshape(ns: &str, ifname: &str, rate: &str) {
    tc(
        ns,
        &[
            "class", "change", "dev", ifname, "parent", "1:", "classid", "1:30", "htb", "rate", rate,
        ],
    );
    tc(
        ns,
        &[
            "qdisc", "change", "dev", ifname, "parent", "1:30", "handle", "30:", "tbf", "rate", rate,
            "burst", "16kb", "latency", "400ms",
        ],
    );
}
