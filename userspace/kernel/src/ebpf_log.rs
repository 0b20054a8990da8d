//! Carries the log records of strata's eBPF programs (aya-log ring buffer) into tracing.
//!
//! Records are drained by a tokio task whenever the ring buffer is readable. A flood of kernel
//! events cannot flood the log: at most [`MAX_RECORDS_PER_SEC`] drains per second are done and
//! the rest of the buffer is dropped by the kernel side when full.

use std::time::{Duration, Instant};

use aya::Ebpf;
use aya_log::EbpfLogger;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Upper bound on ring-buffer drains per second.
pub const MAX_RECORDS_PER_SEC: u32 = 50;

/// Starts forwarding the logs of `ebpf`; logs (and carries on) if the object has no log map.
pub fn forward(ebpf: &mut Ebpf, program: &'static str) {
    let logger = match EbpfLogger::init(ebpf) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(program, error = %e, "eBPF logs will not be forwarded");
            return;
        }
    };
    // SAFETY: the logger owns its ring-buffer map fd, and flushing neither closes nor replaces it,
    // so the registered fd stays valid for the AsyncFd's life.
    let mut logger = match unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) } {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(program, error = %e, "eBPF logs will not be forwarded");
            return;
        }
    };
    tokio::spawn(async move {
        let mut window = Instant::now();
        let mut drains = 0u32;
        loop {
            let Ok(mut guard) = logger.readable_mut().await else {
                return;
            };
            if window.elapsed() >= Duration::from_secs(1) {
                window = Instant::now();
                drains = 0;
            }
            drains += 1;
            if drains > MAX_RECORDS_PER_SEC {
                tokio::time::sleep(Duration::from_secs(1).saturating_sub(window.elapsed())).await;
            }
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    });
}
