//! Scenario (c)'s yardstick: the byte hit ratio an exact LRU cache of the same capacity would
//! have had on the very request sequence the generator sent (every request admitted, the least
//! recently used objects evicted by bytes until the new one fits; an object larger than the
//! whole cache is never held).

use std::collections::{BTreeMap, HashMap};

/// Byte hit ratio of an exact LRU of `capacity` bytes over `sequence` (indexes into `sizes`);
/// `None` for an empty sequence.
pub fn byte_hit_ratio(sequence: &[u32], sizes: &[u64], capacity: u64) -> Option<f64> {
    let mut last_use: HashMap<u32, u64> = HashMap::new();
    let mut by_age: BTreeMap<u64, u32> = BTreeMap::new();
    let (mut held, mut hit_bytes, mut all_bytes) = (0u64, 0u64, 0u64);
    for (clock, &object) in sequence.iter().enumerate() {
        let clock = clock as u64;
        let size = sizes.get(object as usize).copied().unwrap_or(0);
        all_bytes += size;
        if let Some(before) = last_use.insert(object, clock) {
            hit_bytes += size;
            by_age.remove(&before);
            by_age.insert(clock, object);
            continue;
        }
        if size > capacity {
            last_use.remove(&object);
            continue;
        }
        while held + size > capacity {
            let Some((_, oldest)) = by_age.pop_first() else {
                break;
            };
            last_use.remove(&oldest);
            held -= sizes.get(oldest as usize).copied().unwrap_or(0);
        }
        by_age.insert(clock, object);
        held += size;
    }
    (all_bytes > 0).then(|| hit_bytes as f64 / all_bytes as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_capacity_hit_and_the_least_recent_goes_first() {
        let sizes = [10, 10, 10];
        // Capacity for two: a b a c (evicts b) b (miss, evicts a) a (miss).
        let r = byte_hit_ratio(&[0, 1, 0, 2, 1, 0], &sizes, 20).unwrap();
        assert!((r - 10.0 / 60.0).abs() < 1e-9, "{r}");
        // Room for all three: only first requests miss.
        let r = byte_hit_ratio(&[0, 1, 0, 2, 1, 0], &sizes, 30).unwrap();
        assert!((r - 30.0 / 60.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn an_object_larger_than_the_cache_never_hits_and_nothing_is_none() {
        assert_eq!(byte_hit_ratio(&[0, 0, 0], &[100], 50), Some(0.0));
        assert_eq!(byte_hit_ratio(&[], &[100], 50), None);
    }
}
