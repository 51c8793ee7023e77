//! `build`: a Kubefile and its context into a ClusterImage in the local store, with the
//! embedded engine; then optionally pushed and exported.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use engine::error::BuildError;
use engine::options::BuildOptions;
use engine::progress::{BuildProgress, StepInfo, StepOutcome};
use image::Reference;
use image::archive::ArchiveFormat;
use image::progress::Progress;
use image::store::StoredImage;
use kubefile::SourceFile;
use kubefile::plan::Platform;

use super::{registry_client, store};
use crate::flags::{BuildArgs, GlobalArgs, OutputFormat};
use crate::progress::{human_bytes, reporter};

/// Exit code of an interrupted build, as shells report SIGINT.
const INTERRUPTED: u8 = 130;

/// Runs the build; prints the summary.
pub async fn build(global: &GlobalArgs, args: &BuildArgs) -> Result<ExitCode> {
    if args.buildkit.is_some() {
        return super::build_buildkit::build(global, args).await;
    }
    if args.tags.is_empty() {
        bail!("name the image: -t NAME[:TAG]");
    }
    let options = build_options(args)?;
    let exports = args
        .exports
        .iter()
        .map(|spec| parse_export(spec))
        .collect::<Result<Vec<_>>>()?;
    let file = read_kubefile(&options.kubefile)?;
    let store = store(global)?;
    let client = registry_client(global)?;
    let progress = StepReporter::new(global.quiet);
    // Ctrl-C is watched on another task, which stays responsive while the build runs
    // blocking work (a RUN command, writing a layer): it ends the RUN commands, which do not
    // get the terminal's signal, and the build stops at its next await.
    let interrupted = Arc::new(tokio::sync::Notify::new());
    let signalled = Arc::new(AtomicBool::new(false));
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot watch for Ctrl-C")?;
    let watcher = tokio::spawn({
        let interrupted = interrupted.clone();
        let signalled = signalled.clone();
        async move {
            if interrupts.recv().await.is_some() {
                signalled.store(true, Ordering::SeqCst);
                engine::run::kill_running();
                interrupted.notify_one();
            }
        }
    });
    let built = tokio::select! {
        result = engine::build(&store, &client, &file, &options, &progress) => result,
        () = interrupted.notified() => Err(BuildError::Interrupted),
    };
    watcher.abort();
    let output = match built {
        Ok(output) => output,
        // A RUN the watcher killed fails its step: that too is the interruption.
        Err(error)
            if matches!(error, BuildError::Interrupted) || signalled.load(Ordering::SeqCst) =>
        {
            eprintln!("error: {}", BuildError::Interrupted);
            return Ok(ExitCode::from(INTERRUPTED));
        }
        Err(error) => return Err(error.into()),
    };
    for tag in &options.tags {
        let image = StoredImage {
            name: tag.clone(),
            descriptor: output.descriptor.clone(),
        };
        if args.push {
            image::registry::push(&client, &store, &image, tag, reporter(global.quiet))
                .await
                .with_context(|| format!("pushing {tag}"))?;
            if !global.quiet {
                eprintln!("pushed {tag}");
            }
        }
    }
    for dest in &exports {
        let images: Vec<StoredImage> = options
            .tags
            .iter()
            .map(|tag| StoredImage {
                name: tag.clone(),
                descriptor: output.descriptor.clone(),
            })
            .collect();
        image::archive::save(&store, &images, dest, ArchiveFormat::Oci)
            .with_context(|| format!("writing the OCI archive {}", dest.display()))?;
    }
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&output)?),
        OutputFormat::Table => {
            for platform in &output.platforms {
                println!(
                    "{}{} {} ({}, {} layers, {} container images, {} steps cached, {} run)",
                    output.tags.first().map(String::as_str).unwrap_or_default(),
                    if output.platforms.len() > 1 {
                        format!(" [{}]", platform.platform)
                    } else {
                        String::new()
                    },
                    platform.digest,
                    human_bytes(platform.size),
                    platform.layers,
                    platform.images.len(),
                    platform.cached_steps,
                    platform.built_steps,
                );
            }
            if output.platforms.len() > 1 {
                println!("index {}", output.descriptor.digest);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn build_options(args: &BuildArgs) -> Result<BuildOptions> {
    let mut options = BuildOptions::new(&args.context);
    if let Some(file) = &args.file {
        options.kubefile.clone_from(file);
    }
    options.tags = args
        .tags
        .iter()
        .map(|tag| Reference::parse(tag).with_context(|| format!("invalid tag {tag}")))
        .collect::<Result<_>>()?;
    options.build_args.clone_from(&args.args);
    options.platforms = args
        .platform
        .iter()
        .map(|p| {
            p.parse::<Platform>()
                .map_err(|e| anyhow::anyhow!("invalid --platform {p}: {e}"))
        })
        .collect::<Result<_>>()?;
    options.pull = args.pull.parse().map_err(anyhow::Error::msg)?;
    options.build_mode = args.build_mode.parse().map_err(anyhow::Error::msg)?;
    options.no_cache = args.no_cache;
    options.image_type = args.image_type.parse().map_err(anyhow::Error::msg)?;
    options.labels = key_values("--label", &args.labels)?;
    options.annotations = key_values("--annotation", &args.annotations)?;
    options.isolation = args.isolation.parse().map_err(anyhow::Error::msg)?;
    options.compression = match args.compression.as_deref().unwrap_or("zstd") {
        "gzip" => image::layer::Compression::Gzip,
        "none" => image::layer::Compression::None,
        _ => image::layer::Compression::Zstd,
    };
    options.scan = super::scan::scan_options(&args.scan)?;
    Ok(options)
}

fn key_values(flag: &str, entries: &[String]) -> Result<BTreeMap<String, String>> {
    entries
        .iter()
        .map(|entry| match entry.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => bail!("{flag} {entry}: expected KEY=VALUE"),
        })
        .collect()
}

/// `type=oci,dest=FILE` → FILE.
fn parse_export(spec: &str) -> Result<PathBuf> {
    let mut kind = None;
    let mut dest = None;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", value)) => kind = Some(value),
            Some(("dest", value)) => dest = Some(PathBuf::from(value)),
            _ => bail!("--output {spec}: expected type=oci,dest=FILE"),
        }
    }
    match (kind, dest) {
        (Some("oci"), Some(dest)) => Ok(dest),
        (Some(other), _) if other != "oci" => bail!(
            "--output {spec}: the embedded engine writes `type=oci` archives; the image itself is in the local store (use `sealer-build save --format docker` for a docker archive)"
        ),
        _ => bail!("--output {spec}: expected type=oci,dest=FILE"),
    }
}

fn read_kubefile(path: &Path) -> Result<SourceFile> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the Kubefile {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{} is not UTF-8 text: {e}", path.display()))?;
    let name = path
        .strip_prefix("./")
        .unwrap_or(path)
        .display()
        .to_string();
    Ok(SourceFile::new(name, text))
}

/// Step lines on standard error (and transfer bars on a terminal).
struct StepReporter {
    quiet: bool,
    transfers: Arc<dyn Progress>,
}

impl StepReporter {
    fn new(quiet: bool) -> Self {
        StepReporter {
            quiet,
            transfers: reporter(quiet),
        }
    }

    fn line(&self, text: &str) {
        if !self.quiet {
            if std::io::stderr().is_terminal() {
                self.transfers.message(text);
            } else {
                eprintln!("{text}");
            }
        }
    }
}

fn step_prefix(step: &StepInfo) -> String {
    if step.platform.is_empty() {
        format!("[{}/{}]", step.number, step.total)
    } else {
        format!("[{} {}/{}]", step.platform, step.number, step.total)
    }
}

impl BuildProgress for StepReporter {
    fn step_started(&self, step: &StepInfo) {
        self.line(&format!("{} {}", step_prefix(step), step.text));
    }

    fn step_finished(&self, step: &StepInfo, outcome: StepOutcome) {
        let how = match outcome {
            StepOutcome::Cached => "cached".to_owned(),
            StepOutcome::Built { layer_size } => format!("layer {}", human_bytes(layer_size)),
            StepOutcome::Empty => "done".to_owned(),
        };
        self.line(&format!("{} {how}", step_prefix(step)));
    }

    fn output(&self, line: &str) {
        self.line(&format!("  | {line}"));
    }

    fn message(&self, text: &str) {
        self.line(text);
    }

    fn transfers(&self) -> Arc<dyn Progress> {
        self.transfers.clone()
    }
}
