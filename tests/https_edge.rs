//! HTTPS on the edge, checked with real clients (curl, openssl s_client) against the release
//! binary: TLS 1.2 and 1.3, certificates chosen by SNI, hits and misses byte-exact, ranges and
//! several requests on one session, and bad clients (plain HTTP, garbage, silence) closing
//! only their own connection.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use strata_tests::https::*;
use strata_tests::*;

/// An edge with an HTTPS listener (certificate for `localhost`) whose cache directory holds
/// `hit.bin`, proxying misses (`--cache-capacity 0`: they stay misses) to a storage server
/// that holds `miss.bin`.
struct Setup {
    _dirs: (TempDir, TempDir, TempDir),
    _storage: Strata,
    edge: Strata,
    https: SocketAddr,
    cert: TestCert,
    hit: Vec<u8>,
    miss: Vec<u8>,
}

fn setup(extra: &[&str]) -> Setup {
    let certs = TempDir::new("https-certs");
    let cert = self_signed(certs.path(), "localhost", &["localhost"]);
    let store = TempDir::new("https-store");
    let miss = pattern(71, (2 << 20) + 333);
    store.write("acme/c/miss.bin", &miss);
    let storage = Strata::storage(store.path(), &[]);
    let cache = TempDir::new("https-cache");
    let hit = pattern(72, (3 << 20) + 777);
    cache.write("acme/c/hit.bin", &hit);
    let cluster = format!("home={}", storage.addr);
    let flag = https_flag(&cert, "localhost");
    let mut args = vec![
        "--cluster",
        &cluster,
        "--tenant",
        "acme=home",
        "--miss",
        "proxy",
        "--cache-capacity",
        "0",
        "--https",
        &flag,
    ];
    args.extend_from_slice(extra);
    let edge = Strata::edge(cache.path(), &args);
    let https = https_addr(&edge, 0);
    Setup {
        _dirs: (certs, store, cache),
        _storage: storage,
        edge,
        https,
        cert,
        hit,
        miss,
    }
}

/// curl over HTTPS pinned to one TLS version; returns the body and curl's stderr.
fn curl_get(s: &Setup, version: &[&str], path: &str, extra: &[&str]) -> (Vec<u8>, String) {
    let u = url(s.https, "localhost", path);
    let mut args = version.to_vec();
    args.extend_from_slice(extra);
    args.push(&u);
    let out = curl(s.https, "localhost", &s.cert.cert, &args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl {args:?} failed: {err}");
    (out.stdout, err)
}

#[test]
fn https_hits_misses_and_ranges_are_byte_exact_over_tls_1_2_and_1_3() {
    let s = setup(&[]);
    let tls12: &[&str] = &["--tlsv1.2", "--tls-max", "1.2"];
    let tls13: &[&str] = &["--tlsv1.3"];
    for (version, said) in [(tls12, "TLSv1.2"), (tls13, "TLSv1.3")] {
        let (body, err) = curl_get(&s, version, "/acme/c/hit.bin", &[]);
        assert!(err.contains(&format!("SSL connection using {said}")), "{err}");
        assert_eq!(checksum(&body), checksum(&s.hit), "hit over {said}");
        let (body, _) = curl_get(&s, version, "/acme/c/miss.bin", &[]);
        assert_eq!(checksum(&body), checksum(&s.miss), "miss over {said}");
        let (body, _) = curl_get(&s, version, "/acme/c/hit.bin", &["-r", "1000000-1999999"]);
        assert_eq!(body, &s.hit[1_000_000..2_000_000], "hit range over {said}");
        let (body, _) = curl_get(&s, version, "/acme/c/miss.bin", &["-r", "5-1048580"]);
        assert_eq!(body, &s.miss[5..1_048_581], "miss range over {said}");
    }
    // Conditional requests and errors behave as on plain HTTP.
    let (head, _) = curl_get(&s, tls13, "/acme/c/hit.bin", &["-I"]);
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("ETag on a HEAD over HTTPS")
        .trim()
        .to_string();
    let inm = format!("If-None-Match: {etag}");
    let (_, err) = curl_get(&s, tls13, "/acme/c/hit.bin", &["-H", &inm, "-o", "/dev/null"]);
    assert!(err.contains("< HTTP/1.1 304"), "{err}");
    let (_, err) = curl_get(
        &s,
        tls13,
        "/acme/c/hit.bin",
        &["-r", "99999999-", "-o", "/dev/null"],
    );
    assert!(err.contains("< HTTP/1.1 416"), "{err}");
    let (_, err) = curl_get(&s, tls13, "/acme/c/nothing.bin", &["-o", "/dev/null"]);
    assert!(err.contains("< HTTP/1.1 404"), "{err}");
    assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");

    let m = s.edge.metrics();
    assert!(metric_value(&m, "strata_https_handshakes_total{version=\"tls1.2\"}") >= 4.0);
    assert!(metric_value(&m, "strata_https_handshakes_total{version=\"tls1.3\"}") >= 4.0);
    let userspace = metric_value(&m, "strata_https_bytes_total{mode=\"userspace\"}");
    let bodies = 2 * (s.hit.len() + s.miss.len() + 1_000_000 + 1_048_576);
    assert!(
        userspace >= bodies as f64,
        "{userspace} bytes encrypted in userspace, bodies {bodies}"
    );
    assert!(
        metric_value(&m, "strata_body_bytes_total{path=\"tls_userspace\"}")
            >= (2 * (s.hit.len() + 1_000_000)) as f64
    );
    assert!(
        metric_value(&m, "strata_body_bytes_total{path=\"proxy_copy\"}")
            >= (2 * (s.miss.len() + 1_048_576)) as f64
    );
    // The kernel TLS probe agrees with the kernel, and the log says which mode is in use.
    let ktls = Path::new("/sys/module/tls").exists();
    assert_eq!(
        metric_value(&m, "strata_https_ktls_available"),
        f64::from(u8::from(ktls))
    );
    assert_eq!(
        metric_value(&m, "strata_https_encryption_mode{mode=\"userspace\"}"),
        1.0
    );
    if !ktls {
        assert!(
            s.edge
                .log()
                .iter()
                .any(|l| l
                    .contains("HTTPS bodies encrypted in userspace: kernel has no TLS offload (CONFIG_TLS)")),
            "the mode is logged"
        );
    }
    // Plain HTTP keeps its kernel path beside HTTPS.
    let plain = get(s.edge.addr, "/acme/c/hit.bin", &[]);
    assert_eq!(checksum(&plain.body), checksum(&s.hit));
}

#[test]
fn several_requests_on_one_tls_session_are_answered_in_order_byte_exact() {
    let s = setup(&[]);
    for version in ["-tls1_2", "-tls1_3"] {
        let before = s.edge.metrics();
        let mut session = TlsSession::open(s.https, "localhost", &s.cert.cert, version);
        // Two pipelined in one write, then one more after reading: hits, a miss and ranges.
        session.send(&format!(
            "{}{}",
            request("GET", "/acme/c/hit.bin", &[("Range", "bytes=10-65545")]),
            request("GET", "/acme/c/miss.bin", &[])
        ));
        let r = session.response();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (206, &s.hit[10..65546]),
            "{version}"
        );
        let r = session.response();
        assert_eq!(
            (r.status, checksum(&r.body)),
            (200, checksum(&s.miss)),
            "{version}"
        );
        session.send(&request("GET", "/acme/c/hit.bin", &[]));
        let r = session.response();
        assert_eq!(
            (r.status, checksum(&r.body)),
            (200, checksum(&s.hit)),
            "{version}"
        );
        session.send(&request(
            "GET",
            "/acme/c/miss.bin",
            &[("Range", "bytes=-100"), ("Connection", "close")],
        ));
        let r = session.response();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (206, &s.miss[s.miss.len() - 100..]),
            "{version}"
        );
        session.closed_by_server();
        let after = s.edge.metrics();
        let handshakes = |m: &str| {
            metric_value(m, "strata_https_handshakes_total{version=\"tls1.2\"}")
                + metric_value(m, "strata_https_handshakes_total{version=\"tls1.3\"}")
        };
        assert_eq!(
            handshakes(&after) - handshakes(&before),
            1.0,
            "four requests, one handshake"
        );
    }
}

#[test]
fn sni_chooses_between_two_certificates_and_no_name_gets_the_first() {
    let certs = TempDir::new("https-sni");
    let a = self_signed(certs.path(), "a", &["a.test"]);
    let b = self_signed(certs.path(), "b", &["b.test", "*.b.test"]);
    let cache = TempDir::new("https-sni-cache");
    let data = pattern(73, 200_000);
    cache.write("acme/c/x.bin", &data);
    // Two flags with one address make one listener with two certificates.
    let (fa, fb) = (https_flag(&a, "a.test"), https_flag(&b, "b.test,*.b.test"));
    let edge = Strata::edge(cache.path(), &["--https", &fa, "--https", &fb]);
    let https = https_addr(&edge, 0);
    assert_eq!(presented_cert(https, Some("a.test")), normalize_pem(&a.pem));
    assert_eq!(presented_cert(https, Some("b.test")), normalize_pem(&b.pem));
    assert_eq!(presented_cert(https, Some("www.b.test")), normalize_pem(&b.pem));
    assert_eq!(
        presented_cert(https, None),
        normalize_pem(&a.pem),
        "no SNI: the first certificate"
    );
    assert_eq!(
        presented_cert(https, Some("other.test")),
        normalize_pem(&a.pem),
        "unknown name: the first"
    );
    // curl verifies each name against the one CA it trusts, so it succeeds only with the
    // certificate SNI picked for that name.
    for (name, ca, ok) in [
        ("a.test", &a, true),
        ("b.test", &b, true),
        ("www.b.test", &b, true),
        ("b.test", &a, false),
        ("a.test", &b, false),
    ] {
        let out = curl(https, name, &ca.cert, &[&url(https, name, "/acme/c/x.bin")]);
        assert_eq!(
            out.status.success(),
            ok,
            "{name} trusting {}: {}",
            ca.cert.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        if ok {
            assert_eq!(checksum(&out.stdout), checksum(&data), "{name}");
        }
    }
}

#[test]
fn plain_http_garbage_and_silence_on_the_tls_port_close_only_their_connection() {
    let s = setup(&["--header-read-timeout", "2s"]);
    // A session that stays open and is served across the bad clients.
    let mut session = TlsSession::open(s.https, "localhost", &s.cert.cert, "-tls1_3");
    session.send(&request("GET", "/acme/c/hit.bin", &[("Range", "bytes=0-99999")]));
    let r = session.response();
    assert_eq!((r.status, r.body.as_slice()), (206, &s.hit[..100_000]));

    // Plain HTTP: told in plain text to use https, then closed.
    let mut plain = connect(s.https);
    plain
        .write_all(request("GET", "/acme/c/hit.bin", &[]).as_bytes())
        .expect("write plain request");
    let mut buf = Vec::new();
    let r = read_response(&mut plain, &mut buf, false);
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("speaks HTTPS") && r.text().contains("https://"),
        "{}",
        r.text()
    );
    nothing_follows(&mut plain, buf, &r);

    // A TLS record header followed by garbage instead of a client hello: closed.
    let mut bad = connect(s.https);
    bad.write_all(b"\x16\x03\x01\x00\x40").expect("record header");
    bad.write_all(&[0xAB; 64]).expect("garbage hello");
    let rest = read_to_eof(&mut bad, CLOSE_WITHIN);
    assert!(
        rest.len() < 64,
        "at most a TLS alert came back: {} bytes",
        rest.len()
    );

    // Binary noise that is neither TLS nor HTTP: closed.
    let mut noise = connect(s.https);
    noise.write_all(&[0u8; 300]).expect("noise");
    let _ = read_to_eof(&mut noise, CLOSE_WITHIN);

    // A client that connects and says nothing is closed after the head timeout (2 s).
    let mut silent: TcpStream = connect(s.https);
    closed_by_server(&mut silent);

    // The first session is still served, and so is a new client.
    session.send(&request("GET", "/acme/c/miss.bin", &[("Connection", "close")]));
    let r = session.response();
    assert_eq!((r.status, checksum(&r.body)), (200, checksum(&s.miss)));
    session.closed_by_server();
    let (body, _) = curl_get(&s, &["--tlsv1.2", "--tls-max", "1.2"], "/acme/c/hit.bin", &[]);
    assert_eq!(checksum(&body), checksum(&s.hit));

    let m = s.edge.metrics();
    let failed = |reason: &str| {
        metric_value(
            &m,
            &format!("strata_https_handshake_failures_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(failed("plain_http"), 1.0);
    assert_eq!(failed("handshake"), 2.0, "garbage hello and noise");
    assert_eq!(failed("timeout"), 1.0);
}

#[test]
fn signed_urls_and_a_signed_playlist_behave_over_https_as_over_http() {
    let dir = TempDir::new("https-signed");
    let cert = self_signed(dir.path(), "localhost", &["localhost"]);
    let control = strata_tests::control::Control::start(&dir.path().join("control"), &[]);
    control.tenant("acme", "east", &[], 0);
    let east = dir.path().join("east");
    std::fs::create_dir_all(&east).expect("root");
    let _storage = control.storage(&east, "east", "east-1");
    let flag = https_flag(&cert, "localhost");
    let edge = control.edge(
        &dir.path().join("cache"),
        "edge-1",
        &["--telemetry", "off", "--https", &flag],
    );
    let https = https_addr(&edge, 0);
    control.wait_for("servers up", 400, |c| c.is_up("east-1") && c.is_up("edge-1"));
    let src = TempDir::new("https-signed-src");
    let clip = pattern(6, 300_000);
    src.write("clip.mp4", &clip);
    assert!(control.ingest("acme", "show", src.path(), &[]).status.success());
    let hls = dir.path().join("hls");
    strata_tests::media::make_hls(4, &hls);
    let out = control.ingest("acme", "vod", &hls, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli = |args: &[&str]| {
        let out = control.cli(args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    cli(&["control", "tenant", "access", "acme", "signed"]);
    // The edge learns the rule with a heartbeat: poll until an unsigned URL is refused.
    let status_of = |path: &str| -> (u16, Vec<u8>) {
        let out = curl(
            https,
            "localhost",
            &cert.cert,
            &["-w", "\n%{http_code}", &url(https, "localhost", path)],
        );
        let mut body = out.stdout;
        let split = body.iter().rposition(|b| *b == b'\n').expect("status line");
        let code = String::from_utf8_lossy(&body[split + 1..])
            .parse()
            .expect("status");
        body.truncate(split);
        (code, body)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while status_of("/acme/show/clip.mp4").0 != 403 {
        assert!(
            std::time::Instant::now() < deadline,
            "the edge never refused an unsigned URL"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let signed = cli(&[
        "control",
        "sign",
        "/acme/show/clip.mp4",
        "--ttl",
        "1h",
        "--ip",
        "127.0.0.1",
    ]);
    let (code, body) = status_of(&signed);
    assert_eq!(code, 200);
    assert!(body == clip, "exact bytes under a signature over HTTPS");
    let (code, _) = status_of(&signed.replace("sig=", "sig=0"));
    assert_eq!(code, 403, "a tampered signature is refused over HTTPS");
    let elsewhere = cli(&[
        "control",
        "sign",
        "/acme/show/clip.mp4",
        "--ttl",
        "1h",
        "--ip",
        "10.9.9.9",
    ]);
    assert_eq!(
        status_of(&elsewhere).0,
        403,
        "the address bound is the TLS client's"
    );
    // A playlist signed by prefix carries the token on to its segments, fetched over HTTPS.
    let playlist_url = cli(&[
        "control",
        "sign",
        "/acme/vod/index.m3u8",
        "--prefix",
        "/acme/vod/",
    ]);
    let (code, playlist) = status_of(&playlist_url);
    assert_eq!(code, 200);
    let playlist = String::from_utf8_lossy(&playlist).into_owned();
    let query = playlist_url.split_once('?').expect("query").1;
    assert!(playlist.contains(&format!("seg000.ts?{query}")), "{playlist}");
    let (code, seg) = status_of(&format!("/acme/vod/seg000.ts?{query}"));
    assert_eq!(code, 200);
    assert_eq!(seg, std::fs::read(hls.join("seg000.ts")).expect("segment"));
    assert_eq!(
        status_of("/acme/vod/seg000.ts").0,
        403,
        "a segment alone needs the token"
    );
}

#[test]
fn a_tls_record_trickled_on_an_idle_session_gets_the_head_timeout_not_the_idle_one() {
    let s = setup(&["--header-read-timeout", "2s", "--idle-timeout", "300s"]);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(s.cert.pem.as_bytes()) {
        roots
            .add(c.expect("certificate PEM"))
            .expect("trust the test certificate");
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let session = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("session");
    let tcp = connect(s.https);
    let raw = tcp.try_clone().expect("clone socket");
    let mut tls = rustls::StreamOwned::new(session, tcp);
    tls.write_all(request("GET", "/acme/c/hit.bin", &[("Range", "bytes=0-9")]).as_bytes())
        .expect("request over TLS");
    let mut buf = Vec::new();
    let r = read_response(&mut tls, &mut buf, false);
    assert_eq!((r.status, r.body.as_slice()), (206, &s.hit[..10]));
    // The start of an application-data record, then nothing: no plaintext ever arrives.
    let mut raw = raw;
    raw.write_all(&[0x17, 0x03, 0x03]).expect("partial record");
    closed_by_server(&mut raw);
}

#[test]
fn an_admitted_miss_is_served_from_its_fill_and_then_as_a_hit_over_https_byte_exact() {
    let certs = TempDir::new("https-fill-certs");
    let cert = self_signed(certs.path(), "localhost", &["localhost"]);
    let store = TempDir::new("https-fill-store");
    let data = pattern(74, (6 << 20) + 5);
    store.write("acme/c/fill.bin", &data);
    let storage = Strata::storage(store.path(), &[]);
    let cache = TempDir::new("https-fill-cache");
    let cluster = format!("home={}", storage.addr);
    let flag = https_flag(&cert, "localhost");
    let edge = Strata::edge(
        cache.path(),
        &[
            "--cluster",
            &cluster,
            "--tenant",
            "acme=home",
            "--miss",
            "proxy",
            "--cache-capacity",
            "1073741824",
            "--admit-interval",
            "60s",
            "--https",
            &flag,
        ],
    );
    let https = https_addr(&edge, 0);
    let fetch = |range: Option<&str>| {
        let u = url(https, "localhost", "/acme/c/fill.bin");
        let mut args = vec!["--tlsv1.3"];
        if let Some(r) = range {
            args.extend(["-r", r]);
        }
        args.push(&u);
        let out = curl(https, "localhost", &cert.cert, &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    // First request: a miss (proxied); second: admitted, served from its own fill.
    assert_eq!(checksum(&fetch(None)), checksum(&data), "proxied miss");
    assert_eq!(checksum(&fetch(None)), checksum(&data), "served from the fill");
    let filled = cache.path().join("acme/c/fill.bin");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::metadata(&filled).map_or(true, |m| m.len() != data.len() as u64) {
        assert!(std::time::Instant::now() < deadline, "the fill never completed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(checksum(&fetch(None)), checksum(&data), "hit");
    assert_eq!(
        fetch(Some("3000000-3999999")),
        &data[3_000_000..4_000_000],
        "hit range"
    );
    let m = edge.metrics();
    assert!(
        metric_value(&m, "strata_cache_miss_served_total{via=\"own_fill\"}") >= 1.0,
        "one miss followed its fill"
    );
    assert!(
        metric_value(&m, "strata_body_bytes_total{path=\"tls_userspace\"}")
            >= (2 * data.len() + 1_000_000) as f64,
        "the fill's viewer and the hits were encrypted in userspace"
    );
}

/// The pid the edge's admin listener reports (`GET /process`).
fn serving_pid(admin: SocketAddr) -> u32 {
    let r = get(admin, "/process", &[]);
    assert_eq!(r.status, 200, "GET /process: {}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v["pid"].as_u64().expect("pid") as u32
}

/// Polls `check` every 50 ms until it holds; fails with `what` after a generous wait.
fn poll_until(what: &str, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn reload(admin: SocketAddr) -> (bool, String) {
    let out = std::process::Command::new(strata_bin())
        .args(["edge", "reload", "--admin", &admin.to_string()])
        .output()
        .expect("run strata edge reload");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_reload_presents_the_certificate_now_in_the_files_and_a_broken_key_leaves_the_old_one_serving() {
    let certs = TempDir::new("https-reload-certs");
    let first = self_signed(certs.path(), "first", &["localhost"]);
    let second = self_signed(certs.path(), "second", &["localhost"]);
    let live = TestCert {
        cert: certs.path().join("live.pem"),
        key: certs.path().join("live.key"),
        pem: first.pem.clone(),
    };
    std::fs::copy(&first.cert, &live.cert).expect("cert");
    std::fs::copy(&first.key, &live.key).expect("key");
    let cache = TempDir::new("https-reload-cache");
    let data = pattern(75, 500_000);
    cache.write("acme/c/x.bin", &data);
    let flag = https_flag(&live, "localhost");
    let edge = Strata::edge(cache.path(), &["--miss", "error", "--https", &flag]);
    let https = https_addr(&edge, 0);
    let pid = edge.pid();
    assert_eq!(
        presented_cert(https, Some("localhost")),
        normalize_pem(&first.pem)
    );

    // New files, then a reload: the successor takes the listener and presents the new pair.
    std::fs::copy(&second.cert, &live.cert).expect("cert");
    std::fs::copy(&second.key, &live.key).expect("key");
    let (ok, said) = reload(edge.admin);
    assert!(ok, "reload: {said}");
    // Until the old process stops accepting either may answer: the successor is the first
    // pid that differs.
    let successor = std::cell::Cell::new(pid);
    poll_until("a successor answering on the admin listener", || {
        successor.set(serving_pid(edge.admin));
        successor.get() != pid
    });
    let successor = successor.get();
    poll_until("the new certificate presented on the same port", || {
        presented_cert(https, Some("localhost")) == normalize_pem(&second.pem)
    });
    let out = curl(
        https,
        "localhost",
        &second.cert,
        &[&url(https, "localhost", "/acme/c/x.bin")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(checksum(&out.stdout), checksum(&data));

    // A key that is not a key: the successor cannot start, the running one serves on.
    std::fs::write(&live.key, "not a key\n").expect("break the key");
    let (ok, said) = reload(edge.admin);
    assert!(!ok, "a reload with a broken key fails: {said}");
    assert!(
        said.contains("exited"),
        "the answer says the successor did not start: {said}"
    );
    poll_until("the successor's log naming the key file", || {
        edge.log()
            .iter()
            .any(|l| l.contains("reading the private key") && l.contains("live.key"))
    });
    assert_eq!(
        serving_pid(edge.admin),
        successor,
        "the running process serves on"
    );
    assert_eq!(
        presented_cert(https, Some("localhost")),
        normalize_pem(&second.pem)
    );
    let out = curl(
        https,
        "localhost",
        &second.cert,
        &[&url(https, "localhost", "/acme/c/x.bin")],
    );
    assert_eq!(checksum(&out.stdout), checksum(&data));
    // The successor is not this test's child: stop it (checked to be strata).
    let cmdline = std::fs::read(format!("/proc/{successor}/cmdline")).unwrap_or_default();
    if successor != pid && String::from_utf8_lossy(&cmdline).contains("strata") {
        // SAFETY: kill with a pid checked to be a strata process.
        unsafe { libc::kill(successor as libc::pid_t, libc::SIGTERM) };
    }
}
