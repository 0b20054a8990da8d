//! Admission (seed 004's pair of requests, nginx's min_uses with a time bound): an asset is
//! admitted on its second request within the interval, or at once when flagged hot. Remembers
//! at most [`REMEMBERED`] recent requests, forgetting the oldest.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Most assets whose last request is remembered.
pub const REMEMBERED: usize = 100_000;

/// Recent requests, hot flags and fills in progress.
#[derive(Debug)]
pub struct Admission {
    interval: Duration,
    last_request: HashMap<String, Instant>,
    arrival: VecDeque<String>,
    hot: HashSet<String>,
    filling: HashSet<String>,
}

/// What a miss should do about the cache.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start the one background fill of this asset.
    Fill,
    /// A fill of it is running: keep proxying.
    Filling,
    /// Not (yet) worth a fill.
    Skip,
}

impl Admission {
    pub fn new(interval: Duration) -> Admission {
        Admission {
            interval,
            last_request: HashMap::new(),
            arrival: VecDeque::new(),
            hot: HashSet::new(),
            filling: HashSet::new(),
        }
    }

    /// Records a miss on `rel` at `now` and decides; a `Fill` answer marks the fill started.
    pub fn on_miss(&mut self, rel: &str, now: Instant) -> Decision {
        if self.filling.contains(rel) {
            return Decision::Filling;
        }
        let admitted = self.hot.contains(rel)
            || self
                .last_request
                .get(rel)
                .is_some_and(|t| now.duration_since(*t) <= self.interval);
        if admitted {
            self.last_request.remove(rel);
            self.filling.insert(rel.to_string());
            return Decision::Fill;
        }
        if self.last_request.insert(rel.to_string(), now).is_none() {
            self.arrival.push_back(rel.to_string());
            while self.arrival.len() > REMEMBERED {
                if let Some(old) = self.arrival.pop_front() {
                    self.last_request.remove(&old);
                }
            }
        }
        Decision::Skip
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

    #[test]
    fn one_request_skips_two_within_the_interval_fill_once() {
        let mut a = Admission::new(Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(a.on_miss("x", t), Decision::Skip);
        assert_eq!(a.on_miss("x", t + Duration::from_secs(5)), Decision::Fill);
        assert_eq!(a.on_miss("x", t + Duration::from_secs(6)), Decision::Filling);
        a.fill_ended("x");
        assert_eq!(a.on_miss("x", t + Duration::from_secs(7)), Decision::Skip);
    }

    #[test]
    fn requests_further_apart_than_the_interval_never_fill() {
        let mut a = Admission::new(Duration::from_secs(10));
        let t = Instant::now();
        for i in 0..5 {
            assert_eq!(a.on_miss("x", t + Duration::from_secs(11 * i)), Decision::Skip);
        }
    }

    #[test]
    fn a_hot_asset_fills_on_its_first_miss() {
        let mut a = Admission::new(Duration::from_secs(10));
        a.flag_hot("x");
        assert_eq!(a.on_miss("x", Instant::now()), Decision::Fill);
    }
}
