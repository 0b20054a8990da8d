//! Where to fetch from: the seed's SRV query `_a{bucket}-{ip}._tcp.srv.DOMAIN` through a real
//! DNS client (hickory-resolver, asking the nameserver given), its records ranked by priority
//! and the targets resolved to addresses (glue first, then an A/AAAA query); or, without DNS,
//! the servers given on the command line.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::Resolver;
use thiserror::Error;

/// One server the client may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub addr: SocketAddr,
    /// The region token's region (`a1.rwest.cdn.test` → `west`), or `direct`.
    pub region: String,
    /// SRV priority: lower first.
    pub priority: u16,
    pub weight: u16,
}

/// The servers and until when the answer holds.
#[derive(Clone, Debug)]
pub struct Discovery {
    pub servers: Vec<Server>,
    pub valid_until: Instant,
}

#[derive(Debug, Error)]
pub enum DiscoverError {
    #[error("DNS SRV {name} at {dns}: {message}")]
    Dns {
        name: String,
        dns: SocketAddr,
        message: String,
    },
    #[error("DNS SRV {name} at {dns} named no usable server")]
    NoServer { name: String, dns: SocketAddr },
    #[error("--server {0:?}: expected http://HOST:PORT with a numeric address")]
    BadServer(String),
}

/// The SRV name for `bucket` and the client's address (the seed's form).
pub fn srv_name(bucket: u32, client: Option<Ipv4Addr>, domain: &str) -> String {
    match client {
        Some(ip) => format!("_a{bucket}-{}._tcp.srv.{domain}.", u32::from(ip)),
        None => format!("_a{bucket}._tcp.srv.{domain}."),
    }
}

/// The region of a token (`a1.rwest.cdn.test.` → `west`).
fn region_of(target: &str) -> String {
    target
        .split('.')
        .find_map(|l| l.strip_prefix('r').filter(|r| !r.is_empty()))
        .unwrap_or("?")
        .to_string()
}

/// Asks `dns` for the servers of `bucket` for a client at `client`.
pub fn discover(
    dns: SocketAddr,
    domain: &str,
    bucket: u32,
    client: Option<Ipv4Addr>,
) -> Result<Discovery, DiscoverError> {
    let name = srv_name(bucket, client, domain);
    let err = |message: String| DiscoverError::Dns {
        name: name.clone(),
        dns,
        message,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| err(e.to_string()))?;
    runtime.block_on(async {
        let mut config = ResolverConfig::new();
        config.add_name_server(NameServerConfig::new(dns, Protocol::Udp));
        config.add_name_server(NameServerConfig::new(dns, Protocol::Tcp));
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        opts.cache_size = 0;
        let resolver = Resolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(opts)
            .build();
        let srv = resolver.srv_lookup(name.as_str()).await.map_err(|e| err(e.to_string()))?;
        let mut glue: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for r in srv.as_lookup().records() {
            let ip = match r.data() {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                _ => continue,
            };
            glue.entry(r.name().to_ascii().to_lowercase()).or_default().push(ip);
        }
        let mut servers = Vec::new();
        for s in srv.iter() {
            let target = s.target().to_ascii().to_lowercase();
            let ips = match glue.get(&target) {
                Some(ips) => ips.clone(),
                None => match resolver.lookup_ip(target.as_str()).await {
                    Ok(l) => l.iter().collect(),
                    Err(e) => {
                        tracing::warn!(%target, error = %e, "fetch: an SRV target did not resolve; skipping it");
                        continue;
                    }
                },
            };
            for ip in ips {
                servers.push(Server {
                    addr: SocketAddr::new(ip, s.port()),
                    region: region_of(&target),
                    priority: s.priority(),
                    weight: s.weight(),
                });
            }
        }
        servers.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
        servers.dedup_by_key(|s| s.addr);
        if servers.is_empty() {
            return Err(DiscoverError::NoServer { name: name.clone(), dns });
        }
        Ok(Discovery {
            servers,
            valid_until: srv.as_lookup().valid_until(),
        })
    })
}

/// Servers given as `http://IP:PORT`, all of priority 1.
pub fn direct(urls: &[String]) -> Result<Discovery, DiscoverError> {
    let servers = urls
        .iter()
        .map(|u| {
            let hostport = u.strip_prefix("http://").unwrap_or(u).trim_end_matches('/');
            hostport
                .parse::<SocketAddr>()
                .map(|addr| Server {
                    addr,
                    region: "direct".into(),
                    priority: 1,
                    weight: 0,
                })
                .map_err(|_| DiscoverError::BadServer(u.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Discovery {
        servers,
        valid_until: Instant::now() + Duration::from_secs(3600),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_srv_name_carries_bucket_and_address_as_the_seed_writes_them() {
        assert_eq!(
            srv_name(40, Some(Ipv4Addr::new(17, 37, 117, 209)), "kamai.net"),
            "_a40-287667665._tcp.srv.kamai.net."
        );
        assert_eq!(srv_name(1, None, "cdn.test"), "_a1._tcp.srv.cdn.test.");
        assert_eq!(region_of("a1.rwest.cdn.test."), "west");
        assert!(direct(&["http://127.0.0.1:8080".into()]).is_ok());
        assert!(direct(&["http://edge.example:80".into()]).is_err());
    }
}
