//! Scenario (f)'s query mix, the same for every nameserver: SRV `_a{bucket}-{ip}._tcp.srv` for
//! varied buckets and client addresses (most inside the configured client blocks, some outside
//! every block), and A `r{region}` for the regions, from a fixed seed; written as dnsperf's
//! data file ("name type" a line, read in order and from the start again).

use std::net::Ipv4Addr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dns_wire::{TYPE_A, TYPE_SRV};

/// Queries in the data file.
pub const QUERIES: usize = 2000;
/// Buckets the SRV names spread over (`_a0` … `_a63`).
pub const BUCKETS: u32 = 64;
/// One query in this many is an A query of a region name; the others are SRV.
pub const A_EVERY: usize = 10;
/// Share of SRV client addresses inside a configured block (the rest fall outside all).
pub const IN_BLOCK_PERCENT: u32 = 80;

/// One query: an absolute name (no final dot) and its type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Query {
    pub name: String,
    pub qtype: u16,
}

impl Query {
    fn type_name(&self) -> &'static str {
        match self.qtype {
            TYPE_A => "A",
            _ => "SRV",
        }
    }
}

/// The mix, in the order the load generator sends it.
pub struct QueryMix {
    pub queries: Vec<Query>,
}

impl QueryMix {
    /// `QUERIES` queries under `domain` for clients in `blocks` (/24 bases) and `regions`.
    pub fn new(seed: u64, domain: &str, blocks: &[Ipv4Addr], regions: &[String]) -> QueryMix {
        let mut rng = StdRng::seed_from_u64(seed);
        let queries = (0..QUERIES)
            .map(|i| {
                if i % A_EVERY == A_EVERY - 1 && !regions.is_empty() {
                    let region = &regions[rng.random_range(0..regions.len())];
                    return Query {
                        name: format!("r{region}.{domain}"),
                        qtype: TYPE_A,
                    };
                }
                let client = if !blocks.is_empty() && rng.random_range(0..100) < IN_BLOCK_PERCENT {
                    u32::from(blocks[rng.random_range(0..blocks.len())]) | rng.random_range(1..255)
                } else {
                    // 11.0.0.0/8: no configured block is there.
                    u32::from(Ipv4Addr::new(11, 0, 0, 0)) | rng.random_range(0..1 << 24)
                };
                Query {
                    name: format!("_a{}-{client}._tcp.srv.{domain}", rng.random_range(0..BUCKETS)),
                    qtype: TYPE_SRV,
                }
            })
            .collect();
        QueryMix { queries }
    }

    /// Each query once, sorted.
    pub fn distinct(&self) -> Vec<Query> {
        let mut d = self.queries.clone();
        d.sort();
        d.dedup();
        d
    }

    /// dnsperf's data file.
    pub fn datafile(&self) -> String {
        self.queries
            .iter()
            .map(|q| format!("{} {}\n", q.name, q.type_name()))
            .collect()
    }

    /// Share of SRV queries.
    pub fn srv_share(&self) -> f64 {
        let srv = self.queries.iter().filter(|q| q.qtype == TYPE_SRV).count();
        srv as f64 / self.queries.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(seed: u64) -> QueryMix {
        let blocks = [Ipv4Addr::new(100, 64, 0, 0), Ipv4Addr::new(100, 64, 1, 0)];
        QueryMix::new(seed, "cdn.test", &blocks, &["east".into(), "west".into()])
    }

    #[test]
    fn the_mix_is_seeded_and_holds_srv_and_region_queries_in_the_stated_shares() {
        let m = mix(1);
        assert_eq!(m.queries, mix(1).queries);
        assert_ne!(m.queries, mix(2).queries);
        assert_eq!(m.queries.len(), QUERIES);
        assert!((m.srv_share() - 0.9).abs() < 1e-9, "{}", m.srv_share());
        assert!(m
            .queries
            .iter()
            .any(|q| q.name == "reast.cdn.test" && q.qtype == TYPE_A));
        let first_octets: Vec<u8> = m
            .queries
            .iter()
            .filter(|q| q.qtype == TYPE_SRV)
            .filter_map(|q| q.name.split(['-', '.']).nth(1)?.parse::<u32>().ok())
            .map(|ip| Ipv4Addr::from(ip).octets()[0])
            .collect();
        let inside = first_octets.iter().filter(|&&o| o == 100).count();
        let share = inside as f64 / first_octets.len() as f64;
        assert!((0.7..0.9).contains(&share), "{share}");
        let d = m.distinct();
        assert!(d.len() > QUERIES / 2 && d.len() < QUERIES, "{}", d.len());
    }

    #[test]
    fn srv_names_follow_the_scheme_with_the_client_address_as_a_decimal() {
        let m = mix(3);
        for q in m.queries.iter().filter(|q| q.qtype == TYPE_SRV) {
            let first = q.name.split('.').next().expect("label");
            let (bucket, ip) = first
                .strip_prefix("_a")
                .and_then(|r| r.split_once('-'))
                .expect("_a{bucket}-{ip}");
            assert!(bucket.parse::<u32>().expect("bucket") < BUCKETS);
            let ip = Ipv4Addr::from(ip.parse::<u32>().expect("ip"));
            assert!(ip.octets()[0] == 100 || ip.octets()[0] == 11, "{ip}");
            assert!(q.name.ends_with("._tcp.srv.cdn.test"));
        }
        assert!(m
            .datafile()
            .lines()
            .all(|l| l.ends_with(" SRV") || l.ends_with(" A")));
    }
}
