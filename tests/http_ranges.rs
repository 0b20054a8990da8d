//! The range and conditional-request matrix, checked byte for byte against the file.

use std::io::Write;

use strata_tests::*;

const LEN: usize = 100_000;

fn setup() -> (TempDir, Vec<u8>, Strata) {
    let dir = TempDir::new("ranges");
    let data = pattern(1, LEN);
    dir.write("acme/movie/video.mp4", &data);
    let server = Strata::storage(dir.path(), &[]);
    (dir, data, server)
}

#[test]
fn range_forms_return_206_with_exact_bytes_and_content_range() {
    let (_dir, data, server) = setup();
    let cases: &[(&str, usize, usize)] = &[
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=99990-", 99_990, LEN - 1),
        ("bytes=-500", LEN - 500, LEN - 1),
        ("bytes=-999999", 0, LEN - 1),
        ("bytes=99000-200000", 99_000, LEN - 1),
        ("bytes=0-99999", 0, LEN - 1),
    ];
    for &(range, start, end) in cases {
        let r = get(server.addr, "/acme/movie/video.mp4", &[("Range", range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, &data[start..=end], "{range}: body bytes");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes {start}-{end}/{LEN}").as_str()),
            "{range}"
        );
        assert_eq!(
            r.header("Content-Length"),
            Some((end - start + 1).to_string().as_str())
        );
        assert!(r.header("ETag").is_some() && r.header("Last-Modified").is_some());
        assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    }
}

#[test]
fn whole_file_get_and_head_carry_validators() {
    let (_dir, data, server) = setup();
    let r = get(server.addr, "/acme/movie/video.mp4", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(checksum(&r.body), checksum(&data));
    assert_eq!(r.header("Content-Type"), Some("video/mp4"));
    let h = send(server.addr, &request("HEAD", "/acme/movie/video.mp4", &[]), true);
    assert_eq!(h.status, 200);
    assert_eq!(h.header("Content-Length"), Some(LEN.to_string().as_str()));
    assert_eq!(h.header("ETag"), r.header("ETag"));
    assert_eq!(h.header("Last-Modified"), r.header("Last-Modified"));
    assert_eq!(h.header("Accept-Ranges"), Some("bytes"));
}

#[test]
fn unsatisfiable_or_malformed_ranges_are_416_with_star_content_range() {
    let (_dir, _data, server) = setup();
    for range in [
        "bytes=100000-",
        "bytes=200000-300000",
        "bytes=-0",
        "bytes=5-2",
        "bytes=abc",
    ] {
        let r = get(server.addr, "/acme/movie/video.mp4", &[("Range", range)]);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes */{LEN}").as_str()),
            "{range}"
        );
        assert!(
            r.text().starts_with("416 "),
            "{range}: body says why: {}",
            r.text()
        );
    }
}

#[test]
fn several_ranges_are_answered_with_the_whole_body() {
    let (_dir, data, server) = setup();
    let r = get(
        server.addr,
        "/acme/movie/video.mp4",
        &[("Range", "bytes=0-9,20-29")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    let other_unit = get(server.addr, "/acme/movie/video.mp4", &[("Range", "items=0-9")]);
    assert_eq!(other_unit.status, 200);
}

#[test]
fn query_bytes_gives_200_with_exactly_those_bytes() {
    let (_dir, data, server) = setup();
    let r = get(server.addr, "/acme/movie/video.mp4?bytes=100-199", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, &data[100..200]);
    assert!(r.header("Content-Range").is_none());
    let open = get(server.addr, "/acme/movie/video.mp4?bytes=99900-", &[]);
    assert_eq!(open.body, &data[99_900..]);
    assert_eq!(
        get(server.addr, "/acme/movie/video.mp4?bytes=200000-200001", &[]).status,
        416
    );
    assert_eq!(
        get(server.addr, "/acme/movie/video.mp4?bytes=x-1", &[]).status,
        400
    );
}

/// A conditional GET that must answer 304, then a range request on the same connection: a
/// 304 carries no body, so any byte after its head would be read as the next response's head
/// (and [`nothing_follows`] catches bytes after the last one). Returns the 304.
fn not_modified_then_a_range(addr: std::net::SocketAddr, condition: (&str, &str), data: &[u8]) -> Response {
    let mut s = connect(addr);
    let mut buf = Vec::new();
    s.write_all(request("GET", "/acme/movie/video.mp4", &[condition]).as_bytes())
        .expect("write");
    let not_modified = read_response(&mut s, &mut buf, false);
    assert_eq!(not_modified.status, 304, "{condition:?}");
    s.write_all(request("GET", "/acme/movie/video.mp4", &[("Range", "bytes=0-9")]).as_bytes())
        .expect("write");
    let next = read_response(&mut s, &mut buf, false);
    assert_eq!(
        (next.status, next.body.as_slice()),
        (206, &data[..10]),
        "the response after the 304 on the same connection"
    );
    nothing_follows(&mut s, buf, &next);
    not_modified
}

#[test]
fn conditional_requests_return_304_and_if_range_gates_ranges() {
    let (_dir, data, server) = setup();
    let first = get(server.addr, "/acme/movie/video.mp4", &[]);
    let etag = first.header("ETag").expect("etag").to_string();
    let last_modified = first.header("Last-Modified").expect("last-modified").to_string();

    let r = not_modified_then_a_range(server.addr, ("If-None-Match", &etag), &data);
    assert_eq!(r.header("ETag"), Some(etag.as_str()));
    let r = get(
        server.addr,
        "/acme/movie/video.mp4",
        &[("If-None-Match", "\"other\"")],
    );
    assert_eq!(r.status, 200);
    not_modified_then_a_range(server.addr, ("If-Modified-Since", &last_modified), &data);
    let r = get(
        server.addr,
        "/acme/movie/video.mp4",
        &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")],
    );
    assert_eq!(r.status, 200);

    let r = get(
        server.addr,
        "/acme/movie/video.mp4",
        &[("Range", "bytes=10-19"), ("If-Range", &etag)],
    );
    assert_eq!((r.status, r.body.as_slice()), (206, &data[10..20]));
    let r = get(
        server.addr,
        "/acme/movie/video.mp4",
        &[("Range", "bytes=10-19"), ("If-Range", &last_modified)],
    );
    assert_eq!(r.status, 206);
    let r = get(
        server.addr,
        "/acme/movie/video.mp4",
        &[("Range", "bytes=10-19"), ("If-Range", "\"stale\"")],
    );
    assert_eq!((r.status, r.body.len()), (200, LEN));
}

#[test]
fn empty_file_is_served_with_zero_length() {
    let dir = TempDir::new("empty");
    dir.write("acme/movie/empty.mp4", b"");
    let server = Strata::storage(dir.path(), &[]);
    let r = get(server.addr, "/acme/movie/empty.mp4", &[]);
    assert_eq!((r.status, r.header("Content-Length")), (200, Some("0")));
    assert_eq!(
        get(server.addr, "/acme/movie/empty.mp4", &[("Range", "bytes=0-")]).status,
        416
    );
}
