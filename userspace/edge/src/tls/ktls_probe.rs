//! Start-up check for kernel TLS offload: set the `tls` upper-layer protocol (TCP_ULP) on a
//! connected loopback socket. ENOENT (no `tls` module: the kernel was built without
//! CONFIG_TLS) or EOPNOTSUPP means absent. strata encrypts HTTPS bodies in userspace either
//! way (the key handoff to the kernel is not implemented); the probe says what a kTLS
//! edge could gain on this machine, for the log and /metrics.

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

/// Whether the kernel offers the `tls` ULP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KtlsSupport {
    Available,
    /// The kernel refused the ULP (ENOENT / EOPNOTSUPP): no CONFIG_TLS.
    Absent,
    /// The probe itself could not run (no loopback socket); treated as absent.
    Unknown,
}

/// Probes the kernel once (a loopback connection, closed before returning).
pub fn probe() -> KtlsSupport {
    match try_ulp() {
        Ok(()) => KtlsSupport::Available,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
            ) =>
        {
            KtlsSupport::Absent
        }
        Err(e) => {
            tracing::debug!(error = %e, "kernel TLS probe could not run");
            KtlsSupport::Unknown
        }
    }
}

/// Sets TCP_ULP "tls" on the client end of a loopback connection (the ULP needs an
/// established socket).
fn try_ulp() -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let _server = listener.accept()?;
    let name = b"tls";
    // SAFETY: setsockopt on an open socket with a pointer/length pair to a live byte array.
    let rc = unsafe {
        libc::setsockopt(
            client.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Logs which mode HTTPS bodies use on this machine.
pub fn log_mode(role: &str, support: KtlsSupport) {
    match support {
        KtlsSupport::Absent => tracing::info!(
            role,
            "HTTPS bodies encrypted in userspace: kernel has no TLS offload (CONFIG_TLS)"
        ),
        KtlsSupport::Unknown => tracing::info!(
            role,
            "HTTPS bodies encrypted in userspace: the kernel TLS probe could not run"
        ),
        KtlsSupport::Available => tracing::info!(
            role,
            "HTTPS bodies encrypted in userspace: the kernel has TLS offload (CONFIG_TLS), but strata does not hand session keys to it"
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_probe_agrees_with_the_kernel_module_list() {
        // /proc/modules lists `tls` when it is loaded as a module; built in, /sys/module/tls
        // exists. Either way the ULP must then be found; otherwise the probe says absent
        // unless the kernel loads the module on demand (then /sys/module/tls appears).
        let got = super::probe();
        let loaded = std::path::Path::new("/sys/module/tls").exists();
        assert_eq!(
            got == super::KtlsSupport::Available,
            loaded,
            "probe said {got:?}; /sys/module/tls exists: {loaded}"
        );
    }
}
