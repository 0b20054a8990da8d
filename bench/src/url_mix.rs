//! Which URL a request asks for: round-robin over the list, or Zipf-distributed (rank 1 most
//! popular), like a catalogue where a few titles draw most viewers.

use rand::Rng;
use rand_distr::{Distribution, Zipf};

/// Picks indexes into a URL list.
pub enum UrlMix {
    RoundRobin { len: usize, next: usize },
    Zipf(Zipf<f64>),
}

impl UrlMix {
    /// Round-robin over `len` URLs, or Zipf with exponent `s` when given.
    pub fn new(len: usize, zipf_exponent: Option<f64>) -> anyhow::Result<UrlMix> {
        anyhow::ensure!(len > 0, "no URL to request");
        Ok(match zipf_exponent {
            None => UrlMix::RoundRobin { len, next: 0 },
            Some(s) => {
                UrlMix::Zipf(Zipf::new(len as f64, s).map_err(|e| anyhow::anyhow!("zipf exponent {s}: {e}"))?)
            }
        })
    }

    /// The next URL's index.
    pub fn pick(&mut self, rng: &mut impl Rng) -> usize {
        match self {
            UrlMix::RoundRobin { len, next } => {
                let i = *next;
                *next = (*next + 1) % *len;
                i
            }
            // Zipf yields ranks 1..=len as floats.
            UrlMix::Zipf(z) => (z.sample(rng) as usize).saturating_sub(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn round_robin_visits_every_url_in_turn() {
        let mut m = UrlMix::new(3, None).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let picks: Vec<usize> = (0..6).map(|_| m.pick(&mut rng)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn zipf_favours_low_ranks_in_proportion_and_stays_in_range() {
        let n = 100;
        let mut m = UrlMix::new(n, Some(1.0)).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut counts = vec![0u32; n];
        for _ in 0..200_000 {
            counts[m.pick(&mut rng)] += 1;
        }
        // With s = 1, rank 1 is drawn about twice as often as rank 2 and ten times rank 10.
        let ratio2 = f64::from(counts[0]) / f64::from(counts[1]);
        let ratio10 = f64::from(counts[0]) / f64::from(counts[9]);
        assert!((1.8..2.2).contains(&ratio2), "{ratio2}");
        assert!((8.5..11.5).contains(&ratio10), "{ratio10}");
        assert!(counts.iter().all(|c| *c > 0), "every rank drawn at least once");
    }

    #[test]
    fn an_empty_list_is_refused() {
        assert!(UrlMix::new(0, None).is_err());
    }
}
