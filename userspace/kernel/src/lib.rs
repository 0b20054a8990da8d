//! Everything that talks to the kernel's fast paths: the embedded eBPF programs (sockmap body
//! splice, XDP guard, sock_ops telemetry: loading, maps, logs), io_uring splice workers,
//! sendfile, socket options and pipes. Depends on nothing of strata's but `strata-common`.

pub mod body_meter;
pub mod body_path;
pub mod conn_telemetry;
pub mod ebpf_log;
pub mod guard_settings;
pub mod kernel_metrics;
pub mod page_cache;
pub mod pipe;
pub mod socket_opts;
pub mod sockmap_splice;
pub mod splice_worker;
pub mod xdp_guard;

use std::sync::Arc;

/// The eBPF programs a server runs, shared with its metrics and admin API.
#[derive(Clone, Debug, Default)]
pub struct KernelPrograms {
    pub telemetry: Option<Arc<conn_telemetry::ConnTelemetry>>,
    pub guard: Option<Arc<xdp_guard::XdpGuard>>,
    /// The sockmap body splice, when misses are proxied by it.
    pub splice: Option<Arc<sockmap_splice::SockmapSplice>>,
}
