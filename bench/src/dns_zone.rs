//! The peer's static zone for scenario (f): every name of the query mix asked once of a running
//! strata nameserver, and what it answered (SRV records with their A glue, A records of the
//! regions) written as a zone file under an SOA and NS, so the peer answers the same names with
//! the same records and about the same response sizes.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::ensure;

use crate::dns_mix::Query;
use crate::dns_wire::{ask, Record};

/// Asks `server` each of `queries` and keeps every record of the answer and additional
/// sections as zone lines (each once); fails on an answer that is not an authoritative
/// NOERROR, is truncated or is empty.
pub fn collect(server: SocketAddr, queries: &[Query]) -> anyhow::Result<BTreeSet<String>> {
    let mut lines = BTreeSet::new();
    for q in queries {
        let reply = ask(server, &q.name, q.qtype, Duration::from_secs(1))?;
        ensure!(
            reply.rcode == 0 && reply.authoritative && !reply.truncated && !reply.answers.is_empty(),
            "{} type {}: rcode {}, authoritative {}, truncated {}, {} answers",
            q.name,
            q.qtype,
            reply.rcode,
            reply.authoritative,
            reply.truncated,
            reply.answers.len()
        );
        lines.extend(
            reply
                .answers
                .iter()
                .chain(&reply.additional)
                .filter_map(Record::zone_line),
        );
    }
    Ok(lines)
}

/// The zone file for `domain`: SOA, NS (a name in the zone, with an address), then `records`.
pub fn zone_file(domain: &str, ttl: u32, records: &BTreeSet<String>) -> String {
    let mut z = String::new();
    let _ = writeln!(z, "$ORIGIN {domain}.\n$TTL {ttl}");
    let _ = writeln!(
        z,
        "@ IN SOA ns.{domain}. hostmaster.{domain}. 1 3600 600 86400 {ttl}"
    );
    let _ = writeln!(z, "@ IN NS ns.{domain}.\nns IN A 127.0.0.1");
    for line in records {
        let _ = writeln!(z, "{line}");
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_has_its_apex_records_then_each_collected_line_once() {
        let records: BTreeSet<String> = [
            "reast.cdn.test. 20 IN A 127.0.1.1",
            "reast.cdn.test. 20 IN A 127.0.1.1",
            "_a1-2._tcp.srv.cdn.test. 20 IN SRV 1 500 8080 a1.reast.cdn.test.",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let z = zone_file("cdn.test", 20, &records);
        let lines: Vec<&str> = z.lines().collect();
        assert_eq!(lines[0], "$ORIGIN cdn.test.");
        assert!(lines[2].starts_with("@ IN SOA ns.cdn.test. "));
        assert_eq!(lines.len(), 5 + 2, "{z}");
        assert_eq!(z.matches("reast.cdn.test. 20 IN A").count(), 1);
    }
}
