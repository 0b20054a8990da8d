//! The edge cache: which proxied assets are admitted (the shortest interval between two of
//! their requests is below a threshold that follows the cache's turnover, or flagged hot), the
//! one fill per admitted asset that also serves its viewers as it is written, and the
//! least-recently-used index that keeps the cache directory within its byte capacity.

pub mod admission;
pub mod cache_metrics;
pub mod fill;
pub mod fill_dir;
pub mod fill_progress;
pub mod fill_reader;
pub mod lru_index;
pub mod pins;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use admission::{Admission, Decision};
use fill_progress::FillsInProgress;
use lru_index::LruIndex;
use pins::Pins;

/// The share of the LRU tail's age the admission threshold is, once the cache is full. A
/// simulation of the bench's (c) mix (Zipf s=1 over 256 assets, a quarter of them cached, 5,000
/// requests) gave byte hit ratios of 0.709 at 1, 0.716 at 2, 0.726 at 10 and 0.721 at 100,
/// against 0.673 for a plain LRU.
pub const TAIL_SHARE: u32 = 10;

/// `[cache]`: the edge cache's limits and admission rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Bytes the cache directory may hold (0: no admission, misses are only proxied).
    pub capacity: u64,
    /// The admission threshold's upper bound: an asset is admitted when two of its requests
    /// start closer than the threshold, which is this while the cache has room and the age of
    /// its least recently used file (how long it keeps a file nobody asks for) once full.
    #[serde(with = "humantime_serde")]
    pub admit_interval: Duration,
    /// The threshold's lower bound, however fast the cache turns over (default 10 ms).
    #[serde(with = "humantime_serde")]
    pub admit_floor: Duration,
    /// Longest one fill may run (viewers or not) before it is discarded.
    #[serde(with = "humantime_serde")]
    pub fill_timeout: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            capacity: 1 << 30,
            admit_interval: Duration::from_secs(60),
            admit_floor: Duration::from_millis(10),
            fill_timeout: Duration::from_secs(600),
        }
    }
}

/// Counters of the cache, read by /metrics.
#[derive(Debug, Default)]
pub struct CacheCounters {
    pub hits: AtomicU64,
    pub fills_started: AtomicU64,
    pub fills_completed: AtomicU64,
    pub fills_failed: AtomicU64,
    pub evictions: AtomicU64,
    pub evicted_bytes: AtomicU64,
    /// Misses admitted (a fill started) and not admitted.
    pub admitted: AtomicU64,
    pub rejected: AtomicU64,
    /// The admission threshold last used, in milliseconds.
    pub threshold_ms: AtomicU64,
    /// Misses served from the fill they started, from a fill already running
    /// (read-while-writer), and proxied without a fill.
    pub served_own_fill: AtomicU64,
    pub served_joined_fill: AtomicU64,
    pub served_proxied: AtomicU64,
    /// Bytes sent to peer edges by the job transfer endpoint.
    pub peer_bytes_sent: AtomicU64,
}

/// The cache of one edge.
#[derive(Debug)]
pub struct EdgeCache {
    pub settings: CacheSettings,
    pub index: Mutex<LruIndex>,
    pub admission: Mutex<Admission>,
    /// Fills running now, followed by their viewers.
    pub fills: FillsInProgress,
    pub counters: CacheCounters,
    pub root: std::path::PathBuf,
    /// Files a distribution job pinned: never evicted until unpinned.
    pub pins: Pins,
}

impl EdgeCache {
    /// Indexes what `root` holds (oldest first by modification time), removes fills a crash
    /// left behind, and evicts down to the capacity.
    pub fn open(root: &std::path::Path, settings: CacheSettings) -> std::io::Result<EdgeCache> {
        let leftovers = fill_dir::remove_leftover_fills(root)?;
        if leftovers > 0 {
            tracing::warn!(
                leftovers,
                "removed partial fills left by an earlier run; they were never served"
            );
        }
        let index = LruIndex::scan(root)?;
        let cache = EdgeCache {
            admission: Mutex::new(Admission::new(settings.admit_interval)),
            fills: FillsInProgress::default(),
            settings,
            index: Mutex::new(index),
            counters: CacheCounters::default(),
            root: root.to_path_buf(),
            pins: Pins::load(root),
        };
        cache.make_room(0);
        let (files, bytes) = cache.usage();
        tracing::info!(files, bytes, capacity = cache.settings.capacity, root = %root.display(), "edge cache indexed");
        Ok(cache)
    }

    /// The admission threshold now: `admit_interval` while the cache has room (a fill
    /// displaces nothing), else a [`TAIL_SHARE`]th of the age of the least recently used file,
    /// within [`admit_floor`, `admit_interval`]. The tail's age is how long the cache keeps a
    /// file nobody asks for: an asset whose requests come that far apart would be evicted before
    /// its next one. One pair's interval is a noisy sample of an asset's (the shortest of up to
    /// three even more so), hence the share: only assets clearly more frequent than the
    /// marginal one displace it.
    pub fn admit_threshold(&self, now: Instant) -> Duration {
        let s = &self.settings;
        let index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let room = s.capacity.saturating_sub(index.bytes());
        let threshold = if room >= s.capacity / 10 {
            s.admit_interval
        } else {
            let tail_age = index
                .oldest_use()
                .map_or(s.admit_interval, |t| now.saturating_duration_since(t));
            (tail_age / TAIL_SHARE).clamp(s.admit_floor.min(s.admit_interval), s.admit_interval)
        };
        self.counters
            .threshold_ms
            .store(threshold.as_millis() as u64, Ordering::Relaxed);
        threshold
    }

    /// Records a miss on `rel` starting at `now` and decides whether it starts a fill, joins
    /// one, or is only proxied; counts admissions and rejections.
    pub fn decide(&self, rel: &str, now: Instant) -> Decision {
        let threshold = self.admit_threshold(now);
        let decision = self
            .admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .on_miss(rel, now, threshold);
        match &decision {
            Decision::Fill => {
                self.counters.admitted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(asset = %rel, ?threshold, "admitted");
            }
            Decision::Skip { shortest } => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(asset = %rel, ?threshold, ?shortest, "not admitted");
            }
            Decision::Filling => {}
        }
        decision
    }

    /// Files and bytes held now.
    pub fn usage(&self) -> (usize, u64) {
        let index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        (index.len(), index.bytes())
    }

    /// A local hit on `rel`: counts it and makes it the most recently used.
    pub fn hit(&self, rel: &str, len: u64) {
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        self.index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .touch(rel, len);
    }

    /// Drops `rel` from the cache now (an operator's eviction); whether it was held. A pinned
    /// file stays (a job pinned it; its `unpin` or `delete` lets it go).
    pub fn evict(&self, rel: &str) -> bool {
        if self.pins.contains(rel) {
            tracing::info!(file = %rel, "not evicting a pinned file");
            return false;
        }
        self.evict_now(rel)
    }

    /// Drops `rel` whether pinned or not (a job's `delete`, after unpinning).
    pub fn evict_now(&self, rel: &str) -> bool {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let Some(size) = index.remove(rel) else {
            return false;
        };
        if let Err(e) = std::fs::remove_file(self.root.join(rel)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %rel, error = %e, "evicting failed");
            }
        }
        self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        self.counters.evicted_bytes.fetch_add(size, Ordering::Relaxed);
        true
    }

    /// Evicts least-recently-used files until `incoming` more bytes fit; false if they never
    /// can (larger than the whole capacity).
    pub fn make_room(&self, incoming: u64) -> bool {
        if incoming > self.settings.capacity {
            return false;
        }
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let mut kept = Vec::new();
        let mut kept_bytes = 0;
        while index.bytes() + kept_bytes + incoming > self.settings.capacity {
            let Some((rel, size)) = index.pop_oldest() else {
                break;
            };
            if self.pins.contains(&rel) {
                kept_bytes += size;
                kept.push((rel, size));
                continue;
            }
            match std::fs::remove_file(self.root.join(&rel)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(file = %rel, error = %e, "evicting failed"),
            }
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
            self.counters.evicted_bytes.fetch_add(size, Ordering::Relaxed);
            tracing::debug!(file = %rel, size, "evicted (least recently used)");
        }
        for (rel, size) in kept {
            index.touch(&rel, size);
        }
        incoming == 0 || index.bytes() + incoming <= self.settings.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_the_ceiling_with_room_and_a_share_of_the_lru_tails_age_once_full() {
        let dir = std::env::temp_dir().join(format!("strata-threshold-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let settings = CacheSettings {
            capacity: 1000,
            admit_interval: Duration::from_secs(60),
            admit_floor: Duration::from_millis(100),
            ..CacheSettings::default()
        };
        let cache = EdgeCache::open(&dir, settings).expect("open");
        let now = Instant::now() + Duration::from_secs(1000);
        let at = |ago: u64| now - Duration::from_millis(ago);
        let threshold = || cache.admit_threshold(now);
        let touch = |rel: &str, size, ago| {
            cache.index.lock().expect("index").touch_at(rel, size, at(ago));
        };
        assert_eq!(threshold(), Duration::from_secs(60), "empty: room");
        touch("t/c/a", 500, 900_000);
        assert_eq!(threshold(), Duration::from_secs(60), "half full: room");
        touch("t/c/b", 450, 800_000);
        assert_eq!(
            threshold(),
            Duration::from_secs(60),
            "90 s: never above the ceiling"
        );
        touch("t/c/a", 500, 20_000);
        assert_eq!(
            threshold(),
            Duration::from_secs(60),
            "the tail (b) is 800 s old: capped"
        );
        touch("t/c/b", 450, 5_000);
        assert_eq!(threshold(), Duration::from_secs(2), "the tail (a) is 20 s old");
        touch("t/c/a", 500, 100);
        assert_eq!(threshold(), Duration::from_millis(500));
        touch("t/c/b", 450, 50);
        assert_eq!(threshold(), Duration::from_millis(100), "never below the floor");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod zipf_tests {
    use super::*;

    /// A recorded request sequence: Zipf s=1 over 256 assets, one request per millisecond,
    /// from a fixed xorshift seed (the bench's (c) mix in miniature); every 20th request is
    /// for an asset asked for only that once.
    fn zipf_sequence(requests: usize) -> Vec<String> {
        let weights: Vec<f64> = (1..=256).map(|i| 1.0 / i as f64).collect();
        let total: f64 = weights.iter().sum();
        let mut cumulative = Vec::new();
        let mut sum = 0.0;
        for w in &weights {
            sum += w / total;
            cumulative.push(sum);
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..requests)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                cumulative.partition_point(|c| *c < u).min(255)
            })
            .enumerate()
            .map(|(i, a)| match i % 20 {
                0 => format!("t/once/{i}"),
                _ => format!("t/c/{a}"),
            })
            .collect()
    }

    /// Byte hit ratio of a plain LRU (admitting every miss) of `capacity` bytes.
    fn lru_ratio(seq: &[String], size: u64, capacity: u64) -> f64 {
        let mut index = LruIndex::default();
        let mut hits = 0;
        for rel in seq {
            if index.contains(rel) {
                hits += 1;
            } else {
                while index.bytes() + size > capacity {
                    index.pop_oldest();
                }
            }
            index.touch(rel, size);
        }
        hits as f64 / seq.len() as f64
    }

    #[test]
    fn on_a_recorded_zipf_sequence_admission_by_pairs_beats_a_plain_lru_of_equal_bytes() {
        let dir = std::env::temp_dir().join(format!("strata-zipf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let size = 1 << 20;
        let settings = CacheSettings {
            capacity: 64 * size,
            ..CacheSettings::default()
        };
        let cache = EdgeCache::open(&dir, settings).expect("open");
        let seq = zipf_sequence(20_000);
        let start = Instant::now();
        let (mut hits, mut admitted) = (0, std::collections::BTreeSet::new());
        for (i, rel) in seq.iter().enumerate() {
            let now = start + Duration::from_millis(i as u64);
            if cache.index.lock().expect("index").contains(rel) {
                hits += 1;
                cache.index.lock().expect("index").touch_at(rel, size, now);
                continue;
            }
            if cache.decide(rel, now) == Decision::Fill {
                assert!(cache.make_room(size));
                cache.index.lock().expect("index").touch_at(rel, size, now);
                cache.admission.lock().expect("admission").fill_ended(rel);
                admitted.insert(rel.clone());
            }
            assert!(
                cache.usage().1 <= cache.settings.capacity,
                "within the byte capacity"
            );
        }
        let ours = hits as f64 / seq.len() as f64;
        let lru = lru_ratio(&seq, size, 64 * size);
        eprintln!(
            "byte hit ratio: pairs {ours:.3}, plain LRU {lru:.3}; {} assets admitted",
            admitted.len()
        );
        assert!(ours > lru + 0.03, "pairs {ours:.3} vs LRU {lru:.3}");
        // The one-off requests never displace the working set: none is admitted.
        assert!(admitted.iter().all(|rel| !rel.starts_with("t/once/")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
