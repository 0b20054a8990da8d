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
