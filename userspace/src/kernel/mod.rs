//! Everything that talks to the kernel's fast paths: io_uring splice workers, sendfile, socket
//! options, and the eBPF programs (loading, maps, logs).

pub mod body_path;
pub mod conn_telemetry;
pub mod ebpf_log;
pub mod socket_opts;
pub mod splice_worker;
