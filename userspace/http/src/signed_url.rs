//! Signed URLs: a tenant that marks its content `signed` gives viewers URLs carrying
//! `exp` (expiry, Unix seconds), optionally `ip` (the one client address allowed) and `prefix`
//! (a path prefix the signature covers, so one token serves an HLS playlist and its segments),
//! and `sig`: the lowercase hex HMAC-SHA256, under one of the tenant's keys, of
//! `"{prefix or path}\n{exp}\n{ip or empty}"`. Two keys are valid at a time, so a tenant can
//! rotate: sign with the new one while URLs signed with the old one still work.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// The query parameters a signed URL adds.
pub const SIGNED_PARAMS: [&str; 4] = ["exp", "ip", "prefix", "sig"];

/// Why a request's signature does not admit it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("this content needs a signed URL (exp and sig in the query)")]
    Missing,
    #[error("signed URL: {0}")]
    Malformed(String),
    #[error("signed URL expired at {0} (Unix time)")]
    Expired(u64),
    #[error("signed URL is for another client address")]
    WrongAddress,
    #[error("signed URL's prefix {prefix:?} does not cover {path:?}")]
    OutsidePrefix { prefix: String, path: String },
    #[error("signed URL's signature does not match")]
    BadSignature,
}

impl SignatureError {
    /// 410 for an expired URL (it was valid), 403 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            SignatureError::Expired(_) => 410,
            _ => 403,
        }
    }
}

/// The signed parameters of a URL's query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignedParams {
    pub exp: u64,
    pub ip: Option<IpAddr>,
    pub prefix: Option<String>,
    pub sig: String,
}

impl SignedParams {
    /// Reads `exp`, `ip`, `prefix` and `sig` from a raw query (`a=1&b=2`, percent-encoded).
    pub fn from_query(query: &str) -> Result<SignedParams, SignatureError> {
        let mut exp = None;
        let mut out = SignedParams::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| SignatureError::Malformed(format!("{key} is not UTF-8")))?;
            match key {
                "exp" => {
                    exp = Some(value.parse().map_err(|_| {
                        SignatureError::Malformed(format!("exp {value:?} is not Unix seconds"))
                    })?)
                }
                "ip" => {
                    out.ip =
                        Some(value.parse().map_err(|_| {
                            SignatureError::Malformed(format!("ip {value:?} is not an address"))
                        })?)
                }
                "prefix" => out.prefix = Some(value.into_owned()),
                "sig" => out.sig = value.into_owned(),
                _ => {}
            }
        }
        match exp {
            Some(exp) if !out.sig.is_empty() => Ok(SignedParams { exp, ..out }),
            _ => Err(SignatureError::Missing),
        }
    }

    /// The query string carrying these parameters (percent-encoded where needed).
    pub fn to_query(&self) -> String {
        let mut q = format!("exp={}", self.exp);
        if let Some(ip) = self.ip {
            q.push_str(&format!("&ip={ip}"));
        }
        if let Some(prefix) = &self.prefix {
            let encoded = percent_encoding::utf8_percent_encode(prefix, percent_encoding::NON_ALPHANUMERIC);
            q.push_str(&format!("&prefix={encoded}"));
        }
        q.push_str(&format!("&sig={}", self.sig));
        q
    }
}

/// What is signed.
fn message(scope: &str, exp: u64, ip: Option<IpAddr>) -> String {
    let ip = ip.map(|a| a.to_string()).unwrap_or_default();
    format!("{scope}\n{exp}\n{ip}")
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; new_from_slice cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// Signs `scope` (a path, or the prefix given) until `exp` for `ip` (any client if None).
pub fn sign(key: &[u8], path: &str, prefix: Option<&str>, exp: u64, ip: Option<IpAddr>) -> SignedParams {
    let scope = prefix.unwrap_or(path);
    let mut m = mac(key);
    m.update(message(scope, exp, ip).as_bytes());
    let sig: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    SignedParams {
        exp,
        ip,
        prefix: prefix.map(str::to_string),
        sig,
    }
}

/// Checks a request for `path` (the decoded URL path) with `query` from `client` at `now`
/// against the tenant's `keys` (any of them).
pub fn verify(
    path: &str,
    query: &str,
    client: IpAddr,
    keys: &[Vec<u8>],
    now: u64,
) -> Result<SignedParams, SignatureError> {
    let params = SignedParams::from_query(query)?;
    let scope = match &params.prefix {
        Some(prefix) if path.starts_with(prefix.as_str()) => prefix.as_str(),
        Some(prefix) => {
            return Err(SignatureError::OutsidePrefix {
                prefix: prefix.clone(),
                path: path.to_string(),
            })
        }
        None => path,
    };
    let given = hex_bytes(&params.sig).ok_or(SignatureError::BadSignature)?;
    let text = message(scope, params.exp, params.ip);
    let valid = keys.iter().any(|key| {
        let mut m = mac(key);
        m.update(text.as_bytes());
        m.verify_slice(&given).is_ok()
    });
    if !valid {
        return Err(SignatureError::BadSignature);
    }
    if params.exp < now {
        return Err(SignatureError::Expired(params.exp));
    }
    if params.ip.is_some_and(|ip| ip != client) {
        return Err(SignatureError::WrongAddress);
    }
    Ok(params)
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &[u8] = b"old-key";
    const NEW: &[u8] = b"new-key";
    const ME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 7));

    fn keys() -> Vec<Vec<u8>> {
        vec![NEW.to_vec(), OLD.to_vec()]
    }

    #[test]
    fn a_signed_path_is_admitted_with_either_key_until_it_expires() {
        let path = "/acme/show/video.mp4";
        for key in [NEW, OLD] {
            let q = sign(key, path, None, 1000, None).to_query();
            assert!(verify(path, &q, ME, &keys(), 999).is_ok(), "{q}");
            assert_eq!(
                verify(path, &q, ME, &keys(), 1001),
                Err(SignatureError::Expired(1000))
            );
        }
        let q = sign(b"retired", path, None, 1000, None).to_query();
        assert_eq!(
            verify(path, &q, ME, &keys(), 1),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn tampering_with_path_expiry_address_or_signature_is_refused() {
        let path = "/acme/show/video.mp4";
        let p = sign(NEW, path, None, 1000, Some(ME));
        let q = p.to_query();
        assert!(verify(path, &q, ME, &keys(), 1).is_ok());
        assert_eq!(
            verify("/acme/show/other.mp4", &q, ME, &keys(), 1),
            Err(SignatureError::BadSignature)
        );
        let later = q.replace("exp=1000", "exp=99999");
        assert_eq!(
            verify(path, &later, ME, &keys(), 1),
            Err(SignatureError::BadSignature)
        );
        let other = "10.0.0.8".parse().expect("ip");
        assert_eq!(
            verify(path, &q, other, &keys(), 1),
            Err(SignatureError::WrongAddress)
        );
        let flipped = format!("{}0", &q[..q.len() - 1]);
        assert!(verify(path, &flipped, ME, &keys(), 1).is_err());
        assert_eq!(verify(path, "", ME, &keys(), 1), Err(SignatureError::Missing));
        assert!(matches!(
            verify(path, "exp=soon&sig=00", ME, &keys(), 1),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn a_prefix_signature_covers_every_path_below_it_and_nothing_else() {
        let p = sign(NEW, "", Some("/acme/live/"), 1000, None);
        let q = p.to_query();
        assert!(q.contains("prefix=%2Facme%2Flive%2F"), "{q}");
        for path in ["/acme/live/index.m3u8", "/acme/live/seg001.ts"] {
            assert!(verify(path, &q, ME, &keys(), 1).is_ok(), "{path}");
        }
        assert!(matches!(
            verify("/acme/other/seg.ts", &q, ME, &keys(), 1),
            Err(SignatureError::OutsidePrefix { .. })
        ));
        assert_eq!(SignatureError::Expired(1).status(), 410);
        assert_eq!(SignatureError::BadSignature.status(), 403);
    }
}
