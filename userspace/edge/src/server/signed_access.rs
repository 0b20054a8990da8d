//! Signed URLs at the edge: a request for a tenant whose access is `signed` (its keys come in
//! the name lookup) is served only with a valid signature (`strata_http::signed_url`): else
//! 403, or 410 once expired. A playlist served under a signed URL has the same signed query
//! appended to every URI it names (segments, renditions, keys, maps), so a player that
//! resolves them relative to the playlist carries the token on (prefix signatures cover them).

use std::net::IpAddr;

use strata_http::content_path::ContentPath;
use strata_http::signed_url::{verify, SignatureError, SignedParams};

use super::context::ServerContext;

/// None: the tenant's content is public; Some: the request's valid signature. `client` is
/// asked only for a signed tenant's request.
pub fn check(
    ctx: &ServerContext,
    path: &ContentPath,
    query: Option<&str>,
    client: impl FnOnce() -> Option<IpAddr>,
) -> Result<Option<SignedParams>, SignatureError> {
    let Some(keys) = ctx.lookup.as_ref().and_then(|l| l.signing_keys(&path.tenant)) else {
        return Ok(None);
    };
    let client = client().ok_or(SignatureError::Malformed(
        "the client's address is unknown".into(),
    ))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let canonical = format!("/{}", path.relative());
    verify(&canonical, query.unwrap_or(""), client, &keys, now).map(Some)
}

/// The playlist with `params`' query appended to each URI: every line that is not a tag or
/// blank, and every `URI="..."` attribute.
pub fn propagate(playlist: &str, params: &SignedParams) -> String {
    let query = params.to_query();
    let with_query = |uri: &str| {
        if uri.contains('?') {
            format!("{uri}&{query}")
        } else {
            format!("{uri}?{query}")
        }
    };
    let mut out = String::with_capacity(playlist.len() + 64);
    for line in playlist.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            out.push_str(line);
        } else if trimmed.starts_with('#') {
            out.push_str(&rewrite_uri_attributes(line, &with_query));
        } else {
            out.push_str(&with_query(trimmed));
        }
        out.push('\n');
    }
    out
}

/// `URI="x"` → `URI="f(x)"` in a tag line.
fn rewrite_uri_attributes(line: &str, f: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("URI=\"") {
        let start = at + "URI=\"".len();
        let Some(len) = rest[start..].find('"') else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&f(&rest[start..start + len]));
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uri_of_a_playlist_carries_the_signed_query() {
        let params = SignedParams {
            exp: 99,
            ip: None,
            prefix: Some("/acme/show/".into()),
            sig: "ab".into(),
        };
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\nseg001.ts\n\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8?x=1\n";
        let out = propagate(text, &params);
        let q = params.to_query();
        assert!(out.contains(&format!("#EXT-X-MAP:URI=\"init.mp4?{q}\"")), "{out}");
        assert!(out.contains(&format!("\nseg001.ts?{q}\n")), "{out}");
        assert!(out.contains(&format!("\nlow/index.m3u8?x=1&{q}\n")), "{out}");
        assert!(out.starts_with("#EXTM3U\n"));
    }
}
