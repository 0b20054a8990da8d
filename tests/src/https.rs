//! HTTPS helpers: self-signed certificates made with rcgen, the HTTPS address an edge logged,
//! and the real clients (curl, openssl s_client) run against it.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::Duration;

use crate::{read_response, Response, Strata};

/// A certificate and key written as PEM files.
#[derive(Clone, Debug)]
pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate's PEM text.
    pub pem: String,
}

/// A self-signed certificate for `names` (DNS names or IP addresses) in `dir`.
pub fn self_signed(dir: &Path, stem: &str, names: &[&str]) -> TestCert {
    let generated =
        rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("rcgen: self-signed certificate");
    let cert = dir.join(format!("{stem}.pem"));
    let key = dir.join(format!("{stem}.key"));
    let pem = generated.cert.pem();
    std::fs::write(&cert, &pem).expect("write certificate");
    std::fs::write(&key, generated.key_pair.serialize_pem()).expect("write key");
    TestCert { cert, key, pem }
}

/// The `--https` flag value for a listener on a free loopback port with `cert` for `names`.
pub fn https_flag(cert: &TestCert, names: &str) -> String {
    format!(
        "127.0.0.1:0={}:{}:{names}",
        cert.cert.display(),
        cert.key.display()
    )
}

/// The address of the edge's HTTPS listener number `n` (from its "HTTPS listener up" lines).
pub fn https_addr(s: &Strata, n: usize) -> SocketAddr {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<SocketAddr> = s
            .log()
            .iter()
            .filter(|l| l.contains("HTTPS listener up"))
            .filter_map(|l| l.split("https=").nth(1)?.split_whitespace().next()?.parse().ok())
            .collect();
        if let Some(a) = found.get(n) {
            return *a;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the edge logged no HTTPS listener #{n}: {:?}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs curl with `args` (HTTPS to `name` resolved to `addr`, trusting `ca`) and returns its
/// output; `-v` so the negotiated protocol is in stderr.
pub fn curl(addr: SocketAddr, name: &str, ca: &Path, args: &[&str]) -> Output {
    let resolve = format!("{name}:{}:{}", addr.port(), addr.ip());
    Command::new("curl")
        .args([
            "-sS",
            "-v",
            "--max-time",
            "120",
            "--resolve",
            &resolve,
            "--cacert",
        ])
        .arg(ca)
        .args(args)
        .output()
        .expect("run curl (apt-get install curl)")
}

/// The URL of `path` on the HTTPS listener at `addr` under server name `name`.
pub fn url(addr: SocketAddr, name: &str, path: &str) -> String {
    format!("https://{name}:{}{path}", addr.port())
}

/// The certificate the server presents for `server_name` (None: no SNI), as PEM.
pub fn presented_cert(addr: SocketAddr, server_name: Option<&str>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string()]);
    match server_name {
        Some(n) => cmd.args(["-servername", n]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client (apt-get install openssl)");
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text.find("-----BEGIN CERTIFICATE-----").unwrap_or_else(|| {
        panic!(
            "openssl s_client got no certificate: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let end = text[begin..]
        .find("-----END CERTIFICATE-----")
        .expect("end of certificate")
        + begin;
    normalize_pem(&text[begin..end + "-----END CERTIFICATE-----".len()])
}

/// PEM text without line-ending differences.
pub fn normalize_pem(pem: &str) -> String {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// One TLS connection held open by `openssl s_client`: requests written to its stdin go out
/// on the same session, responses come back on its stdout.
pub struct TlsSession {
    child: Child,
    out: ChildStdout,
    buf: Vec<u8>,
}

impl TlsSession {
    /// Connects to `addr` with SNI `name`, verifying the server with `ca`, pinned to TLS
    /// `version` ("-tls1_2" or "-tls1_3").
    pub fn open(addr: SocketAddr, name: &str, ca: &Path, version: &str) -> TlsSession {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-quiet",
                "-nocommands",
                "-verify_return_error",
                "-connect",
                &addr.to_string(),
            ])
            .args(["-servername", name, "-verify_hostname", name, version, "-CAfile"])
            .arg(ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run openssl s_client (apt-get install openssl)");
        let out = child.stdout.take().expect("s_client stdout");
        TlsSession {
            child,
            out,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, raw: &str) {
        let stdin = self.child.stdin.as_mut().expect("s_client stdin");
        stdin.write_all(raw.as_bytes()).expect("write to s_client");
        stdin.flush().expect("flush s_client");
    }

    pub fn response(&mut self) -> Response {
        read_response(&mut self.out, &mut self.buf, false)
    }

    /// After the last response: the server must close the session with nothing more sent.
    pub fn closed_by_server(mut self) {
        drop(self.child.stdin.take());
        let mut rest = Vec::new();
        let _ = self.out.read_to_end(&mut rest);
        assert!(
            self.buf.is_empty() && rest.is_empty(),
            "{} bytes followed the last response",
            self.buf.len() + rest.len()
        );
        let _ = self.child.wait();
    }
}

impl Drop for TlsSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
