//! `[limits]`: connection limits and timeouts of a serving role.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Connection limits and timeouts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Time from a request's first byte to the end of its head.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Time after which a quiet keep-alive connection is parked (leaves its task for a shared
    /// epoll set, costing a few hundred bytes); 0 never parks.
    #[serde(with = "humantime_serde")]
    pub park_after: Duration,
    /// Time a client may take no bytes while a response is being sent.
    #[serde(with = "humantime_serde")]
    pub send_stall_timeout: Duration,
    /// Most client connections open at once; more are answered 503 and closed. 0: derived
    /// from the open-file limit (the limit less 1024 descriptors for files, pipes and maps).
    pub max_connections: usize,
    /// Largest request head accepted; larger answers 431.
    pub max_header_bytes: usize,
    /// After a response that ends the connection while the client may still be sending (431,
    /// 400, 408), the longest time its further bytes are read and discarded so that it reads
    /// the response instead of a reset (nginx's lingering_time); 0 closes at once.
    #[serde(with = "humantime_serde")]
    pub lingering_time: Duration,
    /// ... and the longest wait for the client's next bytes meanwhile (lingering_timeout).
    #[serde(with = "humantime_serde")]
    pub lingering_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            park_after: Duration::from_secs(2),
            send_stall_timeout: Duration::from_secs(30),
            max_connections: 0,
            max_header_bytes: 16 * 1024,
            lingering_time: Duration::from_secs(5),
            lingering_timeout: Duration::from_secs(1),
        }
    }
}
