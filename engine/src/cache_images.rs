//! The container images of a ClusterImage, as layers of its registry storage: every image the
//! scan found (and every image of the archives under `images/`) becomes one layer holding the
//! docker-distribution storage files at `registry/` that the layers below lack (uncompressed
//! tar: the blobs are compressed already). An unchanged image therefore gives a byte-identical
//! layer, which registries deduplicate across ClusterImage versions, and all layers merged are
//! exactly the storage directory a stock registry serves.
//!
//! The steps, in order:
//! 1. fill a [`StorageIndex`] (`StorageIndex::new(REGISTRY_DIR)`) from the base image's layers;
//! 2. [`plan_image_layers`] and [`plan_archive_layers`] decide each image's layer against the
//!    index (and record it there, so the next image sees its blobs and tags);
//! 3. [`fetch_image_layers`] downloads the new blobs into the local store;
//! 4. [`image_layer_entries`] gives each layer's entries for `image::layer::write_layer`,
//!    whose result can be cached under [`ImageLayerPlan::key`].

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use image::archive::{self, ArchiveError};
use image::distribution::{ImageDocuments, StorageError, StorageIndex, TagCollision};
use image::layer::LayerEntry;
use image::manifest::Descriptor;
use image::progress::Progress;
use image::registry::{RegistryClient, RegistryError, download_blobs, resolve_for_storage};
use image::store::Store;
use image::{Digest, Reference};
use kubefile::plan::Platform;

use crate::cache::KeyBuilder;
use crate::metadata::{ContainerImage, ImagePlatform};

/// Where the registry storage lives in a ClusterImage's rootfs.
pub const REGISTRY_DIR: &str = "registry";

/// Changes whenever the way image layers are laid out changes, so that cached layers of an
/// older layout are not reused.
const LAYER_FORMAT: &str = "sealer-rs/registry-image-layer/v1";

/// The layer of one image, decided against the layers below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayerPlan {
    /// The image.
    pub reference: Reference,
    /// The digest of its top-level manifest or index.
    pub digest: Digest,
    /// Its documents, byte for byte.
    pub documents: ImageDocuments,
    /// The config and layer blobs the layer holds (the layers below lack them); they must be in
    /// the local store before the layer is written ([`fetch_image_layers`]).
    pub new_blobs: Vec<Descriptor>,
    /// The layer's entries, with the new blobs as files of the local store.
    pub entries: Vec<LayerEntry>,
    /// Tags of the image left to another source's image (see `image::distribution`).
    pub collisions: Vec<TagCollision>,
    /// The build cache key of the layer: a digest over a format version and every entry (path,
    /// kind, mode, owner, and the content of the small files; a blob's path names its digest),
    /// so it covers the reference, the top digest, the new blobs and the tags written. Equal
    /// keys give byte-identical layers when written with equal layer options.
    pub key: Digest,
}

/// An image that could not be resolved.
#[derive(Debug)]
pub struct ImageFailure {
    /// The image.
    pub reference: Reference,
    /// What the registry (or the way to it) said.
    pub error: RegistryError,
}

/// Why the images could not become layers.
#[derive(Debug, thiserror::Error)]
pub enum CacheImagesError {
    /// Images could not be resolved in their registries.
    #[error("{}", failures_text(.0))]
    Resolve(Vec<ImageFailure>),
    /// An image's documents do not make a valid registry storage entry.
    #[error("image {reference}: {source}")]
    Storage {
        /// The image.
        reference: String,
        /// What is wrong.
        source: StorageError,
    },
    /// Downloading the images' blobs failed.
    #[error("downloading the images' blobs failed: {0}")]
    Download(#[source] RegistryError),
    /// An archive could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Two archives hold different images under one name.
    #[error(
        "{reference} is in {} ({first_digest}) and in {} ({second_digest}) with different content; keep one of the two archives",
        first.display(),
        second.display()
    )]
    ArchiveConflict {
        /// The name.
        reference: String,
        /// The first archive.
        first: PathBuf,
        /// Its image.
        first_digest: Digest,
        /// The second archive.
        second: PathBuf,
        /// Its image.
        second_digest: Digest,
    },
    /// The directory an image is fetched into (see [`crate::fetch_to_dir`]) could not be
    /// written.
    #[error("{what} {}: {source}; check that the output directory is writable and has room", path.display())]
    Output {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A blob of a layer is not in the local store as it should be.
    #[error(
        "image {reference}: blob {digest} at {} {problem}; fetch the image layers before writing them",
        path.display()
    )]
    Blob {
        /// The image.
        reference: String,
        /// The blob.
        digest: Digest,
        /// Where the store keeps it.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

/// One line per failed image, each naming the image once.
fn failures_text(failures: &[ImageFailure]) -> String {
    let mut text = format!(
        "{} image{} could not be fetched:",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    );
    for failure in failures {
        let reference = failure.reference.to_string();
        let error = failure.error.to_string();
        if error.starts_with(&format!("{reference}: ")) {
            let _ = write!(text, "\n  {error}");
        } else {
            let _ = write!(text, "\n  {reference}: {error}");
        }
    }
    text
}

/// How images named by tag are resolved.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// Ask the registries what every tag points to now (`--pull always`). Otherwise a tag the
    /// lower layers' storage holds is taken as it is, and so are the documents in `known`,
    /// so that a rebuild needs no network.
    pub refresh: bool,
    /// Documents of earlier resolutions, by reference.
    pub known: BTreeMap<Reference, ImageDocuments>,
}

/// Decides the layers of `images` (deduplicated, in sorted order) over what `index` holds:
/// resolves every image for `platform` concurrently (`client.options().jobs` at a time) unless
/// `resolution` already knows it, then decides and records each image's layer in turn. Images
/// the index holds already are left out (and reported through `progress`); an image pinned by
/// digest that the index holds is not even resolved, nor (unless `resolution.refresh`) one
/// whose tag the index holds. Every image that cannot be resolved is named in the error.
pub async fn plan_image_layers(
    client: &RegistryClient,
    store: &Store,
    images: &[Reference],
    platform: &Platform,
    index: &mut StorageIndex,
    resolution: &Resolution,
    progress: &dyn Progress,
) -> Result<Vec<ImageLayerPlan>, CacheImagesError> {
    let mut images: Vec<&Reference> = images.iter().collect();
    images.sort();
    images.dedup();
    let (stored, to_plan): (Vec<&Reference>, Vec<&Reference>) = images
        .into_iter()
        .partition(|reference| index.holds(reference, !resolution.refresh));
    for reference in stored {
        report_stored(progress, reference);
    }
    let (known, to_resolve): (Vec<&Reference>, Vec<&Reference>) = to_plan
        .into_iter()
        .partition(|reference| !resolution.refresh && resolution.known.contains_key(reference));
    let jobs = client.options().jobs.max(1);
    let resolved: Vec<_> =
        futures::stream::iter(to_resolve.into_iter().map(|reference| async move {
            (
                reference,
                resolve_for_storage(client, reference, platform, progress).await,
            )
        }))
        .buffered(jobs)
        .collect()
        .await;
    let mut images: Vec<(Reference, ImageDocuments)> = known
        .into_iter()
        .filter_map(|reference| {
            let documents = resolution.known.get(reference)?.clone();
            Some((reference.clone(), documents))
        })
        .collect();
    let mut failures = Vec::new();
    for (reference, outcome) in resolved {
        match outcome {
            Ok(image) => images.push((image.reference, image.documents)),
            Err(error) => failures.push(ImageFailure {
                reference: reference.clone(),
                error,
            }),
        }
    }
    if !failures.is_empty() {
        return Err(CacheImagesError::Resolve(failures));
    }
    images.sort_by(|a, b| a.0.cmp(&b.0));
    let mut plans = Vec::new();
    for (reference, documents) in images {
        if index.has_image(&reference, &documents.top.digest()) {
            report_stored(progress, &reference);
            continue;
        }
        let plan = plan_layer(store, index, reference, documents)?;
        for collision in &plan.collisions {
            progress.message(&collision.to_string());
        }
        plans.push(plan);
    }
    Ok(plans)
}

/// Decides the layers of the images in `archives` (`docker save` or OCI archives), as
/// [`plan_image_layers`] does for registry images: their blobs are read into the store first.
/// Every image needs a name; one name in two archives must be the same image. The blobs are
/// not named in the store: hold [`Store::lock_shared`] until the layers are written.
pub fn plan_archive_layers(
    store: &Store,
    archives: &[PathBuf],
    index: &mut StorageIndex,
) -> Result<Vec<ImageLayerPlan>, CacheImagesError> {
    let mut found: BTreeMap<Reference, (PathBuf, ImageDocuments)> = BTreeMap::new();
    for path in archives {
        for image in archive::read_images(store, path)? {
            match found.entry(image.reference) {
                Entry::Vacant(slot) => {
                    slot.insert((path.clone(), image.documents));
                }
                Entry::Occupied(first) => {
                    let (first_path, first_documents) = first.get();
                    if first_documents.top != image.documents.top {
                        return Err(CacheImagesError::ArchiveConflict {
                            reference: first.key().to_string(),
                            first: first_path.clone(),
                            first_digest: first_documents.top.digest(),
                            second: path.clone(),
                            second_digest: image.documents.top.digest(),
                        });
                    }
                }
            }
        }
    }
    let mut plans = Vec::new();
    for (reference, (_, documents)) in found {
        if !index.has_image(&reference, &documents.top.digest()) {
            plans.push(plan_layer(store, index, reference, documents)?);
        }
    }
    Ok(plans)
}

/// What a scan found, sorted for caching: the images to fetch from registries, the image
/// archives of the rootfs, and the entries of the image's container image list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedImages {
    /// Images named outside archives, fetched from their registries.
    pub pulled: Vec<Reference>,
    /// Rootfs-relative paths of the archives images were found in, sorted, each once.
    pub archives: Vec<String>,
    /// Every image, with the app whose files name it and the platform.
    pub listed: Vec<ContainerImage>,
}

impl ScannedImages {
    /// Sorts the images of `report` (a scan of the rootfs) for `platform`.
    pub fn new(report: &scan::ScanReport, platform: &Platform) -> Self {
        let mut scanned = ScannedImages {
            pulled: Vec::new(),
            archives: Vec::new(),
            listed: Vec::new(),
        };
        let apps_prefix = format!("{}/", kubefile::plan::APPS_ROOT);
        for image in &report.images {
            let mut from_registry = false;
            let mut app_name = String::new();
            for source in &image.sources {
                if source.kind == scan::SourceKind::Archive {
                    scanned.archives.push(source.file.clone());
                } else {
                    from_registry = true;
                }
                if let Some(app) = source
                    .file
                    .strip_prefix(&apps_prefix)
                    .and_then(|rest| rest.split('/').next())
                {
                    app.clone_into(&mut app_name);
                }
            }
            if from_registry {
                scanned.pulled.push(image.reference.clone());
            }
            scanned.listed.push(ContainerImage {
                image: image.reference.to_string(),
                app_name,
                platform: ImagePlatform::from(platform),
            });
        }
        scanned.archives.sort();
        scanned.archives.dedup();
        scanned
    }
}

/// Downloads the new blobs of every plan into the store, each once, `client.options().jobs`
/// at a time; returns how many were downloaded (the others were in the store).
pub async fn fetch_image_layers(
    client: &RegistryClient,
    store: &Store,
    plans: &[ImageLayerPlan],
    progress: Arc<dyn Progress>,
) -> Result<usize, CacheImagesError> {
    let blobs = plans.iter().flat_map(|plan| {
        plan.new_blobs
            .iter()
            .map(move |blob| (&plan.reference, blob))
    });
    download_blobs(client, store, blobs, progress)
        .await
        .map_err(CacheImagesError::Download)
}

/// The entries of a planned layer, for `image::layer::write_layer` (with the storage at
/// [`REGISTRY_DIR`]), after checking that every new blob is in the store with its size.
pub fn image_layer_entries(
    store: &Store,
    plan: &ImageLayerPlan,
) -> Result<Vec<LayerEntry>, CacheImagesError> {
    for blob in &plan.new_blobs {
        let path = store.blob_path(&blob.digest);
        let problem = match fs::metadata(&path) {
            Ok(metadata) if metadata.len() == blob.size => continue,
            Ok(metadata) => format!(
                "has {} bytes, but the manifest declares {}",
                metadata.len(),
                blob.size
            ),
            Err(e) => format!("cannot be read: {e}"),
        };
        return Err(CacheImagesError::Blob {
            reference: plan.reference.to_string(),
            digest: blob.digest.clone(),
            path,
            problem,
        });
    }
    Ok(plan.entries.clone())
}

/// Decides one image's layer over `index` and records it there.
fn plan_layer(
    store: &Store,
    index: &mut StorageIndex,
    reference: Reference,
    documents: ImageDocuments,
) -> Result<ImageLayerPlan, CacheImagesError> {
    let storage_error = |source| CacheImagesError::Storage {
        reference: reference.to_string(),
        source,
    };
    let files = index
        .image_layer_entries(&reference, &documents, &|digest| {
            Some(store.blob_path(digest))
        })
        .map_err(storage_error)?;
    index
        .observe_entries(&files.entries)
        .map_err(storage_error)?;
    Ok(ImageLayerPlan {
        key: layer_key(&files.entries),
        digest: files.digest,
        documents,
        new_blobs: files.new_blobs,
        entries: files.entries,
        collisions: files.collisions,
        reference,
    })
}

/// The cache key of a layer with these entries (see [`ImageLayerPlan::key`]). Blob files are
/// named by their digest, so their name stands for their content.
fn layer_key(entries: &[LayerEntry]) -> Digest {
    let mut key = KeyBuilder::new(&Digest::of(b""), LAYER_FORMAT);
    // Naming a blob file reads nothing, so it cannot fail.
    let _ = key.entries(entries, &mut |path| {
        Ok(path
            .file_name()
            .map(|name| name.as_encoded_bytes().to_vec())
            .unwrap_or_default())
    });
    key.finish()
}

/// Reports an image the storage holds already.
fn report_stored(progress: &dyn Progress, reference: &Reference) {
    progress.message(&format!(
        "{reference}: already in the registry storage of the layers below; no layer needed"
    ));
}
