//! Resolving an image for one platform (the manifest or index, and for an index the platform's
//! manifest) and downloading blobs into the local store: what `pull` does, and what the
//! registry storage of a ClusterImage needs, where the documents are kept byte for byte.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use kubefile::plan::Platform;

use super::transfer::FetchedManifest;
use super::{RegistryClient, RegistryError};
use crate::distribution::{Document, ImageDocuments};
use crate::manifest::{Descriptor, Index, Manifest, is_index, is_manifest};
use crate::progress::{BlobOutcome, Progress};
use crate::reference::Reference;
use crate::store::Store;

/// An image resolved for the registry storage: its documents as the registry served them and
/// the blobs they need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The reference that was resolved.
    pub reference: Reference,
    /// The manifest or index it names, and for an index the manifest of the platform.
    pub documents: ImageDocuments,
    /// The config and layers of the platform's manifest, each once.
    pub blobs: Vec<Descriptor>,
}

/// The manifest of one platform, and the index it was picked from when there is one.
pub(super) struct PlatformImage {
    /// What the reference names: the manifest, or an index.
    pub top: FetchedManifest,
    /// For an index: the entry picked and its manifest.
    pub picked: Option<(Descriptor, FetchedManifest)>,
    /// The platform's manifest, parsed.
    pub manifest: Manifest,
}

impl PlatformImage {
    /// The platform's manifest document.
    pub fn manifest_document(&self) -> &FetchedManifest {
        self.picked.as_ref().map_or(&self.top, |(_, child)| child)
    }

    /// The config and layers, each once.
    pub fn blobs(&self) -> Vec<Descriptor> {
        let mut seen = BTreeSet::new();
        std::iter::once(&self.manifest.config)
            .chain(&self.manifest.layers)
            .filter(|blob| seen.insert(blob.digest.clone()))
            .cloned()
            .collect()
    }
}

/// Fetches what `reference` names and, for an index, the manifest of `platform`.
pub(super) async fn resolve_platform(
    client: &RegistryClient,
    reference: &Reference,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<PlatformImage, RegistryError> {
    let unsupported = |reason: String| RegistryError::Unsupported {
        reference: reference.to_string(),
        reason,
    };
    let top = client.fetch_manifest(reference, progress).await?;
    let picked = if is_index(&top.media_type) {
        let index: Index = serde_json::from_slice(&top.bytes)
            .map_err(|e| unsupported(format!("invalid index: {e}")))?;
        let entry = index
            .select(platform)
            .ok_or_else(|| RegistryError::NoPlatform {
                reference: reference.to_string(),
                platform: platform.to_string(),
                available: index
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref().map(|p| p.platform().to_string()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?
            .clone();
        let child = client
            .fetch_manifest(&reference.with_digest(entry.digest.clone()), progress)
            .await?;
        if !is_manifest(&child.media_type) {
            return Err(unsupported(format!(
                "the index entry for {platform} is a {}, not an image manifest",
                child.media_type
            )));
        }
        Some((entry, child))
    } else if is_manifest(&top.media_type) {
        None
    } else {
        return Err(unsupported(format!("media type {}", top.media_type)));
    };
    let manifest_bytes = &picked.as_ref().map_or(&top, |(_, child)| child).bytes;
    let manifest: Manifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| unsupported(format!("invalid manifest: {e}")))?;
    Ok(PlatformImage {
        top,
        picked,
        manifest,
    })
}

/// Resolves `reference` for the registry storage: the manifest or index it names and, for an
/// index, the manifest of `platform` (the only child the storage gets), with exact bytes.
/// Requests go to the registry's mirror when one is configured; nothing is stored.
pub async fn resolve_for_storage(
    client: &RegistryClient,
    reference: &Reference,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<ResolvedImage, RegistryError> {
    let image = resolve_platform(client, reference, platform, progress).await?;
    let blobs = image.blobs();
    let document = |fetched: FetchedManifest| Document::new(fetched.media_type, fetched.bytes);
    let children = image
        .picked
        .map(|(_, child)| document(child))
        .into_iter()
        .collect();
    Ok(ResolvedImage {
        reference: reference.clone(),
        documents: ImageDocuments {
            top: document(image.top),
            children,
        },
        blobs,
    })
}

/// Downloads the blobs the store lacks, each from the image named with it (through its
/// registry's mirror when one is configured), `client.options().jobs` at a time; returns how
/// many were downloaded. Partial downloads continue; nothing unverified is stored.
pub async fn download_blobs<'a>(
    client: &RegistryClient,
    store: &Store,
    blobs: impl IntoIterator<Item = (&'a Reference, &'a Descriptor)>,
    progress: Arc<dyn Progress>,
) -> Result<usize, RegistryError> {
    let _lock = super::lock_shared(store).await?;
    download_unlocked(client, store, blobs, progress).await
}

/// [`download_blobs`] for a caller that holds the store's shared lock.
pub(super) async fn download_unlocked<'a>(
    client: &RegistryClient,
    store: &Store,
    blobs: impl IntoIterator<Item = (&'a Reference, &'a Descriptor)>,
    progress: Arc<dyn Progress>,
) -> Result<usize, RegistryError> {
    let mut seen = BTreeSet::new();
    let unique: Vec<_> = blobs
        .into_iter()
        .filter(|(_, blob)| seen.insert(blob.digest.clone()))
        .collect();
    let jobs = client.options().jobs.max(1);
    let outcomes: Vec<BlobOutcome> =
        futures::stream::iter(unique.into_iter().map(|(reference, blob)| {
            let progress = Arc::clone(&progress);
            client.download_blob(reference, blob, store, progress)
        }))
        .buffer_unordered(jobs)
        .try_collect()
        .await?;
    Ok(outcomes
        .iter()
        .filter(|outcome| **outcome == BlobOutcome::Downloaded)
        .count())
}
