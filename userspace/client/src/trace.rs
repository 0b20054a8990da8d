//! `--trace FILE`: one JSON line per piece and per decision (server, region, offset, length,
//! milliseconds, rendition, and why a switch or a hedge happened).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use serde::Serialize;

/// One line of the trace.
#[derive(Clone, Debug, Serialize)]
pub struct TraceLine {
    /// Milliseconds since the fetch started.
    pub t_ms: u64,
    /// `piece`, `hedge`, `switch`, `error`, `rendition`.
    pub event: &'static str,
    pub server: SocketAddr,
    pub region: String,
    pub offset: u64,
    pub len: u64,
    pub ms: u64,
    pub rendition: String,
    /// Why a switch, hedge or error happened.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
}

/// Where trace lines go (nowhere without `--trace`).
pub struct Trace {
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Trace {
    pub fn open(path: Option<&Path>) -> std::io::Result<Trace> {
        let file = match path {
            Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
            None => None,
        };
        Ok(Trace { file })
    }

    pub fn write(&mut self, line: &TraceLine) {
        if let Some(f) = &mut self.file {
            if let Ok(text) = serde_json::to_string(line) {
                // A line at a time, so a watcher sees the fetch as it goes.
                let _ = writeln!(f, "{text}");
                let _ = f.flush();
            }
        }
    }

    pub fn flush(&mut self) {
        if let Some(f) = &mut self.file {
            let _ = f.flush();
        }
    }
}
