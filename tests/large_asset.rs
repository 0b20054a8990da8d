//! A 1 GiB asset served whole and by ranges through the io_uring splice path, checksummed.

use std::io::Write;

use strata_tests::*;

const GIB: usize = 1 << 30;

#[test]
fn one_gib_asset_whole_and_by_ranges_matches_checksums() {
    let dir = TempDir::new("large");
    let path = dir.path().join("acme/big/movie.mp4");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let data = pattern(7, GIB);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&data))
        .expect("write 1 GiB");
    let server = Strata::edge(dir.path(), &[]);

    let whole = get(server.addr, "/acme/big/movie.mp4", &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body.len(), GIB);
    assert_eq!(checksum(&whole.body), checksum(&data), "whole body");
    drop(whole);

    let ranges = [
        (0usize, 2 << 20),
        (GIB / 2 - 12345, 3 << 20),
        (GIB - (1 << 20), 1 << 20),
        (123_456_789, 256 << 20),
    ];
    let mut s = connect(server.addr);
    let mut buf = Vec::new();
    for (start, len) in ranges {
        let range = format!("bytes={start}-{}", start + len - 1);
        s.write_all(request("GET", "/acme/big/movie.mp4", &[("Range", &range)]).as_bytes())
            .expect("write");
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(checksum(&r.body), checksum(&data[start..start + len]), "{range}");
    }
    let splice = server.file_body_bytes();
    assert!(
        splice >= (GIB + (262 << 20)) as f64,
        "bytes went through the kernel file paths: {splice}"
    );
}
