//! Image discovery for ClusterImages: every container image a build context needs, found
//! exactly and with provenance.
//!
//! [`scan`] reads a build context through a [`ContextView`] (a directory, or later a merged
//! view of image layers) and looks in:
//! - `manifests/` (recursively): `.yaml`, `.yml`, `.json` files as Kubernetes objects, and
//!   `.tmpl` files rendered with the build's environment ([`sources::manifests`]);
//! - `manifests/imageList` and `--image-list` lists, files or texts ([`sources::image_list`]);
//! - `charts/` and chart apps under `application/apps/`, rendered with the user's values;
//!   other apps are scanned like manifests ([`sources::charts`]);
//! - `images/`: docker-save and OCI archives, listed, not loaded ([`sources::archives`]).
//!
//! Image fields are read from typed pod specs, and generically from custom resources
//! ([`objects`]); every candidate is validated and normalized ([`candidate`]), and anything
//! unusable becomes a [`Warning`] naming the file and line, never an image and never an
//! abort. The [`ScanReport`] is sorted, de-duplicated and deterministic; ignore lists
//! ([`ignore`]) remove entries and say what they removed.

pub mod candidate;
pub mod ignore;
pub mod objects;
pub mod options;
pub mod report;
pub mod sources;

use kubefile::context::{ContextView, EntryKind, join};

pub use ignore::IgnoreList;
pub use options::{ChartValues, ListSource, ScanOptions};
pub use report::{
    Collector, DiscoveredImage, IgnoredImage, ObjectRef, Provenance, ScanReport, SourceKind,
    Warning, WarningKind,
};

/// The directory of raw manifests.
const MANIFESTS_DIR: &str = "manifests";
/// The image list inside the context.
const IMAGE_LIST: &str = "manifests/imageList";
/// The directory of charts.
const CHARTS_DIR: &str = "charts";
/// The directory of apps.
const APPS_DIR: &str = "application/apps";
/// The directory of image archives.
const IMAGES_DIR: &str = "images";
/// The ignore list inside the context.
const SEALERIGNORE: &str = ".sealerignore";

/// Scans a build context for every image it needs.
pub fn scan(view: &dyn ContextView, options: &ScanOptions) -> ScanReport {
    let mut out = Collector::new();
    sources::manifests::scan_dir(view, MANIFESTS_DIR, &options.env, &options.limits, &mut out);
    if view.kind(IMAGE_LIST) == Some(EntryKind::File)
        && let Some(text) = sources::read_text(view, IMAGE_LIST, &mut out)
    {
        sources::image_list::scan_text(IMAGE_LIST, &text, &mut out);
    }
    for list in &options.image_lists {
        match list.read() {
            Ok(text) => sources::image_list::scan_text(&list.name(), &text, &mut out),
            Err(e) => out.warn(WarningKind::Unreadable, &list.name(), None, e.to_string()),
        }
    }
    sources::charts::scan_dir(view, CHARTS_DIR, options, &mut out);
    for app in view.list(APPS_DIR) {
        let dir = join(APPS_DIR, &app);
        if sources::charts::is_chart_dir(view, &dir) {
            sources::charts::scan_chart_dir(view, &dir, options, &mut out);
        } else {
            sources::manifests::scan_dir(view, &dir, &options.env, &options.limits, &mut out);
        }
    }
    sources::archives::scan_dir(view, IMAGES_DIR, &mut out);
    for chart in options.chart_values.keys() {
        if !out.has_chart(chart) {
            out.warn(
                WarningKind::Chart,
                chart,
                None,
                format!("values were given for chart {chart}, but the context has no chart of that name or path"),
            );
        }
    }

    let mut ignore = IgnoreList::new();
    if view.kind(SEALERIGNORE) == Some(EntryKind::File)
        && let Some(text) = sources::read_text(view, SEALERIGNORE, &mut out)
    {
        ignore.add_text(SEALERIGNORE, &text, &mut out);
    }
    for list in &options.ignored_image_lists {
        match list.read() {
            Ok(text) => ignore.add_text(&list.name(), &text, &mut out),
            Err(e) => out.warn(WarningKind::Unreadable, &list.name(), None, e.to_string()),
        }
    }
    let mut report = out.finish();
    ignore.apply(&mut report);
    report
}

/// Scans one manifest text alone; `name` is the file named in provenance and warnings.
pub fn scan_manifest_text(name: &str, text: &str) -> ScanReport {
    let mut out = Collector::new();
    sources::manifests::scan_text(name, text, &options::default_limits(), &mut out);
    out.finish()
}

/// Scans one image list text alone.
pub fn scan_image_list_text(name: &str, text: &str) -> ScanReport {
    let mut out = Collector::new();
    sources::image_list::scan_text(name, text, &mut out);
    out.finish()
}

/// Lists one image archive alone.
pub fn scan_archive(name: &str, reader: impl std::io::Read) -> ScanReport {
    let mut out = Collector::new();
    sources::archives::scan_archive(name, reader, &mut out);
    out.finish()
}

/// Scans one chart alone (`path` names it in provenance and warnings).
pub fn scan_chart(
    path: &str,
    input: &sources::charts::ChartInput,
    options: &ScanOptions,
) -> ScanReport {
    let mut out = Collector::new();
    sources::charts::scan_chart(path, input, options, &mut out);
    out.finish()
}

#[cfg(test)]
mod tests {
    use kubefile::context::MemoryContext;

    use super::*;

    #[test]
    fn lists_given_as_texts_feed_and_filter_the_scan_under_their_names() {
        let view = MemoryContext::new()
            .with_content("manifests/imageList", "nginx:1.27\nredis:7\n")
            .with_content(".sealerignore", "redis:7\n");
        let missing = std::path::PathBuf::from("/nonexistent/sealer-scan-test/list.txt");
        let options = ScanOptions {
            image_lists: vec![
                ListSource::Text {
                    name: "extra-list".into(),
                    text: "# comment\nbusybox:1\nalpine:3\n".into(),
                },
                ListSource::File(missing.clone()),
            ],
            ignored_image_lists: vec![ListSource::Text {
                name: "context/.sealerignore".into(),
                text: "alpine:3\n".into(),
            }],
            ..ScanOptions::default()
        };
        let report = scan(&view, &options);
        assert_eq!(
            report.references(),
            [
                "docker.io/library/busybox:1",
                "docker.io/library/nginx:1.27"
            ]
        );
        let busybox = &report.images[0];
        assert_eq!(busybox.sources[0].kind, SourceKind::ImageList);
        assert_eq!(busybox.sources[0].file, "extra-list");
        assert_eq!(busybox.sources[0].line, Some(2));
        let origins: Vec<(String, String)> = report
            .ignored
            .iter()
            .map(|i| (i.reference.to_string(), i.origin.clone()))
            .collect();
        assert_eq!(
            origins,
            [
                (
                    "docker.io/library/alpine:3".to_owned(),
                    "context/.sealerignore:1".to_owned()
                ),
                (
                    "docker.io/library/redis:7".to_owned(),
                    ".sealerignore:1".to_owned()
                ),
            ]
        );
        let unreadable: Vec<&Warning> = report
            .warnings
            .iter()
            .filter(|w| w.kind == WarningKind::Unreadable)
            .collect();
        assert_eq!(unreadable.len(), 1, "{:?}", report.warnings);
        assert_eq!(unreadable[0].file, missing.display().to_string());
    }
}
