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

/// Subcommands of `sealer` only: `sealer-build` hides them.
const CLUSTER_COMMANDS: [&str; 5] = ["apply", "run", "scale-up", "delete", "exec"];

/// Parses the arguments, runs the command and returns the exit code: 0 on success, 1 when the
/// command failed (with the reason on standard error), 2 for invalid arguments.
pub fn run(program: Program) -> ExitCode {
    let (name, about) = match program {
        Program::SealerBuild => ("sealer-build", "Build, inspect and ship ClusterImages"),
        Program::Sealer => (
            "sealer",
            "Install and manage clusters from ClusterImages over SSH, with the image commands of sealer-build",
        ),
    };
    let mut command = flags::Cli::command();
    if program == Program::SealerBuild {
        for cluster_command in CLUSTER_COMMANDS {
            command = command.mut_subcommand(cluster_command, |sub| sub.hide(true));
        }
    }
    let matches = command
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
