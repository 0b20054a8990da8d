//! The files every server under test serves, written once per run: deterministic pseudo-random
//! bytes (so a wrong byte cannot pass), with the CRC-32 of every whole file and of every range
//! the load asks for, computed from the bytes written.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rand::{Rng, SeedableRng};

use crate::load::Target;

/// The tenant and content every benchmark path lives under: /bench/c/{file}.
pub const PREFIX: &str = "bench/c";

/// Where the files are.
pub struct Corpus {
    pub root: PathBuf,
}

fn fill(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

impl Corpus {
    pub fn new(root: &Path) -> anyhow::Result<Corpus> {
        std::fs::create_dir_all(root.join(PREFIX)).with_context(|| format!("creating {}", root.display()))?;
        Ok(Corpus {
            root: root.to_path_buf(),
        })
    }

    fn write(&self, name: &str, bytes: &[u8]) -> anyhow::Result<String> {
        let p = self.root.join(PREFIX).join(name);
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        Ok(format!("/{PREFIX}/{name}"))
    }

    /// `count` whole files of `size` bytes named `{stem}-{i}.m4s`, requested whole.
    pub fn whole_files(&self, stem: &str, count: usize, size: usize) -> anyhow::Result<Vec<Target>> {
        let mut targets = Vec::with_capacity(count);
        for i in 0..count {
            let bytes = fill(hash_name(stem) ^ i as u64, size);
            let path = self.write(&format!("{stem}-{i}.m4s"), &bytes)?;
            targets.push(Target::get(
                &path,
                None,
                size as u64,
                Some(crc32fast::hash(&bytes)),
            ));
        }
        Ok(targets)
    }

    /// `count` files of `size` bytes named `{stem}-{i}.mp4`, requested as `ranges` random
    /// ranges of 128 KiB to 2 MiB, like a player fetching chunks of a progressive file.
    pub fn ranged_files(
        &self,
        stem: &str,
        count: usize,
        size: usize,
        ranges: usize,
    ) -> anyhow::Result<Vec<Target>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(hash_name(stem));
        let mut targets = Vec::with_capacity(ranges);
        for i in 0..count {
            let bytes = fill(hash_name(stem) ^ i as u64, size);
            let path = self.write(&format!("{stem}-{i}.mp4"), &bytes)?;
            for _ in 0..ranges / count {
                let len = rng.random_range(128 << 10..=(2 << 20).min(size));
                let start = rng.random_range(0..=size - len);
                let crc = crc32fast::hash(&bytes[start..start + len]);
                targets.push(Target::get(
                    &path,
                    Some((start as u64, len as u64)),
                    len as u64,
                    Some(crc),
                ));
            }
        }
        Ok(targets)
    }
}

fn hash_name(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_stay_inside_their_files_and_checksums_match_the_written_bytes() {
        let dir = std::env::temp_dir().join(format!("bench-corpus-{}", std::process::id()));
        let c = Corpus::new(&dir).unwrap();
        let set = c.ranged_files("r", 2, 3 << 20, 20).unwrap();
        assert_eq!(set.len(), 20);
        for t in &set {
            let head = String::from_utf8(t.request.clone()).unwrap();
            let path = head.split(' ').nth(1).unwrap();
            let range = head.split("bytes=").nth(1).unwrap().split("\r\n").next().unwrap();
            let (a, b) = range.split_once('-').unwrap();
            let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
            assert!((128 << 10..=2 << 20).contains(&(b - a + 1)));
            let file = std::fs::read(dir.join(path.trim_start_matches('/'))).unwrap();
            assert!(b < file.len());
            assert_eq!(t.expect_len as usize, b - a + 1);
            assert_eq!(t.expect_crc, Some(crc32fast::hash(&file[a..=b])));
        }
        let whole = c.whole_files("w", 3, 1000).unwrap();
        assert_eq!(whole.iter().map(|t| t.expect_len).sum::<u64>(), 3000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
