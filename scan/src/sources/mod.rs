//! The places of a build context that name images, one module each, and the shared steps
//! they use: reading a context file, scanning YAML text, and turning image fields into
//! images or warnings.

pub mod archives;
pub mod charts;
pub mod image_list;
pub mod manifests;
pub mod template;

use kubefile::context::ContextView;
use kyaml::Limits;

use crate::candidate;
use crate::objects::{self, FieldValue, ImageField};
use crate::report::{Collector, Provenance, Warning, WarningKind};

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

/// Scans every document of a YAML (or JSON) text for the image fields of its objects, one
/// document at a time. `base` gives the source kind, file and chart; a parse error is a warning
/// naming the file and line, and the documents before it and from the next `---` on still
/// count.
pub(crate) fn scan_yaml(text: &str, base: &Provenance, limits: &Limits, out: &mut Collector) {
    // Empty documents are kept, and an error stands for the document it is in, so that the
    // count is each document's index in the file.
    for (index, document) in kyaml::documents(text, limits).keep_empty().enumerate() {
        scan_document(document, index, 1, base, out);
    }
}

/// Records the image fields of one parsed document (or a warning for a parse error), whose
/// text starts on line `first_line` of the file `base` names.
pub(crate) fn scan_document(
    document: Result<kyaml::Document, kyaml::YamlError>,
    index: usize,
    first_line: usize,
    base: &Provenance,
    out: &mut Collector,
) {
    let shift = |line: usize| {
        if line > 0 {
            line + first_line - 1
        } else {
            line
        }
    };
    match document {
        Ok(document) => {
            let mut fields = objects::document_fields(&document.root);
            for field in &mut fields {
                field.line = shift(field.line);
            }
            record_fields(fields, Some(index), base, out);
        }
        Err(e) => out.warn(
            WarningKind::InvalidYaml,
            &base.file,
            Some(shift(e.line)),
            format!("invalid YAML (column {}): {}", e.column, e.message),
        ),
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
