//! The XDP guard's verdicts on crafted packets, run in the kernel with BPF_PROG_TEST_RUN (as
//! Katran tests its balancer): IPv4 and IPv6, SYN and non-SYN, UDP, fragments, VLAN tags,
//! truncated and malformed headers, lists and rate limits. Needs root (CI is root).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use strata_common::{guard_reason, GuardConfig};
use strata_kernel::xdp_guard::{GuardList, Prefix, XdpGuard};

const PASS: u32 = 2; // XDP_PASS
const DROP: u32 = 1; // XDP_DROP

fn skip_unless_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 && std::env::var_os("CI").is_none() {
        eprintln!("SKIPPED {test}: needs root for BPF_PROG_TEST_RUN (outside CI only)");
        return true;
    }
    false
}

fn ether(ethertype: u16, vlan_tags: &[u16]) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for tpid in vlan_tags {
        p.extend_from_slice(&tpid.to_be_bytes());
        p.extend_from_slice(&[0x00, 0x64]); // VLAN 100
    }
    p.extend_from_slice(&ethertype.to_be_bytes());
    p
}

fn tcp(flags: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t
}

fn ipv4(src: Ipv4Addr, proto: u8, frag_offset: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h[6..8].copy_from_slice(&frag_offset.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&[10, 0, 0, 1]);
    h.extend_from_slice(payload);
    h
}

fn ipv6(src: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
    h.extend_from_slice(payload);
    h
}

fn packet(eth: Vec<u8>, l3: Vec<u8>) -> Vec<u8> {
    let mut p = eth;
    p.extend_from_slice(&l3);
    // XDP test runs want at least an Ethernet frame's worth of data.
    p
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn v4(a: &str) -> Ipv4Addr {
    a.parse().expect("v4")
}

fn v6(a: &str) -> Ipv6Addr {
    a.parse().expect("v6")
}

async fn guard() -> XdpGuard {
    XdpGuard::load().expect("load the XDP guard (root, BPF)")
}

#[tokio::test]
async fn packets_without_rules_pass_and_malformed_ones_drop() {
    if skip_unless_root("packets_without_rules_pass") {
        return;
    }
    let g = guard().await;
    let src = v4("198.51.100.7");
    let cases: Vec<(&str, Vec<u8>, u32)> = vec![
        (
            "ipv4 tcp syn",
            packet(ether(0x0800, &[]), ipv4(src, 6, 0, &tcp(SYN))),
            PASS,
        ),
        (
            "ipv4 tcp ack",
            packet(ether(0x0800, &[]), ipv4(src, 6, 0, &tcp(ACK))),
            PASS,
        ),
        (
            "ipv4 udp",
            packet(ether(0x0800, &[]), ipv4(src, 17, 0, &[0u8; 8])),
            PASS,
        ),
        (
            "ipv4 non-first fragment",
            packet(ether(0x0800, &[]), ipv4(src, 6, 100, &[0u8; 8])),
            PASS,
        ),
        (
            "ipv4 first fragment (MF)",
            packet(ether(0x0800, &[]), ipv4(src, 6, 0x2000, &tcp(SYN))),
            PASS,
        ),
        (
            "ipv6 tcp syn",
            packet(ether(0x86dd, &[]), ipv6(v6("2001:db8::7"), 6, &tcp(SYN))),
            PASS,
        ),
        (
            "ipv6 udp",
            packet(ether(0x86dd, &[]), ipv6(v6("2001:db8::7"), 17, &[0u8; 8])),
            PASS,
        ),
        (
            "ipv6 fragment header",
            packet(ether(0x86dd, &[]), ipv6(v6("2001:db8::7"), 44, &[0u8; 16])),
            PASS,
        ),
        (
            "vlan ipv4 syn",
            packet(ether(0x0800, &[0x8100]), ipv4(src, 6, 0, &tcp(SYN))),
            PASS,
        ),
        (
            "qinq ipv6 syn",
            packet(
                ether(0x86dd, &[0x88a8, 0x8100]),
                ipv6(v6("2001:db8::7"), 6, &tcp(SYN)),
            ),
            PASS,
        ),
        ("arp", packet(ether(0x0806, &[]), vec![0u8; 28]), PASS),
        // (BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header, as drivers never
        // hand XDP one; the shortest frame it takes is a bare header.)
        ("ethernet header only", ether(0x0800, &[]), DROP),
        (
            "truncated ipv4 header",
            packet(ether(0x0800, &[]), vec![0x45, 0, 0, 40, 0, 0]),
            DROP,
        ),
        (
            "ipv4 ihl below 5",
            packet(ether(0x0800, &[]), {
                let mut h = ipv4(src, 6, 0, &tcp(SYN));
                h[0] = 0x44;
                h
            }),
            DROP,
        ),
        (
            "ipv4 options past the end",
            packet(ether(0x0800, &[]), {
                let mut h = ipv4(src, 17, 0, &[]);
                h[0] = 0x4f;
                h
            }),
            DROP,
        ),
        (
            "wrong ip version",
            packet(ether(0x0800, &[]), {
                let mut h = ipv4(src, 6, 0, &tcp(SYN));
                h[0] = 0x65;
                h
            }),
            DROP,
        ),
        (
            "truncated tcp header",
            packet(ether(0x0800, &[]), ipv4(src, 6, 0, &tcp(SYN)[..10])),
            DROP,
        ),
        (
            "tcp data offset below 5",
            packet(
                ether(0x0800, &[]),
                ipv4(src, 6, 0, &{
                    let mut t = tcp(SYN);
                    t[12] = 0x40;
                    t
                }),
            ),
            DROP,
        ),
        (
            "truncated ipv6 header",
            packet(ether(0x86dd, &[]), vec![0x60, 0, 0, 0, 0, 8, 6]),
            DROP,
        ),
        ("truncated vlan tag", packet(ether(0x8100, &[]), vec![0x00]), DROP),
    ];
    for (name, p, expected) in &cases {
        let got = g.test_run(p).expect("test run");
        assert_eq!(got, *expected, "{name}");
    }
    let counts = g.counters().expect("counters");
    let drops = cases.iter().filter(|c| c.2 == DROP).count() as u64;
    assert_eq!(
        counts[guard_reason::DROPPED_MALFORMED as usize],
        drops,
        "every malformed packet counted"
    );
    assert_eq!(
        counts[guard_reason::PASSED_NOT_IP as usize],
        1,
        "ARP counted as not IP"
    );
}

#[tokio::test]
async fn blocklist_drops_and_allowlist_wins() {
    if skip_unless_root("blocklist_drops_and_allowlist_wins") {
        return;
    }
    let g = guard().await;
    g.add(GuardList::Block, Prefix::parse("203.0.113.0/24").expect("prefix"))
        .expect("add");
    g.add(
        GuardList::Block,
        Prefix::parse("2001:db8:bad::/48").expect("prefix"),
    )
    .expect("add");
    g.add(GuardList::Allow, Prefix::parse("203.0.113.9").expect("prefix"))
        .expect("add");
    let syn4 = |a: &str| packet(ether(0x0800, &[]), ipv4(v4(a), 6, 0, &tcp(SYN)));
    let syn6 = |a: &str| packet(ether(0x86dd, &[]), ipv6(v6(a), 6, &tcp(SYN)));
    assert_eq!(
        g.test_run(&syn4("203.0.113.50")).expect("run"),
        DROP,
        "blocked /24"
    );
    assert_eq!(
        g.test_run(&syn4("203.0.113.9")).expect("run"),
        PASS,
        "allowlisted host inside the blocked /24"
    );
    assert_eq!(g.test_run(&syn4("203.0.114.1")).expect("run"), PASS, "next /24");
    assert_eq!(
        g.test_run(&syn6("2001:db8:bad::1")).expect("run"),
        DROP,
        "blocked /48"
    );
    assert_eq!(g.test_run(&syn6("2001:db8:bee::1")).expect("run"), PASS);
    let vlan = packet(
        ether(0x0800, &[0x8100]),
        ipv4(v4("203.0.113.50"), 17, 0, &[0u8; 8]),
    );
    assert_eq!(
        g.test_run(&vlan).expect("run"),
        DROP,
        "blocked behind a VLAN tag too"
    );
    assert!(g
        .remove(GuardList::Block, Prefix::parse("203.0.113.0/24").expect("p"))
        .expect("remove"));
    assert_eq!(
        g.test_run(&syn4("203.0.113.50")).expect("run"),
        PASS,
        "unblocked at run time"
    );
    let listed = g.list(GuardList::Block).expect("list");
    assert_eq!(
        listed,
        vec![Prefix {
            addr: IpAddr::V6(v6("2001:db8:bad::")),
            len: 48
        }]
    );
}

#[tokio::test]
async fn syn_and_packet_rates_are_enforced_per_source() {
    if skip_unless_root("syn_and_packet_rates_are_enforced_per_source") {
        return;
    }
    let g = guard().await;
    // 1 SYN per second with a burst of 5: of 20 back-to-back SYNs, 5 pass.
    g.set_limits(GuardConfig {
        syn_rate: 1,
        syn_burst: 5,
        packet_rate: 0,
        packet_burst: 0,
    })
    .expect("limits");
    let syn = packet(ether(0x0800, &[]), ipv4(v4("192.0.2.1"), 6, 0, &tcp(SYN)));
    let ack = packet(ether(0x0800, &[]), ipv4(v4("192.0.2.1"), 6, 0, &tcp(ACK)));
    let passed = (0..20).filter(|_| g.test_run(&syn).expect("run") == PASS).count();
    assert_eq!(passed, 5, "burst of 5 SYNs");
    assert_eq!(
        g.test_run(&ack).expect("run"),
        PASS,
        "established traffic is not a SYN"
    );
    let other = packet(ether(0x0800, &[]), ipv4(v4("192.0.2.2"), 6, 0, &tcp(SYN)));
    assert_eq!(
        g.test_run(&other).expect("run"),
        PASS,
        "another source has its own bucket"
    );
    let counts = g.counters().expect("counters");
    assert_eq!(counts[guard_reason::DROPPED_SYN_RATE as usize], 15);

    g.set_limits(GuardConfig {
        syn_rate: 0,
        syn_burst: 0,
        packet_rate: 1,
        packet_burst: 3,
    })
    .expect("limits");
    let udp = packet(ether(0x86dd, &[]), ipv6(v6("2001:db8::99"), 17, &[0u8; 8]));
    let passed = (0..10).filter(|_| g.test_run(&udp).expect("run") == PASS).count();
    assert_eq!(passed, 3, "burst of 3 packets");
    assert_eq!(
        g.counters().expect("counters")[guard_reason::DROPPED_PACKET_RATE as usize],
        7
    );
}
