//! XDP guard on the edge's client-facing interface: drops what must not reach the edge before
//! it costs a socket.
//!
//! Per packet: parse Ethernet (up to two VLAN tags), IPv4 or IPv6, and the TCP flags when the
//! packet carries a TCP header. Then, in order: allowlist (LPM trie) → pass; blocklist → drop;
//! per-source packet rate → drop; per-source SYN rate (SYN without ACK) → drop; else pass.
//! Rate state is a pair of token buckets per source in an LRU hash, so spoofed floods evict old
//! sources instead of filling the map. Truncated or malformed headers are dropped; frames that
//! are not IP (ARP, LLDP) pass untouched. Every verdict is counted per CPU by reason.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
#[path = "program_boilerplate.rs"]
mod program_boilerplate;

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::xdp_action,
        helpers::bpf_ktime_get_ns,
        macros::{map, xdp},
        maps::{lpm_trie::Key, Array, LpmTrie, LruHashMap, PerCpuArray},
        programs::XdpContext,
    };
    use aya_log_ebpf::info;
    use strata_common::{
        guard_reason as reason, refill, GuardConfig, RateState, SourceKey, GUARD_PREFIXES_MAX,
        GUARD_RATE_SOURCES_MAX,
    };

    /// BPF_F_NO_PREALLOC, required for LPM tries.
    const NO_PREALLOC: u32 = 1;

    #[map(name = "GUARD_ALLOW_V4")]
    static GUARD_ALLOW_V4: LpmTrie<[u8; 4], u8> = LpmTrie::with_max_entries(GUARD_PREFIXES_MAX, NO_PREALLOC);
    #[map(name = "GUARD_BLOCK_V4")]
    static GUARD_BLOCK_V4: LpmTrie<[u8; 4], u8> = LpmTrie::with_max_entries(GUARD_PREFIXES_MAX, NO_PREALLOC);
    #[map(name = "GUARD_ALLOW_V6")]
    static GUARD_ALLOW_V6: LpmTrie<[u8; 16], u8> = LpmTrie::with_max_entries(GUARD_PREFIXES_MAX, NO_PREALLOC);
    #[map(name = "GUARD_BLOCK_V6")]
    static GUARD_BLOCK_V6: LpmTrie<[u8; 16], u8> = LpmTrie::with_max_entries(GUARD_PREFIXES_MAX, NO_PREALLOC);
    #[map(name = "GUARD_CONFIG")]
    static GUARD_CONFIG: Array<GuardConfig> = Array::with_max_entries(1, 0);
    #[map(name = "GUARD_RATE")]
    static GUARD_RATE: LruHashMap<SourceKey, RateState> =
        LruHashMap::with_max_entries(GUARD_RATE_SOURCES_MAX, 0);
    #[map(name = "GUARD_COUNTERS")]
    static GUARD_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(reason::COUNT, 0);

    const ETH_HLEN: usize = 14;
    const ETH_P_IP: u16 = 0x0800;
    const ETH_P_IPV6: u16 = 0x86dd;
    const ETH_P_8021Q: u16 = 0x8100;
    const ETH_P_8021AD: u16 = 0x88a8;
    const IPPROTO_TCP: u8 = 6;
    const TCP_SYN: u8 = 0x02;
    const TCP_ACK: u8 = 0x10;

    /// A pointer to `T` at `offset` if the packet holds it whole.
    #[inline(always)]
    fn at<T>(ctx: &XdpContext, offset: usize) -> Option<*const T> {
        let start = ctx.data();
        if start + offset + core::mem::size_of::<T>() > ctx.data_end() {
            return None;
        }
        Some((start + offset) as *const T)
    }

    #[inline(always)]
    fn byte(ctx: &XdpContext, offset: usize) -> Option<u8> {
        // SAFETY: `at` checked the byte lies inside the packet.
        at::<u8>(ctx, offset).map(|p| unsafe { *p })
    }

    /// Counts a verdict and turns it into an XDP action. Drops are logged when this CPU's count
    /// for the reason reaches a power of two (1, 2, 4, ... 1024, ...): a flood logs a handful of
    /// lines, not one per packet.
    #[inline(always)]
    fn verdict(ctx: &XdpContext, r: u32) -> u32 {
        let mut n = 0u64;
        if let Some(c) = GUARD_COUNTERS.get_ptr_mut(r) {
            // SAFETY: per-CPU slot, no concurrent writer on this CPU.
            unsafe {
                *c += 1;
                n = *c;
            }
        }
        match r {
            reason::PASSED | reason::PASSED_ALLOWLIST | reason::PASSED_NOT_IP => xdp_action::XDP_PASS,
            _ => {
                if n & (n.wrapping_sub(1)) == 0 {
                    info!(ctx, "xdp_guard: {} drops for reason {} on this CPU", n, r);
                }
                xdp_action::XDP_DROP
            }
        }
    }

    /// What the parser learned about a packet.
    struct Parsed {
        source: SourceKey,
        v4: bool,
        /// A TCP SYN without ACK (a new connection attempt).
        syn: bool,
    }

    #[xdp]
    pub fn xdp_guard(ctx: XdpContext) -> u32 {
        let parsed = match parse(&ctx) {
            Ok(Some(p)) => p,
            Ok(None) => return verdict(&ctx, reason::PASSED_NOT_IP),
            Err(()) => return verdict(&ctx, reason::DROPPED_MALFORMED),
        };
        let (allowed, blocked) = if parsed.v4 {
            let mut a = [0u8; 4];
            a.copy_from_slice(&parsed.source.addr[12..16]);
            let key = Key::new(32, a);
            (
                GUARD_ALLOW_V4.get(&key).is_some(),
                GUARD_BLOCK_V4.get(&key).is_some(),
            )
        } else {
            let key = Key::new(128, parsed.source.addr);
            (
                GUARD_ALLOW_V6.get(&key).is_some(),
                GUARD_BLOCK_V6.get(&key).is_some(),
            )
        };
        if allowed {
            return verdict(&ctx, reason::PASSED_ALLOWLIST);
        }
        if blocked {
            return verdict(&ctx, reason::DROPPED_BLOCKLIST);
        }
        verdict(&ctx, rate_check(&parsed))
    }

    /// Copies `N` bytes at `offset` out of the packet, if it holds them. Headers are read whole
    /// into the stack, so every later field access is at a constant offset the verifier knows.
    #[inline(always)]
    fn bytes<const N: usize>(ctx: &XdpContext, offset: usize) -> Option<[u8; N]> {
        // SAFETY: `at` checked that all N bytes lie inside the packet.
        at::<[u8; N]>(ctx, offset).map(|p| unsafe { core::ptr::read_unaligned(p) })
    }

    /// Parses L2/L3/L4. Ok(None): not IP. Err: truncated or malformed.
    #[inline(always)]
    fn parse(ctx: &XdpContext) -> Result<Option<Parsed>, ()> {
        let eth: [u8; 14] = bytes(ctx, 0).ok_or(())?;
        let mut ethertype = u16::from_be_bytes([eth[12], eth[13]]);
        let mut off = ETH_HLEN;
        // Up to two VLAN tags (802.1Q, 802.1ad QinQ), each 4 bytes: TCI then the next type.
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            let tag: [u8; 4] = bytes(ctx, ETH_HLEN).ok_or(())?;
            ethertype = u16::from_be_bytes([tag[2], tag[3]]);
            off = ETH_HLEN + 4;
            if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
                let tag: [u8; 4] = bytes(ctx, ETH_HLEN + 4).ok_or(())?;
                ethertype = u16::from_be_bytes([tag[2], tag[3]]);
                off = ETH_HLEN + 8;
            }
        }
        let mut source = SourceKey::default();
        match ethertype {
            ETH_P_IP => {
                let ip: [u8; 20] = bytes(ctx, off).ok_or(())?;
                let ihl = (ip[0] & 0x0f) as usize * 4;
                if ip[0] >> 4 != 4 || ihl < 20 {
                    return Err(());
                }
                source.addr[10] = 0xff;
                source.addr[11] = 0xff;
                source.addr[12..16].copy_from_slice(&ip[12..16]);
                let proto = ip[9];
                let first_fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff == 0;
                // The options must be present too.
                if ihl > 20 {
                    byte(ctx, off + ihl - 1).ok_or(())?;
                }
                let syn = if proto == IPPROTO_TCP && first_fragment {
                    tcp_syn(ctx, off + ihl)?
                } else {
                    false
                };
                Ok(Some(Parsed {
                    source,
                    v4: true,
                    syn,
                }))
            }
            ETH_P_IPV6 => {
                let ip: [u8; 40] = bytes(ctx, off).ok_or(())?;
                if ip[0] >> 4 != 6 {
                    return Err(());
                }
                source.addr.copy_from_slice(&ip[8..24]);
                // TCP right after the fixed header; extension headers (fragments included) are
                // rate-limited as packets but not inspected for SYN.
                let syn = if ip[6] == IPPROTO_TCP {
                    tcp_syn(ctx, off + 40)?
                } else {
                    false
                };
                Ok(Some(Parsed {
                    source,
                    v4: false,
                    syn,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Whether the TCP header at `off` is a SYN without ACK. A header cut short is malformed.
    #[inline(always)]
    fn tcp_syn(ctx: &XdpContext, off: usize) -> Result<bool, ()> {
        let t: [u8; 14] = bytes(ctx, off).ok_or(())?;
        if (t[12] >> 4) < 5 {
            return Err(());
        }
        let flags = t[13];
        Ok(flags & TCP_SYN != 0 && flags & TCP_ACK == 0)
    }

    /// Applies the per-source token buckets; returns the reason of the verdict.
    #[inline(always)]
    fn rate_check(p: &Parsed) -> u32 {
        let Some(cfg) = GUARD_CONFIG.get(0) else {
            return reason::PASSED;
        };
        let limit_packets = cfg.packet_rate > 0;
        let limit_syns = p.syn && cfg.syn_rate > 0;
        if !limit_packets && !limit_syns {
            return reason::PASSED;
        }
        // SAFETY: bpf_ktime_get_ns has no preconditions.
        let now = unsafe { bpf_ktime_get_ns() };
        let state = match GUARD_RATE.get_ptr_mut(&p.source) {
            Some(s) => s,
            None => {
                let fresh = RateState {
                    syn_milli: cfg.syn_burst as u64 * 1000,
                    packet_milli: cfg.packet_burst as u64 * 1000,
                    last_ns: now,
                };
                if GUARD_RATE.insert(&p.source, &fresh, 0).is_err() {
                    return reason::PASSED;
                }
                match GUARD_RATE.get_ptr_mut(&p.source) {
                    Some(s) => s,
                    None => return reason::PASSED,
                }
            }
        };
        // SAFETY: the pointer is to this source's LRU entry; concurrent updates from other CPUs
        // can only make the limit slightly loose, never unsafe.
        let s = unsafe { &mut *state };
        let elapsed = now.saturating_sub(s.last_ns);
        s.last_ns = now;
        // Both buckets refill with time, whichever kind of packet this is.
        if cfg.packet_rate > 0 {
            s.packet_milli = refill(s.packet_milli, elapsed, cfg.packet_rate, cfg.packet_burst);
        }
        if cfg.syn_rate > 0 {
            s.syn_milli = refill(s.syn_milli, elapsed, cfg.syn_rate, cfg.syn_burst);
        }
        if limit_packets {
            if s.packet_milli < 1000 {
                return reason::DROPPED_PACKET_RATE;
            }
            s.packet_milli -= 1000;
        }
        if limit_syns {
            if s.syn_milli < 1000 {
                return reason::DROPPED_SYN_RATE;
            }
            s.syn_milli -= 1000;
        }
        reason::PASSED
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    // This binary only exists for the bpfel-unknown-none target; userspace/build.rs builds it.
}
