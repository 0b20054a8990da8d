//! One stream's recording: which file names the encoder uploaded in its current run, what the
//! recording holds (every segment, even those the encoder deleted from its window), where the
//! encoder restarted (a new run: its files are recorded as `r{run}-{name}` so nothing is
//! overwritten), which recording of the key this is (after the first is archived, a new one's
//! files are `g{generation}-...`, so no edge holding the archived recording's `index0.ts`
//! mistakes it for the new one's), and the stream's phase. Saved as `{stream dir}/.rec/state.json` (written
//! beside and renamed) so every server of the cluster, and this one after a restart, can go on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use strata_wire::live::{LivePhase, LiveStream};

use crate::playlist::{render, PushedPlaylist, RecordedSegment};

/// The directory inside a stream's directory that holds its state (never served: dot name).
pub const STATE_DIR: &str = ".rec";

/// A stream's recording and phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StreamState {
    pub tenant: String,
    pub stream: String,
    /// The encoder's playlist name (`index.m3u8`); the recording's playlists use it too.
    pub playlist: Option<String>,
    pub phase: LivePhase,
    /// Encoder runs so far minus one (0 until the encoder restarts).
    pub run: u32,
    /// Recordings of this key archived before this one.
    #[serde(default)]
    pub generation: u32,
    /// Files of the current run: the name the encoder uses → (recorded name, bytes).
    pub uploaded: BTreeMap<String, (String, u64)>,
    /// Names the encoder's playlists listed in the current run (a new upload of one starts a
    /// new run).
    pub listed: BTreeSet<String>,
    /// The next recorded segment follows an encoder restart.
    pub discontinuity_next: bool,
    pub segments: Vec<RecordedSegment>,
    /// Segments in the encoder's live window.
    pub window: usize,
    /// The encoder sent `#EXT-X-ENDLIST`.
    pub ended: bool,
    pub last_publish_unix: u64,
    /// The tenant's idle-archive time when last read, seconds.
    pub idle_archive_secs: u64,
    /// The content id the recording is archived as (chosen when archiving starts).
    pub archive_content: Option<String>,
    /// When the recording was placed (its local copy goes a grace time later).
    #[serde(default)]
    pub archived_unix: u64,
    /// Uploads under way (encoder names): a playlist listing one waits for it.
    #[serde(skip)]
    pub in_flight: BTreeSet<String>,
    /// The last playlist the encoder pushed: applied again when a file it listed arrives late
    /// (encoders send the playlist without waiting for the segment's answer).
    #[serde(skip)]
    pub last_pushed: Option<PushedPlaylist>,
}

/// What an upload of `name` is stored as.
#[derive(Debug, PartialEq, Eq)]
pub struct UploadName {
    pub recorded: String,
    /// This upload started a new encoder run.
    pub new_run: bool,
}

/// What applying a pushed playlist did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    /// Listed segments that were never uploaded (skipped, not recorded).
    pub missing: Vec<String>,
}

impl StreamState {
    pub fn new(tenant: &str, stream: &str, idle_archive_secs: u64) -> StreamState {
        StreamState {
            tenant: tenant.into(),
            stream: stream.into(),
            playlist: None,
            phase: LivePhase::Live,
            run: 0,
            generation: 0,
            uploaded: BTreeMap::new(),
            listed: BTreeSet::new(),
            discontinuity_next: false,
            segments: Vec::new(),
            window: 0,
            ended: false,
            last_publish_unix: now_unix(),
            idle_archive_secs,
            archive_content: None,
            archived_unix: 0,
            in_flight: BTreeSet::new(),
            last_pushed: None,
        }
    }

    /// `tenant/stream`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.stream)
    }

    /// The recorded name of an upload of `name`; a name the current run already listed means
    /// the encoder restarted.
    pub fn name_upload(&mut self, name: &str) -> UploadName {
        let new_run = self.listed.contains(name);
        if new_run {
            self.run += 1;
            self.uploaded.clear();
            self.listed.clear();
            self.discontinuity_next = !self.segments.is_empty();
        }
        let run = if self.run == 0 {
            name.to_string()
        } else {
            format!("r{}-{name}", self.run)
        };
        let recorded = if self.generation == 0 {
            run
        } else {
            format!("g{}-{run}", self.generation)
        };
        self.in_flight.insert(name.to_string());
        UploadName { recorded, new_run }
    }

    /// An upload of `name` ended without a file.
    pub fn upload_failed(&mut self, name: &str) {
        self.in_flight.remove(name);
    }

    /// Whether the last pushed playlist listed `name` but could not record it yet.
    pub fn listed_late(&self, name: &str) -> bool {
        !self.listed.contains(name)
            && self.last_pushed.as_ref().is_some_and(|p| {
                p.segments
                    .iter()
                    .any(|s| s.uri == name || s.map.as_deref() == Some(name))
            })
    }

    /// Of the names `p` lists, those still being uploaded.
    pub fn awaited(&self, p: &PushedPlaylist) -> Vec<String> {
        p.segments
            .iter()
            .flat_map(|s| std::iter::once(&s.uri).chain(s.map.iter()))
            .filter(|n| self.in_flight.contains(*n))
            .cloned()
            .collect()
    }

    /// Records that `name` arrived whole as `recorded`.
    pub fn uploaded(&mut self, name: &str, recorded: &str, bytes: u64) {
        self.in_flight.remove(name);
        self.uploaded
            .insert(name.to_string(), (recorded.to_string(), bytes));
        self.last_publish_unix = now_unix();
    }

    /// Appends the pushed playlist's new segments to the recording.
    pub fn apply(&mut self, playlist_name: &str, p: &PushedPlaylist) -> Applied {
        let mut applied = Applied::default();
        self.playlist = Some(playlist_name.to_string());
        self.last_pushed = Some(p.clone());
        for seg in &p.segments {
            if self.listed.contains(&seg.uri) {
                continue;
            }
            let Some((recorded, bytes)) = self.uploaded.get(&seg.uri).cloned() else {
                applied.missing.push(seg.uri.clone());
                continue;
            };
            let map = match &seg.map {
                Some(m) => match self.uploaded.get(m) {
                    Some((r, _)) => {
                        self.listed.insert(m.clone());
                        Some(r.clone())
                    }
                    None => {
                        applied.missing.push(m.clone());
                        continue;
                    }
                },
                None => None,
            };
            self.listed.insert(seg.uri.clone());
            self.segments.push(RecordedSegment {
                name: recorded,
                duration: seg.duration,
                map,
                discontinuity: std::mem::take(&mut self.discontinuity_next),
                bytes,
            });
            applied.added += 1;
        }
        self.window = p.segments.len().max(1);
        self.ended = p.ended;
        self.last_publish_unix = now_unix();
        applied
    }

    /// The live playlist viewers get: the encoder's window over the recording.
    pub fn live_playlist(&self) -> String {
        let first = self.segments.len().saturating_sub(self.window.max(1));
        render(&self.segments, first, self.ended, false)
    }

    /// The finished recording: every segment, ENDLIST.
    pub fn vod_playlist(&self) -> String {
        render(&self.segments, 0, true, true)
    }

    /// Every file the recording needs (segments and init segments), each once.
    pub fn recorded_files(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut files = Vec::new();
        for s in &self.segments {
            for name in s.map.iter().chain(std::iter::once(&s.name)) {
                if seen.insert(name.clone()) {
                    files.push(name.clone());
                }
            }
        }
        files
    }

    pub fn bytes(&self) -> u64 {
        let mut seen = BTreeSet::new();
        self.segments.iter().map(|s| s.bytes).sum::<u64>()
            + self
                .uploaded
                .values()
                .filter(|(r, _)| seen.insert(r.clone()))
                .filter(|(r, _)| self.segments.iter().all(|s| &s.name != r))
                .map(|(_, b)| *b)
                .sum::<u64>()
    }

    /// The heartbeat's view of this stream.
    pub fn report(&self) -> LiveStream {
        let duration: f64 = self.segments.iter().map(|s| s.duration).sum();
        let bytes = self.bytes();
        LiveStream {
            tenant: self.tenant.clone(),
            stream: self.stream.clone(),
            phase: self.phase,
            segments: self.segments.len() as u64,
            bytes,
            bitrate_bps: if duration > 0.0 {
                (bytes as f64 * 8.0 / duration) as u64
            } else {
                0
            },
            duration_ms: (duration * 1000.0) as u64,
            last_publish_unix: self.last_publish_unix,
            archive_content: self.archive_content.clone(),
        }
    }

    /// Saves the state under `dir` (the stream's directory): temp file, fsync, rename.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let state_dir = dir.join(STATE_DIR);
        std::fs::create_dir_all(&state_dir)?;
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        write_atomic(&state_dir.join("state.json"), &bytes)
    }

    /// Loads the state saved under `dir`, if any.
    pub fn load(dir: &Path) -> std::io::Result<Option<StreamState>> {
        let path = dir.join(STATE_DIR).join("state.json");
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| std::io::Error::other(format!("{} is not a stream state: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Writes `bytes` to `path` through a dot-named temp file beside it, fsynced, renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    // Unique per write: several servers (or tasks) may write the same file at once.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp: PathBuf = path.with_file_name(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    let written = f.write_all(bytes).and_then(|_| f.sync_data());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::parse;

    fn push(s: &mut StreamState, names: &[&str]) {
        for n in names {
            let u = s.name_upload(n);
            s.uploaded(n, &u.recorded, 100);
        }
    }

    #[test]
    fn a_recording_after_an_archived_one_names_its_files_apart_from_it() {
        let mut s = StreamState::new("t", "s", 600);
        s.generation = 1;
        assert_eq!(s.name_upload("i0.ts").recorded, "g1-i0.ts");
        push(&mut s, &["i1.ts"]);
        let p = parse("#EXTM3U\n#EXTINF:2,\ni1.ts\n").unwrap();
        s.apply("index.m3u8", &p);
        assert_eq!(
            s.name_upload("i1.ts").recorded,
            "g1-r1-i1.ts",
            "a restart within it too"
        );
    }

    #[test]
    fn an_encoder_restart_records_a_new_run_beside_the_old_one_with_a_discontinuity() {
        let mut s = StreamState::new("t", "s", 600);
        push(&mut s, &["i0.ts", "i1.ts"]);
        let p = parse("#EXTM3U\n#EXTINF:2,\ni0.ts\n#EXTINF:2,\ni1.ts\n").unwrap();
        assert_eq!(s.apply("index.m3u8", &p).added, 2);
        assert_eq!(s.apply("index.m3u8", &p).added, 0, "listed twice, recorded once");
        let u = s.name_upload("i0.ts");
        assert_eq!(
            u,
            UploadName {
                recorded: "r1-i0.ts".into(),
                new_run: true
            }
        );
        s.uploaded("i0.ts", &u.recorded, 100);
        let p = parse("#EXTM3U\n#EXTINF:2,\ni0.ts\n").unwrap();
        s.apply("index.m3u8", &p);
        assert_eq!(s.segments.len(), 3);
        assert!(s.segments[2].discontinuity);
        assert_eq!(s.segments[2].name, "r1-i0.ts");
        let vod = s.vod_playlist();
        assert!(
            vod.contains("#EXT-X-DISCONTINUITY\nr1-i0.ts")
                || vod.contains("#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\nr1-i0.ts")
        );
        assert_eq!(s.recorded_files(), vec!["i0.ts", "i1.ts", "r1-i0.ts"]);
        assert_eq!(s.report().segments, 3);
    }

    #[test]
    fn a_listed_segment_never_uploaded_is_not_recorded() {
        let mut s = StreamState::new("t", "s", 600);
        push(&mut s, &["init.mp4", "a.m4s"]);
        let p =
            parse("#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\na.m4s\n#EXTINF:2,\nb.m4s\n").unwrap();
        let applied = s.apply("index.m3u8", &p);
        assert_eq!(applied.added, 1);
        assert_eq!(applied.missing, vec!["b.m4s".to_string()]);
        assert_eq!(s.recorded_files(), vec!["init.mp4", "a.m4s"]);
        // fMP4: a fresh init segment is the encoder's restart.
        assert!(s.name_upload("init.mp4").new_run);
    }
}
