//! One load connection over HTTPS: a rustls client session (TLS 1.3, AES-256-GCM, the suite
//! both nginx/OpenSSL and rustls pick by default) on a keep-alive TCP connection. Bodies must
//! be decrypted to be consumed, so they are read into a buffer (hashed when sampled); the
//! generator's core does that work for every contender alike.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rand::SeedableRng;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::load::{read_head, LoadPlan, Target};
use crate::tally::Tally;
use crate::url_mix::UrlMix;

type Session = StreamOwned<ClientConnection, TcpStream>;

/// A client configuration that trusts `ca_pem` (the bench's self-signed certificate).
pub fn client_config(ca_pem: &str) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.context("the bench certificate's PEM")?)
            .context("trusting the bench certificate")?;
    }
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384];
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 client configuration")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn connect(plan: &LoadPlan, config: &Arc<ClientConfig>) -> anyhow::Result<Session> {
    let tcp = TcpStream::connect(plan.addr).context("connecting")?;
    let _ = tcp.set_nodelay(true);
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let name = ServerName::try_from("localhost").context("server name")?;
    let conn = ClientConnection::new(config.clone(), name).context("TLS client session")?;
    Ok(StreamOwned::new(conn, tcp))
}

/// Sends one request and reads its response; returns the body length.
fn exchange(
    s: &mut Session,
    buf: &mut Vec<u8>,
    scratch: &mut [u8],
    target: &Target,
    check: bool,
) -> anyhow::Result<u64> {
    s.write_all(&target.request).context("sending a request")?;
    s.flush().context("sending a request")?;
    buf.clear();
    let (len, held) = read_head(s, buf, target)?;
    let mut hasher = check.then(|| {
        let mut h = crc32fast::Hasher::new();
        h.update(&buf[..held]);
        h
    });
    let mut rest = len - held as u64;
    while rest > 0 {
        let want = (rest as usize).min(scratch.len());
        let n = s.read(&mut scratch[..want]).context("reading a body")?;
        if n == 0 {
            bail!("connection closed with {rest} body bytes missing");
        }
        if let Some(h) = hasher.as_mut() {
            h.update(&scratch[..n]);
        }
        rest -= n as u64;
    }
    if let (Some(h), Some(expected)) = (hasher, target.expect_crc) {
        let got = h.finalize();
        if got != expected {
            bail!("body CRC {got:08x}, expected {expected:08x}");
        }
    }
    Ok(len)
}

/// One HTTPS connection's loop until `stop` (a failed exchange reconnects).
pub fn connection_loop(plan: &LoadPlan, config: Arc<ClientConfig>, seed: u64, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let Ok(mut mix) = UrlMix::new(plan.targets.len(), plan.zipf) else {
        tally.error();
        return tally;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut buf = Vec::with_capacity(16 << 10);
    let mut scratch = vec![0u8; 256 << 10];
    let mut conn: Option<Session> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let s = match conn.as_mut() {
            Some(s) => s,
            None => match connect(plan, &config) {
                Ok(s) => conn.insert(s),
                Err(e) => {
                    tally.first_error.get_or_insert_with(|| format!("{e:#}"));
                    tally.error();
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let target = &plan.targets[mix.pick(&mut rng)];
        n += 1;
        let check = plan.check_every > 0 && n.is_multiple_of(plan.check_every);
        let began = Instant::now();
        match exchange(s, &mut buf, &mut scratch, target, check) {
            Ok(len) => {
                tally.record(len, began.elapsed().as_micros() as u64);
                if check && target.expect_crc.is_some() {
                    tally.checked += 1;
                }
            }
            Err(e) => {
                tally.first_error.get_or_insert_with(|| format!("{e:#}"));
                tally.error();
                conn = None;
            }
        }
    }
    tally
}
