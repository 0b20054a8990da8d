//! The peers' configurations, written by the harness: nginx and HAProxy tuned the way an
//! operator would run them for video on this machine (one worker or thread, keep-alive on both
//! sides, no access log, bodies by sendfile or splice), so the comparison is with each at its best;
//! Knot DNS serving scenario (f)'s static zone from memory with one UDP worker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What an nginx instance does.
pub enum NginxRole {
    /// Serves files from `root` with sendfile (local hits).
    Static { root: PathBuf },
    /// Serves files from `root` over HTTPS (`listen ... ssl`, TLS 1.2 and 1.3) with this
    /// certificate; sendfile stays on, which OpenSSL without kTLS turns into read + encrypt.
    StaticTls {
        root: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
    /// proxy_pass to `origin` over a keep-alive upstream pool, no caching.
    Proxy { origin: SocketAddr },
    /// proxy_pass with proxy_cache in `dir`: admit on the second request (like strata's
    /// admission), at most `max_bytes` held.
    ProxyCache {
        origin: SocketAddr,
        dir: PathBuf,
        max_bytes: u64,
    },
}

/// nginx.conf for `role`, listening on `listen`, with every path it writes under `prefix`.
pub fn nginx(listen: SocketAddr, prefix: &Path, role: &NginxRole) -> String {
    let p = prefix.display();
    let mut ssl = String::new();
    let (upstream, location, cache_zone) = match role {
        NginxRole::StaticTls { root, cert, key } => {
            ssl = format!(
                " ssl;\n        ssl_certificate {};\n        ssl_certificate_key {};\n        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_session_cache shared:tls:10m",
                cert.display(),
                key.display()
            );
            (
                String::new(),
                format!("root {};\n            sendfile on;\n            tcp_nopush on;", root.display()),
                String::new(),
            )
        }
        NginxRole::Static { root } => (
            String::new(),
            format!("root {};\n            sendfile on;\n            tcp_nopush on;", root.display()),
            String::new(),
        ),
        NginxRole::Proxy { origin } => (
            upstream_block(*origin),
            proxy_location(""),
            String::new(),
        ),
        NginxRole::ProxyCache { origin, dir, max_bytes } => (
            upstream_block(*origin),
            proxy_location(
                "\n            proxy_cache media;\n            proxy_cache_min_uses 2;\n            proxy_cache_valid 200 206 1h;\n            proxy_cache_lock on;",
            ),
            format!(
                // The cache manager trims to max_size in rounds of manager_files every
                // manager_sleep; its defaults (100 files, 50 ms) fall behind a fill rate of
                // ~1 GB/s and let the cache grow to several times max_size.
                "proxy_cache_path {} levels=1:2 keys_zone=media:16m max_size={}k inactive=1h use_temp_path=off manager_files=100000 manager_sleep=10ms manager_threshold=1000ms;",
                dir.display(),
                max_bytes / 1024
            ),
        ),
    };
    format!(
        r#"# Written by strata's benchmark harness.
daemon off;
master_process on;
user root;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{
    worker_connections 19500;
    use epoll;
}}
http {{
    access_log off;
    default_type application/octet-stream;
    keepalive_timeout 300s;
    keepalive_requests 10000000;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy_temp;
    fastcgi_temp_path {p}/fastcgi_temp;
    uwsgi_temp_path {p}/uwsgi_temp;
    scgi_temp_path {p}/scgi_temp;
    {cache_zone}
    {upstream}
    server {{
        listen {listen}{ssl};
        location / {{
            {location}
        }}
    }}
}}
"#
    )
}

fn upstream_block(origin: SocketAddr) -> String {
    format!("upstream origin {{\n        server {origin};\n        keepalive 128;\n    }}")
}

fn proxy_location(extra: &str) -> String {
    format!(
        "proxy_pass http://origin;\n            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n            proxy_buffering on;\n            proxy_buffer_size 64k;\n            proxy_buffers 16 64k;\n            proxy_busy_buffers_size 128k;\n            proxy_max_temp_file_size 0;{extra}"
    )
}

/// haproxy.cfg: one thread, HTTP keep-alive both sides, server connection reuse, and
/// `option splice-response` (splice-auto was measured here never to call splice).
pub fn haproxy(listen: SocketAddr, origin: SocketAddr) -> String {
    format!(
        r#"# Written by strata's benchmark harness.
global
    nbthread 1
    # HAProxy asks for about 2.5 descriptors per connection; stay under the 20,000 limit.
    maxconn 7000
defaults
    mode http
    option http-keep-alive
    option splice-response
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
frontend viewers
    bind {listen}
    default_backend origin
backend origin
    server origin1 {origin}
"#
    )
}

/// knot.conf: one UDP and one TCP worker on `listen`, the zone `domain` from `zone_file`,
/// nothing written back (no journal, no zone-file sync), run and database files under `dir`.
pub fn knot(listen: SocketAddr, dir: &Path, domain: &str, zone_file: &Path) -> String {
    let d = dir.display();
    format!(
        r#"# Written by strata's benchmark harness.
server:
    listen: {ip}@{port}
    rundir: {d}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: {d}/db
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: {d}
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
zone:
  - domain: {domain}
    file: {zone}
"#,
        ip = listen.ip(),
        port = listen.port(),
        zone = zone_file.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_static_config_serves_the_root_with_sendfile_and_one_worker() {
        let c = nginx(
            "127.0.0.1:8000".parse().unwrap(),
            Path::new("/tmp/p"),
            &NginxRole::Static {
                root: "/srv/files".into(),
            },
        );
        assert!(c.contains("worker_processes 1;"));
        assert!(c.contains("listen 127.0.0.1:8000;"));
        assert!(c.contains("root /srv/files;"));
        assert!(c.contains("sendfile on;"));
        assert!(!c.contains("proxy_pass"));
        assert_eq!(c.matches('{').count(), c.matches('}').count());
    }

    #[test]
    fn nginx_proxy_configs_keep_upstream_connections_alive_and_cache_only_when_asked() {
        let origin = "127.0.0.1:9000".parse().unwrap();
        let proxy = nginx(
            "127.0.0.1:8000".parse().unwrap(),
            Path::new("/tmp/p"),
            &NginxRole::Proxy { origin },
        );
        assert!(proxy.contains("server 127.0.0.1:9000;") && proxy.contains("keepalive 128;"));
        assert!(proxy.contains("proxy_set_header Connection \"\";"));
        assert!(!proxy.contains("proxy_cache "));
        let cached = nginx(
            "127.0.0.1:8000".parse().unwrap(),
            Path::new("/tmp/p"),
            &NginxRole::ProxyCache {
                origin,
                dir: "/tmp/c".into(),
                max_bytes: 64 << 20,
            },
        );
        assert!(cached.contains("proxy_cache_path /tmp/c ") && cached.contains("max_size=65536k"));
        assert!(cached.contains("proxy_cache_min_uses 2;"));
        assert_eq!(cached.matches('{').count(), cached.matches('}').count());
    }

    #[test]
    fn knot_config_serves_the_zone_with_one_udp_worker_and_writes_nothing_back() {
        let c = knot(
            "127.0.0.1:5300".parse().unwrap(),
            Path::new("/tmp/k"),
            "cdn.test",
            Path::new("/tmp/k/cdn.test.zone"),
        );
        assert!(c.contains("listen: 127.0.0.1@5300"));
        assert!(c.contains("udp-workers: 1"));
        assert!(c.contains("domain: cdn.test\n    file: /tmp/k/cdn.test.zone"));
        assert!(c.contains("journal-content: none") && c.contains("zonefile-sync: -1"));
    }

    #[test]
    fn haproxy_config_splices_responses_with_one_thread() {
        let c = haproxy(
            "127.0.0.1:8000".parse().unwrap(),
            "127.0.0.1:9000".parse().unwrap(),
        );
        assert!(c.contains("nbthread 1"));
        assert!(c.contains("option splice-response"));
        assert!(c.contains("bind 127.0.0.1:8000") && c.contains("server origin1 127.0.0.1:9000"));
    }
}
