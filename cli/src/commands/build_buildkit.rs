//! `build --buildkit`: the Kubefile built by BuildKit (Docker's or a standalone buildkitd)
//! with the Kubefile frontend. This process serves the build's session (context files,
//! scan inputs, credentials), follows the Status stream, and receives the outputs that come
//! back through the session.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bkclient::addr::{Address, DockerHost, TlsFiles};
use bkclient::filesync::{
    DirTarget, FILE_SEND_METHOD, FILE_SYNC_METHOD, FileTarget, SyncService, SyncedDir,
    TransferStats,
};
use bkclient::session::Session;
use bkclient::status::StatusModel;
use bollard_buildkit_proto::moby::buildkit::v1::SolveRequest;
use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use bollard_buildkit_proto::moby::filesync::{packet, v1};
use frontend::scan_inputs::{INPUTS_LOCAL, SCAN_OPTION, ScanFlags, ScanInputs};
use image::Reference;
use serde::Serialize;
use tonic::transport::Channel;

use crate::flags::{BuildArgs, GlobalArgs, OutputFormat, ProgressMode, SessionTransport};

/// Exit code of an interrupted build, as shells report SIGINT.
const INTERRUPTED: u8 = 130;
/// The frontend every Solve asks for: BuildKit runs the `source` image's binary.
const GATEWAY_FRONTEND: &str = "gateway.v0";
/// Session local names the frontend reads (as Docker's Dockerfile frontend names them).
const CONTEXT_LOCAL: &str = "context";
const DOCKERFILE_LOCAL: &str = "dockerfile";
/// The image config key of the moby and image exporters' answer.
const IMAGE_DIGEST_KEY: &str = "containerimage.digest";

/// Runs the build through BuildKit; prints the summary.
pub async fn build(global: &GlobalArgs, args: &BuildArgs) -> Result<ExitCode> {
    let request = BuildRequest::from_args(global, args)?;
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot watch for Ctrl-C")?;
    // Dropping the Solve cancels it: tonic resets the stream and BuildKit stops the build.
    let outcome = tokio::select! {
        outcome = request.run(global.quiet) => outcome,
        _ = interrupts.recv() => {
            request.remove_partial_outputs();
            eprintln!("error: the build was interrupted");
            return Ok(ExitCode::from(INTERRUPTED));
        }
    };
    let summary = outcome?;
    // An archive written to standard output leaves the summary to standard error.
    let mut out: Box<dyn std::io::Write> = if request.writes_to_stdout() {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    match args.format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?,
        OutputFormat::Table => summary.write_table(&mut out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Where one Solve's result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Export {
    /// Into Docker's image store under these names (`moby` exporter).
    DockerImages(Vec<String>),
    /// As an image in a standalone BuildKit, pushed when asked (`image` exporter).
    RegistryImages { names: Vec<String>, push: bool },
    /// The rootfs into a local directory.
    Local(PathBuf),
    /// The rootfs as a tar file (`-`: standard output).
    Tar(PathBuf),
    /// The image as an OCI archive.
    Oci(PathBuf),
}

impl Export {
    fn exporter(&self) -> &'static str {
        match self {
            Export::DockerImages(_) => "moby",
            Export::RegistryImages { .. } => "image",
            Export::Local(_) => "local",
            Export::Tar(_) => "tar",
            Export::Oci(_) => "oci",
        }
    }

    fn describe(&self) -> String {
        match self {
            Export::DockerImages(names) | Export::RegistryImages { names, .. } => names.join(", "),
            Export::Tar(path) | Export::Oci(path) if path.as_os_str() == "-" => {
                format!("{} archive to standard output", self.exporter())
            }
            Export::Local(path) | Export::Tar(path) | Export::Oci(path) => {
                format!("{} {}", self.exporter(), path.display())
            }
        }
    }
}

/// Everything one `build --buildkit` does, checked before anything is sent.
struct BuildRequest {
    address: Address,
    session_transport: SessionTransport,
    context: PathBuf,
    kubefile_dir: PathBuf,
    frontend_attrs: HashMap<String, String>,
    entitlements: Vec<String>,
    exports: Vec<Export>,
    /// The image names, also given to an OCI archive.
    tags: Vec<String>,
    image_exporter_attrs: HashMap<String, String>,
    /// The daemon that pushes the tags, for `--push` with `--buildkit docker`.
    push_through: Option<DockerHost>,
    progress: ProgressMode,
    scan_inputs: Option<ScanInputsDir>,
}

/// The scan inputs (values files, image lists) copied for the session.
struct ScanInputsDir {
    dir: tempfile::TempDir,
}

impl BuildRequest {
    fn from_args(global: &GlobalArgs, args: &BuildArgs) -> Result<Self> {
        let options = &args.buildkit_options;
        if !args.annotations.is_empty() {
            bail!(
                "--annotation is not supported with --buildkit: BuildKit's exporters write the manifest"
            );
        }
        if args.isolation != "none" {
            bail!(
                "--isolation is not supported with --buildkit: RUN steps run in BuildKit's containers"
            );
        }
        if args.platform.len() > 1 {
            bail!(
                "--buildkit builds one platform at a time (BuildKit v0.8 in Docker returns one image); got {}",
                args.platform.join(",")
            );
        }
        let tls = TlsFiles {
            ca: options.tls_ca.clone(),
            cert: options.tls_cert.clone(),
            key: options.tls_key.clone(),
            server_name: options.tls_server_name.clone(),
        };
        let value = args.buildkit.as_deref().filter(|value| !value.is_empty());
        let address = Address::parse(value, tls, &|name| std::env::var(name).ok()).map_err(|error| {
            let mut error = anyhow::Error::from(error);
            if value.is_some_and(|value| Path::new(value).is_dir()) {
                error = error.context(
                    "--buildkit took the build context as its address: write --buildkit=ADDR, or put the context first",
                );
            }
            error
        })?;
        let is_docker = matches!(address, Address::Docker(_));

        let context = std::path::absolute(&args.context)
            .with_context(|| format!("invalid build context {}", args.context.display()))?;
        if !context.is_dir() {
            bail!("the build context {} is not a directory", context.display());
        }
        let kubefile = match &args.file {
            Some(file) => std::path::absolute(file)
                .with_context(|| format!("invalid Kubefile path {}", file.display()))?,
            None => context.join("Kubefile"),
        };
        if !kubefile.is_file() {
            bail!(
                "cannot read the Kubefile {}: no such file",
                kubefile.display()
            );
        }
        let kubefile_dir = kubefile
            .parent()
            .map_or_else(|| context.clone(), Path::to_path_buf);
        let kubefile_name = kubefile
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();

        for tag in &args.tags {
            Reference::parse(tag).with_context(|| format!("invalid tag {tag}"))?;
        }
        let mut exports = Vec::new();
        if !args.tags.is_empty() {
            exports.push(if is_docker {
                Export::DockerImages(args.tags.clone())
            } else {
                Export::RegistryImages {
                    names: args.tags.clone(),
                    push: args.push,
                }
            });
        } else if args.push {
            bail!("--push needs a name: -t NAME[:TAG]");
        }
        for spec in &args.exports {
            let export = parse_output(spec)?;
            check_destination(&export)?;
            exports.push(export);
        }
        if exports.is_empty() {
            bail!(
                "nothing to output: name the image with -t NAME[:TAG], or give --output type=local,dest=DIR"
            );
        }

        let mut image_exporter_attrs = HashMap::new();
        if let Some(compression) = &args.compression {
            if is_docker {
                bail!(
                    "--compression is not supported with --buildkit docker: Docker compresses the layers it stores"
                );
            }
            let value = match compression.as_str() {
                "none" => "uncompressed",
                other => other,
            };
            image_exporter_attrs.insert("compression".to_owned(), value.to_owned());
            if !exports
                .iter()
                .any(|export| matches!(export, Export::RegistryImages { .. } | Export::Oci(_)))
            {
                bail!(
                    "--compression applies to images and OCI archives only; this build writes neither"
                );
            }
        }
        if args.tags.iter().any(|tag| {
            Reference::parse(tag).is_ok_and(|reference| {
                global
                    .insecure_registries
                    .iter()
                    .any(|registry| registry == reference.registry())
            })
        }) {
            image_exporter_attrs.insert("registry.insecure".to_owned(), "true".to_owned());
        }

        let mut frontend_attrs = HashMap::new();
        frontend_attrs.insert("source".to_owned(), options.frontend_image.clone());
        frontend_attrs.insert("filename".to_owned(), kubefile_name.clone());
        for arg in &args.args {
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => match std::env::var(arg) {
                    Ok(value) => (arg.clone(), value),
                    Err(_) => continue,
                },
            };
            if name.is_empty() {
                bail!("--build-arg {arg}: expected NAME=VALUE or NAME");
            }
            frontend_attrs.insert(format!("build-arg:{name}"), value);
        }
        for (name, value) in [
            (frontend::build::IMAGE_TYPE_ARG, args.image_type.clone()),
            (frontend::build::BUILD_MODE_ARG, args.build_mode.clone()),
        ] {
            frontend_attrs.insert(format!("build-arg:{name}"), value);
        }
        if !global.registry_mirrors.is_empty() {
            for mirror in &global.registry_mirrors {
                image::registry::parse_mirror(mirror).map_err(anyhow::Error::msg)?;
            }
            frontend_attrs.insert(
                format!("build-arg:{}", frontend::build::REGISTRY_MIRRORS_ARG),
                global.registry_mirrors.join(","),
            );
        }
        for label in &args.labels {
            match label.split_once('=') {
                Some((key, value)) if !key.is_empty() => {
                    frontend_attrs.insert(format!("label:{key}"), value.to_owned());
                }
                _ => bail!("--label {label}: expected KEY=VALUE"),
            }
        }
        if let Some(platform) = args.platform.first() {
            platform
                .parse::<kubefile::plan::Platform>()
                .map_err(|e| anyhow::anyhow!("invalid --platform {platform}: {e}"))?;
            frontend_attrs.insert("platform".to_owned(), platform.clone());
        }
        if args.no_cache {
            frontend_attrs.insert("no-cache".to_owned(), String::new());
        }
        match args.pull.as_str() {
            "always" => {
                frontend_attrs.insert("image-resolve-mode".to_owned(), "pull".to_owned());
            }
            "never" => {
                frontend_attrs.insert("image-resolve-mode".to_owned(), "local".to_owned());
            }
            "missing" => {}
            other => bail!("--pull {other}: expected always, missing or never"),
        }
        let mut entitlements = Vec::new();
        match options.network.as_deref() {
            Some("host") => {
                frontend_attrs.insert("force-network-mode".to_owned(), "host".to_owned());
                entitlements.push("network.host".to_owned());
            }
            Some("none") => {
                frontend_attrs.insert("force-network-mode".to_owned(), "none".to_owned());
            }
            _ => {}
        }
        if !options.add_hosts.is_empty() {
            let hosts = options
                .add_hosts
                .iter()
                .map(|entry| match entry.split_once(':') {
                    Some((host, ip)) if !host.is_empty() && !ip.is_empty() => {
                        Ok(format!("{host}={ip}"))
                    }
                    _ => bail!("--add-host {entry}: expected HOST:IP"),
                })
                .collect::<Result<Vec<_>>>()?;
            frontend_attrs.insert("add-hosts".to_owned(), hosts.join(","));
        }
        let scan_inputs = ScanInputsDir::prepare(&args.scan, &mut frontend_attrs)?;

        let push_through = match &address {
            Address::Docker(host) if args.push => Some(host.clone()),
            _ => None,
        };
        Ok(BuildRequest {
            address,
            session_transport: options.session,
            context,
            kubefile_dir,
            frontend_attrs,
            entitlements,
            exports,
            tags: args.tags.clone(),
            image_exporter_attrs,
            push_through,
            progress: options.progress,
            scan_inputs,
        })
    }

    /// Connects, runs one Solve per export, pushes through Docker when asked.
    async fn run(&self, quiet: bool) -> Result<Summary> {
        let channel = self.address.control_channel().await?;
        let mut client = bkclient::control::control_client(channel);
        let shared_key = bkclient::session::shared_key(&self.context)?;
        let mut summary = Summary::default();
        for export in &self.exports {
            let result = self.solve(&mut client, &shared_key, export, quiet).await?;
            summary.add(export, result);
        }
        if let Some(host) = &self.push_through {
            for tag in &summary.tags {
                push_to_registry(host, tag, quiet).await?;
            }
        }
        Ok(summary)
    }

    async fn solve(
        &self,
        client: &mut ControlClient<Channel>,
        shared_key: &str,
        export: &Export,
        quiet: bool,
    ) -> Result<SolveResult> {
        let name = self.context.file_name().map_or_else(
            || "context".to_owned(),
            |name| name.to_string_lossy().into_owned(),
        );
        let mut session = Session::new(&name, shared_key);
        let mut dirs = BTreeMap::new();
        dirs.insert(CONTEXT_LOCAL.to_owned(), synced(&self.context));
        dirs.insert(DOCKERFILE_LOCAL.to_owned(), synced(&self.kubefile_dir));
        if let Some(inputs) = &self.scan_inputs {
            dirs.insert(INPUTS_LOCAL.to_owned(), synced(inputs.dir.path()));
        }
        let sync = SyncService::new(dirs);
        session.add_service(
            packet::file_sync_server::FileSyncServer::new(sync.clone()),
            &[FILE_SYNC_METHOD],
        );
        match export {
            Export::Local(dest) => session.add_service(
                packet::file_send_server::FileSendServer::new(DirTarget::new(dest.clone())),
                &[FILE_SEND_METHOD],
            ),
            Export::Tar(dest) | Export::Oci(dest) => session.add_service(
                v1::file_send_server::FileSendServer::new(FileTarget::new(dest.clone())),
                &[FILE_SEND_METHOD],
            ),
            Export::DockerImages(_) | Export::RegistryImages { .. } => {}
        }
        let session_id = session.id().to_owned();
        let running = match (&self.address, self.session_transport) {
            (Address::Docker(host), SessionTransport::Http) => {
                let io = host.upgrade_session(&session.headers()).await?;
                session.serve(io)
            }
            _ => session.serve_tunnel(client.clone()),
        };

        let mut exporter_attrs = HashMap::new();
        match export {
            Export::DockerImages(names) => {
                exporter_attrs.insert("name".to_owned(), names.join(","));
            }
            Export::RegistryImages { names, push } => {
                exporter_attrs.clone_from(&self.image_exporter_attrs);
                exporter_attrs.insert("name".to_owned(), names.join(","));
                exporter_attrs.insert("push".to_owned(), push.to_string());
            }
            Export::Oci(_) => {
                exporter_attrs.clone_from(&self.image_exporter_attrs);
                if !self.tags.is_empty() {
                    exporter_attrs.insert("name".to_owned(), self.tags.join(","));
                }
            }
            Export::Local(_) | Export::Tar(_) => {}
        }
        let request = SolveRequest {
            r#ref: bkclient::session::new_id(),
            exporter_deprecated: export.exporter().to_owned(),
            exporter_attrs_deprecated: exporter_attrs,
            session: session_id,
            frontend: GATEWAY_FRONTEND.to_owned(),
            frontend_attrs: self.frontend_attrs.clone(),
            entitlements: self.entitlements.clone(),
            ..SolveRequest::default()
        };
        let mut model = StatusModel::new();
        let mut printer = StatusPrinter::new(if quiet {
            ProgressMode::Quiet
        } else {
            self.progress
        });
        let solved = bkclient::control::solve(client, request, &mut |status| {
            let lines = model.apply(status);
            printer.show(&lines, &model);
        })
        .await;
        let rest = model.finish();
        printer.show(&rest, &model);
        printer.clear();
        // The session ends either way; its own error matters only when the build worked.
        let closed = running.close().await;
        let response = match solved {
            Ok(response) => response,
            Err(error) => {
                if let Some((step, message, logs)) = model.failed_vertex() {
                    eprintln!("error: step `{step}` failed: {message}");
                    for line in logs {
                        eprintln!("  | {line}");
                    }
                }
                let error = self.explain(export, error.into());
                return Err(match closed {
                    Err(session) => error.context(format!("the build's session failed: {session}")),
                    Ok(()) => error,
                });
            }
        };
        closed?;
        let counts = model.counts();
        Ok(SolveResult {
            image_id: response.get(IMAGE_DIGEST_KEY).cloned(),
            steps: counts.total,
            cached_steps: counts.cached,
            transfers: sync.stats_by_dir(),
        })
    }

    /// Removes the archives an interrupted Solve was writing, so that no truncated file is
    /// left beside the finished ones.
    fn remove_partial_outputs(&self) {
        for export in &self.exports {
            if let Export::Tar(dest) | Export::Oci(dest) = export
                && dest.as_os_str() != "-"
            {
                // Absent unless that Solve had started writing it.
                let _ = std::fs::remove_file(FileTarget::partial_path(dest));
            }
        }
    }

    /// True when an archive goes to standard output.
    fn writes_to_stdout(&self) -> bool {
        self.exports.iter().any(|export| {
            matches!(export, Export::Tar(dest) | Export::Oci(dest) if dest.as_os_str() == "-")
        })
    }

    /// Adds what to do to errors the daemon words for Go programmers.
    fn explain(&self, export: &Export, error: anyhow::Error) -> anyhow::Error {
        let text = format!("{error:#}");
        let frontend = &self.frontend_attrs["source"];
        if matches!(export, Export::Oci(_)) && text.contains("oci") && text.contains("exporter") {
            return error.context(format!(
                "BuildKit at {} has no `oci` exporter (Docker's BuildKit has none before the containerd image store); use --output type=tar, or a standalone buildkitd",
                self.address
            ));
        }
        if text.contains(frontend.as_str()) && !text.contains("Kubefile") {
            return error.context(format!(
                "cannot run the frontend image {frontend}; pass --frontend-image with an image BuildKit can pull"
            ));
        }
        error
    }
}

impl ScanInputsDir {
    /// Copies the scan flags' files for the session and sets the frontend's `sealer.scan`
    /// attr; nothing when no scan flag is given.
    fn prepare(
        args: &crate::flags::ScanArgs,
        frontend_attrs: &mut HashMap<String, String>,
    ) -> Result<Option<Self>> {
        let flags = ScanFlags {
            values: args.values.clone(),
            set: args.set.clone(),
            set_string: args.set_string.clone(),
            image_lists: args.image_lists.clone(),
            ignored_image_lists: args.ignored_image_lists.clone(),
        };
        let dir = tempfile::Builder::new()
            .prefix("sealer-scan-inputs")
            .tempdir()
            .context("cannot create a temporary directory for the scan inputs")?;
        let Some(inputs) = ScanInputs::write(dir.path(), &flags)? else {
            return Ok(None);
        };
        frontend_attrs.insert(SCAN_OPTION.to_owned(), inputs.to_option());
        Ok(Some(ScanInputsDir { dir }))
    }
}

fn synced(root: &Path) -> SyncedDir {
    SyncedDir {
        root: root.to_path_buf(),
        excludes: None,
    }
}

/// Shows the Status stream: BuildKit's plain lines, or on a terminal the step lines with a
/// spinner naming the running steps (their logs appear only when a step fails).
enum StatusPrinter {
    Quiet,
    Plain,
    Terminal(indicatif::ProgressBar),
}

impl StatusPrinter {
    fn new(mode: ProgressMode) -> Self {
        let terminal = std::io::stderr().is_terminal();
        match mode {
            ProgressMode::Quiet => StatusPrinter::Quiet,
            ProgressMode::Plain => StatusPrinter::Plain,
            ProgressMode::Auto | ProgressMode::Tty if !terminal => StatusPrinter::Plain,
            ProgressMode::Auto | ProgressMode::Tty => {
                let spinner = indicatif::ProgressBar::new_spinner();
                spinner.enable_steady_tick(std::time::Duration::from_millis(120));
                StatusPrinter::Terminal(spinner)
            }
        }
    }

    fn show(&mut self, lines: &[String], model: &StatusModel) {
        match self {
            StatusPrinter::Quiet => {}
            StatusPrinter::Plain => {
                for line in lines {
                    eprintln!("{line}");
                }
            }
            StatusPrinter::Terminal(spinner) => {
                for line in lines
                    .iter()
                    .filter(|line| !line.is_empty() && !is_log_line(line))
                {
                    spinner.println(line);
                }
                let running: Vec<String> = model
                    .running()
                    .into_iter()
                    .map(|(number, name)| format!("#{number} {name}"))
                    .collect();
                spinner.set_message(running.join(" | "));
            }
        }
    }

    fn clear(&self) {
        if let StatusPrinter::Terminal(spinner) = self {
            spinner.finish_and_clear();
        }
    }
}

/// `#N 0.123 text`: a line a step printed, in BuildKit's plain format.
fn is_log_line(line: &str) -> bool {
    let mut words = line.split(' ');
    words.next().is_some_and(|first| first.starts_with('#'))
        && words
            .next()
            .is_some_and(|second| second.contains('.') && second.parse::<f64>().is_ok())
}

/// Refuses, before the build, destinations the output cannot be written to: an archive to a
/// terminal, a file in a missing directory, a directory path that is a file.
fn check_destination(export: &Export) -> Result<()> {
    match export {
        Export::Tar(dest) | Export::Oci(dest) if dest.as_os_str() == "-" => {
            if std::io::stdout().is_terminal() {
                bail!(
                    "refusing to write the {} archive to a terminal: redirect standard output, or give dest=FILE",
                    export.exporter()
                );
            }
        }
        Export::Tar(dest) | Export::Oci(dest) => {
            let parent = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                bail!(
                    "cannot write {}: the directory {} does not exist",
                    dest.display(),
                    parent.display()
                );
            }
        }
        Export::Local(dest) => {
            if dest.exists() && !dest.is_dir() {
                bail!(
                    "cannot write the rootfs into {}: it is not a directory",
                    dest.display()
                );
            }
        }
        Export::DockerImages(_) | Export::RegistryImages { .. } => {}
    }
    Ok(())
}

/// `type=local,dest=DIR`, `type=tar,dest=FILE`, `type=oci,dest=FILE`.
fn parse_output(spec: &str) -> Result<Export> {
    let mut kind = None;
    let mut dest = None;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", value)) => kind = Some(value),
            Some(("dest", value)) if !value.is_empty() => dest = Some(PathBuf::from(value)),
            _ => bail!("--output {spec}: expected type=local|tar|oci,dest=PATH"),
        }
    }
    let Some(dest) = dest else {
        bail!("--output {spec}: dest=PATH is missing");
    };
    match kind {
        Some("local") => Ok(Export::Local(dest)),
        Some("tar") => Ok(Export::Tar(dest)),
        Some("oci") => Ok(Export::Oci(dest)),
        Some(other) => bail!("--output {spec}: unknown type `{other}`; expected local, tar or oci"),
        None => bail!("--output {spec}: type=local|tar|oci is missing"),
    }
}

/// Pushes one image of Docker's store with the credentials of the docker config.
async fn push_to_registry(host: &DockerHost, tag: &str, quiet: bool) -> Result<()> {
    let reference = Reference::parse(tag).with_context(|| format!("invalid tag {tag}"))?;
    let credentials = image::registry::auth::credentials_for(reference.registry())
        .with_context(|| format!("cannot read the credentials for {}", reference.registry()))?;
    let auth = match credentials {
        image::registry::auth::Credentials::Basic { username, password } => {
            Some((username, password))
        }
        image::registry::auth::Credentials::Anonymous => None,
    };
    bkclient::docker_api::push(host, tag, auth, &mut |line| {
        if !quiet {
            eprintln!("{line}");
        }
    })
    .await
    .with_context(|| format!("pushing {tag} through Docker"))?;
    if !quiet {
        eprintln!("pushed {tag}");
    }
    Ok(())
}

/// What one Solve reported.
struct SolveResult {
    image_id: Option<String>,
    steps: usize,
    cached_steps: usize,
    transfers: BTreeMap<String, TransferStats>,
}

/// What the build made, printed at the end.
#[derive(Debug, Default, Serialize)]
struct Summary {
    /// The image's ID (its config digest) where an image exporter ran.
    image_id: Option<String>,
    /// The image's names.
    tags: Vec<String>,
    /// Directories and files written.
    outputs: Vec<String>,
    /// Steps BuildKit reported, over every Solve.
    steps: usize,
    /// Of those, answered from the cache.
    cached_steps: usize,
    /// Files sent from each session directory, over every Solve.
    transfers: BTreeMap<String, TransferStats>,
}

impl Summary {
    fn add(&mut self, export: &Export, result: SolveResult) {
        match export {
            Export::DockerImages(names) | Export::RegistryImages { names, .. } => {
                self.tags.extend(names.iter().cloned());
                self.image_id = result.image_id.or(self.image_id.take());
            }
            Export::Local(_) | Export::Tar(_) | Export::Oci(_) => {
                self.outputs.push(export.describe());
            }
        }
        self.steps += result.steps;
        self.cached_steps += result.cached_steps;
        for (dir, stats) in result.transfers {
            self.transfers.entry(dir).or_default().add(&stats);
        }
    }

    fn write_table(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let context = self
            .transfers
            .get(CONTEXT_LOCAL)
            .cloned()
            .unwrap_or_default();
        let made = match (self.tags.first(), self.outputs.first()) {
            (Some(tag), _) => format!("{tag} {}", self.image_id.as_deref().unwrap_or("-")),
            (None, Some(output)) => format!("wrote {output}"),
            (None, None) => "built".to_owned(),
        };
        writeln!(
            out,
            "{made} ({} steps, {} cached; context: {} files, {} sent)",
            self.steps,
            self.cached_steps,
            context.files,
            crate::progress::human_bytes(context.bytes),
        )?;
        for tag in self.tags.iter().skip(1) {
            writeln!(out, "also tagged {tag}")?;
        }
        for output in self.outputs.iter().skip(usize::from(self.tags.is_empty())) {
            writeln!(out, "wrote {output}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse_with_clear_errors() {
        assert_eq!(
            parse_output("type=local,dest=out").unwrap(),
            Export::Local(PathBuf::from("out"))
        );
        assert_eq!(
            parse_output("dest=a.tar,type=tar").unwrap(),
            Export::Tar(PathBuf::from("a.tar"))
        );
        assert_eq!(
            parse_output("type=oci,dest=a.oci").unwrap(),
            Export::Oci(PathBuf::from("a.oci"))
        );
        for (spec, expected) in [
            ("type=local", "dest=PATH is missing"),
            ("type=docker,dest=x", "unknown type `docker`"),
            ("dest=x", "type=local|tar|oci is missing"),
            ("type=local,dest=x,push=true", "expected type="),
        ] {
            let error = parse_output(spec).unwrap_err().to_string();
            assert!(error.contains(expected), "{spec}: {error}");
        }
    }

    #[test]
    fn unwritable_destinations_are_refused_before_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let missing = dir.path().join("missing/rootfs.tar");
        let error = check_destination(&Export::Tar(missing))
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not exist"), "{error}");
        let error = check_destination(&Export::Local(file))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a directory"), "{error}");
        check_destination(&Export::Tar(dir.path().join("rootfs.tar"))).unwrap();
        check_destination(&Export::Local(dir.path().join("new"))).unwrap();
    }

    #[test]
    fn the_table_names_the_image_or_else_the_output() {
        let mut summary = Summary {
            steps: 4,
            cached_steps: 1,
            ..Summary::default()
        };
        summary.add(
            &Export::Tar(PathBuf::from("-")),
            SolveResult {
                image_id: None,
                steps: 0,
                cached_steps: 0,
                transfers: BTreeMap::new(),
            },
        );
        let mut table = Vec::new();
        summary.write_table(&mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(
            table.starts_with("wrote tar archive to standard output (4 steps, 1 cached;"),
            "{table}"
        );
        summary.add(
            &Export::DockerImages(vec!["x:1".to_owned(), "x:2".to_owned()]),
            SolveResult {
                image_id: Some("sha256:ab".to_owned()),
                steps: 0,
                cached_steps: 0,
                transfers: BTreeMap::new(),
            },
        );
        let mut table = Vec::new();
        summary.write_table(&mut table).unwrap();
        let lines: Vec<_> = String::from_utf8(table)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert!(lines[0].starts_with("x:1 sha256:ab (4 steps"), "{lines:?}");
        assert_eq!(lines[1], "also tagged x:2");
        assert!(lines[2].starts_with("wrote "), "{lines:?}");
    }

    #[test]
    fn log_lines_are_told_from_step_lines() {
        assert!(is_log_line("#7 0.412 fetching layer"));
        assert!(!is_log_line("#7 [2/3] COPY rootfs ."));
        assert!(!is_log_line("#7 DONE 0.4s"));
        assert!(!is_log_line("#7 CACHED"));
    }
}
