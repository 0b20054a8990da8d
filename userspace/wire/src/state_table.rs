//! The director's state table (seed 004): one row per edge — what its cache holds and how
//! loaded it is — published through the control plane and handed to every edge of the region.
//!
//! A row's contents are exact (the asset list) for small caches and a Bloom filter for large
//! ones, with the false-positive rate it was sized for and a version that changes whenever the
//! cache's contents do. The load factor is one number in [0, ∞): the largest of the edge's
//! connection, egress and CPU utilisations (see [`LoadFactor::compute`]).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A utilisation figure (1.0 = the resource is full). Never NaN (constructors clamp), so it is
/// `Eq` like the rest of the heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Load(pub f64);

impl Eq for Load {}

impl Load {
    /// `v`, with NaN and negatives as 0 and rounded to 4 decimals (so a row that did not
    /// really change is not rewritten).
    pub fn new(v: f64) -> Load {
        if v.is_nan() || v <= 0.0 {
            return Load(0.0);
        }
        Load((v * 10_000.0).round() / 10_000.0)
    }
}

/// An edge's load and what it was computed from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadFactor {
    /// `max(connections / max_connections, egress_bps / capacity_bps, cpu)`.
    pub value: Load,
    pub connections: u64,
    pub max_connections: u64,
    /// Body bytes sent per second (local hits and proxied), times 8.
    pub egress_bps: u64,
    pub capacity_bps: u64,
    /// Process CPU time per second of wall time, divided by the number of cores.
    pub cpu: Load,
}

impl LoadFactor {
    /// The load factor: the utilisation of the edge's scarcest resource — open connections of
    /// its connection limit, egress of its capacity, CPU of its cores. The maximum, not a
    /// weighted sum: an edge whose links are full is full however idle its CPU is.
    pub fn compute(
        connections: u64,
        max_connections: u64,
        egress_bps: u64,
        capacity_bps: u64,
        cpu: f64,
    ) -> LoadFactor {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let cpu = Load::new(cpu);
        let value = ratio(connections, max_connections)
            .max(ratio(egress_bps, capacity_bps))
            .max(cpu.0);
        LoadFactor {
            value: Load::new(value),
            connections,
            max_connections,
            egress_bps,
            capacity_bps,
            cpu,
        }
    }
}

/// What a cache holds: the exact list, or a Bloom filter of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CacheSummary {
    /// Every `tenant/content/asset` held.
    Exact {
        assets: Vec<String>,
    },
    Bloom(BloomFilter),
}

impl Default for CacheSummary {
    fn default() -> Self {
        CacheSummary::Exact { assets: Vec::new() }
    }
}

impl CacheSummary {
    /// The exact list up to `exact_limit` entries, else a Bloom filter sized for `fp_rate`.
    pub fn summarize(assets: &[String], exact_limit: usize, fp_rate: f64) -> CacheSummary {
        if assets.len() <= exact_limit {
            let mut assets = assets.to_vec();
            assets.sort();
            return CacheSummary::Exact { assets };
        }
        let mut bloom = BloomFilter::sized(assets.len(), fp_rate);
        for a in assets {
            bloom.insert(a);
        }
        bloom.seal();
        CacheSummary::Bloom(bloom)
    }

    /// Whether `asset` is (probably, for a Bloom filter) held.
    pub fn contains(&self, asset: &str) -> bool {
        match self {
            CacheSummary::Exact { assets } => assets.binary_search_by(|a| a.as_str().cmp(asset)).is_ok(),
            CacheSummary::Bloom(b) => b.contains(asset),
        }
    }

    /// Assets in the summary (exact count, or what the filter was built from).
    pub fn len(&self) -> usize {
        match self {
            CacheSummary::Exact { assets } => assets.len(),
            CacheSummary::Bloom(b) => b.items as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A Bloom filter over asset paths: `bits` (hex) of `m` bits, `k` probes by double hashing of
/// two FNV-1a 64 hashes (stable across processes and versions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BloomFilter {
    pub m: u64,
    pub k: u32,
    /// Items inserted.
    pub items: u64,
    /// The false-positive rate it was sized for at `items`.
    pub fp_rate: Load,
    /// The bit array, hex, least significant bit of byte 0 first.
    pub bits: String,
    #[serde(skip)]
    raw: Vec<u8>,
}

fn fnv1a(data: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl BloomFilter {
    /// A filter for `n` items at false-positive rate `p`: m = −n·ln p / (ln 2)², k = m/n · ln 2.
    pub fn sized(n: usize, p: f64) -> BloomFilter {
        let p = if p > 0.0 && p < 1.0 { p } else { 0.01 };
        let n = n.max(1) as f64;
        let ln2 = std::f64::consts::LN_2;
        let m = ((-n * p.ln()) / (ln2 * ln2)).ceil().max(64.0) as u64;
        let k = ((m as f64 / n) * ln2).round().clamp(1.0, 16.0) as u32;
        let bytes = m.div_ceil(8) as usize;
        BloomFilter {
            m,
            k,
            items: 0,
            fp_rate: Load(p),
            bits: String::new(),
            raw: vec![0; bytes],
        }
    }

    fn probes(&self, item: &str) -> impl Iterator<Item = u64> + '_ {
        let h1 = fnv1a(item.as_bytes(), 0);
        let h2 = fnv1a(item.as_bytes(), 0x9e37_79b9_7f4a_7c15) | 1;
        (0..u64::from(self.k)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % self.m)
    }

    pub fn insert(&mut self, item: &str) {
        let probes: Vec<u64> = self.probes(item).collect();
        for bit in probes {
            self.raw[(bit / 8) as usize] |= 1 << (bit % 8);
        }
        self.items += 1;
    }

    /// Writes the bit array into `bits` (call after the last insert, before sending).
    pub fn seal(&mut self) {
        self.bits = hex_encode(&self.raw);
    }

    /// Whether `item` may have been inserted (false positives at about `fp_rate`).
    pub fn contains(&self, item: &str) -> bool {
        let raw: std::borrow::Cow<'_, [u8]> = if self.raw.is_empty() {
            match hex_decode(&self.bits) {
                Some(r) => std::borrow::Cow::Owned(r),
                None => return false,
            }
        } else {
            std::borrow::Cow::Borrowed(&self.raw)
        };
        if (raw.len() as u64) * 8 < self.m {
            return false;
        }
        self.probes(item)
            .all(|bit| raw[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
    }

    /// Decodes the hex bit array once after deserializing (lookups then read it directly).
    pub fn prepare(&mut self) {
        if self.raw.is_empty() {
            self.raw = hex_decode(&self.bits).unwrap_or_default();
        }
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// One edge's row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRow {
    pub name: String,
    /// Where viewers (and peers) connect.
    pub addr: Option<SocketAddr>,
    pub region: String,
    /// Changes whenever the cache's contents change.
    pub contents_version: u64,
    pub contents: CacheSummary,
    pub load: LoadFactor,
}

/// The rows of one region, as the control plane hands them to its edges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionTable {
    pub region: String,
    /// Changes whenever a row changes, appears or goes (its lease expired).
    pub version: u64,
    pub rows: Vec<StateRow>,
}

impl RegionTable {
    /// The region's mean load over all its rows (0 with none).
    pub fn mean_load(&self) -> f64 {
        if self.rows.is_empty() {
            return 0.0;
        }
        self.rows.iter().map(|r| r.load.value.0).sum::<f64>() / self.rows.len() as f64
    }

    /// Decodes every Bloom filter once.
    pub fn prepare(&mut self) {
        for r in &mut self.rows {
            if let CacheSummary::Bloom(b) = &mut r.contents {
                b.prepare();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_summary_answers_exactly_and_bloom_has_no_false_negatives_and_about_its_fp_rate() {
        let assets: Vec<String> = (0..5000).map(|i| format!("acme/c{i}/video.mp4")).collect();
        let exact = CacheSummary::summarize(&assets[..10], 1024, 0.01);
        assert!(matches!(exact, CacheSummary::Exact { .. }));
        assert!(exact.contains("acme/c3/video.mp4"));
        assert!(!exact.contains("acme/c11/video.mp4"));
        let bloom = CacheSummary::summarize(&assets, 1024, 0.01);
        let CacheSummary::Bloom(b) = &bloom else {
            panic!("5000 > 1024 entries must be a Bloom filter")
        };
        assert_eq!(b.items, 5000);
        // Through JSON, as an edge receives it.
        let mut back: CacheSummary = serde_json::from_str(&serde_json::to_string(&bloom).unwrap()).unwrap();
        if let CacheSummary::Bloom(b) = &mut back {
            b.prepare();
        }
        assert!(assets.iter().all(|a| back.contains(a)), "no false negatives");
        let fp = (0..20_000)
            .filter(|i| back.contains(&format!("other/x{i}/a.ts")))
            .count() as f64
            / 20_000.0;
        assert!(
            fp < 0.02,
            "false-positive rate {fp} far above the 1% it was sized for"
        );
    }

    #[test]
    fn load_factor_is_the_scarcest_resource() {
        let l = LoadFactor::compute(50, 100, 1_000, 10_000, 0.2);
        assert_eq!(l.value, Load(0.5));
        let l = LoadFactor::compute(1, 100, 9_000, 10_000, 0.2);
        assert_eq!(l.value, Load(0.9));
        let l = LoadFactor::compute(1, 0, 0, 0, f64::NAN);
        assert_eq!(l.value, Load(0.0));
    }
}
