//! The figures one measurement yields, and their median with min–max over repeated runs
//! (these machines are noisy; one run proves little).

use serde::Serialize;

/// One measured run of one server on one workload.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunFigures {
    pub gbit_per_sec: f64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub requests: u64,
    pub bytes: u64,
    pub errors: u64,
    pub checksummed: u64,
    pub seconds: f64,
    /// The server's own CPU seconds (all its processes) per GB served.
    pub server_cpu_s_per_gb: f64,
    /// The whole machine's busy CPU seconds per GB served (load generator and origin included).
    pub machine_cpu_s_per_gb: f64,
    pub peak_rss_mib: f64,
    /// Share of body bytes not fetched from the origin (scenario c), when there is an origin.
    pub byte_hit_ratio: Option<f64>,
    /// What an exact LRU of the same capacity would have had on the same request sequence.
    pub lru_byte_hit_ratio: Option<f64>,
    /// What the cache directory held when the run ended (scenario c), in MiB.
    pub cache_mib_at_end: Option<f64>,
    /// strata only: the share of body bytes each of its paths moved during the run (from its
    /// `strata_body_bytes_total{path}`), largest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub body_paths: Vec<(String, f64)>,
    pub first_error: Option<String>,
}

/// Shares of the body bytes moved between two readings of `strata_body_bytes_total{path}`,
/// largest first, leaving out paths that moved under 0.5 %.
pub fn path_shares(before: &[(String, f64)], after: &[(String, f64)]) -> Vec<(String, f64)> {
    let moved: Vec<(String, f64)> = after
        .iter()
        .map(|(path, b)| {
            let a = before.iter().find(|(p, _)| p == path).map_or(0.0, |(_, v)| *v);
            (path.clone(), (b - a).max(0.0))
        })
        .collect();
    let total: f64 = moved.iter().map(|(_, v)| v).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    let mut shares: Vec<(String, f64)> = moved
        .into_iter()
        .map(|(p, v)| (p, v / total))
        .filter(|(_, share)| *share >= 0.005)
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    shares
}

/// Median and range of one figure over runs.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

/// Every figure's spread over a server's runs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub gbit_per_sec: Spread,
    pub requests_per_sec: Spread,
    pub p99_ms: Spread,
    pub server_cpu_s_per_gb: Spread,
    pub machine_cpu_s_per_gb: Spread,
    pub peak_rss_mib: Spread,
    pub byte_hit_ratio: Option<Spread>,
    pub lru_byte_hit_ratio: Option<Spread>,
    pub cache_mib_at_end: Option<Spread>,
    pub errors: u64,
}

impl Summary {
    pub fn of(runs: &[RunFigures]) -> Summary {
        let f = |get: fn(&RunFigures) -> f64| Spread::of(&runs.iter().map(get).collect::<Vec<_>>());
        let hits: Vec<f64> = runs.iter().filter_map(|r| r.byte_hit_ratio).collect();
        let held: Vec<f64> = runs.iter().filter_map(|r| r.cache_mib_at_end).collect();
        let lru: Vec<f64> = runs.iter().filter_map(|r| r.lru_byte_hit_ratio).collect();
        Summary {
            gbit_per_sec: f(|r| r.gbit_per_sec),
            requests_per_sec: f(|r| r.requests_per_sec),
            p99_ms: f(|r| r.p99_ms),
            server_cpu_s_per_gb: f(|r| r.server_cpu_s_per_gb),
            machine_cpu_s_per_gb: f(|r| r.machine_cpu_s_per_gb),
            peak_rss_mib: f(|r| r.peak_rss_mib),
            byte_hit_ratio: (!hits.is_empty()).then(|| Spread::of(&hits)),
            lru_byte_hit_ratio: (!lru.is_empty()).then(|| Spread::of(&lru)),
            cache_mib_at_end: (!held.is_empty()).then(|| Spread::of(&held)),
            errors: runs.iter().map(|r| r.errors).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle_value_or_the_mean_of_the_two_middle_ones() {
        assert_eq!(
            Spread::of(&[3.0, 1.0, 2.0]),
            Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(Spread::of(&[4.0, 1.0, 3.0, 2.0]).median, 2.5);
        assert_eq!(Spread::of(&[]), Spread::default());
        assert_eq!(Spread::of(&[f64::NAN, 5.0]).median, 5.0);
    }

    #[test]
    fn path_shares_are_of_the_bytes_moved_during_the_run_largest_first() {
        let before = vec![
            ("proxy_splice".to_string(), 100.0),
            ("proxy_copy".to_string(), 50.0),
        ];
        let after = vec![
            ("proxy_splice".to_string(), 400.0),
            ("proxy_copy".to_string(), 50.5),
            ("proxy_sockmap".to_string(), 700.0),
        ];
        let shares = path_shares(&before, &after);
        let rounded: Vec<(&str, i64)> = shares
            .iter()
            .map(|(p, v)| (p.as_str(), (v * 1000.0).round() as i64))
            .collect();
        // Copy moved 0.05 %: left out.
        assert_eq!(rounded, vec![("proxy_sockmap", 700), ("proxy_splice", 300)]);
        assert!(path_shares(&after, &after).is_empty());
    }

    #[test]
    fn summary_adds_errors_and_only_has_a_hit_ratio_when_runs_do() {
        let runs = vec![
            RunFigures {
                gbit_per_sec: 1.0,
                errors: 1,
                ..Default::default()
            },
            RunFigures {
                gbit_per_sec: 3.0,
                errors: 2,
                ..Default::default()
            },
            RunFigures {
                gbit_per_sec: 2.0,
                ..Default::default()
            },
        ];
        let s = Summary::of(&runs);
        assert_eq!(s.gbit_per_sec.median, 2.0);
        assert_eq!(s.errors, 3);
        assert!(s.byte_hit_ratio.is_none());
    }
}
