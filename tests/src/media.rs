//! Real media for tests: HLS made by ffmpeg (installed by `cargo xtask setup`).

use std::path::Path;
use std::process::Command;

/// `seconds` of 2-second H.264/AAC segments (`seg000.ts`...) in a VOD playlist `index.m3u8`
/// with a multivariant playlist `master.m3u8`, made by ffmpeg in `dir`.
pub fn make_hls(seconds: u32, dir: &Path) {
    std::fs::create_dir_all(dir).expect("hls dir");
    let seg = dir.join("seg%03d.ts");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args([
            "-t",
            &seconds.to_string(),
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-b:v",
            "300k",
        ])
        .args([
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_playlist_type",
            "vod",
        ])
        .arg("-hls_segment_filename")
        .arg(&seg)
        .args(["-master_pl_name", "master.m3u8"])
        .arg(dir.join("index.m3u8"))
        .output()
        .expect("ffmpeg (installed by cargo xtask setup)");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let master = std::fs::read_to_string(dir.join("master.m3u8")).expect("master playlist");
    assert!(master.contains("#EXT-X-STREAM-INF"), "{master}");
}
