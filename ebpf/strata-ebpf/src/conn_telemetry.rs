//! sock_ops program: per-connection byte and latency counters for the edge's client sockets.
//!
//! Attached to the edge's cgroup. For every connection accepted on the port named in
//! `CONN_FILTER` it notes the start time (by socket cookie) and asks the kernel for
//! state-change callbacks; when the connection reaches TCP_CLOSE it adds the connection's
//! acknowledged and received bytes, smoothed RTT, retransmits and delivery rate (bytes acked
//! over its lifetime) into the per-CPU `CONN_COUNTERS` (exported in /metrics) and into
//! `CONN_PREFIXES`, keyed by the client's /24 (IPv4) or /48 (IPv6), which the director and the
//! network map read. Connections the cgroup opens to a storage server listed in
//! `UPSTREAM_SERVERS` are measured too, keyed by server: counted with their handshake RTT when
//! established (pooled connections live long), bytes and lifetime added at close.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
#[path = "program_boilerplate.rs"]
mod program_boilerplate;

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::{
            BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB, BPF_SOCK_OPS_STATE_CB,
            BPF_SOCK_OPS_STATE_CB_FLAG, BPF_TCP_CLOSE,
        },
        helpers::{bpf_get_socket_cookie, bpf_ktime_get_ns},
        macros::{map, sock_ops},
        maps::{Array, HashMap, LruHashMap, PerCpuArray},
        programs::SockOpsContext,
        EbpfContext,
    };
    use aya_log_ebpf::{debug, info};
    use strata_common::{
        prefix_kind, rate_bucket, srtt_bucket, ConnCounters, ConnFilter, PrefixKey, PrefixStats,
        CONN_PREFIXES_MAX,
    };

    #[map(name = "CONN_FILTER")]
    static CONN_FILTER: Array<ConnFilter> = Array::with_max_entries(1, 0);

    #[map(name = "CONN_COUNTERS")]
    static CONN_COUNTERS: PerCpuArray<ConnCounters> = PerCpuArray::with_max_entries(1, 0);

    #[map(name = "CONN_PREFIXES")]
    static CONN_PREFIXES: LruHashMap<PrefixKey, PrefixStats> =
        LruHashMap::with_max_entries(CONN_PREFIXES_MAX, 0);

    #[map(name = "UPSTREAM_SERVERS")]
    static UPSTREAM_SERVERS: HashMap<PrefixKey, u8> = HashMap::with_max_entries(1024, 0);

    #[map(name = "CONN_START")]
    static CONN_START: LruHashMap<u64, u64> = LruHashMap::with_max_entries(CONN_PREFIXES_MAX, 0);

    const AF_INET: u32 = 2;
    const AF_INET6: u32 = 10;

    /// The client's /24 (IPv4, mapped into ::ffff:0:0/96) or /48 (IPv6).
    fn client_prefix(ctx: &SockOpsContext) -> PrefixKey {
        let mut key = PrefixKey {
            addr: [0; 16],
            kind: prefix_kind::CLIENT,
            port: 0,
        };
        let v4 = |key: &mut PrefixKey, ip: u32| {
            let b = ip.to_ne_bytes();
            key.addr[10] = 0xff;
            key.addr[11] = 0xff;
            key.addr[12] = b[0];
            key.addr[13] = b[1];
            key.addr[14] = b[2];
        };
        if ctx.family() == AF_INET {
            v4(&mut key, ctx.remote_ip4());
        } else if ctx.family() == AF_INET6 {
            let w = ctx.remote_ip6();
            let mapped = w[0] == 0 && w[1] == 0 && w[2].to_ne_bytes() == [0, 0, 0xff, 0xff];
            if mapped {
                v4(&mut key, w[3]);
            } else {
                let a = w[0].to_ne_bytes();
                let b = w[1].to_ne_bytes();
                key.addr[0] = a[0];
                key.addr[1] = a[1];
                key.addr[2] = a[2];
                key.addr[3] = a[3];
                key.addr[4] = b[0];
                key.addr[5] = b[1];
            }
        }
        key
    }

    /// The storage server at the far end: full address and port (host order).
    fn upstream_key(ctx: &SockOpsContext) -> PrefixKey {
        let mut key = client_prefix(ctx);
        // client_prefix masked the address; put the host bits back.
        if ctx.family() == AF_INET {
            key.addr[15] = ctx.remote_ip4().to_ne_bytes()[3];
        } else {
            let w = ctx.remote_ip6();
            if key.addr[10] == 0xff && key.addr[11] == 0xff && key.addr[0] == 0 {
                key.addr[15] = w[3].to_ne_bytes()[3];
            } else {
                let mut i = 0;
                while i < 4 {
                    let b = w[i].to_ne_bytes();
                    key.addr[i * 4] = b[0];
                    key.addr[i * 4 + 1] = b[1];
                    key.addr[i * 4 + 2] = b[2];
                    key.addr[i * 4 + 3] = b[3];
                    i += 1;
                }
            }
        }
        key.kind = prefix_kind::UPSTREAM;
        key.port = u16::from_be((ctx.remote_port() >> 16) as u16) as u32;
        key
    }

    /// Adds one closed connection's figures to a prefix's (or server's) entry.
    fn add_to(key: &PrefixKey, f: &Closed, count_connection: bool) {
        let stats = match CONN_PREFIXES.get_ptr_mut(key) {
            Some(p) => Some(p),
            None => {
                let _ = CONN_PREFIXES.insert(key, &PrefixStats::default(), 0);
                CONN_PREFIXES.get_ptr_mut(key)
            }
        };
        let Some(p) = stats else { return };
        // SAFETY: points into this key's map entry; racing updates on other CPUs may lose an
        // increment, never corrupt memory.
        let p = unsafe { &mut *p };
        if count_connection {
            p.connections += 1;
            p.srtt_us_sum += f.srtt_us as u64;
            if let Some(slot) = p.srtt_buckets.get_mut(srtt_bucket(f.srtt_us)) {
                *slot += 1;
            }
        }
        p.bytes_acked += f.acked;
        p.bytes_received += f.received;
        p.retrans += f.retrans as u64;
        p.duration_us_sum += f.duration_us;
        if let Some(slot) = p.rate_buckets.get_mut(rate_bucket(f.rate)) {
            *slot += 1;
        }
    }

    /// A connection's figures at close.
    struct Closed {
        acked: u64,
        received: u64,
        srtt_us: u32,
        retrans: u32,
        duration_us: u64,
        rate: u64,
    }

    /// sock_ops programs report success through the return value; 1 means "handled".
    const SOCK_OPS_OK: u32 = 1;

    #[sock_ops]
    pub fn conn_telemetry(ctx: SockOpsContext) -> u32 {
        let port = match CONN_FILTER.get(0) {
            Some(filter) if filter.local_port != 0 => filter.local_port,
            _ => return SOCK_OPS_OK,
        };
        let client = ctx.local_port() == port;
        match ctx.op() {
            BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB if client => {
                if let Some(c) = CONN_COUNTERS.get_ptr_mut(0) {
                    // SAFETY: this CPU's slot of the per-CPU array.
                    let c = unsafe { &mut *c };
                    c.established += 1;
                    if c.established == 1 {
                        // Once per CPU for the program's life: proves the log path without flooding it.
                        info!(
                            &ctx,
                            "conn_telemetry: first client connection on port {} (this CPU)", port
                        );
                    }
                }
                track(&ctx);
            }
            BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB => {
                let key = upstream_key(&ctx);
                // SAFETY: the value is a plain u8 read at once.
                if unsafe { UPSTREAM_SERVERS.get(&key) }.is_none() {
                    return SOCK_OPS_OK;
                }
                // SAFETY: ctx.ops is the kernel-provided bpf_sock_ops for this callback.
                let srtt_us = unsafe { (*ctx.ops).srtt_us } >> 3;
                let f = Closed {
                    acked: 0,
                    received: 0,
                    srtt_us,
                    retrans: 0,
                    duration_us: 0,
                    rate: 0,
                };
                add_to(&key, &f, true);
                track(&ctx);
            }
            BPF_SOCK_OPS_STATE_CB if ctx.arg(1) == BPF_TCP_CLOSE => {
                let upstream = if client { None } else { Some(upstream_key(&ctx)) };
                if let Some(key) = &upstream {
                    // SAFETY: the value is a plain u8 read at once.
                    if unsafe { UPSTREAM_SERVERS.get(key) }.is_none() {
                        return SOCK_OPS_OK;
                    }
                }
                let f = closed(&ctx);
                match upstream {
                    Some(key) => add_to(&key, &f, false),
                    None => {
                        count_client_close(&f);
                        add_to(&client_prefix(&ctx), &f, true);
                    }
                }
                if f.retrans > 0 {
                    debug!(
                        &ctx,
                        "conn_telemetry: connection closed with {} retransmits", f.retrans
                    );
                }
            }
            _ => {}
        }
        SOCK_OPS_OK
    }

    /// Notes the start time and asks for the state callback that reports the close.
    fn track(ctx: &SockOpsContext) {
        // SAFETY: helpers with no preconditions; the context is the kernel's.
        let (cookie, now) = unsafe { (bpf_get_socket_cookie(ctx.as_ptr()), bpf_ktime_get_ns()) };
        let _ = CONN_START.insert(&cookie, &now, 0);
        let flags = ctx.cb_flags() | BPF_SOCK_OPS_STATE_CB_FLAG;
        if ctx.set_cb_flags(flags as i32).is_err() {
            debug!(ctx, "conn_telemetry: could not request state callbacks");
        }
    }

    /// Reads a closing connection's figures and forgets its start time.
    fn closed(ctx: &SockOpsContext) -> Closed {
        // SAFETY: ctx.ops is the kernel-provided bpf_sock_ops for this callback.
        let (acked, received, srtt8, retrans) = unsafe {
            let ops = &*ctx.ops;
            (
                ops.bytes_acked,
                ops.bytes_received,
                ops.srtt_us,
                ops.total_retrans,
            )
        };
        // SAFETY: helpers with no preconditions; the context is the kernel's.
        let (cookie, now) = unsafe { (bpf_get_socket_cookie(ctx.as_ptr()), bpf_ktime_get_ns()) };
        let mut duration_us = 0u64;
        // SAFETY: the value is a plain u64 copied out at once.
        if let Some(start) = unsafe { CONN_START.get(&cookie) } {
            duration_us = now.saturating_sub(*start) / 1000;
        }
        let _ = CONN_START.remove(&cookie);
        let rate = if duration_us > 0 {
            acked * 1_000_000 / duration_us
        } else {
            0
        };
        Closed {
            acked,
            received,
            srtt_us: srtt8 >> 3,
            retrans,
            duration_us,
            rate,
        }
    }

    /// Adds a closed client connection to the global counters.
    fn count_client_close(f: &Closed) {
        let Some(c) = CONN_COUNTERS.get_ptr_mut(0) else {
            return;
        };
        // SAFETY: this CPU's slot of the per-CPU array.
        let c = unsafe { &mut *c };
        c.closed += 1;
        c.bytes_acked += f.acked;
        c.bytes_received += f.received;
        c.srtt_us_sum += f.srtt_us as u64;
        c.retrans += f.retrans as u64;
        c.rate_sum += f.rate;
        if let Some(slot) = c.srtt_buckets.get_mut(srtt_bucket(f.srtt_us)) {
            *slot += 1;
        }
        if let Some(slot) = c.rate_buckets.get_mut(rate_bucket(f.rate)) {
            *slot += 1;
        }
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    // This binary only exists for the bpfel-unknown-none target; userspace/build.rs builds it.
}
