//! `strata fetch -o PATH`: the whole asset, piece by piece from the session's servers, written
//! at its offsets into `PATH.part`, checked against the asset list's SHA-256, and only then
//! renamed to `PATH`: a wrong or partial download never appears as the output.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use strata_wire::content_digest::sha256_file;

use crate::asset_list::Asset;
use crate::session::{At, Session};
use crate::trace::Trace;
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
        let at = |offset| At {
            t_ms: started.elapsed().as_millis() as u64,
            offset,
            rendition: &asset.name,
        };
        session.trace_piece(trace, &at(offset), &piece, len);
        let from = &session.servers[piece.from].server;
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
        if session.after_piece(trace, &at(offset), piece.from, None) {
            stats.server_switches += 1;
        }
    }
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}
