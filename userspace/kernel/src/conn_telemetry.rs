//! Loads and attaches the `conn_telemetry` sock_ops program and reads its counters.
//!
//! The program is embedded in the binary (built by build.rs with aya-build). It is attached to
//! the cgroup v2 group this process runs in, through a bpf_link that the kernel removes when
//! the process exits, crashed or not; it counts only connections on the edge's listen port.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray};
use aya::programs::{CgroupAttachMode, SockOps};
use aya::Ebpf;
use strata_common::{
    prefix_kind, ConnCounters, ConnFilter, PrefixKey, PrefixStats, CONN_COUNTERS_MAP, CONN_FILTER_MAP,
    CONN_PREFIXES_MAP, CONN_TELEMETRY_PROG, UPSTREAM_SERVERS_MAP,
};
use thiserror::Error;

use super::ebpf_log;

/// The compiled eBPF object.
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/strata-conn-telemetry"));

/// Why the telemetry program could not be used.
#[derive(Debug, Error)]
pub enum TelemetryError {
    #[error("the strata binary was built without its eBPF programs (AYA_BUILD_SKIP?)")]
    NotBuilt,
    #[error("loading the eBPF object failed (needs root or CAP_BPF+CAP_NET_ADMIN): {0}")]
    Load(#[from] aya::EbpfError),
    #[error("eBPF program or map {0} missing from the object")]
    Missing(&'static str),
    #[error("eBPF program {CONN_TELEMETRY_PROG}: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("eBPF map: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error(
        "no cgroup v2 hierarchy in /proc/self/mountinfo; sock_ops needs one (note: `ip netns exec` remounts /sys \
         and hides it; enter the namespace with `nsenter --net=/var/run/netns/NAME` instead)"
    )]
    NoCgroup2,
    #[error("opening cgroup {path}: {source}")]
    Cgroup { path: PathBuf, source: std::io::Error },
}

/// The attached program and its counter map.
pub struct ConnTelemetry {
    counters: Mutex<PerCpuArray<MapData, ConnCounters>>,
    prefixes: Mutex<BpfHashMap<MapData, PrefixKey, PrefixStats>>,
    cgroup: PathBuf,
    // Keeps the program and its bpf_link alive; dropping it detaches.
    _ebpf: Ebpf,
}

impl std::fmt::Debug for ConnTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnTelemetry")
            .field("cgroup", &self.cgroup)
            .finish()
    }
}

impl ConnTelemetry {
    /// Loads the program, points it at `port` (client connections) and `upstreams` (storage
    /// servers), and attaches it to this process's cgroup. Must run inside a tokio runtime (the
    /// aya-log reader is a task).
    pub fn attach(port: u16, upstreams: &[SocketAddr]) -> Result<ConnTelemetry, TelemetryError> {
        if PROGRAM.is_empty() {
            return Err(TelemetryError::NotBuilt);
        }
        let mut ebpf = Ebpf::load(PROGRAM)?;
        ebpf_log::forward(&mut ebpf, CONN_TELEMETRY_PROG);
        {
            let map = ebpf
                .map_mut(CONN_FILTER_MAP)
                .ok_or(TelemetryError::Missing(CONN_FILTER_MAP))?;
            let mut filter: Array<_, ConnFilter> = Array::try_from(map)?;
            filter.set(
                0,
                ConnFilter {
                    local_port: u32::from(port),
                    _reserved: 0,
                },
                0,
            )?;
        }
        {
            let map = ebpf
                .map_mut(UPSTREAM_SERVERS_MAP)
                .ok_or(TelemetryError::Missing(UPSTREAM_SERVERS_MAP))?;
            let mut servers: BpfHashMap<_, PrefixKey, u8> = BpfHashMap::try_from(map)?;
            for server in upstreams {
                servers.insert(upstream_key(*server), 1, 0)?;
            }
        }
        let cgroup = own_cgroup2_dir()?;
        let cgroup_file = File::open(&cgroup).map_err(|source| TelemetryError::Cgroup {
            path: cgroup.clone(),
            source,
        })?;
        let program: &mut SockOps = ebpf
            .program_mut(CONN_TELEMETRY_PROG)
            .ok_or(TelemetryError::Missing(CONN_TELEMETRY_PROG))?
            .try_into()?;
        program.load()?;
        // Through a bpf_link (kernel >= 5.7) the attachment is always multi-program and the
        // kernel rejects any flag, so the default mode is the right one here.
        program.attach(&cgroup_file, CgroupAttachMode::Single)?;
        let map = ebpf
            .take_map(CONN_COUNTERS_MAP)
            .ok_or(TelemetryError::Missing(CONN_COUNTERS_MAP))?;
        let counters = PerCpuArray::try_from(map)?;
        let map = ebpf
            .take_map(CONN_PREFIXES_MAP)
            .ok_or(TelemetryError::Missing(CONN_PREFIXES_MAP))?;
        let prefixes = BpfHashMap::try_from(map)?;
        Ok(ConnTelemetry {
            counters: Mutex::new(counters),
            prefixes: Mutex::new(prefixes),
            cgroup,
            _ebpf: ebpf,
        })
    }

    /// The cgroup the program is attached to.
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }

    /// The counters summed over all CPUs.
    pub fn counters(&self) -> Result<ConnCounters, TelemetryError> {
        let map = self
            .counters
            .lock()
            .map_err(|_| TelemetryError::Missing(CONN_COUNTERS_MAP))?;
        let per_cpu = map.get(&0, 0)?;
        let mut total = ConnCounters::default();
        for c in per_cpu.iter() {
            total.add(c);
        }
        Ok(total)
    }
}

/// The map key of a storage server.
fn upstream_key(server: SocketAddr) -> PrefixKey {
    let addr = match server.ip() {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    PrefixKey {
        addr,
        kind: prefix_kind::UPSTREAM,
        port: u32::from(server.port()),
    }
}

/// Statistics of one client prefix or storage server, as the director and the network map
/// read them.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PrefixReport {
    /// "client" (a /24 or /48 of clients) or "upstream" (one storage server).
    pub kind: &'static str,
    /// `a.b.c.0/24` or `x:y:z::/48` for clients; `addr:port` for storage servers.
    pub prefix: String,
    pub connections: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub retransmits: u64,
    /// Mean smoothed RTT at close, microseconds.
    pub srtt_us_mean: u64,
    /// Sum of the smoothed RTT at close over `connections`, microseconds.
    pub srtt_us_sum: u64,
    /// Bytes acknowledged per second of connection lifetime.
    pub delivery_rate_bps: u64,
}

impl PrefixReport {
    fn new(key: &PrefixKey, s: &PrefixStats) -> PrefixReport {
        let v6 = Ipv6Addr::from(key.addr);
        let ip = match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        };
        let upstream = key.kind == prefix_kind::UPSTREAM;
        let prefix = match (upstream, ip) {
            (true, ip) => SocketAddr::new(ip, key.port as u16).to_string(),
            (false, IpAddr::V4(a)) => format!("{a}/24"),
            (false, IpAddr::V6(a)) => format!("{a}/48"),
        };
        PrefixReport {
            kind: if upstream { "upstream" } else { "client" },
            prefix,
            connections: s.connections,
            bytes_acked: s.bytes_acked,
            bytes_received: s.bytes_received,
            retransmits: s.retrans,
            srtt_us_mean: s.srtt_us_sum.checked_div(s.connections).unwrap_or(0),
            srtt_us_sum: s.srtt_us_sum,
            delivery_rate_bps: (s.bytes_acked * 1_000_000)
                .checked_div(s.duration_us_sum)
                .unwrap_or(0),
        }
    }
}

impl ConnTelemetry {
    /// Per-prefix statistics of closed client connections (the director's and network map's
    /// view of how each client network is doing).
    pub fn prefix_reports(&self) -> Result<Vec<PrefixReport>, TelemetryError> {
        let map = self
            .prefixes
            .lock()
            .map_err(|_| TelemetryError::Missing(CONN_PREFIXES_MAP))?;
        let mut out = Vec::new();
        for entry in map.iter() {
            let (key, stats) = entry?;
            out.push(PrefixReport::new(&key, &stats));
        }
        out.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        Ok(out)
    }
}

/// The directory of this process's cgroup in the cgroup v2 hierarchy.
fn own_cgroup2_dir() -> Result<PathBuf, TelemetryError> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| TelemetryError::Cgroup {
            path: "/proc/self/mountinfo".into(),
            source,
        })?;
    let mount = mountinfo
        .lines()
        .find_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            (post.split_whitespace().next()? == "cgroup2")
                .then(|| pre.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .ok_or(TelemetryError::NoCgroup2)?;
    let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|source| TelemetryError::Cgroup {
        path: "/proc/self/cgroup".into(),
        source,
    })?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/");
    let dir = mount.join(rel.trim_start_matches('/'));
    Ok(if dir.is_dir() { dir } else { mount })
}
