//! One module per group of subcommands; `dispatch` runs the one asked for.

pub mod archive;
pub mod auth;
pub mod build;
pub mod build_buildkit;
pub mod cluster;
pub mod images;
pub mod parse;
pub mod registry;
pub mod scan;

use std::process::ExitCode;

use anyhow::{Context, Result};
use image::registry::{RegistryClient, RegistryOptions};
use image::store::Store;

use crate::flags::{Cli, Command, GlobalArgs};

/// Runs the command.
pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let global = &cli.global;
    match cli.command {
        Command::Build(args) => runtime()?.block_on(build::build(global, &args)),
        Command::Parse(args) => parse::parse(&args),
        Command::Lint(args) => parse::lint(&args),
        Command::Pull(args) => runtime()?.block_on(images::pull(global, &args)),
        Command::Push(args) => runtime()?.block_on(images::push(global, &args)),
        Command::Tag(args) => images::tag(global, &args),
        Command::Images(args) if args.context.is_some() => scan::images_of_context(&args),
        Command::Images(args) => images::list(global, &args),
        Command::Inspect(args) => images::inspect(global, &args),
        Command::Rmi(args) => images::rmi(global, &args),
        Command::Prune => images::prune(global),
        Command::Login(args) => runtime()?.block_on(auth::login(global, &args)),
        Command::Logout(args) => auth::logout(&args),
        Command::Save(args) => archive::save(global, &args),
        Command::Load(args) => archive::load(global, &args),
        Command::Export(args) => archive::export(global, &args),
        Command::Registry(args) => registry::run(&args),
        Command::Apply(args) => cluster::apply(global, &args),
        Command::Run(args) => cluster::run(global, &args),
        Command::ScaleUp(args) => cluster::scale_up(global, &args),
        Command::Delete(args) => cluster::delete(global, &args),
        Command::Exec(args) => cluster::exec(global, &args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Opens the local store the global options name.
pub fn store(global: &GlobalArgs) -> Result<Store> {
    let root = global.root.clone().unwrap_or_else(Store::default_root);
    Store::open(&root).with_context(|| format!("cannot open the image store at {}", root.display()))
}

/// A registry client with the global options.
pub fn registry_client(global: &GlobalArgs) -> Result<RegistryClient> {
    let mirrors = global
        .registry_mirrors
        .iter()
        .map(|entry| image::registry::parse_mirror(entry).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    Ok(RegistryClient::new(RegistryOptions {
        insecure_registries: global.insecure_registries.clone(),
        tls_verify: global.tls_verify,
        jobs: global.jobs.max(1),
        mirrors,
        ..RegistryOptions::default()
    }))
}
