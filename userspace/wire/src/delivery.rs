//! A tenant's delivery settings, set on the control plane (`PUT /v1/tenants/{t}/delivery`) and
//! carried to edges in the name lookup: `Cache-Control` overrides per kind of response
//! (on-demand assets, live playlists, negative answers) and the origins whose pages may read
//! the tenant's content (CORS). Every field left out keeps the edge's default.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest `Cache-Control` value accepted.
pub const MAX_CACHE_CONTROL: usize = 256;
/// Most allowed origins per tenant.
pub const MAX_ORIGINS: usize = 64;

/// A tenant's delivery settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantDelivery {
    /// `Cache-Control` of on-demand assets and live segments (default
    /// `public, max-age=31536000, immutable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control_vod: Option<String>,
    /// `Cache-Control` of live playlists (default `public, max-age=` the edge's playlist TTL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control_live_playlist: Option<String>,
    /// `Cache-Control` of 404 and 410 answers (default `public, max-age=10`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control_error: Option<String>,
    /// Origins (`https://host[:port]`) whose pages may read the content; None or `*` in the
    /// list: any origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_origins: Option<Vec<String>>,
}

/// A delivery setting that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DeliveryError {
    #[error("{field} {value:?}: a Cache-Control value must be 1 to {MAX_CACHE_CONTROL} printable ASCII characters")]
    CacheControl { field: &'static str, value: String },
    #[error("cors_origins {value:?}: an origin is * or scheme://host[:port] (http or https, no path), e.g. https://player.example.com")]
    Origin { value: String },
    #[error("cors_origins: at most {MAX_ORIGINS} origins (got {0})")]
    TooManyOrigins(usize),
}

impl TenantDelivery {
    /// Checks every field; the error names the field and the value.
    pub fn validate(&self) -> Result<(), DeliveryError> {
        for (field, value) in [
            ("cache_control_vod", &self.cache_control_vod),
            ("cache_control_live_playlist", &self.cache_control_live_playlist),
            ("cache_control_error", &self.cache_control_error),
        ] {
            if let Some(v) = value {
                let printable = v.bytes().all(|b| (0x20..0x7f).contains(&b));
                if v.trim().is_empty() || v.len() > MAX_CACHE_CONTROL || !printable {
                    return Err(DeliveryError::CacheControl {
                        field,
                        value: v.clone(),
                    });
                }
            }
        }
        if let Some(origins) = &self.cors_origins {
            if origins.len() > MAX_ORIGINS {
                return Err(DeliveryError::TooManyOrigins(origins.len()));
            }
            for o in origins {
                if !valid_origin(o) {
                    return Err(DeliveryError::Origin { value: o.clone() });
                }
            }
        }
        Ok(())
    }

    /// Whether nothing is overridden.
    pub fn is_default(&self) -> bool {
        self == &TenantDelivery::default()
    }
}

/// `*`, or a serialized origin as browsers send it: lowercase `http(s)://host[:port]`.
fn valid_origin(o: &str) -> bool {
    if o == "*" {
        return true;
    }
    let Some(rest) = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")) else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.[]:".contains(&b));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_scheme_host_and_port_only() {
        for good in [
            "*",
            "https://player.example.com",
            "http://127.0.0.1:8000",
            "http://[::1]:80",
        ] {
            assert!(valid_origin(good), "{good}");
        }
        for bad in [
            "example.com",
            "https://a.com/",
            "https://a.com/path",
            "ftp://a.com",
            "https://A.com",
            "https://a.com:x",
            "https://",
        ] {
            assert!(!valid_origin(bad), "{bad}");
        }
    }

    #[test]
    fn a_header_value_with_a_line_break_is_refused_naming_the_field() {
        let d = TenantDelivery {
            cache_control_vod: Some("max-age=1\r\nSet-Cookie: x".into()),
            ..Default::default()
        };
        let e = d.validate().unwrap_err().to_string();
        assert!(e.contains("cache_control_vod"), "{e}");
        assert!(TenantDelivery::default().validate().is_ok());
    }
}
