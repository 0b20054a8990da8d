//! The POP's live ingest cluster: two `strata live` servers ("live-1", "live-2", cluster
//! "ingest") sharing one recording root, acme's publish token in a file, and the ffmpeg command
//! and play URL the POP prints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use strata_control::plane::{write_secret, ControlPlane};
use strata_control::tokens::{Role, TokenBook};
use strata_live::settings::{LiveControlLink, LiveSettings};
use strata_live::RunningLive;
use tokio::sync::watch;

/// The ingest servers' names (each gets a service token).
pub const SERVERS: [&str; 2] = ["live-1", "live-2"];

/// The tenant the printed command publishes for.
const TENANT: &str = "acme";

/// acme's publish token (a tenant token), written once to `token_dir/acme-publish.token`.
pub fn publish_token(plane: &ControlPlane, token_dir: &Path) -> anyhow::Result<PathBuf> {
    let file = token_dir.join(format!("{TENANT}-publish.token"));
    if !file.exists() {
        let token = TokenBook { store: plane.store() }.issue(&Role::Tenant {
            tenant: TENANT.into(),
        })?;
        write_secret(&file, &token)?;
    }
    Ok(file)
}

/// Starts both ingest servers over `root`; `listens` are (stream, admin) listeners.
pub async fn start(
    control: SocketAddr,
    token_dir: &Path,
    root: &Path,
    listens: [(SocketAddr, SocketAddr); 2],
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<RunningLive>> {
    let mut running = Vec::new();
    for (name, (listen, admin_listen)) in SERVERS.iter().zip(listens) {
        let settings = LiveSettings {
            root: root.to_path_buf(),
            listen,
            admin_listen,
            cluster: "ingest".into(),
            control: LiveControlLink {
                url: format!("http://{control}"),
                token_file: token_dir.join(format!("{name}.token")),
                name: name.to_string(),
                ..LiveControlLink::default()
            },
            ..LiveSettings::default()
        };
        let live = strata_live::start(settings, stop.clone())
            .await
            .with_context(|| format!("starting ingest server {name}"))?;
        running.push(live);
    }
    Ok(running)
}

/// The ffmpeg command that publishes to the first ingest server, and where to play it.
pub fn print_live(live: &[RunningLive], edge: SocketAddr, token_file: &Path) {
    let Some(first) = live.first() else { return };
    let token_file = std::fs::canonicalize(token_file).unwrap_or_else(|_| token_file.to_path_buf());
    println!("Live: an ingest cluster of {} servers (first: http://{}). Publish (Ctrl-C ffmpeg to end; archived after the tenant's idle time, or at once when ffmpeg finishes):", live.len(), first.local_addr);
    println!(
        "  ffmpeg -re -f lavfi -i testsrc=size=640x360:rate=25 -f lavfi -i sine -t 60 -c:v libx264 -g 50 -c:a aac -f hls -hls_time 2 -hls_flags delete_segments -method PUT -headers \"Authorization: Bearer $(cat {})\"$'\\r\\n' http://{}/{TENANT}/my-live/index.m3u8",
        token_file.display(),
        first.local_addr
    );
    println!("  ffplay http://{edge}/{TENANT}/my-live/index.m3u8     # live through the edge; after the end, the archived recording at the same URL");
    println!("  curl -s http://{}/metrics | grep ^strata_live   # curl -s -H \"Authorization: Bearer $(cat $STRATA_TOKEN_FILE)\" $STRATA_CONTROL/v1/live", first.admin_addr);
}
