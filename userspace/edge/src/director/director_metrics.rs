//! The director's metrics, read at scrape time: decisions by outcome, peer bytes, stale
//! entries, hop-marked misses answered, and the table's size and version.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use strata_kernel::kernel_metrics::{counter, gauge};

use super::edge_director::Director;

/// `strata_director_*`.
pub struct DirectorCollector(pub Arc<Director>);

impl std::fmt::Debug for DirectorCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectorCollector")
    }
}

impl Collector for DirectorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let encoder = &mut encoder;
        let c = &self.0.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        {
            let mut family = encoder.encode_descriptor(
                "director_decisions",
                "Local misses by what the director did: peer (served from a peer), redirect (302 to a peer), no_holder / over_bound (storage tier: no peer holds it / every holder above the load bound), fallback (storage tier after the chosen peers failed)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (outcome, value) in [
                ("peer", load(&c.peer)),
                ("redirect", load(&c.redirect)),
                ("no_holder", load(&c.no_holder)),
                ("over_bound", load(&c.over_bound)),
                ("fallback", load(&c.fallback)),
            ] {
                ConstCounter::new(value).encode(family.encode_family(&[("outcome", outcome)])?)?;
            }
        }
        counter(
            encoder,
            "director_peer_bytes",
            "Body bytes relayed from peer edges",
            load(&c.peer_bytes),
        )?;
        counter(
            encoder,
            "director_stale_entries",
            "Peers the table said held an asset that answered 404 or could not be reached",
            load(&c.stale_entries),
        )?;
        counter(
            encoder,
            "director_hop_misses",
            "Hop-marked requests from peers for assets this edge does not hold (answered 404)",
            load(&c.hop_misses),
        )?;
        let table = self.0.table();
        gauge(
            encoder,
            "director_table_rows",
            "Rows (edges) in this edge's copy of its region's state table",
            table.rows.len() as i64,
        )?;
        gauge(
            encoder,
            "director_table_version",
            "Version of the region state table this edge holds (changes with every row change)",
            (table.version & i64::MAX as u64) as i64,
        )
    }
}
