//! Certificates of an HTTPS listener: PEM chains and keys loaded and checked (the key matches
//! the certificate, every configured name is one the certificate covers), and the SNI resolver
//! rustls asks for each client hello. New files are read by a reload (a successor process
//! loads them at its start and takes the listener over).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use thiserror::Error;

use super::https_settings::CertificateFiles;

/// Why a listener's certificates cannot be used.
#[derive(Debug, Error)]
pub enum CertError {
    #[error("reading the certificate chain {path}: {reason}")]
    Chain { path: PathBuf, reason: String },
    #[error("reading the private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("certificate {cert} and key {key} do not belong together: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("certificate {cert} does not cover the server name {name:?}: {reason}")]
    Name {
        cert: PathBuf,
        name: String,
        reason: String,
    },
    #[error("certificate {cert} lists no server names: only the first certificate of a listener may go without (it is the default)")]
    NoNames { cert: PathBuf },
    #[error("server name {name:?} is listed by both {first} and {second}")]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("an HTTPS listener needs at least one certificate")]
    Empty,
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The certificates of one listener, by server name.
#[derive(Debug)]
pub struct CertTable {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` stored under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl CertTable {
    /// Loads and checks every certificate of a listener.
    pub fn load(files: &[CertificateFiles]) -> Result<CertTable, CertError> {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        let mut owner: HashMap<String, PathBuf> = HashMap::new();
        let mut default = None;
        for (i, f) in files.iter().enumerate() {
            let key = Arc::new(load_one(f)?);
            if f.names.is_empty() && i > 0 {
                return Err(CertError::NoNames { cert: f.cert.clone() });
            }
            for name in &f.names {
                let name = name.trim().to_ascii_lowercase();
                check_name(&key, &f.cert, &name)?;
                if let Some(first) = owner.insert(name.clone(), f.cert.clone()) {
                    return Err(CertError::Duplicate {
                        name,
                        first,
                        second: f.cert.clone(),
                    });
                }
                match name.strip_prefix("*.") {
                    Some(parent) => wildcard.insert(parent.to_string(), key.clone()),
                    None => exact.insert(name, key.clone()),
                };
            }
            default.get_or_insert(key);
        }
        Ok(CertTable {
            exact,
            wildcard,
            default: default.ok_or(CertError::Empty)?,
        })
    }

    /// The certificate for `server_name` (none sent, or unknown: the default).
    pub fn choose(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = server_name.map(str::to_ascii_lowercase) else {
            return self.default.clone();
        };
        if let Some(k) = self.exact.get(&name) {
            return k.clone();
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
            .clone()
    }
}

/// Reads one chain and key, and checks they belong together.
fn load_one(f: &CertificateFiles) -> Result<CertifiedKey, CertError> {
    let chain = read_chain(&f.cert)?;
    let key_der = PrivateKeyDer::from_pem_file(&f.key).map_err(|e| CertError::Key {
        path: f.key.clone(),
        reason: e.to_string(),
    })?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key_der).map_err(|e| CertError::Key {
        path: f.key.clone(),
        reason: format!("unsupported key: {e}"),
    })?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|e| CertError::Mismatch {
        cert: f.cert.clone(),
        key: f.key.clone(),
        reason: e.to_string(),
    })?;
    Ok(certified)
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bad = |reason: String| CertError::Chain {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if chain.is_empty() {
        return Err(bad("no CERTIFICATE section in the file".into()));
    }
    Ok(chain)
}

/// Checks that the leaf certificate of `key` is valid for `name` (a wildcard name is checked
/// with a label in its place).
fn check_name(key: &CertifiedKey, cert: &Path, name: &str) -> Result<(), CertError> {
    let bad = |reason: String| CertError::Name {
        cert: cert.to_path_buf(),
        name: name.to_string(),
        reason,
    };
    let probe = match name.strip_prefix("*.") {
        Some(parent) => format!("strata-sni-check.{parent}"),
        None => name.to_string(),
    };
    let server_name = ServerName::try_from(probe.as_str()).map_err(|e| bad(e.to_string()))?;
    let leaf = key.end_entity_cert().map_err(|e| bad(e.to_string()))?;
    let parsed =
        webpki::EndEntityCert::try_from(leaf).map_err(|e| bad(format!("unreadable certificate: {e}")))?;
    parsed
        .verify_is_valid_for_subject_name(&server_name)
        .map_err(|e| bad(format!("not in its subjectAltName ({e})")))
}

/// rustls's certificate choice for a listener, by SNI.
#[derive(Debug)]
pub struct SniResolver {
    table: CertTable,
}

impl SniResolver {
    pub fn new(table: CertTable) -> SniResolver {
        SniResolver { table }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.table.choose(hello.server_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a self-signed certificate for `names` into `dir`; returns its files.
    fn self_signed(dir: &Path, stem: &str, names: &[&str]) -> CertificateFiles {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let ck = rcgen::generate_simple_self_signed(names).expect("rcgen");
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, ck.cert.pem()).expect("write cert");
        std::fs::write(&key, ck.key_pair.serialize_pem()).expect("write key");
        CertificateFiles {
            cert,
            key,
            names: Vec::new(),
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-certs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn sni_picks_the_certificate_that_lists_the_name_else_the_first() {
        let dir = temp_dir("sni");
        let a = self_signed(&dir, "a", &["a.test"]);
        let mut b = self_signed(&dir, "b", &["b.test", "*.b.test"]);
        b.names = vec!["b.test".into(), "*.b.test".into()];
        let table = CertTable::load(&[a, b.clone()]).expect("load");
        let b_leaf = CertTable::load(&[b]).expect("b alone").default.cert[0].clone();
        assert_eq!(table.choose(Some("B.test")).cert[0], b_leaf);
        assert_eq!(table.choose(Some("x.b.test")).cert[0], b_leaf);
        assert_ne!(table.choose(Some("a.test")).cert[0], b_leaf);
        assert_ne!(table.choose(None).cert[0], b_leaf);
        assert_ne!(table.choose(Some("unknown.test")).cert[0], b_leaf);
    }

    #[test]
    fn a_name_the_certificate_does_not_cover_is_refused_naming_both() {
        let dir = temp_dir("name");
        let mut a = self_signed(&dir, "a", &["a.test"]);
        a.names = vec!["other.test".into()];
        let e = CertTable::load(&[a]).unwrap_err().to_string();
        assert!(e.contains("other.test") && e.contains("a.pem"), "{e}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = temp_dir("mismatch");
        let a = self_signed(&dir, "a", &["a.test"]);
        let b = self_signed(&dir, "b", &["b.test"]);
        let crossed = CertificateFiles {
            cert: a.cert,
            key: b.key,
            names: Vec::new(),
        };
        let e = CertTable::load(&[crossed]).unwrap_err();
        assert!(matches!(e, CertError::Mismatch { .. }), "{e}");
    }

    #[test]
    fn a_missing_file_and_a_second_certificate_without_names_are_refused() {
        let dir = temp_dir("missing");
        let a = self_signed(&dir, "a", &["a.test"]);
        let b = self_signed(&dir, "b", &["b.test"]);
        let e = CertTable::load(&[a.clone(), b]).unwrap_err();
        assert!(matches!(e, CertError::NoNames { .. }), "{e}");
        let gone = CertificateFiles {
            cert: dir.join("nope.pem"),
            ..a
        };
        let e = CertTable::load(&[gone]).unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
    }
}
