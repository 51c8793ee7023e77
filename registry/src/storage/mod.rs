//! Access to a docker-distribution v2 storage directory (`<root>/docker/registry/v2/...`, the
//! layout `image::distribution` writes and a stock `docker-registry` serves), as the server
//! needs it: reading manifests, blobs, tags and the catalog the way distribution 2.8 does,
//! upload sessions and manifest pushes, and the commit API of the pull-through cache.
//!
//! Every name that becomes part of a path is validated first ([`RepositoryName`], tags,
//! digests, upload ids), so no request can reach a file outside the storage. Every file is
//! written to a temporary file and renamed into place only after its digest was checked (the
//! atomic writer of [`image::distribution::RegistryStorage`]), so readers never see a partial
//! blob and a killed server leaves none behind.

mod name;
mod read;
mod upload;
mod write;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use image::Digest;
use image::distribution::RegistryStorage;

pub use name::{MAX_NAME_LEN, NameError, RepositoryName, is_valid_tag, is_valid_upload_id};
pub(crate) use read::path_order;
pub use read::{BlobInfo, StoredManifest, manifest_media_type};
pub use upload::Upload;
pub use write::{MAX_MANIFEST_BYTES, cache_repository_names};

/// The storage layout's directory under the root.
const V2_DIR: &str = "docker/registry/v2";

/// A registry storage directory: `root` holds `docker/registry/v2`.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
    writer: RegistryStorage,
}

/// What a manifest request names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestReference {
    /// A tag, valid in distribution's grammar.
    Tag(String),
    /// A digest.
    Digest(Digest),
}

impl ManifestReference {
    /// A digest when the text has a `:` (and must then be a valid sha256 digest), else a tag
    /// in distribution's grammar.
    pub fn parse(text: &str) -> Result<Self, StorageError> {
        if text.contains(':') {
            text.parse()
                .map(ManifestReference::Digest)
                .map_err(|_| StorageError::DigestInvalid {
                    text: text.to_owned(),
                })
        } else if is_valid_tag(text) {
            Ok(ManifestReference::Tag(text.to_owned()))
        } else {
            Err(StorageError::TagInvalid {
                tag: text.to_owned(),
            })
        }
    }
}

impl fmt::Display for ManifestReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestReference::Tag(tag) => f.write_str(tag),
            ManifestReference::Digest(digest) => write!(f, "{digest}"),
        }
    }
}

/// What went wrong with a storage operation. Each variant maps to one of distribution's error
/// codes in the server.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The repository has no tags directory (it does not exist, or holds no tag).
    #[error("repository {repository} is not known to this registry")]
    NameUnknown {
        /// The repository.
        repository: RepositoryName,
    },
    /// No manifest for this tag or digest in the repository.
    #[error("manifest {reference} is not known in repository {repository}")]
    ManifestUnknown {
        /// The repository.
        repository: RepositoryName,
        /// The tag or digest asked for.
        reference: ManifestReference,
    },
    /// The repository does not link this blob, or its data is missing.
    #[error("blob {digest} is not known in repository {repository}")]
    BlobUnknown {
        /// The repository.
        repository: RepositoryName,
        /// The blob.
        digest: Digest,
    },
    /// No upload session with this id in the repository.
    #[error("upload {id} is not known in repository {repository}")]
    UploadUnknown {
        /// The repository.
        repository: RepositoryName,
        /// The upload id.
        id: String,
    },
    /// A text that should be a digest is not one.
    #[error("`{text}` is not a valid sha256 digest")]
    DigestInvalid {
        /// The text.
        text: String,
    },
    /// A tag outside distribution's grammar.
    #[error(
        "`{tag}` is not a valid tag (letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`)"
    )]
    TagInvalid {
        /// The tag.
        tag: String,
    },
    /// Received content does not have the digest it was sent for.
    #[error("the content received has digest {actual}, not {expected}")]
    DigestMismatch {
        /// The digest the client named.
        expected: Digest,
        /// The digest of what it sent.
        actual: Digest,
    },
    /// A pushed manifest is not a manifest this registry accepts.
    #[error("invalid manifest: {reason}")]
    ManifestInvalid {
        /// What is wrong.
        reason: String,
    },
    /// A pushed manifest references a blob or manifest the repository lacks.
    #[error(
        "the manifest references {digest}, which repository {repository} does not have; push it first"
    )]
    ManifestBlobUnknown {
        /// The repository.
        repository: RepositoryName,
        /// The missing blob or child manifest.
        digest: Digest,
    },
    /// Reading or writing a file of the storage failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl StorageError {
    /// An I/O error at `path`.
    fn io(path: &Path, source: io::Error) -> Self {
        StorageError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// An I/O error naming its path, for `map_err`.
fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::io(path, source)
}

impl From<image::distribution::StorageError> for StorageError {
    fn from(error: image::distribution::StorageError) -> Self {
        match error {
            image::distribution::StorageError::Io { path, source } => {
                StorageError::Io { path, source }
            }
            other => StorageError::Io {
                path: PathBuf::new(),
                source: io::Error::other(other.to_string()),
            },
        }
    }
}

impl Storage {
    /// The storage under `root` (the directory holding `docker/registry/v2`, distribution's
    /// `rootdirectory`). Nothing is created until something is written.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Storage {
            writer: RegistryStorage::new(root.clone()),
            root,
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks that the storage can be read: the root is a readable directory, and so is its
    /// `docker/registry/v2` when present (a registry that only receives pushes starts without
    /// one).
    pub fn check_readable(&self) -> Result<(), StorageError> {
        std::fs::read_dir(&self.root).map_err(io_at(&self.root))?;
        let v2 = self.root.join(V2_DIR);
        match std::fs::read_dir(&v2) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(&v2, e)),
        }
    }

    /// `<root>/docker/registry/v2/repositories/<repository>`.
    fn repository_dir(&self, repository: &RepositoryName) -> PathBuf {
        self.root
            .join(V2_DIR)
            .join("repositories")
            .join(repository.as_str())
    }

    /// The data file of a blob.
    fn blob_data(&self, digest: &Digest) -> PathBuf {
        self.root.join(image::distribution::blob_data_path(digest))
    }
}

/// The digest in a link file, `None` when the file does not exist or holds no digest.
fn read_link(path: &Path) -> Result<Option<Digest>, StorageError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// `sha256/<hex>/link` under a links directory.
fn link_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join(digest.algorithm()).join(digest.hex()).join("link")
}
