//! Diagnostics: errors and warnings that point at a span of the Kubefile, rendered either as
//! one `file:line:column: severity: message` line or as a miette report with the source line
//! and a caret under the offending text.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

use crate::source::{Position, SourceFile, Span};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The Kubefile cannot be built.
    Error,
    /// The Kubefile builds, but probably not as its author meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in a Kubefile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What went wrong, in one sentence.
    pub message: String,
    /// Where: the text the caret points at.
    pub span: Span,
    /// A short text shown under the caret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            label: None,
            help: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    /// Adds the text shown under the caret.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds advice on how to fix the problem.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The line and column where the diagnostic points.
    pub fn position(&self, file: &SourceFile) -> Position {
        file.position(self.span.start)
    }

    /// `file:line:column: severity: message`, the form editors and CI logs understand.
    pub fn short(&self, file: &SourceFile) -> String {
        let pos = self.position(file);
        format!(
            "{}:{}:{}: {}: {}",
            file.name(),
            pos.line,
            pos.column,
            self.severity,
            self.message
        )
    }

    /// A multi-line report: the short line, the source line with a caret, and the help.
    pub fn render(&self, file: &SourceFile, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
        let view = MietteView {
            diagnostic: self,
            heading: self.short(file),
            source: NamedSource::new(file.name(), file.text().to_owned()),
        };
        let mut out = String::new();
        if handler.render_report(&mut out, &view).is_err() {
            out.clone_from(&view.heading);
        }
        out
    }
}

/// Renders every diagnostic of a file, errors first in source order, then warnings.
pub fn render_all(diagnostics: &[Diagnostic], file: &SourceFile, color: bool) -> String {
    let mut sorted: Vec<&Diagnostic> = diagnostics.iter().collect();
    sorted.sort_by_key(|d| (d.severity, d.span.start));
    sorted
        .iter()
        .map(|d| d.render(file, color))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug)]
struct MietteView<'a> {
    diagnostic: &'a Diagnostic,
    heading: String,
    source: NamedSource<String>,
}

impl fmt::Display for MietteView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.heading)
    }
}

impl std::error::Error for MietteView<'_> {}

impl miette::Diagnostic for MietteView<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.diagnostic.span;
        let label = LabeledSpan::new(
            Some(
                self.diagnostic
                    .label
                    .clone()
                    .unwrap_or_else(|| "here".to_owned()),
            ),
            span.start,
            span.len(),
        );
        Some(Box::new(std::iter::once(label)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_names_file_line_and_column() {
        let file = SourceFile::new("ctx/Kubefile", "FROM scratch\nFOO bar\n");
        let d = Diagnostic::error(Span::new(13, 16), "unknown instruction FOO");
        assert_eq!(
            d.short(&file),
            "ctx/Kubefile:2:1: error: unknown instruction FOO"
        );
    }

    #[test]
    fn report_shows_the_line_and_a_caret() {
        let file = SourceFile::new("Kubefile", "FROM scratch\nFOO bar\n");
        let d = Diagnostic::error(Span::new(13, 16), "unknown instruction FOO")
            .with_label("not an instruction")
            .with_help("remove it");
        let out = d.render(&file, false);
        assert!(
            out.contains("Kubefile:2:1: error: unknown instruction FOO"),
            "{out}"
        );
        assert!(out.contains("FOO bar"), "{out}");
        assert!(out.contains("not an instruction"), "{out}");
        assert!(out.contains("remove it"), "{out}");
    }
}
