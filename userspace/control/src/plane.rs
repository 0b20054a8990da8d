//! The control plane's state in one place: the registry, server liveness, the ingestor, syncd,
//! the staging and archive directories, the placement key, and what the API and /metrics read.
//! `ControlPlane::open` prepares a data directory (registry file, first operator token,
//! placement key), joins the leader election ([`Leadership`]) and starts the ingestor, which
//! works the queue it finds while this instance leads.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use strata_wire::lookup::LookupTable;

use super::contents::ContentBook;
use super::dashboard::sampler::Dashboard;
use super::embedded_store::EmbeddedStore;
use super::etcd_store::EtcdStore;
use super::ingestor::Ingestor;
use super::leader::{default_instance, Leadership, LEADER_KEY};
use super::map::settings::MapSettings;
use super::map::MapMaker;
use super::placement::Placer;
use super::regions::RegionBook;
use super::registry::{Op, RegistryStore};
use super::registry_url::RegistrySettings;
use super::servers::ServerBook;
use super::syncd::Syncd;
use super::tenants::TenantBook;
use super::tokens::{Role, TokenBook};
use strata_wire::heartbeat::ServerRole;

/// `strata control serve` settings (the `--config` TOML's keys, every one optional).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlSettings {
    /// Registry (redb), staging and (by default) archive directory.
    pub data_dir: PathBuf,
    /// The API listener (`strata control serve`; the POP sets its own).
    pub listen: std::net::SocketAddr,
    /// This instance's name in the leader election (default: host name and process id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The leader's lease: another instance takes over within this long of the leader's death.
    #[serde(with = "humantime_serde")]
    pub leader_ttl: Duration,
    /// Archive tier directory (default: `{data_dir}/archive`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_dir: Option<PathBuf>,
    /// A server is down after this long without a heartbeat.
    #[serde(with = "humantime_serde")]
    pub server_ttl: Duration,
    /// syncd's demand half-life.
    #[serde(with = "humantime_serde")]
    pub demand_half_life: Duration,
    /// Least decayed requests before syncd pushes an asset.
    pub push_min_requests: f64,
    /// The registry on an etcd cluster (`[registry] url`); none: the embedded redb file in
    /// `data_dir`.
    pub registry: RegistrySettings,
    /// The network map maker's settings.
    pub map: MapSettings,
    /// Time between two samples of the edges for the status page's plots.
    #[serde(with = "humantime_serde")]
    pub dashboard_every: Duration,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            data_dir: PathBuf::from("/var/lib/strata/control"),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9090)),
            dashboard_every: super::dashboard::sampler::EVERY,
            registry: RegistrySettings::default(),
            instance: None,
            leader_ttl: Duration::from_secs(5),
            archive_dir: None,
            server_ttl: Duration::from_secs(5),
            demand_half_life: Duration::from_secs(60),
            push_min_requests: 2.0,
            map: MapSettings::default(),
        }
    }
}

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct PlaneCounters {
    pub restores_queued: AtomicU64,
}

pub struct ControlPlane {
    pub store: Arc<dyn RegistryStore>,
    pub servers: ServerBook,
    pub syncd: Syncd,
    /// Live streams as the ingest servers report them.
    pub live: super::live_board::LiveBoard,
    /// The network map maker (regions, blocks, min-cost flow).
    pub map: Arc<MapMaker>,
    pub ingestor: Arc<Ingestor>,
    /// Whether this instance is the leader (runs the singleton loops).
    pub leadership: Arc<Leadership>,
    /// The status page's hour of samples.
    pub dashboard: Arc<Dashboard>,
    pub staging_root: PathBuf,
    pub archive_root: PathBuf,
    pub placement_key: String,
    pub counters: PlaneCounters,
    /// Where the first operator token was written, if this start created it.
    pub operator_token_file: PathBuf,
    /// Distribution jobs' transfer progress (soft state; the job records are in the registry).
    pub jobs_board: Arc<super::jobs::progress::ProgressBoard>,
}

fn random_hex() -> String {
    strata_wire::content_digest::hex(&rand::random::<[u8; 32]>())
}

impl ControlPlane {
    /// Opens (or creates) the data directory and starts the ingestor.
    pub fn open(settings: &ControlSettings) -> anyhow::Result<Arc<ControlPlane>> {
        let dir = &settings.data_dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
        let store: Arc<dyn RegistryStore> = match &settings.registry.url {
            None => Arc::new(EmbeddedStore::open(dir).context("opening the registry")?),
            Some(target) => Arc::new(
                EtcdStore::connect(target).with_context(|| format!("connecting to the registry {target}"))?,
            ),
        };
        let staging_root = dir.join("staging");
        let archive_root = settings
            .archive_dir
            .clone()
            .unwrap_or_else(|| dir.join("archive"));
        for d in [&staging_root, &archive_root] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let operator_token_file = dir.join("operator.token");
        if store.list("tokens/")?.is_empty() {
            let token = TokenBook {
                store: store.as_ref(),
            }
            .issue(&Role::Operator)?;
            write_secret(&operator_token_file, &token)?;
            tracing::info!(file = %operator_token_file.display(), "first start: wrote the operator token (keep it secret)");
        }
        store.create("meta/placement_key", random_hex().into_bytes())?;
        let placement_key = store
            .get("meta/placement_key")?
            .map(|e| String::from_utf8_lossy(&e.value).to_string())
            .context("reading the placement key")?;
        let partial = strata_wire::objects::remove_leftover_puts(&archive_root);
        if partial > 0 {
            tracing::warn!(
                partial,
                "removed partial archive copies an earlier run left; they are copied again"
            );
        }
        let swept = super::staging::sweep(store.as_ref(), &staging_root);
        if swept > 0 {
            tracing::info!(swept, "removed staging directories nothing refers to");
        }
        let queued = super::work_queue::pending(store.as_ref())?.len();
        if queued > 0 {
            tracing::info!(queued, "resuming queued work");
        }
        if settings.registry.url.is_none() {
            // The redb file is this process's alone: a leader key an earlier run left is stale.
            store.commit(
                &[],
                &[Op::Delete {
                    key: LEADER_KEY.into(),
                }],
            )?;
        }
        let instance = settings.instance.clone().unwrap_or_else(default_instance);
        let leadership = Leadership::new(instance, settings.leader_ttl);
        leadership
            .spawn(Arc::downgrade(&store))
            .context("starting the leader election thread")?;
        let ingestor = Ingestor::spawn(
            Placer {
                store: store.clone(),
                staging_root: staging_root.clone(),
                archive_root: archive_root.clone(),
                placement_key: placement_key.clone(),
                bytes_copied: Arc::new(AtomicU64::new(0)),
            },
            leadership.clone(),
        )
        .context("starting the ingestor thread")?;
        let jobs_board = Arc::new(super::jobs::progress::ProgressBoard::default());
        super::jobs::scheduler::spawn(Arc::downgrade(&store), leadership.clone(), jobs_board.clone())
            .context("starting the job scheduler thread")?;
        super::jobs::notify::spawn(Arc::downgrade(&store), leadership.clone())
            .context("starting the job notifier thread")?;
        let map = Arc::new(MapMaker::new(
            settings.map.clone(),
            leadership.instance().to_string(),
        ));
        map.spawn(Arc::downgrade(&store), Arc::downgrade(&leadership))
            .context("starting the map maker thread")?;
        let dashboard = Arc::new(Dashboard::new(settings.dashboard_every));
        dashboard
            .spawn(Arc::downgrade(&store))
            .context("starting the status page's sampler thread")?;
        Ok(Arc::new(ControlPlane {
            dashboard,
            store,
            servers: ServerBook::new(settings.server_ttl),
            syncd: Syncd::new(settings.demand_half_life, settings.push_min_requests),
            live: Default::default(),
            map,
            ingestor,
            leadership,
            staging_root,
            archive_root,
            placement_key,
            counters: PlaneCounters::default(),
            operator_token_file,
            jobs_board,
        }))
    }

    pub fn store(&self) -> &dyn RegistryStore {
        self.store.as_ref()
    }

    pub fn tenants(&self) -> TenantBook<'_> {
        TenantBook { store: self.store() }
    }

    pub fn tokens(&self) -> TokenBook<'_> {
        TokenBook { store: self.store() }
    }

    pub fn regions(&self) -> RegionBook<'_> {
        RegionBook {
            store: self.store.as_ref(),
        }
    }

    pub fn contents(&self) -> ContentBook<'_> {
        ContentBook { store: self.store() }
    }

    /// The name lookup as edges see it.
    pub fn lookup_table(&self) -> anyhow::Result<LookupTable> {
        let store = self.store();
        let mut table = LookupTable::default();
        for t in (TenantBook { store }).list()? {
            let mut clusters = vec![t.home_cluster.clone()];
            clusters.extend(t.replica_clusters.iter().cloned());
            table.tenants.insert(t.name, clusters);
        }
        for c in (TenantBook { store }).clusters()? {
            table.clusters.entry(c.name).or_default();
        }
        let servers = ServerBook::all(store)?;
        for s in &servers {
            if let (true, ServerRole::Storage | ServerRole::Live, Some(cluster)) =
                (s.up, s.record.role, &s.record.cluster)
            {
                table
                    .clusters
                    .entry(cluster.clone())
                    .or_default()
                    .push(s.record.addr);
            }
        }
        table.signed = super::signing::SigningBook { store }.signed_tenants()?;
        table.delivery = super::delivery::DeliveryBook { store }.all()?;
        table.live = self.live_routes(&servers);
        let digest = Sha256::digest(serde_json::to_vec(&(
            &table.tenants,
            &table.clusters,
            &table.signed,
            &table.live,
            &table.delivery,
        ))?);
        table.etag = strata_wire::content_digest::hex(&digest[..8]);
        Ok(table)
    }

    /// Every stream the ingest servers that are up report (`GET /v1/live`).
    pub fn live_streams(
        &self,
        servers: &[super::servers::ServerState],
    ) -> Vec<super::live_board::ListedStream> {
        let up = |name: &str| servers.iter().any(|s| s.up && s.record.name == name);
        self.live.streams(self.store(), &up).into_values().collect()
    }

    /// Streams edges fetch from their ingest cluster: not yet archived (the recording is not
    /// ready on storage), reported by a server that is up.
    fn live_routes(
        &self,
        servers: &[super::servers::ServerState],
    ) -> std::collections::BTreeMap<String, String> {
        self.live_streams(servers)
            .into_iter()
            .filter(|l| l.stream.phase != strata_wire::live::LivePhase::Archived)
            .map(|l| (format!("{}/{}", l.stream.tenant, l.stream.stream), l.cluster))
            .collect()
    }

    /// Size of a registered asset (`tenant/content/asset`), for syncd.
    pub fn asset_size(&self, path: &str) -> Option<u64> {
        let mut parts = path.splitn(3, '/');
        let (t, c, a) = (parts.next()?, parts.next()?, parts.next()?);
        let record = ContentBook { store: self.store() }.get(t, c).ok()?;
        record
            .assets
            .iter()
            .find(|x| x.decl.name == a)
            .map(|x| x.decl.size)
    }

    pub fn bytes_copied(&self) -> u64 {
        self.ingestor.bytes_copied()
    }

    pub fn restores_queued(&self) -> u64 {
        self.counters.restores_queued.load(Ordering::Relaxed)
    }
}

/// Writes a secret file readable only by its owner.
pub fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{secret}").with_context(|| format!("writing {}", path.display()))?;
    f.sync_all()
        .with_context(|| format!("syncing {}", path.display()))
}
