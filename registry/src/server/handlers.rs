//! The handlers of the v2 API: what each route answers, with distribution 2.8's headers,
//! status codes and errors.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use image::Digest;
use image::manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Index, OCI_INDEX, OCI_MANIFEST};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use super::auth::Htpasswd;
use super::body::{self, LoggedBody, RequestSummary, ResponseBody};
use super::errors::{ApiError, ErrorCode};
use super::metrics::Metrics;
use super::range::{RangeRequest, parse_range};
use super::routes::{Route, route};
use crate::storage::{
    BlobInfo, ManifestReference, RepositoryName, Storage, StorageError, StoredManifest,
    cache_repository_names,
};
use crate::upstream::{Selected, UpstreamError, Upstreams};

/// The header distribution puts on every response.
const API_VERSION_HEADER: &str = "docker-distribution-api-version";
/// Distribution's JSON content type.
const JSON: &str = "application/json; charset=utf-8";
/// Catalog entries returned when the client does not say how many (distribution's default
/// `catalog.maxentries`).
const DEFAULT_CATALOG_ENTRIES: usize = 1000;
/// The platform distribution picks from a manifest list for a client that accepts none.
const DEFAULT_PLATFORM: (&str, &str) = ("linux", "amd64");

/// Everything a request needs; shared by all connections.
#[derive(Debug, Clone)]
pub struct App {
    /// The storage served.
    pub storage: Storage,
    /// Client authentication, when on.
    pub htpasswd: Option<Htpasswd>,
    /// True when uploads and manifest pushes are accepted.
    pub push: bool,
    /// The counters.
    pub metrics: Metrics,
    /// True to write an access log line per request to standard error.
    pub access_log: bool,
    /// True when served over TLS (for absolute `Location` URLs).
    pub tls: bool,
    /// The pull-through cache's upstreams.
    pub upstreams: Option<Upstreams>,
}

/// A response being built.
type Answer = Response<ResponseBody>;

/// Either a response or an API error.
type Handled = Result<Answer, ApiError>;

impl App {
    /// Answers one request, logging it and counting it.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<LoggedBody> {
        let started = Instant::now();
        let method = request.method().clone();
        let target = request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path().to_owned(), ToString::to_string);
        let mut response = self
            .dispatch(request)
            .await
            .unwrap_or_else(|error| error_response(&error));
        response
            .headers_mut()
            .insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
        let status = response.status().as_u16();
        self.metrics.record_request(status);
        let summary = RequestSummary {
            client,
            method: method.to_string(),
            target,
            status,
            started,
        };
        let metrics = self.metrics.clone();
        let access_log = self.access_log;
        response.map(|inner| LoggedBody::new(inner, summary, metrics, access_log))
    }

    async fn dispatch(&self, request: Request<Incoming>) -> Handled {
        let path = request.uri().path().to_owned();
        let route = route(&path);
        match route {
            Route::Health => return Ok(self.health().await),
            Route::Metrics => {
                return Ok(respond(
                    StatusCode::OK,
                    &[(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    self.metrics.render(),
                ));
            }
            Route::NotFound => {
                return Ok(respond(
                    StatusCode::NOT_FOUND,
                    &[(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "404 page not found\n",
                ));
            }
            _ => {}
        }
        self.authorize(&request, route).await?;
        let method = request.method().clone();
        let query = Query::parse(request.uri().query());
        match route {
            Route::Base => Ok(respond(
                StatusCode::OK,
                &[(header::CONTENT_TYPE, JSON)],
                "{}",
            )),
            Route::Catalog => self.catalog(&query, &path).await,
            Route::Tags { name } => {
                let name = repository_name(name)?;
                self.tags(&name, &query, &path).await
            }
            Route::Manifest { name, reference } => {
                let name = repository_name(name)?;
                match method {
                    Method::GET | Method::HEAD => {
                        self.get_manifest(
                            &name,
                            reference,
                            &query,
                            request.headers(),
                            method == Method::HEAD,
                        )
                        .await
                    }
                    Method::PUT if self.push => self.put_manifest(&name, reference, request).await,
                    _ => Err(ApiError::new(ErrorCode::Unsupported)),
                }
            }
            Route::Blob { name, digest } => {
                let name = repository_name(name)?;
                match method {
                    Method::GET | Method::HEAD => {
                        self.get_blob(
                            &name,
                            digest,
                            &query,
                            request.headers(),
                            method == Method::HEAD,
                        )
                        .await
                    }
                    _ => Err(ApiError::new(ErrorCode::Unsupported)),
                }
            }
            Route::UploadStart { name } => {
                let name = repository_name(name)?;
                match method {
                    Method::POST if self.push => self.start_upload(&name, &query, request).await,
                    _ => Err(ApiError::new(ErrorCode::Unsupported)),
                }
            }
            Route::Upload { name, id } => {
                let name = repository_name(name)?;
                if !self.push {
                    return Err(ApiError::new(ErrorCode::Unsupported));
                }
                let id = id.to_owned();
                match method {
                    Method::GET => self.upload_status(&name, &id, request.headers()).await,
                    Method::PATCH => self.patch_upload(&name, &id, request).await,
                    Method::PUT => self.finish_upload(&name, &id, &query, request).await,
                    Method::DELETE => {
                        let storage = self.storage.clone();
                        blocking(move || storage.cancel_upload(&name, &id)).await?;
                        Ok(respond(StatusCode::NO_CONTENT, &[], ""))
                    }
                    _ => Err(ApiError::new(ErrorCode::Unsupported)),
                }
            }
            Route::Health | Route::Metrics | Route::NotFound => {
                unreachable!("answered before authorization")
            }
        }
    }

    /// `/healthz`: 200 when the storage can be read, 503 with the reason otherwise.
    async fn health(&self) -> Answer {
        let storage = self.storage.clone();
        match tokio::task::spawn_blocking(move || storage.check_readable()).await {
            Ok(Ok(())) => respond(StatusCode::OK, &[(header::CONTENT_TYPE, JSON)], "{}"),
            Ok(Err(error)) => unhealthy(&error.to_string()),
            Err(error) => unhealthy(&error.to_string()),
        }
    }

    /// Checks the client's credentials when htpasswd is on; the 401 names the access asked
    /// for, as distribution's does.
    async fn authorize(
        &self,
        request: &Request<Incoming>,
        route: Route<'_>,
    ) -> Result<(), ApiError> {
        let Some(htpasswd) = self.htpasswd.clone() else {
            return Ok(());
        };
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| value.as_bytes().to_vec());
        let checker = htpasswd.clone();
        let authorized =
            tokio::task::spawn_blocking(move || checker.authorizes(authorization.as_deref()))
                .await
                .unwrap_or(false);
        if authorized {
            return Ok(());
        }
        let access = |name: &str, action: &str| json!({"Type": "repository", "Class": "", "Name": name, "Action": action});
        let detail = match route {
            Route::Catalog => {
                json!([{"Type": "registry", "Class": "", "Name": "catalog", "Action": "*"}])
            }
            Route::Tags { name }
            | Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. } => {
                if matches!(*request.method(), Method::GET | Method::HEAD) {
                    json!([access(name, "pull")])
                } else {
                    json!([access(name, "pull"), access(name, "push")])
                }
            }
            Route::Base | Route::Health | Route::Metrics | Route::NotFound => {
                serde_json::Value::Null
            }
        };
        Err(ApiError::new(ErrorCode::Unauthorized)
            .detail(detail)
            .message("authentication required")
            .with_challenge(htpasswd.challenge()))
    }

    async fn catalog(&self, query: &Query, path: &str) -> Handled {
        let storage = self.storage.clone();
        let repositories = blocking(move || storage.catalog()).await?;
        let limit = query.count().unwrap_or(DEFAULT_CATALOG_ENTRIES);
        let last = query.get("last");
        let after: Vec<String> = match last {
            Some(last) => {
                let last = crate::storage::path_order(last);
                repositories
                    .into_iter()
                    .filter(|name| crate::storage::path_order(name) > last)
                    .collect()
            }
            None => repositories,
        };
        let page: Vec<&String> = after.iter().take(limit).collect();
        let mut headers = vec![(header::CONTENT_TYPE, JSON.to_owned())];
        if page.len() < after.len()
            && let Some(last) = page.last()
        {
            headers.push((header::LINK, next_link(path, last, limit)));
        }
        let body = json_line(&json!({ "repositories": page }));
        Ok(respond_owned(StatusCode::OK, &headers, body))
    }

    async fn tags(&self, name: &RepositoryName, query: &Query, path: &str) -> Handled {
        let storage = self.storage.clone();
        let candidates = candidates(name, query);
        let tags =
            blocking(move || first_found(&candidates, |repository| storage.tags(repository)))
                .await?;
        let after: Vec<String> = match query.get("last") {
            Some(last) => tags.into_iter().filter(|tag| tag.as_str() > last).collect(),
            None => tags,
        };
        let limit = query.count().unwrap_or(usize::MAX);
        let page: Vec<&String> = after.iter().take(limit).collect();
        let mut headers = vec![(header::CONTENT_TYPE, JSON.to_owned())];
        if page.len() < after.len()
            && let Some(last) = page.last()
        {
            headers.push((header::LINK, next_link(path, last, limit)));
        }
        let body = json_line(&json!({ "name": name.as_str(), "tags": page }));
        Ok(respond_owned(StatusCode::OK, &headers, body))
    }

    async fn get_manifest(
        &self,
        name: &RepositoryName,
        reference: &str,
        query: &Query,
        headers: &HeaderMap,
        head: bool,
    ) -> Handled {
        let reference = match ManifestReference::parse(reference) {
            Ok(reference) => reference,
            Err(StorageError::TagInvalid { tag }) => {
                return Err(ApiError::new(ErrorCode::ManifestUnknown).detail(json!({ "Tag": tag })));
            }
            Err(error) => return Err(ApiError::from(&error)),
        };
        let accepted = AcceptedTypes::from_headers(headers);
        let candidates = candidates(name, query);
        let stored = self
            .stored_manifest(&candidates, &reference, &accepted)
            .await;
        let manifest = match (stored, self.upstream_for(name, query, headers)) {
            (Err(missing), Some(upstream)) if is_missing(&missing) => {
                self.fetch_manifest(&upstream, &candidates, &reference)
                    .await
                    .map_err(|error| upstream_error(&error, missing))?;
                self.stored_manifest(&candidates, &reference, &accepted)
                    .await?
            }
            (stored, upstream) => {
                let manifest = stored?;
                if upstream.is_some() {
                    self.metrics.record_cache_hit();
                }
                manifest
            }
        };
        let etag = format!("\"{}\"", manifest.digest);
        if if_none_match(headers, &etag) {
            return Ok(respond(StatusCode::NOT_MODIFIED, &[], ""));
        }
        let length = manifest.bytes.len().to_string();
        let digest = manifest.digest.to_string();
        let response_headers = [
            (header::CONTENT_TYPE, manifest.media_type.as_str()),
            (header::CONTENT_LENGTH, length.as_str()),
            (
                header::HeaderName::from_static("docker-content-digest"),
                digest.as_str(),
            ),
            (header::ETAG, etag.as_str()),
        ];
        let body = if head {
            Bytes::new()
        } else {
            Bytes::from(manifest.bytes)
        };
        Ok(respond(StatusCode::OK, &response_headers, body))
    }

    /// A manifest from storage, negotiated against what the client accepts.
    async fn stored_manifest(
        &self,
        candidates: &[RepositoryName],
        reference: &ManifestReference,
        accepted: &AcceptedTypes,
    ) -> Result<StoredManifest, ApiError> {
        let storage = self.storage.clone();
        let candidates = candidates.to_vec();
        let reference = reference.clone();
        let accepted = accepted.clone();
        let by_tag = matches!(reference, ManifestReference::Tag(_));
        blocking(move || {
            let (repository, manifest) = first_found_with(&candidates, |repository| {
                storage.manifest_by_reference(repository, &reference)
            })?;
            negotiate(&storage, &repository, manifest, &accepted, by_tag)
        })
        .await?
    }

    /// A blob's place in storage.
    async fn stored_blob(
        &self,
        candidates: &[RepositoryName],
        digest: &Digest,
    ) -> Result<BlobInfo, ApiError> {
        let storage = self.storage.clone();
        let candidates = candidates.to_vec();
        let digest = digest.clone();
        blocking(move || first_found(&candidates, |repository| storage.blob(repository, &digest)))
            .await
    }

    /// The upstream that serves what storage lacks of `name`, if any. An `ns` naming this
    /// registry itself (the client's `Host`) is no upstream: the request would come back here.
    fn upstream_for(
        &self,
        name: &RepositoryName,
        query: &Query,
        headers: &HeaderMap,
    ) -> Option<Selected> {
        let upstreams = self.upstreams.as_ref()?;
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok());
        let ns = query
            .get("ns")
            .filter(|ns| host.is_none_or(|host| !host.eq_ignore_ascii_case(ns)));
        upstreams.select(name.as_str(), ns)
    }

    /// Fetches a manifest from the upstream and stores it under every candidate name (and
    /// the tag, when asked by tag), so the next request is served from storage.
    async fn fetch_manifest(
        &self,
        upstream: &Selected,
        candidates: &[RepositoryName],
        reference: &ManifestReference,
    ) -> Result<(), UpstreamError> {
        let (asked, tag) = match reference {
            ManifestReference::Tag(tag) => (tag.clone(), Some(tag.clone())),
            ManifestReference::Digest(digest) => (digest.to_string(), None),
        };
        let fetched = upstream.manifest(&asked).await?;
        self.metrics.record_cache_miss();
        self.metrics.add_upstream_bytes(fetched.bytes.len() as u64);
        let storage = self.storage.clone();
        let candidates = candidates.to_vec();
        let what = format!("manifest {}", fetched.digest);
        storing(upstream, &what, move || {
            storage.commit_manifest(&candidates, tag.as_deref(), &fetched.bytes, &fetched.digest)
        })
        .await
    }

    /// Fetches a blob from the upstream once (concurrent requests share the fetch), renames
    /// it into storage and links it into every candidate repository.
    async fn fetch_blob(
        &self,
        upstream: &Selected,
        candidates: &[RepositoryName],
        digest: &Digest,
    ) -> Result<(), UpstreamError> {
        let what = format!("blob {digest}");
        let storage = self.storage.clone();
        let staging = storing(upstream, &what, move || storage.staging_dir()).await?;
        let storage = self.storage.clone();
        let repositories = candidates.to_vec();
        let stored = upstream
            .blob_once(digest, &staging, move |fetched| {
                storage
                    .commit_blob(&repositories, &fetched.digest, fetched.file.path())
                    .map(drop)
                    .map_err(io::Error::other)
            })
            .await?;
        if stored.fetched_here {
            self.metrics.record_cache_miss();
            self.metrics.add_upstream_bytes(stored.size);
            return Ok(());
        }
        // Another request fetched and stored it, maybe for other repositories.
        let storage = self.storage.clone();
        let repositories = candidates.to_vec();
        let digest = digest.clone();
        storing(upstream, &what, move || {
            storage.link_blob(&repositories, &digest)
        })
        .await
    }

    async fn get_blob(
        &self,
        name: &RepositoryName,
        digest: &str,
        query: &Query,
        headers: &HeaderMap,
        head: bool,
    ) -> Handled {
        let digest = parse_digest(digest)?;
        let candidates = candidates(name, query);
        let stored = self.stored_blob(&candidates, &digest).await;
        let blob = match (stored, self.upstream_for(name, query, headers)) {
            (Err(missing), Some(upstream)) if is_missing(&missing) => {
                self.fetch_blob(&upstream, &candidates, &digest)
                    .await
                    .map_err(|error| upstream_error(&error, missing))?;
                self.stored_blob(&candidates, &digest).await?
            }
            (stored, upstream) => {
                let blob = stored?;
                if upstream.is_some() {
                    self.metrics.record_cache_hit();
                }
                blob
            }
        };
        let etag = format!("\"{}\"", blob.digest);
        let digest_text = blob.digest.to_string();
        let digest_header = header::HeaderName::from_static("docker-content-digest");
        let common = [
            (header::CACHE_CONTROL, "max-age=31536000"),
            (digest_header.clone(), digest_text.as_str()),
            (header::ETAG, etag.as_str()),
        ];
        if if_none_match(headers, &etag) {
            return Ok(respond(StatusCode::NOT_MODIFIED, &common, ""));
        }
        let range_header = headers
            .get(header::RANGE)
            .and_then(|value| value.to_str().ok());
        let (status, start, length) = match parse_range(range_header, blob.size) {
            RangeRequest::Full => (StatusCode::OK, 0, blob.size),
            RangeRequest::Partial { start, length } => (StatusCode::PARTIAL_CONTENT, start, length),
            RangeRequest::NoOverlap | RangeRequest::Invalid => {
                let unsatisfiable = format!("bytes */{}", blob.size);
                let reason = if range_header.is_some_and(|h| h.starts_with("bytes=")) {
                    "invalid range: failed to overlap\n"
                } else {
                    "invalid range\n"
                };
                let mut response = respond(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    &[
                        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                        (header::CONTENT_RANGE, unsatisfiable.as_str()),
                    ],
                    reason,
                );
                for (name, value) in common {
                    insert(&mut response, name, value);
                }
                return Ok(response);
            }
        };
        let length_text = length.to_string();
        let content_range = format!(
            "bytes {start}-{}/{}",
            start + length.saturating_sub(1),
            blob.size
        );
        let mut response_headers = vec![
            (header::ACCEPT_RANGES, "bytes"),
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_LENGTH, length_text.as_str()),
        ];
        response_headers.extend(common);
        if status == StatusCode::PARTIAL_CONTENT {
            response_headers.push((header::CONTENT_RANGE, content_range.as_str()));
        }
        let body = if head || length == 0 {
            body::empty()
        } else {
            body::file_range(&blob.path, start, length)
                .await
                .map_err(|error| {
                    internal_error(&format!(
                        "cannot open blob {}: {error}",
                        blob.path.display()
                    ))
                })?
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        for (name, value) in response_headers {
            insert(&mut response, name, value);
        }
        Ok(response)
    }

    async fn put_manifest(
        &self,
        name: &RepositoryName,
        reference: &str,
        request: Request<Incoming>,
    ) -> Handled {
        let reference =
            ManifestReference::parse(reference).map_err(|error| ApiError::from(&error))?;
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let location_base = self.location_base(request.headers());
        let bytes = read_limited(request.into_body(), crate::storage::MAX_MANIFEST_BYTES).await?;
        let storage = self.storage.clone();
        let repository = name.clone();
        let digest = blocking(move || {
            storage.put_manifest(&repository, &reference, content_type.as_deref(), &bytes)
        })
        .await?;
        Ok(created(
            &format!("{location_base}/v2/{name}/manifests/{digest}"),
            &digest,
        ))
    }

    async fn start_upload(
        &self,
        name: &RepositoryName,
        query: &Query,
        request: Request<Incoming>,
    ) -> Handled {
        let location_base = self.location_base(request.headers());
        if let (Some(mount), Some(from)) = (query.get("mount"), query.get("from")) {
            let digest = parse_digest(mount)?;
            if let Ok(from) = RepositoryName::parse(from) {
                let storage = self.storage.clone();
                let (to, mounted_digest) = (name.clone(), digest.clone());
                if blocking(move || storage.mount_blob(&from, &to, &mounted_digest)).await? {
                    return Ok(created(
                        &format!("{location_base}/v2/{name}/blobs/{digest}"),
                        &digest,
                    ));
                }
            }
        }
        let storage = self.storage.clone();
        let repository = name.clone();
        let upload = blocking(move || storage.start_upload(&repository)).await?;
        if let Some(digest) = query.get("digest") {
            let digest = parse_digest(digest);
            let written = append_body(request.into_body(), &upload.data).await;
            let storage = self.storage.clone();
            let (repository, id) = (name.clone(), upload.id.clone());
            let outcome = match (digest, written) {
                (Ok(digest), Ok(_)) => {
                    blocking(move || {
                        storage
                            .complete_upload(&repository, &id, &digest)
                            .map(|_| digest)
                    })
                    .await
                }
                (Err(error), _) | (_, Err(error)) => {
                    let _ = blocking(move || storage.cancel_upload(&repository, &id)).await;
                    Err(error)
                }
            };
            let digest = outcome?;
            return Ok(created(
                &format!("{location_base}/v2/{name}/blobs/{digest}"),
                &digest,
            ));
        }
        Ok(upload_answer(
            StatusCode::ACCEPTED,
            &location_base,
            name,
            &upload.id,
            0,
        ))
    }

    async fn upload_status(&self, name: &RepositoryName, id: &str, headers: &HeaderMap) -> Handled {
        let storage = self.storage.clone();
        let (repository, upload_id) = (name.clone(), id.to_owned());
        let upload = blocking(move || storage.upload(&repository, &upload_id)).await?;
        Ok(upload_answer(
            StatusCode::NO_CONTENT,
            &self.location_base(headers),
            name,
            id,
            upload.size,
        ))
    }

    async fn patch_upload(
        &self,
        name: &RepositoryName,
        id: &str,
        request: Request<Incoming>,
    ) -> Handled {
        let storage = self.storage.clone();
        let (repository, upload_id) = (name.clone(), id.to_owned());
        let upload = blocking(move || storage.upload(&repository, &upload_id)).await?;
        let headers = request.headers();
        let content_range = headers
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok());
        let content_length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(range), Some(length)) = (content_range, content_length) {
            let (start, end) = parse_content_range(range).ok_or_else(|| {
                ApiError::new(ErrorCode::RangeInvalid)
                    .detail(json!(format!("Content-Range `{range}` is not START-END")))
            })?;
            if start > end || start != upload.size {
                return Err(ApiError::new(ErrorCode::RangeInvalid).detail(json!(format!(
                    "the chunk starts at {start}, but the upload has {} bytes",
                    upload.size
                ))));
            }
            if length != end - start + 1 {
                return Err(ApiError::new(ErrorCode::SizeInvalid).detail(json!(format!(
                    "Content-Length {length} does not match Content-Range {range}"
                ))));
            }
        }
        let location_base = self.location_base(request.headers());
        let size = upload.size + append_body(request.into_body(), &upload.data).await?;
        Ok(upload_answer(
            StatusCode::ACCEPTED,
            &location_base,
            name,
            id,
            size,
        ))
    }

    async fn finish_upload(
        &self,
        name: &RepositoryName,
        id: &str,
        query: &Query,
        request: Request<Incoming>,
    ) -> Handled {
        let storage = self.storage.clone();
        let (repository, upload_id) = (name.clone(), id.to_owned());
        let upload = blocking(move || storage.upload(&repository, &upload_id)).await?;
        let digest = parse_digest(query.get("digest").unwrap_or_default())?;
        let location_base = self.location_base(request.headers());
        append_body(request.into_body(), &upload.data).await?;
        let storage = self.storage.clone();
        let (repository, upload_id, expected) = (name.clone(), id.to_owned(), digest.clone());
        blocking(move || storage.complete_upload(&repository, &upload_id, &expected)).await?;
        Ok(created(
            &format!("{location_base}/v2/{name}/blobs/{digest}"),
            &digest,
        ))
    }

    /// `scheme://host` of the request for absolute `Location` URLs, as distribution builds
    /// them; empty (a relative URL) without a `Host` header.
    fn location_base(&self, headers: &HeaderMap) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .filter(|host| !host.is_empty() && !host.contains(['/', ' ', '\\']))
            .map(|host| format!("{scheme}://{host}"))
            .unwrap_or_default()
    }
}

/// The media types the client accepts, as distribution 2.8 reads `Accept` (parameters and
/// `q` values are ignored; wildcards do not count).
#[derive(Debug, Clone, Default)]
struct AcceptedTypes {
    media_types: Vec<&'static str>,
}

impl AcceptedTypes {
    fn from_headers(headers: &HeaderMap) -> Self {
        let mut accepted = AcceptedTypes::default();
        for value in headers.get_all(header::ACCEPT) {
            let Ok(value) = value.to_str() else { continue };
            for media_type in value.split(',') {
                let media_type = media_type
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                if let Some(known) = [
                    DOCKER_MANIFEST,
                    DOCKER_MANIFEST_LIST,
                    OCI_MANIFEST,
                    OCI_INDEX,
                ]
                .into_iter()
                .find(|known| *known == media_type)
                {
                    accepted.media_types.push(known);
                }
            }
        }
        accepted
    }

    fn accepts(&self, media_type: &str) -> bool {
        self.media_types.contains(&media_type)
    }
}

/// Decides what to serve for a stored manifest, as distribution 2.8 does: OCI documents only
/// to clients that accept them; by tag, a Docker schema 2 manifest only to clients that accept
/// it (distribution would convert to schema 1, which it no longer signs), and for a client
/// without manifest-list support the `linux/amd64` entry of a list.
fn negotiate(
    storage: &Storage,
    repository: &RepositoryName,
    manifest: StoredManifest,
    accepted: &AcceptedTypes,
    by_tag: bool,
) -> Result<Result<StoredManifest, ApiError>, StorageError> {
    let unknown = |message: &str| {
        Ok(Err(
            ApiError::new(ErrorCode::ManifestUnknown).message(message)
        ))
    };
    let schema1_needed = || {
        Ok(Err(ApiError::new(ErrorCode::ManifestInvalid).detail(json!(
            "the manifest is Docker schema 2 and the client accepts neither it nor an OCI type; \
             send Accept: application/vnd.docker.distribution.manifest.v2+json (schema 1 is not served)"
        ))))
    };
    match manifest.media_type.as_str() {
        OCI_MANIFEST if !accepted.accepts(OCI_MANIFEST) => {
            unknown("OCI manifest found, but accept header does not support OCI manifests")
        }
        OCI_INDEX if !accepted.accepts(OCI_INDEX) => {
            unknown("OCI index found, but accept header does not support OCI indexes")
        }
        DOCKER_MANIFEST if by_tag && !accepted.accepts(DOCKER_MANIFEST) => schema1_needed(),
        DOCKER_MANIFEST_LIST if by_tag && !accepted.accepts(DOCKER_MANIFEST_LIST) => {
            let Ok(list) = serde_json::from_slice::<Index>(&manifest.bytes) else {
                return unknown("manifest unknown");
            };
            let Some(entry) = list.manifests.iter().find(|entry| {
                entry.platform.as_ref().is_some_and(|platform| {
                    (platform.os.as_str(), platform.architecture.as_str()) == DEFAULT_PLATFORM
                })
            }) else {
                return unknown("manifest unknown");
            };
            let child = storage.manifest(repository, &entry.digest)?;
            match child.media_type.as_str() {
                DOCKER_MANIFEST if !accepted.accepts(DOCKER_MANIFEST) => schema1_needed(),
                OCI_MANIFEST if !accepted.accepts(OCI_MANIFEST) => {
                    unknown("OCI manifest found, but accept header does not support OCI manifests")
                }
                _ => Ok(Ok(child)),
            }
        }
        _ => Ok(Ok(manifest)),
    }
}

/// The repositories a read looks in: with `ns`, the full name first, then the name.
fn candidates(name: &RepositoryName, query: &Query) -> Vec<RepositoryName> {
    cache_repository_names(query.get("ns"), name)
}

/// The first repository where `read` finds something; a not-found answer moves on to the
/// next, and the last one's error is returned.
fn first_found<T>(
    candidates: &[RepositoryName],
    read: impl Fn(&RepositoryName) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    first_found_with(candidates, read).map(|(_, found)| found)
}

/// [`first_found`], also giving the repository where it was found.
fn first_found_with<T>(
    candidates: &[RepositoryName],
    read: impl Fn(&RepositoryName) -> Result<T, StorageError>,
) -> Result<(RepositoryName, T), StorageError> {
    let mut last_error = None;
    for repository in candidates {
        match read(repository) {
            Ok(found) => return Ok((repository.clone(), found)),
            Err(
                error @ (StorageError::NameUnknown { .. }
                | StorageError::ManifestUnknown { .. }
                | StorageError::BlobUnknown { .. }),
            ) => last_error = Some(error),
            Err(other) => return Err(other),
        }
    }
    Err(last_error.unwrap_or_else(|| StorageError::Io {
        path: std::path::PathBuf::new(),
        source: io::Error::other("no repository to look in"),
    }))
}

/// Runs storage work off the async threads; its error becomes the API error.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            if matches!(error, StorageError::Io { .. }) {
                eprintln!("registry storage error: {error}");
            }
            Err(ApiError::from(&error))
        }
        Err(join) => Err(internal_error(&format!("a storage task failed: {join}"))),
    }
}

/// An `UNKNOWN` error, logged with its reason.
/// Runs the pull-through cache's storage work off the async threads; a failure becomes an
/// upstream error naming the upstream and what was being stored.
async fn storing<T: Send + 'static>(
    upstream: &Selected,
    what: &str,
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, UpstreamError> {
    let message = match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(error)) => error.to_string(),
        Err(error) => error.to_string(),
    };
    Err(UpstreamError::Storage {
        upstream: upstream.upstream_name().to_owned(),
        action: "storing",
        path: what.to_owned(),
        message,
    })
}

/// True for the storage's "not there" answers, which the pull-through cache may fill.
fn is_missing(error: &ApiError) -> bool {
    matches!(
        error.code,
        ErrorCode::NameUnknown | ErrorCode::ManifestUnknown | ErrorCode::BlobUnknown
    )
}

/// What a client sees of an upstream failure: the storage's own "unknown" answer when the
/// upstream does not have it either, otherwise distribution's `UNKNOWN` with the reason
/// (which never holds a credential).
fn upstream_error(error: &UpstreamError, missing: ApiError) -> ApiError {
    if error.is_not_found() {
        return missing;
    }
    eprintln!("registry upstream error: {error}");
    ApiError::new(ErrorCode::Unknown).detail(json!(error.to_string()))
}

fn internal_error(reason: &str) -> ApiError {
    eprintln!("registry error: {reason}");
    ApiError::new(ErrorCode::Unknown).detail(json!("the registry failed; its log says why"))
}

fn repository_name(text: &str) -> Result<RepositoryName, ApiError> {
    RepositoryName::parse(text)
        .map_err(|error| ApiError::new(ErrorCode::NameInvalid).detail(json!(error.to_string())))
}

fn parse_digest(text: &str) -> Result<Digest, ApiError> {
    text.parse::<Digest>()
        .map_err(|error| ApiError::new(ErrorCode::DigestInvalid).detail(json!(error.to_string())))
}

/// `START-END` of a chunk's `Content-Range` (distribution's form, without `bytes `).
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let value = value.trim();
    let value = value
        .strip_prefix("bytes ")
        .or_else(|| value.strip_prefix("bytes="))
        .unwrap_or(value);
    let (start, end) = value.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?))
}

/// Appends a request body to an upload's data file; returns the bytes written.
async fn append_body(body: Incoming, path: &std::path::Path) -> Result<u64, ApiError> {
    let failed = |error: io::Error| {
        internal_error(&format!(
            "cannot write the upload {}: {error}",
            path.display()
        ))
    };
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .await
        .map_err(failed)?;
    let mut body = body;
    let mut written = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            ApiError::new(ErrorCode::BlobUploadInvalid)
                .detail(json!(format!("the request body was cut off: {error}")))
        })?;
        if let Ok(data) = frame.into_data() {
            file.write_all(&data).await.map_err(failed)?;
            written += data.len() as u64;
        }
    }
    file.flush().await.map_err(failed)?;
    Ok(written)
}

/// Reads a request body of at most `limit` bytes.
async fn read_limited(body: Incoming, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = body;
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            ApiError::new(ErrorCode::ManifestInvalid)
                .detail(json!(format!("the request body was cut off: {error}")))
        })?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(ApiError::new(ErrorCode::ManifestInvalid)
                    .detail(json!(format!("the manifest is larger than {limit} bytes"))));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// `If-None-Match` lists this entity tag (or `*`).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.trim_start_matches("W/") == etag
        })
}

/// `201 Created` for a blob or manifest now stored.
fn created(location: &str, digest: &Digest) -> Answer {
    let digest = digest.to_string();
    respond(
        StatusCode::CREATED,
        &[
            (header::LOCATION, location),
            (header::CONTENT_LENGTH, "0"),
            (
                header::HeaderName::from_static("docker-content-digest"),
                digest.as_str(),
            ),
        ],
        "",
    )
}

/// The answer about an upload in progress: its `Location`, the `Range` received and its id.
fn upload_answer(
    status: StatusCode,
    location_base: &str,
    name: &RepositoryName,
    id: &str,
    size: u64,
) -> Answer {
    let location = format!("{location_base}/v2/{name}/blobs/uploads/{id}");
    let range = format!("0-{}", size.saturating_sub(1));
    respond(
        status,
        &[
            (header::LOCATION, location.as_str()),
            (header::RANGE, range.as_str()),
            (header::CONTENT_LENGTH, "0"),
            (header::HeaderName::from_static("docker-upload-uuid"), id),
        ],
        "",
    )
}

/// The next page's `Link` header, as distribution writes it.
fn next_link(path: &str, last: &str, limit: usize) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("last", last)
        .append_pair("n", &limit.to_string())
        .finish();
    format!("<{path}?{query}>; rel=\"next\"")
}

/// A JSON document and a newline, as Go's encoder writes it.
fn json_line(value: &serde_json::Value) -> Vec<u8> {
    let mut bytes = value.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

fn unhealthy(reason: &str) -> Answer {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        &[(header::CONTENT_TYPE, JSON)],
        json_line(&json!({ "storage": reason })),
    )
}

/// The response for an API error.
pub fn error_response(error: &ApiError) -> Answer {
    let mut response = respond(
        error.status(),
        &[(header::CONTENT_TYPE, JSON)],
        error.body(),
    );
    if let Some(challenge) = &error.challenge {
        insert(&mut response, header::WWW_AUTHENTICATE, challenge);
    }
    response
}

/// A response with a body of bytes and these headers.
fn respond(
    status: StatusCode,
    headers: &[(header::HeaderName, &str)],
    body: impl Into<Bytes>,
) -> Answer {
    let body: Bytes = body.into();
    let mut response = Response::new(if body.is_empty() {
        body::empty()
    } else {
        body::full(body)
    });
    *response.status_mut() = status;
    for (name, value) in headers {
        insert(&mut response, name.clone(), value);
    }
    response
}

fn respond_owned(
    status: StatusCode,
    headers: &[(header::HeaderName, String)],
    body: impl Into<Bytes>,
) -> Answer {
    let borrowed: Vec<(header::HeaderName, &str)> = headers
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str()))
        .collect();
    respond(status, &borrowed, body)
}

fn insert(response: &mut Answer, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// The query parameters of a request.
#[derive(Debug, Default)]
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(query: Option<&str>) -> Self {
        Query {
            pairs: query
                .map(|query| {
                    form_urlencoded::parse(query.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `n`, when it is a count.
    fn count(&self) -> Option<usize> {
        self.get("n").and_then(|n| n.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_as_distribution_reads_them() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json;q=0.5, */*"),
        );
        headers.append(
            header::ACCEPT,
            HeaderValue::from_static(DOCKER_MANIFEST_LIST),
        );
        let accepted = AcceptedTypes::from_headers(&headers);
        assert!(accepted.accepts(OCI_MANIFEST) && accepted.accepts(DOCKER_MANIFEST_LIST));
        assert!(!accepted.accepts(DOCKER_MANIFEST) && !accepted.accepts(OCI_INDEX));
    }

    #[test]
    fn links_and_ranges() {
        assert_eq!(
            next_link("/v2/_catalog", "a/b", 1),
            "</v2/_catalog?last=a%2Fb&n=1>; rel=\"next\""
        );
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 5-9"), Some((5, 9)));
        assert_eq!(parse_content_range("x"), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(if_none_match(&headers, "\"b\""));
        assert!(!if_none_match(&headers, "\"c\""));
    }
}
