//! The map maker's metrics, read at scrape time: solves, the last solve's time, blocks and
//! regions in the map, and the load that fits in no region.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::MapMaker;

#[derive(Debug)]
pub struct MapCollector(pub Arc<MapMaker>);

impl std::fmt::Debug for MapMaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapMaker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Collector for MapCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &self.0.counters;
        let solves = ConstCounter::new(c.solves.load(Ordering::Relaxed));
        solves.encode(encoder.encode_descriptor(
            "map_solves",
            "Network map solves since start",
            None,
            solves.metric_type(),
        )?)?;
        let reports = ConstCounter::new(c.client_reports.load(Ordering::Relaxed));
        reports.encode(encoder.encode_descriptor(
            "map_client_reports",
            "Client timing reports accepted (POST /v1/reports)",
            None,
            reports.metric_type(),
        )?)?;
        let gauges = [
            (
                "map_solve_seconds",
                "Time the last min-cost flow solve took",
                c.last_solve_us.load(Ordering::Relaxed) as f64 / 1e6,
            ),
            (
                "map_blocks",
                "Client blocks in the map",
                c.blocks.load(Ordering::Relaxed) as f64,
            ),
            (
                "map_regions",
                "Regions in the map",
                c.regions.load(Ordering::Relaxed) as f64,
            ),
            (
                "map_unassigned_bps",
                "Load (bits/s) that fits in no region",
                c.unassigned_bps.load(Ordering::Relaxed) as f64,
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}
