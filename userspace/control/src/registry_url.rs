//! Where the registry lives, from `--registry`: absent → the embedded redb file in the data
//! directory; `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` → an etcd v3 cluster, every key
//! under PREFIX (so several deployments can share one cluster).

use std::fmt;

use thiserror::Error;

/// An etcd cluster's client endpoints and the key prefix of this deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdTarget {
    /// `host:port` of each member's client URL.
    pub endpoints: Vec<String>,
    /// Prepended to every key (empty: none), e.g. `strata/prod/`.
    pub prefix: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RegistryUrlError {
    #[error("registry {0:?}: expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX]")]
    Scheme(String),
    #[error("registry {url:?}: endpoint {endpoint:?} is not HOST:PORT")]
    Endpoint { url: String, endpoint: String },
}

impl EtcdTarget {
    /// Parses `etcd://h1:2379,h2:2379/strata/prod`.
    pub fn parse(url: &str) -> Result<EtcdTarget, RegistryUrlError> {
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| RegistryUrlError::Scheme(url.into()))?;
        let (hosts, prefix) = match rest.split_once('/') {
            Some((h, p)) if !p.is_empty() => {
                let p = if p.ends_with('/') {
                    p.to_string()
                } else {
                    format!("{p}/")
                };
                (h, p)
            }
            Some((h, _)) => (h, String::new()),
            None => (rest, String::new()),
        };
        let mut endpoints = Vec::new();
        for endpoint in hosts.split(',') {
            let valid = endpoint
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !valid {
                return Err(RegistryUrlError::Endpoint {
                    url: url.into(),
                    endpoint: endpoint.into(),
                });
            }
            endpoints.push(endpoint.to_string());
        }
        Ok(EtcdTarget { endpoints, prefix })
    }
}

impl fmt::Display for EtcdTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "etcd://{}", self.endpoints.join(","))?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_prefix_are_read_and_bad_ones_named() {
        let t = EtcdTarget::parse("etcd://10.0.0.1:2379,h2:2379/strata/prod").unwrap();
        assert_eq!(t.endpoints, ["10.0.0.1:2379", "h2:2379"]);
        assert_eq!(t.prefix, "strata/prod/");
        assert_eq!(t.to_string(), "etcd://10.0.0.1:2379,h2:2379/strata/prod/");
        assert_eq!(EtcdTarget::parse("etcd://h:1").unwrap().prefix, "");
        assert!(matches!(
            EtcdTarget::parse("http://h:1"),
            Err(RegistryUrlError::Scheme(_))
        ));
        let bad = EtcdTarget::parse("etcd://h:1,nope").unwrap_err();
        assert!(bad.to_string().contains("\"nope\""), "{bad}");
    }
}

/// `[registry]` in the control plane's TOML: `url = "etcd://..."`, or no `url` for the
/// embedded store.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySettings {
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "url_out",
        deserialize_with = "url_in"
    )]
    pub url: Option<EtcdTarget>,
}

fn url_out<S: serde::Serializer>(url: &Option<EtcdTarget>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(t) => s.serialize_str(&t.to_string()),
        None => s.serialize_none(),
    }
}

fn url_in<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<EtcdTarget>, D::Error> {
    let text: String = serde::Deserialize::deserialize(d)?;
    EtcdTarget::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}
