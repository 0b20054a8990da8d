//! Fuzzes the Range header and ?bytes= parsers. Invariants: no panic, at most MAX_RANGES
//! ranges, every resolved range non-empty and inside the length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_http::range::{parse_query_bytes, parse_range_header, RangeHeader, MAX_RANGES};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lens = [0u64, 1, 2, 1000, u64::MAX];
    if let Ok(RangeHeader::Bytes(specs)) = parse_range_header(text) {
        assert!(!specs.is_empty() && specs.len() <= MAX_RANGES);
        for spec in specs {
            for len in lens {
                if let Some(r) = spec.resolve(len) {
                    assert!(r.start <= r.end && r.end < len);
                }
            }
        }
    }
    if let Ok(spec) = parse_query_bytes(text) {
        for len in lens {
            if let Some(r) = spec.resolve(len) {
                assert!(r.start <= r.end && r.end < len);
            }
        }
    }
});
