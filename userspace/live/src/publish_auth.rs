//! Publish tokens: an encoder publishes to `/{tenant}/…` with that tenant's token
//! (`Authorization: Bearer`, ffmpeg's `-headers`). The ingest server holds no token list: it
//! asks the control plane whether the token may read the tenant (`GET /v1/tenants/{t}` with the
//! presented token: 200 → yes, with the tenant's idle-archive time and quota; 401 → unknown
//! token; 403 → another tenant's), and trusts the answer for a short time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use strata_wire::client::ServiceClient;

use crate::publish_error::PublishError;

/// What the control plane says about a tenant that a publisher needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantInfo {
    pub idle_archive_secs: u64,
    pub quota_bytes: u64,
    pub used_bytes: u64,
}

/// A cached answer: when it was asked, and what the control plane said.
type Verdict = (Instant, Result<TenantInfo, PublishError>);

/// Checks publish tokens against the control plane, with a cache.
pub struct PublishAuth {
    control: String,
    ttl: Duration,
    cache: Mutex<HashMap<(String, [u8; 32]), Verdict>>,
}

impl PublishAuth {
    pub fn new(control: &str, ttl: Duration) -> PublishAuth {
        PublishAuth {
            control: control.to_string(),
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's settings if `authorization` (the header's value) carries a token that
    /// may publish to `tenant`.
    pub async fn check(&self, tenant: &str, authorization: Option<&str>) -> Result<TenantInfo, PublishError> {
        let Some(token) = authorization
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Err(PublishError::new(
                401,
                format!(
                    "publishing to tenant {tenant} needs its publish token (Authorization: Bearer TOKEN)"
                ),
            ));
        };
        let key = (tenant.to_string(), Sha256::digest(token.as_bytes()).into());
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, answer)) = cache.get(&key) {
                if at.elapsed() < self.ttl {
                    return answer.clone();
                }
            }
        }
        let client = ServiceClient::new(&self.control, token, Duration::from_secs(3));
        let path = format!("/v1/tenants/{tenant}");
        let t = tenant.to_string();
        let asked = tokio::task::spawn_blocking(move || client.get::<serde_json::Value>(&path))
            .await
            .map_err(|e| PublishError::new(500, format!("token check task failed: {e}")))?;
        let answer = match asked {
            Ok(v) => Ok(TenantInfo {
                idle_archive_secs: v["tenant"]["idle_archive_secs"].as_u64().unwrap_or(600),
                quota_bytes: v["tenant"]["quota_bytes"].as_u64().unwrap_or(0),
                used_bytes: v["used_bytes"].as_u64().unwrap_or(0),
            }),
            Err(e) => match e.status() {
                Some(401) => Err(PublishError::new(
                    401,
                    format!("the publish token for tenant {t} is unknown to the control plane"),
                )),
                Some(403) => Err(PublishError::new(
                    403,
                    format!("this token belongs to another tenant; it may not publish to tenant {t}"),
                )),
                Some(404) => Err(PublishError::new(404, format!("no tenant {t}"))),
                _ => {
                    return Err(PublishError::new(
                        503,
                        format!("cannot check the publish token with the control plane: {e}"),
                    ))
                }
            },
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.retain(|_, (at, _)| at.elapsed() < self.ttl);
        }
        cache.insert(key, (Instant::now(), answer.clone()));
        answer
    }
}
