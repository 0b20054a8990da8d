//! Content URLs: `/{tenant}/{content_id}/{asset}` decoded into a path that can only name a file
//! beneath the server's root.
//!
//! This is the first of two fences. Here every segment is percent-decoded and must be a plain
//! name (no `..`, no `/`, no NUL, no leading dot); the second fence is `openat2` with
//! `RESOLVE_BENEATH` in the file store, which stops symlinks that lead out of the root.

use percent_encoding::percent_decode_str;
use thiserror::Error;

/// Longest segment accepted, in bytes after decoding.
pub const MAX_SEGMENT: usize = 255;

/// A validated content address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContentPath {
    pub tenant: String,
    pub content_id: String,
    pub asset: String,
}

/// Why a URL path does not name content.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PathError {
    /// 400: the path tries to leave its segment or is not decodable.
    #[error("bad path: {0}")]
    Bad(String),
    /// 404: well-formed, but not of the shape /tenant/content/asset.
    #[error("no such content: paths look like /{{tenant}}/{{content_id}}/{{asset}}")]
    NotContent,
}

impl ContentPath {
    /// Decodes and checks a raw (percent-encoded) request path.
    pub fn parse(raw: &str) -> Result<ContentPath, PathError> {
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(PathError::Bad("path does not start with /".into()));
        };
        if rest.is_empty() {
            return Err(PathError::NotContent);
        }
        let mut segments = Vec::with_capacity(3);
        for raw_segment in rest.split('/') {
            segments.push(decode_segment(raw_segment)?);
        }
        match <[String; 3]>::try_from(segments) {
            Ok([tenant, content_id, asset]) => Ok(ContentPath {
                tenant,
                content_id,
                asset,
            }),
            Err(_) => Err(PathError::NotContent),
        }
    }

    /// The path relative to a store root: `tenant/content_id/asset`.
    pub fn relative(&self) -> String {
        format!("{}/{}/{}", self.tenant, self.content_id, self.asset)
    }
}

/// Percent-decodes one segment and refuses anything that is not a plain file name.
fn decode_segment(raw: &str) -> Result<String, PathError> {
    let bytes: Vec<u8> = percent_decode_str(raw).collect();
    let decoded =
        String::from_utf8(bytes).map_err(|_| PathError::Bad("path segment is not valid UTF-8".into()))?;
    if decoded.is_empty() {
        return Err(PathError::Bad("empty path segment".into()));
    }
    if decoded.len() > MAX_SEGMENT {
        return Err(PathError::Bad(format!(
            "path segment longer than {MAX_SEGMENT} bytes"
        )));
    }
    if decoded == "." || decoded == ".." {
        return Err(PathError::Bad("path segment . or .. is not allowed".into()));
    }
    if decoded.starts_with('.') {
        return Err(PathError::Bad("path segments may not start with a dot".into()));
    }
    if decoded.contains(['/', '\\', '\0']) {
        return Err(PathError::Bad("path segment contains /, \\ or NUL".into()));
    }
    if decoded.chars().any(char::is_control) {
        return Err(PathError::Bad("path segment contains a control character".into()));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_encoded_names() {
        let p = ContentPath::parse("/acme/movie-1/video%20720p.mp4").unwrap();
        assert_eq!(p.tenant, "acme");
        assert_eq!(p.asset, "video 720p.mp4");
        assert_eq!(p.relative(), "acme/movie-1/video 720p.mp4");
    }

    #[test]
    fn refuses_every_spelling_of_traversal() {
        for raw in [
            "/acme/../etc",
            "/acme/%2e%2e/passwd",
            "/acme/%2E%2E/passwd",
            "/acme/c/..%2fpasswd",
            "/acme/c/%2fetc%2fpasswd",
            "/acme/c/a%00b",
            "/acme/c/.hidden",
            "/acme/c/a%5cb",
            "/acme//x",
            "/acme/c/%ff",
        ] {
            assert!(matches!(ContentPath::parse(raw), Err(PathError::Bad(_))), "{raw}");
        }
    }

    #[test]
    fn wrong_depth_is_not_content() {
        for raw in ["/acme/c", "/acme/c/a/b", "/x"] {
            assert_eq!(ContentPath::parse(raw), Err(PathError::NotContent), "{raw}");
        }
    }
}
