//! HLS Content Steering for standard players (hls.js, AVPlayer, Shaka): an edge under a
//! control plane serves a content's multivariant playlist with one pathway per region (each
//! variant repeated with `PATHWAY-ID` and an absolute URI on that region's edge) and an
//! `#EXT-X-CONTENT-STEERING` tag, and answers the steering manifest at
//! `/.steering/{tenant}/{content}` with the regions ranked by the network map for the
//! requesting client's block; regions the player's playlist lacks (they came up after it
//! loaded: the playlist's pathways travel in the manifest URI's `have`) are offered as
//! `PATHWAY-CLONES` of its first pathway with their edge as `URI-REPLACEMENT` host. The
//! `_HLS_pathway` and `_HLS_throughput` a player sends along are forwarded to the control
//! plane as the client's report.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use strata_wire::map_view::MapView;
use strata_wire::network_map::MapRegion;

/// Where steering manifests are served.
pub const STEERING_PREFIX: &str = "/.steering/";

/// How long a player keeps a steering manifest before asking again, seconds: short, so a
/// region that turns bad is left within a few seconds.
pub const MANIFEST_TTL_SECS: u32 = 5;

/// Largest playlist the edge rewrites (bigger ones are served as they are).
pub const MAX_PLAYLIST: u64 = 1 << 20;

/// A throughput a player reported for a pathway, to forward to the control plane.
#[derive(Debug, Clone)]
pub struct PlayerReport {
    pub client: IpAddr,
    pub server: SocketAddr,
    pub throughput_bps: u64,
}

/// The map an edge steers by.
#[derive(Default)]
pub struct Steering {
    view: RwLock<Arc<MapView>>,
    /// The manifest's TTL, seconds.
    pub ttl: u32,
}

impl Steering {
    pub fn new(ttl: u32) -> Steering {
        Steering {
            view: RwLock::new(Arc::new(MapView::default())),
            ttl,
        }
    }

    pub fn view(&self) -> Arc<MapView> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, view: MapView) {
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(view);
    }

    /// The regions to offer `client`, in the map's order for its block.
    fn regions_for(&self, view: &MapView, client: IpAddr) -> Vec<MapRegion> {
        view.order_for(client)
            .into_iter()
            .map(|(r, _)| r.clone())
            .collect()
    }
}

/// `(tenant, content)` of a steering manifest path, without its query.
pub fn steering_target(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(STEERING_PREFIX)?;
    let rest = rest.split('?').next().unwrap_or(rest);
    let (tenant, content) = rest.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    (ok(tenant) && ok(content)).then_some((tenant, content))
}

/// A query parameter's value.
fn param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// The steering manifest for `client`, and the report its query carries.
pub fn manifest(
    steering: &Steering,
    client: IpAddr,
    tenant: &str,
    content: &str,
    query: Option<&str>,
) -> (String, Option<PlayerReport>) {
    let view = steering.view();
    let regions = steering.regions_for(&view, client);
    let priority: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
    // Pathways the player's playlist has; regions it lacks (they came up after it loaded)
    // are offered as clones of its first pathway, on their own edge's host.
    let have: Vec<&str> = param(query, "have")
        .map(|h| h.split(',').collect())
        .unwrap_or_default();
    let clones: Vec<serde_json::Value> = match have.first() {
        Some(base) => regions
            .iter()
            .filter(|r| !have.contains(&r.name.as_str()))
            .filter_map(|r| {
                let host = r.servers.first()?.addr.to_string();
                Some(serde_json::json!({
                    "BASE-ID": base,
                    "ID": r.name,
                    "URI-REPLACEMENT": { "HOST": host },
                }))
            })
            .collect(),
        None => Vec::new(),
    };
    let reload = match param(query, "have") {
        Some(h) => format!("{STEERING_PREFIX}{tenant}/{content}?have={h}"),
        None => format!("{STEERING_PREFIX}{tenant}/{content}"),
    };
    let mut manifest = serde_json::json!({
        "VERSION": 1,
        "TTL": steering.ttl,
        "RELOAD-URI": reload,
        "PATHWAY-PRIORITY": priority,
    });
    if !clones.is_empty() {
        manifest["PATHWAY-CLONES"] = serde_json::Value::Array(clones);
    }
    let report = (|| {
        let pathway = param(query, "_HLS_pathway")?;
        let throughput: u64 = param(query, "_HLS_throughput")?.parse().ok()?;
        let region = view.region(pathway)?;
        let server = region.servers.first()?.addr;
        Some(PlayerReport {
            client,
            server,
            throughput_bps: throughput,
        })
    })();
    (manifest.to_string(), report)
}

/// True for a multivariant playlist (it lists variant streams).
pub fn is_multivariant(text: &str) -> bool {
    text.starts_with("#EXTM3U") && text.contains("#EXT-X-STREAM-INF")
}

/// The multivariant playlist with one pathway per region of `client`'s order: each variant
/// repeated with `PATHWAY-ID="{region}"` and its URI made absolute on that region's first
/// edge; and the steering tag naming `steering_host` (this edge). Unchanged when the map has
/// no region.
pub fn steer_playlist(
    steering: &Steering,
    client: IpAddr,
    text: &str,
    tenant: &str,
    content: &str,
    steering_host: SocketAddr,
) -> String {
    let view = steering.view();
    let regions: Vec<(String, SocketAddr)> = steering
        .regions_for(&view, client)
        .into_iter()
        .filter_map(|r| r.servers.first().map(|s| (r.name.clone(), s.addr)))
        .collect();
    let Some((first, _)) = regions.first() else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len() * (regions.len() + 1));
    let mut lines = text.lines().peekable();
    let mut tagged = false;
    while let Some(line) = lines.next() {
        if line.starts_with("#EXT-X-CONTENT-STEERING") {
            continue;
        }
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let Some(uri) = lines.next() else { break };
            for (region, addr) in &regions {
                let absolute = if uri.starts_with("http://") || uri.starts_with("https://") {
                    uri.to_string()
                } else {
                    format!("http://{addr}/{tenant}/{content}/{}", uri.trim())
                };
                out.push_str(&format!(
                    "#EXT-X-STREAM-INF:{attrs},PATHWAY-ID=\"{region}\"\n{absolute}\n"
                ));
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if !tagged && line.starts_with("#EXTM3U") {
            let have: Vec<&str> = regions.iter().map(|(r, _)| r.as_str()).collect();
            out.push_str(&format!(
                "#EXT-X-CONTENT-STEERING:SERVER-URI=\"http://{steering_host}{STEERING_PREFIX}{tenant}/{content}?have={}\",PATHWAY-ID=\"{first}\"\n",
                have.join(",")
            ));
            tagged = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_wire::network_map::{MapServer, NetworkMap};

    fn steering() -> Steering {
        let region = |name: &str, port: u16| MapRegion {
            name: name.into(),
            capacity_bps: 1,
            spare_bps: 1,
            servers: vec![MapServer {
                name: format!("{name}-1"),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                load: 0,
            }],
        };
        let s = Steering::new(10);
        s.replace(MapView::new(NetworkMap {
            regions: vec![region("east", 8080), region("west", 8083)],
            default_order: vec!["west".into(), "east".into()],
            ..Default::default()
        }));
        s
    }

    #[test]
    fn every_variant_gets_one_pathway_per_region_and_the_steering_tag() {
        let s = steering();
        let text =
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nindex.m3u8\n";
        let out = steer_playlist(
            &s,
            "192.0.2.1".parse().unwrap(),
            text,
            "acme",
            "show",
            "127.0.0.1:8080".parse().unwrap(),
        );
        assert!(
            out.contains("#EXT-X-CONTENT-STEERING:SERVER-URI=\"http://127.0.0.1:8080/.steering/acme/show?have=west,east\",PATHWAY-ID=\"west\""),
            "{out}"
        );
        assert!(out.contains("BANDWIDTH=800000,RESOLUTION=640x360,PATHWAY-ID=\"west\"\nhttp://127.0.0.1:8083/acme/show/index.m3u8"), "{out}");
        assert!(
            out.contains("PATHWAY-ID=\"east\"\nhttp://127.0.0.1:8080/acme/show/index.m3u8"),
            "{out}"
        );
        assert!(!is_multivariant("#EXTM3U\n#EXTINF:2,\nseg0.ts\n"));
    }

    #[test]
    fn the_manifest_ranks_regions_for_the_client_and_carries_its_report() {
        let s = steering();
        let (m, report) = manifest(
            &s,
            "192.0.2.1".parse().unwrap(),
            "acme",
            "show",
            Some("_HLS_pathway=east&_HLS_throughput=5000000"),
        );
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["PATHWAY-PRIORITY"], serde_json::json!(["west", "east"]));
        assert_eq!(v["RELOAD-URI"], "/.steering/acme/show");
        assert!(v.get("PATHWAY-CLONES").is_none());
        // A player whose playlist only had west: east comes as a clone on east's edge.
        let (m, _) = manifest(
            &s,
            "192.0.2.1".parse().unwrap(),
            "acme",
            "show",
            Some("have=west&_HLS_pathway=west"),
        );
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["RELOAD-URI"], "/.steering/acme/show?have=west");
        assert_eq!(
            v["PATHWAY-CLONES"],
            serde_json::json!([{"BASE-ID": "west", "ID": "east", "URI-REPLACEMENT": {"HOST": "127.0.0.1:8080"}}])
        );
        let r = report.unwrap();
        assert_eq!((r.server.port(), r.throughput_bps), (8080, 5_000_000));
        assert_eq!(
            steering_target("/.steering/acme/show?_HLS_pathway=x"),
            Some(("acme", "show"))
        );
        assert_eq!(steering_target("/.steering/../x"), None);
    }
}
