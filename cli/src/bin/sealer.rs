//! `sealer`: the cluster side, with the same image commands as `sealer-build`.

fn main() -> std::process::ExitCode {
    cli::run(cli::Program::Sealer)
}
