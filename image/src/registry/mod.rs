//! The registry client: pull and push of images and indexes on top of `oci-client`, with
//! streaming transfers into and out of the local store, bounded concurrency, blobs the
//! registry already has skipped, cross-repository mounts, retries with backoff, resumed
//! downloads, Docker's credentials, plain HTTP for loopback and `--insecure-registry`, and
//! registry mirrors for pulls.

pub mod auth;
mod fetch;
mod pull;
mod push;
mod transfer;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;

pub use auth::Credentials;
pub use fetch::{ResolvedImage, download_blobs, resolve_for_storage};
pub use pull::{PullOptions, Pulled, pull};
pub use push::push;

use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::StoreError;

/// Errors of registry operations. None of them carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry refused access (wrong or missing credentials, or no rights on the repository).
    #[error(
        "{registry} refused access to {repository}: check `sealer-build login {registry}` (user name, password, and rights on the repository)"
    )]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// The repository asked for.
        repository: String,
    },
    /// The registry refused a login.
    #[error("{registry} refused the login: wrong user name or password")]
    LoginRefused {
        /// Registry host.
        registry: String,
    },
    /// The registry (or its mirror) does not have the image.
    #[error("{reference}: not found on {host} (check the name and tag)")]
    NotFound {
        /// The reference.
        reference: String,
        /// The registry asked, or its mirror (`127.0.0.1:5000, the mirror of docker.io`).
        host: String,
    },
    /// The image index has no image for the platform.
    #[error("{reference} has no image for platform {platform} (it has: {available})")]
    NoPlatform {
        /// The reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The platforms it has.
        available: String,
    },
    /// Downloaded content does not match its digest.
    #[error(
        "{reference}: {what} {expected} failed verification (the registry sent content that hashes to {actual}); nothing was stored"
    )]
    DigestMismatch {
        /// The image.
        reference: String,
        /// `blob` or `manifest`.
        what: &'static str,
        /// Expected digest.
        expected: Digest,
        /// Actual digest.
        actual: Digest,
    },
    /// A document is not a manifest this tool understands.
    #[error("{reference}: unsupported manifest ({reason})")]
    Unsupported {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// A request failed for good (after retries when the failure looked transient).
    #[error("{reference}: {action} failed: {message}")]
    Transfer {
        /// The reference.
        reference: String,
        /// What was being done.
        action: String,
        /// The registry's or the network's message.
        message: String,
    },
    /// Docker config or credential helper trouble.
    #[error("{0}")]
    Config(String),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A `SOURCE=MIRROR` pull mirror (`--registry-mirror`) as a [`RegistryOptions::mirrors`]
/// entry.
pub fn parse_mirror(entry: &str) -> Result<(String, String), String> {
    match entry.split_once('=') {
        Some((source, mirror)) if !source.is_empty() && !mirror.is_empty() => {
            Ok((source.to_owned(), mirror.to_owned()))
        }
        _ => Err(format!(
            "registry mirror `{entry}`: expected SOURCE=MIRROR, such as docker.io=127.0.0.1:5000"
        )),
    }
}

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) reached over plain HTTP, besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Verify TLS certificates (`--tls-verify=false` turns it off, and implies plain HTTP
    /// fallback is not attempted: HTTPS without verification is used).
    pub tls_verify: bool,
    /// Blobs transferred at once.
    pub jobs: usize,
    /// Attempts per request when failures look transient (429, 5xx, resets, timeouts).
    pub attempts: u32,
    /// First retry delay; doubles each time.
    pub backoff: Duration,
    /// Pull mirrors: registry (as references name it, such as `docker.io`) → mirror
    /// (`host[:port]`). Manifests and blobs of an image on that registry are fetched from the
    /// mirror under the same repository path and tag or digest; the image keeps its name.
    /// Pushes and logins still go to the registry itself.
    pub mirrors: BTreeMap<String, String>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            tls_verify: true,
            jobs: 8,
            attempts: 5,
            backoff: Duration::from_millis(200),
            mirrors: BTreeMap::new(),
        }
    }
}

/// True for registries on the loopback interface, which are reached over plain HTTP.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// True when a registry error text carries this error code (`MANIFEST_UNKNOWN`, ...) as a
/// whole word.
fn has_code(text: &str, code: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .any(|word| word == code)
}

/// A registry client shared by the operations of one command.
pub struct RegistryClient {
    options: RegistryOptions,
    clients: Mutex<HashMap<String, oci_client::Client>>,
    credentials: Mutex<HashMap<String, RegistryAuth>>,
}

impl RegistryClient {
    /// A client with these options.
    pub fn new(options: RegistryOptions) -> Self {
        RegistryClient {
            options,
            clients: Mutex::new(HashMap::new()),
            credentials: Mutex::new(HashMap::new()),
        }
    }

    /// The options.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// The host that pulls of `reference` go to: the mirror of its registry, or the registry.
    pub fn pull_host<'a>(&'a self, reference: &'a Reference) -> &'a str {
        self.options
            .mirrors
            .get(reference.registry())
            .map_or(reference.registry(), String::as_str)
    }

    /// True when the registry is reached over plain HTTP.
    pub fn is_plain_http(&self, registry: &str) -> bool {
        is_loopback(registry)
            || self
                .options
                .insecure_registries
                .iter()
                .any(|r| r == registry)
    }

    fn client(&self, registry: &str) -> oci_client::Client {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(registry.to_owned())
            .or_insert_with(|| {
                let protocol = if self.is_plain_http(registry) {
                    ClientProtocol::Http
                } else {
                    ClientProtocol::Https
                };
                oci_client::Client::new(ClientConfig {
                    protocol,
                    accept_invalid_certificates: !self.options.tls_verify,
                    use_monolithic_push: true,
                    max_concurrent_download: self.options.jobs.max(1),
                    max_concurrent_upload: self.options.jobs.max(1),
                    connect_timeout: Some(Duration::from_secs(30)),
                    read_timeout: Some(Duration::from_secs(120)),
                    ..ClientConfig::default()
                })
            })
            .clone()
    }

    /// The credentials for a registry, from the Docker config (looked up once).
    fn auth(&self, registry: &str) -> Result<RegistryAuth, RegistryError> {
        let mut cache = self
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(auth) = cache.get(registry) {
            return Ok(auth.clone());
        }
        let auth = match auth::credentials_for(registry)? {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => RegistryAuth::Basic(username, password),
        };
        cache.insert(registry.to_owned(), auth.clone());
        Ok(auth)
    }

    /// Uses these credentials for a registry instead of the Docker config's.
    pub fn set_credentials(&self, registry: &str, credentials: &Credentials) {
        let auth = match credentials {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
        };
        self.credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(registry.to_owned(), auth);
    }

    /// Checks credentials against a registry (`GET /v2/`, following a token challenge) without
    /// storing them.
    pub async fn check_login(
        &self,
        registry: &str,
        credentials: &Credentials,
    ) -> Result<(), RegistryError> {
        transfer::check_login(self, registry, credentials).await
    }
}

/// Takes the store's shared lock without blocking the async runtime (it waits while `prune`
/// runs).
pub(crate) async fn lock_shared(
    store: &crate::store::Store,
) -> Result<crate::store::StoreLock, RegistryError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.lock_shared())
        .await
        .map_err(|e| RegistryError::Config(format!("lock task failed: {e}")))?
        .map_err(RegistryError::from)
}

/// `host`, named as the mirror of the reference's registry when it is one.
fn describe_host(reference: &Reference, host: &str) -> String {
    if host == reference.registry() {
        host.to_owned()
    } else {
        format!("{host}, the mirror of {}", reference.registry())
    }
}

/// Turns `oci-client`'s error into ours, without credentials, naming the reference and the
/// host the request went to (`host`: the registry or its mirror).
pub(crate) fn classify(
    reference: &Reference,
    host: &str,
    action: &str,
    error: &OciDistributionError,
) -> RegistryError {
    let not_found = || RegistryError::NotFound {
        reference: reference.to_string(),
        host: describe_host(reference, host),
    };
    let unauthorized = || RegistryError::Unauthorized {
        registry: host.to_owned(),
        repository: reference.repository().to_owned(),
    };
    let action = if host == reference.registry() {
        action.to_owned()
    } else {
        format!("{action} from {}", describe_host(reference, host))
    };
    match error {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => unauthorized(),
        OciDistributionError::ImageManifestNotFoundError(_)
        | OciDistributionError::ServerError { code: 404, .. } => not_found(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes = error_codes(envelope);
            if has_code(&codes, "UNAUTHORIZED") || has_code(&codes, "DENIED") {
                unauthorized()
            } else if ["MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"]
                .iter()
                .any(|code| has_code(&codes, code))
            {
                not_found()
            } else {
                RegistryError::Transfer {
                    reference: reference.to_string(),
                    action,
                    message: envelope.to_string(),
                }
            }
        }
        OciDistributionError::RequestError(e)
            if matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) =>
        {
            unauthorized()
        }
        OciDistributionError::RequestError(e) if e.status().is_some_and(|s| s.as_u16() == 404) => {
            not_found()
        }
        other => RegistryError::Transfer {
            reference: reference.to_string(),
            action,
            message: error_chain(other),
        },
    }
}

/// The error codes of a registry's error answer (`MANIFEST_UNKNOWN DENIED`), which its
/// display leaves out.
fn error_codes(envelope: &oci_client::errors::OciEnvelope) -> String {
    envelope
        .errors
        .iter()
        .filter_map(|error| match serde_json::to_value(&error.code) {
            Ok(serde_json::Value::String(code)) => Some(code),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An error with its causes, on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// True for failures worth retrying: rate limits, server errors, resets and timeouts.
pub(crate) fn is_transient(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::RequestError(e) => match e.status() {
            Some(status) => status.as_u16() == 429 || status.is_server_error(),
            None => {
                e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() || e.is_decode()
            }
        },
        OciDistributionError::ServerError { code, .. } => *code == 429 || *code >= 500,
        OciDistributionError::RegistryError { envelope, .. } => {
            has_code(&error_codes(envelope), "TOOMANYREQUESTS")
        }
        OciDistributionError::IoError(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
        ),
        _ => false,
    }
}

/// Converts our reference into `oci-client`'s, for requests sent to `host` (the reference's
/// registry or its mirror).
pub(crate) fn oci_reference(reference: &Reference, host: &str) -> oci_client::Reference {
    let registry = host.to_owned();
    let repository = reference.repository().to_owned();
    match (reference.tag(), reference.digest()) {
        (_, Some(digest)) => {
            oci_client::Reference::with_digest(registry, repository, digest.to_string())
        }
        (Some(tag), None) => oci_client::Reference::with_tag(registry, repository, tag.to_owned()),
        (None, None) => oci_client::Reference::with_tag(registry, repository, "latest".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_whole_words() {
        assert!(has_code(
            "MANIFEST_UNKNOWN: manifest unknown",
            "MANIFEST_UNKNOWN"
        ));
        assert!(!has_code(
            "MANIFEST_BLOB_UNKNOWN: blob unknown",
            "BLOB_UNKNOWN"
        ));
        assert!(has_code("[TOOMANYREQUESTS]", "TOOMANYREQUESTS"));
    }

    #[test]
    fn error_codes_come_from_the_envelope() {
        let envelope: oci_client::errors::OciEnvelope = serde_json::from_str(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"},{"code":"X_OWN","message":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(error_codes(&envelope), "MANIFEST_UNKNOWN X_OWN");
        let reference = Reference::parse("docker.io/library/a:1").unwrap();
        let error = OciDistributionError::RegistryError {
            envelope,
            url: "http://127.0.0.1:5000/v2/library/a/manifests/1".into(),
        };
        assert_eq!(
            classify(&reference, "127.0.0.1:5000", "fetching", &error).to_string(),
            "docker.io/library/a:1: not found on 127.0.0.1:5000, the mirror of docker.io (check the name and tag)"
        );
        assert_eq!(
            classify(&reference, "docker.io", "fetching", &error).to_string(),
            "docker.io/library/a:1: not found on docker.io (check the name and tag)"
        );
    }

    #[test]
    fn loopback_registries() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "docker.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[fe80::1]:5000",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
