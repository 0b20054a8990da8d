//! systemd's readiness protocol (sd_notify): a datagram to `$NOTIFY_SOCKET`. The serving roles
//! send `READY=1` once they accept, and on a handover `MAINPID=` naming the successor, so that
//! a `Type=notify` unit follows the process that serves. Without `$NOTIFY_SOCKET` (not under
//! systemd) nothing is sent.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. "READY=1") to systemd if this process runs under it; returns whether it
/// was sent. A failure is logged, never fatal.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let sent = send(&path.to_string_lossy(), state);
    if let Err(e) = &sent {
        tracing::warn!(socket = %path.to_string_lossy(), state, error = %e, "sd_notify failed");
    }
    sent.is_ok()
}

fn send(path: &str, state: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt as _;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reaches_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("strata-sdnotify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "MAINPID=42\nREADY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MAINPID=42\nREADY=1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_state_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("strata-sdnotify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        send(&format!("@{name}"), "READY=1").unwrap();
        let mut buf = [0u8; 16];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
