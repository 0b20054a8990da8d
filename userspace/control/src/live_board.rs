//! Live streams as the ingest servers report them in their heartbeats (soft state, relearnt
//! within a beat after a restart): which stream is live on which ingest cluster, for the name
//! lookup (edges go to the ingest cluster until the stream's recording is placed and ready) and
//! for `GET /v1/live` and the status.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Serialize;
use strata_wire::heartbeat::ServerRecord;
use strata_wire::live::{LivePhase, LiveStream};

use super::contents::{ContentBook, ContentState};
use super::registry::RegistryStore;

/// One stream as listed: the freshest report of it and the servers reporting it.
#[derive(Clone, Debug, Serialize)]
pub struct ListedStream {
    #[serde(flatten)]
    pub stream: LiveStream,
    pub cluster: String,
    pub servers: Vec<String>,
}

/// The latest report of every ingest server.
#[derive(Default)]
pub struct LiveBoard {
    reports: Mutex<HashMap<String, (String, Vec<LiveStream>)>>,
}

impl LiveBoard {
    /// Keeps `server`'s report (replacing its last one).
    pub fn observe(&self, server: &ServerRecord, streams: Vec<LiveStream>) {
        let cluster = server.cluster.clone().unwrap_or_default();
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(server.name.clone(), (cluster, streams));
    }

    /// Every stream reported by a server in `up`, by `tenant/stream`; a stream whose recording
    /// is ready on storage is listed as archived.
    pub fn streams(
        &self,
        store: &dyn RegistryStore,
        up: &dyn Fn(&str) -> bool,
    ) -> BTreeMap<String, ListedStream> {
        let reports = self.reports.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out: BTreeMap<String, ListedStream> = BTreeMap::new();
        for (server, (cluster, streams)) in reports {
            if !up(&server) {
                continue;
            }
            for s in streams {
                let key = format!("{}/{}", s.tenant, s.stream);
                let entry = out.entry(key).or_insert_with(|| ListedStream {
                    stream: s.clone(),
                    cluster: cluster.clone(),
                    servers: Vec::new(),
                });
                entry.servers.push(server.clone());
                let fresher = (s.last_publish_unix, phase_rank(s.phase))
                    > (entry.stream.last_publish_unix, phase_rank(entry.stream.phase));
                if fresher {
                    entry.stream = s;
                    entry.cluster = cluster.clone();
                }
            }
        }
        for listed in out.values_mut() {
            if let Some(c) = &listed.stream.archive_content {
                let ready = ContentBook { store }
                    .get(&listed.stream.tenant, c)
                    .map(|r| r.state == ContentState::Ready)
                    .unwrap_or(false);
                if ready {
                    listed.stream.phase = LivePhase::Archived;
                }
            }
        }
        out
    }
}

fn phase_rank(p: LivePhase) -> u8 {
    match p {
        LivePhase::Live => 0,
        LivePhase::Ending => 1,
        LivePhase::Archiving => 2,
        LivePhase::Archived => 3,
    }
}
