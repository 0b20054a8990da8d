//! Builds the answer to one query from the map held in memory: SRV records that rank the
//! regions for the client's block, A/AAAA records of a region's servers in the bucket's
//! rendezvous order, SOA at the apex; NXDOMAIN for names outside the scheme, REFUSED outside
//! the zone, FORMERR for a query that is not one question, NOTIMP for other opcodes.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use strata_wire::network_map::{MapRegion, MapServer};

use crate::rendezvous;
use crate::scheme::{self, Asked};
use strata_wire::map_view::{network, MapView};

/// What answers depend on besides the map.
#[derive(Clone, Debug)]
pub struct AnswerSettings {
    pub zone: Name,
    pub ttl: u32,
    /// Servers loaded above (1 + epsilon) × their region's mean are left out of A answers.
    pub epsilon: f64,
    /// Largest UDP answer offered to EDNS clients (512 without EDNS).
    pub max_udp: u16,
}

/// An answer and what it tells the load accounting.
pub struct Answer {
    pub message: Message,
    /// The client block an SRV query was answered for (`a.b.c.0/24`).
    pub block: Option<String>,
}

/// The label a server goes by under its region token (dots would add labels).
pub fn server_label(name: &str) -> String {
    name.replace('.', "-").to_ascii_lowercase()
}

/// The client block (/24, /48) of an address, as the map's blocks are written.
pub fn block_name(addr: IpAddr) -> String {
    let addr = match addr {
        IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        a => a,
    };
    match addr {
        IpAddr::V4(_) => format!("{}/24", network(addr, 24)),
        IpAddr::V6(_) => format!("{}/48", network(addr, 48)),
    }
}

fn record(name: &Name, ttl: u32, rdata: RData) -> Record {
    Record::from_rdata(name.clone(), ttl, rdata)
}

fn child(label: &str, parent: &Name) -> Option<Name> {
    Name::from_ascii(label).ok()?.append_domain(parent).ok()
}

/// The client's address: from the name, else the EDNS Client Subnet option, else the source.
fn client_address(request: &Message, in_name: Option<std::net::Ipv4Addr>, source: IpAddr) -> IpAddr {
    if let Some(ip) = in_name {
        return IpAddr::V4(ip);
    }
    if let Some(EdnsOption::Subnet(s)) = request
        .extensions()
        .as_ref()
        .and_then(|e| e.option(EdnsCode::Subnet))
    {
        return s.addr();
    }
    source
}

/// Answers `request` from `view`; `source` is the querying resolver's address.
pub fn answer(view: &MapView, cfg: &AnswerSettings, request: &Message, source: IpAddr) -> Answer {
    let mut m = Message::new();
    m.set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_authoritative(true)
        .set_recursion_desired(request.recursion_desired());
    if let Some(edns) = request.extensions() {
        let mut out = Edns::new();
        out.set_max_payload(cfg.max_udp.max(512));
        if let Some(EdnsOption::Subnet(s)) = edns.option(EdnsCode::Subnet) {
            let scope = if s.addr().is_ipv4() { 24 } else { 48 };
            out.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                s.addr(),
                s.source_prefix(),
                scope.min(s.source_prefix()),
            )));
        }
        m.set_edns(out);
    }
    let mut block = None;
    if request.op_code() != OpCode::Query {
        m.set_response_code(ResponseCode::NotImp);
        return Answer { message: m, block };
    }
    let [query] = request.queries() else {
        m.set_response_code(ResponseCode::FormErr);
        return Answer { message: m, block };
    };
    m.add_query(query.clone());
    let name = query.name().to_lowercase();
    if !cfg.zone.zone_of(&name) {
        m.set_authoritative(false);
        m.set_response_code(ResponseCode::Refused);
        return Answer { message: m, block };
    }
    let below = usize::from(name.num_labels().saturating_sub(cfg.zone.num_labels()));
    let labels: Vec<String> = name
        .iter()
        .take(below)
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    let qtype = query.query_type();
    let wants = |t: RecordType| qtype == t || qtype == RecordType::ANY;
    let ttl = cfg.ttl;
    let found = match scheme::parse(&labels) {
        Asked::Apex => {
            if wants(RecordType::SOA) {
                m.add_answer(soa(view, cfg));
            }
            true
        }
        Asked::Srv { bucket, client } => {
            let client = client_address(request, client, source);
            block = Some(block_name(client));
            if wants(RecordType::SRV) {
                srv_answer(&mut m, view, cfg, bucket, client);
            }
            true
        }
        Asked::Region { region, below } => match view.region(&region) {
            None => false,
            Some(r) => match below {
                None => {
                    address_records(
                        &mut m,
                        &name,
                        rendezvous::order(&r.servers, 0, cfg.epsilon),
                        qtype,
                        ttl,
                    );
                    true
                }
                Some(label) => {
                    if let Some(s) = r.servers.iter().find(|s| server_label(&s.name) == label) {
                        address_records(&mut m, &name, vec![s], qtype, ttl);
                        true
                    } else if let Some(bucket) = scheme::bucket_label(&label) {
                        address_records(
                            &mut m,
                            &name,
                            rendezvous::order(&r.servers, bucket, cfg.epsilon),
                            qtype,
                            ttl,
                        );
                        true
                    } else {
                        false
                    }
                }
            },
        },
        Asked::Unknown => false,
    };
    if !found {
        m.set_response_code(ResponseCode::NXDomain);
    }
    if m.answers().is_empty() {
        m.add_name_server(soa(view, cfg));
    }
    Answer { message: m, block }
}

/// The zone's SOA (serial = the map's version).
fn soa(view: &MapView, cfg: &AnswerSettings) -> Record {
    let mname = child("ns", &cfg.zone).unwrap_or_else(|| cfg.zone.clone());
    let rname = child("hostmaster", &cfg.zone).unwrap_or_else(|| cfg.zone.clone());
    let serial = (view.map.version & 0xffff_ffff) as u32;
    record(
        &cfg.zone,
        cfg.ttl,
        RData::SOA(SOA::new(mname, rname, serial, 60, 30, 600, cfg.ttl)),
    )
}

/// A and AAAA records of `servers` under `name`, as the query type asks.
fn address_records(m: &mut Message, name: &Name, servers: Vec<&MapServer>, qtype: RecordType, ttl: u32) {
    for s in servers {
        match s.addr.ip() {
            IpAddr::V4(a) if qtype == RecordType::A || qtype == RecordType::ANY => {
                m.add_answer(record(name, ttl, RData::A(A(a))));
            }
            IpAddr::V6(a) if qtype == RecordType::AAAA || qtype == RecordType::ANY => {
                m.add_answer(record(name, ttl, RData::AAAA(AAAA(a))));
            }
            _ => {}
        }
    }
}

/// Glue: the address records of `servers` under `name`, in the additional section.
fn glue(m: &mut Message, name: &Name, servers: &[&MapServer], ttl: u32) {
    for s in servers {
        let rdata = match s.addr.ip() {
            IpAddr::V4(a) => RData::A(A(a)),
            IpAddr::V6(a) => RData::AAAA(AAAA(a)),
        };
        m.add_additional(record(name, ttl, rdata));
    }
}

/// One SRV record per region token (or per server where a region's ports differ), ranked by
/// the client block's order in the map, weighted by spare capacity.
fn srv_answer(m: &mut Message, view: &MapView, cfg: &AnswerSettings, bucket: u32, client: IpAddr) {
    let order = view.order_for(client);
    let total_spare: u128 = order.iter().map(|(r, _)| u128::from(r.spare_bps)).sum();
    let weight = |r: &MapRegion| -> u16 {
        if total_spare == 0 {
            return 0;
        }
        (u128::from(r.spare_bps) * 1000 / total_spare).min(u128::from(u16::MAX)) as u16
    };
    let Some(qname) = m.queries().first().map(|q| q.name().clone()) else {
        return;
    };
    let mut priority: u16 = 0;
    let mut last_cost = None;
    for (region, cost) in order {
        if last_cost != Some(cost) {
            priority = priority.saturating_add(1);
            last_cost = Some(cost);
        }
        let Some(token) = child(&format!("r{}", region.name), &cfg.zone) else {
            continue;
        };
        let servers = rendezvous::order(&region.servers, bucket, cfg.epsilon);
        let ports: BTreeSet<u16> = servers.iter().map(|s| s.addr.port()).collect();
        if ports.len() == 1 {
            let Some(target) = child(&format!("a{bucket}"), &token) else {
                continue;
            };
            let port = ports.iter().next().copied().unwrap_or(0);
            let srv = SRV::new(priority, weight(region), port, target.clone());
            m.add_answer(record(&qname, cfg.ttl, RData::SRV(srv)));
            glue(m, &target, &servers, cfg.ttl);
        } else {
            for s in servers {
                let Some(target) = child(&server_label(&s.name), &token) else {
                    continue;
                };
                let srv = SRV::new(priority, weight(region), s.addr.port(), target.clone());
                m.add_answer(record(&qname, cfg.ttl, RData::SRV(srv)));
                glue(m, &target, &[s], cfg.ttl);
            }
        }
    }
}
