//! `pull`: a reference from a registry into the local store, for one platform.

use std::sync::Arc;

use kubefile::plan::Platform;

use super::fetch::{download_unlocked, resolve_platform};
use super::{RegistryClient, RegistryError};
use crate::manifest::{Descriptor, DescriptorPlatform};
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
    let image = resolve_platform(client, reference, &options.platform, progress.as_ref()).await?;
    let manifest = image.manifest_document();
    let mut descriptor = Descriptor::of(&manifest.media_type, &manifest.bytes);
    descriptor.platform = match &image.picked {
        Some((entry, _)) => entry.platform.clone(),
        None => Some(DescriptorPlatform::from(&options.platform)),
    };
    let index = image.picked.as_ref().map(|_| image.top.digest.clone());
    let blobs = image.blobs();
    let downloaded = download_unlocked(
        client,
        store,
        blobs.iter().map(|blob| (reference, blob)),
        progress,
    )
    .await?;
    store.write_blob(&manifest.bytes)?;
    store.tag(reference, &descriptor, Some(reference))?;
    Ok(Pulled {
        name: reference.clone(),
        descriptor,
        index,
        downloaded,
    })
}
