//! The registry storage as layers: [`StorageIndex`] knows what the lower layers of a rootfs
//! hold of the storage (read from their tar headers, or recorded from layers made here), and
//! turns one image into the entries of a layer that holds only what those layers lack.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::path::PathBuf;

use super::files::{
    ImageFiles, StoredContent, TagState, blob_data_path, revision_link_path, tag_dir_path,
};
use super::{ImageDocuments, SOURCE_MARKER, StorageError, TagCollision, V2_DIR, repository_names};
use crate::digest::Digest;
use crate::layer::{EntryKind, FileSource, LayerEntry, OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::manifest::Descriptor;
use crate::reference::Reference;

/// Permission bits of the directories of a storage layer.
const DIR_MODE: u32 = 0o755;
/// Permission bits of the files of a storage layer.
const FILE_MODE: u32 = 0o644;

/// What the layers seen so far hold of a registry storage directory at `prefix` in the rootfs:
/// the blobs, the revisions of each repository, and each tag with its digest and source
/// marker. Fill it with [`StorageIndex::observe_path`] while reading the tar headers of a base
/// image's layers in order (only tag files need their content, see
/// [`StorageIndex::needs_content`]), and with [`StorageIndex::observe_entries`] for each
/// layer made by [`StorageIndex::image_layer_entries`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageIndex {
    prefix: String,
    blobs: HashSet<Digest>,
    revisions: HashSet<(String, Digest)>,
    tags: BTreeMap<(String, String), TagState>,
}

/// The layer of one image: what [`StorageIndex::image_layer_entries`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayerFiles {
    /// The digest of the top-level manifest or index.
    pub digest: Digest,
    /// The repository names the image is written under.
    pub repositories: Vec<String>,
    /// The layer's entries: the new blobs (as files of the local store), the new manifests and
    /// indexes, the links and tag files, and every parent directory.
    pub entries: Vec<LayerEntry>,
    /// The config and layer blobs the layer holds (the lower layers lack them).
    pub new_blobs: Vec<Descriptor>,
    /// Tags left to the image another source wrote there.
    pub collisions: Vec<TagCollision>,
}

/// A file of the storage layout this index keeps track of.
enum StorageFile {
    Blob(Digest),
    Revision(String, Digest),
    TagCurrent(String, String),
    TagSource(String, String),
}

impl StorageIndex {
    /// An empty index of a storage at `prefix` in the rootfs (such as `registry`; empty when
    /// the storage root is the rootfs root).
    pub fn new(prefix: &str) -> Self {
        StorageIndex {
            prefix: normalize(prefix).to_owned(),
            ..StorageIndex::default()
        }
    }

    /// True when [`StorageIndex::observe_path`] needs the content of the file at `path` (a
    /// tag's `current/link` or `source` marker); other files are known by their path alone.
    pub fn needs_content(&self, path: &str) -> bool {
        matches!(
            self.storage_file(normalize(path)),
            Some(StorageFile::TagCurrent(..) | StorageFile::TagSource(..))
        )
    }

    /// Takes note of a regular file (or whiteout) at `path` in a layer's rootfs, applied over
    /// the layers observed before; `content` is needed where [`StorageIndex::needs_content`]
    /// says so. Whiteouts remove what they hide, as when the layers are unpacked in order.
    pub fn observe_path(&mut self, path: &str, content: Option<&[u8]>) -> Result<(), StorageError> {
        let path = normalize(path);
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if name == OPAQUE_WHITEOUT {
            self.forget_within(dir);
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            self.forget_within(&join(dir, hidden));
            return Ok(());
        }
        let Some(file) = self.storage_file(path) else {
            return Ok(());
        };
        match file {
            StorageFile::Blob(digest) => {
                self.blobs.insert(digest);
            }
            StorageFile::Revision(repository, digest) => {
                self.revisions.insert((repository, digest));
            }
            StorageFile::TagCurrent(repository, tag) => {
                let text = text_content(path, content)?;
                let digest = text.trim().parse().map_err(|e| StorageError::Io {
                    path: PathBuf::from(path),
                    source: io::Error::new(io::ErrorKind::InvalidData, e),
                })?;
                self.tags.entry((repository, tag)).or_default().current = Some(digest);
            }
            StorageFile::TagSource(repository, tag) => {
                let text = text_content(path, content)?;
                self.tags.entry((repository, tag)).or_default().source = Some(text);
            }
        }
        Ok(())
    }

    /// Takes note of the files of a layer made by [`StorageIndex::image_layer_entries`] (or
    /// any layer given as entries), so that the next image sees its blobs and tags.
    pub fn observe_entries(&mut self, entries: &[LayerEntry]) -> Result<(), StorageError> {
        for entry in entries {
            if let EntryKind::File(source) = &entry.kind {
                let content = match source {
                    FileSource::Bytes(bytes) => Some(bytes.as_slice()),
                    FileSource::Path(_) => None,
                };
                self.observe_path(&entry.path, content)?;
            }
        }
        Ok(())
    }

    /// True when the storage holds the blob.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blobs.contains(digest)
    }

    /// The image the tag of `reference` points to under every repository name, when they
    /// all point to the same one.
    pub fn tagged(&self, reference: &Reference) -> Option<Digest> {
        let tag = reference.tag()?;
        let mut found: Option<Digest> = None;
        for repository in repository_names(reference) {
            let current = self
                .tags
                .get(&(repository, tag.to_owned()))?
                .current
                .clone()?;
            if found.get_or_insert_with(|| current.clone()) != &current {
                return None;
            }
        }
        found
    }

    /// True when the storage already holds `reference` without asking its registry: an image
    /// pinned by digest that is stored, or (with `trust_tags`) one whose tag points to a stored
    /// image.
    pub fn holds(&self, reference: &Reference, trust_tags: bool) -> bool {
        let held = reference
            .digest()
            .cloned()
            .or_else(|| trust_tags.then(|| self.tagged(reference)).flatten());
        held.is_some_and(|digest| self.has_image(reference, &digest))
    }

    /// True when the image `digest` is stored for `reference` as far as a new layer could
    /// store it: its document, its revision under each repository name, and each tag pointing
    /// to it or kept by another source (which a new layer would keep too).
    pub fn has_image(&self, reference: &Reference, digest: &Digest) -> bool {
        let source = reference.to_string();
        self.has_blob(digest)
            && repository_names(reference).iter().all(|repository| {
                self.revisions
                    .contains(&(repository.clone(), digest.clone()))
                    && reference.tag().is_none_or(|tag| {
                        let state = self
                            .tags
                            .get(&(repository.clone(), tag.to_owned()))
                            .cloned()
                            .unwrap_or_default();
                        match state.current {
                            Some(current) => {
                                current == *digest || state.source.as_deref() != Some(&source)
                            }
                            None => false,
                        }
                    })
            })
    }

    /// The layer of one image over the layers observed so far: the blobs and documents they
    /// lack, the image's links under each repository name, and its tags (unless they collide,
    /// see [`super`]), with every parent directory (mode 0755; files 0644; owner 0:0). The
    /// content of a new config or layer blob is the file `blob_path` gives for it (it need not
    /// exist before the layer is written); `None` is an error. The index is not changed: pass
    /// the entries to [`StorageIndex::observe_entries`] once the layer is taken.
    pub fn image_layer_entries(
        &self,
        reference: &Reference,
        documents: &ImageDocuments,
        blob_path: &dyn Fn(&Digest) -> Option<PathBuf>,
    ) -> Result<ImageLayerFiles, StorageError> {
        let files = ImageFiles::decide(reference, documents, self)?;
        let mut entries = Vec::new();
        let mut new_blobs = Vec::new();
        for blob in files.blobs.into_iter().filter(|blob| !blob.stored) {
            let digest = &blob.descriptor.digest;
            let path = blob_path(digest).ok_or_else(|| StorageError::Source {
                digest: digest.clone(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{reference} needs it, but it is not available locally"),
                ),
            })?;
            entries.push(self.file_entry(&blob_data_path(digest), FileSource::Path(path)));
            new_blobs.push(blob.descriptor);
        }
        for document in files.documents {
            let path = blob_data_path(&document.digest());
            entries.push(self.file_entry(&path, FileSource::Bytes(document.bytes)));
        }
        for file in files.small_files {
            entries.push(self.file_entry(&file.path, FileSource::Bytes(file.bytes)));
        }
        let directories: BTreeSet<String> = entries
            .iter()
            .flat_map(|entry| parent_dirs(&entry.path))
            .collect();
        entries.extend(directories.into_iter().map(|path| LayerEntry {
            path,
            kind: EntryKind::Dir,
            mode: DIR_MODE,
            uid: 0,
            gid: 0,
        }));
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(ImageLayerFiles {
            digest: files.digest,
            repositories: files.repositories,
            entries,
            new_blobs,
            collisions: files.collisions,
        })
    }

    fn file_entry(&self, storage_path: &str, source: FileSource) -> LayerEntry {
        LayerEntry {
            path: join(&self.prefix, storage_path),
            kind: EntryKind::File(source),
            mode: FILE_MODE,
            uid: 0,
            gid: 0,
        }
    }

    /// The storage file at `path` of the rootfs, if it is one this index keeps track of.
    fn storage_file(&self, path: &str) -> Option<StorageFile> {
        let in_storage = if self.prefix.is_empty() {
            path
        } else {
            path.strip_prefix(self.prefix.as_str())?.strip_prefix('/')?
        };
        let in_v2 = in_storage.strip_prefix(V2_DIR)?.strip_prefix('/')?;
        if let Some(blob) = in_v2.strip_prefix("blobs/sha256/") {
            let (fanout, rest) = blob.split_once('/')?;
            let hex = rest.strip_suffix("/data")?;
            let digest = Digest::from_hex(hex).ok()?;
            return (digest.hex().get(..2) == Some(fanout)).then_some(StorageFile::Blob(digest));
        }
        let (repository, in_manifests) = in_v2
            .strip_prefix("repositories/")?
            .split_once("/_manifests/")?;
        if let Some(revision) = in_manifests.strip_prefix("revisions/sha256/") {
            let digest = Digest::from_hex(revision.strip_suffix("/link")?).ok()?;
            return Some(StorageFile::Revision(repository.to_owned(), digest));
        }
        let (tag, file) = in_manifests.strip_prefix("tags/")?.split_once('/')?;
        match file {
            "current/link" => Some(StorageFile::TagCurrent(
                repository.to_owned(),
                tag.to_owned(),
            )),
            SOURCE_MARKER => Some(StorageFile::TagSource(
                repository.to_owned(),
                tag.to_owned(),
            )),
            _ => None,
        }
    }

    /// Forgets everything at or below `hidden`, a path of the rootfs a whiteout removes.
    fn forget_within(&mut self, hidden: &str) {
        if hidden.is_empty() || within(&self.prefix, hidden) {
            self.blobs.clear();
            self.revisions.clear();
            self.tags.clear();
            return;
        }
        let prefix = self.prefix.clone();
        let hides = |storage_path: &str| within(&join(&prefix, storage_path), hidden);
        self.blobs.retain(|digest| !hides(&blob_data_path(digest)));
        self.revisions
            .retain(|(repository, digest)| !hides(&revision_link_path(repository, digest)));
        self.tags.retain(|(repository, tag), state| {
            let tag_dir = tag_dir_path(repository, tag);
            if hides(&format!("{tag_dir}/current/link")) {
                state.current = None;
            }
            if hides(&format!("{tag_dir}/{SOURCE_MARKER}")) {
                state.source = None;
            }
            state.current.is_some() || state.source.is_some()
        });
    }
}

impl StoredContent for StorageIndex {
    fn has_blob(&self, digest: &Digest) -> bool {
        StorageIndex::has_blob(self, digest)
    }

    fn tag_state(&self, repository: &str, tag: &str) -> Result<TagState, StorageError> {
        Ok(self
            .tags
            .get(&(repository.to_owned(), tag.to_owned()))
            .cloned()
            .unwrap_or_default())
    }
}

/// A tar path without `./` in front and `/` at the end.
fn normalize(path: &str) -> &str {
    let mut path = path;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    path.trim_start_matches('/').trim_end_matches('/')
}

/// `dir/name`, or `name` when `dir` is empty.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// True when `path` is `dir` or below it.
fn within(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Every proper ancestor of a relative path: `a`, `a/b` for `a/b/c`.
fn parent_dirs(path: &str) -> impl Iterator<Item = String> + '_ {
    path.match_indices('/')
        .map(|(end, _)| path[..end].to_owned())
}

/// The UTF-8 content of a tag file.
fn text_content(path: &str, content: Option<&[u8]>) -> Result<String, StorageError> {
    let invalid = |message: String| StorageError::Io {
        path: PathBuf::from(path),
        source: io::Error::new(io::ErrorKind::InvalidData, message),
    };
    let bytes = content.ok_or_else(|| {
        invalid("the content of a tag file is needed to know where the tag points".to_owned())
    })?;
    String::from_utf8(bytes.to_vec()).map_err(|e| invalid(format!("not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;
    use std::io::Read;
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::distribution::{BlobSource, Document, RegistryStorage};
    use crate::layer::{Compression, LayerOptions, UnpackOptions, unpack_layer, write_layer};
    use crate::manifest::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};

    /// Blob files in a directory, named by their hex digest, as the local store keeps them.
    struct Blobs {
        dir: tempfile::TempDir,
    }

    impl Blobs {
        fn new() -> Self {
            Blobs {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn add(&self, media_type: &str, bytes: &[u8]) -> Descriptor {
            let descriptor = Descriptor::of(media_type, bytes);
            fs::write(self.path(&descriptor.digest), bytes).unwrap();
            descriptor
        }

        fn path(&self, digest: &Digest) -> PathBuf {
            self.dir.path().join(digest.hex())
        }

        fn lookup(&self) -> impl Fn(&Digest) -> Option<PathBuf> + '_ {
            |digest| Some(self.path(digest))
        }

        /// An image manifest with a config of its own and these layers.
        fn manifest(&self, name: &str, layers: &[&Descriptor]) -> Document {
            let config = self.add(OCI_CONFIG, format!(r#"{{"name":"{name}"}}"#).as_bytes());
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config,
                "layers": layers,
            });
            Document::new(OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap())
        }
    }

    impl BlobSource for Blobs {
        fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + '_>> {
            Ok(Box::new(fs::File::open(self.path(digest))?))
        }
    }

    fn reference(text: &str) -> Reference {
        Reference::parse(text).unwrap()
    }

    fn single(document: &Document) -> ImageDocuments {
        ImageDocuments {
            top: document.clone(),
            children: Vec::new(),
        }
    }

    /// Every file under `root` with its content.
    fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for child in fs::read_dir(&dir).unwrap() {
                let path = child.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(root).unwrap().display().to_string();
                    files.insert(relative, fs::read(&path).unwrap());
                }
            }
        }
        files
    }

    fn data_path(digest: &Digest) -> String {
        format!("registry/{}", blob_data_path(digest))
    }

    /// The test images: two sharing a layer, and a two-platform index of which amd64 is kept.
    struct Fixture {
        blobs: Blobs,
        shared: Descriptor,
        images: Vec<(Reference, ImageDocuments)>,
    }

    fn fixture() -> Fixture {
        let blobs = Blobs::new();
        let shared = blobs.add(OCI_LAYER_GZIP, b"shared layer");
        let only_a = blobs.add(OCI_LAYER_GZIP, b"layer of a");
        let only_b = blobs.add(OCI_LAYER_GZIP, b"layer of b");
        let amd64 = blobs.add(OCI_LAYER_GZIP, b"pause amd64");
        let arm64 = blobs.add(OCI_LAYER_GZIP, b"pause arm64");
        let a = blobs.manifest("a", &[&shared, &only_a]);
        let b = blobs.manifest("b", &[&shared, &only_b]);
        let pause_amd64 = blobs.manifest("pause-amd64", &[&amd64]);
        let pause_arm64 = blobs.manifest("pause-arm64", &[&arm64]);
        let entry = |document: &Document, architecture: &str| {
            json!({
                "mediaType": OCI_MANIFEST,
                "digest": document.digest(),
                "size": document.bytes.len(),
                "platform": {"architecture": architecture, "os": "linux"},
            })
        };
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [entry(&pause_amd64, "amd64"), entry(&pause_arm64, "arm64")],
        });
        let pause = ImageDocuments {
            top: Document::new(OCI_INDEX, serde_json::to_vec(&index).unwrap()),
            children: vec![pause_amd64],
        };
        Fixture {
            blobs,
            shared,
            images: vec![
                (reference("a:1"), single(&a)),
                (reference("quay.io/team/b:2"), single(&b)),
                (reference("registry.k8s.io/pause:3.9"), pause),
            ],
        }
    }

    #[test]
    fn layers_merge_into_the_directory_that_add_image_writes() {
        let fixture = fixture();
        let work = tempfile::tempdir().unwrap();
        let directory = RegistryStorage::new(work.path().join("directory"));
        let merged = work.path().join("merged");
        let mut index = StorageIndex::new("registry");
        let options = LayerOptions {
            compression: Compression::None,
            ..LayerOptions::default()
        };
        let mut layers = Vec::new();
        for (reference, documents) in &fixture.images {
            directory
                .add_image(reference, documents, &fixture.blobs)
                .unwrap();
            assert!(!index.has_image(reference, &documents.top.digest()));
            let files = index
                .image_layer_entries(reference, documents, &fixture.blobs.lookup())
                .unwrap();
            assert!(files.collisions.is_empty());
            index.observe_entries(&files.entries).unwrap();
            assert!(index.has_image(reference, &documents.top.digest()));
            let mut layer = Vec::new();
            write_layer(files.entries.clone(), &options, &mut layer).unwrap();
            unpack_layer(layer.as_slice(), &merged, &UnpackOptions::default()).unwrap();
            layers.push(files);
        }

        // The second image's layer lacks the layer it shares with the first.
        let shared = data_path(&fixture.shared.digest);
        assert!(layers[0].entries.iter().any(|e| e.path == shared));
        assert!(layers[1].entries.iter().all(|e| e.path != shared));
        assert_eq!(layers[0].new_blobs.len(), 3, "config and two layers");
        assert_eq!(layers[1].new_blobs.len(), 2, "config and its own layer");
        assert!(!layers[1].new_blobs.contains(&fixture.shared));
        for entry in layers.iter().flat_map(|files| &files.entries) {
            assert_eq!((entry.uid, entry.gid), (0, 0), "{}", entry.path);
            match entry.kind {
                EntryKind::Dir => assert_eq!(entry.mode, 0o755, "{}", entry.path),
                _ => assert_eq!(entry.mode, 0o644, "{}", entry.path),
            }
        }
        assert!(layers[0].entries.iter().any(|e| e.path == "registry"));

        // Together the layers are exactly the storage directory.
        assert_eq!(
            files_under(&merged.join("registry")),
            files_under(directory.root())
        );
    }

    #[test]
    fn the_entries_depend_on_what_lower_layers_hold_only() {
        let fixture = fixture();
        let entries_of = |index: &StorageIndex, image: usize| {
            let (reference, documents) = &fixture.images[image];
            index
                .image_layer_entries(reference, documents, &fixture.blobs.lookup())
                .unwrap()
        };
        let mut first = StorageIndex::new("registry");
        let mut second = StorageIndex::new("./registry/");
        for image in 0..fixture.images.len() {
            let files = entries_of(&first, image);
            assert_eq!(files, entries_of(&second, image));
            first.observe_entries(&files.entries).unwrap();
            second.observe_entries(&files.entries).unwrap();
        }
        assert_eq!(first, second);
    }

    #[test]
    fn base_layer_paths_fill_the_index() {
        let fixture = fixture();
        let (a, a_documents) = &fixture.images[0];
        let digest = a_documents.top.digest();
        let mut built = StorageIndex::new("registry");
        let files = built
            .image_layer_entries(a, a_documents, &fixture.blobs.lookup())
            .unwrap();

        // As an engine reads a base image's tar headers: `./` in front, content for tag files.
        let mut index = StorageIndex::new("registry");
        for entry in &files.entries {
            let path = format!("./{}", entry.path);
            match &entry.kind {
                EntryKind::Dir => index.observe_path(&format!("{path}/"), None).unwrap(),
                EntryKind::File(FileSource::Bytes(bytes)) => {
                    let content = index.needs_content(&path).then_some(bytes.as_slice());
                    index.observe_path(&path, content).unwrap();
                }
                EntryKind::File(_) => {
                    assert!(!index.needs_content(&path), "{path}");
                    index.observe_path(&path, None).unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        built.observe_entries(&files.entries).unwrap();
        assert_eq!(index, built);
        assert!(index.has_image(a, &digest));
        assert!(index.has_blob(&fixture.shared.digest));
        assert!(index.needs_content(
            "registry/docker/registry/v2/repositories/library/a/_manifests/tags/1/source"
        ));
        assert!(!index.needs_content("registry/docker/registry/v2/repositories/library/a"));
        assert!(!index.needs_content(
            "elsewhere/docker/registry/v2/repositories/library/a/_manifests/tags/1/source"
        ));

        // Tag files need their content, and it must be a digest.
        let current = "registry/docker/registry/v2/repositories/x/_manifests/tags/1/current/link";
        let missing = index.observe_path(current, None).unwrap_err();
        assert!(missing.to_string().contains(current), "{missing}");
        let invalid = index.observe_path(current, Some(b"latest")).unwrap_err();
        assert!(invalid.to_string().contains("invalid digest"), "{invalid}");

        // Whiteouts hide what lower layers held.
        let blob_dir = format!(
            "registry/docker/registry/v2/blobs/sha256/{}",
            &fixture.shared.digest.hex()[..2]
        );
        let mut hidden = index.clone();
        hidden
            .observe_path(
                &format!("{blob_dir}/.wh.{}", fixture.shared.digest.hex()),
                None,
            )
            .unwrap();
        assert!(!hidden.has_blob(&fixture.shared.digest));
        assert!(hidden.has_image(a, &digest), "the document is still there");
        hidden
            .observe_path(
                "registry/docker/registry/v2/repositories/library/a/_manifests/tags/.wh..wh..opq",
                None,
            )
            .unwrap();
        assert!(!hidden.has_image(a, &digest));
        let pinned = reference(&format!("docker.io/library/a@{digest}"));
        assert!(hidden.has_image(&pinned, &digest), "a digest needs no tag");
        let mut cleared = index.clone();
        cleared.observe_path(".wh.registry", None).unwrap();
        assert_eq!(cleared, StorageIndex::new("registry"));
        let mut cleared = index.clone();
        cleared.observe_path(".wh..wh..opq", None).unwrap();
        assert_eq!(cleared, StorageIndex::new("registry"));
        let mut untouched = index.clone();
        untouched.observe_path("etc/.wh.registry", None).unwrap();
        assert_eq!(untouched, index);
    }

    #[test]
    fn tags_of_another_source_are_kept() {
        let fixture = fixture();
        let (a, a_documents) = &fixture.images[0];
        let (_, b_documents) = &fixture.images[1];
        let mut index = StorageIndex::new("");
        let files = index
            .image_layer_entries(a, a_documents, &fixture.blobs.lookup())
            .unwrap();
        index.observe_entries(&files.entries).unwrap();

        // Another registry's same path and tag keeps the short tag.
        let other = reference("quay.io/library/a:1");
        let files = index
            .image_layer_entries(&other, b_documents, &fixture.blobs.lookup())
            .unwrap();
        assert_eq!(files.collisions.len(), 1, "{:?}", files.collisions);
        assert_eq!(files.collisions[0].repository, "library/a");
        assert_eq!(
            files.collisions[0].existing_source.as_deref(),
            Some("docker.io/library/a:1")
        );
        let tag_files: Vec<&str> = files
            .entries
            .iter()
            .filter(|e| e.path.contains("/_manifests/tags/"))
            .map(|e| e.path.as_str())
            .collect();
        assert!(!tag_files.is_empty());
        assert!(
            tag_files
                .iter()
                .all(|path| path.starts_with("docker/registry/v2/repositories/quay.io/")),
            "{tag_files:?}"
        );
        index.observe_entries(&files.entries).unwrap();
        assert!(index.has_image(&other, &b_documents.top.digest()));

        // The same reference moves its own tag.
        let files = index
            .image_layer_entries(a, b_documents, &fixture.blobs.lookup())
            .unwrap();
        assert!(files.collisions.is_empty());
        assert!(!index.has_image(a, &b_documents.top.digest()));
        index.observe_entries(&files.entries).unwrap();
        assert!(index.has_image(a, &b_documents.top.digest()));
    }

    #[test]
    fn a_blob_that_is_not_available_is_an_error() {
        let fixture = fixture();
        let (a, a_documents) = &fixture.images[0];
        let error = StorageIndex::new("registry")
            .image_layer_entries(a, a_documents, &|_| None)
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("docker.io/library/a:1"), "{message}");
        assert!(message.contains("not available locally"), "{message}");
    }
}
