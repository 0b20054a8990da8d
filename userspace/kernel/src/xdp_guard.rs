//! Loads the XDP guard, attaches it to the edge's client-facing interface, and edits its
//! allow/block lists and rate limits at run time without reloading it.
//!
//! The attachment is a bpf_link owned by this process: dropping the guard (clean stop) or the
//! process dying (crash, kill -9) closes the link and the kernel detaches the program, so a dead
//! edge never leaves a filter behind on its interface.
//!
//! A handover (reload, upgrade) passes the link on instead: the old process pins it on bpffs
//! (`pin_for_successor`), the successor opens the pin, removes it and swaps its own program
//! into the link (`attach_inherited`, BPF_LINK_UPDATE: atomic, the interface is never
//! unguarded). The link then lives as long as the successor holds it; the old process exiting
//! closes only its own descriptor.

use std::net::IpAddr;
use std::sync::Mutex;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::{XdpLink, XdpLinkId};
use aya::programs::{TestRun, TestRunOptions, Xdp, XdpMode};
use aya::Ebpf;
use serde::{Deserialize, Serialize};
use strata_common::{
    guard_reason, GuardConfig, GUARD_ALLOW_V4_MAP, GUARD_ALLOW_V6_MAP, GUARD_BLOCK_V4_MAP,
    GUARD_BLOCK_V6_MAP, GUARD_CONFIG_MAP, GUARD_COUNTERS_MAP, XDP_GUARD_PROG,
};
use thiserror::Error;

use super::ebpf_log;
use crate::guard_settings::XdpModeSetting;

/// The compiled eBPF object.
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/strata-xdp-guard"));

/// Why the guard could not be loaded, attached or changed.
#[derive(Debug, Error)]
pub enum GuardError {
    #[error("loading the XDP guard failed (needs root or CAP_BPF+CAP_NET_ADMIN): {0}")]
    Load(#[from] aya::EbpfError),
    #[error("XDP guard program or map {0} missing from the object")]
    Missing(&'static str),
    #[error("XDP guard program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("XDP guard map: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error("attaching the XDP guard to {interface}: native mode: {native}; generic mode: {generic}")]
    Attach {
        interface: String,
        native: String,
        generic: String,
    },
    #[error("bad prefix {0:?}: expected an IPv4 or IPv6 address with an optional /LEN")]
    Prefix(String),
    #[error("the guard's maps are poisoned by an earlier panic")]
    Poisoned,
    #[error("handing the XDP guard's link over at {path}: {reason}")]
    Handover { path: String, reason: String },
}

/// Checks that `path` can take a pin: its directory is a BPF file system and nothing is there.
fn on_bpffs(path: &std::path::Path) -> Result<(), String> {
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    let dir = path.parent().ok_or("no directory")?;
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: statfs fills the zeroed struct for a NUL-terminated path.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut stat) } != 0 {
        return Err(format!("{}: {}", dir.display(), std::io::Error::last_os_error()));
    }
    if stat.f_type as i64 != BPF_FS_MAGIC {
        return Err(format!(
            "{} is not a BPF file system (mount -t bpf bpf {})",
            dir.display(),
            dir.display()
        ));
    }
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| format!("removing a stale pin: {e}"))?;
    }
    Ok(())
}

/// Which prefix list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum GuardList {
    Allow,
    Block,
}

/// An address prefix with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    /// Parses `ADDR` or `ADDR/LEN`.
    pub fn parse(text: &str) -> Result<Prefix, GuardError> {
        let bad = || GuardError::Prefix(text.to_string());
        let (addr, len) = match text.trim().split_once('/') {
            Some((a, l)) => (
                a.parse::<IpAddr>().map_err(|_| bad())?,
                Some(l.parse::<u8>().map_err(|_| bad())?),
            ),
            None => (text.trim().parse::<IpAddr>().map_err(|_| bad())?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return Err(bad());
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                IpAddr::V4((bits & mask).into())
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
                IpAddr::V6((bits & mask).into())
            }
        };
        Ok(Prefix { addr, len })
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

struct GuardMaps {
    allow_v4: LpmTrie<MapData, [u8; 4], u8>,
    block_v4: LpmTrie<MapData, [u8; 4], u8>,
    allow_v6: LpmTrie<MapData, [u8; 16], u8>,
    block_v6: LpmTrie<MapData, [u8; 16], u8>,
    config: Array<MapData, GuardConfig>,
    counters: PerCpuArray<MapData, u64>,
}

/// The loaded guard (attached or not) and its maps.
pub struct XdpGuard {
    maps: Mutex<GuardMaps>,
    attached: Option<(String, &'static str)>,
    /// The link this guard's program runs in (None until attached, and after a handover).
    link: Mutex<Option<XdpLinkId>>,
    /// A link pinned for a successor; this process keeps its descriptor until it exits.
    handed: Mutex<Option<PinnedLink>>,
    ebpf: Mutex<Ebpf>,
}

impl std::fmt::Debug for XdpGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpGuard")
            .field("attached", &self.attached)
            .finish()
    }
}

fn take<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<T, GuardError> {
    let map = ebpf.take_map(name).ok_or(GuardError::Missing(name))?;
    Ok(T::try_from(map)?)
}

impl XdpGuard {
    /// Loads the program into the kernel (not attached yet). Must run inside a tokio runtime.
    pub fn load() -> Result<XdpGuard, GuardError> {
        let mut ebpf = Ebpf::load(PROGRAM)?;
        ebpf_log::forward(&mut ebpf, XDP_GUARD_PROG);
        let program: &mut Xdp = ebpf
            .program_mut(XDP_GUARD_PROG)
            .ok_or(GuardError::Missing(XDP_GUARD_PROG))?
            .try_into()?;
        program.load()?;
        let maps = GuardMaps {
            allow_v4: take(&mut ebpf, GUARD_ALLOW_V4_MAP)?,
            block_v4: take(&mut ebpf, GUARD_BLOCK_V4_MAP)?,
            allow_v6: take(&mut ebpf, GUARD_ALLOW_V6_MAP)?,
            block_v6: take(&mut ebpf, GUARD_BLOCK_V6_MAP)?,
            config: take(&mut ebpf, GUARD_CONFIG_MAP)?,
            counters: take(&mut ebpf, GUARD_COUNTERS_MAP)?,
        };
        Ok(XdpGuard {
            maps: Mutex::new(maps),
            attached: None,
            link: Mutex::new(None),
            handed: Mutex::new(None),
            ebpf: Mutex::new(ebpf),
        })
    }

    /// Attaches to `interface`: native (driver) mode where the driver has it, generic otherwise,
    /// unless `mode` insists on one. Returns the mode used.
    pub fn attach(&mut self, interface: &str, mode: XdpModeSetting) -> Result<&'static str, GuardError> {
        let mut ebpf = self.ebpf.lock().map_err(|_| GuardError::Poisoned)?;
        let program: &mut Xdp = ebpf
            .program_mut(XDP_GUARD_PROG)
            .ok_or(GuardError::Missing(XDP_GUARD_PROG))?
            .try_into()?;
        let mut native_err = String::from("not tried");
        if mode != XdpModeSetting::Generic {
            match program.attach(interface, XdpMode::Driver) {
                Ok(id) => {
                    drop(ebpf);
                    *self.link.lock().map_err(|_| GuardError::Poisoned)? = Some(id);
                    self.attached = Some((interface.to_string(), "native"));
                    return Ok("native");
                }
                Err(e) => native_err = e.to_string(),
            }
        }
        if mode == XdpModeSetting::Native {
            return Err(GuardError::Attach {
                interface: interface.into(),
                native: native_err,
                generic: "not tried".into(),
            });
        }
        match program.attach(interface, XdpMode::Skb) {
            Ok(id) => {
                drop(ebpf);
                *self.link.lock().map_err(|_| GuardError::Poisoned)? = Some(id);
                self.attached = Some((interface.to_string(), "generic"));
                Ok("generic")
            }
            Err(e) => Err(GuardError::Attach {
                interface: interface.into(),
                native: native_err,
                generic: e.to_string(),
            }),
        }
    }

    /// Pins this guard's link at `path` (on bpffs) for a successor to take over. The program
    /// stays attached meanwhile; `withdraw_pin` undoes it if the successor never comes.
    pub fn pin_for_successor(&self, path: &std::path::Path) -> Result<(), GuardError> {
        let fail = |reason: String| GuardError::Handover {
            path: path.display().to_string(),
            reason,
        };
        // Checked first: a failed pin would drop (and so detach) the link.
        on_bpffs(path).map_err(fail)?;
        let mut handed = self.handed.lock().map_err(|_| GuardError::Poisoned)?;
        let fd_link: FdLink = match handed.take() {
            // Pinned for an earlier successor that never came: pin it again.
            Some(pinned) => pinned.into(),
            None => {
                let id = self
                    .link
                    .lock()
                    .map_err(|_| GuardError::Poisoned)?
                    .take()
                    .ok_or_else(|| fail("the guard is not attached".into()))?;
                let mut ebpf = self.ebpf.lock().map_err(|_| GuardError::Poisoned)?;
                let program: &mut Xdp = ebpf
                    .program_mut(XDP_GUARD_PROG)
                    .ok_or(GuardError::Missing(XDP_GUARD_PROG))?
                    .try_into()?;
                let link: XdpLink = program.take_link(id)?;
                FdLink::try_from(link).map_err(|e| {
                    fail(format!(
                        "not a bpf_link (kernel older than 5.9?), cannot be handed over: {e}"
                    ))
                })?
            }
        };
        let pinned = fd_link.pin(path).map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "pinning the XDP guard's link failed; the guard is detached");
            fail(e.to_string())
        })?;
        *handed = Some(pinned);
        Ok(())
    }

    /// Removes a pin made for a successor that did not take it (the link stays attached, held
    /// by this process as before; it detaches when this process exits).
    pub fn withdraw_pin(&self, path: &std::path::Path) {
        if self.handed.lock().is_ok_and(|h| h.is_some()) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Takes over the link a predecessor pinned at `path` on `interface`: opens it, removes the
    /// pin and swaps this guard's program into it atomically. Returns the mode label.
    pub fn attach_inherited(
        &mut self,
        interface: &str,
        path: &std::path::Path,
    ) -> Result<&'static str, GuardError> {
        let fail = |reason: String| GuardError::Handover {
            path: path.display().to_string(),
            reason,
        };
        let pinned = PinnedLink::from_pin(path).map_err(|e| fail(e.to_string()))?;
        let fd_link = pinned
            .unpin()
            .map_err(|e| fail(format!("removing the pin: {e}")))?;
        let link = XdpLink::try_from(fd_link).map_err(|e| fail(e.to_string()))?;
        let mut ebpf = self.ebpf.lock().map_err(|_| GuardError::Poisoned)?;
        let program: &mut Xdp = ebpf
            .program_mut(XDP_GUARD_PROG)
            .ok_or(GuardError::Missing(XDP_GUARD_PROG))?
            .try_into()?;
        let id = program.attach_to_link(link)?;
        drop(ebpf);
        *self.link.lock().map_err(|_| GuardError::Poisoned)? = Some(id);
        self.attached = Some((interface.to_string(), "inherited"));
        Ok("inherited")
    }

    /// The interface and mode the guard is attached with, if attached.
    pub fn attached(&self) -> Option<(&str, &'static str)> {
        self.attached.as_ref().map(|(i, m)| (i.as_str(), *m))
    }

    /// Sets the per-source rate limits.
    pub fn set_limits(&self, cfg: GuardConfig) -> Result<(), GuardError> {
        let mut maps = self.maps.lock().map_err(|_| GuardError::Poisoned)?;
        maps.config.set(0, cfg, 0)?;
        Ok(())
    }

    /// The rate limits in force.
    pub fn limits(&self) -> Result<GuardConfig, GuardError> {
        let maps = self.maps.lock().map_err(|_| GuardError::Poisoned)?;
        Ok(maps.config.get(&0, 0)?)
    }

    /// Adds a prefix to a list (idempotent).
    pub fn add(&self, list: GuardList, prefix: Prefix) -> Result<(), GuardError> {
        let mut maps = self.maps.lock().map_err(|_| GuardError::Poisoned)?;
        let len = u32::from(prefix.len);
        match (list, prefix.addr) {
            (GuardList::Allow, IpAddr::V4(a)) => maps.allow_v4.insert(&Key::new(len, a.octets()), 1, 0)?,
            (GuardList::Block, IpAddr::V4(a)) => maps.block_v4.insert(&Key::new(len, a.octets()), 1, 0)?,
            (GuardList::Allow, IpAddr::V6(a)) => maps.allow_v6.insert(&Key::new(len, a.octets()), 1, 0)?,
            (GuardList::Block, IpAddr::V6(a)) => maps.block_v6.insert(&Key::new(len, a.octets()), 1, 0)?,
        }
        Ok(())
    }

    /// Removes a prefix from a list; false if it was not there.
    pub fn remove(&self, list: GuardList, prefix: Prefix) -> Result<bool, GuardError> {
        let mut maps = self.maps.lock().map_err(|_| GuardError::Poisoned)?;
        let len = u32::from(prefix.len);
        let r = match (list, prefix.addr) {
            (GuardList::Allow, IpAddr::V4(a)) => maps.allow_v4.remove(&Key::new(len, a.octets())),
            (GuardList::Block, IpAddr::V4(a)) => maps.block_v4.remove(&Key::new(len, a.octets())),
            (GuardList::Allow, IpAddr::V6(a)) => maps.allow_v6.remove(&Key::new(len, a.octets())),
            (GuardList::Block, IpAddr::V6(a)) => maps.block_v6.remove(&Key::new(len, a.octets())),
        };
        match r {
            Ok(()) => Ok(true),
            Err(aya::maps::MapError::KeyNotFound) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every prefix on a list.
    pub fn list(&self, list: GuardList) -> Result<Vec<Prefix>, GuardError> {
        let maps = self.maps.lock().map_err(|_| GuardError::Poisoned)?;
        let mut out = Vec::new();
        let (v4, v6) = match list {
            GuardList::Allow => (&maps.allow_v4, &maps.allow_v6),
            GuardList::Block => (&maps.block_v4, &maps.block_v6),
        };
        for entry in v4.keys() {
            let k = entry?;
            out.push(Prefix {
                addr: IpAddr::from(k.data()),
                len: k.prefix_len() as u8,
            });
        }
        for entry in v6.keys() {
            let k = entry?;
            out.push(Prefix {
                addr: IpAddr::from(k.data()),
                len: k.prefix_len() as u8,
            });
        }
        Ok(out)
    }

    /// Packets seen, by reason (index = `guard_reason::*`), summed over CPUs.
    pub fn counters(&self) -> Result<[u64; guard_reason::COUNT as usize], GuardError> {
        let maps = self.maps.lock().map_err(|_| GuardError::Poisoned)?;
        let mut out = [0u64; guard_reason::COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = maps.counters.get(&(i as u32), 0)?.iter().sum();
        }
        Ok(out)
    }

    /// Runs the program once on `packet` with BPF_PROG_TEST_RUN; returns the XDP action.
    pub fn test_run(&self, packet: &[u8]) -> Result<u32, GuardError> {
        let mut ebpf = self.ebpf.lock().map_err(|_| GuardError::Poisoned)?;
        let program: &mut Xdp = ebpf
            .program_mut(XDP_GUARD_PROG)
            .ok_or(GuardError::Missing(XDP_GUARD_PROG))?
            .try_into()?;
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(packet);
        Ok(program.test_run(opts)?.return_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_lose_host_bits() {
        assert_eq!(Prefix::parse("10.1.2.3/24").unwrap().to_string(), "10.1.2.0/24");
        assert_eq!(Prefix::parse("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(
            Prefix::parse("2001:db8::1/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(Prefix::parse("0.0.0.0/0").unwrap().len, 0);
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0/8", ""] {
            assert!(Prefix::parse(bad).is_err(), "{bad}");
        }
    }
}
