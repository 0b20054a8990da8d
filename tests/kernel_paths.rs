//! The kernel paths carried the bytes: io_uring splice for bodies that need the disk, sendfile
//! inline for warm ones, memory for small files, and the eBPF telemetry program, loaded for
//! real; and the sendfile fallback works when chosen.

use std::io::Write;

use strata_tests::*;

#[test]
fn io_uring_splice_carries_cold_bodies_warm_ones_go_inline_and_ebpf_telemetry_counts_connections() {
    if !kernel_features_or_skip("io_uring_splice_carries_the_bodies") {
        return;
    }
    let dir = TempDir::new("kernel");
    let data = pattern(11, 3 << 20);
    dir.write("acme/c/v.mp4", &data);
    let server = Strata::edge(dir.path(), &[]);
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.contains("body path: io_uring splice")),
        "start-up log names the path"
    );
    assert!(
        server.log().iter().any(|l| l.contains("conn_telemetry attached")),
        "eBPF program attached"
    );
    // Cold each time (its pages dropped): the body needs the disk, so it goes to the rings.
    for _ in 0..5 {
        drop_from_page_cache(&dir.path().join("acme/c/v.mp4"));
        let r = get(server.addr, "/acme/c/v.mp4", &[]);
        assert_eq!(checksum(&r.body), checksum(&data));
    }
    let m = server.metrics();
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.contains("conn_telemetry: first client connection on port")),
        "the eBPF program's aya-log record reached the edge's log"
    );
    assert_eq!(
        metric_value(
            &m,
            "strata_server_info{role=\"edge\",body_path=\"io_uring_splice\"}"
        ),
        1.0
    );
    assert_eq!(
        metric_value(&m, "strata_body_bytes_total{path=\"io_uring_splice\"}"),
        (5 * data.len()) as f64
    );
    assert_eq!(
        metric_value(&m, "strata_body_bytes_total{path=\"sendfile\"}"),
        0.0,
        "nothing warm was sent inline"
    );
    // Warm now (the last read left it in the page cache): inline by sendfile.
    let r = get(server.addr, "/acme/c/v.mp4", &[]);
    assert_eq!(checksum(&r.body), checksum(&data));
    assert_eq!(
        server.metric("strata_body_bytes_total{path=\"sendfile\"}"),
        data.len() as f64,
        "a warm body goes inline by sendfile"
    );
    assert_eq!(metric_value(&m, "strata_ebpf_conn_telemetry_loaded"), 1.0);
    // The sock_ops program saw every client connection (the 5 fetches; /metrics goes to the
    // admin port, which it does not count) and the bytes the clients acknowledged.
    assert!(metric_value(&m, "strata_tcp_established_total") >= 5.0, "{m}");
    let closed = metric_value(&m, "strata_tcp_closed_total");
    let acked = metric_value(&m, "strata_tcp_bytes_acked_total");
    assert!(closed >= 4.0, "closed connections counted: {closed}");
    assert!(
        acked >= (closed - 1.0).max(0.0) * data.len() as f64,
        "acked bytes {acked} for {closed} closed"
    );
}

#[test]
fn small_files_come_from_memory_small_ranges_go_inline_and_cold_large_bodies_through_io_uring() {
    if !kernel_features_or_skip("small_files_come_from_memory_small_ranges_go_inline") {
        return;
    }
    let dir = TempDir::new("inline-small");
    let (small, large) = (pattern(21, 16 << 10), pattern(22, 256 << 10));
    dir.write("acme/c/small.m3u8", &small);
    dir.write("acme/c/large.m4s", &large);
    let server = Strata::edge(dir.path(), &[]);
    for _ in 0..3 {
        assert_eq!(get(server.addr, "/acme/c/small.m3u8", &[]).body, small);
        drop_from_page_cache(&dir.path().join("acme/c/large.m4s"));
        assert_eq!(get(server.addr, "/acme/c/large.m4s", &[]).body, large);
    }
    // A range of the small file from memory; a range of the large file small enough to go
    // inline by sendfile.
    let r = get(server.addr, "/acme/c/small.m3u8", &[("Range", "bytes=100-199")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &small[100..200]));
    let r = get(server.addr, "/acme/c/large.m4s", &[("Range", "bytes=1000-1999")]);
    assert_eq!(r.body, &large[1000..2000]);
    let m = server.metrics();
    assert_eq!(
        metric_value(&m, "strata_body_bytes_total{path=\"memory\"}"),
        (3 * small.len() + 100) as f64
    );
    assert_eq!(
        metric_value(&m, "strata_body_bytes_total{path=\"sendfile\"}"),
        1000.0
    );
    assert_eq!(
        metric_value(&m, "strata_body_bytes_total{path=\"io_uring_splice\"}"),
        (3 * large.len()) as f64
    );
    // A file replaced on disk (renamed into place, as fills and placement do) is never served
    // from the old bytes in memory.
    let newer = pattern(23, 12 << 10);
    let tmp = dir.write("acme/c/.small.tmp", &newer);
    std::fs::rename(&tmp, dir.path().join("acme/c/small.m3u8")).expect("rename");
    assert_eq!(get(server.addr, "/acme/c/small.m3u8", &[]).body, newer);
    std::fs::remove_file(dir.path().join("acme/c/small.m3u8")).expect("remove");
    assert_eq!(get(server.addr, "/acme/c/small.m3u8", &[]).status, 404);
}

#[test]
fn with_small_body_memory_off_small_bodies_go_inline_by_sendfile() {
    if !kernel_features_or_skip("with_small_body_memory_off_small_bodies_go_inline_by_sendfile") {
        return;
    }
    let dir = TempDir::new("memory-off");
    let small = pattern(24, 16 << 10);
    dir.write("acme/c/small.m3u8", &small);
    let server = Strata::edge(dir.path(), &["--small-body-memory", "0"]);
    for _ in 0..3 {
        assert_eq!(get(server.addr, "/acme/c/small.m3u8", &[]).body, small);
    }
    let m = server.metrics();
    assert_eq!(metric_value(&m, "strata_body_bytes_total{path=\"memory\"}"), 0.0);
    assert_eq!(
        metric_value(&m, "strata_body_bytes_total{path=\"sendfile\"}"),
        (3 * small.len()) as f64
    );
}

#[test]
fn sendfile_fallback_serves_correct_bytes_when_chosen() {
    let dir = TempDir::new("sendfile");
    let data = pattern(12, 1 << 20);
    dir.write("acme/c/v.mp4", &data);
    let server = Strata::storage(dir.path(), &["--body-path", "sendfile"]);
    let r = get(server.addr, "/acme/c/v.mp4", &[("Range", "bytes=1000-")]);
    assert_eq!(r.body, &data[1000..]);
    let m = server.metrics();
    assert_eq!(
        metric_value(&m, "strata_body_bytes_total{path=\"sendfile\"}"),
        (data.len() - 1000) as f64
    );
    assert_eq!(
        metric_value(&m, "strata_body_bytes_total{path=\"io_uring_splice\"}"),
        0.0
    );
}

#[test]
fn slow_reader_gets_every_byte_through_the_splice_path() {
    // A client with a small receive buffer that reads in small bites keeps the socket full: the
    // splice worker sees EAGAIN and the connection waits for room, losing and duplicating
    // nothing.
    let dir = TempDir::new("slow");
    let data = pattern(13, 24 << 20);
    dir.write("acme/c/v.mp4", &data);
    let server = Strata::edge(dir.path(), &[]);
    drop_from_page_cache(&dir.path().join("acme/c/v.mp4"));
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(64 * 1024)
        .expect("SO_RCVBUF before connect");
    sock.connect(&server.addr.into()).expect("connect");
    let mut s: std::net::TcpStream = sock.into();
    s.write_all(request("GET", "/acme/c/v.mp4", &[]).as_bytes())
        .expect("write");
    // Read nothing for a moment: 24 MiB cannot fit in the socket buffers, so the server must
    // find the socket full and wait.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut buf = Vec::new();
    let mut reader = SlowReader {
        inner: &mut s,
        reads: 0,
    };
    let r = read_response(&mut reader, &mut buf, false);
    assert_eq!(r.status, 200);
    assert_eq!(checksum(&r.body), checksum(&data));
    let waits = server.metric("strata_send_waits_total");
    assert!(
        waits > 0.0,
        "the server had to wait for a full socket at least once ({waits})"
    );
    assert_eq!(
        server.metric("strata_body_bytes_total{path=\"io_uring_splice\"}"),
        data.len() as f64
    );
}

/// Reads at most 16 KiB at a time and pauses now and then.
struct SlowReader<'a> {
    inner: &'a mut std::net::TcpStream,
    reads: u32,
}

impl std::io::Read for SlowReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reads += 1;
        if self.reads.is_multiple_of(64) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let n = buf.len().min(16 * 1024);
        std::io::Read::read(self.inner, &mut buf[..n])
    }
}

#[test]
fn client_that_stops_reading_is_cut_off_after_the_send_stall_timeout() {
    let dir = TempDir::new("stall");
    let data = pattern(14, 64 << 20);
    dir.write("acme/c/v.mp4", &data);
    let small = pattern(15, 1000);
    dir.write("acme/c/small.mp4", &small);
    let server = Strata::edge(dir.path(), &["--send-stall-timeout", "1s"]);
    let mut s = connect(server.addr);
    s.write_all(request("GET", "/acme/c/v.mp4", &[]).as_bytes())
        .expect("write");
    // Never read: the server fills the socket, waits for room, and gives up after 1 s of no
    // progress. Poll the metric (bounded: a server that never gives up fails the test).
    let timeouts = settle(|| server.metric("strata_timeouts_total"), |v| v >= 1.0);
    assert!(timeouts >= 1.0, "no send-stall timeout within 10 s");
    // The connection was closed: draining it ends in EOF before the whole body arrived.
    let got = read_to_eof(&mut s, CLOSE_WITHIN).len();
    assert!(
        got < data.len(),
        "a stalled client must not receive a complete body ({got} bytes)"
    );
    assert_eq!(
        get(server.addr, "/acme/c/small.mp4", &[]).body,
        small,
        "others are still served"
    );
}
