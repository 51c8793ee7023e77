//! Structural rules that hold before any expansion: FROM comes first and once, LAUNCH or CMDS
//! comes last and once, CMD and LAUNCH exclude each other.

use crate::diagnostics::Diagnostic;
use crate::instructions::{Command, Instruction};
use crate::source::Span;

/// Checks the order and count rules over a parsed instruction list.
///
/// With `lines_failed`, some instructions were dropped for syntax errors, so the rules about
/// FROM's place are not checked (the dropped line may have been the FROM).
pub(crate) fn check_structure(instructions: &[Instruction], lines_failed: bool) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let first_from = instructions
        .iter()
        .position(|i| matches!(i.command, Command::From(_)));
    match first_from {
        _ if lines_failed => {}
        None => diagnostics.push(
            Diagnostic::error(
                instructions
                    .first()
                    .map_or(Span::default(), |i| i.keyword_span),
                "a Kubefile must have a FROM instruction",
            )
            .with_label("expected FROM before this")
            .with_help("start with `FROM scratch` or `FROM <base ClusterImage>`"),
        ),
        Some(index) => {
            if let Some(before) = instructions[..index]
                .iter()
                .find(|i| !matches!(i.command, Command::Arg(_)))
            {
                diagnostics.push(
                    Diagnostic::error(
                        before.keyword_span,
                        format!("{} comes before FROM", before.command.keyword()),
                    )
                    .with_label("before FROM")
                    .with_help("FROM must be the first instruction; only ARG may come before it"),
                );
            }
            for later in instructions[index + 1..]
                .iter()
                .filter(|i| matches!(i.command, Command::From(_)))
            {
                diagnostics.push(
                    Diagnostic::error(later.keyword_span, "only one FROM is allowed")
                        .with_label("second FROM")
                        .with_help(
                            "a Kubefile builds one image in one stage; use COPY --from=<image> to take files from another image",
                        ),
                );
            }
        }
    }

    let finals: Vec<(usize, &Instruction)> = instructions
        .iter()
        .enumerate()
        .filter(|(_, i)| matches!(i.command, Command::Launch(_) | Command::Cmds(_)))
        .collect();
    for (n, &(index, instruction)) in finals.iter().enumerate() {
        let keyword = instruction.command.keyword();
        if n > 0 {
            let (_, first) = finals[0];
            let message = if first.command.keyword() == keyword {
                format!("only one {keyword} is allowed")
            } else {
                "LAUNCH and CMDS cannot both be used".to_owned()
            };
            diagnostics.push(
                Diagnostic::error(instruction.keyword_span, message)
                    .with_label("second one")
                    .with_help("keep a single LAUNCH (apps to start) or CMDS (commands to run), as the last instruction"),
            );
        } else if index + 1 < instructions.len() {
            let next = &instructions[index + 1];
            diagnostics.push(
                Diagnostic::error(
                    instruction.keyword_span,
                    format!("{keyword} must be the last instruction"),
                )
                .with_label(format!("followed by {}", next.command.keyword()))
                .with_help(format!("move {keyword} to the end of the Kubefile")),
            );
        }
    }

    let launch = instructions
        .iter()
        .find(|i| matches!(i.command, Command::Launch(_)));
    let cmd = instructions
        .iter()
        .find(|i| matches!(i.command, Command::Cmd(_)));
    if let (Some(launch), Some(cmd)) = (launch, cmd) {
        let later = if cmd.span.start > launch.span.start {
            cmd
        } else {
            launch
        };
        diagnostics.push(
            Diagnostic::error(later.keyword_span, "CMD and LAUNCH cannot both be used")
                .with_label("conflicts")
                .with_help(
                    "LAUNCH starts apps; put extra commands in the app's APPCMDS, or use CMDS alone",
                ),
        );
    }
    diagnostics
}
