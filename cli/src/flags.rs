//! Command-line flags, following docker/buildx conventions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Build, inspect and ship ClusterImages.
#[derive(Debug, Parser)]
#[command(name = "sealer-build", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse a Kubefile and print its build plan as JSON.
    Parse(KubefileArgs),
    /// Report every problem in a Kubefile; fails only on errors, not on warnings.
    Lint(KubefileArgs),
}

/// Which Kubefile to read and how to resolve it.
#[derive(Debug, Args)]
pub struct KubefileArgs {
    /// The build context directory.
    #[arg(default_value = ".")]
    pub context: PathBuf,

    /// The Kubefile (default: CONTEXT/Kubefile; `-` reads standard input).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,

    /// Set a build argument (NAME=value, or NAME to take it from the environment).
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,

    /// The platform to plan for (os/arch[/variant]); default: this machine's.
    #[arg(long)]
    pub platform: Option<String>,

    /// The image type.
    #[arg(long = "type", default_value = "kube-installer", value_parser = ["kube-installer", "app-installer"])]
    pub image_type: String,

    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Human)]
    pub format: DiagnosticFormat,
}

/// Diagnostic output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    /// The source line with a caret and advice.
    Human,
    /// One `file:line:column: severity: message` line each.
    Short,
    /// A JSON array.
    Json,
}
