//! Pinned assets: files a distribution job said to keep. The LRU never evicts them to make
//! room and syncd's evictions skip them; only a job's `unpin` or `delete` lets them go. The set
//! is saved to `.strata-pins` in the cache directory (written beside and renamed), so a pin
//! survives a restart.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file the pins are saved in (a dot name: never served, never indexed).
pub const PINS_FILE: &str = ".strata-pins";

#[derive(Debug)]
pub struct Pins {
    file: PathBuf,
    set: Mutex<BTreeSet<String>>,
}

impl Pins {
    /// Loads the pins saved under `root` (none if the file is missing or unreadable).
    pub fn load(root: &Path) -> Pins {
        let file = root.join(PINS_FILE);
        let set = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<BTreeSet<String>>(&b).ok())
            .unwrap_or_default();
        Pins {
            file,
            set: Mutex::new(set),
        }
    }

    pub fn contains(&self, rel: &str) -> bool {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).contains(rel)
    }

    /// Pins or unpins `rel` and saves the set.
    pub fn set(&self, rel: &str, pinned: bool) -> std::io::Result<()> {
        let mut set = self.set.lock().unwrap_or_else(|p| p.into_inner());
        let changed = if pinned {
            set.insert(rel.to_string())
        } else {
            set.remove(rel)
        };
        if !changed {
            return Ok(());
        }
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&*set).unwrap_or_default())?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &self.file)
    }

    pub fn len(&self) -> usize {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_survive_a_reload() {
        let dir = std::env::temp_dir().join(format!("strata-pins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pins = Pins::load(&dir);
        pins.set("acme/c/a.mp4", true).unwrap();
        assert!(Pins::load(&dir).contains("acme/c/a.mp4"));
        pins.set("acme/c/a.mp4", false).unwrap();
        assert!(!Pins::load(&dir).contains("acme/c/a.mp4"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
