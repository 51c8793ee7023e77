//! Printing diagnostics to standard error in the format the user asked for.

use std::io::IsTerminal;

use kubefile::{Diagnostic, SourceFile};

use crate::flags::DiagnosticFormat;

/// Whether stderr should get colours (a terminal, and `NO_COLOR` unset).
fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Prints diagnostics, then a count of errors and warnings when there are any.
pub fn print_diagnostics(diagnostics: &[Diagnostic], file: &SourceFile, format: DiagnosticFormat) {
    if diagnostics.is_empty() {
        return;
    }
    match format {
        DiagnosticFormat::Human => {
            eprint!(
                "{}",
                kubefile::diagnostics::render_all(diagnostics, file, color())
            );
        }
        DiagnosticFormat::Short => {
            for d in diagnostics {
                eprintln!("{}", d.short(file));
            }
        }
        DiagnosticFormat::Json => {
            let items: Vec<serde_json::Value> = diagnostics
                .iter()
                .map(|d| {
                    let pos = d.position(file);
                    serde_json::json!({
                        "file": file.name(),
                        "line": pos.line,
                        "column": pos.column,
                        "severity": d.severity,
                        "message": d.message,
                        "label": d.label,
                        "help": d.help,
                    })
                })
                .collect();
            eprintln!(
                "{}",
                serde_json::to_string_pretty(&items).unwrap_or_default()
            );
            return;
        }
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    eprintln!(
        "{}: {errors} error{}, {warnings} warning{}",
        file.name(),
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" }
    );
}
