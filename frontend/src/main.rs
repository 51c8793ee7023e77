//! The frontend binary. BuildKit runs it without arguments (the image's entrypoint `/run`)
//! as a gateway frontend; the build's fetch steps run it as `/run cache-images ...`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args_os().nth(1) {
        None => gateway_mode(),
        Some(mode) if mode == frontend::fetch::SUBCOMMAND => fetch_mode(),
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
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(frontend::run_gateway()) {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            eprintln!("frontend: {error}");
            std::process::exit(1)
        }
    }
}

/// Fetches images for a build step; errors go to stderr, which BuildKit shows.
fn fetch_mode() -> ExitCode {
    let args = match frontend::fetch::FetchArgs::parse(std::env::args().skip(2)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{}: {error}", frontend::fetch::SUBCOMMAND);
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(frontend::fetch::fetch(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A multi-thread runtime (the gateway view blocks on it from blocking tasks); `None` after
/// saying why there is none.
fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .inspect_err(|error| eprintln!("frontend: cannot start the async runtime: {error}"))
        .ok()
}
