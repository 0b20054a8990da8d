//! `strata fetch -o PATH`: the whole asset, piece by piece from the session's servers, written
//! at its offsets into `PATH.part`, checked against the asset list's SHA-256, and only then
//! renamed to `PATH`: a wrong or partial download never appears as the output.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::asset_list::Asset;
use crate::session::Session;
use crate::trace::{Trace, TraceLine};
use crate::{Progress, Rediscover};

/// What a download did.
#[derive(Debug, Default)]
pub struct DownloadStats {
    pub bytes: u64,
    pub pieces: u64,
    pub hedged: u64,
    pub server_switches: u64,
    pub seconds: f64,
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Downloads `asset` to `out`.
pub fn download(
    session: &mut Session,
    asset: &Asset,
    out: &Path,
    trace: &mut Trace,
    rediscover: &mut Rediscover<'_>,
    progress: &mut dyn FnMut(&Progress),
) -> anyhow::Result<DownloadStats> {
    let part = PathBuf::from(format!("{}.part", out.display()));
    let file = File::create(&part).map_err(|e| anyhow::anyhow!("creating {}: {e}", part.display()))?;
    file.set_len(asset.size)
        .map_err(|e| anyhow::anyhow!("sizing {}: {e}", part.display()))?;
    let result = fill(session, asset, &file, trace, rediscover, progress);
    let stats = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    file.sync_all()?;
    let got = sha256_file(&part)?;
    if got != asset.sha256 {
        let _ = std::fs::remove_file(&part);
        anyhow::bail!(
            "{}: the downloaded bytes hash to {got}, the asset list says {}; nothing written",
            asset.name,
            asset.sha256
        );
    }
    std::fs::rename(&part, out)
        .map_err(|e| anyhow::anyhow!("renaming {} into place: {e}", part.display()))?;
    Ok(stats)
}

fn fill(
    session: &mut Session,
    asset: &Asset,
    file: &File,
    trace: &mut Trace,
    rediscover: &mut Rediscover<'_>,
    progress: &mut dyn FnMut(&Progress),
) -> anyhow::Result<DownloadStats> {
    let started = Instant::now();
    let mut stats = DownloadStats::default();
    let mut offset = 0u64;
    let mut since_probe = 0u32;
    while offset < asset.size {
        if Instant::now() >= session.valid_until {
            if let Some(d) = rediscover() {
                session.refresh(d);
            }
        }
        let len = session.piece_len(asset.size - offset, false);
        let piece = session.fetch(&asset.url, offset, offset + len - 1)?;
        file.write_all_at(&piece.fetched.bytes, offset)?;
        let from = &session.servers[piece.from].server;
        trace.write(&TraceLine {
            t_ms: started.elapsed().as_millis() as u64,
            event: if piece.hedged { "hedge" } else { "piece" },
            server: from.addr,
            region: from.region.clone(),
            offset,
            len,
            ms: piece.fetched.elapsed.as_millis() as u64,
            rendition: asset.name.clone(),
            why: if piece.hedged {
                "the piece was late; a second server was asked".into()
            } else {
                String::new()
            },
        });
        stats.pieces += 1;
        stats.hedged += u64::from(piece.hedged);
        stats.bytes += len;
        offset += len;
        progress(&Progress {
            done: offset,
            total: asset.size,
            server: from.addr,
            region: from.region.clone(),
            rendition: asset.name.clone(),
            rate_bps: session.servers[piece.from].rate_bps.unwrap_or(0.0),
        });
        since_probe += 1;
        if since_probe >= session.tuning.reprobe_every && offset < asset.size {
            since_probe = 0;
            session.probe(&asset.url, asset.size, false);
        }
        let decision = if piece.from != session.current {
            Some((piece.from, "a hedged piece came first from it".to_string()))
        } else {
            session.should_switch(None)
        };
        if let Some((to, why)) = decision {
            let from = session.servers[session.current].server.clone();
            let target = session.servers[to].server.clone();
            trace.write(&TraceLine {
                t_ms: started.elapsed().as_millis() as u64,
                event: "switch",
                server: target.addr,
                region: target.region.clone(),
                offset,
                len: 0,
                ms: 0,
                rendition: asset.name.clone(),
                why: format!("from {} ({}): {why}", from.addr, from.region),
            });
            tracing::info!(from = %from.addr, to = %target.addr, offset, %why, "fetch: switching server");
            session.current = to;
            stats.server_switches += 1;
        }
    }
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}
