//! The build cache: each step's layer is recorded under a key made of everything the step
//! depends on (the key of the step before it, the instruction, the metadata and content of
//! the files it reads), so an unchanged step reuses its layer instead of writing it again.
//!
//! Keys and records live in `<store root>/build-cache/`: `layers/<key>.json` names the layer
//! blob (kept in the image store; a record whose blob was pruned is a miss),
//! `file-digests.json` remembers the content digest of context files by their metadata
//! (size, modification and change times, inode), so a rebuild hashes only changed files, and
//! `resolved/<key>.json` keeps the documents an image tag resolved to, so a rebuild needs no
//! registry unless `--pull always` asks. Each build works in a directory of its own under
//! `work/`, locked while it runs; what a killed build left there is removed by the next one.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::Digest;
use image::digest::{Hasher, HashingReader};
use image::layer::{EntryKind, FileSource, LayerEntry};
use image::store::Store;
use serde::{Deserialize, Serialize};

/// Bumped whenever what a key covers changes meaning.
const KEY_VERSION: &str = "sealer-rs build cache v1";

/// A layer recorded in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    /// The blob's digest.
    pub digest: Digest,
    /// The uncompressed tar's digest.
    pub diff_id: Digest,
    /// The blob's size.
    pub size: u64,
    /// The blob's media type.
    pub media_type: String,
}

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileStamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
    device: u64,
}

impl FileStamp {
    fn of(metadata: &fs::Metadata) -> Self {
        FileStamp {
            size: metadata.size(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
            ctime_ns: i128::from(metadata.ctime()) * 1_000_000_000
                + i128::from(metadata.ctime_nsec()),
            inode: metadata.ino(),
            device: metadata.dev(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct FileDigests {
    files: BTreeMap<PathBuf, (FileStamp, Digest)>,
}

/// A manifest or index as the resolution cache keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct StoredDocument {
    #[serde(rename = "mediaType")]
    media_type: String,
    text: String,
}

/// The documents an image resolved to, as the resolution cache keeps them.
#[derive(Debug, Serialize, Deserialize)]
struct StoredResolution {
    top: StoredDocument,
    children: Vec<StoredDocument>,
}

/// The build cache of one store.
#[derive(Debug)]
pub struct BuildCache {
    dir: PathBuf,
    /// This build's work directory, and the lock that keeps other builds from removing it.
    work: tempfile::TempDir,
    _work_lock: fs::File,
    /// Only files below this directory (the context) have their digests remembered.
    remembered_root: PathBuf,
    digests: Mutex<FileDigests>,
}

impl BuildCache {
    /// Opens the cache of `store`, remembering the digests of files below `context`.
    pub fn open(store: &Store, context: &Path) -> io::Result<Self> {
        let dir = store.root().join("build-cache");
        for sub in ["layers", "resolved", "work"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        remove_abandoned_work(&dir.join("work"));
        let work = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(dir.join("work"))?;
        let work_lock = fs::File::create(work.path().with_extension("lock"))?;
        work_lock.lock()?;
        let digests = fs::read(dir.join("file-digests.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Ok(BuildCache {
            dir,
            work,
            _work_lock: work_lock,
            remembered_root: context.to_path_buf(),
            digests: Mutex::new(digests),
        })
    }

    /// The directory the cache lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This build's work directory (removed when the cache is dropped).
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    fn resolution_path(reference: &image::Reference, platform: &str) -> PathBuf {
        let mut key = KeyBuilder::new(&Digest::of(b""), "resolved");
        key.field(reference.to_string().as_bytes());
        key.field(platform.as_bytes());
        PathBuf::from("resolved").join(format!("{}.json", key.finish().hex()))
    }

    /// The documents `reference` resolved to for `platform` in an earlier build.
    pub fn resolved(
        &self,
        reference: &image::Reference,
        platform: &str,
    ) -> Option<image::distribution::ImageDocuments> {
        let bytes = fs::read(self.dir.join(Self::resolution_path(reference, platform))).ok()?;
        let stored: StoredResolution = serde_json::from_slice(&bytes).ok()?;
        let document = |d: StoredDocument| {
            image::distribution::Document::new(d.media_type, d.text.into_bytes())
        };
        let documents = image::distribution::ImageDocuments {
            top: document(stored.top),
            children: stored.children.into_iter().map(document).collect(),
        };
        reference
            .digest()
            .is_none_or(|pinned| *pinned == documents.top.digest())
            .then_some(documents)
    }

    /// Remembers what `reference` resolved to for `platform` (documents that are not UTF-8
    /// JSON are not remembered).
    pub fn put_resolved(
        &self,
        reference: &image::Reference,
        platform: &str,
        documents: &image::distribution::ImageDocuments,
    ) -> io::Result<()> {
        let stored = |d: &image::distribution::Document| {
            Some(StoredDocument {
                media_type: d.media_type.clone(),
                text: String::from_utf8(d.bytes.clone()).ok()?,
            })
        };
        let (Some(top), Some(children)) = (
            stored(&documents.top),
            documents
                .children
                .iter()
                .map(stored)
                .collect::<Option<Vec<_>>>(),
        ) else {
            return Ok(());
        };
        let bytes =
            serde_json::to_vec(&StoredResolution { top, children }).map_err(io::Error::other)?;
        write_atomically(
            &self.dir,
            &self.dir.join(Self::resolution_path(reference, platform)),
            &bytes,
        )
    }

    fn record_path(&self, key: &Digest) -> PathBuf {
        self.dir.join("layers").join(format!("{}.json", key.hex()))
    }

    /// The layer recorded under `key`, when its blob is still in the store.
    pub fn get(&self, key: &Digest, store: &Store) -> Option<CachedLayer> {
        let bytes = fs::read(self.record_path(key)).ok()?;
        let layer: CachedLayer = serde_json::from_slice(&bytes).ok()?;
        store.has_blob(&layer.digest).then_some(layer)
    }

    /// Records `layer` under `key` (atomically: a reader sees the old record or the new one).
    pub fn put(&self, key: &Digest, layer: &CachedLayer) -> io::Result<()> {
        let bytes = serde_json::to_vec(layer).map_err(io::Error::other)?;
        write_atomically(&self.dir, &self.record_path(key), &bytes)
    }

    /// Writes the remembered file digests back, forgetting files that are gone.
    pub fn save(&self) -> io::Result<()> {
        let mut digests = self
            .digests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        digests.files.retain(|path, _| path.exists());
        let bytes = serde_json::to_vec(&*digests).map_err(io::Error::other)?;
        write_atomically(&self.dir, &self.dir.join("file-digests.json"), &bytes)
    }

    /// The digest of a file's content, from the remembered digests when its metadata did not
    /// change.
    pub fn file_digest(&self, path: &Path) -> io::Result<Digest> {
        let metadata = fs::metadata(path)?;
        let stamp = FileStamp::of(&metadata);
        let remember = path.starts_with(&self.remembered_root);
        if remember {
            let digests = self
                .digests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((known, digest)) = digests.files.get(path)
                && *known == stamp
            {
                return Ok(digest.clone());
            }
        }
        let mut reader = HashingReader::new(fs::File::open(path)?);
        io::copy(&mut reader, &mut io::sink())?;
        let (digest, _) = reader.finish();
        if remember {
            self.digests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .files
                .insert(path.to_path_buf(), (stamp, digest.clone()));
        }
        Ok(digest)
    }

    /// The key of a layer made of `entries` on top of `parent` by `instruction`; file
    /// contents count by their digest.
    pub fn entries_key(
        &self,
        parent: &Digest,
        instruction: &str,
        entries: &[LayerEntry],
    ) -> io::Result<Digest> {
        let mut key = KeyBuilder::new(parent, instruction);
        key.entries(entries, &mut |path| {
            Ok(self.file_digest(path)?.to_string().into_bytes())
        })?;
        Ok(key.finish())
    }
}

/// Builds a cache key from length-prefixed fields, so no two field lists collide.
pub struct KeyBuilder(Hasher);

impl KeyBuilder {
    /// A key for something made on top of `parent` by `instruction`.
    pub fn new(parent: &Digest, instruction: &str) -> Self {
        let mut key = KeyBuilder(Hasher::new());
        key.field(KEY_VERSION.as_bytes());
        key.field(parent.to_string().as_bytes());
        key.field(instruction.as_bytes());
        key
    }

    /// Adds the entries of a layer: paths, modes, owners, kinds, and for files on disk what
    /// `file_key` says identifies their content.
    pub fn entries(
        &mut self,
        entries: &[LayerEntry],
        file_key: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
    ) -> io::Result<()> {
        for entry in entries {
            self.field(entry.path.as_bytes());
            self.field(format!("{:o} {} {}", entry.mode, entry.uid, entry.gid).as_bytes());
            match &entry.kind {
                EntryKind::File(FileSource::Path(path)) => {
                    self.field(b"file");
                    self.field(&file_key(path)?);
                }
                EntryKind::File(FileSource::Bytes(bytes)) => {
                    self.field(b"file");
                    self.field(Digest::of(bytes).to_string().as_bytes());
                }
                other => self.field(format!("{other:?}").as_bytes()),
            }
        }
        Ok(())
    }

    /// Adds a field.
    pub fn field(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// The key.
    pub fn finish(self) -> Digest {
        self.0.finish()
    }
}

/// Removes the work directories of builds that are no longer running (their lock is free).
fn remove_abandoned_work(work: &Path) {
    let Ok(entries) = fs::read_dir(work) else {
        return;
    };
    for lock_path in entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "lock"))
    {
        let Ok(lock) = fs::OpenOptions::new().write(true).open(&lock_path) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            let _ = fs::remove_dir_all(lock_path.with_extension(""));
            let _ = fs::remove_file(&lock_path);
        }
    }
}

fn write_atomically(dir: &Path, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_entry(path: &str, source: &Path) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::File(FileSource::Path(source.to_path_buf())),
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn keys_follow_content_metadata_and_parent() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path().join("store")).unwrap();
        let context = root.path().join("context");
        fs::create_dir(&context).unwrap();
        let file = context.join("a");
        fs::write(&file, "one").unwrap();
        let cache = BuildCache::open(&store, &context).unwrap();
        let parent = Digest::of(b"parent");
        let key = |cache: &BuildCache, entries: &[LayerEntry]| {
            cache.entries_key(&parent, "COPY a /", entries).unwrap()
        };
        let first = key(&cache, &[file_entry("a", &file)]);
        assert_eq!(first, key(&cache, &[file_entry("a", &file)]));
        let mut chmod = file_entry("a", &file);
        chmod.mode = 0o600;
        assert_ne!(first, key(&cache, &[chmod]));
        assert_ne!(
            first,
            cache
                .entries_key(&Digest::of(b"other"), "COPY a /", &[file_entry("a", &file)])
                .unwrap()
        );
        fs::write(&file, "two").unwrap();
        assert_ne!(first, key(&cache, &[file_entry("a", &file)]));
        cache.save().unwrap();
        let reopened = BuildCache::open(&store, &context).unwrap();
        assert_eq!(
            key(&reopened, &[file_entry("a", &file)]),
            key(&cache, &[file_entry("a", &file)])
        );
    }

    #[test]
    fn records_are_misses_once_their_blob_is_gone() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let cache = BuildCache::open(&store, root.path()).unwrap();
        let blob = store.write_blob(b"layer").unwrap();
        let layer = CachedLayer {
            digest: blob.clone(),
            diff_id: blob.clone(),
            size: 5,
            media_type: image::manifest::OCI_LAYER_TAR.into(),
        };
        let key = Digest::of(b"key");
        cache.put(&key, &layer).unwrap();
        assert_eq!(cache.get(&key, &store), Some(layer));
        fs::remove_file(store.blob_path(&blob)).unwrap();
        assert_eq!(cache.get(&key, &store), None);
    }
}
