//! `sealer-build`: the ClusterImage command line. This crate only parses arguments and prints
//! results; the work is done by the library crates.

mod commands;
mod flags;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = flags::Cli::parse();
    let result = match cli.command {
        flags::Command::Parse(args) => commands::parse::parse(&args),
        flags::Command::Lint(args) => commands::parse::lint(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
