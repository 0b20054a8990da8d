//! Names the control plane accepts for tenants, clusters, servers and contents: they end up in
//! URLs and registry keys, so they are short, lower-case and free of separators.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{field} {value:?}: {why}")]
pub struct BadName {
    pub field: &'static str,
    pub value: String,
    pub why: &'static str,
}

/// Checks `value` as the name in `field`: 1–63 of a–z, 0–9, '-', '_', '.', not starting with '.'.
pub fn check(field: &'static str, value: &str) -> Result<(), BadName> {
    let bad = |why| {
        Err(BadName {
            field,
            value: value.into(),
            why,
        })
    };
    if value.is_empty() || value.len() > 63 {
        return bad("must be 1 to 63 characters");
    }
    if value.starts_with('.') {
        return bad("must not start with '.'");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
    {
        return bad("may hold only a-z, 0-9, '-', '_' and '.'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_safe_names_pass_and_others_say_why_not() {
        assert!(check("tenant", "acme").is_ok());
        assert!(check("content", "launch-trailer_v2.1").is_ok());
        for bad in ["", "Acme", "a/b", "..", ".hidden", "a b", &"x".repeat(64)] {
            let e = check("tenant", bad).unwrap_err();
            assert_eq!(e.field, "tenant");
            assert!(e.to_string().starts_with("tenant "), "{e}");
        }
    }
}
