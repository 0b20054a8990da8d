//! What a load run counts, per connection thread and then merged: requests, body bytes, errors,
//! and the latency of each request (first byte of the request to last byte of the body) in an
//! HdrHistogram, so percentiles stay exact to 3 significant digits however many samples.

use hdrhistogram::Histogram;

/// Longest latency recorded, in microseconds (longer ones are clamped to it).
const MAX_LATENCY_US: u64 = 60_000_000;

/// Counts of one connection, or of a whole run after merging.
#[derive(Clone, Debug)]
pub struct Tally {
    pub requests: u64,
    pub bytes: u64,
    pub errors: u64,
    /// Responses whose body was checksummed (and matched; a mismatch is an error).
    pub checked: u64,
    /// The first error's message, to say what went wrong.
    pub first_error: Option<String>,
    /// When recording the sequence: each request's start and target index, in this
    /// connection's order (merged tallies hold every connection's).
    pub picks: Vec<(std::time::Instant, u32)>,
    latency_us: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            requests: 0,
            bytes: 0,
            errors: 0,
            checked: 0,
            first_error: None,
            picks: Vec::new(),
            // 1 µs to 60 s at 3 significant digits: a few tens of KiB per tally.
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds"),
        }
    }
}

impl Tally {
    /// One request answered with `bytes` of body after `latency_us`.
    pub fn record(&mut self, bytes: u64, latency_us: u64) {
        self.requests += 1;
        self.bytes += bytes;
        self.latency_us
            .saturating_record(latency_us.clamp(1, MAX_LATENCY_US));
    }

    pub fn error(&mut self) {
        self.errors += 1;
    }

    /// Adds `other`'s counts and samples to this tally.
    pub fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.errors += other.errors;
        self.checked += other.checked;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.picks.extend_from_slice(&other.picks);
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
    }

    /// Every recorded request's target index, in the order the requests started.
    pub fn sequence(&self) -> Vec<u32> {
        let mut picks = self.picks.clone();
        picks.sort_by_key(|(at, _)| *at);
        picks.into_iter().map(|(_, target)| target).collect()
    }

    /// The latency at quantile `q` (0.5, 0.99, 0.999) in microseconds; 0 with no samples.
    pub fn latency_us(&self, q: f64) -> u64 {
        if self.latency_us.is_empty() {
            0
        } else {
            self.latency_us.value_at_quantile(q)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_sums_counts_and_keeps_every_latency_sample() {
        let mut a = Tally::default();
        let mut b = Tally::default();
        for i in 1..=900u64 {
            a.record(1000, i);
        }
        for i in 901..=1000u64 {
            b.record(2000, i * 10);
        }
        b.error();
        a.merge(&b);
        assert_eq!(
            (a.requests, a.bytes, a.errors),
            (1000, 900 * 1000 + 100 * 2000, 1)
        );
        assert_eq!(a.latency_us(0.5), 500);
        // The top 10 % came from b, ten times slower.
        assert!(
            (9000..=10_010).contains(&a.latency_us(0.99)),
            "{}",
            a.latency_us(0.99)
        );
        assert!(a.latency_us(0.999) >= a.latency_us(0.99));
    }

    #[test]
    fn an_empty_tally_reports_zero_and_huge_latencies_are_clamped() {
        let mut t = Tally::default();
        assert_eq!(t.latency_us(0.99), 0);
        t.record(1, u64::MAX);
        assert!(t.latency_us(0.5) >= MAX_LATENCY_US * 999 / 1000);
    }
}
