//! Image archives (`images/*.tar`, `.tar.gz`, `.tgz`): the references a `docker save` archive
//! (`manifest.json` `RepoTags`) or an OCI archive (`index.json` annotations
//! `io.containerd.image.name`, or `org.opencontainers.image.ref.name` when it is a full name)
//! carries. The archive is only listed, streaming, never unpacked: its images are loaded by
//! the build, not pulled.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use flate2::read::GzDecoder;
use kubefile::context::{ContextView, join};
use serde::Deserialize;

use super::has_extension;
use crate::candidate;
use crate::report::{Collector, Provenance, SourceKind, WarningKind};

/// Extensions of files read as image archives.
const ARCHIVE_EXTENSIONS: [&str; 3] = ["tar", "tar.gz", "tgz"];

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Deserialize)]
struct OciDescriptor {
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The image names an archive carries, each with the archive entry that names it
/// (`manifest.json` or `index.json`), in archive order. Gzip-compressed archives are
/// recognized by their magic bytes.
pub fn list_names(reader: impl Read) -> Result<Vec<(String, String)>, String> {
    let mut buffered = BufReader::new(reader);
    let magic = buffered.fill_buf().map_err(|e| e.to_string())?;
    let input: Box<dyn Read + '_> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(input);
    let mut names = Vec::new();
    let (mut seen_docker, mut seen_oci) = (false, false);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?;
        let path = path.to_string_lossy();
        let name = path.trim_start_matches("./").to_owned();
        if name != "manifest.json" && name != "index.json" {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{name}: {e}"))?;
        if name == "manifest.json" {
            seen_docker = true;
            let entries: Vec<DockerEntry> =
                serde_json::from_slice(&bytes).map_err(|e| format!("{name}: {e}"))?;
            for tag in entries
                .into_iter()
                .flat_map(|e| e.repo_tags.unwrap_or_default())
            {
                names.push((name.clone(), tag));
            }
        } else {
            seen_oci = true;
            let index: OciIndex =
                serde_json::from_slice(&bytes).map_err(|e| format!("{name}: {e}"))?;
            for descriptor in index.manifests {
                let annotations = descriptor.annotations;
                let full = annotations.get("io.containerd.image.name").or_else(|| {
                    annotations
                        .get("org.opencontainers.image.ref.name")
                        .filter(|n| n.contains('/'))
                });
                if let Some(full) = full {
                    names.push((name.clone(), full.clone()));
                }
            }
        }
        if seen_docker && seen_oci {
            break;
        }
    }
    if !seen_docker && !seen_oci {
        return Err(
            "neither manifest.json (docker save) nor index.json (OCI) is in the archive".into(),
        );
    }
    Ok(names)
}

/// Lists one archive; `name` is the file named in provenance and warnings.
pub fn scan_archive(name: &str, reader: impl Read, out: &mut Collector) {
    let names = match list_names(reader) {
        Ok(names) => names,
        Err(e) => {
            out.warn(
                WarningKind::Archive,
                name,
                None,
                format!("not a readable image archive: {e}"),
            );
            return;
        }
    };
    if names.is_empty() {
        out.warn(
            WarningKind::Archive,
            name,
            None,
            "the archive names no image (no RepoTags, no full image name annotation)",
        );
    }
    for (entry, image) in names {
        match candidate::check(&image) {
            Ok(reference) => {
                let mut source = Provenance::new(SourceKind::Archive, name);
                source.path = Some(entry);
                out.image(reference, source);
            }
            Err(rejection) => out.warn(
                rejection.warning_kind(),
                name,
                None,
                format!("{entry}: {}", rejection.message()),
            ),
        }
    }
}

/// Lists every archive under `dir` of the context, recursively, in path order.
pub fn scan_dir(view: &dyn ContextView, dir: &str, out: &mut Collector) {
    for relative in view.walk_files(dir) {
        let path = join(dir, &relative);
        if !has_extension(&path, &ARCHIVE_EXTENSIONS) {
            continue;
        }
        match view.open(&path) {
            Ok(reader) => scan_archive(&path, reader, out),
            Err(e) => out.warn(WarningKind::Unreadable, &path, None, e.to_string()),
        }
    }
}
