//! Regions and client blocks in the registry. A region (`regions/{name}`) is a group of edges
//! the network map routes clients to, with an optional configured network capacity and an
//! operator-set base cost; an edge's heartbeat names its region, which is registered on first
//! sight. A block (`blocks/{prefix}`) is a client network the operator wants mapped even
//! before any traffic from it was seen.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::names::{self, BadName};
use super::registry::{Op, RegistryError, RegistryStore};

/// A region of edges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub name: String,
    /// The region's network capacity toward viewers, bits/s (None: only its servers limit it).
    #[serde(default)]
    pub capacity_bps: Option<u64>,
    /// Added to every cost of this region (operator preference; 0 by default).
    #[serde(default)]
    pub base_cost: u64,
}

/// A client network: an address and a prefix length, host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    pub addr: IpAddr,
    pub len: u8,
}

#[derive(Debug, Error)]
pub enum RegionError {
    #[error(transparent)]
    Name(#[from] BadName),
    #[error("prefix {0:?}: expected ADDRESS/LENGTH, e.g. 198.51.100.0/24 or 2001:db8::/48")]
    BadPrefix(String),
    #[error("no such region {0}")]
    NoRegion(String),
    #[error("no such block {0}")]
    NoBlock(String),
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("registry entry {key} is corrupt: {message}")]
    Corrupt { key: String, message: String },
}

impl Block {
    /// Parses `addr/len`, clearing host bits (`198.51.100.7/24` is `198.51.100.0/24`).
    pub fn parse(text: &str) -> Result<Block, RegionError> {
        let bad = || RegionError::BadPrefix(text.to_string());
        let (addr, len) = text.trim().split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(bad());
        }
        Ok(Block::of(addr, len))
    }

    /// The block of length `len` holding `addr`.
    pub fn of(addr: IpAddr, len: u8) -> Block {
        let addr = match addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len.min(32)))
                };
                IpAddr::V4((bits & mask).into())
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(len.min(128)))
                };
                IpAddr::V6((bits & mask).into())
            }
        };
        Block { addr, len }
    }

    /// The /24 (IPv4) or /48 (IPv6) holding `addr`: the unit edges' telemetry reports.
    pub fn default_for(addr: IpAddr) -> Block {
        match addr {
            IpAddr::V4(_) => Block::of(addr, 24),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Block::of(IpAddr::V4(v4), 24),
                None => Block::of(addr, 48),
            },
        }
    }

    fn key(&self) -> String {
        format!("blocks/{}_{}", self.addr, self.len)
    }
}

impl std::fmt::Display for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Regions and configured blocks in the registry.
pub struct RegionBook<'a> {
    pub store: &'a dyn RegistryStore,
}

impl RegionBook<'_> {
    /// Creates or changes a region.
    pub fn put(&self, region: &Region) -> Result<(), RegionError> {
        names::check("region", &region.name)?;
        let value = serde_json::to_vec(region).unwrap_or_default();
        self.store.commit(
            &[],
            &[Op::Put {
                key: format!("regions/{}", region.name),
                value,
                lease: None,
            }],
        )?;
        Ok(())
    }

    /// Registers `name` with defaults unless it exists (an edge named it in a heartbeat).
    pub fn ensure(&self, name: &str) -> Result<(), RegionError> {
        names::check("region", name)?;
        if self.store.get(&format!("regions/{name}"))?.is_some() {
            return Ok(());
        }
        let region = Region {
            name: name.to_string(),
            capacity_bps: None,
            base_cost: 0,
        };
        let created = self.store.create(
            &format!("regions/{name}"),
            serde_json::to_vec(&region).unwrap_or_default(),
        )?;
        if created {
            tracing::info!(region = name, "region registered by an edge's heartbeat");
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<Region, RegionError> {
        let key = format!("regions/{name}");
        let entry = self
            .store
            .get(&key)?
            .ok_or_else(|| RegionError::NoRegion(name.to_string()))?;
        serde_json::from_slice(&entry.value).map_err(|e| RegionError::Corrupt {
            key,
            message: e.to_string(),
        })
    }

    pub fn list(&self) -> Result<Vec<Region>, RegionError> {
        self.store
            .list("regions/")?
            .into_iter()
            .map(|e| {
                serde_json::from_slice(&e.value).map_err(|err| RegionError::Corrupt {
                    key: e.key.clone(),
                    message: err.to_string(),
                })
            })
            .collect()
    }

    /// Adds a configured block; true if it was new.
    pub fn add_block(&self, block: Block) -> Result<bool, RegionError> {
        Ok(self.store.create(&block.key(), Vec::new())?)
    }

    pub fn remove_block(&self, block: Block) -> Result<(), RegionError> {
        if self.store.get(&block.key())?.is_none() {
            return Err(RegionError::NoBlock(block.to_string()));
        }
        self.store.commit(&[], &[Op::Delete { key: block.key() }])?;
        Ok(())
    }

    /// The configured blocks.
    pub fn blocks(&self) -> Result<Vec<Block>, RegionError> {
        self.store
            .list("blocks/")?
            .into_iter()
            .map(|e| {
                let text = e.key["blocks/".len()..].replacen('_', "/", 1);
                Block::parse(&text).map_err(|_| RegionError::Corrupt {
                    key: e.key.clone(),
                    message: "not a prefix".into(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_with_host_bits_cleared_and_bad_ones_say_what_is_expected() {
        assert_eq!(
            Block::parse("198.51.100.7/24").unwrap().to_string(),
            "198.51.100.0/24"
        );
        assert_eq!(
            Block::parse("2001:db8:1:2::5/48").unwrap().to_string(),
            "2001:db8:1::/48"
        );
        assert_eq!(Block::parse("10.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        for bad in ["198.51.100.0", "198.51.100.0/33", "x/24", "1.2.3.4/-1", ""] {
            let e = Block::parse(bad).unwrap_err().to_string();
            assert!(e.contains("expected ADDRESS/LENGTH"), "{e}");
        }
    }

    #[test]
    fn a_client_address_falls_in_its_slash_24_or_slash_48() {
        let v4: IpAddr = "203.0.113.77".parse().unwrap();
        assert_eq!(Block::default_for(v4).to_string(), "203.0.113.0/24");
        let mapped: IpAddr = "::ffff:203.0.113.77".parse().unwrap();
        assert_eq!(Block::default_for(mapped).to_string(), "203.0.113.0/24");
        let v6: IpAddr = "2001:db8:aa:bb::1".parse().unwrap();
        assert_eq!(Block::default_for(v6).to_string(), "2001:db8:aa::/48");
    }
}
