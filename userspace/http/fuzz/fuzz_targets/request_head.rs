//! Fuzzes the request-head parser and what the server does with a parsed head: the content
//! path check and the response plan. Invariants: no panic, consumed bytes within the input,
//! a planned body always inside the file.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use strata_http::content_path::ContentPath;
use strata_http::file_plan::{plan_file_response, Validators};
use strata_http::request::parse_request_head;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((head, used))) = parse_request_head(data) else { return };
    assert!(used <= data.len());
    if let Ok(path) = ContentPath::parse(&head.path) {
        for segment in [&path.tenant, &path.content_id, &path.asset] {
            assert!(!segment.is_empty() && !segment.contains('/') && segment != "..");
        }
    }
    for len in [0u64, 1, 100, 1 << 30] {
        let v = Validators { len, etag: "\"e\"", mtime: UNIX_EPOCH + Duration::from_secs(1_700_000_000) };
        if let Ok(plan) = plan_file_response(&head, v) {
            if let Some(body) = plan.body {
                assert!(body.start <= body.end && body.end < len);
            }
        }
    }
});
