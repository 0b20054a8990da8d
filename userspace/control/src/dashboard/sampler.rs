//! The status page's sampler: a thread that, every interval, reads each edge that is up
//! (its admin `/metrics`, as Prometheus would) and records the readings in the [`Series`].
//! An edge that does not answer within two seconds is left out of that sample.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use strata_wire::heartbeat::ServerRole;

use super::prom_text::{sum, sum_where};
use super::series::{EdgeReading, Series};
use crate::registry::RegistryStore;
use crate::servers::ServerBook;

/// The default time between two samples.
pub const EVERY: Duration = Duration::from_secs(10);

/// The series the page reads, shared with the sampler thread, and the time between samples.
#[derive(Debug)]
pub struct Dashboard {
    series: Mutex<Series>,
    every: Duration,
}

impl Dashboard {
    pub fn new(every: Duration) -> Dashboard {
        Dashboard {
            series: Mutex::new(Series::default()),
            every,
        }
    }

    pub fn every(&self) -> Duration {
        self.every
    }

    pub fn series(&self) -> std::sync::MutexGuard<'_, Series> {
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts sampling; the thread ends when the plane (owner of the store) is gone.
    pub fn spawn(self: &Arc<Self>, store: Weak<dyn RegistryStore>) -> std::io::Result<()> {
        let every = self.every;
        let dashboard = Arc::downgrade(self);
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .timeout_global(Some(Duration::from_secs(2)))
                .build(),
        );
        std::thread::Builder::new()
            .name("dashboard".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                let (Some(dashboard), Some(store)) = (dashboard.upgrade(), store.upgrade()) else {
                    return;
                };
                let edges = match ServerBook::all(store.as_ref()) {
                    Ok(all) => all,
                    Err(e) => {
                        tracing::debug!(error = %e, "status page: listing the edges failed; no sample");
                        continue;
                    }
                };
                drop(store);
                let readings: Vec<(String, EdgeReading)> = edges
                    .into_iter()
                    .filter(|s| s.up && s.record.role == ServerRole::Edge)
                    .filter_map(|s| {
                        let url = format!("http://{}/metrics", s.record.admin_addr);
                        let text = agent.get(&url).call().ok()?.body_mut().read_to_string().ok()?;
                        Some((s.record.name, reading(&text)))
                    })
                    .collect();
                dashboard.series().record(crate::staging::now_unix(), &readings);
            })?;
        Ok(())
    }
}

/// The counters and gauges the page needs, from one edge's /metrics text.
fn reading(text: &str) -> EdgeReading {
    let responses = |class: &str| sum_where(text, "strata_http_responses_total", "status", class);
    let value = |name: &str| sum(text, name).unwrap_or(0.0);
    EdgeReading {
        body_bytes: value("strata_body_bytes_total"),
        responses_2xx: responses("2"),
        responses_3xx: responses("3"),
        responses_4xx: responses("4"),
        responses_5xx: responses("5"),
        hits: value("strata_cache_hits_total"),
        misses: value("strata_misses_total"),
        connections_open: value("strata_connections_open"),
        cache_bytes: value("strata_cache_bytes"),
        cache_capacity_bytes: value("strata_cache_capacity_bytes"),
    }
}
