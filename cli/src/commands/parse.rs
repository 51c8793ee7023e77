//! `sealer-build parse` and `sealer-build lint`: read a Kubefile, plan it against its context,
//! and print the plan or the problems.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use kubefile::context::DirContext;
use kubefile::plan::{BuildArgs, PlanOptions, Planned, Platform};
use kubefile::{Diagnostic, SourceFile};

use crate::flags::KubefileArgs;
use crate::output::print_diagnostics;

/// Reads the Kubefile the arguments name.
fn read_kubefile(args: &KubefileArgs) -> Result<SourceFile> {
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| args.context.join("Kubefile"));
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the Kubefile from standard input")?;
        return Ok(SourceFile::new("<stdin>", text));
    }
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read the Kubefile {}{}",
            path.display(),
            if args.file.is_none() {
                " (give another one with -f)"
            } else {
                ""
            }
        )
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{} is not UTF-8 text: {e}", path.display()))?;
    Ok(SourceFile::new(display_path(&path), text))
}

fn display_path(path: &Path) -> String {
    path.strip_prefix("./")
        .map_or_else(|_| path.display().to_string(), |p| p.display().to_string())
}

/// Parses and plans; returns the file and everything found.
fn plan(args: &KubefileArgs) -> Result<(SourceFile, Planned)> {
    let file = read_kubefile(args)?;
    if !args.context.is_dir() {
        anyhow::bail!(
            "the build context {} is not a directory",
            args.context.display()
        );
    }
    let build_args = BuildArgs::from_cli(&args.build_args, &|name| std::env::var(name).ok())
        .map_err(anyhow::Error::msg)?;
    let context = DirContext::new(PathBuf::from(&args.context));
    let mut options = PlanOptions::new(&context);
    options.build_args = build_args;
    if let Some(platform) = &args.platform {
        options.target_platform = platform
            .parse::<Platform>()
            .map_err(|e| anyhow::anyhow!("invalid --platform: {e}"))?;
    }
    options.image_type = args.image_type.parse().map_err(anyhow::Error::msg)?;
    let planned = kubefile::parse_and_plan(&file, &options);
    Ok((file, planned))
}

/// `parse`: the plan as JSON on stdout, diagnostics on stderr; exit 1 on errors.
pub fn parse(args: &KubefileArgs) -> Result<ExitCode> {
    let (file, planned) = plan(args)?;
    print_diagnostics(&planned.diagnostics, &file, args.format);
    match planned.plan {
        Some(plan) => {
            println!("{}", serde_json::to_string_pretty(&plan)?);
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::from(1)),
    }
}

/// `lint`: every diagnostic; exit 1 only when one is an error.
pub fn lint(args: &KubefileArgs) -> Result<ExitCode> {
    let (file, planned) = plan(args)?;
    print_diagnostics(&planned.diagnostics, &file, args.format);
    if planned.diagnostics.iter().any(Diagnostic::is_error) {
        Ok(ExitCode::from(1))
    } else {
        if planned.diagnostics.is_empty() {
            eprintln!("{}: no problems found", file.name());
        }
        Ok(ExitCode::SUCCESS)
    }
}
