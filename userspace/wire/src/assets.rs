//! A content's assets as they travel: what an uploader declares for each asset (kind, codec,
//! bitrate, resolution, language, size) and what the control plane records once it is
//! ingested (SHA-256, ETag). Players read them from `assets.json` beside the assets.

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
