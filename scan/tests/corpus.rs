//! Accuracy on the shared corpus: for every manifest, the discovered set equals its
//! EXPECTED-IMAGES.txt exactly, and every EXPECTED-UNRESOLVED.txt value is a warning.

use std::path::Path;

use scan::{WarningKind, scan_manifest_text};

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn corpus_manifests_match_expected_images_exactly() {
    let Some(dir) = testkit::corpus::corpus_dir("manifests") else {
        return;
    };
    let manifests: Vec<_> = testkit::corpus::sorted_entries(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(manifests.len() >= 11, "expected the 11 corpus manifests");
    let mut failures = Vec::new();
    for manifest in &manifests {
        let stem = manifest.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(manifest).unwrap();
        let report = scan_manifest_text(&manifest.display().to_string(), &text);
        let found = report.references();
        let expected = lines(&dir.join(format!("{stem}.EXPECTED-IMAGES.txt")));
        if found != expected {
            failures.push(format!("{stem}: found {found:#?}\nexpected {expected:#?}"));
        }
        for unresolved in lines(&dir.join(format!("{stem}.EXPECTED-UNRESOLVED.txt"))) {
            let warned = report.warnings.iter().any(|w| {
                w.kind == WarningKind::Unresolved && w.value.as_deref() == Some(&unresolved)
            });
            if !warned {
                failures.push(format!("{stem}: no unresolved warning for {unresolved}"));
            }
        }
        let unexpected: Vec<_> = report
            .warnings
            .iter()
            .filter(|w| w.kind != WarningKind::Unresolved)
            .collect();
        if !unexpected.is_empty() {
            failures.push(format!("{stem}: unexpected warnings {unexpected:#?}"));
        }
        for image in &report.images {
            for source in &image.sources {
                assert!(source.line.is_some() && source.path.is_some(), "{source:?}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
