//! Objects on a storage server or in the archive, as placement sees them: what a server says it
//! holds for one object (`GET /v1/objects/...`), and the directory where objects being written
//! wait (`.strata-put`) until their bytes are complete and checked.

use serde::{Deserialize, Serialize};

/// What a storage server says it holds for one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub size: u64,
    pub sha256: String,
}

/// The directory, under a store root, where placed objects are written before they are renamed
/// into place; what an interrupted run leaves there is removed at the next start.
pub const PUT_DIR: &str = ".strata-put";

/// Whether a temp file named `{pid}-{n}.part` is still being written by a live process other
/// than this one: a predecessor draining after a reload or upgrade hands its listeners over
/// but finishes its own writes, so its files are not leftovers.
pub fn part_owner_alive(file_name: &std::ffi::OsStr) -> bool {
    let name = file_name.to_string_lossy();
    let Some(pid) = name.split_once('-').and_then(|(pid, _)| pid.parse::<u32>().ok()) else {
        return false;
    };
    pid != std::process::id() && std::path::Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes what placements of an earlier run left in `root/.strata-put` (a crash mid-write),
/// leaving the files of a live predecessor.
pub fn remove_leftover_puts(root: &std::path::Path) -> usize {
    let mut removed = 0;
    for e in std::fs::read_dir(root.join(PUT_DIR))
        .into_iter()
        .flatten()
        .flatten()
    {
        if part_owner_alive(&e.file_name()) {
            continue;
        }
        if std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_live_process_are_kept_and_of_dead_or_unnamed_ones_removed() {
        let root = std::env::temp_dir().join(format!("strata-puts-{}", std::process::id()));
        let dir = root.join(PUT_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        // PID 1 is alive in every namespace; PID u32::MAX never is; our own files are leftovers
        // of an earlier run that had our PID.
        for name in [
            "1-0.part",
            "4294967295-0.part",
            "no-pid.part",
            &format!("{}-3.part", std::process::id()),
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        assert_eq!(remove_leftover_puts(&root), 3);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("1-0.part")]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
