//! `push`: an image or index of the local store to a registry, uploading only what the
//! registry lacks.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use super::{RegistryClient, RegistryError};
use crate::digest::Digest;
use crate::manifest::{Descriptor, is_index};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::store::{SOURCE_ANNOTATION, Store, StoredImage};

/// Pushes a stored image (or index with all its images) to `target`; returns the digest of
/// what was pushed.
pub async fn push(
    client: &RegistryClient,
    store: &Store,
    image: &StoredImage,
    target: &Reference,
    progress: Arc<dyn Progress>,
) -> Result<Digest, RegistryError> {
    let _lock = super::lock_shared(store).await?;
    let source = image
        .descriptor
        .annotations
        .get(SOURCE_ANNOTATION)
        .and_then(|s| Reference::parse(s).ok());
    let descriptor = &image.descriptor;
    if is_index(&descriptor.media_type) {
        let index = store.read_index_document(&descriptor.digest)?;
        for child in &index.manifests {
            let child_target = target.with_digest(child.digest.clone());
            push_manifest(
                client,
                store,
                child,
                &child_target,
                source.as_ref(),
                &progress,
            )
            .await?;
        }
        let bytes = store.read_blob(&descriptor.digest)?;
        client
            .put_manifest(target, &bytes, &descriptor.media_type, progress.as_ref())
            .await?;
    } else {
        push_manifest(
            client,
            store,
            descriptor,
            target,
            source.as_ref(),
            &progress,
        )
        .await?;
    }
    Ok(descriptor.digest.clone())
}

async fn push_manifest(
    client: &RegistryClient,
    store: &Store,
    descriptor: &Descriptor,
    target: &Reference,
    source: Option<&Reference>,
    progress: &Arc<dyn Progress>,
) -> Result<(), RegistryError> {
    let manifest = store.read_manifest(&descriptor.digest)?;
    let mut blobs: Vec<&Descriptor> = Vec::new();
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if !blobs.iter().any(|b| b.digest == blob.digest) {
            blobs.push(blob);
        }
    }
    let jobs = client.options().jobs.max(1);
    futures::stream::iter(blobs.into_iter().map(|blob| {
        let progress = Arc::clone(progress);
        client.upload_blob(target, blob, store, source, progress)
    }))
    .buffer_unordered(jobs)
    .try_collect::<Vec<_>>()
    .await?;
    let bytes = store.read_blob(&descriptor.digest)?;
    client
        .put_manifest(target, &bytes, &descriptor.media_type, progress.as_ref())
        .await
}
