//! sk_skb stream parser + verdict: moves exactly a budget of response-body bytes from a storage
//! server's socket to a client's socket inside the kernel (the zero-copy reverse proxy).
//!
//! Both programs are attached to `SPLICE_UPSTREAMS`. For an upstream socket with a flow in
//! `SPLICE_FLOWS` (by socket cookie) the parser cuts messages of at most 64 KiB (and at most
//! what has arrived) that never cross the end of the budget and hands each length to the verdict through the flow (the verdict's
//! context length is the whole buffer, not the message). The verdict redirects each message to
//! the client socket in `SPLICE_CLIENTS` and posts an event to `SPLICE_EVENTS` when the budget
//! is spent or a redirect fails. Bytes past the budget (an upstream that sends more than it
//! announced) are dropped and counted, never redirected. A socket without a flow passes its
//! bytes to userspace unchanged. Per flow the two programs run one after the other, so the flow
//! needs no atomics.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
#[path = "program_boilerplate.rs"]
mod program_boilerplate;

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::sk_action::{SK_DROP, SK_PASS},
        helpers::bpf_get_socket_cookie,
        macros::{map, stream_parser, stream_verdict},
        maps::{HashMap, PerCpuArray, RingBuf, SockHash},
        programs::SkBuffContext,
        EbpfContext,
    };
    use aya_log_ebpf::debug;
    use strata_common::{
        next_message_len, splice_event, SpliceCounters, SpliceEvent, SpliceFlow, SPLICE_CLIENTS_MAX,
        SPLICE_UPSTREAMS_MAX,
    };

    #[map(name = "SPLICE_UPSTREAMS")]
    static SPLICE_UPSTREAMS: SockHash<u64> = SockHash::with_max_entries(SPLICE_UPSTREAMS_MAX, 0);

    #[map(name = "SPLICE_CLIENTS")]
    static SPLICE_CLIENTS: SockHash<u64> = SockHash::with_max_entries(SPLICE_CLIENTS_MAX, 0);

    #[map(name = "SPLICE_FLOWS")]
    static SPLICE_FLOWS: HashMap<u64, SpliceFlow> = HashMap::with_max_entries(SPLICE_UPSTREAMS_MAX, 0);

    #[map(name = "SPLICE_EVENTS")]
    static SPLICE_EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

    #[map(name = "SPLICE_COUNTERS")]
    static SPLICE_COUNTERS: PerCpuArray<SpliceCounters> = PerCpuArray::with_max_entries(1, 0);

    fn cookie(ctx: &SkBuffContext) -> u64 {
        // SAFETY: the helper only reads the socket the context belongs to.
        unsafe { bpf_get_socket_cookie(ctx.as_ptr()) }
    }

    fn post(upstream_cookie: u64, kind: u32) {
        let event = SpliceEvent {
            upstream_cookie,
            kind,
            _reserved: 0,
        };
        // A full ring only delays userspace: it also polls the flow while it waits.
        let _ = SPLICE_EVENTS.output::<SpliceEvent>(&event, 0);
    }

    fn count(f: impl FnOnce(&mut SpliceCounters)) {
        if let Some(c) = SPLICE_COUNTERS.get_ptr_mut(0) {
            // SAFETY: per-CPU slot, this program is its only writer on this CPU.
            f(unsafe { &mut *c });
        }
    }

    #[stream_parser]
    pub fn splice_parser(ctx: SkBuffContext) -> u32 {
        let available = ctx.len();
        let Some(flow) = SPLICE_FLOWS.get_ptr_mut(&cookie(&ctx)) else {
            return available;
        };
        // SAFETY: the map value lives while the program runs; parser and verdict of one socket
        // never run at the same time.
        let flow = unsafe { &mut *flow };
        let len = if flow.unparsed > 0 {
            // Never more than has arrived: a message the kernel must wait for would hold back
            // the last bytes of an upstream that dies mid-body.
            let n = next_message_len(flow.unparsed);
            flow.unparsed -= n;
            n as u32
        } else {
            // Past the budget: everything there is, as one message the verdict drops.
            available
        };
        flow.message = len;
        len
    }

    #[stream_verdict]
    pub fn splice_verdict(ctx: SkBuffContext) -> u32 {
        let upstream = cookie(&ctx);
        let Some(flow) = SPLICE_FLOWS.get_ptr_mut(&upstream) else {
            return SK_PASS;
        };
        // SAFETY: as in the parser.
        let flow = unsafe { &mut *flow };
        let len = u64::from(flow.message);
        if flow.budget == 0 || flow.failed != 0 || len > flow.budget {
            flow.excess += len;
            count(|c| c.excess_bytes += len);
            return SK_DROP;
        }
        let mut client = flow.client_cookie;
        if SPLICE_CLIENTS.redirect_skb(&ctx, &mut client, 0) as u32 != SK_PASS {
            flow.failed = 1;
            count(|c| c.redirect_failures += 1);
            debug!(&ctx, "body_splice: redirect to client {} refused", client);
            post(upstream, splice_event::REDIRECT_FAILED);
            return SK_DROP;
        }
        flow.budget -= len;
        flow.redirected += len;
        count(|c| {
            c.redirected_bytes += len;
            c.messages += 1;
        });
        if flow.budget == 0 {
            post(upstream, splice_event::BUDGET_SPENT);
        }
        SK_PASS
    }
}
