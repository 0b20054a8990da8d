//! What the cache directory holds, in least-recently-used order: `tenant/content/asset` →
//! size, with a use counter per file so the oldest is found in O(log n), and the time of each
//! file's last use (the age of the least recently used one is how long the cache keeps a file
//! nobody asks for: admission's threshold follows it). Sizes are bytes: eviction is by bytes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Instant, SystemTime};

/// The index of cached files.
#[derive(Debug, Default)]
pub struct LruIndex {
    files: HashMap<String, (u64, u64)>,
    order: BTreeMap<u64, (String, Instant)>,
    bytes: u64,
    clock: u64,
}

impl LruIndex {
    /// Indexes the files three levels below `root` (tenant/content/asset), oldest modification
    /// first; names starting with a dot (fills in progress) are skipped.
    pub fn scan(root: &Path) -> std::io::Result<LruIndex> {
        let mut found = Vec::new();
        let visible = |e: &std::fs::DirEntry| !e.file_name().to_string_lossy().starts_with('.');
        for tenant in std::fs::read_dir(root)?.flatten().filter(visible) {
            let Ok(contents) = std::fs::read_dir(tenant.path()) else {
                continue;
            };
            for content in contents.flatten().filter(visible) {
                let Ok(assets) = std::fs::read_dir(content.path()) else {
                    continue;
                };
                for asset in assets.flatten().filter(visible) {
                    let Ok(meta) = asset.metadata() else { continue };
                    if !meta.is_file() {
                        continue;
                    }
                    let rel = format!(
                        "{}/{}/{}",
                        tenant.file_name().to_string_lossy(),
                        content.file_name().to_string_lossy(),
                        asset.file_name().to_string_lossy()
                    );
                    found.push((meta.modified().ok(), rel, meta.len()));
                }
            }
        }
        found.sort();
        let mut index = LruIndex::default();
        let (now, wall) = (Instant::now(), SystemTime::now());
        for (modified, rel, size) in found {
            // A file kept from an earlier run was last used no later than its modification.
            let age = modified
                .and_then(|m| wall.duration_since(m).ok())
                .unwrap_or_default();
            index.touch_at(&rel, size, now.checked_sub(age).unwrap_or(now));
        }
        Ok(index)
    }

    /// Adds `rel` or makes it the most recently used (with its current size), used now.
    pub fn touch(&mut self, rel: &str, size: u64) {
        self.touch_at(rel, size, Instant::now());
    }

    /// [`touch`](Self::touch) with the time of the use.
    pub fn touch_at(&mut self, rel: &str, size: u64, at: Instant) {
        self.clock += 1;
        if let Some((old_size, tick)) = self.files.get_mut(rel) {
            self.order.remove(tick);
            *tick = self.clock;
            self.bytes = self.bytes - *old_size + size;
            *old_size = size;
        } else {
            self.files.insert(rel.to_string(), (size, self.clock));
            self.bytes += size;
        }
        self.order.insert(self.clock, (rel.to_string(), at));
    }

    /// When the least recently used file was last used.
    pub fn oldest_use(&self) -> Option<Instant> {
        self.order.first_key_value().map(|(_, (_, at))| *at)
    }

    /// Removes and returns the least recently used file.
    pub fn pop_oldest(&mut self) -> Option<(String, u64)> {
        let (_, (rel, _)) = self.order.pop_first()?;
        let (size, _) = self.files.remove(&rel)?;
        self.bytes -= size;
        Some((rel, size))
    }

    /// Forgets `rel`; its size if it was indexed.
    pub fn remove(&mut self, rel: &str) -> Option<u64> {
        let (size, tick) = self.files.remove(rel)?;
        self.order.remove(&tick);
        self.bytes -= size;
        Some(size)
    }

    /// Every indexed file and its size.
    pub fn entries(&self) -> Vec<(String, u64)> {
        self.files
            .iter()
            .map(|(rel, (size, _))| (rel.clone(), *size))
            .collect()
    }

    pub fn contains(&self, rel: &str) -> bool {
        self.files.contains_key(rel)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_touched_file_goes_first() {
        let mut i = LruIndex::default();
        i.touch("a", 10);
        i.touch("b", 20);
        i.touch("c", 30);
        i.touch("a", 10);
        assert_eq!(i.bytes(), 60);
        assert_eq!(i.pop_oldest(), Some(("b".into(), 20)));
        assert_eq!(i.pop_oldest(), Some(("c".into(), 30)));
        assert_eq!(i.pop_oldest(), Some(("a".into(), 10)));
        assert_eq!((i.bytes(), i.pop_oldest()), (0, None));
    }

    #[test]
    fn touching_with_a_new_size_keeps_the_byte_count_true() {
        let mut i = LruIndex::default();
        i.touch("a", 10);
        i.touch("a", 25);
        assert_eq!((i.len(), i.bytes()), (1, 25));
    }

    #[test]
    fn the_oldest_use_is_the_least_recently_used_files() {
        let mut i = LruIndex::default();
        let t = Instant::now();
        i.touch_at("a", 10, t);
        i.touch_at("b", 10, t + std::time::Duration::from_secs(5));
        assert_eq!(i.oldest_use(), Some(t));
        i.touch_at("a", 10, t + std::time::Duration::from_secs(9));
        assert_eq!(i.oldest_use(), Some(t + std::time::Duration::from_secs(5)));
    }
}
