//! The scan view: the parts of the merged root filesystem the image scanner reads (charts,
//! manifests, apps, image archives, and the registry's repository links), applied from every
//! layer in order without the rest (binaries, the registry's blobs). Views are kept in the
//! build cache under the key of the layers they come from, so a rebuild reuses them.

use std::fs;
use std::path::{Path, PathBuf};

use image::Digest;

use crate::error::BuildError;

/// The rootfs subtrees the scan and the image caching read.
pub const SCAN_SUBTREES: [&str; 5] = [
    "charts",
    "manifests",
    "application",
    "images",
    "registry/docker/registry/v2/repositories",
];

/// How many views the cache keeps.
const KEPT_VIEWS: usize = 4;
/// A view used this recently is never evicted (another build may be scanning it).
const MIN_VIEW_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The view of `layers` (blob files, lowest first), made once per `key`. A view appears by
/// an atomic rename of a complete directory and is never replaced, so builds running at once
/// share it safely; its `<key>.used` marker records when it was last used. The view is
/// assembled in `work_dir` (on the same file system), which a killed build leaves to be
/// cleaned with its work directory.
pub fn prepare(
    cache_dir: &Path,
    work_dir: &Path,
    key: &Digest,
    layers: &[PathBuf],
) -> Result<PathBuf, BuildError> {
    let views = cache_dir.join("views");
    let view = views.join(key.hex());
    let marker = views.join(format!("{}.used", key.hex()));
    if view.is_dir() {
        fs::write(&marker, b"").map_err(BuildError::io(format!("writing {}", marker.display())))?;
        return Ok(view);
    }
    fs::create_dir_all(&views).map_err(BuildError::io(format!("creating {}", views.display())))?;
    let staging = tempfile::Builder::new()
        .prefix("view-")
        .tempdir_in(work_dir)
        .map_err(BuildError::io(format!(
            "creating a directory in {}",
            work_dir.display()
        )))?;
    crate::rootfs::materialize_subtrees(
        layers,
        staging.path(),
        SCAN_SUBTREES.iter().map(|s| (*s).to_owned()).collect(),
    )
    .map_err(|e| BuildError::Io {
        what: "preparing the scan view".into(),
        source: std::io::Error::other(e),
    })?;
    if let Err(error) = fs::rename(staging.path(), &view)
        && !view.is_dir()
    {
        return Err(BuildError::Io {
            what: format!("creating {}", view.display()),
            source: error,
        });
    }
    fs::write(&marker, b"").map_err(BuildError::io(format!("writing {}", marker.display())))?;
    evict_old_views(&views, KEPT_VIEWS);
    Ok(view)
}

/// Removes all but the `kept` most recently used views, sparing those used within
/// [`MIN_VIEW_AGE`] (best effort).
fn evict_old_views(views: &Path, kept: usize) {
    let Ok(entries) = fs::read_dir(views) else {
        return;
    };
    let mut markers: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "used"))
        .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    markers.sort();
    let excess = markers.len().saturating_sub(kept);
    let now = std::time::SystemTime::now();
    for (_, marker) in markers.into_iter().take(excess).filter(|(used, _)| {
        now.duration_since(*used)
            .is_ok_and(|age| age > MIN_VIEW_AGE)
    }) {
        let _ = fs::remove_file(&marker);
        let _ = fs::remove_dir_all(marker.with_extension(""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::layer::{EntryKind, FileSource, LayerEntry, LayerOptions, write_layer};

    fn layer(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let entries = files.iter().map(|(path, content)| LayerEntry {
            path: (*path).into(),
            kind: EntryKind::File(FileSource::Bytes(content.as_bytes().to_vec())),
            mode: 0o644,
            uid: 0,
            gid: 0,
        });
        let path = dir.join(name);
        write_layer(
            entries,
            &LayerOptions::default(),
            fs::File::create(&path).unwrap(),
        )
        .unwrap();
        path
    }

    #[test]
    fn views_hold_the_scanned_subtrees_of_all_layers_and_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let lower = layer(
            dir.path(),
            "lower",
            &[("bin/kubeadm", "x"), ("charts/a/Chart.yaml", "a")],
        );
        let upper = layer(
            dir.path(),
            "upper",
            &[("manifests/m.yaml", "m"), ("charts/.wh.a", "")],
        );
        let cache = dir.path().join("cache");
        let key = Digest::of(b"chain");
        let view = prepare(&cache, dir.path(), &key, &[lower.clone(), upper.clone()]).unwrap();
        assert!(view.join("manifests/m.yaml").is_file());
        assert!(!view.join("charts/a").exists());
        assert!(!view.join("bin").exists());
        fs::remove_file(&upper).unwrap();
        assert_eq!(
            prepare(&cache, dir.path(), &key, &[lower, upper]).unwrap(),
            view
        );
    }
}
