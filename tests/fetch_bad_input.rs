//! `strata fetch` against servers and asset lists that lie: a hash or a size that does not
//! match, a server that answers a range with 200 or with the wrong bytes, DNS that names no
//! usable server. Each ends with a clear error and no output file (not even a partial one).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};

use strata_tests::control::Control;
use strata_tests::dns::start_dns;
use strata_tests::*;

fn fetch(args: &[&str]) -> Output {
    Command::new(strata_bin())
        .arg("fetch")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("strata fetch")
}

fn asset_list(name: &str, size: usize, sha256: &str) -> String {
    serde_json::json!({"tenant": "acme", "content": "show", "assets": [{
        "name": name, "url": format!("/acme/show/{name}"), "type": "video", "bitrate": 1_000_000,
        "resolution": "1280x720", "size": size, "sha256": sha256, "etag": "x"}]})
    .to_string()
}

/// Fails with `want` in its message and leaves no output.
fn refused(out: &Output, want: &str, output: &Path) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "strata fetch should fail: {err}");
    assert!(err.contains(want), "the error says {want:?}: {err}");
    assert!(!output.exists(), "no output file");
    assert!(
        !Path::new(&format!("{}.part", output.display())).exists(),
        "no partial file"
    );
}

/// How a lying server answers a GET: from the requested range (first, last) and the body.
type Answer = fn(Option<(u64, u64)>, &[u8]) -> Vec<u8>;

/// An HTTP server that answers the asset list, and every other GET with `answer(range)`.
fn liar(list: String, answer: Answer, body: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut stream = stream;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut range = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(r) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        let (a, b) = r.trim().split_once('-').unwrap_or(("0", "0"));
                        range = Some((a.parse().unwrap_or(0), b.parse().unwrap_or(0)));
                    }
                }
                let reply = if path.ends_with("assets.json") {
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{list}", list.len()).into_bytes()
                } else {
                    answer(range, &body)
                };
                if stream.write_all(&reply).is_err() {
                    break;
                }
            }
        }
    });
    addr
}

#[test]
fn lies_about_hashes_sizes_and_ranges_end_in_clear_errors_and_no_output() {
    let dir = TempDir::new("fetch-bad");
    let data = pattern(3, 300_000);
    let cache = dir.path().join("cache");
    // The edge holds the real bytes; the lists lie about them.
    let wrong_hash = "0".repeat(64);
    for (content, list) in [
        ("show", asset_list("v.mp4", data.len(), &wrong_hash)),
        ("big", asset_list("v.mp4", data.len() + 1000, &sha256_hex(&data))),
    ] {
        let d = cache.join("acme").join(content);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("v.mp4"), &data).expect("asset");
        std::fs::write(
            d.join("assets.json"),
            list.replace("/acme/show/", &format!("/acme/{content}/")),
        )
        .expect("list");
    }
    let edge = Strata::edge(&cache, &["--telemetry", "off"]);
    let server = format!("http://{}", edge.addr);
    let out = dir.path().join("out.mp4");
    let o = out.to_str().expect("utf-8");
    refused(
        &fetch(&["--server", &server, "-o", o, "acme/show/v.mp4"]),
        "hash to",
        &out,
    );
    // The list promises 1000 bytes more than the edge holds: the edge answers the bytes it has.
    refused(
        &fetch(&["--server", &server, "-o", o, "acme/big/v.mp4"]),
        "to a request for bytes 0-300999",
        &out,
    );
    // A server that answers a range with the whole body (200).
    let whole = liar(
        asset_list("v.mp4", data.len(), &sha256_hex(&data)),
        |_, body| {
            let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            r.extend_from_slice(body);
            r
        },
        data.clone(),
    );
    refused(
        &fetch(&["--server", &format!("http://{whole}"), "-o", o, "acme/show/v.mp4"]),
        "answered 200 to a range request",
        &out,
    );
    // A server that frames every range right and sends the wrong bytes.
    let garbage = liar(
        asset_list("v.mp4", data.len(), &sha256_hex(&data)),
        |range, body| {
            let (a, b) = range.unwrap_or((0, body.len() as u64 - 1));
            let mut r = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{}\r\nContent-Length: {}\r\n\r\n",
                body.len(),
                b - a + 1
            )
            .into_bytes();
            r.extend(std::iter::repeat_n(0x5a, (b - a + 1) as usize));
            r
        },
        data.clone(),
    );
    refused(
        &fetch(&[
            "--server",
            &format!("http://{garbage}"),
            "-o",
            o,
            "acme/show/v.mp4",
        ]),
        "hash to",
        &out,
    );
    // An honest list on the same edge: the same command writes the bytes.
    let d = cache.join("acme").join("fine");
    std::fs::create_dir_all(&d).expect("dir");
    std::fs::write(d.join("v.mp4"), &data).expect("asset");
    let list = asset_list("v.mp4", data.len(), &sha256_hex(&data)).replace("/acme/show/", "/acme/fine/");
    std::fs::write(d.join("assets.json"), list).expect("list");
    let ok = fetch(&["--server", &server, "-o", o, "acme/fine/v.mp4"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(std::fs::read(&out).expect("output") == data);
}

#[test]
fn dns_that_names_no_usable_server_is_a_clear_error() {
    let dir = TempDir::new("fetch-nodns");
    let control = Control::start(&dir.path().join("control"), &["--map-interval", "300ms"]);
    let dns = start_dns(&control, "cdn.test", None, "127.0.0.1");
    let out = dir.path().join("out.mp4");
    let o = out.to_str().expect("utf-8");
    let d = dns.addr.to_string();
    refused(
        &fetch(&["--dns", &d, "--domain", "cdn.test", "-o", o, "acme/show/v.mp4"]),
        "DNS SRV _a1-",
        &out,
    );
    let neither = fetch(&["-o", o, "acme/show/v.mp4"]);
    refused(&neither, "give --dns ADDR", &out);
}
