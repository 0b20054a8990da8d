//! The servers a fetch uses and what it has learned of each: a connection, a throughput
//! estimate (from probes and pieces), failures and bytes for the report. Chooses the server
//! for the next piece with hysteresis: it moves only when another server is clearly better
//! (`switch_margin` × faster), when the current one fails, or when it falls below what the
//! rendition needs × `need_margin` and another does not.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::discover::{Discovery, Server};
use crate::http_range::{Conn, Fetched, RangeError};
use crate::trace::{Trace, TraceLine};

/// Tunables of server choice and pieces.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Connect and read timeout of one request.
    pub timeout: Duration,
    /// Bytes of one probe.
    pub probe_bytes: u64,
    /// Servers probed at start and on re-probes.
    pub probe_count: usize,
    /// Another server must be this many times faster before the client moves (hysteresis).
    pub switch_margin: f64,
    /// The current server must carry the rendition's bitrate × this, or the client looks for
    /// another.
    pub need_margin: f64,
    /// Smallest and largest piece.
    pub min_piece: u64,
    pub max_piece: u64,
    /// A piece should take about this long at the measured throughput.
    pub piece_secs: f64,
    /// Ask a second server for a piece late by this factor of its expected time (0: never).
    pub hedge_after: f64,
    /// Re-probe the other servers after this many pieces.
    pub reprobe_every: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            timeout: Duration::from_secs(10),
            probe_bytes: 64 * 1024,
            probe_count: 3,
            switch_margin: 1.5,
            need_margin: 1.2,
            min_piece: 128 * 1024,
            max_piece: 8 << 20,
            piece_secs: 0.5,
            hedge_after: 3.0,
            reprobe_every: 4,
        }
    }
}

/// What the fetch knows of one server.
pub struct ServerState {
    pub server: Server,
    pub conn: Option<Conn>,
    /// Smoothed throughput, bits/s.
    pub rate_bps: Option<f64>,
    pub failures: u32,
    /// For the report: bytes, milliseconds, errors.
    pub bytes: u64,
    pub ms: u64,
    pub errors: u64,
}

/// The servers of one fetch.
pub struct Session {
    pub servers: Vec<ServerState>,
    pub current: usize,
    pub tuning: Tuning,
    pub valid_until: Instant,
}

/// A piece's outcome with where it came from.
pub struct PieceResult {
    pub from: usize,
    pub fetched: Fetched,
    pub hedged: bool,
}

impl Session {
    pub fn new(discovery: Discovery, tuning: Tuning) -> Session {
        let servers = discovery
            .servers
            .into_iter()
            .map(|server| ServerState {
                conn: Some(Conn::new(server.addr, tuning.timeout)),
                server,
                rate_bps: None,
                failures: 0,
                bytes: 0,
                ms: 0,
                errors: 0,
            })
            .collect();
        Session {
            servers,
            current: 0,
            tuning,
            valid_until: discovery.valid_until,
        }
    }

    /// Takes a fresh answer: new servers join, known ones keep what was learned, servers no
    /// longer named are dropped unless the fetch is on them.
    pub fn refresh(&mut self, discovery: Discovery) {
        let current = self.servers[self.current].server.addr;
        let mut old: HashMap<SocketAddr, ServerState> =
            self.servers.drain(..).map(|s| (s.server.addr, s)).collect();
        for server in discovery.servers {
            let state = old.remove(&server.addr).unwrap_or_else(|| ServerState {
                conn: Some(Conn::new(server.addr, self.tuning.timeout)),
                server: server.clone(),
                rate_bps: None,
                failures: 0,
                bytes: 0,
                ms: 0,
                errors: 0,
            });
            self.servers.push(ServerState { server, ..state });
        }
        if let Some(cur) = old.remove(&current) {
            self.servers.push(cur);
        }
        self.current = self
            .servers
            .iter()
            .position(|s| s.server.addr == current)
            .unwrap_or(0);
        self.valid_until = discovery.valid_until;
    }

    fn learn(&mut self, i: usize, len: u64, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-4);
        let rate = len as f64 * 8.0 / secs;
        let s = &mut self.servers[i];
        s.rate_bps = Some(match s.rate_bps {
            Some(r) => 0.5 * r + 0.5 * rate,
            None => rate,
        });
        s.bytes += len;
        s.ms += elapsed.as_millis() as u64;
    }

    fn failed(&mut self, i: usize) {
        let s = &mut self.servers[i];
        s.failures += 1;
        s.errors += 1;
        s.rate_bps = Some(s.rate_bps.unwrap_or(0.0) / 4.0);
        s.conn = Some(Conn::new(s.server.addr, self.tuning.timeout));
    }

    /// Probes up to `probe_count` servers other than the current one (the current one too at
    /// start) with a small range of `path`, in parallel; updates their rates.
    pub fn probe(&mut self, path: &str, size: u64, include_current: bool) {
        let len = self.tuning.probe_bytes.min(size).max(1);
        let candidates: Vec<usize> = (0..self.servers.len())
            .filter(|&i| include_current || i != self.current)
            .filter(|&i| self.servers[i].failures < 3)
            .take(self.tuning.probe_count)
            .collect();
        let (tx, rx) = mpsc::channel();
        for &i in &candidates {
            let Some(mut conn) = self.servers[i].conn.take() else {
                continue;
            };
            let (tx, path) = (tx.clone(), path.to_string());
            std::thread::spawn(move || {
                let r = conn.range(&path, 0, len - 1);
                let _ = tx.send((i, conn, r));
            });
        }
        drop(tx);
        for (i, conn, r) in rx {
            self.servers[i].conn = Some(conn);
            match r {
                Ok(f) => self.learn(i, f.bytes.len() as u64, f.elapsed),
                Err(e) => {
                    tracing::debug!(error = %e, "fetch: probe failed");
                    self.failed(i);
                }
            }
        }
    }

    /// The best server now: fastest known, among those that have not failed much.
    pub fn best(&self, except: Option<usize>) -> Option<usize> {
        (0..self.servers.len())
            .filter(|&i| Some(i) != except && self.servers[i].failures < 3)
            .max_by(|&a, &b| {
                let ra = self.servers[a].rate_bps.unwrap_or(0.0);
                let rb = self.servers[b].rate_bps.unwrap_or(0.0);
                ra.total_cmp(&rb).then(
                    self.servers[b]
                        .server
                        .priority
                        .cmp(&self.servers[a].server.priority),
                )
            })
    }

    /// Whether to move off the current server, and where; with the reason.
    pub fn should_switch(&self, need_bps: Option<f64>) -> Option<(usize, String)> {
        let cur = &self.servers[self.current];
        let cur_rate = cur.rate_bps.unwrap_or(0.0);
        let other = self.best(Some(self.current))?;
        let other_rate = self.servers[other].rate_bps.unwrap_or(0.0);
        if cur.failures >= 3 {
            return Some((
                other,
                format!("{} failed {} times", cur.server.addr, cur.failures),
            ));
        }
        if other_rate > cur_rate * self.tuning.switch_margin {
            return Some((
                other,
                format!(
                    "{} measured {:.1} Mbit/s, over {:.1}× the {:.1} Mbit/s of {}",
                    self.servers[other].server.addr,
                    other_rate / 1e6,
                    self.tuning.switch_margin,
                    cur_rate / 1e6,
                    cur.server.addr
                ),
            ));
        }
        if let Some(need) = need_bps {
            if cur_rate < need * self.tuning.need_margin && other_rate >= need * self.tuning.need_margin {
                return Some((
                    other,
                    format!(
                        "{} carries {:.1} Mbit/s, below the rendition's {:.1} Mbit/s × {}",
                        cur.server.addr,
                        cur_rate / 1e6,
                        need / 1e6,
                        self.tuning.need_margin
                    ),
                ));
            }
        }
        None
    }

    /// The next piece's length: about `piece_secs` at the current rate, within the bounds,
    /// the smallest when `urgent`.
    pub fn piece_len(&self, remaining: u64, urgent: bool) -> u64 {
        let t = &self.tuning;
        let want = if urgent {
            t.min_piece
        } else {
            match self.servers[self.current].rate_bps {
                Some(r) => ((r / 8.0 * t.piece_secs) as u64).clamp(t.min_piece, t.max_piece),
                None => t.min_piece,
            }
        };
        want.min(remaining).max(1)
    }

    /// Fetches `first..=last` of `path` from the current server; when it is late by
    /// `hedge_after` × its expected time, asks the best other server for the same range and
    /// keeps whichever answers first. A failure moves to the next server and tries again.
    pub fn fetch(&mut self, path: &str, first: u64, last: u64) -> Result<PieceResult, RangeError> {
        let len = last - first + 1;
        let mut last_err = None;
        for _ in 0..self.servers.len().max(1) * 2 {
            let i = self.current;
            let expected = self.servers[i]
                .rate_bps
                .filter(|r| *r > 0.0)
                .map(|r| Duration::from_secs_f64(len as f64 * 8.0 / r));
            let (tx, rx) = mpsc::channel();
            let conn_timeout = self.tuning.timeout;
            let start =
                |s: &mut ServerState,
                 idx: usize,
                 tx: mpsc::Sender<(usize, Option<Conn>, Result<Fetched, RangeError>)>| {
                    let mut conn = s
                        .conn
                        .take()
                        .unwrap_or_else(|| Conn::new(s.server.addr, conn_timeout));
                    let path = path.to_string();
                    std::thread::spawn(move || {
                        let r = conn.range(&path, first, last);
                        let _ = tx.send((idx, Some(conn), r));
                    });
                };
            let timeout = self.tuning.timeout;
            let hedge_after = self.tuning.hedge_after;
            start(&mut self.servers[i], i, tx.clone());
            let mut hedged = None;
            let wait = expected
                .filter(|_| hedge_after > 0.0)
                .map(|e| e.mul_f64(hedge_after).max(Duration::from_millis(100)));
            let first_answer = match wait {
                Some(w) => match rx.recv_timeout(w) {
                    Ok(a) => Some(a),
                    Err(_) => {
                        if let Some(h) = self.best(Some(i)) {
                            hedged = Some(h);
                            start(&mut self.servers[h], h, tx.clone());
                        }
                        None
                    }
                },
                None => None,
            };
            drop(tx);
            let mut answers = Vec::new();
            if let Some(a) = first_answer {
                answers.push(a);
            }
            // Until one succeeds or all asked have answered.
            let asked = 1 + usize::from(hedged.is_some());
            while answers.len() < asked && !answers.iter().any(|(_, _, r)| r.is_ok()) {
                match rx.recv_timeout(timeout * 2) {
                    Ok(a) => answers.push(a),
                    Err(_) => break,
                }
            }
            let mut winner = None;
            for (idx, conn, r) in answers {
                if let Some(c) = conn {
                    self.servers[idx].conn = Some(c);
                }
                match r {
                    Ok(f) if winner.is_none() => {
                        self.learn(idx, len, f.elapsed);
                        winner = Some(PieceResult {
                            from: idx,
                            fetched: f,
                            hedged: hedged.is_some(),
                        });
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.failed(idx);
                        last_err = Some(e);
                    }
                }
            }
            if let Some(w) = winner {
                if w.from != i {
                    // The current server had not finished after the hedge wait and the whole
                    // hedged fetch: its rate is at most that.
                    let waited = wait.unwrap_or_default() + w.fetched.elapsed;
                    let bound = len as f64 * 8.0 / waited.as_secs_f64().max(1e-3);
                    let s = &mut self.servers[i];
                    s.rate_bps = Some(s.rate_bps.map_or(bound, |r| r.min(bound)));
                }
                return Ok(w);
            }
            // Both failed or the current one did: the next best server gets the range.
            if let Some(next) = self.best(Some(i)) {
                self.current = next;
            }
        }
        Err(last_err.unwrap_or(RangeError::Head {
            server: self.servers[self.current].server.addr,
            message: "no server answered".into(),
        }))
    }
}

/// Where in the asset a step happened, for the trace.
pub struct At<'a> {
    pub t_ms: u64,
    pub offset: u64,
    pub rendition: &'a str,
}

impl Session {
    /// Traces a piece as fetched (a `hedge` when a second server was asked).
    pub fn trace_piece(&self, trace: &mut Trace, at: &At<'_>, piece: &PieceResult, len: u64) {
        let from = &self.servers[piece.from].server;
        trace.write(&TraceLine {
            t_ms: at.t_ms,
            event: if piece.hedged { "hedge" } else { "piece" },
            server: from.addr,
            region: from.region.clone(),
            offset: at.offset,
            len,
            ms: piece.fetched.elapsed.as_millis() as u64,
            rendition: at.rendition.to_string(),
            why: if piece.hedged {
                "the piece was late; a second server was asked".into()
            } else {
                String::new()
            },
        });
    }

    /// After a piece: moves to the server a hedged piece came from, or where
    /// [`Session::should_switch`] says (given the rendition's `need_bps`); traces and logs the
    /// move. True if the fetch moved.
    pub fn after_piece(
        &mut self,
        trace: &mut Trace,
        at: &At<'_>,
        piece_from: usize,
        need_bps: Option<f64>,
    ) -> bool {
        let decision = if piece_from != self.current {
            Some((piece_from, "a hedged piece came first from it".to_string()))
        } else {
            self.should_switch(need_bps)
        };
        let Some((to, why)) = decision else {
            return false;
        };
        let from = self.servers[self.current].server.clone();
        let target = self.servers[to].server.clone();
        trace.write(&TraceLine {
            t_ms: at.t_ms,
            event: "switch",
            server: target.addr,
            region: target.region.clone(),
            offset: at.offset,
            len: 0,
            ms: 0,
            rendition: at.rendition.to_string(),
            why: format!("from {} ({}): {why}", from.addr, from.region),
        });
        tracing::info!(from = %from.addr, to = %target.addr, offset = at.offset, %why, "fetch: switching server");
        self.current = to;
        true
    }
}
