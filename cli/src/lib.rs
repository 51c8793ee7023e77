//! The command lines `sealer-build` (image side) and `sealer` (cluster side, with the same
//! image commands). This crate only parses arguments and prints results; the work is done by
//! the library crates.

mod commands;
mod flags;
mod output;
mod progress;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// Which binary is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// `sealer-build`.
    SealerBuild,
    /// `sealer`.
    Sealer,
}

/// Parses the arguments, runs the command and returns the exit code: 0 on success, 1 when the
/// command failed (with the reason on standard error), 2 for invalid arguments.
pub fn run(program: Program) -> ExitCode {
    let (name, about) = match program {
        Program::SealerBuild => ("sealer-build", "Build, inspect and ship ClusterImages"),
        Program::Sealer => (
            "sealer",
            "Work with ClusterImages: the image commands of sealer-build (cluster commands come next)",
        ),
    };
    let matches = flags::Cli::command()
        .name(name)
        .bin_name(name)
        .about(about)
        .long_about(about)
        .get_matches();
    let cli = match flags::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
