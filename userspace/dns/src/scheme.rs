//! The names strata's nameserver answers, relative to its domain (the seed's scheme):
//!
//! - `_a{bucket}-{ip}._tcp.srv` SRV: regions for the client whose IPv4 address is `{ip}` (a
//!   decimal unsigned 32-bit integer in network byte order, as the seed writes it);
//! - `_a{bucket}._tcp.srv` SRV: the same for the address of the EDNS Client Subnet option, or
//!   else of the querying resolver;
//! - `a{bucket}.r{region}` A/AAAA (the SRV targets; the seed's `a40.y5q` token): the region's
//!   servers that are up, in the bucket's rendezvous order; `r{region}` the same for bucket 0;
//! - `{server}.r{region}` A/AAAA: one server, where a region's servers listen on different
//!   ports and the SRV answer names each;
//! - the zone apex: SOA.

use std::net::Ipv4Addr;

/// What a query name asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asked {
    Apex,
    Srv {
        bucket: u32,
        client: Option<Ipv4Addr>,
    },
    /// `a{bucket}.r{region}` or `r{region}` (bucket 0), or `{label}.r{region}` naming a server.
    Region {
        region: String,
        below: Option<String>,
    },
    /// Inside the zone but not a name of the scheme.
    Unknown,
}

/// `a{digits}` → the bucket.
pub fn bucket_label(label: &str) -> Option<u32> {
    let digits = label.strip_prefix('a')?;
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Reads the labels below the zone apex (lower case, the leftmost first).
pub fn parse(labels: &[String]) -> Asked {
    match labels {
        [] => Asked::Apex,
        [first, tcp, srv] if tcp == "_tcp" && srv == "srv" => {
            let Some(rest) = first.strip_prefix("_a") else {
                return Asked::Unknown;
            };
            let (bucket, ip) = match rest.split_once('-') {
                Some((b, ip)) => (b, Some(ip)),
                None => (rest, None),
            };
            let Some(bucket) = bucket_label(&format!("a{bucket}")) else {
                return Asked::Unknown;
            };
            let client = match ip {
                None => None,
                Some(ip) => match ip.parse::<u32>() {
                    Ok(n) if !ip.is_empty() && ip.bytes().all(|b| b.is_ascii_digit()) => {
                        Some(Ipv4Addr::from(n))
                    }
                    _ => return Asked::Unknown,
                },
            };
            Asked::Srv { bucket, client }
        }
        [region] => match region.strip_prefix('r').filter(|r| !r.is_empty()) {
            Some(r) => Asked::Region {
                region: r.to_string(),
                below: None,
            },
            None => Asked::Unknown,
        },
        [below, region] => match region.strip_prefix('r').filter(|r| !r.is_empty()) {
            Some(r) => Asked::Region {
                region: r.to_string(),
                below: Some(below.clone()),
            },
            None => Asked::Unknown,
        },
        _ => Asked::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(s: &str) -> Vec<String> {
        s.split('.').filter(|l| !l.is_empty()).map(String::from).collect()
    }

    #[test]
    fn the_seeds_srv_names_carry_bucket_and_client_address() {
        assert_eq!(
            parse(&labels("_a40-287667665._tcp.srv")),
            Asked::Srv {
                bucket: 40,
                client: Some(Ipv4Addr::new(17, 37, 117, 209))
            }
        );
        assert_eq!(
            parse(&labels("_a1-2130706433._tcp.srv")),
            Asked::Srv {
                bucket: 1,
                client: Some(Ipv4Addr::LOCALHOST)
            }
        );
        assert_eq!(
            parse(&labels("_a7._tcp.srv")),
            Asked::Srv {
                bucket: 7,
                client: None
            }
        );
    }

    #[test]
    fn region_tokens_and_server_names_parse_and_everything_else_is_unknown() {
        assert_eq!(
            parse(&labels("rwest")),
            Asked::Region {
                region: "west".into(),
                below: None
            }
        );
        assert_eq!(
            parse(&labels("a40.rwest")),
            Asked::Region {
                region: "west".into(),
                below: Some("a40".into())
            }
        );
        assert_eq!(parse(&[]), Asked::Apex);
        for bad in [
            "_a-1._tcp.srv",
            "_ax._tcp.srv",
            "_a1-99999999999._tcp.srv",
            "_a1-12x._tcp.srv",
            "_a1._udp.srv",
            "www",
            "r",
            "a.b.c.d",
        ] {
            assert_eq!(parse(&labels(bad)), Asked::Unknown, "{bad}");
        }
        assert_eq!(bucket_label("a12"), Some(12));
        assert_eq!(bucket_label("edge-1"), None);
    }
}
