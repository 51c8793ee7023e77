//! The options of `sealer registry serve`, from flags and/or a YAML config file.
//!
//! The file uses distribution's own keys where they map, so an original
//! `registry_config.yml` is read as it is:
//!
//! ```yaml
//! http:
//!   addr: :5000                  # listen address (default 0.0.0.0:5000)
//!   tls:
//!     certificate: /certs/sea.hub.crt
//!     key: /certs/sea.hub.key
//! auth:
//!   htpasswd:
//!     realm: Registry Realm
//!     path: /etc/registry_htpasswd
//! storage:
//!   filesystem:
//!     rootdirectory: /var/lib/registry   # holds docker/registry/v2
//!   maintenance:
//!     readonly:
//!       enabled: false           # false turns pushes on; absent or true keeps them off
//! proxy:                         # the pull-through cache (read by the upstream module)
//!   remoteregistries: [...]
//! ```
//!
//! Other keys of distribution's configuration (`version`, `log`, `health`, ...) are accepted
//! and ignored. Flags override the file. Pushes are off unless `--enable-push` or the file's
//! `readonly.enabled: false` turns them on.

use std::fmt;
use std::path::{Path, PathBuf};

use kyaml::{Limits, Node, NodeKind};

/// The listen address when none is given.
pub const DEFAULT_ADDR: &str = "0.0.0.0:5000";
/// The realm of the basic-auth challenge when the file names none.
pub const DEFAULT_REALM: &str = "sealer-registry";

/// Everything `sealer registry serve` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// The address to listen on (`host:port`).
    pub addr: String,
    /// The directory holding `docker/registry/v2`.
    pub storage_root: PathBuf,
    /// TLS certificate and key, when served over HTTPS.
    pub tls: Option<TlsFiles>,
    /// htpasswd authentication of clients.
    pub htpasswd: Option<HtpasswdConfig>,
    /// True when uploads and manifest pushes are accepted.
    pub push: bool,
    /// The file's `proxy` section, unparsed, for the pull-through cache.
    pub proxy_section: Option<Node>,
    /// The config file read, if any.
    pub source: Option<PathBuf>,
}

/// A certificate chain and its key, in PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub certificate: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// Where the htpasswd file is and the realm of the challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtpasswdConfig {
    /// The htpasswd file (bcrypt entries).
    pub path: PathBuf,
    /// The realm of the `WWW-Authenticate` challenge.
    pub realm: String,
}

/// The command-line flags; every one overrides the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeFlags {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--addr ADDR`.
    pub addr: Option<String>,
    /// `--storage DIR`.
    pub storage: Option<PathBuf>,
    /// `--tls-cert FILE`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key FILE`.
    pub tls_key: Option<PathBuf>,
    /// `--htpasswd FILE`.
    pub htpasswd: Option<PathBuf>,
    /// `--enable-push`.
    pub enable_push: bool,
}

/// Why the options are not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read the registry config {}: {reason}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The error.
        reason: String,
    },
    /// A problem at a place in the config file.
    #[error("{}:{line}:{column}: {message}", file.display())]
    At {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The options together are incomplete or contradictory.
    #[error("{0}")]
    Invalid(String),
}

/// What the file says, before flags are applied.
#[derive(Debug, Default)]
struct FileSettings {
    addr: Option<String>,
    storage_root: Option<PathBuf>,
    tls_certificate: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    htpasswd: Option<PathBuf>,
    realm: Option<String>,
    read_only: Option<bool>,
    proxy_section: Option<Node>,
}

impl ServeConfig {
    /// The options from the flags and, when `--config` names one, the file.
    pub fn resolve(flags: &ServeFlags) -> Result<Self, ConfigError> {
        let file = match &flags.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    file: path.clone(),
                    reason: e.to_string(),
                })?;
                read_file_settings(&text, path)?
            }
            None => FileSettings::default(),
        };
        let addr = flags
            .addr
            .clone()
            .or(file.addr)
            .map_or_else(|| DEFAULT_ADDR.to_owned(), |addr| listen_address(&addr));
        let storage_root = flags.storage.clone().or(file.storage_root).ok_or_else(|| {
            ConfigError::Invalid(
                "no storage directory: pass --storage DIR (the directory holding docker/registry/v2) \
                 or set storage.filesystem.rootdirectory in the config file"
                    .to_owned(),
            )
        })?;
        let certificate = flags.tls_cert.clone().or(file.tls_certificate);
        let key = flags.tls_key.clone().or(file.tls_key);
        let tls = match (certificate, key) {
            (Some(certificate), Some(key)) => Some(TlsFiles { certificate, key }),
            (None, None) => None,
            (Some(certificate), None) => {
                return Err(ConfigError::Invalid(format!(
                    "the TLS certificate {} needs its key: pass --tls-key or set http.tls.key",
                    certificate.display()
                )));
            }
            (None, Some(key)) => {
                return Err(ConfigError::Invalid(format!(
                    "the TLS key {} needs its certificate: pass --tls-cert or set http.tls.certificate",
                    key.display()
                )));
            }
        };
        let htpasswd = flags
            .htpasswd
            .clone()
            .or(file.htpasswd)
            .map(|path| HtpasswdConfig {
                path,
                realm: file.realm.unwrap_or_else(|| DEFAULT_REALM.to_owned()),
            });
        Ok(ServeConfig {
            addr,
            storage_root,
            tls,
            htpasswd,
            push: flags.enable_push || file.read_only == Some(false),
            proxy_section: file.proxy_section,
            source: flags.config.clone(),
        })
    }
}

impl fmt::Display for ServeConfig {
    /// A one-line summary for the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "storage {}, {}, push {}, auth {}",
            self.storage_root.display(),
            if self.tls.is_some() {
                "TLS"
            } else {
                "plain HTTP"
            },
            if self.push { "on" } else { "off" },
            if self.htpasswd.is_some() {
                "htpasswd"
            } else {
                "none"
            },
        )
    }
}

/// Go's `:5000` (every interface) as `0.0.0.0:5000`.
fn listen_address(addr: &str) -> String {
    if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_owned()
    }
}

/// Reads the keys this registry uses from the config file's text.
fn read_file_settings(text: &str, file: &Path) -> Result<FileSettings, ConfigError> {
    let at = |line: usize, column: usize, message: String| ConfigError::At {
        file: file.to_owned(),
        line,
        column,
        message,
    };
    let documents = kyaml::parse_documents(text, &Limits::default())
        .map_err(|error| at(error.line, error.column, error.message))?;
    let Some(document) = documents.into_iter().next() else {
        return Ok(FileSettings::default());
    };
    let root = document.root;
    if !matches!(root.kind, NodeKind::Mapping(_)) {
        return Err(at(
            root.line,
            root.column,
            "the registry config must be a mapping (http:, storage:, auth:, ...)".to_owned(),
        ));
    }
    let string = |keys: &[&str]| -> Result<Option<String>, ConfigError> {
        match root.get_path(keys) {
            None => Ok(None),
            Some(node) if matches!(node.kind, NodeKind::Null) => Ok(None),
            Some(node) => match &node.kind {
                NodeKind::String(text) => Ok(Some(text.clone())),
                _ => Err(at(
                    node.line,
                    node.column,
                    format!("{} must be a string", keys.join(".")),
                )),
            },
        }
    };
    let boolean = |keys: &[&str]| -> Result<Option<bool>, ConfigError> {
        match root.get_path(keys) {
            None => Ok(None),
            Some(node) => match node.kind {
                NodeKind::Bool(value) => Ok(Some(value)),
                NodeKind::Null => Ok(None),
                _ => Err(at(
                    node.line,
                    node.column,
                    format!("{} must be true or false", keys.join(".")),
                )),
            },
        }
    };
    let addr = match root.get_path(&["http", "addr"]) {
        Some(node) if matches!(node.kind, NodeKind::Int(_)) => {
            return Err(at(
                node.line,
                node.column,
                "http.addr must be HOST:PORT or :PORT, such as :5000".to_owned(),
            ));
        }
        _ => string(&["http", "addr"])?,
    };
    Ok(FileSettings {
        addr,
        storage_root: string(&["storage", "filesystem", "rootdirectory"])?.map(PathBuf::from),
        tls_certificate: string(&["http", "tls", "certificate"])?.map(PathBuf::from),
        tls_key: string(&["http", "tls", "key"])?.map(PathBuf::from),
        htpasswd: string(&["auth", "htpasswd", "path"])?.map(PathBuf::from),
        realm: string(&["auth", "htpasswd", "realm"])?,
        read_only: boolean(&["storage", "maintenance", "readonly", "enabled"])?,
        proxy_section: root.get("proxy").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(text: &str, flags: ServeFlags) -> Result<ServeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry_config.yml");
        std::fs::write(&path, text).unwrap();
        let error_path = path.clone();
        ServeConfig::resolve(&ServeFlags {
            config: Some(path),
            ..flags
        })
        .map_err(|error| match error {
            ConfigError::At {
                file,
                line,
                column,
                message,
            } => {
                assert_eq!(file, error_path);
                ConfigError::At {
                    file: PathBuf::from("registry_config.yml"),
                    line,
                    column,
                    message,
                }
            }
            other => other,
        })
    }

    #[test]
    fn reads_an_original_registry_config() {
        let text = "version: 0.1\n\
                    log:\n  fields:\n    service: registry\n\
                    storage:\n  cache:\n    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: /var/lib/registry\n\
                    http:\n  addr: :5000\n  headers:\n    X-Content-Type-Options: [nosniff]\n  tls:\n    certificate: /certs/sea.hub.crt\n    key: /certs/sea.hub.key\n\
                    auth:\n  htpasswd:\n    realm: Registry Realm\n    path: /etc/registry_htpasswd\n\
                    health:\n  storagedriver:\n    enabled: true\n    interval: 10s\n    threshold: 3\n\
                    proxy:\n  on: true\n  remoteregistries:\n  - url: https://registry-1.docker.io\n    username: u\n    password: p\n";
        let config = with_file(text, ServeFlags::default()).unwrap();
        assert_eq!(config.addr, "0.0.0.0:5000");
        assert_eq!(config.storage_root, PathBuf::from("/var/lib/registry"));
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                certificate: "/certs/sea.hub.crt".into(),
                key: "/certs/sea.hub.key".into()
            })
        );
        assert_eq!(
            config.htpasswd,
            Some(HtpasswdConfig {
                path: "/etc/registry_htpasswd".into(),
                realm: "Registry Realm".into()
            })
        );
        assert!(!config.push);
        let proxy = config.proxy_section.unwrap();
        assert_eq!(
            (proxy.line, proxy.column),
            (27, 3),
            "the first key of the section"
        );
        assert!(proxy.get("remoteregistries").is_some());
    }

    #[test]
    fn flags_override_the_file() {
        let text = "http:\n  addr: 127.0.0.1:6000\nstorage:\n  filesystem:\n    rootdirectory: /a\n  maintenance:\n    readonly:\n      enabled: false\n";
        let config = with_file(text, ServeFlags::default()).unwrap();
        assert_eq!(config.addr, "127.0.0.1:6000");
        assert!(config.push);
        let config = with_file(
            text,
            ServeFlags {
                addr: Some("127.0.0.1:0".into()),
                storage: Some("/b".into()),
                htpasswd: Some("/h".into()),
                ..ServeFlags::default()
            },
        )
        .unwrap();
        assert_eq!(config.addr, "127.0.0.1:0");
        assert_eq!(config.storage_root, PathBuf::from("/b"));
        assert_eq!(config.htpasswd.unwrap().realm, DEFAULT_REALM);
        assert!(config.proxy_section.is_none());
    }

    #[test]
    fn flags_alone() {
        let config = ServeConfig::resolve(&ServeFlags {
            storage: Some("/s".into()),
            enable_push: true,
            ..ServeFlags::default()
        })
        .unwrap();
        assert_eq!(config.addr, DEFAULT_ADDR);
        assert!(config.push && config.tls.is_none() && config.source.is_none());
        assert_eq!(
            config.to_string(),
            "storage /s, plain HTTP, push on, auth none"
        );
        let error = ServeConfig::resolve(&ServeFlags::default()).unwrap_err();
        assert!(error.to_string().contains("--storage"), "{error}");
        let error = ServeConfig::resolve(&ServeFlags {
            storage: Some("/s".into()),
            tls_cert: Some("/c".into()),
            ..ServeFlags::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains("needs its key"), "{error}");
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let error = with_file("http:\n  addr: 5000\n", ServeFlags::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "registry_config.yml:2:9: http.addr must be HOST:PORT or :PORT, such as :5000"
        );
        let error = with_file(
            "storage:\n  filesystem:\n    rootdirectory: [a]\n",
            ServeFlags::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "registry_config.yml:3:20: storage.filesystem.rootdirectory must be a string"
        );
        let error = with_file("http: [\n", ServeFlags::default()).unwrap_err();
        assert!(
            error.to_string().starts_with("registry_config.yml:"),
            "{error}"
        );
        let error = with_file("- a\n", ServeFlags::default()).unwrap_err();
        assert!(error.to_string().contains("must be a mapping"), "{error}");
        let error = ServeConfig::resolve(&ServeFlags {
            config: Some("/nonexistent/registry.yml".into()),
            ..ServeFlags::default()
        })
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot read the registry config /nonexistent/registry.yml"),
            "{error}"
        );
    }
}
