//! Image list files (`manifests/imageList`, `--image-list FILE`): one reference per line,
//! `#` starting a comment, blank lines and surrounding spaces ignored.

use crate::candidate;
use crate::report::{Collector, Provenance, SourceKind, Warning};

/// The entries of a list text: (1-based line, entry) for every non-blank, non-comment line.
pub fn entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let entry = line.split('#').next().unwrap_or_default().trim();
        (!entry.is_empty()).then_some((i + 1, entry))
    })
}

/// Scans an image list; `name` is the file named in provenance and warnings. An invalid line
/// is a warning with its line.
pub fn scan_text(name: &str, text: &str, out: &mut Collector) {
    for (line, entry) in entries(text) {
        match candidate::check(entry) {
            Ok(reference) => {
                let mut source = Provenance::new(SourceKind::ImageList, name);
                source.line = Some(line);
                out.image(reference, source);
            }
            Err(rejection) => out.push_warning(Warning {
                kind: rejection.warning_kind(),
                file: name.to_owned(),
                line: Some(line),
                value: Some(entry.to_owned()),
                message: rejection.message().to_owned(),
            }),
        }
    }
}
