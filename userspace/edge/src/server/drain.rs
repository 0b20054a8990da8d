//! Draining: after a successor took the listeners over, the old process serves on the
//! connections it has, but none stays open for long: a response in progress finishes, and the
//! next request on each connection is answered with `Connection: close`. A connection that sends
//! nothing more closes at its idle timeout, as it would have without the handover — so a reload
//! adds no close a client would not have seen anyway (a keep-alive connection closed under a
//! request the client is just sending). The process exits when none is left, or at
//! `handover.drain_timeout`.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this server is draining.
#[derive(Default)]
pub struct Drain {
    draining: AtomicBool,
}

impl Drain {
    /// Starts draining (idempotent).
    pub fn start(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_starts_once_and_stays() {
        let d = Drain::default();
        assert!(!d.is_draining());
        d.start();
        d.start();
        assert!(d.is_draining());
    }
}
