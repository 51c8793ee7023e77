//! TLS for the server, from a certificate chain and a private key in PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS configuration cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct TlsError {
    /// The certificate or key file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// A server configuration presenting the chain in `certificate` (PEM, leaf first) with the
/// key in `key` (PEM: PKCS#8, PKCS#1 or SEC1), speaking HTTP/1.1.
pub fn server_config(certificate: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let error = |path: &Path, reason: String| TlsError {
        path: path.to_owned(),
        reason,
    };
    let certificate_pem =
        std::fs::read(certificate).map_err(|e| error(certificate, format!("cannot read: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&certificate_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(certificate, format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(error(
            certificate,
            "holds no PEM `CERTIFICATE` block".to_owned(),
        ));
    }
    let key_pem = std::fs::read(key).map_err(|e| error(key, format!("cannot read: {e}")))?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| error(key, format!("holds no usable PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(certificate, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            error(
                key,
                format!(
                    "does not fit the certificate {}: {e}",
                    certificate.display()
                ),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_generated_certificate_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = testkit::pki::TestCa::new("tls test CA");
        let issued = ca.issue(&["localhost"], testkit::pki::Usage::Server);
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, &issued.cert_pem).unwrap();
        std::fs::write(&key_path, &issued.key_pem).unwrap();
        let config = server_config(&cert_path, &key_path).unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);

        let error = server_config(&key_path, &key_path).unwrap_err();
        assert_eq!(error.path, key_path);
        let error = server_config(&cert_path, &cert_path).unwrap_err();
        assert!(error.reason.contains("private key"), "{error}");
        let other = ca.issue(&["localhost"], testkit::pki::Usage::Server);
        std::fs::write(&key_path, other.key_pem).unwrap();
        let error = server_config(&cert_path, &key_path).unwrap_err();
        assert!(error.reason.contains("does not fit"), "{error}");
        let missing = dir.path().join("missing.pem");
        assert!(
            server_config(&missing, &key_path)
                .unwrap_err()
                .reason
                .contains("cannot read")
        );
    }
}
