//! An hour of the system's rates for the status page's plots: at each sample, what every edge's
//! counters moved since the previous sample (a counter that went down means the edge restarted:
//! its new value is the movement), summed over the edges and turned into per-second rates, plus
//! each edge's latest gauges for the edges table.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

/// Samples kept: one hour at one sample per 10 s.
pub const KEEP: usize = 360;

/// Counters and gauges read from one edge's /metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EdgeReading {
    pub body_bytes: f64,
    pub responses_2xx: f64,
    pub responses_3xx: f64,
    pub responses_4xx: f64,
    pub responses_5xx: f64,
    pub hits: f64,
    pub misses: f64,
    pub connections_open: f64,
    pub cache_bytes: f64,
    pub cache_capacity_bytes: f64,
}

/// One point of the plots (rates per second over the interval before `at_unix`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Point {
    pub at_unix: u64,
    pub egress_bps: f64,
    pub requests_per_s: f64,
    /// Hits / (hits + misses) in the interval; None when there was neither.
    pub hit_ratio: Option<f64>,
    pub status_2xx_per_s: f64,
    pub status_3xx_per_s: f64,
    pub status_4xx_per_s: f64,
    pub status_5xx_per_s: f64,
}

/// One edge as the edges table shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EdgeNow {
    pub name: String,
    pub egress_bps: f64,
    pub connections_open: f64,
    pub cache_bytes: f64,
    pub cache_capacity_bytes: f64,
}

/// The hour of points and what the next sample is measured against.
#[derive(Debug, Default)]
pub struct Series {
    points: VecDeque<Point>,
    last: HashMap<String, (u64, EdgeReading)>,
    edges: BTreeMap<String, EdgeNow>,
}

/// How far a counter moved; a counter that went down restarted from zero.
fn moved(now: f64, before: f64) -> f64 {
    if now >= before {
        now - before
    } else {
        now
    }
}

impl Series {
    /// Adds the readings taken at `at_unix` (edges that did not answer are left out).
    pub fn record(&mut self, at_unix: u64, readings: &[(String, EdgeReading)]) {
        let mut point = Point {
            at_unix,
            ..Point::default()
        };
        let (mut hits, mut misses, mut measured) = (0.0, 0.0, false);
        self.edges.clear();
        for (edge, now) in readings {
            let mut edge_now = EdgeNow {
                name: edge.clone(),
                connections_open: now.connections_open,
                cache_bytes: now.cache_bytes,
                cache_capacity_bytes: now.cache_capacity_bytes,
                ..EdgeNow::default()
            };
            if let Some((then, before)) = self.last.get(edge) {
                let seconds = at_unix.saturating_sub(*then).max(1) as f64;
                let rate = |n: f64, b: f64| moved(n, b) / seconds;
                let egress = rate(now.body_bytes, before.body_bytes) * 8.0;
                edge_now.egress_bps = egress;
                point.egress_bps += egress;
                point.status_2xx_per_s += rate(now.responses_2xx, before.responses_2xx);
                point.status_3xx_per_s += rate(now.responses_3xx, before.responses_3xx);
                point.status_4xx_per_s += rate(now.responses_4xx, before.responses_4xx);
                point.status_5xx_per_s += rate(now.responses_5xx, before.responses_5xx);
                hits += moved(now.hits, before.hits);
                misses += moved(now.misses, before.misses);
                measured = true;
            }
            self.last.insert(edge.clone(), (at_unix, now.clone()));
            self.edges.insert(edge.clone(), edge_now);
        }
        self.last
            .retain(|edge, _| readings.iter().any(|(e, _)| e == edge));
        if !measured {
            return;
        }
        point.requests_per_s =
            point.status_2xx_per_s + point.status_3xx_per_s + point.status_4xx_per_s + point.status_5xx_per_s;
        point.hit_ratio = (hits + misses > 0.0).then(|| hits / (hits + misses));
        self.points.push_back(point);
        while self.points.len() > KEEP {
            self.points.pop_front();
        }
    }

    pub fn points(&self) -> Vec<Point> {
        self.points.iter().cloned().collect()
    }

    pub fn edges(&self) -> Vec<EdgeNow> {
        self.edges.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(bytes: f64, ok: f64, not_found: f64, hits: f64, misses: f64) -> EdgeReading {
        EdgeReading {
            body_bytes: bytes,
            responses_2xx: ok,
            responses_4xx: not_found,
            hits,
            misses,
            ..EdgeReading::default()
        }
    }

    #[test]
    fn rates_are_movements_per_second_summed_over_edges() {
        let mut s = Series::default();
        s.record(
            100,
            &[
                ("e1".into(), reading(0.0, 0.0, 0.0, 0.0, 0.0)),
                ("e2".into(), reading(1000.0, 5.0, 0.0, 0.0, 0.0)),
            ],
        );
        assert!(s.points().is_empty(), "the first reading is only a baseline");
        s.record(
            110,
            &[
                ("e1".into(), reading(10_000.0, 20.0, 10.0, 3.0, 1.0)),
                ("e2".into(), reading(11_000.0, 25.0, 0.0, 3.0, 1.0)),
            ],
        );
        let p = &s.points()[0];
        assert_eq!(p.egress_bps, (10_000.0 + 10_000.0) * 8.0 / 10.0);
        assert_eq!(p.status_2xx_per_s, 4.0);
        assert_eq!(p.status_4xx_per_s, 1.0);
        assert_eq!(p.requests_per_s, 5.0);
        assert_eq!(p.hit_ratio, Some(0.75));
        assert_eq!(s.edges()[0].egress_bps, 8000.0);
    }

    #[test]
    fn a_restarted_edge_counts_from_zero_and_the_hour_is_bounded() {
        let mut s = Series::default();
        s.record(0, &[("e1".into(), reading(5000.0, 50.0, 0.0, 0.0, 0.0))]);
        s.record(10, &[("e1".into(), reading(100.0, 1.0, 0.0, 0.0, 0.0))]);
        assert_eq!(s.points()[0].egress_bps, 80.0);
        assert_eq!(s.points()[0].hit_ratio, None);
        for i in 2..(KEEP as u64 + 20) {
            s.record(i * 10, &[("e1".into(), reading(100.0, 1.0, 0.0, 0.0, 0.0))]);
        }
        assert_eq!(s.points().len(), KEEP);
    }
}
