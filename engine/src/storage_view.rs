//! What the registry storage of a rootfs already holds, read through any [`ContextView`]: the
//! engine's scan view of the merged layers, or a BuildKit ref read over the gateway. Only the
//! repository links and tags under `registry/` are read; blobs need not be there.

use std::io::{self, Read};

use image::Digest;
use image::distribution::{StorageError, StorageIndex, blob_data_path};
use kubefile::context::{ContextView, EntryKind, join};

use crate::cache_images::REGISTRY_DIR;
use crate::error::BuildError;

/// The repositories of the storage, under [`REGISTRY_DIR`].
const REPOSITORIES_DIR: &str = "docker/registry/v2/repositories";

/// The most a link or marker file is read of: they are small by nature.
const SMALL_FILE_LIMIT: u64 = 4096;

/// The registry content the rootfs `view` holds, from its repository links. A link to a
/// layer, config or manifest stands for its blob, which any storage that serves it holds, so
/// a view without the blobs gives the same index. Symlinks are never followed, and a rootfs
/// without a registry gives an empty index.
pub fn storage_index(view: &dyn ContextView) -> Result<StorageIndex, BuildError> {
    let mut index = StorageIndex::new(REGISTRY_DIR);
    let repositories = join(REGISTRY_DIR, REPOSITORIES_DIR);
    if view.kind(&repositories) != Some(EntryKind::Dir) {
        return Ok(index);
    }
    let mut pending = vec![repositories];
    while let Some(dir) = pending.pop() {
        for name in view.list(&dir) {
            let path = join(&dir, &name);
            match view.kind(&path) {
                Some(EntryKind::Dir) => pending.push(path),
                Some(EntryKind::File) => observe_file(view, &mut index, &path)?,
                Some(EntryKind::Symlink) | None => {}
            }
        }
    }
    Ok(index)
}

/// Records the storage file at `path` (relative to the rootfs) and, for a layer or revision
/// link, the blob it names.
fn observe_file(
    view: &dyn ContextView,
    index: &mut StorageIndex,
    path: &str,
) -> Result<(), BuildError> {
    let corrupt = |e: StorageError| BuildError::Io {
        what: format!("reading the base image's registry storage at {path}"),
        source: io::Error::other(e),
    };
    let is_link = path.ends_with("/link");
    let content = if is_link || index.needs_content(path) {
        Some(read_small(view, path)?)
    } else {
        None
    };
    index
        .observe_path(path, content.as_deref())
        .map_err(corrupt)?;
    let linked = is_link && (path.contains("/_layers/") || path.contains("/_manifests/revisions/"));
    if let Some(digest) = content.filter(|_| linked).and_then(|bytes| {
        std::str::from_utf8(&bytes)
            .ok()?
            .trim()
            .parse::<Digest>()
            .ok()
    }) {
        let blob = join(REGISTRY_DIR, &blob_data_path(&digest));
        index.observe_path(&blob, None).map_err(corrupt)?;
    }
    Ok(())
}

/// The first [`SMALL_FILE_LIMIT`] bytes of a link or marker file (through
/// [`ContextView::open`], or [`ContextView::read`] for a view that cannot open files).
fn read_small(view: &dyn ContextView, path: &str) -> Result<Vec<u8>, BuildError> {
    let failed = BuildError::io(format!(
        "reading {path} of the base image's registry storage"
    ));
    let mut content = Vec::new();
    match view.open(path) {
        Ok(reader) => {
            reader
                .take(SMALL_FILE_LIMIT)
                .read_to_end(&mut content)
                .map_err(failed)?;
        }
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            content = view.read(path).map_err(failed)?;
            content.truncate(usize::try_from(SMALL_FILE_LIMIT).unwrap_or(usize::MAX));
        }
        Err(e) => return Err(failed(e)),
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use image::Reference;
    use image::distribution::{Document, ImageDocuments};
    use image::layer::{EntryKind as LayerKind, FileSource};
    use image::manifest::OCI_MANIFEST;
    use kubefile::context::{DirContext, MemoryContext};

    use super::*;

    /// An image manifest naming a config and one layer (their bytes are not needed).
    fn documents(seed: &str) -> ImageDocuments {
        let config = Digest::of(format!("config {seed}").as_bytes());
        let layer = Digest::of(format!("layer {seed}").as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 10},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 20}],
        });
        ImageDocuments {
            top: Document::new(OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap()),
            children: Vec::new(),
        }
    }

    /// The rootfs view that image layers of `images` make, as the engine's scan view keeps it
    /// (the repositories only, no blobs), and the index that recorded those layers.
    fn layered(images: &[(&str, &str)]) -> (MemoryContext, StorageIndex) {
        let mut index = StorageIndex::new(REGISTRY_DIR);
        let mut view = MemoryContext::new();
        for (name, seed) in images {
            let reference = Reference::parse(name).unwrap();
            let files = index
                .image_layer_entries(&reference, &documents(seed), &|d| {
                    Some(PathBuf::from(d.hex()))
                })
                .unwrap();
            index.observe_entries(&files.entries).unwrap();
            for entry in files.entries {
                if !entry.path.contains("/repositories/") {
                    continue;
                }
                view = match entry.kind {
                    LayerKind::File(FileSource::Bytes(bytes)) => {
                        view.with_content(&entry.path, bytes)
                    }
                    _ => view.with(&entry.path, EntryKind::Dir),
                };
            }
        }
        (view, index)
    }

    #[test]
    fn the_links_of_a_rootfs_give_the_index_its_layers_recorded() {
        let (view, recorded) = layered(&[
            ("docker.io/library/nginx:1.25", "a"),
            ("quay.io/team/app:2", "b"),
        ]);
        let index = storage_index(&view).unwrap();
        assert_eq!(index, recorded);
        let nginx = Reference::parse("docker.io/library/nginx:1.25").unwrap();
        let digest = documents("a").top.digest();
        assert_eq!(index.tagged(&nginx), Some(digest.clone()));
        assert!(index.has_image(&nginx, &digest));
        assert!(index.has_blob(&Digest::of(b"layer a")));

        // The same files on disk, as the engine reads its scan view.
        let dir = tempfile::tempdir().unwrap();
        for path in view.walk_files("") {
            let target = dir.path().join(&path);
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::write(&target, view.read(&path).unwrap()).unwrap();
        }
        assert_eq!(
            storage_index(&DirContext::new(dir.path())).unwrap(),
            recorded
        );
    }

    /// A view that can list and read, but not open (as a remote view may be).
    struct ReadOnly(MemoryContext);

    impl ContextView for ReadOnly {
        fn kind(&self, path: &str) -> Option<EntryKind> {
            self.0.kind(path)
        }
        fn list(&self, path: &str) -> Vec<String> {
            self.0.list(path)
        }
        fn read(&self, path: &str) -> io::Result<Vec<u8>> {
            self.0.read(path)
        }
    }

    #[test]
    fn a_view_that_only_reads_gives_the_same_index() {
        let (view, recorded) = layered(&[("docker.io/library/redis:7", "r")]);
        assert_eq!(storage_index(&ReadOnly(view)).unwrap(), recorded);
    }

    #[test]
    fn no_registry_gives_an_empty_index_and_symlinks_are_not_followed() {
        let empty = MemoryContext::new().with_content("charts/x/Chart.yaml", "name: x\n");
        assert_eq!(
            storage_index(&empty).unwrap(),
            StorageIndex::new(REGISTRY_DIR)
        );
        let digest = Digest::of(b"x");
        let link = format!(
            "{REGISTRY_DIR}/{REPOSITORIES_DIR}/x/_layers/sha256/{}/link",
            digest.hex()
        );
        let symlinked = MemoryContext::new().with(&link, EntryKind::Symlink);
        assert!(!storage_index(&symlinked).unwrap().has_blob(&digest));
        let linked = MemoryContext::new().with_content(&link, digest.to_string());
        assert!(storage_index(&linked).unwrap().has_blob(&digest));
    }

    #[test]
    fn a_tag_link_that_names_no_digest_is_an_error_naming_the_file() {
        let tag = format!("{REGISTRY_DIR}/{REPOSITORIES_DIR}/x/_manifests/tags/1/current/link");
        let view = MemoryContext::new().with_content(&tag, "not a digest");
        let message = storage_index(&view).unwrap_err().to_string();
        assert!(message.contains(&tag), "{message}");
    }
}
