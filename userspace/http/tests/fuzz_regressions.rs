//! Replays every input kept in fuzz/regressions/ (crashers found by `cargo xtask fuzz`, plus
//! seeds) through the parsers, so a fixed crash stays fixed.

use std::path::Path;
use std::time::UNIX_EPOCH;

use strata_http::content_path::ContentPath;
use strata_http::file_plan::{plan_file_response, Validators};
use strata_http::range::{parse_query_bytes, parse_range_header};
use strata_http::request::parse_request_head;

fn inputs(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("regressions dir") {
        out.push(std::fs::read(entry.expect("entry").path()).expect("read input"));
    }
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

#[test]
fn request_head_regressions_parse_without_panic() {
    for data in inputs("request_head") {
        if let Ok(Some((head, used))) = parse_request_head(&data) {
            assert!(used <= data.len());
            let _ = ContentPath::parse(&head.path);
            let v = Validators {
                len: 100,
                etag: "\"e\"",
                mtime: UNIX_EPOCH,
            };
            if let Ok(plan) = plan_file_response(&head, v) {
                assert!(plan.body.is_none_or(|b| b.end < 100));
            }
        }
    }
}

#[test]
fn range_header_regressions_parse_without_panic() {
    for data in inputs("range_header") {
        let text = String::from_utf8_lossy(&data);
        let _ = parse_range_header(&text);
        let _ = parse_query_bytes(&text);
    }
}
