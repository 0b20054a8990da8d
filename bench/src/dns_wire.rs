//! DNS messages as the harness needs them, and no more: a query (one question, class IN, no
//! EDNS) and a reply read back into its header and its answer and additional records (A, AAAA,
//! SRV; compressed names followed), each printable as a zone-file line. Used to check that a
//! nameserver answers before it is measured, and to write the peer's zone from strata's answers.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{bail, ensure, Context as _};

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;

/// What a record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    /// Any other type (its number); not printed.
    Other(u16),
}

/// One resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Absolute, lower case, without the final dot.
    pub name: String,
    pub ttl: u32,
    pub data: RData,
}

impl Record {
    /// The record as a line of a zone file (absolute names), or None for a type not kept.
    pub fn zone_line(&self) -> Option<String> {
        let data = match &self.data {
            RData::A(a) => format!("A {a}"),
            RData::Aaaa(a) => format!("AAAA {a}"),
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => format!("SRV {priority} {weight} {port} {target}."),
            RData::Other(_) => return None,
        };
        Some(format!("{}. {} IN {data}", self.name, self.ttl))
    }
}

/// A reply's header and records.
#[derive(Debug)]
pub struct Reply {
    pub id: u16,
    pub rcode: u8,
    pub truncated: bool,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub additional: Vec<Record>,
}

/// The wire bytes of a query for `name` (relative labels joined by dots) of type `qtype`.
pub fn query(id: u16, name: &str, qtype: u16) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(12 + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|&l| (1..=63).contains(&l))
            .with_context(|| format!("bad label {label:?} in {name}"))?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    Ok(out)
}

/// Reads a reply.
pub fn parse_reply(msg: &[u8]) -> anyhow::Result<Reply> {
    ensure!(
        msg.len() >= 12,
        "reply of {} bytes is shorter than a header",
        msg.len()
    );
    let u16_at = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    let counts = [u16_at(4), u16_at(6), u16_at(8), u16_at(10)];
    let mut at = 12;
    for _ in 0..counts[0] {
        let (_, next) = read_name(msg, at)?;
        at = next + 4;
    }
    let mut sections: [Vec<Record>; 3] = Default::default();
    for (section, &count) in sections.iter_mut().zip(&counts[1..]) {
        for _ in 0..count {
            let (record, next) = read_record(msg, at)?;
            section.push(record);
            at = next;
        }
    }
    let [answers, _authority, additional] = sections;
    Ok(Reply {
        id: u16_at(0),
        rcode: msg[3] & 0x0f,
        truncated: msg[2] & 0x02 != 0,
        authoritative: msg[2] & 0x04 != 0,
        answers,
        additional,
    })
}

fn read_record(msg: &[u8], at: usize) -> anyhow::Result<(Record, usize)> {
    let (name, at) = read_name(msg, at)?;
    let fixed = msg.get(at..at + 10).context("record cut short")?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let start = at + 10;
    let rdata = msg.get(start..start + len).context("record data cut short")?;
    let data = match rtype {
        TYPE_A if len == 4 => RData::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
        TYPE_AAAA if len == 16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(rdata);
            RData::Aaaa(Ipv6Addr::from(b))
        }
        TYPE_SRV if len >= 7 => RData::Srv {
            priority: u16::from_be_bytes([rdata[0], rdata[1]]),
            weight: u16::from_be_bytes([rdata[2], rdata[3]]),
            port: u16::from_be_bytes([rdata[4], rdata[5]]),
            target: read_name(msg, start + 6)?.0,
        },
        TYPE_A | TYPE_AAAA | TYPE_SRV => bail!("type {rtype} with {len} bytes of data"),
        other => RData::Other(other),
    };
    Ok((Record { name, ttl, data }, start + len))
}

/// The name at `at` (following compression pointers) and the offset after it.
fn read_name(msg: &[u8], mut at: usize) -> anyhow::Result<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut after = None;
    for _ in 0..128 {
        let len = *msg.get(at).context("name runs past the message")?;
        match len {
            0 => return Ok((labels.join("."), after.unwrap_or(at + 1))),
            l if l & 0xc0 == 0xc0 => {
                let low = *msg.get(at + 1).context("pointer cut short")?;
                after.get_or_insert(at + 2);
                at = usize::from(u16::from_be_bytes([l & 0x3f, low]));
            }
            l if l & 0xc0 == 0 => {
                let label = msg
                    .get(at + 1..at + 1 + usize::from(l))
                    .context("label runs past the message")?;
                labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
                at += 1 + usize::from(l);
            }
            l => bail!("label type {:#x}", l & 0xc0),
        }
    }
    bail!("name with more than 128 labels or pointers (a loop)")
}

/// Asks `server` over UDP, trying three times within `timeout` each.
pub fn ask(server: SocketAddr, name: &str, qtype: u16, timeout: Duration) -> anyhow::Result<Reply> {
    let socket = UdpSocket::bind(("127.0.0.1", 0)).context("binding a UDP socket for a DNS query")?;
    socket.set_read_timeout(Some(timeout))?;
    socket
        .connect(server)
        .with_context(|| format!("connecting a UDP socket to {server}"))?;
    let mut buf = [0u8; 4096];
    let mut last = None;
    for id in 1..=3u16 {
        socket
            .send(&query(id, name, qtype)?)
            .with_context(|| format!("sending a query for {name} to {server}"))?;
        match socket.recv(&mut buf) {
            Ok(n) => {
                let reply =
                    parse_reply(&buf[..n]).with_context(|| format!("the reply for {name} from {server}"))?;
                if reply.id == id {
                    return Ok(reply);
                }
            }
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow::anyhow!(
        "no reply for {name} from {server} in three tries: {last:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_carries_its_id_one_question_and_the_labels() {
        let q = query(0x1234, "_a1-2._tcp.srv.cdn.test", TYPE_SRV).expect("query");
        assert_eq!(&q[..6], &[0x12, 0x34, 0, 0, 0, 1]);
        assert_eq!(q[12], 5);
        assert_eq!(&q[13..18], b"_a1-2");
        assert_eq!(&q[q.len() - 4..], &[0, 33, 0, 1]);
        assert!(query(1, "a..b", TYPE_A).is_err());
    }

    #[test]
    fn a_reply_with_compressed_names_reads_back_into_zone_lines() {
        // The question, one SRV answer whose target points into the question, one A glue.
        let mut m = query(7, "_a1-2._tcp.srv.cdn.test", TYPE_SRV).expect("query");
        m[2] = 0x84; // QR, AA
        m[7] = 1; // ANCOUNT
        m[11] = 1; // ARCOUNT
        let apex = 12 + 6 + 5 + 4; // offset of "cdn"
        let srv_target: Vec<u8> = [&[2u8][..], b"a1", &[5], b"reast", &[0xc0, apex as u8]].concat();
        m.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 20]);
        m.extend_from_slice(&((6 + srv_target.len()) as u16).to_be_bytes());
        m.extend_from_slice(&[0, 1, 1, 244, 31, 144]);
        let target_at = m.len();
        m.extend_from_slice(&srv_target);
        m.extend_from_slice(&[0xc0, target_at as u8, 0, 1, 0, 1, 0, 0, 0, 20, 0, 4, 127, 0, 0, 1]);
        let r = parse_reply(&m).expect("parse");
        assert_eq!((r.id, r.rcode, r.truncated, r.authoritative), (7, 0, false, true));
        let lines: Vec<String> = r
            .answers
            .iter()
            .chain(&r.additional)
            .filter_map(Record::zone_line)
            .collect();
        assert_eq!(
            lines,
            [
                "_a1-2._tcp.srv.cdn.test. 20 IN SRV 1 500 8080 a1.reast.cdn.test.",
                "a1.reast.cdn.test. 20 IN A 127.0.0.1"
            ]
        );
    }

    #[test]
    fn pointer_loops_and_short_messages_are_errors() {
        let mut m = vec![0u8; 12];
        m[7] = 1;
        m.extend_from_slice(&[0xc0, 12]);
        assert!(parse_reply(&m).is_err());
        assert!(parse_reply(&[0; 5]).is_err());
    }
}
