//! A content's assets as they travel: what an uploader declares for each asset (kind, codec,
//! bitrate, resolution, language, size), what the control plane records once it is ingested
//! (SHA-256, ETag), and the asset list players and `strata fetch` read (`assets.json` beside
//! the assets).

use serde::{Deserialize, Serialize};

/// The asset list's file name, placed beside the assets.
pub const ASSET_LIST: &str = "assets.json";

/// What an asset is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetKind {
    Video,
    Audio,
    Subtitles,
    Thumbnail,
    Manifest,
    Other,
}

/// An asset's description as the uploader declares it (sizes are checked on upload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetDecl {
    pub name: String,
    pub size: u64,
    #[serde(default = "other")]
    pub kind: AssetKind,
    #[serde(default)]
    pub codec: Option<String>,
    #[serde(default)]
    pub bitrate: Option<u64>,
    #[serde(default)]
    pub resolution: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
}

fn other() -> AssetKind {
    AssetKind::Other
}

/// An ingested asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetRecord {
    #[serde(flatten)]
    pub decl: AssetDecl,
    pub sha256: String,
    /// The strong ETag the storage tier serves for it.
    pub etag: String,
}

/// The asset list of one content (`/{tenant}/{content}/assets.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetList {
    pub tenant: String,
    pub content: String,
    pub assets: Vec<ListedAsset>,
}

/// One asset in the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedAsset {
    pub name: String,
    /// Its path on any edge: `/{tenant}/{content}/{name}`.
    pub url: String,
    #[serde(rename = "type")]
    pub kind: AssetKind,
    #[serde(default)]
    pub codec: Option<String>,
    /// Bits per second.
    #[serde(default)]
    pub bitrate: Option<u64>,
    /// `WIDTHxHEIGHT` or `HEIGHTp`.
    #[serde(default)]
    pub resolution: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    pub size: u64,
    #[serde(default)]
    pub etag: String,
    pub sha256: String,
}

impl ListedAsset {
    /// The height from `WIDTHxHEIGHT` or `HEIGHTp`.
    pub fn height(&self) -> Option<u32> {
        let r = self.resolution.as_deref()?.trim();
        match r.split_once('x') {
            Some((_, h)) => h.trim().parse().ok(),
            None => r.strip_suffix('p')?.parse().ok(),
        }
    }

    /// The bitrate the list gives, else one assumed from the height (a common H.264 ladder:
    /// 2160p 16, 1440p 9, 1080p 6, 720p 3, 480p 1.2, lower 0.8 Mbit/s; 2 Mbit/s without one).
    pub fn bitrate_bps(&self) -> u64 {
        self.bitrate.unwrap_or(match self.height() {
            Some(h) if h >= 2160 => 16_000_000,
            Some(h) if h >= 1440 => 9_000_000,
            Some(h) if h >= 1080 => 6_000_000,
            Some(h) if h >= 720 => 3_000_000,
            Some(h) if h >= 480 => 1_200_000,
            Some(_) => 800_000,
            None => 2_000_000,
        })
    }
}
