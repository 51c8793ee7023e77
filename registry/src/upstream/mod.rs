//! Upstream registries of the pull-through cache: which upstream serves a request, and
//! fetching manifests and blobs from it, verified against their digests, each concurrent
//! request for the same content sharing one fetch.
//!
//! # Configuration
//!
//! The `proxy` section of the registry configuration file:
//!
//! ```yaml
//! proxy:
//!   upstreams:
//!     - name: docker.io                  # what `ns=` selects, and the default prefix
//!       url: https://registry-1.docker.io   # optional: https://<name> by default
//!       prefixes: [docker.io/, library/] # optional: more repository prefixes for it
//!     - name: registry.example.com:5000
//!       url: http://10.0.0.5:5000
//!       username: robot                  # optional, with password_file (preferred: no
//!       password_file: robot.password    #   secret in this file) or password
//!       ca_file: /etc/registry/ca.pem    # optional: trusted besides the system's roots
//!       insecure_skip_verify: false      # optional: true accepts any certificate
//!       timeout: 30s                     # optional: time without progress (default 30s)
//!   remoteregistries:                    # the original sealer registry's list: also read
//!     - url: https://quay.io             # its name is the URL's host[:port]
//!       username: robot
//!       password: secret
//!   on: true                             # the original's switch: fetch from https://<ns>
//!                                        # when `ns` names no configured upstream
//! ```
//!
//! - **Names** are compared in lower case, and Docker Hub's names `index.docker.io` and
//!   `registry-1.docker.io` are written `docker.io`, as containerd's `ns=docker.io` says.
//!   An upstream without `url` is at `https://<name>`, except `docker.io`, which is at
//!   `https://registry-1.docker.io` (where Docker Hub's API is). Names must be unique.
//! - **URLs** are `http://` or `https://` with a host and optional port, and nothing else
//!   (credentials go in `username` and `password_file`).
//! - **Files** (`password_file`, `ca_file`) are read when the configuration is loaded; a
//!   relative path is relative to the configuration file's folder. A password file's
//!   trailing line break is not part of the password.
//! - **Durations** are written as Go writes them: `30s`, `2m`, `1m30s`, `500ms`.
//! - A **prefix** belongs to one upstream only. Each upstream also has the default prefix
//!   `<name>/` (and `<host>_<port>/` for a name with a port, the form the build's storage
//!   uses), which an explicit prefix of another upstream overrides.
//!
//! Every mistake is reported with the file, line and column, and what to write instead.
//!
//! # Which upstream serves a request
//!
//! [`Upstreams::select`] takes the request's repository and containerd's `ns` query
//! parameter:
//!
//! 1. `ns` naming a configured upstream selects it, and the upstream is asked for the
//!    request's repository unchanged: containerd with a mirror sends
//!    `/v2/library/nginx/manifests/1.25?ns=docker.io`, and Docker Hub's repository is
//!    `library/nginx`.
//! 2. Otherwise the longest configured prefix of the repository selects its upstream. A
//!    default prefix (`<name>/`) is taken off the repository asked upstream
//!    (`quay.io/coreos/etcd` asks quay.io for `coreos/etcd`); so is an explicit prefix's
//!    first component when it is a registry domain (it holds a `.` or `:`, or is
//!    `localhost`: Docker's rule), while any other explicit prefix is a namespace on the
//!    upstream and stays (`library/nginx` asks for `library/nginx`).
//! 3. Otherwise, with `on: true`, an `ns` that is a host name selects a dynamic upstream at
//!    `https://<ns>` (`https://registry-1.docker.io` for `docker.io`), without credentials.
//! 4. Otherwise no upstream: the request is served from storage alone.
//!
//! # Fetching
//!
//! Manifests are asked for with every OCI and Docker schema 2 manifest and index type in
//! `Accept`, are at most 4 MiB (distribution's limit), and their digest is computed from the
//! bytes and checked against `Docker-Content-Digest` and the digest asked for. Blobs stream
//! into a temporary file in the caller's folder, hashed on the way; a mismatch removes the
//! file. A request fails with [`UpstreamError::Timeout`] when nothing arrives for the
//! upstream's `timeout`. Authentication follows the upstream's 401 challenge: Basic
//! credentials, or a Bearer token from the challenge's realm (asked with the credentials when
//! configured), cached per scope until it expires. Errors never hold a password or token.

mod auth;
mod client;
mod config;
mod error;
mod flight;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use image::Digest;
use reqwest::Url;

pub use config::{ConfigError, Credentials, DEFAULT_TIMEOUT, ProxyConfig, UpstreamConfig};
pub use error::UpstreamError;

use client::Upstream;
use config::{canonical_name, default_url, is_host};
use flight::{Flights, Role};

/// Most dynamic upstreams (`on: true`) kept at once; past that the oldest are forgotten
/// (their tokens with them), so a client sending many `ns` values cannot grow the map.
const MAX_DYNAMIC_UPSTREAMS: usize = 64;

/// The upstreams of the configuration, ready to fetch from. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Upstreams {
    inner: Arc<Inner>,
}

struct Inner {
    by_name: HashMap<String, Arc<Upstream>>,
    /// Prefix routes, longest prefix first.
    routes: Vec<Route>,
    dynamic: Option<Dynamic>,
    blobs: Arc<Flights<(String, Digest), StoredBlob>>,
    manifests: Arc<Flights<(String, String, String), FetchedManifest>>,
}

struct Route {
    prefix: String,
    /// How many leading bytes of the repository are not sent upstream.
    strip: usize,
    upstream: Arc<Upstream>,
}

struct Dynamic {
    http: reqwest::Client,
    made: Mutex<Vec<Arc<Upstream>>>,
}

/// The upstream chosen for a request, and the repository to ask it for.
#[derive(Clone)]
pub struct Selected {
    upstream: Arc<Upstream>,
    repository: String,
    blobs: Arc<Flights<(String, Digest), StoredBlob>>,
    manifests: Arc<Flights<(String, String, String), FetchedManifest>>,
}

/// A manifest as the upstream sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The exact bytes (never re-serialized: the digest is of these).
    pub bytes: Vec<u8>,
    /// Its media type: OCI or Docker schema 2, manifest or index.
    pub media_type: String,
    /// The sha256 of the bytes.
    pub digest: Digest,
}

/// A verified blob in a temporary file, for the caller to move into storage (rename it with
/// [`tempfile::NamedTempFile::persist`]); dropping it removes the file.
#[derive(Debug)]
pub struct FetchedBlob {
    /// The temporary file in the folder the caller gave.
    pub file: tempfile::NamedTempFile,
    /// Its digest (the one asked for).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A blob fetched once and committed to storage by [`Selected::blob_once`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// True for the one request whose fetch and commit ran; false for the requests that
    /// waited for it (count upstream bytes only once).
    pub fetched_here: bool,
}

impl Upstreams {
    /// The upstreams of a configuration; fails when an upstream's HTTP client cannot be made
    /// (its TLS settings).
    pub fn new(config: &ProxyConfig) -> Result<Upstreams, UpstreamError> {
        let mut by_name = HashMap::new();
        let mut routes: HashMap<String, Route> = HashMap::new();
        let mut explicit = Vec::new();
        for entry in &config.upstreams {
            let upstream = Arc::new(Upstream::from_config(entry)?);
            for prefix in default_prefixes(&entry.name) {
                let strip = prefix.len();
                routes.insert(
                    prefix.clone(),
                    Route {
                        prefix,
                        strip,
                        upstream: Arc::clone(&upstream),
                    },
                );
            }
            for prefix in &entry.prefixes {
                explicit.push(Route {
                    prefix: prefix.clone(),
                    strip: domain_length(prefix),
                    upstream: Arc::clone(&upstream),
                });
            }
            by_name.insert(entry.name.clone(), upstream);
        }
        for route in explicit {
            routes.insert(route.prefix.clone(), route);
        }
        let mut routes: Vec<Route> = routes.into_values().collect();
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then(a.prefix.cmp(&b.prefix))
        });
        let dynamic = if config.dynamic {
            let http = client::default_client(config::DEFAULT_TIMEOUT).map_err(|message| {
                UpstreamError::Client {
                    upstream: "dynamic upstreams (`on: true`)".into(),
                    location: "proxy.on".into(),
                    message,
                }
            })?;
            Some(Dynamic {
                http,
                made: Mutex::new(Vec::new()),
            })
        } else {
            None
        };
        Ok(Upstreams {
            inner: Arc::new(Inner {
                by_name,
                routes,
                dynamic,
                blobs: Arc::default(),
                manifests: Arc::default(),
            }),
        })
    }

    /// True when nothing can be fetched: no upstream and no dynamic ones.
    pub fn is_empty(&self) -> bool {
        self.inner.by_name.is_empty() && self.inner.dynamic.is_none()
    }

    /// The configured upstreams' names and URLs, sorted by name (for the start-up log).
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut list: Vec<(String, String)> = self
            .inner
            .by_name
            .iter()
            .map(|(name, upstream)| (name.clone(), upstream.url().to_string()))
            .collect();
        list.sort();
        list
    }

    /// The upstream for a request for `repository`, with `ns` from its query string if any
    /// (see the [module documentation](self) for the rules); `None` when no upstream serves
    /// it or the repository is not a valid repository name. The caller drops an `ns` that
    /// names this registry itself: with `on: true` it would be fetched from itself.
    pub fn select(&self, repository: &str, ns: Option<&str>) -> Option<Selected> {
        if !is_repository_name(repository) {
            return None;
        }
        let ns = ns
            .map(str::trim)
            .filter(|ns| !ns.is_empty())
            .map(canonical_name);
        if let Some(upstream) = ns.as_deref().and_then(|ns| self.inner.by_name.get(ns)) {
            return Some(self.selected(upstream, repository));
        }
        if let Some(route) = self
            .inner
            .routes
            .iter()
            .find(|route| repository.starts_with(&route.prefix))
        {
            return Some(self.selected(&route.upstream, &repository[route.strip..]));
        }
        let ns = ns?;
        let dynamic = self.inner.dynamic.as_ref()?;
        if !is_host(&ns) {
            return None;
        }
        let url = default_url(&ns)?;
        let mut made = dynamic.made.lock().unwrap_or_else(PoisonError::into_inner);
        let upstream = if let Some(upstream) = made.iter().find(|u| u.name == ns) {
            Arc::clone(upstream)
        } else {
            if made.len() >= MAX_DYNAMIC_UPSTREAMS {
                made.remove(0);
            }
            let upstream = Arc::new(Upstream::dynamic(
                ns,
                url,
                dynamic.http.clone(),
                config::DEFAULT_TIMEOUT,
            ));
            made.push(Arc::clone(&upstream));
            upstream
        };
        drop(made);
        Some(self.selected(&upstream, repository))
    }

    fn selected(&self, upstream: &Arc<Upstream>, repository: &str) -> Selected {
        Selected {
            upstream: Arc::clone(upstream),
            repository: repository.to_owned(),
            blobs: Arc::clone(&self.inner.blobs),
            manifests: Arc::clone(&self.inner.manifests),
        }
    }
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams")
            .field("upstreams", &self.describe())
            .field("dynamic", &self.inner.dynamic.is_some())
            .finish()
    }
}

impl std::fmt::Debug for Selected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selected")
            .field("upstream", &self.upstream.name)
            .field("repository", &self.repository)
            .finish_non_exhaustive()
    }
}

impl Selected {
    /// The upstream's name (what `ns=` selects).
    pub fn upstream_name(&self) -> &str {
        &self.upstream.name
    }

    /// The upstream's base URL.
    pub fn upstream_url(&self) -> &Url {
        self.upstream.url()
    }

    /// The repository asked upstream (a default prefix taken off).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Fetches a manifest by tag or digest: its bytes, media type and digest, verified
    /// against the digest asked for and the one the upstream announces. Concurrent requests
    /// for the same tag of the same repository, or the same digest from the same upstream
    /// (whatever the repository: a digest names the same content), share one fetch.
    pub async fn manifest(&self, reference: &str) -> Result<FetchedManifest, UpstreamError> {
        let by_digest = reference.parse::<Digest>().ok();
        if by_digest.is_none() && !crate::storage::is_valid_tag(reference) {
            return Err(UpstreamError::BadRequest {
                message: format!(
                    "`{reference}` is neither a tag (letters, digits, `_`, `.`, `-`, up to 128) nor a sha256 digest"
                ),
            });
        }
        // A digest names the same content in every repository of the upstream; a tag does not.
        let repository_key = if by_digest.is_some() {
            String::new()
        } else {
            self.repository.clone()
        };
        let key = (
            self.upstream.name.clone(),
            repository_key,
            reference.to_owned(),
        );
        let upstream = Arc::clone(&self.upstream);
        let repository = self.repository.clone();
        let reference = reference.to_owned();
        let (result, _role) = self
            .manifests
            .run(key, async move {
                upstream.manifest(&repository, &reference).await
            })
            .await;
        result
    }

    /// Fetches a blob into a new temporary file under `temp_dir` (on the storage's
    /// filesystem, so the caller can rename it into place), verified against `digest`; a
    /// mismatch is an error and leaves no file. Not shared with concurrent requests: see
    /// [`Selected::blob_once`].
    pub async fn blob(
        &self,
        digest: &Digest,
        temp_dir: &Path,
    ) -> Result<FetchedBlob, UpstreamError> {
        self.upstream.blob(&self.repository, digest, temp_dir).await
    }

    /// Fetches a blob once for all concurrent requests: the first request for this digest
    /// from this upstream fetches it (as [`Selected::blob`]) and runs its `commit` with the
    /// verified file (typically: rename it into storage); the others wait, their `commit`
    /// unused, and get the same result, so once this returns `Ok` every caller can serve the
    /// blob from storage. The fetch and commit run to the end even if the first caller goes
    /// away. Commit runs on a blocking thread; its error fails every waiting request. Requests
    /// for the digest through other repositories of the upstream share the fetch too.
    pub async fn blob_once<C>(
        &self,
        digest: &Digest,
        temp_dir: &Path,
        commit: C,
    ) -> Result<StoredBlob, UpstreamError>
    where
        C: FnOnce(FetchedBlob) -> io::Result<()> + Send + 'static,
    {
        let key = (self.upstream.name.clone(), digest.clone());
        let upstream = Arc::clone(&self.upstream);
        let repository = self.repository.clone();
        let wanted = digest.clone();
        let temp_dir: PathBuf = temp_dir.to_owned();
        let (result, role) = self
            .blobs
            .run(key, async move {
                let fetched = upstream.blob(&repository, &wanted, &temp_dir).await?;
                let size = fetched.size;
                let storing_error = |message: String| UpstreamError::Storage {
                    upstream: upstream.name.clone(),
                    action: "storing",
                    path: format!("blob {wanted} fetched into {}", temp_dir.display()),
                    message,
                };
                tokio::task::spawn_blocking(move || commit(fetched))
                    .await
                    .map_err(|e| storing_error(format!("the commit failed: {e}")))?
                    .map_err(|e| storing_error(e.to_string()))?;
                Ok(StoredBlob {
                    digest: wanted,
                    size,
                    fetched_here: true,
                })
            })
            .await;
        result.map(|stored| StoredBlob {
            fetched_here: role == Role::Leader,
            ..stored
        })
    }
}

/// `<name>/`, and `<host>_<port>/` for a name with a port.
fn default_prefixes(name: &str) -> Vec<String> {
    let mut prefixes = vec![format!("{name}/")];
    if name.contains(':') {
        prefixes.push(format!("{}/", name.replace(':', "_")));
    }
    prefixes
}

/// The length of a prefix's first component and its `/` when that component is a registry
/// domain (it holds a `.` or `:`, or is `localhost`), else 0.
fn domain_length(prefix: &str) -> usize {
    match prefix.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.len() + 1,
        _ => 0,
    }
}

/// A repository name as distribution accepts it: `/`-separated components of lower-case
/// letters and digits, joined by single `.`, `_`, `__` or runs of `-`; at most 255 bytes.
fn is_repository_name(name: &str) -> bool {
    name.len() <= 255
        && !name.is_empty()
        && name.split('/').all(|component| {
            let bytes = component.as_bytes();
            let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
                return false;
            }
            let mut separator = String::new();
            for b in bytes {
                if alnum(b) {
                    let allowed = separator.is_empty()
                        || matches!(separator.as_str(), "." | "_" | "__")
                        || separator.bytes().all(|c| c == b'-');
                    if !allowed {
                        return false;
                    }
                    separator.clear();
                } else if matches!(b, b'.' | b'_' | b'-') {
                    separator.push(char::from(*b));
                } else {
                    return false;
                }
            }
            true
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstreams(yaml: &str) -> Upstreams {
        let documents = kyaml::parse_documents(yaml, &kyaml::Limits::default()).unwrap();
        let proxy = documents[0].root.get("proxy").unwrap();
        let config = ProxyConfig::from_node(proxy, Path::new("/etc/registry/config.yml")).unwrap();
        Upstreams::new(&config).unwrap()
    }

    /// (upstream name, repository asked upstream) of a selection.
    fn chosen(
        upstreams: &Upstreams,
        repository: &str,
        ns: Option<&str>,
    ) -> Option<(String, String)> {
        upstreams
            .select(repository, ns)
            .map(|s| (s.upstream_name().to_owned(), s.repository().to_owned()))
    }

    #[allow(clippy::unnecessary_wraps)] // compared with `chosen`'s answer
    fn pair(name: &str, repository: &str) -> Option<(String, String)> {
        Some((name.to_owned(), repository.to_owned()))
    }

    const CONFIG: &str = "proxy:
  upstreams:
    - name: docker.io
      prefixes: [library/, mirror.example/hub/]
    - name: quay.io
    - name: registry.example.com:5000
      url: http://127.0.0.1:5000
    - name: internal
      url: https://10.0.0.1
      prefixes: [team/]
";

    #[test]
    fn ns_selects_by_name_and_keeps_the_repository() {
        let upstreams = upstreams(CONFIG);
        assert_eq!(
            chosen(&upstreams, "library/nginx", Some("docker.io")),
            pair("docker.io", "library/nginx")
        );
        assert_eq!(
            chosen(&upstreams, "library/nginx", Some("index.docker.io")),
            pair("docker.io", "library/nginx")
        );
        assert_eq!(
            chosen(&upstreams, "coreos/etcd", Some("Quay.IO")),
            pair("quay.io", "coreos/etcd")
        );
        assert_eq!(
            chosen(&upstreams, "app", Some("registry.example.com:5000")),
            pair("registry.example.com:5000", "app")
        );
        let hub = upstreams
            .select("library/nginx", Some("docker.io"))
            .unwrap();
        assert_eq!(hub.upstream_url().as_str(), "https://registry-1.docker.io/");
    }

    #[test]
    fn prefixes_select_without_ns() {
        let upstreams = upstreams(CONFIG);
        // Default prefixes: the name is taken off.
        assert_eq!(
            chosen(&upstreams, "quay.io/coreos/etcd", None),
            pair("quay.io", "coreos/etcd")
        );
        assert_eq!(
            chosen(&upstreams, "docker.io/library/nginx", None),
            pair("docker.io", "library/nginx")
        );
        assert_eq!(
            chosen(&upstreams, "registry.example.com_5000/app", None),
            pair("registry.example.com:5000", "app")
        );
        assert_eq!(
            chosen(&upstreams, "internal/tools/x", None),
            pair("internal", "tools/x")
        );
        // Explicit prefixes: a namespace stays, a domain is taken off.
        assert_eq!(
            chosen(&upstreams, "library/nginx", None),
            pair("docker.io", "library/nginx")
        );
        assert_eq!(
            chosen(&upstreams, "team/app", None),
            pair("internal", "team/app")
        );
        assert_eq!(
            chosen(&upstreams, "mirror.example/hub/busybox", None),
            pair("docker.io", "hub/busybox")
        );
        // Only whole components match, and an unknown ns falls back to the prefixes.
        assert_eq!(chosen(&upstreams, "libraryx/nginx", None), None);
        assert_eq!(
            chosen(&upstreams, "team/app", Some("sea.hub:5000")),
            pair("internal", "team/app")
        );
        assert_eq!(chosen(&upstreams, "other/app", Some("ghcr.io")), None);
    }

    #[test]
    fn an_explicit_prefix_beats_a_default_one_and_longer_wins() {
        let upstreams = upstreams(
            "proxy:
  upstreams:
    - name: quay.io
    - name: quay-mirror
      url: https://mirror.example
      prefixes: [quay.io/, quay.io/special/]
    - name: special
      url: https://special.example
      prefixes: [quay.io/special/deep/]
",
        );
        assert_eq!(
            chosen(&upstreams, "quay.io/a/b", None),
            pair("quay-mirror", "a/b")
        );
        assert_eq!(
            chosen(&upstreams, "quay.io/special/x", None),
            pair("quay-mirror", "special/x")
        );
        assert_eq!(
            chosen(&upstreams, "quay.io/special/deep/x", None),
            pair("special", "special/deep/x")
        );
    }

    #[test]
    fn dynamic_upstreams_only_when_on() {
        let off = upstreams(CONFIG);
        assert_eq!(chosen(&off, "coreos/etcd", Some("ghcr.io")), None);
        let on = upstreams("proxy:\n  on: true\n");
        let selected = on.select("coreos/etcd", Some("GHCR.io")).unwrap();
        assert_eq!(selected.upstream_name(), "ghcr.io");
        assert_eq!(selected.upstream_url().as_str(), "https://ghcr.io/");
        assert_eq!(
            on.select("library/nginx", Some("docker.io"))
                .unwrap()
                .upstream_url()
                .as_str(),
            "https://registry-1.docker.io/"
        );
        assert!(on.select("x", Some("bad host/x")).is_none());
        assert!(on.select("x", Some("user@evil.example")).is_none());
        assert!(on.select("x", None).is_none());
        assert!(!on.is_empty());
        for n in 0..(MAX_DYNAMIC_UPSTREAMS + 5) {
            assert!(on.select("x", Some(&format!("r{n}.example"))).is_some());
        }
        let made = on
            .inner
            .dynamic
            .as_ref()
            .unwrap()
            .made
            .lock()
            .unwrap()
            .len();
        assert_eq!(made, MAX_DYNAMIC_UPSTREAMS);
    }

    #[test]
    fn invalid_repository_names_select_nothing() {
        let upstreams = upstreams(CONFIG);
        for name in [
            "",
            "../etc",
            "library/../x",
            "Library/nginx",
            "a//b",
            "a/",
            "-a",
            "a..b",
            "a/b?c",
        ] {
            assert!(
                upstreams.select(name, Some("docker.io")).is_none(),
                "{name}"
            );
        }
        for name in [
            "a",
            "a/b/c",
            "a_b",
            "a__b",
            "a---b",
            "a.b",
            "localhost_5000/x",
        ] {
            assert!(is_repository_name(name), "{name}");
        }
    }
}
