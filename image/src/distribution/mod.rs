//! The registry storage writer: puts images into docker-distribution's v2 storage layout under
//! a root directory, so that a stock `docker-registry` (distribution 2.x, filesystem driver with
//! that root as `rootdirectory`) serves them unchanged. This is the registry directory a
//! ClusterImage carries.
//!
//! # Layout
//!
//! Under `<root>/docker/registry/v2/`:
//!
//! - `blobs/sha256/<first two hex>/<hex>/data`: every layer, config, manifest and index;
//! - `repositories/<repo>/_layers/sha256/<hex>/link`: each layer and config blob of the repo;
//! - `repositories/<repo>/_manifests/revisions/sha256/<hex>/link`: each manifest and index;
//! - `repositories/<repo>/_manifests/tags/<tag>/current/link` and
//!   `.../tags/<tag>/index/sha256/<hex>/link`: the tag;
//! - `repositories/<repo>/_manifests/tags/<tag>/source`: this writer's marker, the full
//!   reference the tag was written for (distribution ignores files it does not know).
//!
//! Link files hold `sha256:<hex>` without a newline. Manifest and index bytes are stored
//! exactly as given, never re-serialized, so every digest stays the one the source registry
//! published. For a multi-arch image the original index is stored (`repo@<index digest>`
//! resolves) with the child manifests of the selected platforms; the other children are
//! absent. Every file appears atomically (temporary file, fsync, rename): a failed or
//! interrupted write never leaves a partial blob or link in place.
//!
//! # Repository names
//!
//! Each image is written under two repository names (see [`repository_names`]):
//!
//! 1. the **short name**, the path without its registry: `docker.io/library/nginx` →
//!    `library/nginx`, `quay.io/a/b` → `a/b`, `registry.k8s.io/pause` → `pause`. This is what
//!    the original tool wrote and what clients of the cluster registry ask for: containerd's
//!    mirror requests `/v2/library/nginx/...?ns=docker.io`, and kubeadm with
//!    `imageRepository: sea.hub:5000` pulls `sea.hub:5000/pause`.
//! 2. the **full name**, with the registry as first path component: `docker.io/library/nginx`,
//!    `quay.io/a/b`. Two registries that serve the same path never collide there. A port
//!    becomes `_` (`localhost:5000/x` → `localhost_5000/x`, unambiguous since host names have
//!    no `_`) and the host is lower-cased, as distribution requires; a registry written as an
//!    IPv6 literal, or a full name longer than distribution's 255 characters, gets the short
//!    name only.
//!
//! Layer links and revisions are written under both names, so a digest reference resolves in
//! either. A tag is only moved when it is new, already points to the same manifest, or was
//! written for the same full reference (per its `source` marker). Otherwise — typically the
//! same short name from two registries, such as `docker.io/library/nginx:1` and
//! `quay.io/library/nginx:1` — the existing tag is kept and the clash is reported in
//! [`AddedImage::collisions`]; the caller decides whether that is an error.
//!
//! # As layers
//!
//! The files of an image are decided in one place, against what the storage already holds,
//! and then either written into a directory ([`RegistryStorage::add_image`]) or turned into
//! the entries of one layer per image ([`StorageIndex::image_layer_entries`]), which holds only
//! the blobs that the lower layers lack. The merged filesystem of such layers is the same
//! storage directory `add_image` would have written.

mod files;
mod index;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::{Digest, HashingWriter};
use crate::reference::Reference;

pub use files::blob_data_path;
use files::{ImageBlob, ImageFiles, StoredContent, TagState, tag_dir_path};
pub use index::{ImageLayerFiles, StorageIndex};

/// The storage layout's directory under the root.
const V2_DIR: &str = "docker/registry/v2";
/// Distribution's limit on the length of a repository name.
const MAX_REPOSITORY_NAME_LEN: usize = 255;
/// The marker file in a tag directory that names the reference the tag was written for.
const SOURCE_MARKER: &str = "source";

/// A docker-distribution v2 storage directory being written.
#[derive(Debug, Clone)]
pub struct RegistryStorage {
    root: PathBuf,
}

/// Where the blobs of an image come from (a local store, a registry download, ...).
pub trait BlobSource {
    /// The content of the blob with this digest.
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + '_>>;
}

/// A manifest or index document: its media type and its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The media type, as the registry served it.
    pub media_type: String,
    /// The bytes, as the registry served them.
    pub bytes: Vec<u8>,
}

impl Document {
    /// A document of a media type.
    pub fn new(media_type: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Document {
            media_type: media_type.into(),
            bytes: bytes.into(),
        }
    }

    /// The digest of the bytes.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.bytes)
    }
}

/// The documents of one image: the top-level manifest or index, and for an index the child
/// manifests to keep (the selected platforms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDocuments {
    /// The manifest or index the reference resolves to.
    pub top: Document,
    /// For an index, the child manifests to store; empty for a manifest.
    pub children: Vec<Document>,
}

/// What [`RegistryStorage::add_image`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedImage {
    /// The digest of the top-level manifest or index.
    pub digest: Digest,
    /// The repository names the image was written under.
    pub repositories: Vec<String>,
    /// Blobs (layers, configs, manifests, indexes) that were not stored before.
    pub blobs_written: usize,
    /// Their total size.
    pub bytes_written: u64,
    /// Tags that were kept because they point to another image from another source.
    pub collisions: Vec<TagCollision>,
}

/// A tag that already points to a different image written for another reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCollision {
    /// The repository name, such as `library/nginx`.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The manifest or index the tag keeps pointing to.
    pub existing: Digest,
    /// The reference the existing tag was written for, when its marker says so.
    pub existing_source: Option<String>,
    /// The reference being added.
    pub rejected_source: String,
    /// The digest being added.
    pub rejected: Digest,
}

impl fmt::Display for TagCollision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} keeps {} from {}; {} ({}) is not tagged there",
            self.repository,
            self.tag,
            self.existing,
            self.existing_source
                .as_deref()
                .unwrap_or("an unknown source"),
            self.rejected_source,
            self.rejected
        )
    }
}

/// A tag found in the storage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredTag {
    /// The repository name.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The manifest or index it points to.
    pub digest: Digest,
}

/// Why an image could not be added.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The reference names a digest that the top-level document does not have.
    #[error("{reference} is pinned to {pinned}, but the document given has digest {actual}")]
    PinnedDigestMismatch {
        /// The reference being added.
        reference: String,
        /// Its digest.
        pinned: Digest,
        /// The digest of the top-level document.
        actual: Digest,
    },
    /// A document is neither an image manifest nor an index where one was expected.
    #[error("{digest}: media type `{media_type}` is not {expected}")]
    UnsupportedMediaType {
        /// The document's digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
        /// What was expected there.
        expected: &'static str,
    },
    /// A document does not parse as its media type says.
    #[error("{digest} is not a valid {media_type} document: {reason}")]
    InvalidDocument {
        /// The document's digest.
        digest: Digest,
        /// Its declared media type.
        media_type: String,
        /// What is wrong.
        reason: String,
    },
    /// A child manifest was given that the index does not list.
    #[error("the manifest {child} is not listed in the index {index}")]
    ChildNotInIndex {
        /// The index.
        index: Digest,
        /// The child.
        child: Digest,
    },
    /// An index came without any child manifest, so no platform could be pulled.
    #[error("the index {index} comes without any child manifest to store")]
    IndexWithoutChildren {
        /// The index.
        index: Digest,
    },
    /// Child manifests were given with a single-image manifest.
    #[error("{manifest} is an image manifest, but child manifests were given with it")]
    ChildrenOfManifest {
        /// The manifest.
        manifest: Digest,
    },
    /// A blob's size differs from the size its manifest declares.
    #[error("blob {digest} has {actual} bytes, but the manifest {manifest} declares {expected}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The manifest that declares it.
        manifest: Digest,
        /// The declared size.
        expected: u64,
        /// The stored size.
        actual: u64,
    },
    /// The blob source could not provide a blob.
    #[error("cannot open blob {digest} from the blob source: {source}")]
    Source {
        /// The blob.
        digest: Digest,
        /// The source's error.
        source: io::Error,
    },
    /// Storing a blob failed; the message names the digest.
    #[error(transparent)]
    Blob(io::Error),
    /// Reading or writing a file of the layout failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// The repository names an image is written under: the short name (the path without its
/// registry) and, when distribution accepts it, the full name with the registry as first path
/// component (see the module documentation).
pub fn repository_names(reference: &Reference) -> Vec<String> {
    let short = reference.repository().to_owned();
    let registry = reference.registry();
    if registry.starts_with('[') {
        return vec![short];
    }
    let full = format!(
        "{}/{short}",
        registry.to_ascii_lowercase().replace(':', "_")
    );
    if full.len() > MAX_REPOSITORY_NAME_LEN {
        vec![short]
    } else {
        vec![short, full]
    }
}

impl RegistryStorage {
    /// A storage rooted at `root` (the registry's `rootdirectory`); nothing is created until
    /// something is written.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RegistryStorage { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when the blob's data file exists.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores a blob from `content`, verifying its digest on the way; returns its size. The
    /// bytes go to a temporary file in the same filesystem, which is fsynced and renamed into
    /// place only when the digest matches: a reader never sees a partial blob, and a mismatch
    /// leaves nothing behind. An existing blob is replaced by the same content.
    pub fn write_blob(&self, digest: &Digest, mut content: impl Read) -> io::Result<u64> {
        let naming = |e: io::Error| io::Error::new(e.kind(), format!("storing blob {digest}: {e}"));
        let staging_dir = self.root.join(V2_DIR).join("blobs/sha256");
        fs::create_dir_all(&staging_dir).map_err(naming)?;
        let mut partial = PartialFile::create(&staging_dir, digest.hex()).map_err(naming)?;
        let mut writer = HashingWriter::new(&mut partial.file);
        io::copy(&mut content, &mut writer).map_err(naming)?;
        let (_, actual, len) = writer.finish();
        if actual != *digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {digest} does not match its content: the {len} bytes read have digest {actual}"
                ),
            ));
        }
        partial.persist(&self.blob_path(digest)).map_err(naming)?;
        Ok(len)
    }

    /// Moves `file`, whose content the caller has verified to have `digest` (while
    /// downloading or receiving it), into place as that blob; returns its size. The file must
    /// be on the storage's filesystem (under the root), as an upload or a download staged
    /// there is: it is fsynced and renamed, never copied, so the blob appears whole or not at
    /// all. An existing blob is replaced by the same content.
    pub fn adopt_blob_file(&self, digest: &Digest, file: &Path) -> io::Result<u64> {
        let naming = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("storing blob {digest} from {}: {e}", file.display()),
            )
        };
        let opened = File::options().write(true).open(file).map_err(naming)?;
        let len = opened.metadata().map_err(naming)?.len();
        persist(&opened, file, &self.blob_path(digest)).map_err(naming)?;
        Ok(len)
    }

    /// Links a layer or config blob into a repository (`_layers/sha256/<hex>/link`), so the
    /// repository serves it. `repository` must be a valid distribution repository name.
    pub fn link_layer(&self, repository: &str, digest: &Digest) -> Result<(), StorageError> {
        self.write_link(
            repository,
            &files::layer_link_path(repository, digest),
            digest,
        )
    }

    /// Links a manifest or index into a repository (`_manifests/revisions/sha256/<hex>/link`),
    /// so the repository serves it by digest. `repository` must be a valid repository name.
    pub fn link_revision(&self, repository: &str, digest: &Digest) -> Result<(), StorageError> {
        self.write_link(
            repository,
            &files::revision_link_path(repository, digest),
            digest,
        )
    }

    /// Points a tag of a repository at a manifest or index (its `current/link` and its
    /// `index/sha256/<hex>/link`, as distribution writes them); the manifest should be linked
    /// first ([`RegistryStorage::link_revision`]). `repository` must be a valid repository
    /// name and `tag` a valid tag.
    pub fn set_tag(
        &self,
        repository: &str,
        tag: &str,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        let invalid_tag = tag.is_empty() || tag.starts_with('.') || tag.contains(['/', '\\']);
        if invalid_tag {
            return Err(StorageError::Io {
                path: PathBuf::from(tag),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a valid tag"),
            });
        }
        let tag_dir = tag_dir_path(repository, tag);
        self.write_link(
            repository,
            &format!(
                "{tag_dir}/index/{}/{}/link",
                digest.algorithm(),
                digest.hex()
            ),
            digest,
        )?;
        self.write_link(repository, &format!("{tag_dir}/current/link"), digest)
    }

    /// Writes a link file under the root, after checking that the repository name cannot
    /// lead out of the repositories directory.
    fn write_link(
        &self,
        repository: &str,
        path: &str,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        let escapes = repository.is_empty()
            || repository.split('/').any(|part| {
                part.is_empty() || part == "." || part == ".." || part.starts_with('_')
            });
        if escapes || repository.len() > MAX_REPOSITORY_NAME_LEN {
            return Err(StorageError::Io {
                path: PathBuf::from(repository),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a valid repository name"),
            });
        }
        write_file(&self.root.join(path), digest.to_string().as_bytes())
    }

    /// Writes an image: its blobs (those not stored yet, read from `blobs`), its documents,
    /// and under each of [`repository_names`] the layer links, the revisions and, when the
    /// reference has a tag, the tag (unless it collides, see the module documentation).
    /// Links are written only after every blob is in place.
    pub fn add_image(
        &self,
        reference: &Reference,
        documents: &ImageDocuments,
        blobs: &dyn BlobSource,
    ) -> Result<AddedImage, StorageError> {
        let files = ImageFiles::decide(reference, documents, self)?;
        let mut added = AddedImage {
            digest: files.digest,
            repositories: files.repositories,
            blobs_written: 0,
            bytes_written: 0,
            collisions: files.collisions,
        };
        for blob in &files.blobs {
            if !blob.stored {
                let content =
                    blobs
                        .open(&blob.descriptor.digest)
                        .map_err(|source| StorageError::Source {
                            digest: blob.descriptor.digest.clone(),
                            source,
                        })?;
                let len = self
                    .write_blob(&blob.descriptor.digest, content)
                    .map_err(StorageError::Blob)?;
                added.blobs_written += 1;
                added.bytes_written += len;
            }
            self.check_blob_size(blob)?;
        }
        for document in &files.documents {
            let len = self
                .write_blob(&document.digest(), document.bytes.as_slice())
                .map_err(StorageError::Blob)?;
            added.blobs_written += 1;
            added.bytes_written += len;
        }
        for file in &files.small_files {
            write_file(&self.root.join(&file.path), &file.bytes)?;
        }
        Ok(added)
    }

    /// Every tag in the storage, sorted by repository and tag.
    pub fn list_images(&self) -> io::Result<Vec<StoredTag>> {
        let mut tags = Vec::new();
        let repositories = self.root.join(V2_DIR).join("repositories");
        if repositories.is_dir() {
            collect_tags(&repositories, "", &mut tags)?;
        }
        tags.sort();
        Ok(tags)
    }

    /// Checks that a stored blob has the size its manifest declares.
    fn check_blob_size(&self, blob: &ImageBlob) -> Result<(), StorageError> {
        let path = self.blob_path(&blob.descriptor.digest);
        let actual = fs::metadata(&path)
            .map_err(|source| StorageError::Io { path, source })?
            .len();
        if actual == blob.descriptor.size {
            Ok(())
        } else {
            Err(StorageError::SizeMismatch {
                digest: blob.descriptor.digest.clone(),
                manifest: blob.manifest.clone(),
                expected: blob.descriptor.size,
                actual,
            })
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(blob_data_path(digest))
    }
}

impl StoredContent for RegistryStorage {
    fn has_blob(&self, digest: &Digest) -> bool {
        RegistryStorage::has_blob(self, digest)
    }

    fn tag_state(&self, repository: &str, tag: &str) -> Result<TagState, StorageError> {
        let tag_dir = self.root.join(tag_dir_path(repository, tag));
        let current = read_link(&tag_dir.join("current/link"))?;
        let marker = tag_dir.join(SOURCE_MARKER);
        let source = match fs::read_to_string(&marker) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(StorageError::Io {
                    path: marker,
                    source,
                });
            }
        };
        Ok(TagState { current, source })
    }
}

/// The digest a link file holds, or `None` when there is no such file.
fn read_link(path: &Path) -> Result<Option<Digest>, StorageError> {
    match fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|e| StorageError::Io {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StorageError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes a small file atomically, unless it already has exactly these bytes.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let io_error = |source| StorageError::Io {
        path: path.to_owned(),
        source,
    };
    match fs::read(path) {
        Ok(existing) if existing == bytes => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(e)),
    }
    let dir = path.parent().expect("layout files live in a directory");
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .expect("layout file names are ASCII");
    fs::create_dir_all(dir).map_err(io_error)?;
    let mut partial = PartialFile::create(dir, file_name).map_err(io_error)?;
    partial.file.write_all(bytes).map_err(io_error)?;
    partial.persist(path).map_err(io_error)
}

/// Adds the tags of every repository under `dir` (named `prefix...`) to `tags`. Like
/// distribution, directories starting with `_` are not repository path components.
fn collect_tags(dir: &Path, prefix: &str, tags: &mut Vec<StoredTag>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('_') || !entry.file_type()?.is_dir() {
            continue;
        }
        let repository = format!("{prefix}{name}");
        let tags_dir = entry.path().join("_manifests/tags");
        if tags_dir.is_dir() {
            for tag in fs::read_dir(&tags_dir)? {
                let tag = tag?;
                let link = tag.path().join("current/link");
                if let Ok(Some(digest)) = read_link(&link) {
                    tags.push(StoredTag {
                        repository: repository.clone(),
                        tag: tag.file_name().to_string_lossy().into_owned(),
                        digest,
                    });
                }
            }
        }
        collect_tags(&entry.path(), &format!("{repository}/"), tags)?;
    }
    Ok(())
}

/// Distinguishes the temporary files of one process.
static PARTIAL_FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A hidden temporary file that becomes a layout file by [`PartialFile::persist`], and is
/// removed when dropped before that. Distribution only reads files named `data` and `link`,
/// so a leftover from a crash is never taken for content.
struct PartialFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl PartialFile {
    /// Creates `.<name>.<pid>.<n>.partial` in `dir`.
    fn create(dir: &Path, name: &str) -> io::Result<Self> {
        loop {
            let n = PARTIAL_FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{name}.{}.{n}.partial", std::process::id()));
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(PartialFile {
                        path,
                        file,
                        persisted: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Flushes the file to disk, renames it to `dest` (creating its directory) and syncs that
    /// directory.
    fn persist(mut self, dest: &Path) -> io::Result<()> {
        persist(&self.file, &self.path, dest)?;
        self.persisted = true;
        Ok(())
    }
}

/// Flushes `file` (open at `path`) to disk, renames it to `dest` (creating its directory) and
/// syncs that directory, so the file appears at `dest` whole or not at all.
fn persist(file: &File, path: &Path, dest: &Path) -> io::Result<()> {
    file.sync_all()?;
    let dir = dest.parent().expect("layout files live in a directory");
    fs::create_dir_all(dir)?;
    fs::rename(path, dest)?;
    File::open(dir)?.sync_all()
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        repository_names(&Reference::parse(text).unwrap())
    }

    #[test]
    fn short_and_full_repository_names() {
        assert_eq!(
            names("nginx:1"),
            ["library/nginx", "docker.io/library/nginx"]
        );
        assert_eq!(names("quay.io/a/b:c"), ["a/b", "quay.io/a/b"]);
        assert_eq!(
            names("registry.k8s.io/pause:3.9"),
            ["pause", "registry.k8s.io/pause"]
        );
        assert_eq!(
            names("localhost:5000/team/app:v1"),
            ["team/app", "localhost_5000/team/app"]
        );
        assert_eq!(names("Example.COM/x"), ["x", "example.com/x"]);
        assert_eq!(names("[::1]:5000/x"), ["x"]);
        // 252 characters: a valid reference, but `docker.io/` would make it too long.
        let long_path = ["abcdefghij"; 23].join("/");
        assert_eq!(names(&long_path), [long_path]);
    }

    #[test]
    fn adopted_files_and_links_appear_whole() {
        let dir = tempfile::tempdir().unwrap();
        let storage = RegistryStorage::new(dir.path());
        let staged = dir.path().join("download");
        fs::write(&staged, b"blob").unwrap();
        let digest = Digest::of(b"blob");
        assert_eq!(storage.adopt_blob_file(&digest, &staged).unwrap(), 4);
        assert!(!staged.exists());
        assert!(storage.has_blob(&digest));
        storage.link_layer("team/app", &digest).unwrap();
        storage.link_revision("team/app", &digest).unwrap();
        storage.set_tag("team/app", "v1", &digest).unwrap();
        let repo = dir.path().join(V2_DIR).join("repositories/team/app");
        let link = |path: &str| fs::read_to_string(repo.join(path)).unwrap();
        let hex = digest.hex();
        assert_eq!(
            link(&format!("_layers/sha256/{hex}/link")),
            digest.to_string()
        );
        assert_eq!(
            link(&format!("_manifests/revisions/sha256/{hex}/link")),
            digest.to_string()
        );
        assert_eq!(link("_manifests/tags/v1/current/link"), digest.to_string());
        assert_eq!(
            link(&format!("_manifests/tags/v1/index/sha256/{hex}/link")),
            digest.to_string()
        );
        assert_eq!(
            storage.list_images().unwrap(),
            [StoredTag {
                repository: "team/app".into(),
                tag: "v1".into(),
                digest: digest.clone()
            }]
        );
        for bad in ["", "../x", "a//b", "a/..", "_uploads", "/abs"] {
            assert!(storage.link_layer(bad, &digest).is_err(), "{bad:?}");
        }
        assert!(storage.set_tag("team/app", "../v1", &digest).is_err());
        assert!(
            storage
                .adopt_blob_file(&digest, &dir.path().join("missing"))
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
    }

    #[test]
    fn collision_message_names_both_sides() {
        let collision = TagCollision {
            repository: "library/nginx".into(),
            tag: "1".into(),
            existing: Digest::of(b"a"),
            existing_source: Some("docker.io/library/nginx:1".into()),
            rejected_source: "quay.io/library/nginx:1".into(),
            rejected: Digest::of(b"b"),
        };
        let text = collision.to_string();
        assert!(text.starts_with("library/nginx:1 keeps sha256:"), "{text}");
        assert!(text.contains("from docker.io/library/nginx:1"), "{text}");
        assert!(text.contains("quay.io/library/nginx:1 (sha256:"), "{text}");
    }
}
