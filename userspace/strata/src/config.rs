//! Configuration of the serving roles: one TOML file per role, a default for every key, and
//! command-line flags (see `cli.rs`) that override the file. The settings themselves live
//! beside the code they configure (`strata_edge::settings::ServeConfig` composes them); this
//! module only reads them from TOML, lays the file over the role's defaults, and prints them
//! (the serving roles' `ServeConfig`, the nameserver's `DnsSettings`).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use strata_edge::settings::InvalidSetting;
use thiserror::Error;

/// Why a configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error(transparent)]
    Invalid(#[from] InvalidSetting),
}

/// Reads a TOML file on top of `defaults`: keys the file leaves out keep their defaults.
pub fn load<T: Serialize + DeserializeOwned>(path: &Path, defaults: T) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, defaults).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses TOML text on top of `defaults`.
pub fn parse<T: Serialize + DeserializeOwned>(text: &str, defaults: T) -> Result<T, toml::de::Error> {
    let mut merged = toml::Value::try_from(&defaults).expect("defaults serialize to TOML");
    let file: toml::Value = toml::from_str(text)?;
    merge(&mut merged, file);
    merged.try_into()
}

/// The configuration as TOML, as `--print-config` shows it.
pub fn to_toml<T: Serialize>(config: &T) -> String {
    toml::to_string_pretty(config).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
}

/// Overlays `over` onto `base`, table by table.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use strata_edge::server::kernel_setup::BodyPathMode;
    use strata_edge::server::limits::Limits;
    use strata_edge::settings::ServeConfig;

    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("", ServeConfig::edge_defaults()).unwrap();
        assert_eq!(c, ServeConfig::edge_defaults());
    }

    #[test]
    fn file_overrides_only_what_it_names() {
        let text =
            "root = \"/srv\"\n[limits]\nidle_timeout = \"5s\"\n[data_path]\nbody_path = \"sendfile\"\n";
        let c = parse(text, ServeConfig::storage_defaults()).unwrap();
        assert_eq!(c.root, PathBuf::from("/srv"));
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.limits.max_connections, Limits::default().max_connections);
        assert_eq!(c.data_path.body_path, BodyPathMode::Sendfile);
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(parse("rooot = \"/x\"", ServeConfig::storage_defaults()).is_err());
        assert!(parse("[limits]\nidle = \"1s\"", ServeConfig::storage_defaults()).is_err());
    }

    #[test]
    fn printed_config_parses_back() {
        let c = ServeConfig::edge_defaults();
        assert_eq!(parse(&to_toml(&c), ServeConfig::storage_defaults()).unwrap(), c);
    }

    #[test]
    fn https_listeners_and_their_certificates_come_from_the_file() {
        let text = "[[https]]\nlisten = \"127.0.0.1:8443\"\n[[https.certificates]]\ncert = \"/a.pem\"\nkey = \"/a.key\"\n[[https.certificates]]\ncert = \"/b.pem\"\nkey = \"/b.key\"\nnames = [\"b.test\"]\n";
        let c = parse(text, ServeConfig::edge_defaults()).unwrap();
        assert_eq!(c.https.len(), 1);
        assert_eq!(c.https[0].listen.port(), 8443);
        assert_eq!(c.https[0].certificates[1].names, vec!["b.test".to_string()]);
        assert!(c.https[0].certificates[0].names.is_empty());
        assert_eq!(parse(&to_toml(&c), ServeConfig::edge_defaults()).unwrap(), c);
        assert!(parse(
            "[[https]]\nlisten = \"127.0.0.1:8443\"\ncert = \"/a.pem\"\n",
            ServeConfig::edge_defaults()
        )
        .is_err());
    }
}
