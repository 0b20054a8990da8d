//! Admission by request pairs (seed 004): for each asset the start times of its recent
//! requests and the shortest interval between two of them. An asset is admitted when that
//! shortest interval is below a threshold the cache sets from its own turnover (its
//! `admit_threshold`, in mod.rs): an asset requested again sooner than a cached file
//! survives unrequested would be a hit, one requested more rarely would be evicted unread. A
//! one-off request has no pair, so it is never admitted and never displaces the working set.
//! Assets flagged hot are admitted on their first miss. Remembers at most [`REMEMBERED`]
//! assets, forgetting the least recently requested.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Most assets whose recent requests are remembered.
pub const REMEMBERED: usize = 100_000;

/// Request start times kept per asset (the shortest pair is between two consecutive ones).
pub const STARTS_KEPT: usize = 4;

/// Recent requests, hot flags and fills in progress.
#[derive(Debug)]
pub struct Admission {
    /// Starts older than this are forgotten (the threshold's upper bound times the starts kept).
    memory: Duration,
    recent: HashMap<String, VecDeque<Instant>>,
    arrival: VecDeque<String>,
    hot: HashSet<String>,
    filling: HashSet<String>,
}

/// What a miss should do about the cache.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start the one fill of this asset (the viewer is served from it).
    Fill,
    /// A fill of it is running: read what it wrote and follow it.
    Filling,
    /// Not (yet) worth a fill: its shortest pair interval (if it has a pair) is not below the
    /// threshold.
    Skip { shortest: Option<Duration> },
}

impl Admission {
    /// `max_threshold`: the longest the threshold ever grows to (`admit_interval`).
    pub fn new(max_threshold: Duration) -> Admission {
        Admission {
            memory: max_threshold.saturating_mul(STARTS_KEPT as u32),
            recent: HashMap::new(),
            arrival: VecDeque::new(),
            hot: HashSet::new(),
            filling: HashSet::new(),
        }
    }

    /// Records a request for `rel` starting at `now` and decides against `threshold`; a `Fill`
    /// answer marks the fill started.
    pub fn on_miss(&mut self, rel: &str, now: Instant, threshold: Duration) -> Decision {
        if self.filling.contains(rel) {
            return Decision::Filling;
        }
        let shortest = self.record(rel, now);
        if self.hot.contains(rel) || shortest.is_some_and(|s| s < threshold) {
            self.recent.remove(rel);
            self.filling.insert(rel.to_string());
            return Decision::Fill;
        }
        Decision::Skip { shortest }
    }

    /// Adds a start to `rel`'s recent ones; the shortest interval between two kept starts.
    fn record(&mut self, rel: &str, now: Instant) -> Option<Duration> {
        let memory = self.memory;
        let starts = match self.recent.get_mut(rel) {
            Some(s) => s,
            None => {
                self.arrival.push_back(rel.to_string());
                while self.arrival.len() > REMEMBERED {
                    if let Some(old) = self.arrival.pop_front() {
                        self.recent.remove(&old);
                    }
                }
                self.recent.entry(rel.to_string()).or_default()
            }
        };
        while starts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > memory)
        {
            starts.pop_front();
        }
        starts.push_back(now);
        while starts.len() > STARTS_KEPT {
            starts.pop_front();
        }
        starts
            .iter()
            .zip(starts.iter().skip(1))
            .map(|(a, b)| b.saturating_duration_since(*a))
            .min()
    }

    /// The fill of `rel` ended (done or failed).
    pub fn fill_ended(&mut self, rel: &str) {
        self.filling.remove(rel);
        self.hot.remove(rel);
    }

    /// A fill pushed by the control plane's syncd: true (and marked filling) unless one is
    /// already running for `rel`.
    pub fn start_push(&mut self, rel: &str) -> bool {
        self.filling.insert(rel.to_string())
    }

    /// Flags `rel` hot: its next miss fills.
    pub fn flag_hot(&mut self, rel: &str) {
        self.hot.insert(rel.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(60);

    #[test]
    fn one_request_skips_a_close_pair_fills_once() {
        let mut a = Admission::new(MAX);
        let t = Instant::now();
        let th = Duration::from_secs(10);
        assert_eq!(a.on_miss("x", t, th), Decision::Skip { shortest: None });
        assert_eq!(a.on_miss("x", t + Duration::from_secs(5), th), Decision::Fill);
        assert_eq!(a.on_miss("x", t + Duration::from_secs(6), th), Decision::Filling);
        a.fill_ended("x");
        assert_eq!(
            a.on_miss("x", t + Duration::from_secs(7), th),
            Decision::Skip { shortest: None }
        );
    }

    #[test]
    fn requests_further_apart_than_the_threshold_never_fill() {
        let mut a = Admission::new(MAX);
        let t = Instant::now();
        let th = Duration::from_secs(10);
        for i in 0..5 {
            assert!(matches!(
                a.on_miss("x", t + Duration::from_secs(11 * i), th),
                Decision::Skip { .. }
            ));
        }
    }

    #[test]
    fn the_shortest_pair_among_recent_starts_decides_as_the_threshold_shrinks() {
        let mut a = Admission::new(MAX);
        let t = Instant::now();
        let at = |s: u64| t + Duration::from_secs(s);
        // Pairs 20 s and 8 s apart: with a 5 s threshold (a cache turning over fast) it waits...
        assert!(matches!(
            a.on_miss("x", at(0), Duration::from_secs(5)),
            Decision::Skip { .. }
        ));
        assert!(matches!(
            a.on_miss("x", at(20), Duration::from_secs(5)),
            Decision::Skip { .. }
        ));
        assert_eq!(
            a.on_miss("x", at(28), Duration::from_secs(5)),
            Decision::Skip {
                shortest: Some(Duration::from_secs(8))
            }
        );
        // ...and the threshold growing to 9 s (the cache keeps files longer) admits it.
        assert_eq!(a.on_miss("x", at(40), Duration::from_secs(9)), Decision::Fill);
    }

    #[test]
    fn a_recorded_sequence_admits_the_working_set_and_no_one_off() {
        // A recorded request sequence: four hot assets requested every 11.2 s, interleaved with
        // a stream of one-off requests (each asset once) and one rare asset every 90.3 s.
        let mut a = Admission::new(MAX);
        let t = Instant::now();
        let th = Duration::from_secs(30);
        let mut admitted = Vec::new();
        for step in 0..200u64 {
            let now = t + Duration::from_millis(step * 700);
            let mut requests = vec![format!("one-off-{step}")];
            if step % 4 == 0 {
                requests.push(format!("hot-{}", (step / 4) % 4));
            }
            if step % 129 == 0 {
                requests.push("rare".to_string());
            }
            for rel in requests {
                if a.on_miss(&rel, now, th) == Decision::Fill {
                    admitted.push(rel.clone());
                    a.fill_ended(&rel);
                    a.filling.insert(rel); // filled: later requests are hits, not misses
                }
            }
        }
        admitted.sort();
        assert_eq!(admitted, vec!["hot-0", "hot-1", "hot-2", "hot-3"]);
    }

    #[test]
    fn starts_older_than_the_memory_are_forgotten() {
        let mut a = Admission::new(Duration::from_secs(1));
        let t = Instant::now();
        a.on_miss("x", t, Duration::from_secs(1));
        a.on_miss("x", t + Duration::from_millis(500), Duration::from_millis(100));
        // The 0.5 s pair is older than 4 × 1 s at t+10 s: only the new start remains.
        assert_eq!(
            a.on_miss("x", t + Duration::from_secs(10), Duration::from_secs(1)),
            Decision::Skip { shortest: None }
        );
    }

    #[test]
    fn a_hot_asset_fills_on_its_first_miss() {
        let mut a = Admission::new(MAX);
        a.flag_hot("x");
        assert_eq!(a.on_miss("x", Instant::now(), Duration::ZERO), Decision::Fill);
    }
}
