//! rustls client configuration from [`TlsFiles`].

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::addr::TlsFiles;
use crate::error::{ClientError, Result};

/// ALPN for gRPC (a standalone buildkitd).
pub(crate) const ALPN_H2: &[u8] = b"h2";
/// ALPN for the Docker API, which starts as HTTP/1.1.
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A client configuration trusting `files.ca` (default: the system's roots), presenting
/// `files.cert` + `files.key` when given, and offering `alpn`.
pub(crate) fn client_config(
    files: &TlsFiles,
    alpn: &[u8],
    address: &str,
) -> Result<Arc<ClientConfig>> {
    let config_error = |reason: String| ClientError::TlsConfig {
        address: address.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    if let Some(ca) = &files.ca {
        for cert in read_certificates(ca, address)? {
            roots.add(cert).map_err(|error| ClientError::TlsFile {
                address: address.to_owned(),
                path: ca.clone(),
                reason: format!("not a usable CA certificate: {error}"),
            })?;
        }
    } else {
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if roots.is_empty() {
            return Err(config_error(
                "no CA certificate given and none found on this system; pass the CA that signs the server's \
                 certificate"
                    .to_owned(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| config_error(error.to_string()))?
        .with_root_certificates(roots);
    let mut config = match (&files.cert, &files.key) {
        (Some(cert_path), Some(key_path)) => {
            let certs = read_certificates(cert_path, address)?;
            let key = read_private_key(key_path, address)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|error| ClientError::TlsFile {
                    address: address.to_owned(),
                    path: key_path.clone(),
                    reason: format!(
                        "does not fit the client certificate {}: {error}",
                        cert_path.display()
                    ),
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(cert_path), None) => {
            return Err(config_error(format!(
                "the client certificate {} needs its private key",
                cert_path.display()
            )));
        }
        (None, Some(key_path)) => {
            return Err(config_error(format!(
                "the client key {} needs its certificate",
                key_path.display()
            )));
        }
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// The name the server's certificate must carry: `files.server_name`, else `host`.
pub(crate) fn server_name(
    files: &TlsFiles,
    host: &str,
    address: &str,
) -> Result<ServerName<'static>> {
    let name = files.server_name.as_deref().unwrap_or(host);
    ServerName::try_from(name.to_owned()).map_err(|_| ClientError::TlsConfig {
        address: address.to_owned(),
        reason: format!("`{name}` is not a valid TLS server name"),
    })
}

fn read_file(path: &Path, address: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| ClientError::TlsFile {
        address: address.to_owned(),
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

fn read_certificates(path: &Path, address: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = read_file(path, address)?;
    let file_error = |reason: String| ClientError::TlsFile {
        address: address.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|error| file_error(format!("not a PEM certificate file: {error}")))?;
    if certs.is_empty() {
        return Err(file_error("holds no PEM `CERTIFICATE` block".to_owned()));
    }
    Ok(certs)
}

fn read_private_key(path: &Path, address: &str) -> Result<PrivateKeyDer<'static>> {
    let bytes = read_file(path, address)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| ClientError::TlsFile {
        address: address.to_owned(),
        path: path.to_owned(),
        reason: format!("holds no PEM private key: {error}"),
    })
}
