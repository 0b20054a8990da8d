//! The control plane's /metrics (Prometheus text): servers up and down by role, queued work,
//! contents, bytes placed, placement failures, restores, syncd pushes and API responses by
//! status. Gauges are read from the registry at scrape time.

use std::sync::atomic::Ordering;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::plane::ControlPlane;
use super::servers::ServerBook;
use strata_wire::heartbeat::ServerRole;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    role: &'static str,
    state: &'static str,
}

pub struct ControlMetrics {
    registry: Registry,
    responses: Family<StatusLabels, Counter>,
    servers: Family<ServerLabels, Gauge>,
    work_items: Gauge,
    contents: Gauge,
    bytes_placed: Gauge,
    targets_done: Gauge,
    target_failures: Gauge,
    restores: Gauge,
    pushes: Gauge,
    leader: Gauge,
}

impl ControlMetrics {
    pub fn new() -> ControlMetrics {
        let mut registry = Registry::with_prefix("strata_control");
        let m = ControlMetrics {
            responses: Family::default(),
            servers: Family::default(),
            work_items: Gauge::default(),
            contents: Gauge::default(),
            bytes_placed: Gauge::default(),
            targets_done: Gauge::default(),
            target_failures: Gauge::default(),
            restores: Gauge::default(),
            pushes: Gauge::default(),
            leader: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("api_responses", "API responses by status", m.responses.clone());
        registry.register(
            "servers",
            "Registered servers by role and state (up/down)",
            m.servers.clone(),
        );
        registry.register(
            "work_items",
            "Work items queued (placements and restores)",
            m.work_items.clone(),
        );
        registry.register("contents", "Contents in the registry", m.contents.clone());
        registry.register(
            "placed_bytes",
            "Bytes copied to storage servers and the archive since start",
            m.bytes_placed.clone(),
        );
        registry.register(
            "placements",
            "Placement targets finished since start",
            m.targets_done.clone(),
        );
        registry.register(
            "placement_failures",
            "Placement attempts that failed (retried) since start",
            m.target_failures.clone(),
        );
        registry.register(
            "restores_queued",
            "Restores from the archive queued since start",
            m.restores.clone(),
        );
        registry.register(
            "syncd_pushes",
            "Assets syncd asked edges to fill since start",
            m.pushes.clone(),
        );
        registry.register(
            "leader",
            "1 while this instance is the control-plane leader (runs the ingestor)",
            m.leader.clone(),
        );
        ControlMetrics { registry, ..m }
    }

    /// Adds a scrape-time collector another part of the control plane brings.
    pub fn with_collector(
        mut self,
        collector: Box<dyn prometheus_client::collector::Collector>,
    ) -> ControlMetrics {
        self.registry.register_collector(collector);
        self
    }

    pub fn response(&self, status: u16) {
        self.responses.get_or_create(&StatusLabels { status }).inc();
    }

    pub fn render(&self, plane: &ControlPlane) -> String {
        if let Ok(all) = ServerBook::all(plane.store()) {
            for (kind, role) in [(ServerRole::Storage, "storage"), (ServerRole::Edge, "edge")] {
                for (state, up) in [("up", true), ("down", false)] {
                    let n = all.iter().filter(|s| s.up == up && s.record.role == kind).count();
                    self.servers
                        .get_or_create(&ServerLabels { role, state })
                        .set(n as i64);
                }
            }
        }
        let store = plane.store();
        self.work_items
            .set(store.list("work/").map_or(0, |v| v.len()) as i64);
        self.contents
            .set(store.list("contents/").map_or(0, |v| v.len()) as i64);
        self.bytes_placed.set(plane.bytes_copied() as i64);
        self.targets_done
            .set(plane.ingestor.counters.targets_done.load(Ordering::Relaxed) as i64);
        self.target_failures
            .set(plane.ingestor.counters.target_failures.load(Ordering::Relaxed) as i64);
        self.restores.set(plane.restores_queued() as i64);
        self.pushes.set(plane.syncd.pushes() as i64);
        self.leader.set(i64::from(plane.leadership.is_leader()));
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for ControlMetrics {
    fn default() -> Self {
        Self::new()
    }
}
