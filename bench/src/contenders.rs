//! Who is measured: strata in each of its modes and the peers, each knowing how to start itself
//! for a run (a fresh process per run, so no run inherits another's warm state or memory).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;

use strata_tests::https::TestCert;

use crate::peer_configs::NginxRole;
use crate::servers::{ServerEnv, ServerProcess};

/// One server configuration under test.
#[derive(Clone, Debug)]
pub enum Contender {
    /// strata edge serving its cache directory (io_uring splice).
    StrataHit,
    /// strata edge serving its cache directory with its sendfile(2) body path.
    StrataHitSendfile,
    /// nginx serving the same directory with sendfile.
    NginxStatic,
    /// strata edge proxying every request (cache off) with this proxy path.
    StrataProxy(&'static str),
    NginxProxy,
    HaproxySplice,
    /// strata edge with admission and fill into an empty cache of this many bytes.
    StrataCaching(u64),
    /// nginx proxy_cache (second-request admission) into an empty cache of this many bytes.
    NginxCaching(u64),
    /// strata edge serving its cache directory over HTTPS with this certificate.
    StrataHttps(TestCert),
    /// nginx `listen ... ssl` serving the same directory with the same certificate.
    NginxHttps(TestCert),
}

impl Contender {
    pub fn name(&self) -> String {
        match self {
            Contender::StrataHit => "strata".into(),
            Contender::StrataHitSendfile => "strata --body-path sendfile".into(),
            Contender::NginxStatic => "nginx sendfile".into(),
            Contender::StrataProxy(mode) => format!("strata {mode}"),
            Contender::NginxProxy => "nginx proxy_pass".into(),
            Contender::HaproxySplice => "haproxy splice-response".into(),
            Contender::StrataCaching(_) => "strata admission+fill".into(),
            Contender::NginxCaching(_) => "nginx proxy_cache".into(),
            Contender::StrataHttps(_) => "strata https".into(),
            Contender::NginxHttps(_) => "nginx ssl".into(),
        }
    }

    /// The cache size a caching contender is given (scenario (c)).
    pub fn cache_capacity(&self) -> Option<u64> {
        match self {
            Contender::StrataCaching(bytes) | Contender::NginxCaching(bytes) => Some(*bytes),
            _ => None,
        }
    }

    pub fn is_strata(&self) -> bool {
        matches!(
            self,
            Contender::StrataHit
                | Contender::StrataHitSendfile
                | Contender::StrataProxy(_)
                | Contender::StrataCaching(_)
                | Contender::StrataHttps(_)
        )
    }

    /// Extra warm-up before measuring: `proxy_path = auto` first measures each of its paths
    /// for a few epochs per class of responses (about two seconds), and a long-running edge
    /// is past that; the run measures its steady state, as it does every server's.
    pub fn learning_time(&self) -> std::time::Duration {
        match self {
            Contender::StrataProxy("auto") => std::time::Duration::from_secs(3),
            _ => std::time::Duration::ZERO,
        }
    }

    /// Starts a fresh server: `files` is the directory with the corpus, `origin` the storage
    /// server for the proxying ones, `scratch` an empty directory this run may use.
    pub fn start(
        &self,
        env: &ServerEnv,
        files: &Path,
        origin: Option<SocketAddr>,
        scratch: &Path,
    ) -> anyhow::Result<ServerProcess> {
        std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
        let need_origin = || origin.with_context(|| format!("{} needs an origin", self.name()));
        let name = self.name().replace([' ', '+'], "-").replace("--", "");
        match self {
            Contender::StrataHit => env.strata_edge(&name, files, None, &[]),
            Contender::StrataHitSendfile => env.strata_edge(&name, files, None, &["--body-path", "sendfile"]),
            Contender::NginxStatic => env.nginx(
                &name,
                &NginxRole::Static {
                    root: files.to_path_buf(),
                },
            ),
            Contender::StrataProxy(mode) => env.strata_edge(
                &name,
                scratch,
                Some(need_origin()?),
                &["--proxy-path", mode, "--cache-capacity", "0"],
            ),
            Contender::NginxProxy => env.nginx(
                &name,
                &NginxRole::Proxy {
                    origin: need_origin()?,
                },
            ),
            Contender::HaproxySplice => env.haproxy(&name, need_origin()?),
            Contender::StrataCaching(capacity) => env.strata_edge(
                &name,
                scratch,
                Some(need_origin()?),
                &[
                    "--cache-capacity",
                    &capacity.to_string(),
                    "--admit-interval",
                    "60s",
                ],
            ),
            Contender::StrataHttps(cert) => {
                let https = crate::servers::free_addr()?;
                let flag = format!("{https}={}:{}:localhost", cert.cert.display(), cert.key.display());
                let mut server = env.strata_edge(&name, files, None, &["--https", &flag])?;
                server.addr = https;
                Ok(server)
            }
            Contender::NginxHttps(cert) => env.nginx(
                &name,
                &NginxRole::StaticTls {
                    root: files.to_path_buf(),
                    cert: cert.cert.clone(),
                    key: cert.key.clone(),
                },
            ),
            Contender::NginxCaching(capacity) => env.nginx(
                &name,
                &NginxRole::ProxyCache {
                    origin: need_origin()?,
                    dir: scratch.to_path_buf(),
                    max_bytes: *capacity,
                },
            ),
        }
    }
}

/// Whether the kernel accepts the `tls` upper-layer protocol on a TCP socket (CONFIG_TLS):
/// kTLS could be measured only then.
pub fn kernel_has_tls_ulp() -> bool {
    use std::os::fd::AsRawFd as _;
    let Ok(listener) = std::net::TcpListener::bind("127.0.0.1:0") else {
        return false;
    };
    let Ok(client) = listener.local_addr().and_then(std::net::TcpStream::connect) else {
        return false;
    };
    let _server = listener.accept();
    let name = b"tls";
    // SAFETY: setsockopt on an open socket with a live byte array and its length.
    unsafe {
        libc::setsockopt(
            client.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        ) == 0
    }
}
