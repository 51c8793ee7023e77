//! The local image store: an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`) under the sealer root, where image names live in `index.json`
//! annotations.
//!
//! Guarantees:
//! - a blob becomes visible only once its bytes match its digest (written to a temporary file,
//!   hashed while written, fsynced, renamed into place);
//! - `index.json` is replaced atomically;
//! - several processes can use the store at once: writers hold a shared lock on `<root>/lock`
//!   and `prune` an exclusive one; `index.json` updates are serialized by an exclusive lock on
//!   `<root>/index.lock`;
//! - a download that stops half way leaves a `.partial` file that the next download of the
//!   same blob continues from.

mod blobs;
mod lock;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use blobs::BlobWriter;
pub use lock::StoreLock;

use crate::digest::Digest;
use crate::manifest::{
    Descriptor, Index, Manifest, OCI_INDEX, REF_NAME_ANNOTATION, is_index, is_manifest,
};
use crate::reference::Reference;

/// Annotation recording the reference an image was pulled from or tagged after, so that a push
/// to the same registry can mount blobs from that repository instead of uploading them.
pub const SOURCE_ANNOTATION: &str = "io.sealer.image.source";

/// Errors of the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Content did not match its digest.
    #[error("blob {expected} failed verification: its content hashes to {actual}")]
    DigestMismatch {
        /// The digest the content should have.
        expected: Digest,
        /// What it has.
        actual: Digest,
    },
    /// A document in the store is not valid JSON of the expected shape.
    #[error("{what} {digest} in the store is invalid: {reason}")]
    Corrupt {
        /// What kind of document.
        what: &'static str,
        /// Which one.
        digest: Digest,
        /// Why.
        reason: String,
    },
    /// No image has that name.
    #[error("image {0} is not in the local store")]
    NotFound(String),
}

/// Builds a [`StoreError::Io`].
pub(crate) fn io_error<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl FnOnce(io::Error) -> StoreError + 'p {
    move |source| StoreError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// An image the store knows by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// Its name.
    pub name: Reference,
    /// The top-level manifest or index.
    pub descriptor: Descriptor,
}

/// What `prune` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Blobs deleted.
    pub blobs: usize,
    /// Bytes freed (blobs and leftover partial downloads).
    pub bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutIndex {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// The local image store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store root used when none is given: `$SEALER_ROOT`, else `/var/lib/sealer` for root,
    /// else `$XDG_DATA_HOME/sealer` (`~/.local/share/sealer`).
    pub fn default_root() -> PathBuf {
        if let Some(root) = std::env::var_os("SEALER_ROOT").filter(|r| !r.is_empty()) {
            return PathBuf::from(root);
        }
        if is_root_user() {
            return PathBuf::from("/var/lib/sealer");
        }
        if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(data).join("sealer");
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".local/share/sealer")
    }

    /// Opens (creating when needed) the store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let store = Store { root: root.into() };
        for dir in [store.layout_dir().join("blobs/sha256"), store.tmp_dir()] {
            fs::create_dir_all(&dir).map_err(io_error("cannot create", &dir))?;
        }
        let layout = store.layout_dir().join("oci-layout");
        if !layout.exists() {
            blobs::write_atomically(
                &store.tmp_dir(),
                &layout,
                br#"{"imageLayoutVersion":"1.0.0"}"#,
            )?;
        }
        let index = store.index_path();
        if !index.exists() {
            let _lock = store.lock_index()?;
            if !index.exists() {
                store.write_index(&LayoutIndex {
                    schema_version: 2,
                    media_type: Some(OCI_INDEX.to_owned()),
                    manifests: Vec::new(),
                })?;
            }
        }
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The OCI layout directory (readable by any OCI tool).
    pub fn layout_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn index_path(&self) -> PathBuf {
        self.layout_dir().join("index.json")
    }

    /// Takes the shared lock: many holders at once, none while `prune` runs.
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        StoreLock::shared(&self.root.join("lock"))
    }

    /// Takes the exclusive lock.
    pub fn lock_exclusive(&self) -> Result<StoreLock, StoreError> {
        StoreLock::exclusive(&self.root.join("lock"))
    }

    /// Serializes read-modify-write cycles of `index.json`.
    fn lock_index(&self) -> Result<StoreLock, StoreError> {
        StoreLock::exclusive(&self.root.join("index.lock"))
    }

    /// Where a blob lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.layout_dir().join("blobs/sha256").join(digest.hex())
    }

    /// True when the blob is in the store.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<fs::File, StoreError> {
        let path = self.blob_path(digest);
        fs::File::open(&path).map_err(io_error("cannot open blob", &path))
    }

    /// Reads a whole blob (for manifests and configs, which are small).
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(io_error("cannot read blob", &path))
    }

    /// Stores bytes as a blob and returns their digest. The caller holds a lock.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if !self.has_blob(&digest) {
            let mut writer = self.blob_writer(&digest)?;
            if writer.is_stored() {
                return Ok(digest);
            }
            writer.restart()?;
            io::Write::write_all(&mut writer, bytes)
                .map_err(io_error("cannot write blob", &self.blob_path(&digest)))?;
            writer.commit()?;
        }
        Ok(digest)
    }

    /// Writes a layer of `entries` as a blob (streamed through a temporary file, renamed into
    /// place once complete) and returns what was written; `written` hears the bytes of file
    /// contents as they go in. The caller holds a lock.
    pub fn write_layer(
        &self,
        entries: impl IntoIterator<Item = crate::layer::LayerEntry>,
        options: &crate::layer::LayerOptions,
        written: &mut dyn FnMut(u64),
    ) -> Result<crate::layer::WrittenLayer, StoreError> {
        let tmp_dir = self.tmp_dir();
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir)
            .map_err(io_error("cannot create a file in", &tmp_dir))?;
        let written =
            crate::layer::write_layer_reporting(entries, options, tmp.as_file_mut(), written)
                .map_err(io_error("cannot write a layer to", tmp.path()))?;
        let dest = self.blob_path(&written.digest);
        if dest.is_file() {
            return Ok(written);
        }
        tmp.as_file()
            .sync_all()
            .map_err(io_error("cannot sync", tmp.path()))?;
        tmp.persist(&dest).map_err(|e| StoreError::Io {
            action: "cannot rename into",
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(written)
    }

    /// A writer for the blob `digest` that continues a partial download when one exists.
    /// Only one writer per blob exists at a time across processes; this waits for another.
    pub fn blob_writer(&self, digest: &Digest) -> Result<BlobWriter, StoreError> {
        BlobWriter::open(&self.tmp_dir(), self.blob_path(digest), digest.clone())
    }

    /// Every named image, sorted by name.
    pub fn list(&self) -> Result<Vec<StoredImage>, StoreError> {
        let index = self.read_index()?;
        let mut images: Vec<StoredImage> = index
            .manifests
            .into_iter()
            .filter_map(|descriptor| {
                let name = descriptor.annotations.get(REF_NAME_ANNOTATION)?;
                let name = Reference::parse(name).ok()?;
                Some(StoredImage { name, descriptor })
            })
            .collect();
        images.sort_by_key(|i| i.name.to_string());
        Ok(images)
    }

    /// The image with this name.
    pub fn resolve(&self, name: &Reference) -> Result<StoredImage, StoreError> {
        self.list()?
            .into_iter()
            .find(|i| &i.name == name)
            .ok_or_else(|| StoreError::NotFound(name.to_string()))
    }

    /// Finds an image by name, or by digest or unique digest prefix (as `docker images` shows).
    pub fn find(&self, name_or_id: &str) -> Result<StoredImage, StoreError> {
        let images = self.list()?;
        if let Ok(name) = Reference::parse(name_or_id)
            && let Some(image) = images.iter().find(|i| i.name == name)
        {
            return Ok(image.clone());
        }
        let id = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        if id.len() >= 4 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<&StoredImage> = images
                .iter()
                .filter(|i| i.descriptor.digest.hex().starts_with(id))
                .collect();
            if let Some(first) = matches.first()
                && matches
                    .iter()
                    .all(|m| m.descriptor.digest == first.descriptor.digest)
            {
                return Ok((*first).clone());
            }
        }
        Err(StoreError::NotFound(name_or_id.to_owned()))
    }

    /// Names `descriptor` (already stored, with all it references) as `name`, replacing what the
    /// name pointed to before.
    pub fn tag(
        &self,
        name: &Reference,
        descriptor: &Descriptor,
        source: Option<&Reference>,
    ) -> Result<(), StoreError> {
        let _shared = self.lock_shared()?;
        let _index = self.lock_index()?;
        let mut index = self.read_index()?;
        let name_text = name.to_string();
        index
            .manifests
            .retain(|d| d.annotations.get(REF_NAME_ANNOTATION) != Some(&name_text));
        let mut entry = descriptor.clone();
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_owned(), name_text);
        if let Some(source) = source {
            entry
                .annotations
                .insert(SOURCE_ANNOTATION.to_owned(), source.to_string());
        }
        index.manifests.push(entry);
        index.manifests.sort_by(|a, b| {
            a.annotations
                .get(REF_NAME_ANNOTATION)
                .cmp(&b.annotations.get(REF_NAME_ANNOTATION))
        });
        self.write_index(&index)
    }

    /// Removes a name; the blobs stay until `prune`. Returns false when there was no such name.
    pub fn untag(&self, name: &Reference) -> Result<bool, StoreError> {
        let _shared = self.lock_shared()?;
        let _index = self.lock_index()?;
        let mut index = self.read_index()?;
        let name_text = name.to_string();
        let before = index.manifests.len();
        index
            .manifests
            .retain(|d| d.annotations.get(REF_NAME_ANNOTATION) != Some(&name_text));
        let removed = index.manifests.len() != before;
        if removed {
            self.write_index(&index)?;
        }
        Ok(removed)
    }

    /// The blobs a manifest or index needs that the store lacks (empty when it is complete).
    pub fn missing_blobs(&self, descriptor: &Descriptor) -> Result<Vec<Digest>, StoreError> {
        let mut missing = Vec::new();
        let mut pending = vec![descriptor.clone()];
        while let Some(d) = pending.pop() {
            if !self.has_blob(&d.digest) {
                missing.push(d.digest);
                continue;
            }
            if is_index(&d.media_type) {
                pending.extend(self.read_index_document(&d.digest)?.manifests);
            } else if is_manifest(&d.media_type) {
                let manifest = self.read_manifest(&d.digest)?;
                pending.push(manifest.config);
                pending.extend(manifest.layers);
            }
        }
        Ok(missing)
    }

    /// Every blob a manifest or index needs, itself included, as far as they are present.
    pub fn referenced_blobs(
        &self,
        descriptor: &Descriptor,
    ) -> Result<BTreeSet<Digest>, StoreError> {
        let mut seen = BTreeSet::new();
        self.collect(descriptor, &mut seen)?;
        Ok(seen)
    }

    fn collect(
        &self,
        descriptor: &Descriptor,
        seen: &mut BTreeSet<Digest>,
    ) -> Result<(), StoreError> {
        if !seen.insert(descriptor.digest.clone()) || !self.has_blob(&descriptor.digest) {
            return Ok(());
        }
        if is_index(&descriptor.media_type) {
            for child in self.read_index_document(&descriptor.digest)?.manifests {
                self.collect(&child, seen)?;
            }
        } else if is_manifest(&descriptor.media_type) {
            let manifest = self.read_manifest(&descriptor.digest)?;
            seen.insert(manifest.config.digest.clone());
            seen.extend(manifest.layers.into_iter().map(|l| l.digest));
        }
        Ok(())
    }

    /// Reads and parses an image manifest blob.
    pub fn read_manifest(&self, digest: &Digest) -> Result<Manifest, StoreError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            what: "manifest",
            digest: digest.clone(),
            reason: e.to_string(),
        })
    }

    /// Reads and parses an index blob.
    pub fn read_index_document(&self, digest: &Digest) -> Result<Index, StoreError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            what: "index",
            digest: digest.clone(),
            reason: e.to_string(),
        })
    }

    /// Deletes every blob no named image references, and leftover partial downloads.
    pub fn prune(&self) -> Result<PruneStats, StoreError> {
        let _lock = self.lock_exclusive()?;
        let mut keep = BTreeSet::new();
        for descriptor in self.read_index()?.manifests {
            self.collect(&descriptor, &mut keep)?;
        }
        let mut stats = PruneStats::default();
        let blobs_dir = self.layout_dir().join("blobs/sha256");
        for entry in fs::read_dir(&blobs_dir).map_err(io_error("cannot list", &blobs_dir))? {
            let entry = entry.map_err(io_error("cannot list", &blobs_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(digest) = Digest::from_hex(&name) else {
                continue;
            };
            if !keep.contains(&digest) {
                let size = entry.metadata().map_or(0, |m| m.len());
                fs::remove_file(entry.path()).map_err(io_error("cannot delete", &entry.path()))?;
                stats.blobs += 1;
                stats.bytes += size;
            }
        }
        stats.bytes += blobs::remove_stale_partials(&self.tmp_dir())?;
        Ok(stats)
    }

    fn read_index(&self) -> Result<LayoutIndex, StoreError> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(io_error("cannot read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Io {
            action: "cannot parse",
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
    }

    fn write_index(&self, index: &LayoutIndex) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(index).map_err(|e| StoreError::Io {
            action: "cannot serialize",
            path: self.index_path(),
            source: io::Error::other(e),
        })?;
        blobs::write_atomically(&self.tmp_dir(), &self.index_path(), &bytes)
    }

    /// The names of the store's images grouped by digest (several names may share one).
    pub fn names_by_digest(&self) -> Result<BTreeMap<Digest, Vec<Reference>>, StoreError> {
        let mut map: BTreeMap<Digest, Vec<Reference>> = BTreeMap::new();
        for image in self.list()? {
            map.entry(image.descriptor.digest)
                .or_default()
                .push(image.name);
        }
        Ok(map)
    }
}

fn is_root_user() -> bool {
    // The effective uid is not in std; /proc/self/status has it on Linux.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}
