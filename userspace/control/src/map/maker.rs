//! The map maker's loop, on a thread of its own, once per interval on every control-plane
//! instance: it publishes what this instance learned (heartbeats, client reports, nameserver
//! counts) to the registry; the leader merges every instance's inputs, solves, and stores the
//! map (`map/current`, under its leader guard); every instance serves the stored map. What
//! each solve cost goes to /metrics.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Instant;

use strata_wire::heartbeat::{EdgeReport, ServerRole};
use strata_wire::network_map::{MapBlock, MapRegion, MapServer, NetworkMap};

use super::costs::cost;
use super::inputs::MapInputs;
use super::settings::MapSettings;
use super::shared_inputs::{merge, InputsSnapshot, MergedInputs, INPUTS_PREFIX};
use crate::leader::Leadership;
use crate::regions::{Block, Region, RegionBook};
use crate::registry::{Op, RegistryStore};
use crate::servers::{ServerBook, ServerState};

/// Counters of the map maker, for /metrics.
#[derive(Debug, Default)]
pub struct MapCounters {
    pub solves: AtomicU64,
    /// Microseconds the last solve took.
    pub last_solve_us: AtomicU64,
    pub blocks: AtomicU64,
    pub regions: AtomicU64,
    pub unassigned_bps: AtomicU64,
    /// Client reports accepted (`POST /v1/reports`).
    pub client_reports: AtomicU64,
}

/// Registry key of the map the leader solved last.
pub const CURRENT_MAP_KEY: &str = "map/current";

pub struct MapMaker {
    pub settings: MapSettings,
    /// This control-plane instance (names its inputs in the registry).
    instance: String,
    inputs: Mutex<MapInputs>,
    current: RwLock<Arc<NetworkMap>>,
    pub counters: MapCounters,
    last_roll: Mutex<Instant>,
}

/// A region as the solve sees it.
struct RegionView {
    record: Region,
    servers: Vec<MapServer>,
    capacity_bps: u64,
}

impl MapMaker {
    pub fn new(settings: MapSettings, instance: String) -> MapMaker {
        MapMaker {
            settings,
            instance,
            inputs: Mutex::new(MapInputs::default()),
            current: RwLock::new(Arc::new(NetworkMap::default())),
            counters: MapCounters::default(),
            last_roll: Mutex::new(Instant::now()),
        }
    }

    fn inputs(&self) -> std::sync::MutexGuard<'_, MapInputs> {
        self.inputs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The latest map.
    pub fn current(&self) -> Arc<NetworkMap> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// An edge's heartbeat.
    pub fn observe_edge(&self, edge: &str, region: Option<&str>, report: &EdgeReport) {
        self.inputs().observe_edge(edge, region, report);
    }

    /// Timings a client reported for the server at `server`; false if no region holds it.
    pub fn observe_client(
        &self,
        client: std::net::IpAddr,
        server: SocketAddr,
        bytes: u64,
        ms: u64,
        errors: u64,
    ) -> bool {
        let map = self.current();
        let Some(region) = map
            .regions
            .iter()
            .find(|r| r.servers.iter().any(|s| s.addr == server))
        else {
            return false;
        };
        let block = Block::default_for(client).to_string();
        self.inputs()
            .observe_client(&block, &region.name, bytes, ms, errors);
        true
    }

    /// Queries a nameserver answered for a block.
    pub fn observe_queries(&self, block: &str, queries: u64) {
        self.inputs().observe_queries(block, queries);
    }

    /// Starts the loop; it ends when the plane (owner of the store and the leadership) is gone.
    pub fn spawn(
        self: &Arc<Self>,
        store: Weak<dyn RegistryStore>,
        leadership: Weak<Leadership>,
    ) -> std::io::Result<()> {
        let maker = Arc::downgrade(self);
        let interval = self.settings.interval;
        std::thread::Builder::new()
            .name("map-maker".into())
            .spawn(move || loop {
                let (Some(maker), Some(store), Some(leadership)) =
                    (maker.upgrade(), store.upgrade(), leadership.upgrade())
                else {
                    return;
                };
                if let Err(e) = maker.tick(store.as_ref(), &leadership) {
                    tracing::warn!(error = %e, "network map: this round failed; keeping the previous map");
                }
                drop((maker, store, leadership));
                std::thread::sleep(interval);
            })?;
        Ok(())
    }

    /// One round: publishes this instance's inputs, takes the stored map, and on the leader
    /// solves from every instance's inputs and stores the result. Returns the map now served.
    pub fn tick(
        &self,
        store: &dyn RegistryStore,
        leadership: &Leadership,
    ) -> anyhow::Result<Arc<NetworkMap>> {
        self.publish_inputs(store)?;
        self.adopt_stored(store)?;
        let Some(guard) = leadership.guard() else {
            return Ok(self.current());
        };
        let map = self.solve(store)?;
        let put = Op::Put {
            key: CURRENT_MAP_KEY.into(),
            value: serde_json::to_vec(map.as_ref())?,
            lease: None,
        };
        if store.commit(&[guard], &[put])?.is_none() {
            leadership.confirm(store)?;
            anyhow::bail!("network map: no longer the leader; the new leader's map is served");
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = map.clone();
        Ok(map)
    }

    /// Rolls this instance's inputs and stores them under `map/inputs/{instance}`.
    fn publish_inputs(&self, store: &dyn RegistryStore) -> anyhow::Result<()> {
        let snapshot = {
            let mut inputs = self.inputs();
            let elapsed = {
                let mut last = self.last_roll.lock().unwrap_or_else(|p| p.into_inner());
                let e = last.elapsed();
                *last = Instant::now();
                e
            };
            inputs.roll(
                elapsed.as_secs_f64(),
                self.settings.load_per_query_bps,
                self.settings.keep,
            );
            InputsSnapshot::of(&inputs, crate::staging::now_unix())
        };
        let put = Op::Put {
            key: format!("{INPUTS_PREFIX}{}", self.instance),
            value: serde_json::to_vec(&snapshot)?,
            lease: None,
        };
        store.commit(&[], &[put])?;
        Ok(())
    }

    /// Serves the stored map if it is newer than the one in memory.
    fn adopt_stored(&self, store: &dyn RegistryStore) -> anyhow::Result<()> {
        let Some(entry) = store.get(CURRENT_MAP_KEY)? else {
            return Ok(());
        };
        let stored: NetworkMap = serde_json::from_slice(&entry.value).map_err(|e| {
            anyhow::anyhow!("network map: the stored map ({CURRENT_MAP_KEY}) is unreadable: {e}")
        })?;
        let current = self.current();
        if (stored.version, stored.generated_unix) != (current.version, current.generated_unix)
            && stored.version >= current.version
        {
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(stored);
        }
        Ok(())
    }

    /// Every instance's fresh inputs summed; stale snapshots (an instance that stopped) are
    /// removed.
    fn gather_inputs(&self, store: &dyn RegistryStore) -> anyhow::Result<MergedInputs> {
        let stale_after = (self.settings.interval * 3).as_secs() + 10;
        let fresh_since = crate::staging::now_unix().saturating_sub(stale_after);
        let mut snapshots = Vec::new();
        let mut stale = Vec::new();
        for entry in store.list(INPUTS_PREFIX)? {
            match serde_json::from_slice::<InputsSnapshot>(&entry.value) {
                Ok(s) if s.at_unix >= fresh_since => snapshots.push(s),
                Ok(_) => stale.push(Op::Delete { key: entry.key }),
                Err(e) => {
                    tracing::warn!(key = %entry.key, error = %e, "network map: an instance's inputs are unreadable; left out");
                }
            }
        }
        if !stale.is_empty() {
            store.commit(&[], &stale)?;
        }
        Ok(merge(&snapshots, fresh_since))
    }

    /// Builds a map from every instance's inputs (without serving it yet).
    fn solve(&self, store: &dyn RegistryStore) -> anyhow::Result<Arc<NetworkMap>> {
        let MergedInputs {
            measured,
            client,
            load_bps: loads,
            edge_load,
        } = self.gather_inputs(store)?;
        let regions = self.region_views(store, &edge_load)?;
        let configured = RegionBook { store }.blocks()?;
        // Every block the map knows: configured, carrying load, or measured.
        let mut blocks: BTreeSet<String> = configured.iter().map(|b| b.to_string()).collect();
        blocks.extend(loads.keys().cloned());
        blocks.extend(measured.keys().map(|(b, _)| b.clone()));
        blocks.extend(client.keys().map(|(b, _)| b.clone()));
        let blocks: Vec<String> = blocks.into_iter().collect();
        let usable: Vec<usize> = (0..regions.len())
            .filter(|&i| !regions[i].servers.is_empty())
            .collect();
        let w = &self.settings.weights;
        let mut problem = strata_flow::Problem {
            blocks: Vec::with_capacity(blocks.len()),
            regions: regions
                .iter()
                .map(|r| strata_flow::Region {
                    capacity: r.capacity_bps,
                })
                .collect(),
        };
        for b in &blocks {
            let mut candidates: Vec<strata_flow::Candidate> = usable
                .iter()
                .map(|&i| {
                    let key = (b.clone(), regions[i].record.name.clone());
                    strata_flow::Candidate {
                        region: i,
                        cost: cost(
                            regions[i].record.base_cost,
                            measured.get(&key),
                            client.get(&key),
                            w,
                        ),
                    }
                })
                .collect();
            candidates.sort_by_key(|c| (c.cost, c.region));
            candidates.truncate(self.settings.candidates.max(1));
            problem.blocks.push(strata_flow::Block {
                load: loads.get(b).copied().unwrap_or(0.0).round() as u64,
                candidates,
            });
        }
        let started = Instant::now();
        let solution = strata_flow::solve(&problem)?;
        let solve = started.elapsed();
        let mut carried = vec![0u64; regions.len()];
        for flows in &solution.flows {
            for &(r, amount) in flows {
                carried[r] = carried[r].saturating_add(amount);
            }
        }
        let map_blocks: Vec<MapBlock> = blocks
            .iter()
            .enumerate()
            .map(|(i, prefix)| {
                let order = strata_flow::ranked_regions(&problem, &solution, i);
                let cost_of = |r: usize| {
                    problem.blocks[i]
                        .candidates
                        .iter()
                        .find(|c| c.region == r)
                        .map_or(0, |c| c.cost)
                };
                MapBlock {
                    prefix: prefix.clone(),
                    load_bps: problem.blocks[i].load,
                    regions: order.iter().map(|&r| regions[r].record.name.clone()).collect(),
                    costs: order.iter().map(|&r| cost_of(r)).collect(),
                    assigned: solution.flows[i]
                        .iter()
                        .map(|&(r, amount)| (regions[r].record.name.clone(), amount))
                        .collect(),
                    unassigned_bps: solution.unassigned[i],
                }
            })
            .collect();
        let map_regions: Vec<MapRegion> = regions
            .iter()
            .enumerate()
            .map(|(i, r)| MapRegion {
                name: r.record.name.clone(),
                capacity_bps: r.capacity_bps,
                spare_bps: r.capacity_bps.saturating_sub(carried[i]),
                servers: r.servers.clone(),
            })
            .collect();
        let mut default_order: Vec<&MapRegion> =
            map_regions.iter().filter(|r| !r.servers.is_empty()).collect();
        let base = |name: &str| {
            regions
                .iter()
                .find(|r| r.record.name == name)
                .map_or(0, |r| r.record.base_cost)
        };
        default_order.sort_by_key(|r| (base(&r.name), std::cmp::Reverse(r.spare_bps), r.name.clone()));
        let default_order: Vec<String> = default_order.iter().map(|r| r.name.clone()).collect();
        let unassigned: u64 = solution.unassigned.iter().sum();
        let previous = self.current();
        let mut map = NetworkMap {
            version: previous.version,
            generated_unix: crate::staging::now_unix(),
            solve_ms: solve.as_secs_f64() * 1000.0,
            regions: map_regions,
            blocks: map_blocks,
            default_order,
            unassigned_bps: unassigned,
        };
        if !same_routing(&previous, &map) {
            map.version = previous.version + 1;
        }
        if unassigned > 0 {
            tracing::warn!(
                unassigned_bps = unassigned,
                "network map: load that fits in no region"
            );
        }
        let c = &self.counters;
        c.solves.fetch_add(1, Ordering::Relaxed);
        c.last_solve_us.store(solve.as_micros() as u64, Ordering::Relaxed);
        c.blocks.store(map.blocks.len() as u64, Ordering::Relaxed);
        c.regions.store(map.regions.len() as u64, Ordering::Relaxed);
        c.unassigned_bps.store(unassigned, Ordering::Relaxed);
        Ok(Arc::new(map))
    }

    /// Every region (registered, or named by an edge), its edges that are up and its capacity.
    fn region_views(
        &self,
        store: &dyn RegistryStore,
        loads: &HashMap<String, u64>,
    ) -> anyhow::Result<Vec<RegionView>> {
        let mut records: BTreeMap<String, Region> = RegionBook { store }
            .list()?
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        let servers = ServerBook::all(store)?;
        let mut members: BTreeMap<String, Vec<(&ServerState, u64)>> = BTreeMap::new();
        for s in &servers {
            let (ServerRole::Edge, Some(region), true) = (s.record.role, &s.record.region, s.up) else {
                continue;
            };
            records.entry(region.clone()).or_insert_with(|| Region {
                name: region.clone(),
                capacity_bps: None,
                base_cost: 0,
            });
            members
                .entry(region.clone())
                .or_default()
                .push((s, loads.get(&s.record.name).copied().unwrap_or(0)));
        }
        Ok(records
            .into_values()
            .map(|record| {
                let up = members.remove(&record.name).unwrap_or_default();
                let servers_capacity: u64 = up.iter().map(|(s, _)| s.record.capacity_bps).sum();
                let capacity_bps = match record.capacity_bps {
                    Some(network) => network.min(servers_capacity),
                    None => servers_capacity,
                };
                let mut servers: Vec<MapServer> = up
                    .iter()
                    .map(|(s, load)| MapServer {
                        name: s.record.name.clone(),
                        addr: s.record.addr,
                        load: *load,
                    })
                    .collect();
                servers.sort_by(|a, b| a.name.cmp(&b.name));
                RegionView {
                    record,
                    servers,
                    capacity_bps,
                }
            })
            .collect())
    }
}

/// True if two maps route clients the same way (orders, servers and spare capacity alike).
fn same_routing(a: &NetworkMap, b: &NetworkMap) -> bool {
    let regions = |m: &NetworkMap| -> Vec<(String, Vec<SocketAddr>, u64)> {
        m.regions
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.servers.iter().map(|s| s.addr).collect(),
                    r.spare_bps,
                )
            })
            .collect()
    };
    let blocks = |m: &NetworkMap| -> Vec<(String, Vec<String>)> {
        m.blocks
            .iter()
            .map(|b| (b.prefix.clone(), b.regions.clone()))
            .collect()
    };
    regions(a) == regions(b) && blocks(a) == blocks(b) && a.default_order == b.default_order
}
