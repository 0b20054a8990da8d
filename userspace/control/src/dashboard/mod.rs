//! The operator's status page: `GET /` serves one self-contained HTML page (no external
//! assets) that asks for the operator token once, then shows tiers, regions, edges, tenants,
//! the map and plots of the last hour, refreshed live from `GET /v1/status` and
//! `GET /v1/dashboard`. The plots come from [`sampler`], which scrapes every edge's /metrics
//! every [`sampler::EVERY`] and keeps an hour of rates in [`series`].

pub mod page;
pub mod prom_text;
pub mod sampler;
pub mod series;

pub use page::routes;
