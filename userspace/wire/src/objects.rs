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

/// Removes what placements of an earlier run left in `root/.strata-put` (a crash mid-write).
pub fn remove_leftover_puts(root: &std::path::Path) -> usize {
    let mut removed = 0;
    for e in std::fs::read_dir(root.join(PUT_DIR))
        .into_iter()
        .flatten()
        .flatten()
    {
        if std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}
