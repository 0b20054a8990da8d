//! HLS media playlists: reading what an encoder pushes (segments, durations, the init map,
//! ENDLIST) and writing the playlists strata serves from a recording: the live window and the
//! finished VOD playlist, both with discontinuities where the encoder restarted.

use thiserror::Error;

/// One segment as an encoder's playlist lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct PushedSegment {
    /// The URI as written (a file name beside the playlist).
    pub uri: String,
    pub duration: f64,
    /// The `#EXT-X-MAP` URI in force for this segment (fMP4 init segment).
    pub map: Option<String>,
}

/// A media playlist pushed by an encoder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PushedPlaylist {
    pub media_sequence: u64,
    pub segments: Vec<PushedSegment>,
    pub ended: bool,
}

/// Why a pushed playlist is refused (HTTP 400).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlaylistError {
    #[error("playlist does not start with #EXTM3U")]
    NotM3u,
    #[error("playlist line {line}: {message}")]
    Line { line: usize, message: String },
    #[error(
        "a multivariant playlist (#EXT-X-STREAM-INF) cannot be published; push one media playlist per stream"
    )]
    Multivariant,
}

/// Parses an encoder's media playlist. Segment URIs must be plain names in the same directory.
pub fn parse(text: &str) -> Result<PushedPlaylist, PlaylistError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, first)) if first.trim_start_matches('\u{feff}').trim() == "#EXTM3U" => {}
        _ => return Err(PlaylistError::NotM3u),
    }
    let mut p = PushedPlaylist::default();
    let mut duration: Option<f64> = None;
    let mut map: Option<String> = None;
    for (i, raw) in lines {
        let line = raw.trim();
        let bad = |message: String| PlaylistError::Line { line: i + 1, message };
        if line.is_empty() {
            continue;
        }
        if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d = v.split(',').next().unwrap_or("").trim();
            let d: f64 = d
                .parse()
                .map_err(|_| bad(format!("#EXTINF duration {d:?} is not a number")))?;
            if !(d.is_finite() && d >= 0.0) {
                return Err(bad(format!("#EXTINF duration {d} is out of range")));
            }
            duration = Some(d);
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v
                .trim()
                .parse()
                .map_err(|_| bad(format!("#EXT-X-MEDIA-SEQUENCE {v:?} is not a number")))?;
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
            let uri = attribute(v, "URI").ok_or_else(|| bad("#EXT-X-MAP without URI".into()))?;
            check_name(&uri).map_err(bad)?;
            map = Some(uri);
        } else if line == "#EXT-X-ENDLIST" {
            p.ended = true;
        } else if line.starts_with("#EXT-X-STREAM-INF") {
            return Err(PlaylistError::Multivariant);
        } else if line.starts_with('#') {
            continue;
        } else {
            let Some(d) = duration.take() else {
                return Err(bad(format!("segment {line:?} has no #EXTINF before it")));
            };
            check_name(line).map_err(bad)?;
            p.segments.push(PushedSegment {
                uri: line.to_string(),
                duration: d,
                map: map.clone(),
            });
        }
    }
    Ok(p)
}

/// A segment URI must be a file name beside the playlist (no scheme, directory or query).
fn check_name(uri: &str) -> Result<(), String> {
    if uri.is_empty()
        || uri.starts_with('.')
        || uri.contains(['/', '\\', '?', '#', ':', '"'])
        || uri.chars().any(char::is_control)
    {
        return Err(format!(
            "segment URI {uri:?} is not a plain file name beside the playlist"
        ));
    }
    Ok(())
}

/// The quoted value of attribute `name` in an attribute list (`URI="init.mp4",BYTERANGE=..`).
fn attribute(list: &str, name: &str) -> Option<String> {
    let start = list.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &list[start..];
    Some(rest[..rest.find('"')?].to_string())
}

/// One recorded segment, as the recording's playlists list it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedSegment {
    /// The file name under the stream's directory (unique for the whole recording).
    pub name: String,
    pub duration: f64,
    /// The init segment's file name (fMP4).
    #[serde(default)]
    pub map: Option<String>,
    /// The encoder restarted before this segment.
    #[serde(default)]
    pub discontinuity: bool,
    pub bytes: u64,
}

/// Writes a playlist of `segments[first..]`: the live window (`ended` false) or, from the first
/// segment with `vod`, the finished recording.
pub fn render(segments: &[RecordedSegment], first: usize, ended: bool, vod: bool) -> String {
    let first = first.min(segments.len());
    let shown = &segments[first..];
    let target = shown
        .iter()
        .map(|s| s.duration.ceil() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let version = if segments.iter().any(|s| s.map.is_some()) {
        7
    } else {
        3
    };
    let discontinuities_before = segments[..first].iter().filter(|s| s.discontinuity).count();
    let mut out = String::with_capacity(64 + shown.len() * 48);
    out.push_str(&format!(
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
    ));
    if discontinuities_before > 0 {
        out.push_str(&format!(
            "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuities_before}\n"
        ));
    }
    if vod {
        out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
    }
    let mut map: Option<&str> = None;
    for s in shown {
        if s.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if s.map.as_deref() != map {
            if let Some(m) = &s.map {
                out.push_str(&format!("#EXT-X-MAP:URI=\"{m}\"\n"));
            }
            map = s.map.as_deref();
        }
        out.push_str(&format!("#EXTINF:{:.6},\n{}\n", s.duration, s.name));
    }
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FFMPEG_FMP4: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:3\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000000,\nindex3.m4s\n#EXTINF:1.500000,\nindex4.m4s\n#EXT-X-ENDLIST\n";

    #[test]
    fn an_ffmpeg_fmp4_playlist_parses_with_its_map_and_end() {
        let p = parse(FFMPEG_FMP4).unwrap();
        assert_eq!(p.media_sequence, 3);
        assert!(p.ended);
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[1].uri, "index4.m4s");
        assert_eq!(p.segments[1].duration, 1.5);
        assert_eq!(p.segments[0].map.as_deref(), Some("init.mp4"));
    }

    #[test]
    fn garbage_and_escaping_uris_are_refused_with_the_line() {
        assert_eq!(parse("hello"), Err(PlaylistError::NotM3u));
        assert!(matches!(
            parse("#EXTM3U\n#EXTINF:x,\na.ts\n"),
            Err(PlaylistError::Line { line: 2, .. })
        ));
        assert!(parse("#EXTM3U\n#EXTINF:2,\n../other/a.ts\n").is_err());
        assert!(parse("#EXTM3U\n#EXTINF:2,\nhttp://evil/a.ts\n").is_err());
        assert!(parse("#EXTM3U\na.ts\n").is_err());
        assert_eq!(
            parse("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"),
            Err(PlaylistError::Multivariant)
        );
    }

    #[test]
    fn the_window_counts_sequences_and_discontinuities_before_it() {
        let seg = |name: &str, disc: bool| RecordedSegment {
            name: name.into(),
            duration: 2.0,
            map: None,
            discontinuity: disc,
            bytes: 1,
        };
        let segs = vec![
            seg("a0.ts", false),
            seg("a1.ts", false),
            seg("r1-a0.ts", true),
            seg("r1-a1.ts", false),
        ];
        let live = render(&segs, 3, false, false);
        assert!(live.contains("#EXT-X-MEDIA-SEQUENCE:3\n"));
        assert!(live.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
        assert!(!live.contains("ENDLIST"));
        let vod = render(&segs, 0, true, true);
        assert_eq!(vod.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
        assert!(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD\n") && vod.ends_with("#EXT-X-ENDLIST\n"));
        let reparsed = parse(&vod).unwrap();
        assert_eq!(reparsed.segments.len(), 4);
    }
}
