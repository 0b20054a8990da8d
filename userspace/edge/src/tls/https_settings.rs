//! `[[https]]`: an HTTPS listener of the edge and the PEM files of its certificates.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One HTTPS listener: where it listens and the certificates it presents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsListener {
    pub listen: SocketAddr,
    /// The first certificate is also presented to clients that send no server name (SNI) or
    /// a name no certificate lists.
    pub certificates: Vec<CertificateFiles>,
}

/// A certificate chain and its key, from PEM files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    /// PEM file: the certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM file: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Server names (SNI) this certificate answers, exact (`cdn.example.com`) or one
    /// wildcard label (`*.example.com`); each is checked against the certificate at load.
    /// May be empty only for the first certificate (then it only answers as the default).
    #[serde(default)]
    pub names: Vec<String>,
}

impl HttpsListener {
    /// Parses the `--https ADDR=CERT:KEY[:NAME,NAME...]` flag form (one certificate; several
    /// flags with the same address add certificates to one listener).
    pub fn parse_flag(flag: &str) -> Result<(SocketAddr, CertificateFiles), String> {
        let (addr, rest) = flag
            .split_once('=')
            .ok_or_else(|| format!("--https {flag}: expected ADDR=CERT:KEY[:NAME,...]"))?;
        let listen: SocketAddr = addr
            .parse()
            .map_err(|e| format!("--https {flag}: address {addr}: {e}"))?;
        let mut parts = rest.splitn(3, ':');
        let cert = parts.next().unwrap_or_default();
        let key = parts.next().unwrap_or_default();
        if cert.is_empty() || key.is_empty() {
            return Err(format!(
                "--https {flag}: expected ADDR=CERT:KEY[:NAME,...] (certificate and key PEM files)"
            ));
        }
        let names = parts
            .next()
            .map(|n| {
                n.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok((
            listen,
            CertificateFiles {
                cert: cert.into(),
                key: key.into(),
                names,
            },
        ))
    }

    /// Adds a certificate from a flag to the listener on its address, or a new listener.
    pub fn add_flag(listeners: &mut Vec<HttpsListener>, flag: &str) -> Result<(), String> {
        let (listen, files) = Self::parse_flag(flag)?;
        match listeners.iter_mut().find(|l| l.listen == listen) {
            Some(l) => l.certificates.push(files),
            None => listeners.push(HttpsListener {
                listen,
                certificates: vec![files],
            }),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_with_one_address_make_one_listener_with_several_certificates() {
        let mut l = Vec::new();
        HttpsListener::add_flag(&mut l, "127.0.0.1:8443=/a.pem:/a.key").expect("first");
        HttpsListener::add_flag(&mut l, "127.0.0.1:8443=/b.pem:/b.key:b.test,*.b.test").expect("second");
        HttpsListener::add_flag(&mut l, "[::1]:9443=/c.pem:/c.key").expect("third");
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].certificates.len(), 2);
        assert_eq!(l[0].certificates[1].names, vec!["b.test", "*.b.test"]);
        assert!(l[0].certificates[0].names.is_empty());
    }

    #[test]
    fn a_flag_without_a_key_is_refused_naming_the_flag() {
        let e = HttpsListener::parse_flag("127.0.0.1:8443=/a.pem").unwrap_err();
        assert!(e.contains("127.0.0.1:8443=/a.pem"), "{e}");
        assert!(HttpsListener::parse_flag("nonsense").is_err());
    }
}
