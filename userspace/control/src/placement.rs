//! One placement step: copy a content's files to one target — a storage server (over its admin
//! listener: `GET /v1/objects/...` says what it holds, `PUT` sends the bytes with their SHA-256)
//! or the archive directory (a local copy: temporary file, fsync, rename). A target that already
//! holds the same bytes is skipped, which makes every step idempotent.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::contents::ContentRecord;
use super::registry::RegistryStore;
use super::servers::ServerBook;
use super::work_queue::{Place, WorkItem, WorkKind};
use strata_wire::assets::ASSET_LIST;
use strata_wire::client::{ClientError, ReadTap, ServiceClient};
use strata_wire::content_digest::{set_sha256_xattr, sha256_file};
use strata_wire::objects::ObjectInfo;

/// Where placement reads from and writes to.
pub struct Placer {
    pub store: Arc<dyn RegistryStore>,
    pub staging_root: PathBuf,
    pub archive_root: PathBuf,
    /// The key storage servers accept placement requests with.
    pub placement_key: String,
    /// Bytes copied so far (progress and metrics).
    pub bytes_copied: Arc<AtomicU64>,
}

/// A storage server's placement endpoint (`/v1/objects/...` on its admin listener).
pub struct StorageObjects {
    client: ServiceClient,
}

impl StorageObjects {
    pub fn new(admin_addr: std::net::SocketAddr, placement_key: &str, timeout: Duration) -> StorageObjects {
        StorageObjects {
            client: ServiceClient::new(&format!("http://{admin_addr}"), placement_key, timeout),
        }
    }

    fn path(tenant: &str, content: &str, name: &str) -> String {
        format!("/v1/objects/{tenant}/{content}/{name}")
    }

    /// Whether the server holds the object with this SHA-256 (false: missing or different).
    pub fn holds(&self, tenant: &str, content: &str, name: &str, sha: &str) -> Result<bool, ClientError> {
        match self.client.get::<ObjectInfo>(&Self::path(tenant, content, name)) {
            Ok(info) => Ok(info.sha256 == sha),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends `len` bytes with their SHA-256; what the server stored.
    pub fn put(
        &self,
        tenant: &str,
        content: &str,
        name: &str,
        body: &mut dyn Read,
        len: u64,
        sha: &str,
    ) -> Result<ObjectInfo, ClientError> {
        self.client.put_stream(
            &Self::path(tenant, content, name),
            body,
            len,
            &[("x-strata-sha256", sha)],
        )
    }
}

impl Placer {
    /// The source of `name` for `item` and its expected SHA-256.
    fn source(
        &self,
        item: &WorkItem,
        record: &ContentRecord,
        name: &str,
    ) -> Result<(PathBuf, String), String> {
        let path = match &item.kind {
            WorkKind::Place { staging } => self.staging_root.join(staging).join(name),
            WorkKind::Restore { .. } => self
                .archive_root
                .join(&item.tenant)
                .join(&item.content)
                .join(name),
        };
        let sha = match record.assets.iter().find(|a| a.decl.name == name) {
            Some(a) => a.sha256.clone(),
            None => sha256_file(&path).map_err(|e| format!("reading {}: {e}", path.display()))?,
        };
        Ok((path, sha))
    }

    /// The files an item moves.
    fn files(item: &WorkItem, record: &ContentRecord) -> Vec<String> {
        match &item.kind {
            WorkKind::Place { .. } => record
                .assets
                .iter()
                .map(|a| a.decl.name.clone())
                .chain(std::iter::once(ASSET_LIST.to_string()))
                .collect(),
            WorkKind::Restore { assets } => assets.clone(),
        }
    }

    /// Copies every file of `item` to `place`.
    pub fn place(&self, item: &WorkItem, record: &ContentRecord, place: &Place) -> Result<(), String> {
        let server = match place {
            Place::Archive => None,
            Place::Server { name, .. } => Some((name.as_str(), self.storage(name)?)),
        };
        for name in Self::files(item, record) {
            let (src, sha) = self.source(item, record, &name)?;
            match &server {
                None => self.to_archive(item, &name, &src, &sha)?,
                Some((server, objects)) => self.to_server(item, server, objects, &name, &src, &sha)?,
            }
        }
        Ok(())
    }

    fn to_archive(&self, item: &WorkItem, name: &str, src: &Path, sha: &str) -> Result<(), String> {
        let dir = self.archive_root.join(&item.tenant).join(&item.content);
        let dest = dir.join(name);
        if dest.exists() && sha256_file(&dest).ok().as_deref() == Some(sha) {
            return Ok(());
        }
        let fail = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
        let tmp_dir = self.archive_root.join(strata_wire::objects::PUT_DIR);
        std::fs::create_dir_all(&tmp_dir).map_err(|e| fail("creating", &tmp_dir, e))?;
        std::fs::create_dir_all(&dir).map_err(|e| fail("creating", &dir, e))?;
        let tmp = tmp_dir.join(format!("{}-{name}", item.id));
        // Hash what is copied: the archive copy must be the bytes the content record names.
        let copied_sha = {
            let mut from = std::fs::File::open(src).map_err(|e| fail("opening", src, e))?;
            let mut to = std::fs::File::create(&tmp).map_err(|e| fail("creating", &tmp, e))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = from.read(&mut buf).map_err(|e| fail("reading", src, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                to.write_all(&buf[..n]).map_err(|e| fail("writing", &tmp, e))?;
                self.bytes_copied.fetch_add(n as u64, Ordering::Relaxed);
            }
            to.sync_all().map_err(|e| fail("syncing", &tmp, e))?;
            strata_wire::content_digest::hex(&hasher.finalize())
        };
        if copied_sha != sha {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!(
                "{} does not match its recorded SHA-256 (the staging or archive copy is damaged)",
                src.display()
            ));
        }
        let _ = set_sha256_xattr(&tmp, sha);
        std::fs::rename(&tmp, &dest).map_err(|e| fail("renaming into", &dest, e))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail("syncing", &dir, e))?;
        Ok(())
    }

    /// The placement endpoint of registered storage server `server`, if it is up.
    fn storage(&self, server: &str) -> Result<StorageObjects, String> {
        let servers = ServerBook::all(self.store.as_ref()).map_err(|e| e.to_string())?;
        let Some(state) = servers.iter().find(|s| s.record.name == server) else {
            return Err(format!("storage server {server} is not registered"));
        };
        if !state.up {
            return Err(format!(
                "storage server {server} is down (no heartbeat); waiting for it"
            ));
        }
        Ok(StorageObjects::new(
            state.record.admin_addr,
            &self.placement_key,
            Duration::from_secs(3600),
        ))
    }

    fn to_server(
        &self,
        item: &WorkItem,
        server: &str,
        objects: &StorageObjects,
        name: &str,
        src: &Path,
        sha: &str,
    ) -> Result<(), String> {
        if objects
            .holds(&item.tenant, &item.content, name, sha)
            .map_err(|e| e.to_string())?
        {
            return Ok(());
        }
        let mut file = std::fs::File::open(src).map_err(|e| format!("opening {}: {e}", src.display()))?;
        let len = file
            .metadata()
            .map_err(|e| format!("reading {}: {e}", src.display()))?
            .len();
        let mut counted = ReadTap::new(&mut file, |n| {
            self.bytes_copied.fetch_add(n as u64, Ordering::Relaxed);
        });
        let stored = objects
            .put(&item.tenant, &item.content, name, &mut counted, len, sha)
            .map_err(|e| e.to_string())?;
        if stored.sha256 != sha {
            return Err(format!(
                "{server} stored {name} with SHA-256 {} instead of {sha}",
                stored.sha256
            ));
        }
        Ok(())
    }
}
