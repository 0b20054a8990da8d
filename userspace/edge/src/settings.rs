//! Everything one serving role needs (storage server or edge), composed of the settings each
//! part defines beside its own code; role defaults and the checks that span parts. Reading it
//! from TOML and flags is the binary's job.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use strata_kernel::guard_settings::GuardSettings;
use thiserror::Error;

use crate::cache::CacheSettings;
use crate::name_lookup::StaticLookupConfig;
use crate::server::control_agent::ControlLink;
use crate::server::kernel_setup::{DataPath, EbpfMode};
use crate::server::limits::Limits;
use crate::server::miss_policy::MissPolicy;
use crate::tls::https_settings::HttpsListener;
use crate::upstream::pool::UpstreamSettings;

/// A setting that parses but cannot work.
#[derive(Debug, Error)]
#[error("invalid setting {key}: {reason}")]
pub struct InvalidSetting {
    pub key: &'static str,
    pub reason: String,
}

/// Everything one HTTP serving role needs (storage server or edge).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Directory served: the store root (storage) or the cache directory (edge).
    pub root: PathBuf,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub telemetry: EbpfMode,
    pub limits: Limits,
    pub data_path: DataPath,
    pub guard: GuardSettings,
    /// Edge only: what to do on a miss.
    pub miss: MissPolicy,
    /// Edge only: where content lives (tenants → clusters → storage servers).
    pub lookup: StaticLookupConfig,
    /// Edge only: the storage-tier connection pool.
    pub upstream: UpstreamSettings,
    /// Edge only: cache capacity and admission.
    pub cache: CacheSettings,
    /// The control plane this server reports to (empty url: none).
    #[serde(default)]
    pub control: ControlLink,
    /// Edge under a control plane, with a region: the director (peers before the storage tier).
    #[serde(default)]
    pub director: crate::director::settings::DirectorSettings,
    /// Reload and upgrade: how long a successor may take to start and the old process drains.
    #[serde(default)]
    pub handover: crate::server::handover::HandoverSettings,
    /// HTTPS listeners (`[[https]]`), each with its certificates; none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub https: Vec<HttpsListener>,
    /// The access log: a file, `-` for stdout, or off.
    #[serde(default)]
    pub access_log: crate::access_log::settings::AccessLogSettings,
}

impl ServeConfig {
    /// Defaults for the storage role.
    pub fn storage_defaults() -> ServeConfig {
        ServeConfig {
            root: PathBuf::from("/var/lib/strata/storage"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9081)),
            telemetry: EbpfMode::Off,
            limits: Limits::default(),
            data_path: DataPath::default(),
            guard: GuardSettings::default(),
            miss: MissPolicy::Error,
            lookup: Default::default(),
            upstream: Default::default(),
            cache: Default::default(),
            control: Default::default(),
            director: Default::default(),
            handover: Default::default(),
            https: Vec::new(),
            access_log: Default::default(),
        }
    }

    /// Defaults for the edge role.
    pub fn edge_defaults() -> ServeConfig {
        ServeConfig {
            root: PathBuf::from("/var/lib/strata/edge-cache"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9080)),
            telemetry: EbpfMode::Auto,
            miss: MissPolicy::Proxy,
            ..ServeConfig::storage_defaults()
        }
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.control.enabled() {
            if self.control.token_file.as_os_str().is_empty() {
                return Err(InvalidSetting {
                    key: "control.token_file",
                    reason: "a control plane needs a service token (--control-token-file)".into(),
                });
            }
            if self.control.name.is_empty() {
                return Err(InvalidSetting {
                    key: "control.name",
                    reason: "a server reporting to a control plane needs a name (--name)".into(),
                });
            }
        }
        if let Err(e) = self.lookup.validate() {
            return Err(InvalidSetting {
                key: "lookup",
                reason: e.to_string(),
            });
        }
        let invalid = |key, reason: &str| {
            Err(InvalidSetting {
                key,
                reason: reason.to_string(),
            })
        };
        for l in &self.https {
            if l.certificates.is_empty() {
                return invalid(
                    "https.certificates",
                    &format!("the HTTPS listener {} has no certificate", l.listen),
                );
            }
            if l.listen.port() != 0 && (l.listen == self.listen || l.listen == self.admin_listen) {
                return invalid(
                    "https.listen",
                    &format!("{} is already the HTTP or admin listener", l.listen),
                );
            }
        }
        if self.limits.max_header_bytes < 256 {
            return invalid("limits.max_header_bytes", "must be at least 256");
        }
        for (key, d) in [
            ("limits.header_read_timeout", self.limits.header_read_timeout),
            ("limits.idle_timeout", self.limits.idle_timeout),
            ("limits.send_stall_timeout", self.limits.send_stall_timeout),
        ] {
            if d.is_zero() {
                return invalid(key, "must be longer than zero");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn zero_limits_are_rejected() {
        let mut c = ServeConfig::edge_defaults();
        c.limits.idle_timeout = Duration::ZERO;
        assert!(c.validate().is_err());
    }
}
