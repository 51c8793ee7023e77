//! What a build is asked to do: everything `sealer-build build` takes besides the progress
//! display.

use std::collections::BTreeMap;
use std::path::PathBuf;

use image::Reference;
use image::layer::Compression;
use kubefile::plan::{ImageType, Platform};

use crate::run::Isolation;

/// When the base image is pulled from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Every build asks the registry (the image is updated when the tag moved).
    Always,
    /// Only when the local store lacks the image for the platform.
    #[default]
    Missing,
    /// Never: the image must be in the local store.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" | "true" => Ok(PullPolicy::Always),
            "missing" | "ifnewer" | "if-not-present" => Ok(PullPolicy::Missing),
            "never" | "false" => Ok(PullPolicy::Never),
            other => Err(format!(
                "unknown pull policy `{other}`: expected always, missing or never"
            )),
        }
    }
}

/// Whether the discovered container images are cached into the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildMode {
    /// Scan the rootfs and cache every image it needs (the default).
    #[default]
    All,
    /// Skip image caching: only the Kubefile's layers.
    Lite,
}

impl std::str::FromStr for BuildMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(BuildMode::All),
            "lite" => Ok(BuildMode::Lite),
            other => Err(format!(
                "unknown build mode `{other}`: expected all or lite"
            )),
        }
    }
}

/// A build request.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Kubefile (`<context>/Kubefile` unless `-f` says otherwise).
    pub kubefile: PathBuf,
    /// Names the image gets in the local store.
    pub tags: Vec<Reference>,
    /// `--build-arg NAME=VALUE`.
    pub build_args: Vec<String>,
    /// Target platforms; one image each, and an index when there are several.
    pub platforms: Vec<Platform>,
    /// `--pull`.
    pub pull: PullPolicy,
    /// `--build-mode`.
    pub build_mode: BuildMode,
    /// `--no-cache`: every step runs again.
    pub no_cache: bool,
    /// `--type`.
    pub image_type: ImageType,
    /// `--label`, added to the image config (over the Kubefile's labels).
    pub labels: BTreeMap<String, String>,
    /// `--annotation`, added to the manifest.
    pub annotations: BTreeMap<String, String>,
    /// What the image scanner is told (`--values`, `--set`, `--image-list`, ...).
    pub scan: scan::ScanOptions,
    /// How RUN steps are isolated.
    pub isolation: Isolation,
    /// Compression of the layers made from the context and by RUN (the cached images'
    /// layers are always plain tar: their blobs are compressed already). zstd by default: on
    /// binaries it is as small as gzip and many times faster (measured in `build-bench`).
    pub compression: Compression,
    /// Image creation time and file times, in seconds since the epoch
    /// (`SOURCE_DATE_EPOCH`, else 0).
    pub timestamp: u64,
}

impl BuildOptions {
    /// Options for a context with its `Kubefile`, the host platform and the defaults.
    pub fn new(context: impl Into<PathBuf>) -> Self {
        let context = context.into();
        BuildOptions {
            kubefile: context.join("Kubefile"),
            context,
            tags: Vec::new(),
            build_args: Vec::new(),
            platforms: Vec::new(),
            pull: PullPolicy::default(),
            build_mode: BuildMode::default(),
            no_cache: false,
            image_type: ImageType::KubeInstaller,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            scan: scan::ScanOptions::default(),
            isolation: Isolation::None,
            compression: Compression::Zstd,
            timestamp: source_date_epoch(),
        }
    }

    /// The platforms to build: those asked for, else the host's.
    pub fn target_platforms(&self) -> Vec<Platform> {
        if self.platforms.is_empty() {
            vec![Platform::host()]
        } else {
            self.platforms.clone()
        }
    }
}

/// `SOURCE_DATE_EPOCH` when it holds decimal seconds, else 0.
pub fn source_date_epoch() -> u64 {
    image::layer::source_date_epoch(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref()).unwrap_or(0)
}
