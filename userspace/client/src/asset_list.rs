//! The asset list a content carries (`/{tenant}/{content}/assets.json`) and the choice of a
//! rendition from it: the video assets the device can play (height at most `--max-height`,
//! a codec it accepts), ordered by the `--prefer` list, then the best bitrate the measured
//! throughput carries with a safety margin.

pub use strata_wire::assets::{AssetKind, AssetList, ListedAsset as Asset};

/// What the device plays.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub max_height: Option<u32>,
    /// Codec prefixes accepted (e.g. `avc1`, `hvc1`); empty accepts all.
    pub codecs: Vec<String>,
    /// Asset names or name prefixes, most preferred first.
    pub prefer: Vec<String>,
}

/// Parses an asset list.
pub fn parse(bytes: &[u8]) -> Result<AssetList, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// The asset named `name`.
pub fn get<'a>(list: &'a AssetList, name: &str) -> Option<&'a Asset> {
    list.assets.iter().find(|a| a.name == name)
}

/// The video renditions `profile` can play, lowest bitrate first.
pub fn renditions<'a>(list: &'a AssetList, profile: &Profile) -> Vec<&'a Asset> {
    let mut v: Vec<&Asset> = list
        .assets
        .iter()
        .filter(|a| a.kind == AssetKind::Video && (a.bitrate.is_some() || a.height().is_some()))
        .filter(|a| match (profile.max_height, a.height()) {
            (Some(max), Some(h)) => h <= max,
            _ => true,
        })
        .filter(|a| {
            profile.codecs.is_empty()
                || a.codec
                    .as_deref()
                    .is_some_and(|c| profile.codecs.iter().any(|p| c.starts_with(p.as_str())))
        })
        .collect();
    let rank = |a: &Asset| {
        profile
            .prefer
            .iter()
            .position(|p| a.name.starts_with(p.as_str()))
            .unwrap_or(profile.prefer.len())
    };
    v.sort_by_key(|a| (rank(a), a.bitrate_bps()));
    // Within the most preferred format only.
    if let Some(best) = v.first().map(|a| rank(a)) {
        v.retain(|a| rank(a) == best);
    }
    v
}

/// The highest-bitrate rendition whose bitrate fits `throughput_bps × safety`, else the lowest.
pub fn pick<'a>(renditions: &[&'a Asset], throughput_bps: f64, safety: f64) -> Option<&'a Asset> {
    renditions
        .iter()
        .rev()
        .find(|a| a.bitrate_bps() as f64 <= throughput_bps * safety)
        .or(renditions.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> AssetList {
        parse(
            br#"{"tenant":"t","content":"c","assets":[
            {"name":"video-1080p.mp4","url":"/t/c/video-1080p.mp4","type":"video","codec":"avc1.640028","bitrate":6000000,"resolution":"1920x1080","size":10,"sha256":"x"},
            {"name":"video-720p.mp4","url":"/t/c/video-720p.mp4","type":"video","codec":"avc1.64001f","bitrate":3000000,"resolution":"1280x720","size":10,"sha256":"x"},
            {"name":"video-480p.mp4","url":"/t/c/video-480p.mp4","type":"video","codec":"avc1.64001e","bitrate":1000000,"resolution":"854x480","size":10,"sha256":"x"},
            {"name":"video-2160p.hevc.mp4","url":"/t/c/v.mp4","type":"video","codec":"hvc1","bitrate":15000000,"resolution":"3840x2160","size":10,"sha256":"x"},
            {"name":"audio.mp4","url":"/t/c/audio.mp4","type":"audio","codec":"mp4a","bitrate":128000,"size":10,"sha256":"x"}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_device_profile_filters_and_throughput_picks_the_rendition() {
        let l = list();
        let p = Profile {
            max_height: Some(1080),
            codecs: vec!["avc1".into()],
            prefer: vec![],
        };
        let r = renditions(&l, &p);
        let names: Vec<&str> = r.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["video-480p.mp4", "video-720p.mp4", "video-1080p.mp4"]);
        assert_eq!(pick(&r, 10e6, 0.8).unwrap().name, "video-1080p.mp4");
        assert_eq!(pick(&r, 4e6, 0.8).unwrap().name, "video-720p.mp4");
        assert_eq!(
            pick(&r, 0.5e6, 0.8).unwrap().name,
            "video-480p.mp4",
            "the lowest when nothing fits"
        );
        let hevc = Profile {
            prefer: vec!["video-2160p.hevc".into()],
            ..Default::default()
        };
        assert_eq!(renditions(&l, &hevc)[0].name, "video-2160p.hevc.mp4");
    }
}
