//! What every request task and the background loops of an ingest server share.

use crate::live_metrics::LiveMetrics;
use crate::publish_auth::PublishAuth;
use crate::settings::LiveSettings;
use crate::streams::Streams;

pub struct LiveContext {
    pub settings: LiveSettings,
    pub streams: Streams,
    pub auth: PublishAuth,
    pub metrics: LiveMetrics,
}
