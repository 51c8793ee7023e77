//! The Kubefile language: a Dockerfile-like description of a ClusterImage.
//!
//! - [`parse`] reads Kubefile text into a typed AST ([`Kubefile`]) with a span on every word,
//!   and reports every problem it finds as a [`Diagnostic`] (file, line, column, caret, help).
//! - [`plan::build_plan`] resolves ARG/ENV substitution, checks the semantic rules against the
//!   build context ([`context::ContextView`]) and produces the [`plan::BuildPlan`] that both
//!   the embedded engine and the BuildKit lowering execute.
//! - [`printer::print`] writes an AST back as Kubefile text.
//!
//! Nothing here performs I/O except [`context::DirContext`], the read-only view of a context
//! directory on disk.

pub mod context;
pub mod diagnostics;
pub mod expand;
pub mod instructions;
mod lexer;
pub mod plan;
pub mod printer;
pub mod source;

mod check;
mod syntax;

pub use diagnostics::{Diagnostic, Severity};
pub use instructions::{Command, Instruction, Kubefile};
pub use source::{Position, SourceFile, Span};

/// The outcome of parsing: the instructions that could be read, and every diagnostic.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The AST; instructions with errors are left out.
    pub kubefile: Kubefile,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses Kubefile text. Never panics; problems become diagnostics.
pub fn parse(text: &str) -> Parsed {
    let lexed = lexer::lex(text);
    let mut diagnostics = lexed.diagnostics;
    let instructions: Vec<Instruction> = lexed
        .lines
        .iter()
        .filter_map(|line| instructions::parse_line(line, lexed.escape, &mut diagnostics))
        .collect();
    let lines_failed = diagnostics.iter().any(Diagnostic::is_error);
    diagnostics.extend(check::check_structure(&instructions, lines_failed));
    diagnostics.sort_by_key(|d| (d.span.start, d.severity));
    Parsed {
        kubefile: Kubefile {
            escape: lexed.escape,
            directives: lexed.directives,
            instructions,
        },
        diagnostics,
    }
}

/// [`parse_and_plan`] for a build: the plan, or every error rendered (plain text, each with
/// its `file:line:column`); with the warnings rendered the same way, for the caller to show
/// when they matter (once the plan is final, or beside the errors).
pub fn plan_for_build(
    file: &SourceFile,
    options: &plan::PlanOptions<'_>,
) -> (Result<plan::BuildPlan, String>, Vec<String>) {
    let planned = parse_and_plan(file, options);
    let (errors, warnings): (Vec<Diagnostic>, Vec<Diagnostic>) = planned
        .diagnostics
        .into_iter()
        .partition(Diagnostic::is_error);
    let warnings = warnings
        .iter()
        .map(|warning| warning.render(file, false))
        .collect();
    let plan = match planned.plan {
        Some(plan) if errors.is_empty() => Ok(plan),
        _ => Err(diagnostics::render_all(&errors, file, false)),
    };
    (plan, warnings)
}

/// Parses a Kubefile and, when it has no syntax error, plans it: the one call the build
/// backends and the CLI need. Diagnostics of both stages are merged in source order.
pub fn parse_and_plan(file: &SourceFile, options: &plan::PlanOptions<'_>) -> plan::Planned {
    let parsed = parse(file.text());
    let mut planned = if parsed.has_errors() {
        plan::Planned {
            plan: None,
            diagnostics: Vec::new(),
        }
    } else {
        plan::build_plan(&parsed.kubefile, file, options)
    };
    let mut diagnostics = parsed.diagnostics;
    diagnostics.append(&mut planned.diagnostics);
    diagnostics.sort_by_key(|d| (d.span.start, d.severity));
    planned.diagnostics = diagnostics;
    planned
}
