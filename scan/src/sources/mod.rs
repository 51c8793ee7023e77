//! The places of a build context that name images, one module each, and the shared steps
//! they use: reading a context file, scanning YAML text, and turning image fields into
//! images or warnings.

pub mod archives;
pub mod charts;
pub mod image_list;
pub mod manifests;
pub mod template;

use kubefile::context::ContextView;

use crate::candidate;
use crate::objects::{self, FieldValue, ImageField};
use crate::report::{Collector, Provenance, Warning, WarningKind};
use crate::yaml::{self, Limits};

/// Reads a context file as UTF-8 text; a failure becomes a warning and `None`.
pub(crate) fn read_text(view: &dyn ContextView, path: &str, out: &mut Collector) -> Option<String> {
    match view.read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) => {
                out.warn(
                    WarningKind::Unreadable,
                    path,
                    None,
                    format!("not UTF-8 text: {e}"),
                );
                None
            }
        },
        Err(e) => {
            out.warn(WarningKind::Unreadable, path, None, e.to_string());
            None
        }
    }
}

/// Scans every document of a YAML (or JSON) text for the image fields of its objects.
/// `base` gives the source kind, file and chart; a parse error is a warning naming the file
/// and line, and the documents before it still count.
pub(crate) fn scan_yaml(text: &str, base: &Provenance, limits: &Limits, out: &mut Collector) {
    for document in yaml::documents(text, limits) {
        match document {
            Ok(document) => {
                let fields = objects::document_fields(&document.root);
                record_fields(fields, Some(document.index), base, out);
            }
            Err(e) => out.warn(
                WarningKind::InvalidYaml,
                &base.file,
                Some(e.line),
                format!("invalid YAML (column {}): {}", e.column, e.message),
            ),
        }
    }
}

/// Validates image fields: references become images with provenance, the rest warnings.
pub(crate) fn record_fields(
    fields: Vec<ImageField>,
    document: Option<usize>,
    base: &Provenance,
    out: &mut Collector,
) {
    for field in fields {
        let line = (field.line > 0).then_some(field.line);
        let (kind, value, message) = match field.value {
            FieldValue::Text(text) => match candidate::check(&text) {
                Ok(reference) => {
                    let source = Provenance {
                        line,
                        document,
                        object: field.object,
                        path: Some(field.path),
                        ..base.clone()
                    };
                    out.image(reference, source);
                    continue;
                }
                Err(rejection) => (
                    rejection.warning_kind(),
                    Some(text),
                    rejection.message().to_owned(),
                ),
            },
            FieldValue::Rejected(m) => (WarningKind::InvalidReference, None, m),
        };
        out.push_warning(Warning {
            kind,
            file: base.file.clone(),
            line,
            value,
            message: format!("{}: {message}", field.path),
        });
    }
}

/// Whether a file name has one of the extensions (case-insensitive, without the dot).
pub(crate) fn has_extension(name: &str, extensions: &[&str]) -> bool {
    let lower = name.to_ascii_lowercase();
    extensions
        .iter()
        .any(|ext| lower.len() > ext.len() + 1 && lower.ends_with(&format!(".{ext}")))
}
