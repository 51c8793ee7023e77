//! Image archives: `save` writes an OCI image layout as a tar, with a `manifest.json` as
//! `docker save` (Docker 25 and later) writes it, so that both `docker load` and OCI tools read
//! it; `load` reads OCI archives and `docker save` archives of any Docker version (config and
//! layer files anywhere in the tar, layers compressed or not).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;

use crate::digest::{Digest, HashingReader};
use crate::manifest::{
    Descriptor, Index, Manifest, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_TAR,
    OCI_LAYER_ZSTD, OCI_MANIFEST, REF_NAME_ANNOTATION, is_index, sniff_media_type,
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

/// Loads every image of an archive into the store; returns their names. An OCI layout with
/// named images (our archives, Docker 25+) is loaded as it is, keeping every digest; an older
/// `docker save` archive gets an OCI manifest made from its `manifest.json`.
pub fn load(store: &Store, input: &Path) -> Result<Vec<Reference>, ArchiveError> {
    let _lock = store.lock_shared()?;
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
    if let Some(index) = index.filter(|i| i.manifests.iter().any(|d| named(d).is_some())) {
        for (name, path) in &unpacked.files {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                let digest = Digest::from_hex(hex).map_err(|e| invalid(e.to_string()))?;
                import_blob(store, path, Some(&digest))?;
            }
        }
        let mut loaded = Vec::new();
        for entry in &index.manifests {
            let Some(name) = named(entry) else {
                continue;
            };
            let mut descriptor = entry.clone();
            descriptor.annotations.clear();
            let missing = store.missing_blobs(&descriptor)?;
            if !missing.is_empty() {
                return Err(invalid(format!(
                    "{name}: the archive lacks {} of its blobs ({})",
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
            store.tag(&name, &descriptor, None)?;
            loaded.push(name);
        }
        return Ok(loaded);
    }
    let manifest_json = unpacked.read("manifest.json").ok_or_else(|| {
        invalid(
            "neither index.json (OCI archive) nor manifest.json (docker save archive) is in it"
                .into(),
        )
    })?;
    load_docker(store, &unpacked, &manifest_json, &invalid)
}

/// Loads the images a `docker save` `manifest.json` lists.
fn load_docker(
    store: &Store,
    unpacked: &Unpacked,
    manifest_json: &[u8],
    invalid: &dyn Fn(String) -> ArchiveError,
) -> Result<Vec<Reference>, ArchiveError> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(manifest_json).map_err(|e| {
        invalid(format!(
            "manifest.json is not a `docker save` manifest: {e}"
        ))
    })?;
    let mut loaded = Vec::new();
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
        for tag in &entry.repo_tags {
            let name = Reference::parse(tag).map_err(|e| invalid(e.to_string()))?;
            store.tag(&name, &descriptor, None)?;
            loaded.push(name);
        }
    }
    Ok(loaded)
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
