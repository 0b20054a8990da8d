//! `strata ingest --tenant T --content C [--hot] DIR`: declares the directory's files to the
//! control plane (refused before any upload when the quota would be exceeded), uploads them
//! with a progress bar, commits, then follows the placement until the content is everywhere
//! its tenant's rules say.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::control_cli::IngestArgs;
use strata_control::contents::describe_by_name;
use strata_control::staging::IngestRequest;
use strata_wire::assets::AssetDecl;
use strata_wire::client::ReadTap;

/// The files of `dir` (regular files, not starting with '.'), sorted by name.
pub fn list_files(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String, u64)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let meta = entry
            .metadata()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        if meta.is_dir() {
            bail!(
                "{} is a directory: an ingest takes a flat directory of asset files",
                entry.path().display()
            );
        }
        if meta.is_file() {
            out.push((entry.path(), name, meta.len()));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    if out.is_empty() {
        bail!("{} holds no files to ingest", dir.display());
    }
    Ok(out)
}

/// Describes a file: kind, resolution and language from its name; codec, bitrate and
/// resolution from ffprobe when it is installed and understands the file.
pub fn describe(path: &Path, name: &str, size: u64) -> AssetDecl {
    let mut decl = describe_by_name(name, size);
    let probed = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,bit_rate,width,height:format=bit_rate",
            "-of",
            "json",
        ])
        .arg(path)
        .stderr(std::process::Stdio::null())
        .output();
    let Ok(out) = probed else { return decl };
    let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) else {
        return decl;
    };
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let main = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .or_else(|| streams.iter().find(|s| s["codec_type"] == "audio"));
    if let Some(s) = main {
        decl.codec = s["codec_name"].as_str().map(str::to_string);
        let rate = s["bit_rate"].as_str().or(v["format"]["bit_rate"].as_str());
        decl.bitrate = rate.and_then(|r| r.parse().ok());
        if let (Some(w), Some(h)) = (s["width"].as_u64(), s["height"].as_u64()) {
            decl.resolution = Some(format!("{w}x{h}"));
        }
    }
    decl
}

fn bar(len: u64, quiet: bool, template: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        b.set_style(style.progress_chars("=> "));
    }
    b
}

/// Runs the command.
pub fn run(args: &IngestArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let files = list_files(&args.dir)?;
    let client = args.client.client(Duration::from_secs(3600))?;
    let assets: Vec<AssetDecl> = files.iter().map(|(p, n, s)| describe(p, n, *s)).collect();
    let total: u64 = assets.iter().map(|a| a.size).sum();
    let request = IngestRequest {
        content: args.content.clone(),
        hot: args.hot,
        assets,
    };
    let opened: Value = client
        .post(&format!("/v1/tenants/{}/ingests", args.tenant), &request)
        .with_context(|| format!("strata ingest: {}/{} refused", args.tenant, args.content))?;
    let id = opened["id"]
        .as_str()
        .context("the control plane answered without an ingest id")?
        .to_string();
    eprintln!(
        "ingest {id}: {} files, {total} bytes for {}/{}",
        files.len(),
        args.tenant,
        args.content
    );
    let upload = bar(
        total,
        args.quiet,
        "uploading [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
    );
    for (path, name, size) in &files {
        upload.set_message(name.clone());
        let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut reader = ReadTap::new(&mut file, |n| upload.inc(n as u64));
        client
            .put_stream::<Value>(&format!("/v1/ingests/{id}/files/{name}"), &mut reader, *size, &[])
            .with_context(|| format!("uploading {}", path.display()))?;
    }
    upload.finish_with_message("uploaded");
    let committed: Value = client
        .post(&format!("/v1/ingests/{id}/commit"), &serde_json::json!({}))
        .context("committing the ingest")?;
    let work = committed["work"].as_str().unwrap_or_default().to_string();
    eprintln!(
        "committed: placement work item {work} queued (upload took {:.1?})",
        started.elapsed()
    );
    if args.no_wait {
        return Ok(());
    }
    let place = bar(1, args.quiet, "placing   [{bar:40}] {pos}/{len} targets {msg}");
    let mut said = String::new();
    loop {
        let shown: Value = client
            .get(&format!("/v1/tenants/{}/contents/{}", args.tenant, args.content))
            .context("following the placement")?;
        if shown["record"]["state"] == "ready" {
            place.finish_with_message("done");
            let placed: Vec<String> = shown["record"]["placed"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let done = format!(
                "{}/{} is ready ({} bytes in {:.1?}): on {}; asset list /{}/{}/assets.json",
                args.tenant,
                args.content,
                total,
                started.elapsed(),
                placed.join(", "),
                args.tenant,
                args.content
            );
            if args.quiet {
                tracing::info!("{done}");
            } else {
                println!("{done}");
            }
            return Ok(());
        }
        if let Some(item) = shown["work"].as_array().and_then(|w| w.first()) {
            let targets = item["targets"].as_array().cloned().unwrap_or_default();
            place.set_length(targets.len() as u64);
            place.set_position(targets.iter().filter(|t| t["done"] == true).count() as u64);
            let waiting: Vec<String> = targets
                .iter()
                .filter(|t| t["done"] == false && !t["last_error"].is_null())
                .map(|t| t["last_error"].as_str().unwrap_or_default().to_string())
                .collect();
            let msg = waiting.first().cloned().unwrap_or_default();
            if msg != said && !msg.is_empty() {
                place.println(format!("waiting: {msg}"));
                said = msg;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
