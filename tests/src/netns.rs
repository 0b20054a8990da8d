//! Test hosts in network namespaces: an edge and client hosts joined through a bridge, with
//! unique names, removed when dropped. Addresses come from 198.18.0.0/15 (RFC 2544, set aside
//! for network testing) and never leave the namespaces the test created.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `ip ARGS`, panicking with the command line and its error output if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("iproute2 is installed (cargo xtask setup)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Like `ip` but returns stdout.
pub fn ip_output(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("iproute2");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A LAN: a bridge namespace, an edge namespace and `clients` client namespaces, one veth
/// each into the bridge. Host `i` (edge = 0) has address 198.18.N.(i+1)/24.
pub struct Lan {
    pub tag: String,
    pub subnet: u8,
    pub edge_ns: String,
    /// The edge's interface (where an XDP guard attaches).
    pub edge_if: String,
    pub client_ns: Vec<String>,
    switch_ns: String,
}

impl Lan {
    pub fn new(clients: usize) -> Lan {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let subnet = ((std::process::id() * 7 + n * 13) % 250) as u8 + 1;
        let tag = format!("s{}{}", std::process::id() % 100_000, n);
        let switch_ns = format!("{tag}sw");
        let edge_ns = format!("{tag}ed");
        let client_ns: Vec<String> = (0..clients).map(|i| format!("{tag}c{i}")).collect();
        let lan = Lan {
            edge_if: format!("{tag}e"),
            tag: tag.clone(),
            subnet,
            edge_ns,
            client_ns,
            switch_ns,
        };
        ip(&["netns", "add", &lan.switch_ns]);
        ip(&["-n", &lan.switch_ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lan.switch_ns, "link", "set", "br0", "up"]);
        let mut hosts = vec![(lan.edge_ns.clone(), lan.edge_if.clone())];
        for (i, ns) in lan.client_ns.iter().enumerate() {
            hosts.push((ns.clone(), format!("{tag}h{i}")));
        }
        for (i, (ns, ifname)) in hosts.iter().enumerate() {
            ip(&["netns", "add", ns]);
            let peer = format!("{tag}p{i}");
            ip(&["link", "add", ifname, "type", "veth", "peer", "name", &peer]);
            ip(&["link", "set", ifname, "netns", ns]);
            ip(&["link", "set", &peer, "netns", &lan.switch_ns]);
            ip(&["-n", &lan.switch_ns, "link", "set", &peer, "master", "br0", "up"]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", lan.addr(i)),
                "dev",
                ifname,
            ]);
            ip(&["-n", ns, "link", "set", ifname, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        lan
    }

    /// Address of host `i` (0 = edge, 1.. = clients).
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, i as u8 + 1)
    }

    pub fn edge_addr(&self) -> Ipv4Addr {
        self.addr(0)
    }

    /// Address of client `c` (0-based).
    pub fn client_addr(&self, c: usize) -> Ipv4Addr {
        self.addr(c + 1)
    }

    /// The client's interface name inside its namespace.
    pub fn client_if(&self, c: usize) -> String {
        format!("{}h{c}", self.tag)
    }

    /// Adds `cidr` to interface `ifname` in namespace `ns`.
    pub fn add_addr(&self, ns: &str, ifname: &str, cidr: &str) {
        ip(&["-n", ns, "addr", "add", cidr, "dev", ifname]);
    }

    /// Shapes the bridge's link toward client `c` (the client's download direction) to `rate`
    /// with tc tbf.
    pub fn shape_download(&self, c: usize, rate: &str) {
        let port = format!("{}p{}", self.tag, c + 1);
        let out = Command::new("tc")
            .args([
                "-n",
                &self.switch_ns,
                "qdisc",
                "add",
                "dev",
                &port,
                "root",
                "tbf",
                "rate",
                rate,
            ])
            .args(["burst", "32kb", "latency", "400ms"])
            .output()
            .expect("tc (iproute2) is installed");
        assert!(
            out.status.success(),
            "tc tbf: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Joins the test's own (root) namespace to the LAN as host `host` (198.18.N.host/24), so
    /// processes the test starts there (a control plane, a nameserver) and the test itself
    /// talk to the hosts directly. The link goes when the LAN is dropped.
    pub fn join_root(&self, host: u8) -> Ipv4Addr {
        let a = Ipv4Addr::new(198, 18, self.subnet, host);
        let ours = format!("{}r", self.tag);
        let peer = format!("{}rp", self.tag);
        ip(&["link", "add", &ours, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &self.switch_ns]);
        ip(&["-n", &self.switch_ns, "link", "set", &peer, "master", "br0", "up"]);
        ip(&["addr", "add", &format!("{a}/24"), "dev", &ours]);
        ip(&["link", "set", &ours, "up"]);
        a
    }

    /// Adds a second address to client `c` (for a blocked and an allowed source on one host).
    pub fn add_client_addr(&self, c: usize, host: u8) -> Ipv4Addr {
        let a = Ipv4Addr::new(198, 18, self.subnet, host);
        ip(&[
            "-n",
            &self.client_ns[c],
            "addr",
            "add",
            &format!("{a}/24"),
            "dev",
            &self.client_if(c),
        ]);
        a
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.client_ns.iter().chain([&self.edge_ns, &self.switch_ns]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`: sockets it opens live there.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on this thread only, with a namespace fd we hold open.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

/// Connects from `source` (an address of the calling thread's namespace) to `dest`, with a
/// connect timeout; `None` if it does not connect.
pub fn connect_from(
    source: Ipv4Addr,
    dest: SocketAddr,
    timeout: std::time::Duration,
) -> Option<std::net::TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.bind(&SocketAddr::from((source, 0)).into())
        .expect("bind source address");
    sock.connect_timeout(&dest.into(), timeout).ok()?;
    let s: std::net::TcpStream = sock.into();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .expect("timeout");
    Some(s)
}

/// Sends `count` TCP SYNs from `source` to `dest` through a raw socket (in the calling thread's
/// namespace), from varying source ports; returns how many were sent.
pub fn syn_flood(source: Ipv4Addr, dest: SocketAddr, count: u32) -> u32 {
    // SAFETY: plain socket creation; checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_TCP) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let one: libc::c_int = 1;
    // SAFETY: valid fd and option pointer.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_HDRINCL,
            (&one as *const libc::c_int).cast(),
            4,
        )
    };
    let SocketAddr::V4(dest) = dest else {
        panic!("IPv4 only")
    };
    let mut sent = 0;
    for i in 0..count {
        let pkt = syn_packet(source, *dest.ip(), 20_000 + (i % 40_000) as u16, dest.port(), i);
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(dest.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: buffer and address are valid for the call.
        let n = unsafe {
            libc::sendto(
                fd,
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n == pkt.len() as isize {
            sent += 1;
        }
    }
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(fd) };
    sent
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from(chunk[0]) << 8
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn syn_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let mut pseudo = Vec::with_capacity(32);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    pseudo.extend_from_slice(&tcp);
    let c = checksum(&pseudo);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&tcp);
    ip
}
