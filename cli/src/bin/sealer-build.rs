//! `sealer-build`: build, inspect and ship ClusterImages.

fn main() -> std::process::ExitCode {
    cli::run(cli::Program::SealerBuild)
}
