//! The upstream pool's metrics, read at scrape time: idle keep-alive connections to storage
//! servers, and what `proxy_path = auto` chose and measured. The server registers [`PoolCollector`] when it proxies misses.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use strata_kernel::kernel_metrics::gauge;

use super::pool::UpstreamPool;

/// The upstream pool's metrics.
#[derive(Debug)]
pub struct PoolCollector(pub Arc<UpstreamPool>);

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(
            &mut encoder,
            "upstream_idle_connections",
            "Idle keep-alive connections to storage servers in the pool",
            self.0.idle_total() as i64,
        )?;
        match self.0.chooser() {
            Some(chooser) => chooser.encode_metrics(&mut encoder),
            None => Ok(()),
        }
    }
}
