//! `strata fetch --play`: a player simulated in real time. Downloads fill a buffer (in media
//! seconds) that drains at one second per second once playback starts; an empty buffer before
//! the end is a rebuffer. Between pieces the ABR rule picks the rendition, like dash.js's
//! dynamic rule: by throughput (the highest bitrate under the measured throughput × 0.8) while
//! the buffer is short, by buffer (one step up when the buffer is above `high`, one down when
//! below `low`) once it is long. Pieces smaller than usual when the buffer runs low (urgent).
//! Ends with QoE: startup time, rebuffers and their time, average bitrate, switches.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::asset_list::{pick, Asset};
use crate::session::{At, Session};
use crate::trace::{Trace, TraceLine};
use crate::{Progress, Rediscover};

/// Buffer levels of the ABR rule and playback, in media seconds.
#[derive(Clone, Debug)]
pub struct PlayerTuning {
    /// Playback starts once this much is buffered.
    pub startup: f64,
    /// Below this the rule goes by throughput and pieces are urgent.
    pub low: f64,
    /// Above this the rule may step up by buffer.
    pub high: f64,
    /// The player stops downloading above this (and waits while playing).
    pub max_buffer: f64,
    /// A piece covers about this many media seconds.
    pub piece_media_secs: f64,
}

impl Default for PlayerTuning {
    fn default() -> Self {
        PlayerTuning {
            startup: 1.0,
            low: 4.0,
            high: 12.0,
            max_buffer: 20.0,
            piece_media_secs: 2.0,
        }
    }
}

/// Quality of experience of one playback.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Qoe {
    pub startup_ms: u64,
    pub rebuffers: u32,
    pub rebuffer_ms: u64,
    /// Media-time weighted, bits/s.
    pub average_bitrate_bps: u64,
    pub rendition_switches: u32,
    pub server_switches: u32,
    pub media_seconds: f64,
    pub wall_seconds: f64,
    /// The rendition played longest.
    pub main_rendition: String,
}

/// Plays `renditions` (lowest bitrate first; `fixed` pins one).
pub fn play(
    session: &mut Session,
    renditions: &[&Asset],
    fixed: Option<&Asset>,
    tuning: &PlayerTuning,
    trace: &mut Trace,
    rediscover: &mut Rediscover<'_>,
    progress: &mut dyn FnMut(&Progress),
) -> anyhow::Result<Qoe> {
    let Some(lowest) = renditions.first().copied().or(fixed) else {
        anyhow::bail!("the asset list has no video rendition this device can play");
    };
    let bitrate = |a: &Asset| a.bitrate_bps().max(1) as f64;
    let duration = lowest.size as f64 * 8.0 / bitrate(lowest);
    let started = Instant::now();
    let mut qoe = Qoe::default();
    let mut position = 0.0f64; // media seconds downloaded
    let mut buffer = 0.0f64;
    let mut playing = false;
    let mut stalled = false;
    let mut last = Instant::now();
    let mut throughput: Option<f64> = session.servers[session.current].rate_bps;
    let mut current: &Asset = fixed.unwrap_or(lowest);
    let mut seconds_at: std::collections::HashMap<String, f64> = Default::default();
    let mut weighted = 0.0;
    let mut since_probe = 0u32;
    while position < duration - 1e-6 {
        // Drain what played since the last step.
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        if playing {
            buffer -= dt;
            if buffer < 0.0 {
                if !stalled {
                    qoe.rebuffers += 1;
                    stalled = true;
                }
                qoe.rebuffer_ms += ((-buffer) * 1000.0) as u64;
                buffer = 0.0;
            }
        }
        if buffer > tuning.max_buffer {
            std::thread::sleep(Duration::from_secs_f64(buffer - tuning.max_buffer));
            continue;
        }
        if Instant::now() >= session.valid_until {
            if let Some(d) = rediscover() {
                session.refresh(d);
            }
        }
        // The rendition for the next piece.
        let next = match fixed {
            Some(f) => f,
            None => {
                let tp = throughput.unwrap_or(0.0);
                let idx = renditions
                    .iter()
                    .position(|a| a.name == current.name)
                    .unwrap_or(0);
                if buffer < tuning.high {
                    pick(renditions, tp, 0.8).unwrap_or(lowest)
                } else if idx + 1 < renditions.len() && bitrate(renditions[idx + 1]) < tp {
                    renditions[idx + 1]
                } else {
                    current
                }
            }
        };
        if next.name != current.name {
            qoe.rendition_switches += 1;
            trace.write(&TraceLine {
                t_ms: started.elapsed().as_millis() as u64,
                event: "rendition",
                server: session.servers[session.current].server.addr,
                region: session.servers[session.current].server.region.clone(),
                offset: (position * bitrate(next) / 8.0) as u64,
                len: 0,
                ms: 0,
                rendition: next.name.clone(),
                why: format!(
                    "buffer {buffer:.1} s, throughput {:.2} Mbit/s: {} → {}",
                    throughput.unwrap_or(0.0) / 1e6,
                    current.name,
                    next.name
                ),
            });
            current = next;
        }
        // The piece: bytes of the next media seconds of this rendition.
        let urgent = buffer < tuning.low;
        let secs = if urgent {
            tuning.piece_media_secs / 2.0
        } else {
            tuning.piece_media_secs
        };
        let secs = secs.min(duration - position);
        let first = (position * bitrate(current) / 8.0) as u64;
        let last_byte = (((position + secs) * bitrate(current) / 8.0) as u64).min(current.size) - 1;
        if last_byte < first {
            break;
        }
        let piece = session.fetch(&current.url, first, last_byte)?;
        let len = last_byte - first + 1;
        let elapsed = piece.fetched.elapsed.as_secs_f64().max(1e-4);
        let rate = len as f64 * 8.0 / elapsed;
        throughput = Some(match throughput {
            Some(t) => 0.6 * t + 0.4 * rate,
            None => rate,
        });
        let at = At {
            t_ms: started.elapsed().as_millis() as u64,
            offset: first,
            rendition: &current.name,
        };
        session.trace_piece(trace, &at, &piece, len);
        let from = &session.servers[piece.from].server;
        // Playback drained while the piece downloaded.
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        if playing {
            buffer -= dt;
            if buffer < 0.0 {
                if !stalled {
                    qoe.rebuffers += 1;
                }
                qoe.rebuffer_ms += ((-buffer) * 1000.0) as u64;
                buffer = 0.0;
            }
        }
        stalled = false;
        buffer += secs;
        position += secs;
        weighted += secs * bitrate(current);
        *seconds_at.entry(current.name.clone()).or_default() += secs;
        if !playing && buffer >= tuning.startup.min(duration) {
            playing = true;
            qoe.startup_ms = started.elapsed().as_millis() as u64;
        }
        progress(&Progress {
            done: (position * 1000.0) as u64,
            total: (duration * 1000.0) as u64,
            server: from.addr,
            region: from.region.clone(),
            rendition: current.name.clone(),
            rate_bps: throughput.unwrap_or(0.0),
        });
        since_probe += 1;
        if since_probe >= session.tuning.reprobe_every {
            since_probe = 0;
            session.probe(&current.url, current.size, false);
        }
        let at = At {
            t_ms: started.elapsed().as_millis() as u64,
            offset: (position * bitrate(current) / 8.0) as u64,
            rendition: &current.name,
        };
        if session.after_piece(trace, &at, piece.from, Some(bitrate(current))) {
            qoe.server_switches += 1;
        }
    }
    qoe.media_seconds = position;
    qoe.average_bitrate_bps = if position > 0.0 {
        (weighted / position) as u64
    } else {
        0
    };
    qoe.wall_seconds = started.elapsed().as_secs_f64();
    qoe.main_rendition = seconds_at
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(n, _)| n)
        .unwrap_or_default();
    Ok(qoe)
}
