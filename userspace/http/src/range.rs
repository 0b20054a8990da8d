//! Byte ranges: the `Range:` header (RFC 9110 §14) and the firewall-friendly `?bytes=START-END`
//! query form, parsed and resolved against a file length.
//!
//! Parsing never allocates more than the number of ranges the client sent, capped at
//! [`MAX_RANGES`], so a hostile header cannot make the server build a huge list.

use thiserror::Error;

/// Most ranges accepted in one `Range:` header; more is treated as an attack and rejected.
pub const MAX_RANGES: usize = 64;

/// One range as the client wrote it, before the file length is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `first-last`, both inclusive.
    FromTo(u64, u64),
    /// `first-`: from `first` to the end.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// A satisfiable range resolved against a length: `start..=end`, never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Always false: a resolved range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Why a range could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RangeError {
    #[error("range {0:?} is not of the form first-last, first- or -suffix")]
    Syntax(String),
    #[error("range {0:?} has its first byte after its last")]
    Reversed(String),
    #[error("more than {MAX_RANGES} ranges in one request")]
    TooMany,
    #[error("empty range set")]
    Empty,
}

/// What a `Range:` header asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeHeader {
    /// A unit other than `bytes`: RFC 9110 says to ignore the header.
    OtherUnit,
    /// One or more byte ranges.
    Bytes(Vec<RangeSpec>),
}

/// Parses a `Range:` header value such as `bytes=0-99, -500`.
pub fn parse_range_header(value: &str) -> Result<RangeHeader, RangeError> {
    let value = value.trim();
    let Some((unit, set)) = value.split_once('=') else {
        return Err(RangeError::Syntax(value.to_string()));
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ok(RangeHeader::OtherUnit);
    }
    let mut specs = Vec::new();
    for part in set.split(',') {
        let part = part.trim();
        if part.is_empty() {
            // RFC 9110 allows empty list elements ("bytes=0-1,,2-3").
            continue;
        }
        if specs.len() == MAX_RANGES {
            return Err(RangeError::TooMany);
        }
        specs.push(parse_spec(part)?);
    }
    if specs.is_empty() {
        return Err(RangeError::Empty);
    }
    Ok(RangeHeader::Bytes(specs))
}

/// Parses one `first-last`, `first-` or `-suffix` element.
pub fn parse_spec(part: &str) -> Result<RangeSpec, RangeError> {
    let syntax = || RangeError::Syntax(part.to_string());
    let (first, last) = part.split_once('-').ok_or_else(syntax)?;
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), last.is_empty()) {
        (true, true) => Err(syntax()),
        (true, false) => Ok(RangeSpec::Suffix(parse_digits(last).ok_or_else(syntax)?)),
        (false, true) => Ok(RangeSpec::From(parse_digits(first).ok_or_else(syntax)?)),
        (false, false) => {
            let a = parse_digits(first).ok_or_else(syntax)?;
            let b = parse_digits(last).ok_or_else(syntax)?;
            if a > b {
                return Err(RangeError::Reversed(part.to_string()));
            }
            Ok(RangeSpec::FromTo(a, b))
        }
    }
}

/// Parses a non-empty run of ASCII digits into a u64 (no sign, no overflow).
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl RangeSpec {
    /// Resolves the range against a representation of `len` bytes; `None` if unsatisfiable.
    pub fn resolve(self, len: u64) -> Option<ByteRange> {
        if len == 0 {
            return None;
        }
        match self {
            RangeSpec::FromTo(a, b) if a < len => Some(ByteRange {
                start: a,
                end: b.min(len - 1),
            }),
            RangeSpec::From(a) if a < len => Some(ByteRange {
                start: a,
                end: len - 1,
            }),
            RangeSpec::Suffix(n) if n > 0 => Some(ByteRange {
                start: len - n.min(len),
                end: len - 1,
            }),
            _ => None,
        }
    }
}

/// Parses the value of the `bytes` query parameter (`START-END` or `START-`).
pub fn parse_query_bytes(value: &str) -> Result<RangeSpec, RangeError> {
    match parse_spec(value)? {
        RangeSpec::Suffix(_) => Err(RangeError::Syntax(value.to_string())),
        spec => Ok(spec),
    }
}

/// Finds `bytes=...` among the `&`-separated query parameters.
pub fn find_query_bytes(query: &str) -> Option<&str> {
    query.split('&').find_map(|kv| kv.strip_prefix("bytes="))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> RangeSpec {
        match parse_range_header(v).unwrap() {
            RangeHeader::Bytes(s) if s.len() == 1 => s[0],
            other => panic!("{v}: {other:?}"),
        }
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(one("bytes=0-99"), RangeSpec::FromTo(0, 99));
        assert_eq!(one("bytes=100-"), RangeSpec::From(100));
        assert_eq!(one("bytes=-500"), RangeSpec::Suffix(500));
        assert_eq!(one(" Bytes = 5 - 7 "), RangeSpec::FromTo(5, 7));
    }

    #[test]
    fn other_units_are_ignored() {
        assert_eq!(parse_range_header("items=0-1"), Ok(RangeHeader::OtherUnit));
    }

    #[test]
    fn rejects_garbage() {
        for v in [
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=+1-2",
            "0-1",
            "bytes=,",
        ] {
            assert!(parse_range_header(v).is_err(), "{v}");
        }
        assert!(matches!(
            parse_range_header("bytes=5-2"),
            Err(RangeError::Reversed(_))
        ));
        assert!(parse_range_header("bytes=99999999999999999999999-").is_err());
    }

    #[test]
    fn caps_the_number_of_ranges() {
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(parse_range_header(&many), Err(RangeError::TooMany));
        let ok = format!("bytes={}", vec!["0-0"; MAX_RANGES].join(","));
        assert!(parse_range_header(&ok).is_ok());
    }

    #[test]
    fn resolves_against_length() {
        let r = |s: RangeSpec, len| s.resolve(len).map(|b| (b.start, b.end));
        assert_eq!(r(RangeSpec::FromTo(0, 99), 1000), Some((0, 99)));
        assert_eq!(r(RangeSpec::FromTo(900, 2000), 1000), Some((900, 999)));
        assert_eq!(r(RangeSpec::FromTo(1000, 2000), 1000), None);
        assert_eq!(r(RangeSpec::From(999), 1000), Some((999, 999)));
        assert_eq!(r(RangeSpec::Suffix(5000), 1000), Some((0, 999)));
        assert_eq!(r(RangeSpec::Suffix(0), 1000), None);
        assert_eq!(r(RangeSpec::From(0), 0), None);
    }

    #[test]
    fn query_form_takes_start_end_and_open_end() {
        assert_eq!(parse_query_bytes("100-199"), Ok(RangeSpec::FromTo(100, 199)));
        assert_eq!(parse_query_bytes("100-"), Ok(RangeSpec::From(100)));
        assert!(parse_query_bytes("-100").is_err());
        assert_eq!(find_query_bytes("a=1&bytes=1-2"), Some("1-2"));
        assert_eq!(find_query_bytes("a=1"), None);
    }
}
