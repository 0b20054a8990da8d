//! Keep-alive, pipelining and many concurrent connections.

use std::io::Write;

use strata_tests::*;

#[test]
fn one_thousand_requests_on_one_keep_alive_connection() {
    let dir = TempDir::new("keepalive");
    let data = pattern(2, 64 * 1024);
    dir.write("acme/c/seg.m4s", &data);
    let server = Strata::edge(dir.path(), &[]);
    let mut s = connect(server.addr);
    let mut buf = Vec::new();
    for i in 0..1000usize {
        let start = (i * 37) % 60_000;
        let range = format!("bytes={start}-{}", start + 999);
        s.write_all(request("GET", "/acme/c/seg.m4s", &[("Range", &range)]).as_bytes())
            .expect("write");
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(r.status, 206, "request {i}");
        assert_eq!(r.body, &data[start..start + 1000], "request {i}");
    }
    assert_eq!(
        server.metric("strata_connections_total"),
        1.0,
        "all 1000 on one connection"
    );
}

#[test]
fn thirty_two_pipelined_requests_in_one_write_are_answered_in_order() {
    let dir = TempDir::new("pipeline");
    let mut files = Vec::new();
    for i in 0..32u64 {
        let data = pattern(100 + i, 1000 + i as usize * 517);
        dir.write(&format!("acme/c/a{i}.bin"), &data);
        files.push(data);
    }
    let server = Strata::storage(dir.path(), &[]);
    let mut batch = String::new();
    for i in 0..32 {
        let method = if i % 5 == 4 { "HEAD" } else { "GET" };
        batch.push_str(&request(method, &format!("/acme/c/a{i}.bin"), &[]));
    }
    let mut s = connect(server.addr);
    s.write_all(batch.as_bytes()).expect("one write");
    let mut buf = Vec::new();
    for (i, data) in files.iter().enumerate() {
        let head_only = i % 5 == 4;
        let r = read_response(&mut s, &mut buf, head_only);
        assert_eq!(r.status, 200, "response {i}");
        assert_eq!(
            r.header("Content-Length"),
            Some(data.len().to_string().as_str()),
            "response {i} in order"
        );
        if !head_only {
            assert_eq!(&r.body, data, "response {i}");
        }
    }
}

#[test]
fn five_hundred_concurrent_connections_each_get_their_own_asset() {
    let dir = TempDir::new("concurrent");
    let mut sums = Vec::new();
    for i in 0..500u64 {
        let data = pattern(1000 + i, 16 * 1024 + (i as usize * 97) % 50_000);
        dir.write(&format!("t{}/c{i}/seg.m4s", i % 7), &data);
        sums.push((data.len(), checksum(&data)));
    }
    let server = Strata::edge(dir.path(), &[]);
    let addr = server.addr;
    // Open every connection first so all 500 are concurrently open, then fetch.
    let conns: Vec<_> = (0..500).map(|_| connect(addr)).collect();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(500));
    let handles: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                s.write_all(request("GET", &format!("/t{}/c{i}/seg.m4s", i % 7), &[]).as_bytes())
                    .expect("write");
                let r = read_response(&mut s, &mut Vec::new(), false);
                (i, r.status, r.body.len(), checksum(&r.body))
            })
        })
        .collect();
    for h in handles {
        let (i, status, len, sum) = h.join().expect("client thread");
        assert_eq!(status, 200, "connection {i}");
        assert_eq!((len, sum), sums[i], "connection {i} got its own bytes");
    }
    assert!(server.metric("strata_connections_total") >= 500.0);
}

#[test]
fn quiet_keep_alive_connections_are_parked_resumed_and_timed_out() {
    let dir = TempDir::new("park");
    let data = pattern(5, 10_000);
    dir.write("acme/c/seg.m4s", &data);
    let server = Strata::edge(dir.path(), &["--park-after", "100ms", "--idle-timeout", "2s"]);
    let mut conns = Vec::new();
    for _ in 0..20 {
        let mut s = connect(server.addr);
        s.write_all(request("GET", "/acme/c/seg.m4s", &[]).as_bytes())
            .expect("write");
        assert_eq!(read_response(&mut s, &mut Vec::new(), false).body, data);
        conns.push(s);
    }
    // Wait (as long as it takes) until every quiet connection has been handed to the parker.
    while server.metric("strata_connections_parked") < 20.0 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        server.metric("strata_connections_open"),
        20.0,
        "parked connections still count as open"
    );
    // A parked connection is resumed by its next request, cached asset and all.
    for s in conns.iter_mut().take(10) {
        s.write_all(request("GET", "/acme/c/seg.m4s", &[("Range", "bytes=10-19")]).as_bytes())
            .expect("write");
        let r = read_response(s, &mut Vec::new(), false);
        assert_eq!((r.status, r.body.as_slice()), (206, &data[10..20]));
    }
    // Past the idle timeout the parker closes them: the client sees EOF.
    for s in conns.iter_mut() {
        closed_by_server(s); // a parked connection closes at its idle timeout
    }
    while server.metric("strata_connections_open") > 0.0 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(server.metric("strata_connections_parked"), 0.0);
}

#[test]
fn many_keep_alive_viewers_of_one_asset_share_one_file_descriptor() {
    let dir = TempDir::new("sharedfd");
    let data = pattern(6, 64 * 1024);
    dir.write("acme/c/seg.m4s", &data);
    let server = Strata::edge(dir.path(), &[]);
    let before = server.metric("strata_process_open_fds");
    let mut conns = Vec::new();
    for _ in 0..300 {
        let mut s = connect(server.addr);
        s.write_all(request("GET", "/acme/c/seg.m4s", &[]).as_bytes())
            .expect("write");
        assert_eq!(read_response(&mut s, &mut Vec::new(), false).body, data);
        conns.push(s);
    }
    let after = server.metric("strata_process_open_fds");
    // One socket per viewer plus a handful (the shared file, pooled pipes); not two per viewer.
    assert!(
        after - before < 300.0 + 40.0,
        "fds grew from {before} to {after} for 300 viewers"
    );
    assert!(
        after - before >= 300.0,
        "every viewer's socket is still open ({before} -> {after})"
    );
}
