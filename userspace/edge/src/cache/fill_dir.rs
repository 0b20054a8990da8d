//! The directory (inside the cache directory) where fills write before they rename into place:
//! its name, and the removal at start of what a crashed run left there (files are named by the
//! writing process's PID, so a live predecessor's fills are left alone).

use std::path::Path;

/// Directory (inside the cache directory) of fills in progress; never served (dot name).
pub const FILL_DIR: &str = ".strata-fill";

/// Removes what fills of an earlier run left in the fill directory; returns how many. The
/// fills of a predecessor still draining after a reload or upgrade are its own to finish.
pub fn remove_leftover_fills(root: &Path) -> std::io::Result<usize> {
    let dir = root.join(FILL_DIR);
    let mut removed = 0;
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                if strata_wire::objects::part_owner_alive(&e.file_name()) {
                    continue;
                }
                std::fs::remove_file(e.path())?;
                removed += 1;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(&dir)?,
        Err(e) => return Err(e),
    }
    Ok(removed)
}
