//! Contents and their assets in the registry (`contents/{tenant}/{content}`): each asset's
//! kind, codec, bitrate, resolution and language, its size, SHA-256 and ETag, and where the
//! content has been placed. The same record becomes the `assets.json` a player fetches
//! through the edge (`/{tenant}/{content}/assets.json`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::registry::{RegistryError, RegistryStore};

use strata_wire::assets::{AssetDecl, AssetKind, AssetList, AssetRecord, ListedAsset};

/// Where a content is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentState {
    /// Uploaded and queued: being copied to its clusters and the archive.
    Placing,
    /// Everywhere its tenant's rules say.
    Ready,
}

/// A content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRecord {
    pub tenant: String,
    pub content: String,
    pub assets: Vec<AssetRecord>,
    pub state: ContentState,
    pub hot: bool,
    /// Edges the content was pushed to because it is hot.
    #[serde(default)]
    pub hot_edges: Vec<String>,
    /// Storage servers and "archive" that hold every asset.
    #[serde(default)]
    pub placed: BTreeSet<String>,
    pub created_unix: u64,
}

impl ContentRecord {
    pub fn bytes(&self) -> u64 {
        self.assets.iter().map(|a| a.decl.size).sum()
    }

    /// The asset list players read (`assets.json`).
    pub fn asset_list_json(&self) -> Vec<u8> {
        let list = AssetList {
            tenant: self.tenant.clone(),
            content: self.content.clone(),
            assets: self
                .assets
                .iter()
                .map(|a| ListedAsset {
                    name: a.decl.name.clone(),
                    url: format!("/{}/{}/{}", self.tenant, self.content, a.decl.name),
                    kind: a.decl.kind,
                    codec: a.decl.codec.clone(),
                    bitrate: a.decl.bitrate,
                    resolution: a.decl.resolution.clone(),
                    language: a.decl.language.clone(),
                    size: a.decl.size,
                    etag: a.etag.clone(),
                    sha256: a.sha256.clone(),
                })
                .collect(),
        };
        serde_json::to_vec_pretty(&list).unwrap_or_default()
    }
}

#[derive(Debug, Error)]
pub enum ContentError {
    #[error("no content {content} of tenant {tenant}")]
    NoContent { tenant: String, content: String },
    #[error("registry record {key} is not valid JSON: {message}")]
    Corrupt { key: String, message: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

pub fn content_key(tenant: &str, content: &str) -> String {
    format!("contents/{tenant}/{content}")
}

/// Reads content records.
pub struct ContentBook<'a> {
    pub store: &'a dyn RegistryStore,
}

impl ContentBook<'_> {
    pub fn get(&self, tenant: &str, content: &str) -> Result<ContentRecord, ContentError> {
        let key = content_key(tenant, content);
        let entry = self.store.get(&key)?.ok_or_else(|| ContentError::NoContent {
            tenant: tenant.into(),
            content: content.into(),
        })?;
        decode(&key, &entry.value)
    }

    /// A tenant's contents, or everyone's with `tenant` None.
    pub fn list(&self, tenant: Option<&str>) -> Result<Vec<ContentRecord>, ContentError> {
        let prefix = match tenant {
            Some(t) => format!("contents/{t}/"),
            None => "contents/".into(),
        };
        self.store
            .list(&prefix)?
            .into_iter()
            .map(|e| decode(&e.key, &e.value))
            .collect()
    }

    /// Bytes a tenant's contents take (the quota's usage).
    pub fn usage(&self, tenant: &str) -> Result<u64, ContentError> {
        Ok(self.list(Some(tenant))?.iter().map(ContentRecord::bytes).sum())
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<ContentRecord, ContentError> {
    serde_json::from_slice(bytes).map_err(|e| ContentError::Corrupt {
        key: key.into(),
        message: e.to_string(),
    })
}

/// Guesses an asset's kind, resolution and language from its file name (`video-1080p.mp4`,
/// `audio-en.aac`, `subs-fr.vtt`, `thumb-01.jpg`, `master.m3u8`).
pub fn describe_by_name(name: &str, size: u64) -> AssetDecl {
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map_or("", |(_, e)| e);
    let stem = lower.rsplit_once('.').map_or(lower.as_str(), |(s, _)| s);
    let kind = match ext {
        "vtt" | "srt" | "ttml" => AssetKind::Subtitles,
        "jpg" | "jpeg" | "png" | "webp" => AssetKind::Thumbnail,
        "m3u8" | "mpd" => AssetKind::Manifest,
        "aac" | "m4a" | "mp3" | "opus" => AssetKind::Audio,
        "mp4" | "m4v" | "ts" | "webm" | "mkv" if stem.starts_with("audio") => AssetKind::Audio,
        "mp4" | "m4v" | "ts" | "webm" | "mkv" => AssetKind::Video,
        _ => AssetKind::Other,
    };
    let parts: Vec<&str> = stem.split(['-', '_', '.']).collect();
    let resolution = parts
        .iter()
        .find(|p| p.len() >= 4 && p.ends_with('p') && p[..p.len() - 1].bytes().all(|b| b.is_ascii_digit()))
        .map(|p| p.to_string());
    // A bitrate in the name: `2500k`, `2500kbps`, `6m`, `6mbps`.
    let bitrate = parts.iter().find_map(|p| {
        let (digits, scale) = if let Some(d) = p.strip_suffix("kbps").or_else(|| p.strip_suffix('k')) {
            (d, 1_000)
        } else if let Some(d) = p.strip_suffix("mbps").or_else(|| p.strip_suffix('m')) {
            (d, 1_000_000)
        } else {
            return None;
        };
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u64>().ok().map(|n| n * scale))
            .flatten()
    });
    let language = match kind {
        AssetKind::Audio | AssetKind::Subtitles => parts
            .iter()
            .skip(1)
            .find(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_lowercase()))
            .map(|p| p.to_string()),
        _ => None,
    };
    AssetDecl {
        name: name.into(),
        size,
        kind,
        codec: None,
        bitrate: bitrate.filter(|_| matches!(kind, AssetKind::Video | AssetKind::Audio)),
        resolution,
        language,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_say_kind_resolution_and_language() {
        let v = describe_by_name("video-1080p.mp4", 10);
        assert_eq!(
            (v.kind, v.resolution.as_deref()),
            (AssetKind::Video, Some("1080p"))
        );
        let a = describe_by_name("audio-en.aac", 1);
        assert_eq!((a.kind, a.language.as_deref()), (AssetKind::Audio, Some("en")));
        let s = describe_by_name("subs-fr.vtt", 1);
        assert_eq!(
            (s.kind, s.language.as_deref()),
            (AssetKind::Subtitles, Some("fr"))
        );
        assert_eq!(describe_by_name("thumb-01.jpg", 1).kind, AssetKind::Thumbnail);
        assert_eq!(describe_by_name("master.m3u8", 1).kind, AssetKind::Manifest);
        assert_eq!(describe_by_name("notes.txt", 1).kind, AssetKind::Other);
        assert_eq!(
            describe_by_name("video-720p-3000k.mp4", 1).bitrate,
            Some(3_000_000)
        );
        assert_eq!(describe_by_name("audio-en-128kbps.aac", 1).bitrate, Some(128_000));
        assert_eq!(describe_by_name("video-1080p.mp4", 1).bitrate, None);
    }
}
