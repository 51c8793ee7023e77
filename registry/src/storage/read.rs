//! The read side: tags, manifests, blobs, tag lists and the catalog, as distribution 2.8
//! reads them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use image::Digest;
use image::manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};

use super::{
    ManifestReference, RepositoryName, Storage, StorageError, V2_DIR, io_at, link_path, read_link,
};

/// Docker schema 1 (signed) manifests: served as stored, never accepted in a push.
const DOCKER_MANIFEST_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// A manifest or index as stored: exact bytes, digest, media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    /// The digest of the bytes.
    pub digest: Digest,
    /// The media type, from the document (see [`manifest_media_type`]).
    pub media_type: String,
    /// The document, exactly as pushed.
    pub bytes: Vec<u8>,
}

/// A blob a repository serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Its digest.
    pub digest: Digest,
    /// Its data file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// The media type of a stored manifest, decided as distribution 2.8 does: schema version 1 is
/// Docker's signed schema 1; for schema version 2 the document's `mediaType` field, and
/// without one (allowed in OCI) an OCI index when it has `manifests`, else an OCI manifest.
/// `None` when the bytes are not such a JSON document.
pub fn manifest_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u64>,
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    let versioned: Versioned = serde_json::from_slice(bytes).ok()?;
    match (versioned.schema_version, versioned.media_type) {
        (Some(1), _) => Some(DOCKER_MANIFEST_V1_SIGNED.to_owned()),
        (_, Some(media_type)) if !media_type.is_empty() => Some(media_type),
        (Some(2), _) if versioned.manifests.is_some() => Some(OCI_INDEX.to_owned()),
        (Some(2), _) => Some(OCI_MANIFEST.to_owned()),
        _ => None,
    }
}

/// True for the media types a push may carry.
pub(super) fn is_pushable_media_type(media_type: &str) -> bool {
    matches!(
        media_type,
        DOCKER_MANIFEST | DOCKER_MANIFEST_LIST | OCI_MANIFEST | OCI_INDEX
    )
}

impl Storage {
    /// The digest a tag points to.
    pub fn resolve_tag(
        &self,
        repository: &RepositoryName,
        tag: &str,
    ) -> Result<Digest, StorageError> {
        let unknown = || StorageError::ManifestUnknown {
            repository: repository.clone(),
            reference: ManifestReference::Tag(tag.to_owned()),
        };
        if !super::is_valid_tag(tag) {
            return Err(unknown());
        }
        let link = self
            .repository_dir(repository)
            .join("_manifests/tags")
            .join(tag)
            .join("current/link");
        read_link(&link)?.ok_or_else(unknown)
    }

    /// The manifest with this digest, when the repository has it (a revision link).
    pub fn manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<StoredManifest, StorageError> {
        let unknown = || StorageError::ManifestUnknown {
            repository: repository.clone(),
            reference: ManifestReference::Digest(digest.clone()),
        };
        if !self.has_revision(repository, digest)? {
            return Err(unknown());
        }
        let path = self.blob_data(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(unknown()),
            Err(e) => return Err(StorageError::io(&path, e)),
        };
        let media_type =
            manifest_media_type(&bytes).ok_or_else(|| StorageError::ManifestInvalid {
                reason: format!(
                    "the stored manifest {digest} ({}) is not a JSON manifest with a schemaVersion",
                    path.display()
                ),
            })?;
        Ok(StoredManifest {
            digest: digest.clone(),
            media_type,
            bytes,
        })
    }

    /// The manifest a tag or digest names.
    pub fn manifest_by_reference(
        &self,
        repository: &RepositoryName,
        reference: &ManifestReference,
    ) -> Result<StoredManifest, StorageError> {
        let digest = match reference {
            ManifestReference::Tag(tag) => self.resolve_tag(repository, tag)?,
            ManifestReference::Digest(digest) => digest.clone(),
        };
        self.manifest(repository, &digest)
    }

    /// True when the repository links this manifest (`_manifests/revisions`).
    pub fn has_revision(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        let link = link_path(
            &self.repository_dir(repository).join("_manifests/revisions"),
            digest,
        );
        Ok(read_link(&link)?.is_some())
    }

    /// The blob, when the repository links it as a layer or config (`_layers`), as
    /// distribution 2.8 serves blobs: a manifest is not served as a blob through its
    /// revision link.
    pub fn blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<BlobInfo, StorageError> {
        let unknown = || StorageError::BlobUnknown {
            repository: repository.clone(),
            digest: digest.clone(),
        };
        let link = link_path(&self.repository_dir(repository).join("_layers"), digest);
        if read_link(&link)?.is_none() {
            return Err(unknown());
        }
        let path = self.blob_data(digest);
        match fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => Ok(BlobInfo {
                digest: digest.clone(),
                size: metadata.len(),
                path,
            }),
            Ok(_) => Err(unknown()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(unknown()),
            Err(e) => Err(StorageError::io(&path, e)),
        }
    }

    /// The tags of a repository, sorted.
    pub fn tags(&self, repository: &RepositoryName) -> Result<Vec<String>, StorageError> {
        let dir = self.repository_dir(repository).join("_manifests/tags");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Err(StorageError::NameUnknown {
                    repository: repository.clone(),
                });
            }
            Err(e) => return Err(StorageError::io(&dir, e)),
        };
        let mut tags = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_at(&dir))?;
            if let Some(tag) = entry.file_name().to_str()
                && entry.path().is_dir()
            {
                tags.push(tag.to_owned());
            }
        }
        tags.sort();
        Ok(tags)
    }

    /// Every repository (a directory with a `_layers` directory, as distribution's catalog
    /// finds them), sorted with `/` before every other character, as distribution compares
    /// paths.
    pub fn catalog(&self) -> Result<Vec<String>, StorageError> {
        let root = self.root.join(V2_DIR).join("repositories");
        let mut repositories = Vec::new();
        match fs::read_dir(&root) {
            Ok(_) => collect_repositories(&root, "", &mut repositories)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(&root, e)),
        }
        repositories.sort_by_cached_key(|name| path_order(name));
        Ok(repositories)
    }
}

/// The key distribution sorts repository paths by: `/` sorts before every other byte.
pub(crate) fn path_order(path: &str) -> Vec<u8> {
    path.bytes()
        .map(|b| if b == b'/' { 0 } else { b })
        .collect()
}

/// Adds every repository under `dir` (named `prefix...`) to `found`. Directories starting
/// with `_` are not path components of repositories.
fn collect_repositories(
    dir: &Path,
    prefix: &str,
    found: &mut Vec<String>,
) -> Result<(), StorageError> {
    let entries = fs::read_dir(dir).map_err(io_at(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_at(dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let is_dir = entry.file_type().map_err(io_at(dir))?.is_dir();
        if name == "_layers" && is_dir && !prefix.is_empty() {
            found.push(prefix.trim_end_matches('/').to_owned());
        } else if is_dir && !name.starts_with('_') {
            collect_repositories(&entry.path(), &format!("{prefix}{name}/"), found)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_as_distribution_decides_them() {
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#).as_deref(),
            Some(DOCKER_MANIFEST)
        );
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"config":{},"layers":[]}"#).as_deref(),
            Some(OCI_MANIFEST)
        );
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":1,"name":"x"}"#).as_deref(),
            Some(DOCKER_MANIFEST_V1_SIGNED)
        );
        assert_eq!(manifest_media_type(b"not json"), None);
        assert_eq!(manifest_media_type(b"{}"), None);
    }

    #[test]
    fn paths_sort_with_the_separator_first() {
        let mut names = vec!["a-c", "a/b", "a", "b"];
        names.sort_by_cached_key(|name| path_order(name));
        assert_eq!(names, ["a", "a/b", "a-c", "b"]);
    }
}
