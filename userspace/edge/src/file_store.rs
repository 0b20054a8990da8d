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

use crate::small_bodies::{FileIdentity, SmallBodies, SmallBody};

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
    /// Small files' bytes held in memory (see `small_bodies`); empty unless given a budget.
    small: SmallBodies,
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

/// Strong ETag, quoted: the content tag when the file has one, else inode, length and
/// modification time in nanoseconds.
pub fn etag_of(tag: Option<&ContentTag>, id: &FileIdentity) -> String {
    if let Some(tag) = tag {
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        return format!("\"{hex}\"");
    }
    let mtime_ns = id
        .mtime
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("\"{:x}-{:x}-{:x}\"", id.ino, id.len, mtime_ns)
}

impl OpenAsset {
    /// What the file was when opened.
    pub fn identity(&self) -> FileIdentity {
        FileIdentity {
            len: self.len,
            dev: self.dev,
            ino: self.ino,
            mtime: self.mtime,
        }
    }

    /// Strong ETag, quoted (see [`etag_of`]).
    pub fn etag(&self) -> String {
        etag_of(self.tag.as_ref(), &self.identity())
    }

    /// Last-Modified as an IMF-fixdate.
    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.mtime)
    }
}

impl SmallBody {
    /// Strong ETag, quoted, the same as the file's (see [`etag_of`]).
    pub fn etag(&self) -> String {
        etag_of(self.tag.as_ref(), &self.identity)
    }

    /// Last-Modified as an IMF-fixdate.
    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.identity.mtime)
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
            small: SmallBodies::new(0),
        })
    }

    /// Keeps up to `budget` bytes of small files in memory.
    pub fn with_small_bodies(mut self, budget: u64) -> FileStore {
        self.small = SmallBodies::new(budget);
        self
    }

    /// The small body held in memory for `path`, if the file there is still the one it was
    /// read from (one fstatat); a stale entry is dropped.
    pub fn small_body(&self, path: &ContentPath) -> Option<Arc<SmallBody>> {
        let rel = path.relative();
        let body = self.small.get(&rel)?;
        if self.identity_of(&rel) == Some(body.identity) {
            return Some(body);
        }
        self.small.remove(&rel);
        None
    }

    /// Reads `asset`, just opened for `path`, into memory if it is small enough to keep.
    pub fn keep_small(&self, path: &ContentPath, asset: &OpenAsset) -> Option<Arc<SmallBody>> {
        use std::os::unix::fs::FileExt as _;
        if !self.small.keeps(asset.len) {
            return None;
        }
        let mut bytes = vec![0; asset.len as usize];
        asset.file.read_exact_at(&mut bytes, 0).ok()?;
        let body = SmallBody::new(bytes, asset.identity(), asset.tag);
        Some(self.small.insert(&path.relative(), body))
    }

    /// Bytes and files of small bodies held in memory.
    pub fn small_held(&self) -> (u64, usize) {
        self.small.held()
    }

    /// What `rel` names now (one fstatat), if anything.
    fn identity_of(&self, rel: &str) -> Option<FileIdentity> {
        let st = fstatat(self.root.as_fd(), rel, nix::fcntl::AtFlags::empty()).ok()?;
        Some(FileIdentity {
            len: st.st_size.max(0) as u64,
            dev: st.st_dev,
            ino: st.st_ino,
            mtime: UNIX_EPOCH
                + Duration::new(
                    st.st_mtime.max(0) as u64,
                    st.st_mtime_nsec.clamp(0, 999_999_999) as u32,
                ),
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
        self.identity_of(&path.relative()) == Some(asset.identity())
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
