//! Receives one published file: the request body (chunked or with Content-Length, as hyper
//! decodes it) is written to a dot-named `.part` beside its destination as it arrives, synced,
//! and renamed into place only when it is whole. A body that breaks off, stalls, grows past the
//! limit or meets a full disk leaves nothing servable.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use futures_util::StreamExt as _;
use thiserror::Error;
use tokio::io::AsyncWriteExt as _;

static PART_SEQ: AtomicU64 = AtomicU64::new(0);

/// Why a body was not stored.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("{name}: body larger than the {max}-byte limit")]
    TooLarge { name: String, max: u64 },
    #[error("{name}: body broke off after {after} bytes: {message}")]
    BrokenOff {
        name: String,
        after: u64,
        message: String,
    },
    #[error("{name}: no body byte for {stall:?} after {after} bytes")]
    Stalled {
        name: String,
        after: u64,
        stall: Duration,
    },
    #[error("{name}: the recording disk is full ({after} bytes written, removed)")]
    NoSpace { name: String, after: u64 },
    #[error("{name}: writing {path}: {message}")]
    Io {
        name: String,
        path: String,
        message: String,
    },
}

impl SinkError {
    /// The HTTP status the publisher gets.
    pub fn status(&self) -> u16 {
        match self {
            SinkError::TooLarge { .. } => 413,
            SinkError::BrokenOff { .. } => 400,
            SinkError::Stalled { .. } => 408,
            SinkError::NoSpace { .. } => 507,
            SinkError::Io { .. } => 500,
        }
    }
}

/// Writes `body` to `dir/name` (through `.name.*.part`); returns the bytes written.
/// `on_bytes` sees every chunk's length as it arrives.
pub async fn receive(
    dir: &Path,
    name: &str,
    body: Body,
    max: u64,
    stall: Duration,
    on_bytes: impl Fn(u64),
) -> Result<u64, SinkError> {
    let part = dir.join(format!(
        ".{name}.{}.{}.part",
        std::process::id(),
        PART_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    // Removes the part unless it was renamed, also when this future is dropped mid-body.
    let mut guard = PartGuard(Some(part.clone()));
    let written = write_part(&part, name, body, max, stall, on_bytes).await?;
    let dest = dir.join(name);
    tokio::fs::rename(&part, &dest)
        .await
        .map_err(|e| io_error(name, &dest, &e, written))?;
    guard.0 = None;
    Ok(written)
}

/// Deletes a `.part` file when dropped.
struct PartGuard(Option<std::path::PathBuf>);

impl Drop for PartGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn write_part(
    part: &Path,
    name: &str,
    body: Body,
    max: u64,
    stall: Duration,
    on_bytes: impl Fn(u64),
) -> Result<u64, SinkError> {
    let mut file = tokio::fs::File::create(part)
        .await
        .map_err(|e| io_error(name, part, &e, 0))?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    loop {
        let next = match tokio::time::timeout(stall, stream.next()).await {
            Ok(n) => n,
            Err(_) => {
                return Err(SinkError::Stalled {
                    name: name.into(),
                    after: written,
                    stall,
                })
            }
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| SinkError::BrokenOff {
            name: name.into(),
            after: written,
            message: e.to_string(),
        })?;
        written += chunk.len() as u64;
        if written > max {
            return Err(SinkError::TooLarge {
                name: name.into(),
                max,
            });
        }
        on_bytes(chunk.len() as u64);
        file.write_all(&chunk)
            .await
            .map_err(|e| io_error(name, part, &e, written))?;
    }
    file.sync_data()
        .await
        .map_err(|e| io_error(name, part, &e, written))?;
    Ok(written)
}

fn io_error(name: &str, path: &Path, e: &std::io::Error, after: u64) -> SinkError {
    if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
        return SinkError::NoSpace {
            name: name.into(),
            after,
        };
    }
    SinkError::Io {
        name: name.into(),
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("strata-live-sink-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn a_whole_body_is_renamed_into_place_and_an_oversized_one_leaves_nothing() {
        let d = dir("a");
        let n = receive(
            &d,
            "a.ts",
            Body::from(vec![7u8; 1000]),
            4096,
            Duration::from_secs(5),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(n, 1000);
        assert_eq!(std::fs::read(d.join("a.ts")).unwrap().len(), 1000);
        let e = receive(
            &d,
            "b.ts",
            Body::from(vec![7u8; 5000]),
            4096,
            Duration::from_secs(5),
            |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(e.status(), 413);
        let left: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("a.ts")], "no .part, no b.ts");
        let _ = std::fs::remove_dir_all(&d);
    }
}
