//! What a client connection holds for its whole life, also while the idle parker keeps it: its
//! slot under `max_connections` (dropping it counts the connection closed) and the asset it
//! served last, kept open.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use crate::file_store::OpenAsset;
use crate::metrics::ServerMetrics;

/// A connection's place under `max_connections`, held from accept to close (also while parked);
/// dropping it counts the connection closed and frees the slot.
pub struct ConnSlot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<ServerMetrics>,
}

impl ConnSlot {
    pub fn new(permit: OwnedSemaphorePermit, metrics: Arc<ServerMetrics>) -> ConnSlot {
        metrics.connection_opened();
        ConnSlot {
            _permit: permit,
            metrics,
        }
    }

    pub fn metrics(&self) -> &ServerMetrics {
        &self.metrics
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

/// The open asset of a connection, keyed by a hash of its path. A hash collision cannot serve
/// the wrong file: reuse also needs the path to name the same inode, size and mtime now.
pub struct CachedAsset {
    pub(super) key: u64,
    pub(super) asset: OpenAsset,
}
