//! Types of the sockmap body splice: the stream parser and verdict programs that move exactly a
//! budget of bytes from a storage server's socket to a client's socket inside the kernel.
//!
//! Userspace writes a [`SpliceFlow`] keyed by the upstream socket's cookie, inserts the
//! upstream socket into `SPLICE_UPSTREAMS` (which carries both programs) and the client socket
//! into `SPLICE_CLIENTS` (no programs: only a redirect target). The parser cuts the upstream
//! stream into messages of at most [`SPLICE_MAX_MESSAGE`] bytes that never cross the end of the
//! budget; the verdict redirects each to the client and, when the budget is spent, posts a
//! [`SpliceEvent`] to `SPLICE_EVENTS`.

use bytemuck::{Pod, Zeroable};

/// The stream parser program.
pub const SPLICE_PARSER_PROG: &str = "splice_parser";
/// The stream verdict program.
pub const SPLICE_VERDICT_PROG: &str = "splice_verdict";
/// SOCKHASH of storage-server sockets (by cookie) whose bytes the programs steer.
pub const SPLICE_UPSTREAMS_MAP: &str = "SPLICE_UPSTREAMS";
/// SOCKHASH of client sockets (by cookie): redirect targets only.
pub const SPLICE_CLIENTS_MAP: &str = "SPLICE_CLIENTS";
/// Hash of [`SpliceFlow`] by upstream socket cookie.
pub const SPLICE_FLOWS_MAP: &str = "SPLICE_FLOWS";
/// Ring buffer of [`SpliceEvent`].
pub const SPLICE_EVENTS_MAP: &str = "SPLICE_EVENTS";
/// Per-CPU [`SpliceCounters`].
pub const SPLICE_COUNTERS_MAP: &str = "SPLICE_COUNTERS";

/// Upstream sockets (and flows) spliced at once.
pub const SPLICE_UPSTREAMS_MAX: u32 = 16_384;
/// Client sockets that can be redirect targets at once.
pub const SPLICE_CLIENTS_MAX: u32 = 65_536;
/// Largest message the parser hands to the verdict (must stay below the socket receive buffer,
/// or the stream parser fails the socket with EMSGSIZE).
pub const SPLICE_MAX_MESSAGE: u64 = 64 * 1024;

/// Why a [`SpliceEvent`] was posted.
pub mod splice_event {
    /// The budget is spent: every byte of it was redirected.
    pub const BUDGET_SPENT: u32 = 1;
    /// The kernel refused a redirect (the client socket left the map): the flow is broken.
    pub const REDIRECT_FAILED: u32 = 2;
}

/// One flow: the bytes still to move from an upstream socket to a client socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SpliceFlow {
    /// Cookie of the client socket (key in `SPLICE_CLIENTS`).
    pub client_cookie: u64,
    /// Bytes the parser has not yet assigned to a message.
    pub unparsed: u64,
    /// Bytes the verdict has not yet redirected (the budget).
    pub budget: u64,
    /// Bytes redirected so far.
    pub redirected: u64,
    /// Bytes that arrived past the budget and were dropped (an upstream that sent too much).
    pub excess: u64,
    /// Length of the message the parser cut last (the verdict's context length is the whole
    /// buffer, not the message).
    pub message: u32,
    /// 1 once a redirect failed.
    pub failed: u32,
}

/// Posted to `SPLICE_EVENTS` when a flow finishes or breaks.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SpliceEvent {
    /// Cookie of the upstream socket (the flow's key).
    pub upstream_cookie: u64,
    /// One of [`splice_event`].
    pub kind: u32,
    pub _reserved: u32,
}

/// Per-CPU totals of the splice programs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SpliceCounters {
    /// Bytes redirected to client sockets.
    pub redirected_bytes: u64,
    /// Messages redirected.
    pub messages: u64,
    /// Bytes past a budget, dropped.
    pub excess_bytes: u64,
    /// Redirects the kernel refused.
    pub redirect_failures: u64,
}

/// The length the parser gives the next message of a flow with `unparsed` bytes left.
pub fn next_message_len(unparsed: u64) -> u64 {
    if unparsed < SPLICE_MAX_MESSAGE {
        unparsed
    } else {
        SPLICE_MAX_MESSAGE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_never_cross_the_budget_end() {
        assert_eq!(next_message_len(10), 10);
        assert_eq!(next_message_len(SPLICE_MAX_MESSAGE + 1), SPLICE_MAX_MESSAGE);
        let mut left = 1_000_003u64;
        let mut total = 0;
        while left > 0 {
            let n = next_message_len(left);
            total += n;
            left -= n;
        }
        assert_eq!(total, 1_000_003);
    }
}
