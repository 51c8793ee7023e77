//! Deciding whether a candidate string is an image reference. Every candidate, from any
//! source, goes through [`check`]: template and parameter expressions are told apart from
//! malformed references so the warning says which, and nothing is ever guessed.

use image::Reference;

use crate::report::WarningKind;

/// Why a candidate is not an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A template, parameter or variable expression (`{{ .x }}`, `${X}`, `$(params.X)`,
    /// `parameter.image`): something else fills it in later.
    Unresolved(String),
    /// Not a valid image reference.
    Invalid(String),
}

impl Rejection {
    /// The explanation.
    pub fn message(&self) -> &str {
        match self {
            Rejection::Unresolved(m) | Rejection::Invalid(m) => m,
        }
    }

    /// The kind of warning it makes.
    pub fn warning_kind(&self) -> WarningKind {
        match self {
            Rejection::Unresolved(_) => WarningKind::Unresolved,
            Rejection::Invalid(_) => WarningKind::InvalidReference,
        }
    }
}

/// Validates and normalizes a candidate.
pub fn check(text: &str) -> Result<Reference, Rejection> {
    if let Some(reason) = expression_reason(text) {
        return Err(Rejection::Unresolved(format!(
            "`{text}` is {reason}, not an image reference"
        )));
    }
    Reference::parse(text).map_err(|e| Rejection::Invalid(e.to_string()))
}

/// Says what kind of expression `text` looks like, if it looks like one.
fn expression_reason(text: &str) -> Option<&'static str> {
    if text.contains("{{") || text.contains("}}") {
        Some("a template expression")
    } else if text.contains("${") || text.contains("$(") || text.starts_with('$') {
        Some("a variable or parameter reference")
    } else if text.contains('.') && !text.contains(['/', ':', '@']) {
        // A lone dotted name (`parameter.image`, `values.image`) is an expression of some
        // configuration language; Docker would read it as `docker.io/library/parameter.image`.
        Some("a field expression")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_valid_references() {
        assert_eq!(
            check("busybox").unwrap().to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            check("mirror.gcr.io/bash:5").unwrap().to_string(),
            "mirror.gcr.io/bash:5"
        );
    }

    #[test]
    fn tells_expressions_from_invalid_text() {
        for text in [
            "{{ .Values.image }}",
            "${IMAGE}",
            "$(params.BUILDER_IMAGE)",
            "$IMAGE",
            "parameter.image",
        ] {
            assert!(
                matches!(check(text), Err(Rejection::Unresolved(_))),
                "{text}"
            );
        }
        for text in ["", "a//b", "lower/Upper", "a b", "x:"] {
            assert!(matches!(check(text), Err(Rejection::Invalid(_))), "{text}");
        }
    }
}
