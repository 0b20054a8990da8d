//! The demo data set `strata pop` creates in an empty data directory: a few tenants and
//! contents with assets from 128 KiB to 8 MiB, plus a real playable MP4 when ffmpeg is present,
//! on every storage cluster (each tenant's home, and the other as its replica).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context as _;

/// One generated asset: tenant, content, asset name, size in bytes.
pub const DEMO_ASSETS: &[(&str, &str, &str, u64)] = &[
    ("acme", "launch-trailer", "init.mp4", 128 * 1024),
    ("acme", "launch-trailer", "seg-0001.m4s", 512 * 1024),
    ("acme", "launch-trailer", "seg-0002.m4s", 2 * 1024 * 1024),
    ("acme", "launch-trailer", "video-1080p.mp4", 8 * 1024 * 1024),
    ("globex", "keynote-2026", "audio-en.m4a", 256 * 1024),
    ("globex", "keynote-2026", "video-720p.mp4", 4 * 1024 * 1024),
];

/// Deterministic pseudo-random bytes (xorshift64*), so demo files are the same everywhere.
pub fn pattern_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes the demo assets under `storage_root` and copies them to each of `replicas` (the other
/// storage clusters). Returns the (tenant, content, asset) triples written.
pub fn create(storage_root: &Path, replicas: &[&Path]) -> anyhow::Result<Vec<(String, String, String)>> {
    let mut written = Vec::new();
    for (i, (tenant, content, asset, size)) in DEMO_ASSETS.iter().enumerate() {
        let dir = storage_root.join(tenant).join(content);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(asset);
        let mut f = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        f.write_all(&pattern_bytes(i as u64 + 1, *size as usize))
            .with_context(|| format!("writing {}", path.display()))?;
        written.push((tenant.to_string(), content.to_string(), asset.to_string()));
    }
    let mp4_dir = storage_root.join("acme").join("test-card");
    match make_playable_mp4(&mp4_dir.join("video.mp4")) {
        Ok(()) => written.push(("acme".into(), "test-card".into(), "video.mp4".into())),
        Err(e) => tracing::info!("no playable MP4 in the demo: {e:#}"),
    }
    for replica in replicas {
        copy_tree(storage_root, replica)?;
    }
    Ok(written)
}

/// Encodes a 6-second test card with ffmpeg, if ffmpeg is installed.
fn make_playable_mp4(out: &Path) -> anyhow::Result<()> {
    let dir = out.parent().context("MP4 path has no parent")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=duration=6:size=640x360:rate=25",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=6",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ])
        .arg(out)
        .stdin(Stdio::null())
        .status()
        .context("ffmpeg is not installed (apt-get install ffmpeg)")?;
    anyhow::ensure!(status.success(), "ffmpeg failed with {status}");
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target).with_context(|| format!("copying to {}", target.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_deterministic_and_exact_length() {
        assert_eq!(pattern_bytes(7, 1001), pattern_bytes(7, 1001));
        assert_eq!(pattern_bytes(7, 1001).len(), 1001);
        assert_ne!(pattern_bytes(7, 64), pattern_bytes(8, 64));
    }
}
