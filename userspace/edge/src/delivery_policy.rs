//! What a tenant's responses say to browsers and downstream caches: the `Cache-Control` of
//! each kind of response and the CORS headers for the request's `Origin`, from the tenant's
//! delivery settings (`strata_wire::delivery`) over the defaults below.
//!
//! Defaults: on-demand assets and live segments never change under their URL (content
//! records and recorded segment names are immutable), so they are `public, max-age=31536000,
//! immutable`; live playlists change every segment, so they may be kept only as long as the
//! edge itself holds one (`max-age=` its playlist TTL); a 404 or 410 is kept 10 s (content
//! can appear, but a storm of requests for a missing asset should not all reach the edge);
//! every other error and redirect is `no-store` (it depends on the request or the moment).
//! A signed tenant's defaults say `private` instead of `public`: a shared cache that keys
//! on the path alone would otherwise hand one viewer's signed response to everyone.
//! Generated per-viewer bodies (steering manifests and steered or signed playlists) are
//! `no-cache`.
//!
//! CORS: no origin list (or `*` in it) answers `Access-Control-Allow-Origin: *`; a list echoes
//! an allowed `Origin` with `Vary: Origin` and omits the allow headers for any other (the
//! browser then blocks the page's read); a preflight from an origin not allowed gets 403.

use std::borrow::Cow;

use strata_http::response::{error_response, HeadBuilder, CORS_EXPOSED};
use strata_wire::delivery::TenantDelivery;

/// Default `Cache-Control` of on-demand assets and live segments.
pub const DEFAULT_VOD: &str = "public, max-age=31536000, immutable";
/// Seconds a 404 or 410 may be kept by default (negative caching).
pub const NEGATIVE_TTL_SECS: u32 = 10;

/// The kind of response, for its `Cache-Control`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An on-demand asset or a live segment (immutable under its URL).
    Vod,
    /// A live stream's playlist.
    LivePlaylist,
    /// A body made for this viewer (steering manifest, steered or signed playlist).
    Generated,
}

/// One tenant's delivery settings, as the edge applies them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryPolicy {
    pub settings: TenantDelivery,
    /// The tenant's content needs signed URLs.
    pub signed: bool,
}

/// What CORS allows for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cors {
    /// Any origin: `Access-Control-Allow-Origin: *`.
    Any,
    /// This allowed origin, echoed (with `Vary: Origin`).
    Origin(String),
    /// The request's origin (or none) is not allowed: only `Vary: Origin`.
    Denied,
}

impl DeliveryPolicy {
    /// The `Cache-Control` of a `status` response of `kind`; `live_ttl_secs` is the edge's
    /// live playlist TTL.
    pub fn cache_control(&self, status: u16, kind: Kind, live_ttl_secs: u64) -> Cow<'static, str> {
        let s = &self.settings;
        let share = if self.signed { "private" } else { "public" };
        match status {
            200..=299 | 304 => match kind {
                Kind::Generated if self.signed => "private, no-cache".into(),
                Kind::Generated => "no-cache".into(),
                Kind::Vod => match &s.cache_control_vod {
                    Some(v) => v.clone().into(),
                    None if self.signed => "private, max-age=31536000, immutable".into(),
                    None => DEFAULT_VOD.into(),
                },
                Kind::LivePlaylist => match &s.cache_control_live_playlist {
                    Some(v) => v.clone().into(),
                    None => format!("{share}, max-age={live_ttl_secs}").into(),
                },
            },
            404 | 410 => match &s.cache_control_error {
                Some(v) => v.clone().into(),
                None => format!("{share}, max-age={NEGATIVE_TTL_SECS}").into(),
            },
            _ => "no-store".into(),
        }
    }

    /// What CORS allows for a request with `origin`.
    pub fn cors(&self, origin: Option<&str>) -> Cors {
        let Some(allowed) = &self.settings.cors_origins else {
            return Cors::Any;
        };
        if allowed.iter().any(|a| a == "*") {
            return Cors::Any;
        }
        match origin {
            Some(o) if allowed.iter().any(|a| a == o) => Cors::Origin(o.to_string()),
            _ => Cors::Denied,
        }
    }
}

impl Cors {
    /// Adds this decision's headers to a response head.
    pub fn apply(&self, builder: HeadBuilder) -> HeadBuilder {
        match self {
            Cors::Any => builder.cors(),
            Cors::Origin(o) => builder
                .header("Access-Control-Allow-Origin", o)
                .header("Access-Control-Expose-Headers", CORS_EXPOSED)
                .header("Vary", "Origin"),
            Cors::Denied => builder.header("Vary", "Origin"),
        }
    }

    /// The headers of [`Cors::apply`], as extra headers of an error response.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Cors::Any => vec![
                ("Access-Control-Allow-Origin", "*".into()),
                ("Access-Control-Expose-Headers", CORS_EXPOSED.into()),
            ],
            Cors::Origin(o) => vec![
                ("Access-Control-Allow-Origin", o.clone()),
                ("Access-Control-Expose-Headers", CORS_EXPOSED.into()),
                ("Vary", "Origin".into()),
            ],
            Cors::Denied => vec![("Vary", "Origin".into())],
        }
    }

    /// The answer to a preflight (`OPTIONS`): 204 with the allow headers, or 403 naming the
    /// origin that is not allowed.
    pub fn preflight(&self, origin: Option<&str>, tenant: Option<&str>, keep_alive: bool) -> (u16, Vec<u8>) {
        let allow_origin = match self {
            Cors::Any => "*",
            Cors::Origin(o) => o.as_str(),
            Cors::Denied => {
                let message = format!(
                    "origin {} may not read tenant {}'s content (not in its CORS origins)",
                    origin.unwrap_or("(none)"),
                    tenant.unwrap_or("-")
                );
                let bytes = error_response(
                    403,
                    &message,
                    keep_alive,
                    &[("Vary", "Origin"), ("Cache-Control", "no-store")],
                );
                return (403, bytes);
            }
        };
        let mut b = HeadBuilder::new(204)
            .header("Access-Control-Allow-Origin", allow_origin)
            .header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
            .header(
                "Access-Control-Allow-Headers",
                "Range, If-Range, If-None-Match, If-Modified-Since",
            )
            .header("Access-Control-Max-Age", "86400")
            .header("Allow", "GET, HEAD, OPTIONS");
        if matches!(self, Cors::Origin(_)) {
            b = b.header("Vary", "Origin");
        }
        (
            204,
            b.header_u64("Content-Length", 0).connection(keep_alive).finish(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: Option<&[&str]>, signed: bool) -> DeliveryPolicy {
        DeliveryPolicy {
            settings: TenantDelivery {
                cors_origins: origins.map(|o| o.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            },
            signed,
        }
    }

    #[test]
    fn defaults_per_kind_and_status() {
        let p = DeliveryPolicy::default();
        assert_eq!(p.cache_control(200, Kind::Vod, 1), DEFAULT_VOD);
        assert_eq!(p.cache_control(206, Kind::Vod, 1), DEFAULT_VOD);
        assert_eq!(p.cache_control(200, Kind::LivePlaylist, 2), "public, max-age=2");
        assert_eq!(p.cache_control(404, Kind::Vod, 1), "public, max-age=10");
        assert_eq!(p.cache_control(416, Kind::Vod, 1), "no-store");
        assert_eq!(p.cache_control(502, Kind::Vod, 1), "no-store");
        assert_eq!(p.cache_control(302, Kind::Vod, 1), "no-store");
    }

    #[test]
    fn signed_tenants_default_to_private_and_overrides_win() {
        let mut p = policy(None, true);
        assert_eq!(
            p.cache_control(200, Kind::Vod, 1),
            "private, max-age=31536000, immutable"
        );
        assert_eq!(p.cache_control(404, Kind::Vod, 1), "private, max-age=10");
        p.settings.cache_control_vod = Some("public, max-age=60".into());
        p.settings.cache_control_error = Some("no-store".into());
        assert_eq!(p.cache_control(200, Kind::Vod, 1), "public, max-age=60");
        assert_eq!(p.cache_control(404, Kind::Vod, 1), "no-store");
    }

    #[test]
    fn an_origin_list_echoes_allowed_origins_and_denies_the_rest() {
        assert_eq!(policy(None, false).cors(Some("https://a.com")), Cors::Any);
        assert_eq!(policy(Some(&["*"]), false).cors(None), Cors::Any);
        let p = policy(Some(&["https://a.com"]), false);
        assert_eq!(
            p.cors(Some("https://a.com")),
            Cors::Origin("https://a.com".into())
        );
        assert_eq!(p.cors(Some("https://b.com")), Cors::Denied);
        assert_eq!(p.cors(None), Cors::Denied);
        let (status, bytes) = Cors::Denied.preflight(Some("https://b.com"), Some("acme"), true);
        assert_eq!(status, 403);
        assert!(String::from_utf8_lossy(&bytes).contains("origin https://b.com may not read tenant acme"));
        let (status, bytes) = Cors::Origin("https://a.com".into()).preflight(None, None, true);
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status, 204);
        assert!(
            text.contains("Access-Control-Allow-Origin: https://a.com\r\n") && text.contains("Vary: Origin")
        );
    }
}
