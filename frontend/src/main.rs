//! The frontend binary. BuildKit runs it without arguments (the image's entrypoint `/run`)
//! as a gateway frontend.

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args_os().nth(1) {
        None => gateway_mode(),
        Some(mode) => {
            eprintln!(
                "frontend: unknown mode `{}`; without arguments this program is a BuildKit gateway frontend (use it through `# syntax=` in a Kubefile)",
                mode.to_string_lossy()
            );
            ExitCode::from(2)
        }
    }
}

/// Serves BuildKit on stdin/stdout, then exits at once: the build waits for the process to
/// end, and nothing left on the runtime may delay that.
fn gateway_mode() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("frontend: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(frontend::run_gateway()) {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            eprintln!("frontend: {error}");
            std::process::exit(1)
        }
    }
}
