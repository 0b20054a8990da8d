//! The order of a region's servers for one bucket: rendezvous (highest random weight) hashing,
//! so the same bucket goes to the same edges (cache affinity) and losing one server moves only
//! its share; servers loaded above (1 + ε) × the region's mean are left out while others remain.

use strata_wire::network_map::MapServer;

/// A stable 64-bit hash (FNV-1a, then a SplitMix64 finish), the same in every nameserver.
fn score(bucket: u32, server: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bucket.to_le_bytes().iter().chain(server.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `servers` in the bucket's order, those loaded above (1 + `epsilon`) × the mean left out.
pub fn order(servers: &[MapServer], bucket: u32, epsilon: f64) -> Vec<&MapServer> {
    let mut ranked: Vec<&MapServer> = servers.iter().collect();
    ranked.sort_by_key(|s| std::cmp::Reverse(score(bucket, &s.name)));
    if ranked.is_empty() {
        return ranked;
    }
    let mean = ranked.iter().map(|s| s.load as f64).sum::<f64>() / ranked.len() as f64;
    let limit = (1.0 + epsilon) * mean;
    let light: Vec<&MapServer> = ranked
        .iter()
        .copied()
        .filter(|s| s.load as f64 <= limit)
        .collect();
    if light.is_empty() {
        ranked
    } else {
        light
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, load: u64) -> MapServer {
        MapServer {
            name: name.into(),
            addr: "127.0.0.1:80".parse().unwrap(),
            load,
        }
    }

    #[test]
    fn a_bucket_keeps_its_servers_and_losing_one_moves_only_its_share() {
        let all: Vec<MapServer> = (0..8).map(|i| server(&format!("e{i}"), 10)).collect();
        let first: Vec<String> = (0..200).map(|b| order(&all, b, 0.25)[0].name.clone()).collect();
        let again: Vec<String> = (0..200).map(|b| order(&all, b, 0.25)[0].name.clone()).collect();
        assert_eq!(first, again);
        let without: Vec<MapServer> = all.iter().filter(|s| s.name != "e3").cloned().collect();
        for (b, was) in first.iter().enumerate() {
            let now = &order(&without, b as u32, 0.25)[0].name;
            if was != "e3" {
                assert_eq!(now, was, "bucket {b} moved although its server stayed");
            }
        }
        let spread: std::collections::HashSet<&String> = first.iter().collect();
        assert!(
            spread.len() >= 6,
            "200 buckets landed on only {} servers",
            spread.len()
        );
    }

    #[test]
    fn servers_loaded_above_the_mean_plus_epsilon_are_left_out_unless_all_are() {
        let servers = vec![server("a", 10), server("b", 10), server("c", 100)];
        let names: Vec<&str> = order(&servers, 1, 0.25).iter().map(|s| s.name.as_str()).collect();
        assert!(!names.contains(&"c") && names.len() == 2, "{names:?}");
        let even = vec![server("a", 10), server("b", 10)];
        assert_eq!(order(&even, 1, 0.0).len(), 2);
    }
}
