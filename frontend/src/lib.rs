//! The Kubefile frontend for BuildKit: `docker build` runs it (through `# syntax=` or the
//! `BUILDKIT_SYNTAX` build argument) inside the daemon, where it talks to BuildKit's gateway
//! over stdin/stdout, reads the Kubefile and the build context, and returns the image.

pub mod build;
pub mod error;
pub mod fetch;
pub mod gateway;
pub mod opts;
pub mod scan_inputs;
pub mod stdio;
pub mod view;

use llb::caps::Caps;
use llb::source::LocalOpts;
use llb::{Graph, Vertex};

pub use error::FrontendError;
pub use gateway::{Gateway, GatewayError, Pong, RefId};
pub use opts::{FrontendOptions, OptionsError};
pub use view::GatewayView;

/// The build file as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFile {
    /// Its name (the `filename` option).
    pub name: String,
    /// Its text.
    pub text: String,
    /// The text of `<name>.dockerignore`, if the client sent one.
    pub dockerignore: Option<String>,
}

/// Runs gateway mode: connects to BuildKit on stdin/stdout, builds, and hands the result or
/// the error back with exactly one `Return`. The error is only for failures to talk to the
/// gateway at all; build errors go to the user through `Return`. Nothing may be printed to
/// stdout, which carries the connection.
pub async fn run_gateway() -> Result<(), GatewayError> {
    let gateway = Gateway::connect_stdio().await?;
    serve(&gateway, FrontendOptions::from_env()).await
}

/// Builds with `options` (as parsed from the environment; an error is reported to the user)
/// and `Return`s the outcome on `gateway`.
pub async fn serve(
    gateway: &Gateway,
    options: Result<FrontendOptions, OptionsError>,
) -> Result<(), GatewayError> {
    match build(gateway, options).await {
        Ok((reference, metadata)) => gateway.return_result(&reference, metadata).await,
        Err(error) => {
            eprintln!("frontend: {error}");
            gateway.return_error(&error.to_string()).await
        }
    }
}

async fn build(
    gateway: &Gateway,
    options: Result<FrontendOptions, OptionsError>,
) -> Result<(RefId, Vec<(String, Vec<u8>)>), FrontendError> {
    let pong = gateway.ping().await?;
    let options = options?;
    let build_file = load_build_file(gateway, &options, &pong.llb_caps).await?;
    let built = build::build(gateway, &options, &pong, build_file).await?;
    Ok((built.rootfs, built.metadata))
}

/// Solves the build-file local (only the build file and its `.dockerignore` are
/// transferred, as BuildKit's Dockerfile frontend does) and reads both.
pub async fn load_build_file(
    gateway: &Gateway,
    options: &FrontendOptions,
    llb_caps: &Caps,
) -> Result<BuildFile, FrontendError> {
    let name = options.filename.clone();
    let ignore_name = format!("{name}.dockerignore");
    let source = llb::source::local(
        &options.build_file_local,
        &LocalOpts {
            session: options.session_id.clone(),
            follow_paths: vec![name.clone(), ignore_name.clone()],
            shared_key_hint: options.build_file_local.clone(),
            ..LocalOpts::default()
        },
    );
    let mut graph = Graph::new();
    let output = graph.add_vertex(Vertex {
        metadata: source
            .metadata
            .named(format!("[internal] load build definition from {name}")),
        op: source.op,
    });
    llb_caps.require_all(&graph.caps(&output))?;
    let reference = gateway.solve(graph.definition(&output)).await?;
    let text = match gateway.read_file(&reference, &name).await {
        Ok(bytes) => utf8(bytes, &name)?,
        Err(error) if error.is_not_found() => {
            return Err(FrontendError::BuildFileMissing {
                name,
                local: options.build_file_local.clone(),
            });
        }
        Err(error) => return Err(error.into()),
    };
    let dockerignore = match gateway.read_file(&reference, &ignore_name).await {
        Ok(bytes) => Some(utf8(bytes, &ignore_name)?),
        Err(error) if error.is_not_found() => None,
        Err(error) => return Err(error.into()),
    };
    Ok(BuildFile {
        name,
        text,
        dockerignore,
    })
}

fn utf8(bytes: Vec<u8>, name: &str) -> Result<String, FrontendError> {
    String::from_utf8(bytes).map_err(|_| FrontendError::NotUtf8 {
        name: name.to_owned(),
    })
}
