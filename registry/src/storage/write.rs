//! The write side besides uploads: cross-repository mounts, manifest pushes, and the commit
//! API of the pull-through cache (a verified blob or manifest stored under the repository
//! names the build would have written it under).

use std::fs;
use std::path::{Path, PathBuf};

use image::Digest;
use image::manifest::{Index, Manifest, is_index, is_manifest};

use super::read::is_pushable_media_type;
use super::{
    ManifestReference, RepositoryName, Storage, StorageError, V2_DIR, io_at, manifest_media_type,
};

/// Distribution's limit on the size of a pushed manifest.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The repository names a pull-through cache stores an image of `repository` under when it
/// came from the registry `ns` (such as `docker.io`): the full name with the registry first
/// and the short name, as [`image::distribution::repository_names`] gives them for the build.
/// The full name comes first, as the server looks it up first. Without `ns`, or when `ns`
/// and the repository do not form a valid reference, only the repository itself.
pub fn cache_repository_names(
    ns: Option<&str>,
    repository: &RepositoryName,
) -> Vec<RepositoryName> {
    let Some(reference) =
        ns.and_then(|ns| image::Reference::parse(&format!("{ns}/{repository}")).ok())
    else {
        return vec![repository.clone()];
    };
    let mut names: Vec<RepositoryName> = image::distribution::repository_names(&reference)
        .iter()
        .rev()
        .filter_map(|name| RepositoryName::parse(name).ok())
        .collect();
    if !names.contains(repository) {
        names.push(repository.clone());
    }
    names
}

impl Storage {
    /// Links a blob that `from` links into `to` as well (a cross-repository mount); false
    /// when `from` does not have it, so the client uploads it instead.
    pub fn mount_blob(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        match self.blob(from, digest) {
            Ok(_) => {
                self.writer.link_layer(to.as_str(), digest)?;
                Ok(true)
            }
            Err(StorageError::BlobUnknown { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Stores a pushed manifest under a tag or digest, after the checks distribution makes:
    /// a known media type (from `Content-Type`, else the document) that agrees with the
    /// document's `mediaType`, the digest when pushed by digest, and every blob (for a
    /// manifest) or child manifest (for an index) already in the repository. Returns the
    /// manifest's digest.
    pub fn put_manifest(
        &self,
        repository: &RepositoryName,
        reference: &ManifestReference,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<Digest, StorageError> {
        let invalid = |reason: String| StorageError::ManifestInvalid { reason };
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(invalid(format!(
                "the manifest has {} bytes, more than the {MAX_MANIFEST_BYTES} accepted",
                bytes.len()
            )));
        }
        let declared = content_type
            .map(|value| value.split(';').next().unwrap_or_default().trim())
            .filter(|value| is_pushable_media_type(value));
        let document = manifest_media_type(bytes).ok_or_else(|| {
            invalid("the body is not a JSON manifest with a schemaVersion".to_owned())
        })?;
        let media_type = declared.map_or(document.clone(), str::to_owned);
        if !is_pushable_media_type(&media_type) {
            return Err(invalid(format!(
                "media type `{media_type}` is not accepted; push a Docker schema 2 or OCI manifest or index"
            )));
        }
        if document != media_type && has_media_type_field(bytes) {
            return Err(invalid(format!(
                "the Content-Type says `{media_type}`, but the document's mediaType says `{document}`"
            )));
        }
        let digest = Digest::of(bytes);
        if let ManifestReference::Digest(named) = reference
            && *named != digest
        {
            return Err(StorageError::DigestMismatch {
                expected: named.clone(),
                actual: digest,
            });
        }
        self.check_references(repository, &media_type, bytes)?;
        self.store_manifest(repository, reference, bytes, &digest)?;
        Ok(digest)
    }

    /// Checks that every blob or child manifest a manifest references is in the repository.
    fn check_references(
        &self,
        repository: &RepositoryName,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), StorageError> {
        let invalid = |e: serde_json::Error| StorageError::ManifestInvalid {
            reason: format!("the document is not a valid {media_type}: {e}"),
        };
        let missing = |digest: &Digest| StorageError::ManifestBlobUnknown {
            repository: repository.clone(),
            digest: digest.clone(),
        };
        if is_manifest(media_type) {
            let manifest: Manifest = serde_json::from_slice(bytes).map_err(invalid)?;
            if !self.blob_present(repository, &manifest.config.digest)? {
                return Err(missing(&manifest.config.digest));
            }
            for layer in &manifest.layers {
                // Foreign layers (with URLs) may live elsewhere, as distribution allows.
                if layer.urls.is_empty() && !self.blob_present(repository, &layer.digest)? {
                    return Err(missing(&layer.digest));
                }
            }
        } else if is_index(media_type) {
            let index: Index = serde_json::from_slice(bytes).map_err(invalid)?;
            for child in &index.manifests {
                if !self.has_revision(repository, &child.digest)? {
                    return Err(missing(&child.digest));
                }
            }
        }
        Ok(())
    }

    fn blob_present(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        match self.blob(repository, digest) {
            Ok(_) => Ok(true),
            Err(StorageError::BlobUnknown { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Writes the manifest blob atomically, links the revision and moves the tag.
    fn store_manifest(
        &self,
        repository: &RepositoryName,
        reference: &ManifestReference,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<(), StorageError> {
        let blob = self.blob_data(digest);
        self.writer
            .write_blob(digest, bytes)
            .map_err(io_at(&blob))?;
        self.writer.link_revision(repository.as_str(), digest)?;
        if let ManifestReference::Tag(tag) = reference {
            self.writer.set_tag(repository.as_str(), tag, digest)?;
        }
        Ok(())
    }

    /// A directory on the storage's filesystem for downloads that [`Storage::commit_blob`]
    /// will rename into place (`docker/registry/v2/_staging`, which distribution ignores);
    /// created when missing.
    pub fn staging_dir(&self) -> Result<PathBuf, StorageError> {
        let dir = self.root.join(V2_DIR).join("_staging");
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        Ok(dir)
    }

    /// Stores a blob from a file whose content the caller verified to have `digest` (a
    /// pull-through download in [`Storage::staging_dir`]): renames it into place and links it
    /// into each repository. Returns its size.
    pub fn commit_blob(
        &self,
        repositories: &[RepositoryName],
        digest: &Digest,
        verified_file: &Path,
    ) -> Result<u64, StorageError> {
        let size = self
            .writer
            .adopt_blob_file(digest, verified_file)
            .map_err(io_at(verified_file))?;
        for repository in repositories {
            self.writer.link_layer(repository.as_str(), digest)?;
        }
        Ok(size)
    }

    /// Links a blob the storage holds into each repository (a blob another request of the
    /// pull-through cache stored for other repositories).
    pub fn link_blob(
        &self,
        repositories: &[RepositoryName],
        digest: &Digest,
    ) -> Result<(), StorageError> {
        if let Some(repository) = repositories.first()
            && !self.writer.has_blob(digest)
        {
            return Err(StorageError::BlobUnknown {
                repository: repository.clone(),
                digest: digest.clone(),
            });
        }
        for repository in repositories {
            self.writer.link_layer(repository.as_str(), digest)?;
        }
        Ok(())
    }

    /// Stores a manifest or index fetched by the pull-through cache under each repository,
    /// and when given, the tag it was fetched for. The bytes must have `digest`. Unlike a
    /// push, the blobs it references need not be stored yet: they are fetched when asked for.
    pub fn commit_manifest(
        &self,
        repositories: &[RepositoryName],
        tag: Option<&str>,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<(), StorageError> {
        let actual = Digest::of(bytes);
        if actual != *digest {
            return Err(StorageError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        let reference = match tag {
            Some(tag) if super::is_valid_tag(tag) => ManifestReference::Tag(tag.to_owned()),
            Some(tag) => {
                return Err(StorageError::TagInvalid {
                    tag: tag.to_owned(),
                });
            }
            None => ManifestReference::Digest(digest.clone()),
        };
        for repository in repositories {
            self.store_manifest(repository, &reference, bytes, digest)?;
        }
        Ok(())
    }
}

/// True when the document has a non-empty `mediaType` field.
fn has_media_type_field(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Field {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Field>(bytes)
        .ok()
        .and_then(|field| field.media_type)
        .is_some_and(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> RepositoryName {
        RepositoryName::parse(text).unwrap()
    }

    #[test]
    fn cache_names_put_the_full_name_first() {
        let names = cache_repository_names(Some("docker.io"), &name("library/nginx"));
        assert_eq!(
            names,
            [name("docker.io/library/nginx"), name("library/nginx")]
        );
        let names = cache_repository_names(Some("localhost:5000"), &name("team/app"));
        assert_eq!(names, [name("localhost_5000/team/app"), name("team/app")]);
        assert_eq!(
            cache_repository_names(None, &name("pause")),
            [name("pause")]
        );
        assert_eq!(
            cache_repository_names(Some("not a host"), &name("pause")),
            [name("pause")]
        );
    }

    fn push_blob(storage: &Storage, repository: &RepositoryName, bytes: &[u8]) -> Digest {
        let upload = storage.start_upload(repository).unwrap();
        fs::write(&upload.data, bytes).unwrap();
        let digest = Digest::of(bytes);
        storage
            .complete_upload(repository, &upload.id, &digest)
            .unwrap();
        digest
    }

    fn manifest_of(config: &Digest, layer: &Digest) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": image::manifest::OCI_MANIFEST,
            "config": {"mediaType": image::manifest::OCI_CONFIG, "digest": config, "size": 2},
            "layers": [{"mediaType": image::manifest::OCI_LAYER_GZIP, "digest": layer, "size": 5}],
        }))
        .unwrap()
    }

    #[test]
    fn a_manifest_push_needs_its_blobs_and_moves_the_tag() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path());
        let repository = name("app");
        let config = push_blob(&storage, &repository, b"{}");
        let layer = Digest::of(b"layer");
        let manifest = manifest_of(&config, &layer);
        let tag = ManifestReference::Tag("v1".into());
        let error = storage
            .put_manifest(&repository, &tag, None, &manifest)
            .unwrap_err();
        assert!(
            matches!(&error, StorageError::ManifestBlobUnknown { digest, .. } if *digest == layer),
            "{error}"
        );
        assert!(storage.resolve_tag(&repository, "v1").is_err());
        push_blob(&storage, &repository, b"layer");
        let digest = storage
            .put_manifest(
                &repository,
                &tag,
                Some(image::manifest::OCI_MANIFEST),
                &manifest,
            )
            .unwrap();
        assert_eq!(storage.resolve_tag(&repository, "v1").unwrap(), digest);
        let stored = storage.manifest(&repository, &digest).unwrap();
        assert_eq!(stored.bytes, manifest);
        assert_eq!(stored.media_type, image::manifest::OCI_MANIFEST);
        assert_eq!(storage.tags(&repository).unwrap(), ["v1"]);
        assert_eq!(storage.catalog().unwrap(), ["app"]);
        // Published in a second repository by mounting the blobs.
        let other = name("other/app");
        assert!(storage.mount_blob(&repository, &other, &config).unwrap());
        assert!(storage.mount_blob(&repository, &other, &layer).unwrap());
        assert!(
            !storage
                .mount_blob(&other, &repository, &Digest::of(b"x"))
                .unwrap()
        );
        let by_digest = ManifestReference::Digest(digest.clone());
        storage
            .put_manifest(&other, &by_digest, None, &manifest)
            .unwrap();
        assert!(storage.has_revision(&other, &digest).unwrap());
        assert_eq!(storage.catalog().unwrap(), ["app", "other/app"]);
    }

    #[test]
    fn manifest_pushes_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path());
        let repository = name("app");
        let config = push_blob(&storage, &repository, b"{}");
        let layer = push_blob(&storage, &repository, b"layer");
        let manifest = manifest_of(&config, &layer);
        let wrong_digest = ManifestReference::Digest(Digest::of(b"other"));
        assert!(matches!(
            storage.put_manifest(&repository, &wrong_digest, None, &manifest),
            Err(StorageError::DigestMismatch { .. })
        ));
        let tag = ManifestReference::Tag("v1".into());
        let error = storage
            .put_manifest(
                &repository,
                &tag,
                Some(image::manifest::DOCKER_MANIFEST),
                &manifest,
            )
            .unwrap_err();
        assert!(error.to_string().contains("mediaType says"), "{error}");
        assert!(matches!(
            storage.put_manifest(&repository, &tag, None, b"[]"),
            Err(StorageError::ManifestInvalid { .. })
        ));
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": image::manifest::OCI_MANIFEST, "digest": Digest::of(&manifest), "size": manifest.len()}],
        }))
        .unwrap();
        assert!(matches!(
            storage.put_manifest(&repository, &tag, None, &index),
            Err(StorageError::ManifestBlobUnknown { .. })
        ));
        storage
            .put_manifest(
                &repository,
                &ManifestReference::Tag("child".into()),
                None,
                &manifest,
            )
            .unwrap();
        let digest = storage
            .put_manifest(&repository, &tag, None, &index)
            .unwrap();
        assert_eq!(
            storage.manifest(&repository, &digest).unwrap().media_type,
            image::manifest::OCI_INDEX
        );
        assert!(storage.tags(&name("missing")).is_err());
    }

    #[test]
    fn the_cache_commits_blobs_and_manifests_under_every_name() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path());
        let names = cache_repository_names(Some("quay.io"), &name("a/b"));
        let staged = storage.staging_dir().unwrap().join("download");
        fs::write(&staged, b"layer").unwrap();
        let layer = Digest::of(b"layer");
        assert_eq!(storage.commit_blob(&names, &layer, &staged).unwrap(), 5);
        assert!(!staged.exists());
        let config = Digest::of(b"{}");
        let manifest = manifest_of(&config, &layer);
        let digest = Digest::of(&manifest);
        assert!(matches!(
            storage.commit_manifest(&names, Some("v1"), b"tampered", &digest),
            Err(StorageError::DigestMismatch { .. })
        ));
        storage
            .commit_manifest(&names, Some("v1"), &manifest, &digest)
            .unwrap();
        for repository in &names {
            assert_eq!(storage.resolve_tag(repository, "v1").unwrap(), digest);
            assert_eq!(storage.blob(repository, &layer).unwrap().size, 5);
        }
        assert_eq!(storage.catalog().unwrap(), ["a/b", "quay.io/a/b"]);
    }
}
