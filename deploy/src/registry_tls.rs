//! The certificates of the cluster's registry when it serves TLS (`localRegistry.insecure`
//! false, the default): a CA kept with the cluster's state on this machine and a server
//! certificate it signs for the registry's names. Every host trusts the CA for the
//! registry; the registry hosts get the server certificate and key.
//!
//! Stored in `<cluster state dir>/registry-pki/`: `ca.crt`, `ca.key`, `registry.crt`,
//! `registry.key` and `registry.names` (the names the server certificate was issued for; it
//! is issued again when they change). Keys are written 0600 in a 0700 directory.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest as _, Sha256};

use crate::plan::shell;
use crate::secret::Secret;
use crate::ssh::RemoteCommand;
use crate::state::write_atomically;

/// Years the CA and the server certificate stay valid (as the original's).
const VALID_YEARS: i32 = 100;

/// Why the certificates cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read or written.
    #[error("registry certificates: {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A certificate or key cannot be made.
    #[error("registry certificates: {0}")]
    Make(String),
    /// A stored key is unusable.
    #[error(
        "registry certificates in {dir}: {message}; remove the directory to have new ones made (every host then needs the new CA: run `sealer apply` again after `sealer delete -a`)"
    )]
    Invalid {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The registry's CA and server certificate.
#[derive(Debug, Clone)]
pub struct RegistryTls {
    /// The CA certificate every host trusts for the registry, PEM.
    pub ca_pem: String,
    /// The server certificate, PEM.
    pub cert_pem: String,
    /// The server certificate's private key, PEM.
    pub key_pem: Secret,
}

impl RegistryTls {
    /// The certificates stored in `state_dir`, made (and stored, unless `persist` is false:
    /// a dry run) when missing; the server certificate is issued again when `names` differ
    /// from those it was issued for.
    pub fn ensure(state_dir: &Path, names: &[String], persist: bool) -> Result<Self, TlsError> {
        let store = PkiDir::new(state_dir);
        let (ca_key, ca_pem, ca_is_new) = if let Some(key_pem) = store.read_optional("ca.key")? {
            (store.key(&key_pem)?, store.read("ca.crt")?, false)
        } else {
            let key = generate_key()?;
            let ca_pem = ca_params()
                .self_signed(&key)
                .map_err(|e| TlsError::Make(format!("cannot make the CA: {e}")))?
                .pem();
            (key, ca_pem, true)
        };
        let names_text = names.join("\n");
        let issued_for = store.read_optional("registry.names")?;
        if !ca_is_new && issued_for.as_deref() == Some(names_text.as_str()) {
            return Ok(RegistryTls {
                ca_pem,
                cert_pem: store.read("registry.crt")?,
                key_pem: Secret::new(store.read("registry.key")?),
            });
        }
        let server_key = generate_key()?;
        let cert_pem = server_params(names)
            .map_err(|e| TlsError::Make(format!("cannot issue a certificate for {names:?}: {e}")))?
            .signed_by(&server_key, &Issuer::new(ca_params(), &ca_key))
            .map_err(|e| TlsError::Make(format!("cannot sign the server certificate: {e}")))?
            .pem();
        let tls = RegistryTls {
            ca_pem,
            cert_pem,
            key_pem: Secret::new(server_key.serialize_pem()),
        };
        if persist {
            store.create()?;
            // Each key after its certificate, the names last: a run killed in between
            // leaves a CA without key (made again) or a server certificate without names
            // (issued again), never a key whose certificate is missing.
            if ca_is_new {
                store.write("ca.crt", &tls.ca_pem, 0o644)?;
                store.write("ca.key", &ca_key.serialize_pem(), 0o600)?;
            }
            store.write("registry.crt", &tls.cert_pem, 0o644)?;
            store.write("registry.key", tls.key_pem.expose(), 0o600)?;
            store.write("registry.names", &names_text, 0o644)?;
        }
        Ok(tls)
    }

    /// The certificates as stored in `state_dir`, whatever names they were issued for; `None`
    /// when none are.
    pub fn load(state_dir: &Path) -> Result<Option<Self>, TlsError> {
        let store = PkiDir::new(state_dir);
        let Some(key_pem) = store.read_optional("registry.key")? else {
            return Ok(None);
        };
        Ok(Some(RegistryTls {
            ca_pem: store.read("ca.crt")?,
            cert_pem: store.read("registry.crt")?,
            key_pem: Secret::new(key_pem),
        }))
    }

    /// SHA-256 of the server certificate: steps that install it change when it does.
    pub fn certificate_digest(&self) -> String {
        hex::encode(Sha256::digest(self.cert_pem.as_bytes()))
    }

    /// The command that writes the server certificate and key to their
    /// [`certificate_paths`] in `dir`, and the bytes for its stdin (the key, which thus never
    /// appears in a command line or a log).
    pub fn install_command(&self, dir: &str, domain: &str) -> (RemoteCommand, Vec<u8>) {
        let (cert_path, key_path) = certificate_paths(dir, domain);
        let script = format!(
            "{}{}",
            shell::write_file(&cert_path, self.cert_pem.as_bytes(), "0644"),
            shell::write_private_file_from_stdin(&key_path)
        );
        (
            RemoteCommand::new(script),
            self.key_pem.expose().as_bytes().to_vec(),
        )
    }
}

/// Where a registry host holds the server certificate and key in `dir`:
/// `<domain>.crt` and `<domain>.key`, the original's names, which images' `init-registry.sh`
/// read.
pub fn certificate_paths(dir: &str, domain: &str) -> (String, String) {
    (format!("{dir}/{domain}.crt"), format!("{dir}/{domain}.key"))
}

/// The names of a server certificate: DNS names and IP addresses, in a stable order without
/// repeats.
pub fn certificate_names(
    dns_names: impl IntoIterator<Item = String>,
    ips: impl IntoIterator<Item = IpAddr>,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in dns_names
        .into_iter()
        .chain(ips.into_iter().map(|ip| ip.to_string()))
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The CA's parameters. They are the same for every run: a certificate signed with a stored
/// CA key and these parameters chains to the stored CA certificate (same subject, and the
/// key identifier comes from the key).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, "sealer registry CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params);
    params
}

fn server_params(names: &[String]) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().map_or("registry", String::as_str),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    set_validity(&mut params);
    Ok(params)
}

/// Valid from the start of last year (clocks of hosts differ) for [`VALID_YEARS`].
fn set_validity(params: &mut CertificateParams) {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let this_year = 1970 + i32::try_from(seconds / 31_556_952).unwrap_or(0);
    params.not_before = rcgen::date_time_ymd(this_year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(this_year + VALID_YEARS, 1, 1);
}

/// A fresh key pair (ECDSA P-256).
fn generate_key() -> Result<KeyPair, TlsError> {
    KeyPair::generate().map_err(|e| TlsError::Make(format!("cannot make a key: {e}")))
}

/// The `registry-pki` directory.
struct PkiDir {
    dir: PathBuf,
}

impl PkiDir {
    fn new(state_dir: &Path) -> Self {
        PkiDir {
            dir: state_dir.join("registry-pki"),
        }
    }

    fn invalid(&self, message: String) -> TlsError {
        TlsError::Invalid {
            dir: self.dir.clone(),
            message,
        }
    }

    fn file_error(&self, name: &str, source: io::Error) -> TlsError {
        TlsError::File {
            path: self.dir.join(name),
            source,
        }
    }

    fn read(&self, name: &str) -> Result<String, TlsError> {
        fs::read_to_string(self.dir.join(name)).map_err(|e| self.file_error(name, e))
    }

    fn read_optional(&self, name: &str) -> Result<Option<String>, TlsError> {
        match fs::read_to_string(self.dir.join(name)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.file_error(name, e)),
        }
    }

    fn key(&self, pem: &str) -> Result<KeyPair, TlsError> {
        KeyPair::from_pem(pem).map_err(|e| self.invalid(format!("ca.key: {e}")))
    }

    fn create(&self) -> Result<(), TlsError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.file_error("", e))
    }

    /// Writes `name` atomically with `mode`.
    fn write(&self, name: &str, content: &str, mode: u32) -> Result<(), TlsError> {
        write_atomically(&self.dir.join(name), content.as_bytes(), mode)
            .map_err(|e| self.file_error(name, e))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn certificates_are_made_once_and_reissued_only_for_other_names() {
        let state = tempfile::tempdir().unwrap();
        let first =
            RegistryTls::ensure(state.path(), &names(&["sea.hub", "10.0.0.2"]), true).unwrap();
        let dir = state.path().join("registry-pki");
        for key in ["ca.key", "registry.key"] {
            let mode = fs::metadata(dir.join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let again =
            RegistryTls::ensure(state.path(), &names(&["sea.hub", "10.0.0.2"]), true).unwrap();
        assert_eq!(again.cert_pem, first.cert_pem);
        assert_eq!(again.key_pem.expose(), first.key_pem.expose());

        let other =
            RegistryTls::ensure(state.path(), &names(&["sea.hub", "10.0.0.3"]), true).unwrap();
        assert_eq!(other.ca_pem, first.ca_pem, "the CA every host trusts stays");
        assert_ne!(other.cert_pem, first.cert_pem);
        assert_ne!(other.certificate_digest(), first.certificate_digest());
    }

    /// Whether `tls`'s server certificate chains to its CA and is valid for `name`, as a
    /// client checks it.
    fn verify(tls: &RegistryTls, name: &str) -> Result<(), rustls::Error> {
        use rustls::client::danger::ServerCertVerifier as _;
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(tls.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()
        .unwrap();
        verifier
            .verify_server_cert(
                &CertificateDer::from_pem_slice(tls.cert_pem.as_bytes()).unwrap(),
                &[],
                &ServerName::try_from(name.to_owned()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    #[test]
    fn server_certificates_chain_to_the_stored_ca_for_their_names() {
        let state = tempfile::tempdir().unwrap();
        let first =
            RegistryTls::ensure(state.path(), &names(&["sea.hub", "10.0.0.2"]), true).unwrap();
        verify(&first, "sea.hub").unwrap();
        verify(&first, "10.0.0.2").unwrap();
        assert!(verify(&first, "other.hub").is_err());
        // Issued again later, from the stored CA key.
        let reissued =
            RegistryTls::ensure(state.path(), &names(&["hub.local", "10.0.0.3"]), true).unwrap();
        verify(&reissued, "hub.local").unwrap();
        verify(&reissued, "10.0.0.3").unwrap();
    }

    #[test]
    fn a_dry_run_stores_nothing() {
        let state = tempfile::tempdir().unwrap();
        RegistryTls::ensure(state.path(), &names(&["sea.hub"]), false).unwrap();
        assert!(!state.path().join("registry-pki").exists());
        assert!(RegistryTls::load(state.path()).unwrap().is_none());
    }

    #[test]
    fn loading_keeps_what_is_stored() {
        let state = tempfile::tempdir().unwrap();
        let made = RegistryTls::ensure(state.path(), &names(&["sea.hub"]), true).unwrap();
        let loaded = RegistryTls::load(state.path()).unwrap().unwrap();
        assert_eq!(
            (loaded.ca_pem, loaded.cert_pem, loaded.key_pem.expose()),
            (made.ca_pem, made.cert_pem, made.key_pem.expose())
        );
    }

    #[test]
    fn a_damaged_key_is_reported_with_its_directory() {
        let state = tempfile::tempdir().unwrap();
        RegistryTls::ensure(state.path(), &names(&["sea.hub"]), true).unwrap();
        fs::write(state.path().join("registry-pki/ca.key"), "not a key").unwrap();
        let error = RegistryTls::ensure(state.path(), &names(&["other"]), true)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("registry-pki") && error.contains("ca.key"),
            "{error}"
        );
    }

    #[test]
    fn names_keep_their_order_without_repeats() {
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            certificate_names(names(&["sea.hub", "extra", "sea.hub"]), [ip, ip]),
            names(&["sea.hub", "extra", "10.0.0.2"])
        );
    }
}
