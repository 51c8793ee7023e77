//! Single transfers with retries: manifests, blob downloads that continue where they stopped,
//! blob uploads streamed from the store, existence checks and cross-repository mounts.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;

use futures::StreamExt;
use oci_client::client::BlobResponse;
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use reqwest::header::{HeaderValue, WWW_AUTHENTICATE};

use super::{Credentials, RegistryClient, RegistryError, classify, is_transient, oci_reference};
use crate::digest::Digest;
use crate::manifest::{Descriptor, MANIFEST_MEDIA_TYPES, sniff_media_type};
use crate::progress::{BlobOutcome, Progress};
use crate::reference::Reference;
use crate::store::{Store, StoreError};

/// A fetched manifest or index: its exact bytes, media type and digest.
pub(crate) struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

impl RegistryClient {
    /// Runs `op` (a request for `reference` sent to `host`) until it succeeds, fails for good,
    /// or the attempts run out.
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        reference: &Reference,
        host: &str,
        action: &str,
        progress: &dyn Progress,
        mut op: F,
    ) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        let attempts = self.options.attempts.max(1);
        let mut delay = self.options.backoff;
        for attempt in 1..=attempts {
            match op().await {
                Ok(value) => return Ok(value),
                Err(error) if attempt < attempts && is_transient(&error) => {
                    progress.message(&format!(
                        "{reference}: {action} failed ({}); retrying in {} ms",
                        super::error_chain(&error),
                        delay.as_millis()
                    ));
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(error) => return Err(classify(reference, host, action, &error)),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The client for `host` (the reference's registry or its mirror), logged in there.
    async fn authenticate(
        &self,
        reference: &Reference,
        host: &str,
    ) -> Result<oci_client::Client, RegistryError> {
        let client = self.client(host);
        let auth = self.auth(host)?;
        client
            .store_auth_if_needed(oci_reference(reference, host).resolve_registry(), &auth)
            .await;
        Ok(client)
    }

    /// Fetches a manifest or index (from the registry's mirror when it has one) and checks it
    /// against the reference's digest, if any.
    pub(crate) async fn fetch_manifest(
        &self,
        reference: &Reference,
        progress: &dyn Progress,
    ) -> Result<FetchedManifest, RegistryError> {
        let host = self.pull_host(reference);
        let client = self.client(host);
        let auth = self.auth(host)?;
        let image = oci_reference(reference, host);
        let (bytes, _) = self
            .retry(reference, host, "fetching the manifest", progress, || {
                client.pull_manifest_raw(&image, &auth, &MANIFEST_MEDIA_TYPES)
            })
            .await?;
        let bytes = bytes.to_vec();
        let digest = Digest::of(&bytes);
        if let Some(expected) = reference.digest()
            && *expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                reference: reference.to_string(),
                what: "manifest",
                expected: expected.clone(),
                actual: digest,
            });
        }
        let media_type =
            sniff_media_type(None, &bytes).ok_or_else(|| RegistryError::Unsupported {
                reference: reference.to_string(),
                reason:
                    "the registry answered with a document that is neither a manifest nor an index"
                        .into(),
            })?;
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Downloads a blob into the store (from the registry's mirror when it has one), continuing
    /// a partial download, verifying the digest.
    pub(crate) async fn download_blob(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        store: &Store,
        progress: Arc<dyn Progress>,
    ) -> Result<BlobOutcome, RegistryError> {
        let digest = descriptor.digest.clone();
        if store.has_blob(&digest) {
            progress.blob_finished(&digest, BlobOutcome::Skipped);
            return Ok(BlobOutcome::Skipped);
        }
        let writer_store = store.clone();
        let writer_digest = digest.clone();
        let mut writer =
            tokio::task::spawn_blocking(move || writer_store.blob_writer(&writer_digest))
                .await
                .map_err(|e| RegistryError::Config(format!("blob writer task failed: {e}")))??;
        if writer.is_stored() {
            progress.blob_finished(&digest, BlobOutcome::Skipped);
            return Ok(BlobOutcome::Skipped);
        }
        let host = self.pull_host(reference);
        let client = self.authenticate(reference, host).await?;
        let image = oci_reference(reference, host);
        let layer = OciDescriptor {
            media_type: descriptor.media_type.clone(),
            digest: digest.to_string(),
            size: i64::try_from(descriptor.size).unwrap_or(i64::MAX),
            ..OciDescriptor::default()
        };
        if writer.offset() > descriptor.size {
            writer.restart()?;
        }
        progress.blob_started(&digest, descriptor.size, writer.offset());
        let attempts = self.options.attempts.max(1);
        let mut delay = self.options.backoff;
        let mut attempt = 0;
        while writer.offset() < descriptor.size {
            attempt += 1;
            let offset = writer.offset();
            let response = if offset > 0 {
                client
                    .pull_blob_stream_partial(&image, &layer, offset, None)
                    .await
            } else {
                client
                    .pull_blob_stream(&image, &layer)
                    .await
                    .map(BlobResponse::Full)
            };
            let failure = match response {
                Ok(response) => {
                    let mut stream = match response {
                        BlobResponse::Full(sized) => {
                            if offset > 0 {
                                writer.restart()?;
                                progress.blob_started(&digest, descriptor.size, 0);
                            }
                            sized.stream
                        }
                        BlobResponse::Partial(sized) => sized.stream,
                    };
                    let mut failure = None;
                    while let Some(chunk) = stream.next().await {
                        match chunk {
                            Ok(bytes) => {
                                writer.write_all(&bytes).map_err(|source| StoreError::Io {
                                    action: "cannot write blob",
                                    path: store.blob_path(&digest),
                                    source,
                                })?;
                                progress.blob_advanced(&digest, bytes.len() as u64);
                            }
                            Err(error) => {
                                failure = Some(OciDistributionError::IoError(error));
                                break;
                            }
                        }
                    }
                    match failure {
                        Some(error) if writer.offset() < descriptor.size => error,
                        _ => break,
                    }
                }
                Err(error) => error,
            };
            if attempt >= attempts || !is_transient(&failure) {
                return Err(classify(
                    reference,
                    host,
                    &format!("downloading blob {digest}"),
                    &failure,
                ));
            }
            progress.message(&format!(
                "{reference}: download of {digest} stopped at {} bytes ({}); continuing in {} ms",
                writer.offset(),
                super::error_chain(&failure),
                delay.as_millis()
            ));
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        let committed = tokio::task::spawn_blocking(move || writer.commit())
            .await
            .map_err(|e| RegistryError::Config(format!("blob writer task failed: {e}")))?;
        match committed {
            Ok(_) => {
                progress.blob_finished(&digest, BlobOutcome::Downloaded);
                Ok(BlobOutcome::Downloaded)
            }
            Err(StoreError::DigestMismatch { expected, actual }) => {
                Err(RegistryError::DigestMismatch {
                    reference: reference.to_string(),
                    what: "blob",
                    expected,
                    actual,
                })
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Makes a blob of the store exist in the target repository: skipped when it is there,
    /// mounted from `mount_from` when that is another repository of the same registry, else
    /// uploaded from the store.
    pub(crate) async fn upload_blob(
        &self,
        target: &Reference,
        descriptor: &Descriptor,
        store: &Store,
        mount_from: Option<&Reference>,
        progress: Arc<dyn Progress>,
    ) -> Result<BlobOutcome, RegistryError> {
        let digest = descriptor.digest.clone();
        let host = target.registry();
        let client = self.authenticate(target, host).await?;
        let image = oci_reference(target, host);
        let digest_text = digest.to_string();
        let exists = self
            .retry(target, host, "checking a blob", progress.as_ref(), || {
                client.blob_exists(&image, &digest_text)
            })
            .await?;
        if exists {
            progress.blob_finished(&digest, BlobOutcome::Skipped);
            return Ok(BlobOutcome::Skipped);
        }
        if let Some(source) = mount_from
            .filter(|s| s.registry() == target.registry() && s.repository() != target.repository())
        {
            let source_image = oci_reference(source, source.registry());
            if client
                .mount_blob(&image, &source_image, &digest_text)
                .await
                .is_ok()
            {
                progress.blob_finished(&digest, BlobOutcome::Mounted);
                return Ok(BlobOutcome::Mounted);
            }
        }
        let path = store.blob_path(&digest);
        let size = descriptor.size;
        self.retry(
            target,
            host,
            &format!("uploading blob {digest}"),
            progress.as_ref(),
            || {
                let path = path.clone();
                let client = client.clone();
                let image = image.clone();
                let digest_text = digest_text.clone();
                let progress = Arc::clone(&progress);
                let digest = digest.clone();
                async move {
                    let file = tokio::fs::File::open(&path).await?;
                    progress.blob_started(&digest, size, 0);
                    let counting = Arc::clone(&progress);
                    let counted_digest = digest.clone();
                    let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map(
                        move |chunk| {
                            if let Ok(bytes) = &chunk {
                                counting.blob_advanced(&counted_digest, bytes.len() as u64);
                            }
                            chunk.map_err(OciDistributionError::IoError)
                        },
                    );
                    client
                        .push_blob_stream(&image, stream, &digest_text, Some(size))
                        .await
                }
            },
        )
        .await?;
        progress.blob_finished(&digest, BlobOutcome::Uploaded);
        Ok(BlobOutcome::Uploaded)
    }

    /// Uploads a manifest or index with its exact bytes.
    pub(crate) async fn put_manifest(
        &self,
        target: &Reference,
        bytes: &[u8],
        media_type: &str,
        progress: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let host = target.registry();
        let client = self.authenticate(target, host).await?;
        let image = oci_reference(target, host);
        let content_type =
            HeaderValue::from_str(media_type).map_err(|_| RegistryError::Unsupported {
                reference: target.to_string(),
                reason: format!("media type `{media_type}`"),
            })?;
        let body = bytes::Bytes::copy_from_slice(bytes);
        self.retry(target, host, "uploading the manifest", progress, || {
            client.push_manifest_raw(&image, body.clone(), content_type.clone())
        })
        .await?;
        Ok(())
    }
}

/// `GET /v2/` with the credentials, following a Bearer challenge to the token service.
pub(super) async fn check_login(
    client: &RegistryClient,
    registry: &str,
    credentials: &Credentials,
) -> Result<(), RegistryError> {
    let scheme = if client.is_plain_http(registry) {
        "http"
    } else {
        "https"
    };
    let host = if registry == crate::reference::DEFAULT_REGISTRY {
        crate::reference::DEFAULT_REGISTRY_API_HOST
    } else {
        registry
    };
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(!client.options.tls_verify)
        .connect_timeout(std::time::Duration::from_secs(30))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| RegistryError::Config(format!("cannot build an HTTP client: {e}")))?;
    let unreachable = |e: reqwest::Error| RegistryError::Transfer {
        reference: registry.to_owned(),
        action: "logging in".into(),
        message: super::error_chain(&e.without_url()),
    };
    let denied = || RegistryError::LoginRefused {
        registry: registry.to_owned(),
    };
    let (username, password) = match credentials {
        Credentials::Basic { username, password } => (username.as_str(), password.as_str()),
        Credentials::Anonymous => ("", ""),
    };
    let url = format!("{scheme}://{host}/v2/");
    let first = http.get(&url).send().await.map_err(unreachable)?;
    if first.status().is_success() {
        return Ok(());
    }
    if first.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Err(RegistryError::Transfer {
            reference: registry.to_owned(),
            action: "logging in".into(),
            message: format!("GET /v2/ answered {}", first.status()),
        });
    }
    let challenge = first
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let response = if let Some(params) = challenge
        .strip_prefix("Bearer ")
        .or_else(|| challenge.strip_prefix("bearer "))
    {
        let param = |name: &str| {
            params.split(',').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.eq_ignore_ascii_case(name)).then(|| v.trim_matches('"').to_owned())
            })
        };
        let realm = param("realm").ok_or_else(|| RegistryError::Transfer {
            reference: registry.to_owned(),
            action: "logging in".into(),
            message: "the token challenge names no realm".into(),
        })?;
        let mut query = vec![("account", username.to_owned())];
        if let Some(service) = param("service") {
            query.push(("service", service));
        }
        http.get(&realm)
            .query(&query)
            .basic_auth(username, Some(password))
            .send()
            .await
            .map_err(unreachable)?
    } else {
        http.get(&url)
            .basic_auth(username, Some(password))
            .send()
            .await
            .map_err(unreachable)?
    };
    if response.status().is_success() {
        Ok(())
    } else {
        Err(denied())
    }
}
