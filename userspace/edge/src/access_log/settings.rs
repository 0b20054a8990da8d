//! `[access_log]`: where the access log goes (a file, `-` for stdout, or nothing) and how many
//! lines may wait for the writer before new ones are dropped.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Lines the queue to the writer thread holds by default.
pub const DEFAULT_QUEUE_LINES: usize = 65_536;

/// `[access_log]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLogSettings {
    /// A file path, `-` for stdout, or `off` / empty for no access log.
    pub path: String,
    /// Lines waiting for the writer at most; beyond, lines are dropped and counted.
    pub queue_lines: usize,
}

impl Default for AccessLogSettings {
    fn default() -> Self {
        AccessLogSettings {
            path: String::new(),
            queue_lines: DEFAULT_QUEUE_LINES,
        }
    }
}

/// Where the lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Off,
    Stdout,
    File(PathBuf),
}

impl AccessLogSettings {
    pub fn destination(&self) -> Destination {
        match self.path.trim() {
            "" | "off" => Destination::Off,
            "-" => Destination::Stdout,
            p => Destination::File(PathBuf::from(p)),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Off => f.write_str("off"),
            Destination::Stdout => f.write_str("stdout"),
            Destination::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_selects_the_destination() {
        let s = |p: &str| AccessLogSettings {
            path: p.into(),
            ..Default::default()
        };
        assert_eq!(s("").destination(), Destination::Off);
        assert_eq!(s("off").destination(), Destination::Off);
        assert_eq!(s("-").destination(), Destination::Stdout);
        assert_eq!(
            s("/var/log/strata/access.log").destination(),
            Destination::File("/var/log/strata/access.log".into())
        );
    }
}
