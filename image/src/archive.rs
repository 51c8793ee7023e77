//! Image archives: `save` writes an OCI image layout as a tar, with a `manifest.json` as
//! `docker save` (Docker 25 and later) writes it, so that both `docker load` and OCI tools read
//! it; `load` reads OCI archives and `docker save` archives of any Docker version (config and
//! layer files anywhere in the tar, layers compressed or not); `read_images` reads the same
//! archives into the store's blobs only, for the registry storage of a ClusterImage.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;

use crate::digest::{Digest, HashingReader};
use crate::distribution::{Document, ImageDocuments};
use crate::manifest::{
    Descriptor, Index, Manifest, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_TAR,
    OCI_LAYER_ZSTD, OCI_MANIFEST, REF_NAME_ANNOTATION, is_index, is_manifest, sniff_media_type,
};
use crate::reference::Reference;
use crate::store::{Store, StoreError, StoredImage};

/// Errors of saving and loading archives.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The archive or file.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// The archive is neither an OCI archive nor a `docker save` archive, or is damaged.
    #[error("{path}: {reason}")]
    Invalid {
        /// The archive.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `save` adds Docker's `manifest.json` and `repositories`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// OCI image layout only.
    Oci,
    /// OCI image layout plus `docker load`'s files.
    Docker,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn append_bytes<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, bytes)
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Directory);
    builder.append_data(&mut header, name, io::empty())
}

/// Writes images of the store into an archive at `output` (atomically: a temporary file renamed
/// at the end).
pub fn save(
    store: &Store,
    images: &[StoredImage],
    output: &Path,
    format: ArchiveFormat,
) -> Result<(), ArchiveError> {
    let _lock = store.lock_shared()?;
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err(output))?;
    let mut builder = tar::Builder::new(BufWriter::new(tmp.as_file()));
    builder.mode(tar::HeaderMode::Deterministic);
    let mut blobs = std::collections::BTreeSet::new();
    for image in images {
        blobs.extend(store.referenced_blobs(&image.descriptor)?);
    }
    append_bytes(
        &mut builder,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(io_err(output))?;
    append_dir(&mut builder, "blobs/").map_err(io_err(output))?;
    append_dir(&mut builder, "blobs/sha256/").map_err(io_err(output))?;
    for digest in &blobs {
        let path = store.blob_path(digest);
        let mut file = File::open(&path).map_err(io_err(&path))?;
        let size = file.metadata().map_err(io_err(&path))?.len();
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(
                &mut header,
                format!("blobs/sha256/{}", digest.hex()),
                &mut file,
            )
            .map_err(io_err(output))?;
    }
    let manifests: Vec<serde_json::Value> = images
        .iter()
        .map(|image| {
            let mut d = image.descriptor.clone();
            d.annotations.clear();
            d.annotations
                .insert(REF_NAME_ANNOTATION.to_owned(), image.name.to_string());
            d.annotations.insert(
                "io.containerd.image.name".to_owned(),
                image.name.to_string(),
            );
            serde_json::to_value(d).unwrap_or_default()
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    append_bytes(
        &mut builder,
        "index.json",
        &serde_json::to_vec(&index).unwrap_or_default(),
    )
    .map_err(io_err(output))?;
    if format == ArchiveFormat::Docker {
        let mut entries = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for image in images {
            if is_index(&image.descriptor.media_type) {
                continue;
            }
            let manifest = store.read_manifest(&image.descriptor.digest)?;
            let repo = image.name.familiar_name();
            let tag = image.name.tag().map(|t| format!("{repo}:{t}"));
            entries.push(json!({
                "Config": format!("blobs/sha256/{}", manifest.config.digest.hex()),
                "RepoTags": tag.iter().collect::<Vec<_>>(),
                "Layers": manifest.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
            }));
            if let (Some(t), Some(last)) = (image.name.tag(), manifest.layers.last()) {
                repositories
                    .entry(repo)
                    .or_default()
                    .insert(t.to_owned(), last.digest.hex().to_owned());
            }
        }
        append_bytes(
            &mut builder,
            "manifest.json",
            &serde_json::to_vec(&entries).unwrap_or_default(),
        )
        .map_err(io_err(output))?;
        append_bytes(
            &mut builder,
            "repositories",
            &serde_json::to_vec(&repositories).unwrap_or_default(),
        )
        .map_err(io_err(output))?;
    }
    let writer = builder.into_inner().map_err(io_err(output))?;
    writer.into_inner().map_err(|e| ArchiveError::Io {
        path: output.display().to_string(),
        source: e.into_error(),
    })?;
    tmp.as_file().sync_all().map_err(io_err(output))?;
    tmp.persist(output).map_err(|e| ArchiveError::Io {
        path: output.display().to_string(),
        source: e.error,
    })?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// An archive unpacked into a scratch directory (deleted on drop): where each archive path
/// landed.
struct Unpacked {
    _dir: tempfile::TempDir,
    files: BTreeMap<String, PathBuf>,
}

impl Unpacked {
    fn read(&self, name: &str) -> Option<Vec<u8>> {
        self.files
            .get(name.trim_start_matches("./"))
            .and_then(|p| fs::read(p).ok())
    }

    fn path(&self, name: &str) -> Option<&Path> {
        self.files
            .get(name.trim_start_matches("./"))
            .map(PathBuf::as_path)
    }
}

fn unpack_archive(store: &Store, input: &Path) -> Result<Unpacked, ArchiveError> {
    let dir = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(store.root().join("tmp"))
        .map_err(io_err(input))?;
    let file = File::open(input).map_err(io_err(input))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let mut files = BTreeMap::new();
    let entries = archive.entries().map_err(io_err(input))?;
    for (n, entry) in entries.enumerate() {
        let mut entry = entry.map_err(io_err(input))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry
            .path()
            .map_err(io_err(input))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        let target = dir.path().join(format!("{n}"));
        let mut out = File::create(&target).map_err(io_err(&target))?;
        io::copy(&mut entry, &mut out).map_err(io_err(input))?;
        files.insert(name, target);
    }
    Ok(Unpacked { _dir: dir, files })
}

/// Stores the file at `path` as a blob; returns its digest and size.
fn import_blob(
    store: &Store,
    path: &Path,
    expected: Option<&Digest>,
) -> Result<(Digest, u64), ArchiveError> {
    let mut reader = HashingReader::new(File::open(path).map_err(io_err(path))?);
    io::copy(&mut reader, &mut io::sink()).map_err(io_err(path))?;
    let (digest, size) = reader.finish();
    if let Some(expected) = expected
        && *expected != digest
    {
        return Err(ArchiveError::Invalid {
            path: path.display().to_string(),
            reason: format!("blob {expected} in the archive hashes to {digest}"),
        });
    }
    if !store.has_blob(&digest) {
        let mut writer = store.blob_writer(&digest)?;
        if writer.is_stored() {
            return Ok((digest, size));
        }
        writer.restart()?;
        io::copy(&mut File::open(path).map_err(io_err(path))?, &mut writer)
            .map_err(io_err(path))?;
        writer.commit()?;
    }
    Ok((digest, size))
}

fn layer_media_type(path: &Path) -> Result<&'static str, ArchiveError> {
    let mut magic = [0u8; 4];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(io_err(path))?;
    Ok(match &magic[..n.min(4)] {
        [0x1f, 0x8b, ..] => OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => OCI_LAYER_ZSTD,
        _ => OCI_LAYER_TAR,
    })
}

/// An image of an archive whose blobs were read into the store (without naming it there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveImage {
    /// The name the archive gives it.
    pub reference: Reference,
    /// Its manifest, or its index with every child manifest.
    pub documents: ImageDocuments,
    /// The config and layer blobs of its manifests, each once.
    pub blobs: Vec<Descriptor>,
}

/// An image found in an archive, its blobs in the store.
struct Imported {
    /// The name the archive gives it, if any.
    name: Option<Reference>,
    /// Its top-level manifest or index.
    descriptor: Descriptor,
}

/// Loads every image of an archive into the store; returns their names. An OCI layout with
/// named images (our archives, Docker 25+) is loaded as it is, keeping every digest; an older
/// `docker save` archive gets an OCI manifest made from its `manifest.json`. Images without a
/// name are skipped, unless no image has one, which is an error.
pub fn load(store: &Store, input: &Path) -> Result<Vec<Reference>, ArchiveError> {
    let _lock = store.lock_shared()?;
    let imported = import(store, input)?;
    let mut loaded = Vec::new();
    for image in &imported {
        if let Some(name) = &image.name {
            store.tag(name, &image.descriptor, None)?;
            loaded.push(name.clone());
        }
    }
    match imported.iter().find(|image| image.name.is_none()) {
        Some(unnamed) if loaded.is_empty() => Err(unnamed_image(input, &unnamed.descriptor)),
        _ => Ok(loaded),
    }
}

/// Reads every image of an archive (OCI or `docker save`, as [`load`] does) into the store's
/// blobs without naming any in the store, and returns each with its documents and blobs (an
/// image tagged several times comes once per name). An image without a name is an error. The
/// blobs are not referenced by any name in the store: hold the store's shared lock
/// ([`Store::lock_shared`]) until they are used, or `prune` may delete them.
pub fn read_images(store: &Store, input: &Path) -> Result<Vec<ArchiveImage>, ArchiveError> {
    let _lock = store.lock_shared()?;
    import(store, input)?
        .into_iter()
        .map(|image| {
            let reference = image
                .name
                .ok_or_else(|| unnamed_image(input, &image.descriptor))?;
            let (documents, blobs) = image_documents(store, input, &image.descriptor)?;
            Ok(ArchiveImage {
                reference,
                documents,
                blobs,
            })
        })
        .collect()
}

/// The error for an image of `input` that has no name.
fn unnamed_image(input: &Path, descriptor: &Descriptor) -> ArchiveError {
    ArchiveError::Invalid {
        path: input.display().to_string(),
        reason: format!(
            "the image {} has no name: an OCI archive names it with an `io.containerd.image.name` annotation (or `org.opencontainers.image.ref.name` holding the full name, such as docker.io/library/nginx:1.25), a `docker save` archive with `RepoTags`; save it with its name",
            descriptor.digest
        ),
    }
}

/// The documents of a stored image (its manifest, or its index and every child manifest) and
/// the config and layer blobs they name.
fn image_documents(
    store: &Store,
    input: &Path,
    descriptor: &Descriptor,
) -> Result<(ImageDocuments, Vec<Descriptor>), ArchiveError> {
    let document = |descriptor: &Descriptor| -> Result<Document, ArchiveError> {
        let bytes = store.read_blob(&descriptor.digest)?;
        Ok(Document::new(descriptor.media_type.clone(), bytes))
    };
    let top = document(descriptor)?;
    let manifests = if is_index(&descriptor.media_type) {
        let index = store.read_index_document(&descriptor.digest)?;
        if let Some(nested) = index.manifests.iter().find(|m| !is_manifest(&m.media_type)) {
            return Err(ArchiveError::Invalid {
                path: input.display().to_string(),
                reason: format!(
                    "the index {} lists {} of type {}, but only image manifests can go into a registry storage",
                    descriptor.digest, nested.digest, nested.media_type
                ),
            });
        }
        index.manifests
    } else {
        vec![descriptor.clone()]
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut blobs = Vec::new();
    let mut children = Vec::new();
    for manifest_descriptor in &manifests {
        let manifest = store.read_manifest(&manifest_descriptor.digest)?;
        blobs.extend(
            std::iter::once(manifest.config)
                .chain(manifest.layers)
                .filter(|blob| seen.insert(blob.digest.clone())),
        );
        if is_index(&descriptor.media_type) {
            children.push(document(manifest_descriptor)?);
        }
    }
    Ok((ImageDocuments { top, children }, blobs))
}

/// Reads the blobs of every image of an archive into the store; returns the images. An OCI
/// layout is read as it is when one of its images is named or when there is no `docker save`
/// `manifest.json`; else `manifest.json` is read.
fn import(store: &Store, input: &Path) -> Result<Vec<Imported>, ArchiveError> {
    let unpacked = unpack_archive(store, input)?;
    let invalid = |reason: String| ArchiveError::Invalid {
        path: input.display().to_string(),
        reason,
    };
    let index = match unpacked.read("index.json") {
        Some(bytes) => Some(
            serde_json::from_slice::<Index>(&bytes)
                .map_err(|e| invalid(format!("index.json: {e}")))?,
        ),
        None => None,
    };
    // `io.containerd.image.name` holds the full name; `ref.name` is a full name only in our
    // archives (tools such as skopeo write just a tag there, which names no repository).
    let named = |d: &Descriptor| {
        d.annotations
            .get("io.containerd.image.name")
            .or_else(|| {
                d.annotations
                    .get(REF_NAME_ANNOTATION)
                    .filter(|n| n.contains('/'))
            })
            .and_then(|n| Reference::parse(n).ok())
    };
    let manifest_json = unpacked.read("manifest.json");
    if let Some(index) =
        index.filter(|i| manifest_json.is_none() || i.manifests.iter().any(|d| named(d).is_some()))
    {
        for (name, path) in &unpacked.files {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                let digest = Digest::from_hex(hex).map_err(|e| invalid(e.to_string()))?;
                import_blob(store, path, Some(&digest))?;
            }
        }
        let mut imported = Vec::new();
        for entry in &index.manifests {
            let name = named(entry);
            let mut descriptor = entry.clone();
            descriptor.annotations.clear();
            let missing = store.missing_blobs(&descriptor)?;
            if !missing.is_empty() {
                let image = name
                    .as_ref()
                    .map_or_else(|| descriptor.digest.to_string(), ToString::to_string);
                return Err(invalid(format!(
                    "{image}: the archive lacks {} of its blobs ({})",
                    missing.len(),
                    missing
                        .iter()
                        .take(3)
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let bytes = store.read_blob(&descriptor.digest)?;
            if let Some(media_type) = sniff_media_type(Some(&descriptor.media_type), &bytes) {
                descriptor.media_type = media_type;
            }
            imported.push(Imported { name, descriptor });
        }
        return Ok(imported);
    }
    let manifest_json = manifest_json.ok_or_else(|| {
        invalid(
            "neither index.json (OCI archive) nor manifest.json (docker save archive) is in it"
                .into(),
        )
    })?;
    import_docker(store, &unpacked, &manifest_json, &invalid)
}

/// Reads the images a `docker save` `manifest.json` lists.
fn import_docker(
    store: &Store,
    unpacked: &Unpacked,
    manifest_json: &[u8],
    invalid: &dyn Fn(String) -> ArchiveError,
) -> Result<Vec<Imported>, ArchiveError> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(manifest_json).map_err(|e| {
        invalid(format!(
            "manifest.json is not a `docker save` manifest: {e}"
        ))
    })?;
    let mut imported = Vec::new();
    for entry in entries {
        let config_path = unpacked.path(&entry.config).ok_or_else(|| {
            invalid(format!(
                "manifest.json names {} but the archive lacks it",
                entry.config
            ))
        })?;
        let (config_digest, config_size) = import_blob(store, config_path, None)?;
        let config: crate::manifest::ImageConfig =
            serde_json::from_slice(&store.read_blob(&config_digest)?)
                .map_err(|e| invalid(format!("{}: not an image config: {e}", entry.config)))?;
        let mut layers = Vec::new();
        for layer in &entry.layers {
            let path = unpacked.path(layer).ok_or_else(|| {
                invalid(format!(
                    "manifest.json names {layer} but the archive lacks it"
                ))
            })?;
            let media_type = layer_media_type(path)?;
            let (digest, size) = import_blob(store, path, None)?;
            layers.push(sized_descriptor(media_type, digest, size));
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_owned()),
            config: sized_descriptor(OCI_CONFIG, config_digest, config_size),
            layers,
            annotations: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| invalid(e.to_string()))?;
        store.write_blob(&bytes)?;
        let mut descriptor = Descriptor::of(OCI_MANIFEST, &bytes);
        descriptor.platform = Some(crate::manifest::DescriptorPlatform {
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            variant: config.variant.clone(),
            os_version: None,
        });
        if entry.repo_tags.is_empty() {
            imported.push(Imported {
                name: None,
                descriptor,
            });
            continue;
        }
        for tag in &entry.repo_tags {
            let name = Reference::parse(tag).map_err(|e| invalid(e.to_string()))?;
            imported.push(Imported {
                name: Some(name),
                descriptor: descriptor.clone(),
            });
        }
    }
    Ok(imported)
}

fn sized_descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
        platform: None,
        annotations: BTreeMap::new(),
        urls: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::OCI_LAYER_GZIP;

    /// A store with an image `name` of one layer; returns the store and the manifest.
    fn store_with_image(root: &Path, name: &str, layer: &[u8]) -> (Store, Descriptor) {
        let store = Store::open(root).unwrap();
        let manifest = manifest_of(&store, name, layer);
        store
            .tag(&Reference::parse(name).unwrap(), &manifest, None)
            .unwrap();
        (store, manifest)
    }

    /// Stores a config and a layer and an OCI manifest over them.
    fn manifest_of(store: &Store, name: &str, layer: &[u8]) -> Descriptor {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[]}},"name":"{name}"}}"#
        );
        let config_digest = store.write_blob(config.as_bytes()).unwrap();
        let layer_digest = store.write_blob(layer).unwrap();
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_owned()),
            config: sized_descriptor(OCI_CONFIG, config_digest, config.len() as u64),
            layers: vec![sized_descriptor(
                OCI_LAYER_GZIP,
                layer_digest,
                layer.len() as u64,
            )],
            annotations: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&manifest).unwrap();
        store.write_blob(&bytes).unwrap();
        Descriptor::of(OCI_MANIFEST, &bytes)
    }

    fn blob_digests(image: &ArchiveImage) -> Vec<Digest> {
        image.blobs.iter().map(|b| b.digest.clone()).collect()
    }

    #[test]
    fn read_images_stores_blobs_without_naming_them() {
        let work = tempfile::tempdir().unwrap();
        let (source, manifest) =
            store_with_image(&work.path().join("source"), "example.com/app:1", b"layer");
        let images = source.list().unwrap();
        let expected = source.read_manifest(&manifest.digest).unwrap();
        for format in [ArchiveFormat::Oci, ArchiveFormat::Docker] {
            let archive = work.path().join(format!("{format:?}.tar"));
            save(&source, &images, &archive, format).unwrap();
            let target = Store::open(work.path().join(format!("target-{format:?}"))).unwrap();
            let read = read_images(&target, &archive).unwrap();
            assert_eq!(read.len(), 1);
            let image = &read[0];
            assert_eq!(image.reference.to_string(), "example.com/app:1");
            assert_eq!(image.documents.top.digest(), manifest.digest);
            assert!(image.documents.children.is_empty());
            assert_eq!(
                blob_digests(image),
                [
                    expected.config.digest.clone(),
                    expected.layers[0].digest.clone()
                ]
            );
            for blob in &image.blobs {
                assert!(target.has_blob(&blob.digest));
            }
            assert!(target.list().unwrap().is_empty(), "nothing is named");
        }
    }

    #[test]
    fn an_index_comes_with_every_child() {
        let work = tempfile::tempdir().unwrap();
        let store = Store::open(work.path().join("source")).unwrap();
        let amd64 = manifest_of(&store, "amd64", b"amd64 layer");
        let arm64 = manifest_of(&store, "arm64", b"arm64 layer");
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd64, arm64],
        }))
        .unwrap();
        store.write_blob(&index).unwrap();
        let descriptor = Descriptor::of(OCI_INDEX, &index);
        let name = Reference::parse("example.com/multi:1").unwrap();
        store.tag(&name, &descriptor, None).unwrap();
        let archive = work.path().join("multi.tar");
        save(&store, &store.list().unwrap(), &archive, ArchiveFormat::Oci).unwrap();

        let target = Store::open(work.path().join("target")).unwrap();
        let read = read_images(&target, &archive).unwrap();
        assert_eq!(read.len(), 1);
        let documents = &read[0].documents;
        assert_eq!(documents.top.digest(), descriptor.digest);
        let children: Vec<Digest> = documents.children.iter().map(Document::digest).collect();
        assert_eq!(children, [amd64.digest, arm64.digest]);
        assert_eq!(read[0].blobs.len(), 4, "two configs, two layers");
    }

    /// An OCI archive whose index entry carries only a tag as `ref.name`, as skopeo writes it.
    fn unnamed_archive(work: &Path) -> PathBuf {
        let (store, manifest) = store_with_image(&work.join("source"), "example.com/x:1", b"x");
        let archive = work.join("unnamed.tar");
        let mut builder = tar::Builder::new(File::create(&archive).unwrap());
        for digest in store.referenced_blobs(&manifest).unwrap() {
            let bytes = store.read_blob(&digest).unwrap();
            append_bytes(
                &mut builder,
                &format!("blobs/sha256/{}", digest.hex()),
                &bytes,
            )
            .unwrap();
        }
        let mut entry = manifest;
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_owned(), "1".to_owned());
        let index = json!({"schemaVersion": 2, "manifests": [entry]});
        append_bytes(
            &mut builder,
            "index.json",
            &serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        builder.into_inner().unwrap();
        archive
    }

    #[test]
    fn an_image_without_a_name_is_an_error_naming_the_archive() {
        let work = tempfile::tempdir().unwrap();
        let archive = unnamed_archive(work.path());
        let target = Store::open(work.path().join("target")).unwrap();
        for error in [
            read_images(&target, &archive).unwrap_err(),
            load(&target, &archive).unwrap_err(),
        ] {
            let message = error.to_string();
            assert!(
                message.starts_with(&archive.display().to_string()),
                "{message}"
            );
            assert!(message.contains("has no name"), "{message}");
        }
        assert!(target.list().unwrap().is_empty());
    }

    #[test]
    fn docker_save_archives_without_index_are_read() {
        let work = tempfile::tempdir().unwrap();
        let archive = work.path().join("docker.tar");
        let config =
            br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let mut builder = tar::Builder::new(File::create(&archive).unwrap());
        append_bytes(&mut builder, "abc/layer.tar", b"not really a tar").unwrap();
        append_bytes(&mut builder, "config.json", config).unwrap();
        let manifest = json!([
            {"Config": "config.json", "RepoTags": ["app:1", "app:latest"], "Layers": ["abc/layer.tar"]},
            {"Config": "config.json", "RepoTags": [], "Layers": ["abc/layer.tar"]},
        ]);
        append_bytes(
            &mut builder,
            "manifest.json",
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
        builder.into_inner().unwrap();

        let store = Store::open(work.path().join("store")).unwrap();
        let error = read_images(&store, &archive).unwrap_err();
        assert!(error.to_string().contains("has no name"), "{error}");
        let loaded = load(&store, &archive).unwrap();
        let names: Vec<String> = loaded.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            ["docker.io/library/app:1", "docker.io/library/app:latest"]
        );
        let stored = store.resolve(&loaded[0]).unwrap();
        assert_eq!(
            stored.descriptor.platform.map(|p| p.architecture),
            Some("arm64".to_owned())
        );
    }
}
