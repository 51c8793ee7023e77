//! The shared corpus (`../shared/corpus`: real charts, manifests and Kubefiles with their
//! expected answers). CI has it; a user's clone may not, and then the tests that need it say
//! they were skipped and why.

use std::path::{Path, PathBuf};

/// The corpus folder `relative` (e.g. `charts`), or `None` after printing why the calling
/// test is skipped.
pub fn corpus_dir(relative: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(relative);
    if dir.exists() {
        Some(dir)
    } else {
        println!(
            "skipped: the corpus ({}) is not here; CI has it",
            dir.display()
        );
        None
    }
}

/// The entries of a folder, sorted by name.
pub fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    entries
}
