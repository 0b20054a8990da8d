//! sock_ops program: per-connection byte and latency counters for the edge's client sockets.
//!
//! Attached to the edge's cgroup. For every connection accepted on the port named in
//! `CONN_FILTER` it asks the kernel for state-change callbacks; when the connection reaches
//! TCP_CLOSE it adds the connection's acknowledged bytes, received bytes, smoothed RTT and
//! retransmits into the per-CPU `CONN_COUNTERS`, which userspace exports in /metrics.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::{
            BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB, BPF_SOCK_OPS_STATE_CB, BPF_SOCK_OPS_STATE_CB_FLAG,
            BPF_TCP_CLOSE,
        },
        macros::{map, sock_ops},
        maps::{Array, PerCpuArray},
        programs::SockOpsContext,
    };
    use aya_log_ebpf::{debug, info};
    use strata_common::{srtt_bucket, ConnCounters, ConnFilter};

    #[map(name = "CONN_FILTER")]
    static CONN_FILTER: Array<ConnFilter> = Array::with_max_entries(1, 0);

    #[map(name = "CONN_COUNTERS")]
    static CONN_COUNTERS: PerCpuArray<ConnCounters> = PerCpuArray::with_max_entries(1, 0);

    /// sock_ops programs report success through the return value; 1 means "handled".
    const SOCK_OPS_OK: u32 = 1;

    #[sock_ops]
    pub fn conn_telemetry(ctx: SockOpsContext) -> u32 {
        let port = match CONN_FILTER.get(0) {
            Some(filter) if filter.local_port != 0 => filter.local_port,
            _ => return SOCK_OPS_OK,
        };
        if ctx.local_port() != port {
            return SOCK_OPS_OK;
        }
        let Some(counters) = CONN_COUNTERS.get_ptr_mut(0) else {
            return SOCK_OPS_OK;
        };
        // SAFETY: the pointer comes from a per-CPU array slot that lives as long as the map,
        // and no other program touches this CPU's slot while we run.
        let counters = unsafe { &mut *counters };
        match ctx.op() {
            BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB => {
                counters.established += 1;
                if counters.established == 1 {
                    // Once per CPU for the program's life: proves the log path without flooding it.
                    info!(
                        &ctx,
                        "conn_telemetry: first client connection on port {} (this CPU)", port
                    );
                }
                let flags = ctx.cb_flags() | BPF_SOCK_OPS_STATE_CB_FLAG;
                if ctx.set_cb_flags(flags as i32).is_err() {
                    debug!(&ctx, "conn_telemetry: could not request state callbacks");
                }
            }
            BPF_SOCK_OPS_STATE_CB if ctx.arg(1) == BPF_TCP_CLOSE => {
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
                let srtt_us = srtt8 >> 3;
                counters.closed += 1;
                counters.bytes_acked += acked;
                counters.bytes_received += received;
                counters.srtt_us_sum += srtt_us as u64;
                counters.retrans += retrans as u64;
                let bucket = srtt_bucket(srtt_us);
                if let Some(slot) = counters.srtt_buckets.get_mut(bucket) {
                    *slot += 1;
                }
                if retrans > 0 {
                    debug!(
                        &ctx,
                        "conn_telemetry: connection closed with {} retransmits", retrans
                    );
                }
            }
            _ => {}
        }
        SOCK_OPS_OK
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }

    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 4] = *b"GPL\0";
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    // This binary only exists for the bpfel-unknown-none target; userspace/build.rs builds it.
}
