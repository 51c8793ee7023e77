//! One upstream registry over HTTP: its client (TLS settings, timeouts), authentication
//! (Basic, or Bearer tokens from the token service of a challenge), and the fetching of
//! manifests into memory and blobs into temporary files, verified against their digests.

use std::future::Future;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use image::Digest;
use image::digest::Hasher;
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Client, Response, StatusCode, Url};
use tokio::io::AsyncWriteExt;

use super::auth::{AuthState, Authorization, Challenge, parse_challenges, parse_token_answer};
use super::config::{Credentials, UpstreamConfig};
use super::error::{UpstreamError, error_chain};
use super::{FetchedBlob, FetchedManifest};

/// Distribution's limit on a manifest's size, the same for a fetched one as for a pushed one.
const MAX_MANIFEST_BYTES: u64 = crate::storage::MAX_MANIFEST_BYTES as u64;
/// Largest token-service answer accepted.
const MAX_TOKEN_ANSWER_BYTES: u64 = 1 << 20;
/// Largest error body read to explain a failure.
const MAX_ERROR_BODY_BYTES: u64 = 16 << 10;
/// Blob bytes gathered before one write to the temporary file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// Redirects followed (blob downloads are often redirected to a storage service).
const MAX_REDIRECTS: usize = 10;

/// One upstream registry.
pub(super) struct Upstream {
    /// What `ns=` selects.
    pub(super) name: String,
    base: Url,
    credentials: Option<Credentials>,
    http: Client,
    timeout: Duration,
    auth: Mutex<AuthState>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("url", &self.base.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// An HTTP client with the settings every upstream shares.
fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    Client::builder()
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .user_agent(concat!("sealer-registry/", env!("CARGO_PKG_VERSION")))
}

/// The client of dynamic upstreams (`on: true`): system roots, the default timeout.
pub(super) fn default_client(timeout: Duration) -> Result<Client, String> {
    client_builder(timeout).build().map_err(|e| error_chain(&e))
}

impl Upstream {
    /// The upstream a configuration entry describes.
    pub(super) fn from_config(config: &UpstreamConfig) -> Result<Upstream, UpstreamError> {
        let fail = |message: String| UpstreamError::Client {
            upstream: config.name.clone(),
            location: config.location.clone(),
            message,
        };
        let mut builder = client_builder(config.timeout);
        if let Some(pem) = &config.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                fail(format!(
                    "ca_file holds no usable certificate: {}",
                    error_chain(&e)
                ))
            })?;
            builder = builder.tls_certs_merge(certificates);
        }
        if config.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| fail(format!("cannot build its HTTP client: {}", error_chain(&e))))?;
        Ok(Upstream {
            name: config.name.clone(),
            base: config.url.clone(),
            credentials: config.credentials.clone(),
            http,
            timeout: config.timeout,
            auth: Mutex::new(AuthState::default()),
        })
    }

    /// An anonymous upstream at `base` sharing the client `http`.
    pub(super) fn dynamic(name: String, base: Url, http: Client, timeout: Duration) -> Upstream {
        Upstream {
            name,
            base,
            credentials: None,
            http,
            timeout,
            auth: Mutex::new(AuthState::default()),
        }
    }

    /// The base URL.
    pub(super) fn url(&self) -> &Url {
        &self.base
    }

    fn endpoint(&self, path: &str) -> Result<Url, UpstreamError> {
        self.base.join(path).map_err(|e| UpstreamError::BadRequest {
            message: format!("cannot make a URL of {}{path}: {e}", self.base),
        })
    }

    /// Fetches a manifest by tag or digest, with every manifest type in `Accept`, and
    /// checks its digest against `Docker-Content-Digest` and the digest asked for.
    pub(super) async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, UpstreamError> {
        let url = self.endpoint(&format!("v2/{repository}/manifests/{reference}"))?;
        let accept = image::manifest::MANIFEST_MEDIA_TYPES.join(", ");
        let mut response = self.get(&url, Some(&accept), repository).await?;
        let what = || format!("manifest {repository}:{reference}");
        self.expect_ok(&mut response, &url, what).await?;
        if let Some(length) = response.content_length()
            && length > MAX_MANIFEST_BYTES
        {
            return Err(self.too_large(&url, length));
        }
        let declared = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned());
        let announced = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<Digest>().ok());
        let bytes = self
            .read_body(&mut response, &url, MAX_MANIFEST_BYTES)
            .await?
            .map_err(|length| self.too_large(&url, length))?;
        let digest = Digest::of(&bytes);
        let asked = reference.parse::<Digest>().ok();
        for expected in [asked, announced].into_iter().flatten() {
            if expected != digest {
                return Err(UpstreamError::DigestMismatch {
                    upstream: self.name.clone(),
                    what: "manifest",
                    url: url.to_string(),
                    expected,
                    actual: digest,
                });
            }
        }
        let media_type = image::manifest::sniff_media_type(declared.as_deref(), &bytes)
            .filter(|t| image::manifest::MANIFEST_MEDIA_TYPES.contains(&t.as_str()))
            .ok_or_else(|| UpstreamError::BadResponse {
                upstream: self.name.clone(),
                url: url.to_string(),
                message: format!(
                    "the manifest is of type `{}`, not an OCI or Docker schema 2 manifest or index (schema 1 is not supported)",
                    declared.as_deref().unwrap_or("unknown")
                ),
            })?;
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Streams a blob into a new temporary file under `temp_dir`, hashing it on the way;
    /// a digest or length mismatch removes the file.
    pub(super) async fn blob(
        &self,
        repository: &str,
        digest: &Digest,
        temp_dir: &Path,
    ) -> Result<FetchedBlob, UpstreamError> {
        let url = self.endpoint(&format!("v2/{repository}/blobs/{digest}"))?;
        let mut response = self.get(&url, None, repository).await?;
        self.expect_ok(&mut response, &url, || {
            format!("blob {digest} in {repository}")
        })
        .await?;
        let expected_length = response.content_length();
        let storage_error =
            |action: &'static str, path: &Path, e: &std::io::Error| UpstreamError::Storage {
                upstream: self.name.clone(),
                action,
                path: path.display().to_string(),
                message: e.to_string(),
            };
        let temp = tempfile::Builder::new()
            .prefix(".upstream-")
            .tempfile_in(temp_dir)
            .map_err(|e| storage_error("creating a temporary file in", temp_dir, &e))?;
        let handle = temp
            .as_file()
            .try_clone()
            .map_err(|e| storage_error("opening", temp.path(), &e))?;
        let mut file = tokio::fs::File::from_std(handle);
        let mut hasher = Hasher::new();
        let mut buffer = Vec::with_capacity(WRITE_BUFFER_BYTES);
        while let Some(chunk) = self.progress(&url, response.chunk()).await? {
            hasher.update(&chunk);
            buffer.extend_from_slice(&chunk);
            if buffer.len() >= WRITE_BUFFER_BYTES {
                file.write_all(&buffer)
                    .await
                    .map_err(|e| storage_error("writing", temp.path(), &e))?;
                buffer.clear();
            }
        }
        file.write_all(&buffer)
            .await
            .map_err(|e| storage_error("writing", temp.path(), &e))?;
        file.flush()
            .await
            .map_err(|e| storage_error("writing", temp.path(), &e))?;
        file.sync_all()
            .await
            .map_err(|e| storage_error("syncing", temp.path(), &e))?;
        drop(file);
        let size = hasher.len();
        let actual = hasher.finish();
        if &actual != digest {
            return Err(UpstreamError::DigestMismatch {
                upstream: self.name.clone(),
                what: "blob",
                url: url.to_string(),
                expected: digest.clone(),
                actual,
            });
        }
        if let Some(expected) = expected_length
            && expected != size
        {
            return Err(self.bad_response(
                &url,
                format!("Content-Length said {expected} bytes but {size} arrived"),
            ));
        }
        Ok(FetchedBlob {
            file: temp,
            digest: actual,
            size,
        })
    }

    /// `GET url`, authenticating as the upstream asks: on a 401, Basic credentials or a
    /// Bearer token for `repository:<repository>:pull` (or the challenge's scope), then
    /// once more; a second 401 is [`UpstreamError::Unauthorized`].
    async fn get(
        &self,
        url: &Url,
        accept: Option<&str>,
        repository: &str,
    ) -> Result<Response, UpstreamError> {
        let scope = format!("repository:{repository}:pull");
        let first_authorization = self.auth_state().authorization(&scope, Instant::now());
        let first = self.send(url, accept, &first_authorization).await?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let challenge = parse_challenges(
            first
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let retry = match challenge {
            Some(Challenge::Basic) => {
                if self.credentials.is_none() {
                    return Err(self.unauthorized(
                        url,
                        "it asks for a user name and password, and none are configured",
                    ));
                }
                if first_authorization == Authorization::Basic {
                    return Err(self.unauthorized(url, "it refused the user name and password"));
                }
                self.auth_state().remember_basic();
                Authorization::Basic
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked_scope,
            }) => {
                let scope = asked_scope.unwrap_or(scope);
                let token = self.token(&realm, service.as_deref(), &scope).await?;
                Authorization::Bearer(token)
            }
            None => {
                return Err(
                    self.unauthorized(url, "it answered 401 without a Basic or Bearer challenge")
                );
            }
        };
        let second = self.send(url, accept, &retry).await?;
        if second.status() == StatusCode::UNAUTHORIZED {
            let detail = match retry {
                Authorization::Basic => "it refused the user name and password",
                _ => "it refused the token its token service gave",
            };
            return Err(self.unauthorized(url, detail));
        }
        Ok(second)
    }

    /// A token for `scope` from the token service at `realm`, with the credentials when
    /// configured; kept for its lifetime.
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, UpstreamError> {
        let mut url = Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                self.bad_response(
                    &self.base,
                    format!(
                        "its token challenge names the realm `{realm}`, which is not an http(s) URL"
                    ),
                )
            })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
            if let Some(credentials) = &self.credentials {
                query.append_pair("account", &credentials.username);
            }
        }
        let mut request = self.http.get(url.clone());
        if let Some(credentials) = &self.credentials {
            request = request.basic_auth(&credentials.username, Some(credentials.password()));
        }
        let mut response = self.progress(&url, request.send()).await?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            let detail = if self.credentials.is_some() {
                format!("its token service answered {status} to the user name and password")
            } else {
                format!(
                    "its token service answered {status} to an anonymous request, and no credentials are configured"
                )
            };
            return Err(self.unauthorized(&url, &detail));
        }
        if !status.is_success() {
            return Err(self.bad_response(&url, format!("the token service answered {status}")));
        }
        let body = self
            .read_body(&mut response, &url, MAX_TOKEN_ANSWER_BYTES)
            .await?
            .map_err(|length| {
                self.bad_response(
                    &url,
                    format!("the token answer is too large ({length} bytes)"),
                )
            })?;
        let (token, lifetime) =
            parse_token_answer(&body).map_err(|message| self.bad_response(&url, message))?;
        self.auth_state()
            .remember_token(scope, token.clone(), lifetime, Instant::now());
        Ok(token)
    }

    async fn send(
        &self,
        url: &Url,
        accept: Option<&str>,
        authorization: &Authorization,
    ) -> Result<Response, UpstreamError> {
        let mut request = self.http.get(url.clone());
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        request = match (authorization, &self.credentials) {
            (Authorization::Bearer(token), _) => request.bearer_auth(token),
            (Authorization::Basic, Some(credentials)) => {
                request.basic_auth(&credentials.username, Some(credentials.password()))
            }
            (Authorization::Basic | Authorization::Anonymous, _) => request,
        };
        self.progress(url, request.send()).await
    }

    /// Succeeds for a 2xx answer; a 404 is [`UpstreamError::NotFound`], a 403
    /// [`UpstreamError::Unauthorized`], anything else [`UpstreamError::BadResponse`] with the
    /// upstream's error message.
    async fn expect_ok(
        &self,
        response: &mut Response,
        url: &Url,
        what: impl FnOnce() -> String,
    ) -> Result<(), UpstreamError> {
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::NOT_FOUND {
            return Err(UpstreamError::NotFound {
                upstream: self.name.clone(),
                what: what(),
                url: url.to_string(),
            });
        }
        let explanation = match self.read_body(response, url, MAX_ERROR_BODY_BYTES).await {
            Ok(Ok(body)) => registry_error_message(&body),
            _ => None,
        };
        let said = explanation.map(|m| format!(" ({m})")).unwrap_or_default();
        if status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(url, &format!("it answered 403 Forbidden{said}")));
        }
        Err(self.bad_response(url, format!("it answered {status}{said}")))
    }

    /// The body, or `Err(length)` once it passes `limit` bytes.
    async fn read_body(
        &self,
        response: &mut Response,
        url: &Url,
        limit: u64,
    ) -> Result<Result<Vec<u8>, u64>, UpstreamError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.progress(url, response.chunk()).await? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > limit {
                return Ok(Err(body.len() as u64));
            }
        }
        Ok(Ok(body))
    }

    /// Awaits one step of a request, failing when it makes no progress for the timeout.
    async fn progress<T>(
        &self,
        url: &Url,
        step: impl Future<Output = Result<T, reqwest::Error>>,
    ) -> Result<T, UpstreamError> {
        match tokio::time::timeout(self.timeout, step).await {
            Err(_elapsed) => Err(self.timed_out(url)),
            Ok(Err(error)) if error.is_timeout() => Err(self.timed_out(url)),
            Ok(Err(error)) => Err(UpstreamError::Unreachable {
                upstream: self.name.clone(),
                url: url.to_string(),
                message: error_chain(&error.without_url()),
            }),
            Ok(Ok(value)) => Ok(value),
        }
    }

    fn auth_state(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.auth.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn timed_out(&self, url: &Url) -> UpstreamError {
        UpstreamError::Timeout {
            upstream: self.name.clone(),
            url: url.to_string(),
            timeout: self.timeout,
        }
    }

    fn unauthorized(&self, url: &Url, detail: &str) -> UpstreamError {
        UpstreamError::Unauthorized {
            upstream: self.name.clone(),
            url: url.to_string(),
            detail: detail.to_owned(),
        }
    }

    fn bad_response(&self, url: &Url, message: String) -> UpstreamError {
        UpstreamError::BadResponse {
            upstream: self.name.clone(),
            url: url.to_string(),
            message,
        }
    }

    fn too_large(&self, url: &Url, length: u64) -> UpstreamError {
        self.bad_response(
            url,
            format!("the manifest is larger than {MAX_MANIFEST_BYTES} bytes ({length} bytes or more); refused"),
        )
    }
}

/// The first message of a distribution error body (`{"errors":[{"code":…,"message":…}]}`).
fn registry_error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = value.get("errors")?.get(0)?;
    let code = first.get("code").and_then(|c| c.as_str()).unwrap_or("");
    let message = first.get("message").and_then(|m| m.as_str()).unwrap_or("");
    let text = match (code.is_empty(), message.is_empty()) {
        (true, true) => return None,
        (false, true) => code.to_owned(),
        (true, false) => message.to_owned(),
        (false, false) => format!("{code}: {message}"),
    };
    Some(text.chars().take(300).collect())
}
