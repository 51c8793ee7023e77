//! Deciding the files one image consists of in the storage, apart from writing them: the same
//! decisions become files in a directory ([`super::RegistryStorage::add_image`]) or entries of
//! a layer ([`super::StorageIndex::image_layer_entries`]).

use std::collections::BTreeSet;

use super::{
    Document, ImageDocuments, SOURCE_MARKER, StorageError, TagCollision, V2_DIR, repository_names,
};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Index, Manifest, is_index, is_manifest};
use crate::reference::Reference;

/// What the storage already holds, as far as the decisions depend on it.
pub(super) trait StoredContent {
    /// True when the blob's data file is there.
    fn has_blob(&self, digest: &Digest) -> bool;
    /// Where a tag points and who wrote it.
    fn tag_state(&self, repository: &str, tag: &str) -> Result<TagState, StorageError>;
}

/// A tag as the storage holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TagState {
    /// The digest of its `current/link`.
    pub current: Option<Digest>,
    /// The content of its `source` marker.
    pub source: Option<String>,
}

/// A config or layer blob of the image.
#[derive(Debug, Clone)]
pub(super) struct ImageBlob {
    /// The manifest that declares it.
    pub manifest: Digest,
    /// Its descriptor in that manifest.
    pub descriptor: Descriptor,
    /// True when the storage has it already.
    pub stored: bool,
}

/// A small file of the layout: a link, or a tag's source marker.
#[derive(Debug, Clone)]
pub(super) struct SmallFile {
    /// The path under the storage root.
    pub path: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// The files of one image in the storage, decided against what the storage holds, in the
/// order they are written: blobs, then documents, then links and tags (so that a link never
/// points to a missing blob).
#[derive(Debug, Clone)]
pub(super) struct ImageFiles {
    /// The digest of the top-level document.
    pub digest: Digest,
    /// The repository names the image goes under.
    pub repositories: Vec<String>,
    /// Every config and layer blob, once each.
    pub blobs: Vec<ImageBlob>,
    /// The manifests and indexes the storage lacks.
    pub documents: Vec<Document>,
    /// Layer links, revisions and tag files.
    pub small_files: Vec<SmallFile>,
    /// Tags kept where they are because another source wrote them.
    pub collisions: Vec<TagCollision>,
}

impl ImageFiles {
    /// Decides the files of an image: its blobs and documents (only those `stored` lacks),
    /// and under each of [`repository_names`] the layer links, the revisions and, when the
    /// reference has a tag, the tag files, unless the tag collides.
    pub fn decide(
        reference: &Reference,
        documents: &ImageDocuments,
        stored: &dyn StoredContent,
    ) -> Result<Self, StorageError> {
        let digest = documents.top.digest();
        if let Some(pinned) = reference.digest()
            && *pinned != digest
        {
            return Err(StorageError::PinnedDigestMismatch {
                reference: reference.to_string(),
                pinned: pinned.clone(),
                actual: digest,
            });
        }
        let mut seen = BTreeSet::new();
        let mut blobs = Vec::new();
        for (manifest_digest, manifest) in image_manifests(documents)? {
            for blob in std::iter::once(manifest.config).chain(manifest.layers) {
                if seen.insert(blob.digest.clone()) {
                    blobs.push(ImageBlob {
                        manifest: manifest_digest.clone(),
                        stored: stored.has_blob(&blob.digest),
                        descriptor: blob,
                    });
                }
            }
        }
        let revisions: Vec<&Document> = documents
            .children
            .iter()
            .chain(std::iter::once(&documents.top))
            .collect();
        let missing_documents = revisions
            .iter()
            .filter(|document| {
                let document_digest = document.digest();
                !stored.has_blob(&document_digest) && seen.insert(document_digest)
            })
            .map(|document| (*document).clone())
            .collect();

        let repositories = repository_names(reference);
        let source = reference.to_string();
        let mut small_files = Vec::new();
        let mut collisions = Vec::new();
        for repository in &repositories {
            for blob in &blobs {
                small_files.push(link_file(
                    layer_link_path(repository, &blob.descriptor.digest),
                    &blob.descriptor.digest,
                ));
            }
            for document in &revisions {
                let document_digest = document.digest();
                small_files.push(link_file(
                    revision_link_path(repository, &document_digest),
                    &document_digest,
                ));
            }
            let Some(tag) = reference.tag() else {
                continue;
            };
            let state = stored.tag_state(repository, tag)?;
            match state.current {
                Some(existing)
                    if existing != digest && state.source.as_deref() != Some(&source) =>
                {
                    collisions.push(TagCollision {
                        repository: repository.clone(),
                        tag: tag.to_owned(),
                        existing,
                        existing_source: state.source,
                        rejected_source: source.clone(),
                        rejected: digest.clone(),
                    });
                }
                current => {
                    let tag_dir = tag_dir_path(repository, tag);
                    // A marker already on this manifest keeps naming the first source.
                    if current.as_ref() != Some(&digest) || state.source.is_none() {
                        small_files.push(SmallFile {
                            path: format!("{tag_dir}/{SOURCE_MARKER}"),
                            bytes: source.clone().into_bytes(),
                        });
                    }
                    small_files.push(link_file(
                        format!("{tag_dir}/index/{}", digest_link(&digest)),
                        &digest,
                    ));
                    small_files.push(link_file(format!("{tag_dir}/current/link"), &digest));
                }
            }
        }
        Ok(ImageFiles {
            digest,
            repositories,
            blobs,
            documents: missing_documents,
            small_files,
            collisions,
        })
    }
}

/// A link file holding `digest` (without newline, as distribution writes it).
fn link_file(path: String, digest: &Digest) -> SmallFile {
    SmallFile {
        path,
        bytes: digest.to_string().into_bytes(),
    }
}

/// `sha256/<hex>/link`, the tail of every link path.
fn digest_link(digest: &Digest) -> String {
    format!("{}/{}/link", digest.algorithm(), digest.hex())
}

/// The data file of a blob, under the storage root.
pub fn blob_data_path(digest: &Digest) -> String {
    format!(
        "{V2_DIR}/blobs/{}/{}/{}/data",
        digest.algorithm(),
        &digest.hex()[..2],
        digest.hex()
    )
}

/// A repository's directory, under the storage root.
pub(super) fn repository_path(repository: &str) -> String {
    format!("{V2_DIR}/repositories/{repository}")
}

/// The link of a layer or config blob in a repository, under the storage root.
pub(super) fn layer_link_path(repository: &str, digest: &Digest) -> String {
    format!(
        "{}/_layers/{}",
        repository_path(repository),
        digest_link(digest)
    )
}

/// The link of a manifest or index in a repository, under the storage root.
pub(super) fn revision_link_path(repository: &str, digest: &Digest) -> String {
    format!(
        "{}/_manifests/revisions/{}",
        repository_path(repository),
        digest_link(digest)
    )
}

/// A tag's directory, under the storage root.
pub(super) fn tag_dir_path(repository: &str, tag: &str) -> String {
    format!("{}/_manifests/tags/{tag}", repository_path(repository))
}

/// The image manifests whose blobs are stored, with their digests: the top-level manifest,
/// or the children of an index after checking that the index lists them.
fn image_manifests(documents: &ImageDocuments) -> Result<Vec<(Digest, Manifest)>, StorageError> {
    let top = &documents.top;
    let top_digest = top.digest();
    if is_manifest(&top.media_type) {
        if !documents.children.is_empty() {
            return Err(StorageError::ChildrenOfManifest {
                manifest: top_digest,
            });
        }
        let manifest: Manifest = parse_document(top, &top_digest)?;
        return Ok(vec![(top_digest, manifest)]);
    }
    if !is_index(&top.media_type) {
        return Err(StorageError::UnsupportedMediaType {
            digest: top_digest,
            media_type: top.media_type.clone(),
            expected: "an image manifest or index",
        });
    }
    let index: Index = parse_document(top, &top_digest)?;
    if documents.children.is_empty() {
        return Err(StorageError::IndexWithoutChildren { index: top_digest });
    }
    documents
        .children
        .iter()
        .map(|child| {
            let child_digest = child.digest();
            if !is_manifest(&child.media_type) {
                return Err(StorageError::UnsupportedMediaType {
                    digest: child_digest,
                    media_type: child.media_type.clone(),
                    expected: "an image manifest",
                });
            }
            if !index.manifests.iter().any(|d| d.digest == child_digest) {
                return Err(StorageError::ChildNotInIndex {
                    index: top_digest.clone(),
                    child: child_digest,
                });
            }
            let manifest: Manifest = parse_document(child, &child_digest)?;
            Ok((child_digest, manifest))
        })
        .collect()
}

/// A manifest or index parsed from a document whose `mediaType` field, when present, agrees
/// with the declared media type (distribution decides by that field what it serves).
fn parse_document<T: serde::de::DeserializeOwned>(
    document: &Document,
    digest: &Digest,
) -> Result<T, StorageError> {
    /// The field every manifest and index may have.
    #[derive(serde::Deserialize)]
    struct MediaTypeField {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    let invalid = |reason: String| StorageError::InvalidDocument {
        digest: digest.clone(),
        media_type: document.media_type.clone(),
        reason,
    };
    let field: MediaTypeField =
        serde_json::from_slice(&document.bytes).map_err(|e| invalid(e.to_string()))?;
    if let Some(inner) = field
        .media_type
        .filter(|inner| *inner != document.media_type)
    {
        return Err(invalid(format!("its mediaType field says `{inner}`")));
    }
    serde_json::from_slice(&document.bytes).map_err(|e| invalid(e.to_string()))
}
