//! The POP's HTTPS certificate: self-signed for localhost and 127.0.0.1, generated with rcgen
//! into the build tree on first `cargo xtask run` and reused after (never committed).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Returns the certificate and key PEM files under `dir`, generating them if absent.
pub fn self_signed(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert = dir.join("localhost.pem");
    let key = dir.join("localhost.key");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let generated =
        rcgen::generate_simple_self_signed(names).context("generating the POP's self-signed certificate")?;
    std::fs::write(&key, generated.key_pair.serialize_pem())
        .with_context(|| format!("writing {}", key.display()))?;
    std::fs::write(&cert, generated.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
    println!(
        "generated a self-signed HTTPS certificate for the POP: {}",
        cert.display()
    );
    Ok((cert, key))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_certificate_is_generated_once_and_then_reused() {
        let dir = std::env::temp_dir().join(format!("xtask-pop-cert-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (cert, key) = super::self_signed(&dir).expect("generate");
        let first = std::fs::read_to_string(&cert).expect("cert");
        assert!(first.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(std::fs::read_to_string(&key)
            .expect("key")
            .contains("PRIVATE KEY"));
        let (again, _) = super::self_signed(&dir).expect("reuse");
        assert_eq!(std::fs::read_to_string(again).expect("cert"), first);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
