//! The network map as its readers (nameservers, edges steering players) hold it: regions by
//! name, and client blocks indexed by prefix length for longest-prefix lookup of an address.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::network_map::{MapBlock, MapRegion, NetworkMap};

/// A map ready for lookups.
#[derive(Debug, Default)]
pub struct MapView {
    pub map: NetworkMap,
    regions: HashMap<String, usize>,
    /// (prefix length, network address) → block index.
    blocks: HashMap<(u8, IpAddr), usize>,
    /// The prefix lengths present, longest first.
    lengths: Vec<u8>,
}

/// `addr` with the host bits below `len` cleared (IPv4-mapped IPv6 as IPv4).
pub fn network(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => network(IpAddr::V4(v4), len),
            None => {
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(len.min(128)))
                };
                IpAddr::V6((u128::from(a) & mask).into())
            }
        },
    }
}

impl MapView {
    pub fn new(map: NetworkMap) -> MapView {
        let regions = map
            .regions
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        let mut blocks = HashMap::new();
        let mut lengths = Vec::new();
        for (i, b) in map.blocks.iter().enumerate() {
            let Some((addr, len)) = b.prefix.split_once('/') else {
                continue;
            };
            let (Ok(addr), Ok(len)) = (addr.parse::<IpAddr>(), len.parse::<u8>()) else {
                continue;
            };
            blocks.insert((len, network(addr, len)), i);
            if !lengths.contains(&len) {
                lengths.push(len);
            }
        }
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        MapView {
            map,
            regions,
            blocks,
            lengths,
        }
    }

    pub fn region(&self, name: &str) -> Option<&MapRegion> {
        self.regions.get(name).map(|&i| &self.map.regions[i])
    }

    /// The most specific block holding `addr`.
    pub fn block_of(&self, addr: IpAddr) -> Option<&MapBlock> {
        let v4 = match addr {
            IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            a => a,
        };
        self.lengths.iter().find_map(|&len| {
            let max = if v4.is_ipv4() { 32 } else { 128 };
            if len > max {
                return None;
            }
            self.blocks
                .get(&(len, network(v4, len)))
                .map(|&i| &self.map.blocks[i])
        })
    }

    /// Regions to offer `addr`, in order, with a cost each (the default order costs its rank).
    pub fn order_for(&self, addr: IpAddr) -> Vec<(&MapRegion, u64)> {
        let named: Vec<(&str, u64)> = match self.block_of(addr) {
            Some(b) => b
                .regions
                .iter()
                .map(String::as_str)
                .zip(b.costs.iter().copied())
                .collect(),
            None => self
                .map
                .default_order
                .iter()
                .enumerate()
                .map(|(i, r)| (r.as_str(), i as u64))
                .collect(),
        };
        named
            .into_iter()
            .filter_map(|(r, c)| self.region(r).map(|r| (r, c)))
            .filter(|(r, _)| !r.servers.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(prefix: &str, regions: &[&str]) -> MapBlock {
        MapBlock {
            prefix: prefix.into(),
            regions: regions.iter().map(|r| r.to_string()).collect(),
            costs: (0..regions.len() as u64).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_longest_prefix_holding_the_client_wins() {
        let view = MapView::new(NetworkMap {
            blocks: vec![
                block("10.0.0.0/8", &["a"]),
                block("10.1.2.0/24", &["b"]),
                block("2001:db8:1::/48", &["c"]),
            ],
            ..Default::default()
        });
        let at = |s: &str| view.block_of(s.parse().unwrap()).map(|b| b.prefix.clone());
        assert_eq!(at("10.1.2.3").as_deref(), Some("10.1.2.0/24"));
        assert_eq!(at("::ffff:10.1.2.3").as_deref(), Some("10.1.2.0/24"));
        assert_eq!(at("10.9.9.9").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(at("2001:db8:1:5::1").as_deref(), Some("2001:db8:1::/48"));
        assert_eq!(at("192.0.2.1"), None);
    }
}
