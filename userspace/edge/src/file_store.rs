//! The on-disk store a server serves from: `{root}/{tenant}/{content_id}/{asset}`.
//!
//! Files are opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` relative to the root
//! directory, so the kernel itself refuses any path (including a symlink inside the tree) that
//! would lead outside the root. Each open file carries the validators the HTTP layer needs
//! (length, strong ETag, Last-Modified) computed once from `fstat`.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, Mode};
use thiserror::Error;

use strata_http::content_path::ContentPath;

/// Why an asset could not be opened.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("store root {path}: {source}")]
    Root { path: PathBuf, source: Errno },
    #[error("no such asset {0}")]
    NotFound(String),
    #[error("permission denied for asset {0}")]
    Forbidden(String),
    #[error("reading asset {path}: {source}")]
    Io { path: String, source: Errno },
}

/// A directory of content, opened once.
#[derive(Debug)]
pub struct FileStore {
    root: OwnedFd,
    root_path: PathBuf,
    /// Files open anywhere in the process, shared: ten thousand viewers of one asset hold one
    /// descriptor, not ten thousand (the fd limit is the edge's scarcest resource).
    shared: Mutex<HashMap<String, SharedFile>>,
}

/// A shared open file: weak, so the last connection to drop it closes the descriptor.
#[derive(Debug)]
struct SharedFile {
    file: Weak<File>,
    len: u64,
    dev: u64,
    ino: u64,
    mtime: SystemTime,
    tag: Option<ContentTag>,
}

/// Dead entries are swept from the shared-file table when it grows past this.
const SHARED_SWEEP_AT: usize = 4096;

/// An open asset and the identity its HTTP validators derive from. Kept small (no strings):
/// a keep-alive connection holds one for as long as it lives.
#[derive(Debug, Clone)]
pub struct OpenAsset {
    pub file: Arc<File>,
    pub len: u64,
    pub dev: u64,
    pub ino: u64,
    pub mtime: SystemTime,
    /// The content's own tag (first 128 bits of its SHA-256, from the `user.strata.sha256`
    /// extended attribute placement writes): the same ETag on every server that holds it.
    pub tag: Option<ContentTag>,
}

/// 128 bits of a file's SHA-256.
pub type ContentTag = [u8; 16];

/// Reads a file's content tag from the `user.strata.sha256` extended attribute
/// ([`strata_wire::content_digest::SHA256_XATTR`]), if it has a valid one.
pub fn read_content_tag(fd: std::os::fd::BorrowedFd<'_>) -> Option<ContentTag> {
    let mut buf = [0u8; 64];
    let name = c"user.strata.sha256";
    // SAFETY: fgetxattr writes at most buf.len() bytes into buf.
    let n = unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    // 64 hex digits (placement) or the 32 an edge fill copies from the ETag.
    if n != 64 && n != 32 {
        return None;
    }
    let mut tag = [0u8; 16];
    for (i, t) in tag.iter_mut().enumerate() {
        let hex = std::str::from_utf8(&buf[i * 2..i * 2 + 2]).ok()?;
        *t = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(tag)
}

impl OpenAsset {
    /// Strong ETag, quoted: the content tag when the file has one, else inode, length and
    /// modification time in nanoseconds.
    pub fn etag(&self) -> String {
        if let Some(tag) = &self.tag {
            let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
            return format!("\"{hex}\"");
        }
        let mtime_ns = self
            .mtime
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("\"{:x}-{:x}-{:x}\"", self.ino, self.len, mtime_ns)
    }

    /// Last-Modified as an IMF-fixdate.
    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.mtime)
    }
}

impl FileStore {
    /// Opens `root`, which must be a directory.
    pub fn open(root: &Path) -> Result<FileStore, StoreError> {
        let fd = open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|source| StoreError::Root {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(FileStore {
            root: fd,
            root_path: root.to_path_buf(),
            shared: Mutex::new(HashMap::new()),
        })
    }

    /// The directory this store serves.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// Opens a content asset for reading, refusing anything that resolves outside the root.
    pub fn open_asset(&self, path: &ContentPath) -> Result<OpenAsset, StoreError> {
        let rel = path.relative();
        if let Some(asset) = self.shared_asset(&rel, path) {
            return Ok(asset);
        }
        let asset = self.open_new(&rel)?;
        if let Ok(mut shared) = self.shared.lock() {
            if shared.len() >= SHARED_SWEEP_AT {
                shared.retain(|_, f| f.file.strong_count() > 0);
            }
            let entry = SharedFile {
                file: Arc::downgrade(&asset.file),
                len: asset.len,
                dev: asset.dev,
                ino: asset.ino,
                mtime: asset.mtime,
                tag: asset.tag,
            };
            shared.insert(rel, entry);
        }
        Ok(asset)
    }

    /// The file another connection has open for `rel`, if it is still what the path names.
    fn shared_asset(&self, rel: &str, path: &ContentPath) -> Option<OpenAsset> {
        let asset = {
            let shared = self.shared.lock().ok()?;
            let f = shared.get(rel)?;
            OpenAsset {
                file: f.file.upgrade()?,
                len: f.len,
                dev: f.dev,
                ino: f.ino,
                mtime: f.mtime,
                tag: f.tag,
            }
        };
        self.still_current(path, &asset).then_some(asset)
    }

    /// Opens `rel` beneath the root.
    fn open_new(&self, rel: &str) -> Result<OpenAsset, StoreError> {
        let rel = rel.to_string();
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(self.root.as_fd(), rel.as_str(), how).map_err(|e| match e {
            Errno::ENOENT | Errno::ENOTDIR | Errno::EXDEV | Errno::ELOOP | Errno::ENAMETOOLONG => {
                if e == Errno::EXDEV {
                    tracing::warn!(asset = %rel, "refused: asset path resolves outside the store root");
                }
                StoreError::NotFound(format!("/{rel}"))
            }
            Errno::EACCES | Errno::EPERM => StoreError::Forbidden(format!("/{rel}")),
            source => StoreError::Io {
                path: rel.clone(),
                source,
            },
        })?;
        let st = fstat(&fd).map_err(|source| StoreError::Io {
            path: rel.clone(),
            source,
        })?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(StoreError::NotFound(format!("/{rel}")));
        }
        let tag = read_content_tag(fd.as_fd());
        let file = File::from(fd);
        advise(&file, libc::POSIX_FADV_SEQUENTIAL, 0, 0);
        let mtime = UNIX_EPOCH
            + Duration::new(
                st.st_mtime.max(0) as u64,
                st.st_mtime_nsec.clamp(0, 999_999_999) as u32,
            );
        Ok(OpenAsset {
            file: Arc::new(file),
            len: st.st_size.max(0) as u64,
            dev: st.st_dev,
            ino: st.st_ino,
            mtime,
            tag,
        })
    }

    /// True if `path` still names the same, unchanged file as `asset` (cheap: one fstatat),
    /// so a keep-alive connection can keep using its open descriptor.
    pub fn still_current(&self, path: &ContentPath, asset: &OpenAsset) -> bool {
        let rel = path.relative();
        match fstatat(self.root.as_fd(), rel.as_str(), nix::fcntl::AtFlags::empty()) {
            Ok(st) => {
                st.st_ino == asset.ino
                    && st.st_dev == asset.dev
                    && st.st_size.max(0) as u64 == asset.len
                    && asset.mtime
                        == UNIX_EPOCH
                            + Duration::new(
                                st.st_mtime.max(0) as u64,
                                st.st_mtime_nsec.clamp(0, 999_999_999) as u32,
                            )
            }
            Err(_) => false,
        }
    }
}

/// Gives the kernel a read-ahead hint; failures only cost performance, so they are ignored.
pub fn advise(file: &File, advice: libc::c_int, offset: u64, len: u64) {
    // SAFETY: posix_fadvise only reads its integer arguments; the fd is valid for `file`'s life.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            advice,
        );
    }
}

/// Content-Type from an asset's file extension.
pub fn content_type(asset: &str) -> &'static str {
    let ext = asset
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "m4a" => "audio/mp4",
        "m4s" => "video/iso.segment",
        "ts" => "video/mp2t",
        "webm" => "video/webm",
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "vtt" => "text/vtt",
        "srt" => "application/x-subrip",
        "json" => "application/json",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("t/c")).unwrap();
        dir
    }

    #[test]
    fn opens_a_file_and_computes_validators() {
        let root = temp_root("open");
        std::fs::write(root.join("t/c/a.mp4"), b"hello").unwrap();
        let store = FileStore::open(&root).unwrap();
        let path = ContentPath::parse("/t/c/a.mp4").unwrap();
        let asset = store.open_asset(&path).unwrap();
        assert_eq!(asset.len, 5);
        let etag = asset.etag();
        assert!(etag.starts_with('"') && etag.ends_with('"'));
        assert!(store.still_current(&path, &asset));
        std::fs::write(root.join("t/c/a.mp4"), b"hello world").unwrap();
        assert!(!store.still_current(&path, &asset));
    }

    #[test]
    fn symlink_out_of_the_root_is_not_found() {
        let root = temp_root("symlink");
        std::os::unix::fs::symlink("/etc/passwd", root.join("t/c/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../", root.join("t/up")).unwrap();
        let store = FileStore::open(&root).unwrap();
        for p in ["/t/c/passwd", "/t/up/x"] {
            let path = ContentPath::parse(p).unwrap();
            assert!(
                matches!(store.open_asset(&path), Err(StoreError::NotFound(_))),
                "{p}"
            );
        }
    }

    #[test]
    fn directories_are_not_assets() {
        let root = temp_root("dir");
        std::fs::create_dir_all(root.join("t/c/d")).unwrap();
        let store = FileStore::open(&root).unwrap();
        let path = ContentPath::parse("/t/c/d").unwrap();
        assert!(matches!(store.open_asset(&path), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn content_types_follow_extensions() {
        assert_eq!(content_type("x.MP4"), "video/mp4");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
