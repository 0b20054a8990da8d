//! The access log's metrics, read at scrape time: lines written, lines dropped because the
//! queue was full, reopens and write errors.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use strata_kernel::kernel_metrics::counter;

use super::writer::LogCounters;

/// The access log's counters as a prometheus-client collector.
#[derive(Debug)]
pub struct AccessLogCollector(pub Arc<LogCounters>);

impl Collector for AccessLogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &self.0;
        counter(
            &mut encoder,
            "access_log_lines",
            "Access log lines written and flushed to the destination",
            c.written.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "access_log_dropped",
            "Access log lines dropped because the writer's queue was full",
            c.dropped.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "access_log_reopens",
            "Times the access log file was reopened (SIGUSR1)",
            c.reopens.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "access_log_write_errors",
            "Failed writes or reopens of the access log (the lines of a failed write are lost)",
            c.write_errors.load(Ordering::Relaxed),
        )
    }
}
