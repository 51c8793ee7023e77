//! `registry serve`: the built-in registry in the foreground.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result};
use registry::config::{ServeConfig, ServeFlags};
use registry::server::{Server, ServerOptions, shutdown_signal};

use crate::flags::{RegistryArgs, RegistryCommand, ServeArgs};

/// Runs a registry subcommand.
pub fn run(args: &RegistryArgs) -> Result<ExitCode> {
    match &args.command {
        RegistryCommand::Serve(serve_args) => super::runtime()?.block_on(serve(serve_args)),
    }
}

/// Serves until SIGINT or SIGTERM; prints the URL it listens on and the upstreams first.
async fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let config = ServeConfig::resolve(&ServeFlags {
        config: args.config.clone(),
        addr: args.addr.clone(),
        storage: args.storage.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        htpasswd: args.htpasswd.clone(),
        enable_push: args.enable_push,
    })?;
    let shutdown = shutdown_signal().context("cannot watch for SIGINT and SIGTERM")?;
    let options = ServerOptions::from_config(&config)?;
    let upstreams = options
        .upstreams
        .as_ref()
        .map(registry::upstream::Upstreams::describe)
        .unwrap_or_default();
    let server = Server::bind(&config.addr, options).await?;
    let mut stdout = std::io::stdout().lock();
    let mut announce = || {
        writeln!(stdout, "listening on {} ({config})", server.url())?;
        for (name, url) in &upstreams {
            writeln!(stdout, "pull-through cache of {name} at {url}")?;
        }
        stdout.flush()
    };
    announce().context("cannot write to standard output")?;
    drop(stdout);
    server.run(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
