//! Handing a running server over to a successor process (reload and upgrade).
//!
//! The old process starts the successor (the same binary for a reload, the binary on disk for
//! an upgrade) with its own arguments and environment, plus its listening sockets (their
//! descriptors inherited across exec, listed in `STRATA_LISTEN_FDS`, see `listen_fds`) and the
//! write end of a pipe (`STRATA_HANDOVER_FD`). The successor starts as usual, except that `bind`
//! takes the inherited sockets, and writes `ready` to the pipe once it accepts. Only then does
//! the old process stop accepting and drain: the listening sockets themselves never close, so
//! no connection is refused and none waiting in an accept queue is lost. A successor that exits
//! or stays silent past `ready_timeout` is stopped and the old process serves on.

use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use serde::{Deserialize, Serialize};
use strata_kernel::kernel_metrics::{counter, gauge};
use thiserror::Error;

use super::listen_fds::{self, LISTEN_FDS_ENV};

/// The environment variable naming the descriptor a successor reports readiness on.
pub const HANDOVER_FD_ENV: &str = "STRATA_HANDOVER_FD";

/// The environment variable carrying the successor's generation (handovers since a cold start).
pub const GENERATION_ENV: &str = "STRATA_HANDOVER_GENERATION";

/// Reloads and upgrades this process refused or saw fail.
static FAILED: AtomicU64 = AtomicU64::new(0);

/// Handovers since this server last started cold (0 for a cold start).
pub fn generation() -> u64 {
    std::env::var(GENERATION_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Counts a reload or upgrade that did not happen.
pub fn count_failure() {
    FAILED.fetch_add(1, Ordering::Relaxed);
}

/// The handover metrics, read at scrape time: `strata_handover_generation` and
/// `strata_handovers_failed_total`.
#[derive(Debug)]
pub struct HandoverCollector;

impl Collector for HandoverCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(
            &mut encoder,
            "handover_generation",
            "Reloads and upgrades since this server last started cold (0: a cold start)",
            generation() as i64,
        )?;
        counter(
            &mut encoder,
            "handovers_failed",
            "Reloads and upgrades this process refused (invalid configuration) or saw fail (successor did not start)",
            FAILED.load(Ordering::Relaxed),
        )
    }
}

/// The environment variable naming the XDP guard link a predecessor pinned: `IFACE=PATH`.
pub const GUARD_LINK_ENV: &str = "STRATA_XDP_GUARD_LINK";

/// Where a process pins its XDP guard link for its successor.
pub fn guard_pin_path() -> PathBuf {
    PathBuf::from(format!("/sys/fs/bpf/strata-xdp-guard-{}", std::process::id()))
}

/// In a successor: the pinned guard link to take over on `interface`, if the predecessor
/// handed one over. A link pinned for another interface (the configuration moved the guard) is
/// unpinned, so that it detaches when the predecessor exits.
pub fn inherited_guard_link(interface: &str) -> Option<PathBuf> {
    let value = std::env::var(GUARD_LINK_ENV).ok()?;
    let (iface, path) = value.split_once('=')?;
    let path = PathBuf::from(path);
    if iface == interface && path.exists() {
        return Some(path);
    }
    tracing::info!(
        previous = iface,
        interface,
        "the XDP guard moved; the previous interface's guard goes with the previous process"
    );
    let _ = std::fs::remove_file(&path);
    None
}

/// `[handover]`: how long a successor may take to start, and how long the old process drains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HandoverSettings {
    /// Longest a successor may take from exec to accepting (cache indexing included); past it
    /// the successor is stopped and the old process serves on.
    #[serde(with = "humantime_serde")]
    pub ready_timeout: Duration,
    /// Longest the old process keeps serving its open connections after the handover; a
    /// response still running then is cut (its client sees a short body, never a complete one).
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for HandoverSettings {
    fn default() -> Self {
        HandoverSettings {
            ready_timeout: Duration::from_secs(120),
            drain_timeout: Duration::from_secs(60),
        }
    }
}

/// Which binary the successor runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Successor {
    /// The binary this process runs (reload: only the configuration changes), even if the file
    /// it was started from has been replaced since.
    SameBinary,
    /// The file this process was started from, as it is on disk now (upgrade).
    OnDisk,
}

/// Why a handover did not happen (the old process keeps serving in every case).
#[derive(Debug, Error)]
pub enum HandoverError {
    #[error("creating the readiness pipe for the successor: {0}")]
    Pipe(std::io::Error),
    #[error("starting the successor {binary}: {source}")]
    Spawn { binary: PathBuf, source: std::io::Error },
    #[error("the successor {binary} (pid {pid}) exited ({status}) before it was serving; its log above says why; still serving from pid {own}", own = std::process::id())]
    Exited {
        binary: PathBuf,
        pid: u32,
        status: String,
    },
    #[error("the successor {binary} (pid {pid}) was not serving within {timeout:?} (handover.ready_timeout); it was stopped; still serving from pid {own}", own = std::process::id())]
    Timeout {
        binary: PathBuf,
        pid: u32,
        timeout: Duration,
    },
    #[error("the new configuration is not valid; still serving with the old one: {0}")]
    Config(String),
    #[error("a handover is already in progress or done (this process is draining)")]
    Busy,
    #[error("preparing the handover: {0}")]
    Prepare(String),
}

/// The path of the binary this process was started from, remembered at start.
static STARTED_FROM: OnceLock<PathBuf> = OnceLock::new();

/// Remembers the path this process's binary was started from (call early, before anyone can
/// replace the file: afterwards the kernel reports it as "(deleted)").
pub fn remember_binary() {
    if let Ok(p) = std::env::current_exe() {
        let _ = STARTED_FROM.set(p);
    }
}

fn binary_of(which: Successor) -> PathBuf {
    match which {
        Successor::SameBinary => PathBuf::from("/proc/self/exe"),
        Successor::OnDisk => STARTED_FROM
            .get()
            .cloned()
            .unwrap_or_else(|| PathBuf::from("/proc/self/exe")),
    }
}

/// A successor that reported it is serving.
#[derive(Debug)]
pub struct Started {
    pub pid: u32,
    pub binary: PathBuf,
}

/// Starts the successor with this process's arguments, environment and listening sockets, and
/// waits until it reports that it accepts (or exits, or `ready_timeout` passes).
pub async fn start_successor(
    which: Successor,
    ready_timeout: Duration,
    extra_env: &[(String, String)],
) -> Result<Started, HandoverError> {
    let binary = binary_of(which);
    let shown = match which {
        Successor::SameBinary => STARTED_FROM.get().cloned().unwrap_or_else(|| binary.clone()),
        Successor::OnDisk => binary.clone(),
    };
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| HandoverError::Pipe(std::io::Error::from(e)))?;
    let listeners = listen_fds::bound();
    let mut inherit: Vec<RawFd> = listeners.iter().map(|l| l.fd).collect();
    inherit.push(write_end.as_raw_fd());
    let mut cmd = std::process::Command::new(&binary);
    let mut args = std::env::args_os();
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args)
        .env(LISTEN_FDS_ENV, listen_fds::env_value(&listeners))
        .env(HANDOVER_FD_ENV, write_end.as_raw_fd().to_string())
        .env(GENERATION_ENV, (generation() + 1).to_string())
        .env_remove(GUARD_LINK_ENV)
        .envs(extra_env.iter().map(|(k, v)| (k, v)));
    // SAFETY: runs in the forked child before exec; fcntl is async-signal-safe. Clearing
    // FD_CLOEXEC there leaves the descriptors open across exec in the child only.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &inherit {
                if libc::fcntl(*fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| HandoverError::Spawn {
        binary: shown.clone(),
        source,
    })?;
    drop(write_end);
    let pid = child.id();
    tracing::info!(pid, binary = %shown.display(), listeners = listeners.len(), "successor started; waiting until it accepts");
    let waited = tokio::time::timeout(
        ready_timeout,
        tokio::task::spawn_blocking(move || read_ready(read_end)),
    )
    .await;
    match waited {
        Ok(Ok(true)) => {
            tracing::info!(pid, "successor accepts");
            Ok(Started { pid, binary: shown })
        }
        Ok(_) => {
            let status = tokio::task::spawn_blocking(move || child.wait())
                .await
                .ok()
                .and_then(Result::ok)
                .map_or_else(|| "status unknown".to_string(), |s| s.to_string());
            Err(HandoverError::Exited {
                binary: shown,
                pid,
                status,
            })
        }
        Err(_) => {
            let _ = child.kill();
            tokio::task::spawn_blocking(move || child.wait());
            Err(HandoverError::Timeout {
                binary: shown,
                pid,
                timeout: ready_timeout,
            })
        }
    }
}

/// Reads the successor's report: true for `ready`, false if the pipe closed without it.
fn read_ready(read_end: OwnedFd) -> bool {
    let mut file = std::fs::File::from(read_end);
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.starts_with(b"ready") {
                    return true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// In a successor: tells the predecessor that this process accepts now. Returns whether this
/// process was started by a handover (false: nobody to tell).
pub fn report_ready() -> bool {
    let Some(fd) = std::env::var(HANDOVER_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
        .filter(|fd| *fd > 2)
    else {
        return false;
    };
    // SAFETY: the predecessor passed this pipe's write end for us alone; it is used once here.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fd) };
    if let Err(e) = pipe.write_all(format!("ready {}\n", std::process::id()).as_bytes()) {
        tracing::warn!(error = %e, "telling the previous process that this one serves failed; it will stop this one");
    }
    true
}

/// The binary a reload (`SameBinary`) or upgrade (`OnDisk`) would run, for messages.
pub fn describe(which: Successor) -> String {
    let p: &Path = &binary_of(which);
    p.display().to_string()
}
