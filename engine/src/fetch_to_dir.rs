//! The exec-step side of image caching in a BuildKit build: one image (or every image of an
//! archive) fetched into a plain output directory, which the frontend then lays out as the
//! image's registry storage layer with file operations.
//!
//! The output directory holds:
//! - `blobs/sha256/<hex>`: every config and layer blob of the image's selected manifests, and
//!   the bytes of its documents (the top-level manifest or index, and for an index the
//!   children kept), each verified against its digest;
//! - `documents.json`: a [`FetchedImages`], naming each image's documents by media type and
//!   digest.
//!
//! A reader rebuilds each image's [`ImageDocuments`] with [`FetchedImage::documents`] and
//! gives them to `StorageIndex::image_layer_entries`, with `/blobs/sha256/<hex>` (see
//! [`blob_path`]) as the source of each new blob: the entries are those the engine's own
//! [`crate::cache_images`] plan gives for the same image.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::archive::{self, ArchiveError, ArchiveImage};
use image::distribution::{Document, ImageDocuments};
use image::progress::Progress;
use image::registry::{RegistryClient, download_blobs, resolve_for_storage};
use image::store::Store;
use image::{Digest, Reference};
use kubefile::plan::Platform;
use serde::{Deserialize, Serialize};

use crate::cache_images::{CacheImagesError, ImageFailure};

/// The index file of an output directory.
pub const DOCUMENTS_FILE: &str = "documents.json";
/// The blobs of an output directory, named by the hex of their sha256 digest.
pub const BLOBS_DIR: &str = "blobs/sha256";

/// A document of an image, stored as a blob of the output directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRef {
    /// The media type the registry (or archive) gave it.
    pub media_type: String,
    /// The digest of its bytes.
    pub digest: Digest,
}

/// One image of an output directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedImage {
    /// The full reference (`docker.io/library/nginx:1.25`).
    pub reference: String,
    /// Its manifest or index.
    pub top: DocumentRef,
    /// For an index, the child manifests kept; empty for a manifest.
    pub children: Vec<DocumentRef>,
}

/// The content of `documents.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedImages {
    /// The images, sorted by reference.
    pub images: Vec<FetchedImage>,
}

impl FetchedImage {
    fn new(reference: &Reference, documents: &ImageDocuments) -> Self {
        let named = |document: &Document| DocumentRef {
            media_type: document.media_type.clone(),
            digest: document.digest(),
        };
        FetchedImage {
            reference: reference.to_string(),
            top: named(&documents.top),
            children: documents.children.iter().map(named).collect(),
        }
    }

    /// The image's documents, read with `read_blob` (a file read, or a read over the
    /// gateway); bytes that do not match their digest are an `InvalidData` error.
    pub fn documents(
        &self,
        read_blob: impl Fn(&Digest) -> io::Result<Vec<u8>>,
    ) -> io::Result<ImageDocuments> {
        let read = |named: &DocumentRef| -> io::Result<Document> {
            let bytes = read_blob(&named.digest)?;
            let actual = Digest::of(&bytes);
            if actual != named.digest {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "document {} of {} hashes to {actual}: the fetched blob is damaged; fetch the image again",
                        named.digest, self.reference
                    ),
                ));
            }
            Ok(Document::new(named.media_type.clone(), bytes))
        };
        Ok(ImageDocuments {
            top: read(&self.top)?,
            children: self.children.iter().map(read).collect::<io::Result<_>>()?,
        })
    }
}

/// Where the blob `digest` is in the output directory `out`.
pub fn blob_path(out: &Path, digest: &Digest) -> PathBuf {
    out.join(BLOBS_DIR).join(digest.hex())
}

/// Fetches `reference` for `platform` into `out` as the engine resolves it for the registry
/// storage (through the client's mirror of its registry): its config and layer blobs, its
/// documents, and a `documents.json` naming it. Every download is verified; nothing else
/// stays in `out`.
pub async fn fetch_image_to_dir(
    client: &RegistryClient,
    reference: &Reference,
    platform: &Platform,
    out: &Path,
    progress: Arc<dyn Progress>,
) -> Result<FetchedImage, CacheImagesError> {
    let resolved = resolve_for_storage(client, reference, platform, progress.as_ref())
        .await
        .map_err(|error| {
            CacheImagesError::Resolve(vec![ImageFailure {
                reference: reference.clone(),
                error,
            }])
        })?;
    let (_scratch, store) = scratch_store(out)?;
    let blobs = resolved
        .blobs
        .iter()
        .map(|blob| (&resolved.reference, blob));
    download_blobs(client, &store, blobs, progress)
        .await
        .map_err(CacheImagesError::Download)?;
    for blob in &resolved.blobs {
        move_blob(&store, &blob.digest, out)?;
    }
    write_documents(&resolved.documents, out)?;
    let fetched = FetchedImage::new(&resolved.reference, &resolved.documents);
    write_index(out, std::slice::from_ref(&fetched))?;
    Ok(fetched)
}

/// Fetches every image of the archive (`docker save` or OCI, read as the engine reads the
/// archives under `images/`) into `out`, with all its manifests, as
/// [`fetch_image_to_dir`] does; returns them sorted by reference. An image without a name is
/// an error, and so is one name given to two different images.
pub fn fetch_archive_to_dir(
    archive: &Path,
    out: &Path,
) -> Result<Vec<FetchedImage>, CacheImagesError> {
    let (_scratch, store) = scratch_store(out)?;
    let mut found: BTreeMap<Reference, ArchiveImage> = BTreeMap::new();
    for image in archive::read_images(&store, archive)? {
        match found.entry(image.reference.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(image);
            }
            Entry::Occupied(first) if first.get().documents.top != image.documents.top => {
                return Err(ArchiveError::Invalid {
                    path: archive.display().to_string(),
                    reason: format!(
                        "it holds two different images named {} ({} and {}); save only one of them under that name",
                        first.key(),
                        first.get().documents.top.digest(),
                        image.documents.top.digest()
                    ),
                }
                .into());
            }
            Entry::Occupied(_) => {}
        }
    }
    let blobs: std::collections::BTreeSet<&Digest> = found
        .values()
        .flat_map(|image| image.blobs.iter().map(|blob| &blob.digest))
        .collect();
    for digest in blobs {
        move_blob(&store, digest, out)?;
    }
    let mut fetched = Vec::new();
    for (reference, image) in &found {
        write_documents(&image.documents, out)?;
        fetched.push(FetchedImage::new(reference, &image.documents));
    }
    write_index(out, &fetched)?;
    Ok(fetched)
}

/// A store in a temporary directory of `out` (so that its verified blobs move into place by
/// renaming), after creating `out`'s blob directory.
fn scratch_store(out: &Path) -> Result<(tempfile::TempDir, Store), CacheImagesError> {
    let blobs = out.join(BLOBS_DIR);
    fs::create_dir_all(&blobs).map_err(output_error("creating", &blobs))?;
    let scratch = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(out)
        .map_err(output_error("creating a temporary directory in", out))?;
    let store = Store::open(scratch.path()).map_err(|e| CacheImagesError::Output {
        what: "creating a temporary store in",
        path: scratch.path().to_owned(),
        source: io::Error::other(e),
    })?;
    Ok((scratch, store))
}

/// Moves a verified blob of the scratch store into `out`.
fn move_blob(store: &Store, digest: &Digest, out: &Path) -> Result<(), CacheImagesError> {
    let target = blob_path(out, digest);
    fs::rename(store.blob_path(digest), &target).map_err(output_error("writing", &target))
}

/// Writes the bytes of an image's documents as blobs of `out`.
fn write_documents(documents: &ImageDocuments, out: &Path) -> Result<(), CacheImagesError> {
    for document in std::iter::once(&documents.top).chain(&documents.children) {
        let target = blob_path(out, &document.digest());
        fs::write(&target, &document.bytes).map_err(output_error("writing", &target))?;
    }
    Ok(())
}

/// Writes `documents.json`.
fn write_index(out: &Path, images: &[FetchedImage]) -> Result<(), CacheImagesError> {
    let target = out.join(DOCUMENTS_FILE);
    let index = FetchedImages {
        images: images.to_vec(),
    };
    let bytes = serde_json::to_vec(&index).map_err(|e| CacheImagesError::Output {
        what: "writing",
        path: target.clone(),
        source: io::Error::other(e),
    })?;
    fs::write(&target, bytes).map_err(output_error("writing", &target))
}

fn output_error<'p>(
    what: &'static str,
    path: &'p Path,
) -> impl FnOnce(io::Error) -> CacheImagesError + 'p {
    move |source| CacheImagesError::Output {
        what,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use image::manifest::{OCI_INDEX, OCI_MANIFEST};

    use super::*;

    fn documents() -> ImageDocuments {
        ImageDocuments {
            top: Document::new(OCI_INDEX, br#"{"schemaVersion":2,"manifests":[]}"#.to_vec()),
            children: vec![Document::new(OCI_MANIFEST, b"{\"child\":1}".to_vec())],
        }
    }

    #[test]
    fn documents_round_trip_through_their_json_and_blobs() {
        let reference = Reference::parse("nginx:1.25").unwrap();
        let fetched = FetchedImage::new(&reference, &documents());
        assert_eq!(fetched.reference, "docker.io/library/nginx:1.25");
        assert_eq!(fetched.children[0].media_type, OCI_MANIFEST);
        let json = serde_json::to_string(&FetchedImages {
            images: vec![fetched.clone()],
        })
        .unwrap();
        assert!(
            json.contains(&format!(
                r#""top":{{"media_type":"{OCI_INDEX}","digest":"{}"}}"#,
                documents().top.digest()
            )),
            "{json}"
        );
        let read: FetchedImages = serde_json::from_str(&json).unwrap();
        assert_eq!(read.images, std::slice::from_ref(&fetched));

        let all = documents();
        let by_digest: BTreeMap<Digest, Vec<u8>> = std::iter::once(&all.top)
            .chain(&all.children)
            .map(|d| (d.digest(), d.bytes.clone()))
            .collect();
        let rebuilt = fetched
            .documents(|digest| {
                by_digest
                    .get(digest)
                    .cloned()
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
            })
            .unwrap();
        assert_eq!(rebuilt, documents());
    }

    #[test]
    fn damaged_or_missing_documents_are_errors() {
        let reference = Reference::parse("nginx:1.25").unwrap();
        let fetched = FetchedImage::new(&reference, &documents());
        let error = fetched.documents(|_| Ok(b"other".to_vec())).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error.to_string().contains("docker.io/library/nginx:1.25"),
            "{error}"
        );
        let error = fetched
            .documents(|_| Err(io::Error::from(io::ErrorKind::NotFound)))
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn an_unreadable_archive_is_an_error_naming_it_and_leaves_no_scratch() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("broken.tar");
        fs::write(&archive, b"not a tar archive").unwrap();
        let out = dir.path().join("out");
        let message = fetch_archive_to_dir(&archive, &out)
            .unwrap_err()
            .to_string();
        assert!(message.contains("broken.tar"), "{message}");
        let left: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["blobs"]);
    }
}
