//! `pull`: a reference from a registry into the local store, for one platform.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use kubefile::plan::Platform;

use super::{RegistryClient, RegistryError};
use crate::manifest::{Descriptor, DescriptorPlatform, Index, Manifest, is_index, is_manifest};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::store::Store;

/// What to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform picked from a multi-platform image.
    pub platform: Platform,
}

/// The outcome of a pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The name it is stored under.
    pub name: Reference,
    /// The stored manifest (the platform's manifest for a multi-platform image).
    pub descriptor: Descriptor,
    /// The digest of the index it was picked from, for a multi-platform image.
    pub index: Option<crate::digest::Digest>,
    /// Blobs that were downloaded (the others were in the store already).
    pub downloaded: usize,
}

/// Pulls `reference` into the store and names it so. Blobs already stored are not fetched; a
/// download interrupted earlier continues where it stopped. Nothing unverified is stored.
pub async fn pull(
    client: &RegistryClient,
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    progress: Arc<dyn Progress>,
) -> Result<Pulled, RegistryError> {
    let _lock = super::lock_shared(store).await?;
    let top = client.fetch_manifest(reference, progress.as_ref()).await?;
    let (manifest_bytes, descriptor, index) = if is_index(&top.media_type) {
        let parsed: Index =
            serde_json::from_slice(&top.bytes).map_err(|e| RegistryError::Unsupported {
                reference: reference.to_string(),
                reason: format!("invalid index: {e}"),
            })?;
        let entry = parsed
            .select(&options.platform)
            .ok_or_else(|| RegistryError::NoPlatform {
                reference: reference.to_string(),
                platform: options.platform.to_string(),
                available: parsed
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref().map(|p| p.platform().to_string()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let child_reference = reference.with_digest(entry.digest.clone());
        let child = client
            .fetch_manifest(&child_reference, progress.as_ref())
            .await?;
        let mut descriptor = Descriptor::of(&child.media_type, &child.bytes);
        descriptor.platform.clone_from(&entry.platform);
        (child.bytes, descriptor, Some(top.digest))
    } else if is_manifest(&top.media_type) {
        let mut descriptor = Descriptor::of(&top.media_type, &top.bytes);
        descriptor.platform = Some(DescriptorPlatform::from(&options.platform));
        (top.bytes, descriptor, None)
    } else {
        return Err(RegistryError::Unsupported {
            reference: reference.to_string(),
            reason: format!("media type {}", top.media_type),
        });
    };
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| RegistryError::Unsupported {
            reference: reference.to_string(),
            reason: format!("invalid manifest: {e}"),
        })?;
    let mut blobs: Vec<Descriptor> = Vec::with_capacity(manifest.layers.len() + 1);
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if !blobs.iter().any(|b| b.digest == blob.digest) {
            blobs.push(blob.clone());
        }
    }
    let jobs = client.options().jobs.max(1);
    let outcomes: Vec<_> = futures::stream::iter(blobs.iter().map(|blob| {
        let progress = Arc::clone(&progress);
        client.download_blob(reference, blob, store, progress)
    }))
    .buffer_unordered(jobs)
    .try_collect()
    .await?;
    let downloaded = outcomes
        .iter()
        .filter(|o| **o == crate::progress::BlobOutcome::Downloaded)
        .count();
    store.write_blob(&manifest_bytes)?;
    store.tag(reference, &descriptor, Some(reference))?;
    Ok(Pulled {
        name: reference.clone(),
        descriptor,
        index,
        downloaded,
    })
}
