//! Hostile and malformed input: the right status with a one-line reason, nothing outside the
//! root ever served, and the server keeps serving everyone else.

use std::io::{Read, Write};

use strata_tests::*;

fn server_with_secret_outside_root() -> (TempDir, TempDir, Strata) {
    let root = TempDir::new("bad-root");
    let outside = TempDir::new("bad-outside");
    root.write("acme/c/ok.mp4", &pattern(3, 5000));
    let secret = outside.write("secret.txt", b"TOP-SECRET-OUTSIDE-ROOT");
    std::os::unix::fs::symlink(&secret, root.path().join("acme/c/escape.mp4")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), root.path().join("acme/out")).expect("symlink dir");
    std::os::unix::fs::symlink("../../..", root.path().join("acme/c/up")).expect("symlink up");
    let server = Strata::edge(root.path(), &["--header-read-timeout", "1s"]);
    (root, outside, server)
}

fn assert_error(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    let body = r.text();
    assert!(
        body.starts_with(&format!("{status} ")) && body.ends_with('\n') && body.len() > 6,
        "{what}: body {body:?}"
    );
    assert_eq!(body.matches('\n').count(), 1, "{what}: one line");
    assert!(
        !body.contains("TOP-SECRET"),
        "{what}: leaked the file outside the root"
    );
}

#[test]
fn malformed_requests_get_400_and_the_connection_closes() {
    let (_r, _o, server) = server_with_secret_outside_root();
    for raw in [
        "GARBAGE\r\n\r\n",
        "GET /acme/c/ok.mp4 HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        "GET /acme/c/ok.mp4 HTTP/1.1\r\n\r\n",
        "GET /acme/c/ok.mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
        "GET /acme/c/ok.mp4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET http://evil/acme/c/ok.mp4 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /acme/c/ok\0.mp4 HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut s = connect(server.addr);
        s.write_all(raw.as_bytes()).expect("write");
        let r = read_response(&mut s, &mut Vec::new(), false);
        assert_error(&r, 400, &format!("{raw:?}"));
        assert_eq!(r.header("Connection"), Some("close"));
        closed_by_server(&mut s); // after a 400 the connection closes
    }
}

#[test]
fn oversized_heads_get_431() {
    let (_r, _o, server) = server_with_secret_outside_root();
    let long = "a".repeat(20_000);
    let r = send(
        server.addr,
        &request("GET", "/acme/c/ok.mp4", &[("X-Long", &long)]),
        false,
    );
    assert_error(&r, 431, "20 kB header");
    let many: Vec<(String, String)> = (0..70).map(|i| (format!("X-H{i}"), "v".to_string())).collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = send(server.addr, &request("GET", "/acme/c/ok.mp4", &refs), false);
    assert_error(&r, 431, "70 headers");
}

#[test]
fn a_client_still_sending_a_huge_head_reads_its_431_and_an_orderly_close_every_time() {
    let (_r, _o, server) = server_with_secret_outside_root();
    // 70 KB of head in one write: the edge reads 16 KiB and answers 431. Closing then would
    // leave the rest unread, and the kernel would answer it with a reset: the client's send
    // fails, and a reset can destroy the 431 (Linux keeps it in the receive queue, other
    // systems drop it, and an unsent one is purged from the server's send queue). With the
    // lingering close the send completes and the 431 is followed by a clean FIN.
    let raw = request("GET", "/acme/c/ok.mp4", &[("X-Long", &"a".repeat(70_000))]);
    let mut failed = Vec::new();
    for attempt in 0..1000 {
        let mut s = connect(server.addr);
        let sent = s.write_all(raw.as_bytes());
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("read timeout");
        let mut got = Vec::new();
        let end = s.read_to_end(&mut got);
        if sent.is_err() || end.is_err() || !got.starts_with(b"HTTP/1.1 431 ") {
            failed.push((
                attempt,
                sent.err(),
                end.err(),
                String::from_utf8_lossy(&got).to_string(),
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 1000 clients did not send their head and read a 431 and a clean close: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert_eq!(
        get(server.addr, "/acme/c/ok.mp4", &[]).status,
        200,
        "the edge keeps serving"
    );
}

#[test]
fn traversal_in_every_spelling_never_leaves_the_root() {
    let (_r, _o, server) = server_with_secret_outside_root();
    for (path, status) in [
        ("/acme/../../etc/passwd", 400),
        ("/acme/%2e%2e/%2e%2e/etc/passwd", 400),
        ("/acme/%2E%2E/x/y", 400),
        ("/acme/c/..%2f..%2f..%2fetc%2fpasswd", 400),
        ("/acme/c/%2fetc%2fpasswd", 400),
        ("/acme/c/ok.mp4%00.txt", 400),
        ("//etc/passwd", 400),
        ("/acme/c/%5c..%5cx", 400),
        ("/acme/c/.hidden", 400),
        ("/acme/c/escape.mp4", 404),
        ("/acme/out/secret.txt", 404),
        ("/acme/c/up", 404),
        ("/etc/passwd", 404),
        ("/", 404),
    ] {
        let r = get(server.addr, path, &[]);
        assert_error(&r, status, path);
        assert!(!r.text().contains("root:"), "{path}: served /etc/passwd");
    }
}

#[test]
fn unknown_assets_are_404_other_methods_405_with_allow_and_preflight_204() {
    let (_r, _o, server) = server_with_secret_outside_root();
    assert_error(&get(server.addr, "/acme/c/missing.mp4", &[]), 404, "missing");
    assert_error(
        &get(server.addr, "/nobody/none/x.mp4", &[]),
        404,
        "missing tenant",
    );
    for method in ["POST", "PUT", "DELETE"] {
        let r = send(server.addr, &request(method, "/acme/c/ok.mp4", &[]), false);
        assert_error(&r, 405, method);
        assert_eq!(r.header("Allow"), Some("GET, HEAD, OPTIONS"), "{method}");
    }
    // A CORS preflight from a player on another origin.
    let r = send(
        server.addr,
        &request(
            "OPTIONS",
            "/acme/c/ok.mp4",
            &[
                ("Origin", "https://player.example"),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "range"),
            ],
        ),
        false,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(r
        .header("Access-Control-Allow-Headers")
        .is_some_and(|h| h.contains("Range")));
    let r = get(
        server.addr,
        "/acme/c/ok.mp4",
        &[("Range", "bytes=0-9"), ("Origin", "https://player.example")],
    );
    assert_eq!(r.status, 206);
    assert!(
        r.header("Access-Control-Expose-Headers")
            .is_some_and(|h| h.contains("Content-Range")),
        "a player's script may read Content-Range"
    );
    let r = send(
        server.addr,
        "GET /acme/c/ok.mp4 HTTP/2.0\r\nHost: x\r\n\r\n",
        false,
    );
    assert!(
        r.status == 505 || r.status == 400,
        "HTTP/2.0 request line: {}",
        r.status
    );
}

#[test]
fn a_slow_request_head_gets_408_after_the_header_timeout() {
    let (_r, _o, server) = server_with_secret_outside_root();
    let mut s = connect(server.addr);
    s.write_all(b"GET /acme/c/ok.mp4 HTTP/1.1\r\nHost: x\r\n")
        .expect("partial head");
    let r = read_response(&mut s, &mut Vec::new(), false);
    assert_error(&r, 408, "partial head");
    closed_by_server(&mut s);
}

#[test]
fn server_keeps_serving_others_through_bad_input() {
    let (_r, _o, server) = server_with_secret_outside_root();
    let good = pattern(3, 5000);
    let mut keeper = connect(server.addr);
    let mut buf = Vec::new();
    keeper
        .write_all(request("GET", "/acme/c/ok.mp4", &[]).as_bytes())
        .expect("write");
    assert_eq!(read_response(&mut keeper, &mut buf, false).body, good);
    for raw in [
        "\0\0\0\0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX: \u{7f}\r\n\r\n",
        "GET /acme/%zz/x HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut s = connect(server.addr);
        s.write_all(raw.as_bytes()).expect("write");
        let _ = read_response(&mut s, &mut Vec::new(), false);
    }
    // Clients that connect and vanish mid-head or mid-body.
    for _ in 0..20 {
        let mut s = connect(server.addr);
        let _ = s.write_all(b"GET /acme/c/ok.mp4 HTT");
    }
    for _ in 0..20 {
        let mut s = connect(server.addr);
        let _ = s.write_all(request("GET", "/acme/c/ok.mp4", &[]).as_bytes());
    }
    keeper
        .write_all(request("GET", "/acme/c/ok.mp4", &[]).as_bytes())
        .expect("write");
    assert_eq!(
        read_response(&mut keeper, &mut buf, false).body,
        good,
        "old keep-alive connection still served"
    );
    assert_eq!(
        get(server.addr, "/acme/c/ok.mp4", &[]).body,
        good,
        "new connection still served"
    );
}
