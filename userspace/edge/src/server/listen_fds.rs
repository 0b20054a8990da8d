//! Listening sockets across a process handover: the ones this process bound (so that a
//! successor can be handed them) and the ones a predecessor handed to this process (so that
//! `bind` takes them over instead of binding again).
//!
//! A predecessor lists its listeners in `STRATA_LISTEN_FDS` as `FD@ADDR` items, comma
//! separated, in the order it bound them, where ADDR is the address its configuration asked for
//! (`127.0.0.1:0` stays `127.0.0.1:0`). `bind(ADDR)` here takes the first inherited socket asked
//! for with the same ADDR: the same socket, with its accept queue, so no connection waiting in
//! it is lost. A socket nobody takes (the configuration moved that listener) is closed once the
//! server has started (`close_unclaimed`).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

/// The environment variable a predecessor lists its listening sockets in.
pub const LISTEN_FDS_ENV: &str = "STRATA_LISTEN_FDS";

/// A listener bound (or taken over) by this process: the address asked for and its descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundListener {
    pub asked: SocketAddr,
    pub fd: RawFd,
}

/// Listeners this process holds, in the order they were bound.
static BOUND: Mutex<Vec<BoundListener>> = Mutex::new(Vec::new());

/// Listeners handed over by a predecessor and not yet taken.
static INHERITED: OnceLock<Mutex<Vec<(SocketAddr, OwnedFd)>>> = OnceLock::new();

/// Records a listener this process holds, for a successor.
pub fn record_bound(asked: SocketAddr, fd: RawFd) {
    BOUND
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(BoundListener { asked, fd });
}

/// The listeners this process holds, in bind order (for `STRATA_LISTEN_FDS`).
pub fn bound() -> Vec<BoundListener> {
    BOUND.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The `STRATA_LISTEN_FDS` value that hands `listeners` over.
pub fn env_value(listeners: &[BoundListener]) -> String {
    listeners
        .iter()
        .map(|l| format!("{}@{}", l.fd, l.asked))
        .collect::<Vec<_>>()
        .join(",")
}

/// Why the inherited sockets could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ListenFdsError {
    #[error("{LISTEN_FDS_ENV} item {item:?}: expected FD@ADDR (e.g. 3@0.0.0.0:8080)")]
    Syntax { item: String },
    #[error("{LISTEN_FDS_ENV} names descriptor {fd}, which is not a listening TCP socket of this process: {reason}")]
    NotListening { fd: RawFd, reason: String },
}

/// Parses `STRATA_LISTEN_FDS` text into (asked address, descriptor) pairs.
pub fn parse(text: &str) -> Result<Vec<(SocketAddr, RawFd)>, ListenFdsError> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            let bad = || ListenFdsError::Syntax {
                item: item.to_string(),
            };
            let (fd, addr) = item.trim().split_once('@').ok_or_else(bad)?;
            let fd: RawFd = fd.parse().map_err(|_| bad())?;
            let addr: SocketAddr = addr.parse().map_err(|_| bad())?;
            if fd < 3 {
                return Err(bad());
            }
            Ok((addr, fd))
        })
        .collect()
}

/// Checks that `fd` is a listening socket (SO_ACCEPTCONN).
fn is_listening(fd: RawFd) -> Result<(), String> {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `on`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    if on == 0 {
        return Err("the socket is not listening".into());
    }
    Ok(())
}

/// Reads `STRATA_LISTEN_FDS` once. Fails on a malformed value or a descriptor that is not a
/// listener.
pub fn take_env() -> Result<(), ListenFdsError> {
    if INHERITED.get().is_some() {
        return Ok(());
    }
    let mut fds = Vec::new();
    if let Some(text) = std::env::var_os(LISTEN_FDS_ENV) {
        for (asked, fd) in parse(&text.to_string_lossy())? {
            is_listening(fd).map_err(|reason| ListenFdsError::NotListening { fd, reason })?;
            // SAFETY: the predecessor passed this descriptor to us for our exclusive use.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            set_cloexec(owned.as_raw_fd());
            fds.push((asked, owned));
        }
        tracing::info!(
            listeners = fds.len(),
            "taking over listening sockets from the previous process"
        );
    }
    let _ = INHERITED.set(Mutex::new(fds));
    Ok(())
}

/// The inherited listener asked for as `asked`, if a predecessor handed one over.
pub fn take_inherited(asked: SocketAddr) -> Option<std::net::TcpListener> {
    let lock = INHERITED.get()?;
    let mut fds = lock.lock().unwrap_or_else(|e| e.into_inner());
    let i = fds.iter().position(|(a, _)| *a == asked)?;
    let (_, fd) = fds.remove(i);
    Some(std::net::TcpListener::from(fd))
}

/// Closes inherited listeners no `bind` took (their address left the configuration).
pub fn close_unclaimed() {
    let Some(lock) = INHERITED.get() else { return };
    for (asked, fd) in lock.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        tracing::info!(%asked, "closing an inherited listener the configuration no longer has");
        drop(fd);
    }
}

/// Whether this process was started by a predecessor handing its listeners over.
pub fn inherited_any() -> bool {
    INHERITED
        .get()
        .is_some_and(|l| !l.lock().unwrap_or_else(|e| e.into_inner()).is_empty())
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fds_round_trip_in_order() {
        let a: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let b: SocketAddr = "[::]:8443".parse().unwrap();
        let list = [
            BoundListener { asked: a, fd: 7 },
            BoundListener { asked: b, fd: 9 },
            BoundListener { asked: a, fd: 11 },
        ];
        let text = env_value(&list);
        assert_eq!(text, "7@127.0.0.1:0,9@[::]:8443,11@127.0.0.1:0");
        assert_eq!(parse(&text).unwrap(), vec![(a, 7), (b, 9), (a, 11)]);
    }

    #[test]
    fn malformed_listen_fds_name_the_item() {
        for bad in ["7", "x@127.0.0.1:1", "7@nowhere", "1@127.0.0.1:1"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_plain_socket_is_not_a_listener() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(is_listening(s.as_raw_fd()).is_err());
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(is_listening(l.as_raw_fd()).is_ok());
    }
}
