//! The nameserver's link to the control plane: fetches the network map every `map_refresh`
//! (answers keep coming from the last map while the control plane is unreachable) and reports
//! the SRV queries it answered per client block every `report_every`, which the map maker
//! counts as load.

use std::sync::Arc;
use std::time::Duration;

use strata_wire::client::ServiceClient;
use strata_wire::network_map::{DnsQueryReport, NetworkMap};
use tokio::sync::watch;

use crate::server::Shared;
use strata_wire::map_view::MapView;

/// Fetches the map once and installs it; the map's version.
pub async fn fetch_map(client: &ServiceClient, shared: &Shared) -> anyhow::Result<u64> {
    let c = client.clone();
    let map: NetworkMap = tokio::task::spawn_blocking(move || c.get("/v1/map")).await??;
    let version = map.version;
    let changed = shared.view.read().unwrap_or_else(|p| p.into_inner()).map.version != version;
    if changed {
        tracing::info!(
            version,
            blocks = map.blocks.len(),
            regions = map.regions.len(),
            "dns: network map updated"
        );
    }
    *shared.view.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(MapView::new(map));
    shared.metrics.set_map_version(version);
    Ok(version)
}

/// Refreshes the map and reports query counts until shutdown.
pub async fn run(
    client: ServiceClient,
    name: String,
    shared: Arc<Shared>,
    refresh: Duration,
    report_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut fetch = tokio::time::interval(refresh);
    let mut report = tokio::time::interval(report_every);
    fetch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        tokio::select! {
            _ = fetch.tick() => match fetch_map(&client, &shared).await {
                Ok(_) => {
                    if !healthy {
                        tracing::info!(control = %client.base(), "dns: the control plane answers again");
                    }
                    healthy = true;
                }
                Err(e) => {
                    if healthy {
                        tracing::warn!(control = %client.base(), error = %e, "dns: fetching the map failed; answering from the last one");
                    }
                    healthy = false;
                }
            },
            _ = report.tick() => {
                let blocks: Vec<(String, u64)> = shared
                    .queries
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .drain()
                    .collect();
                if blocks.is_empty() {
                    continue;
                }
                let body = DnsQueryReport { server: name.clone(), blocks };
                let c = client.clone();
                let sent = tokio::task::spawn_blocking(move || c.post::<_, serde_json::Value>("/v1/dns/queries", &body)).await;
                match sent {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "dns: reporting query counts failed"),
                    Err(e) => tracing::debug!(error = %e, "dns: the report task failed"),
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
