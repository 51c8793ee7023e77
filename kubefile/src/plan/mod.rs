//! The build plan: what a Kubefile means once ARG/ENV substitution is done and the semantic
//! rules are checked against the build context. The embedded engine and the BuildKit lowering
//! both execute this plan, so the two backends cannot drift apart in meaning.
//!
//! The plan serializes to JSON with stable field names (`sealer-build parse` prints it); the
//! `extension` object has the shape of the original tool's `sealer.image.extension` annotation.

mod apps;
mod args;
mod build;
mod platform;
mod sources;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use apps::{AppType, detect_app_type, url_file_name};
pub use args::{BuildArgs, parse_build_arg};
pub use build::{Planned, build_plan};
pub use platform::{Platform, predefined_args};
pub use sources::{has_wildcard, wildcard_match};

use crate::context::ContextView;

/// The schema version of the image extension, as the original tool writes it.
pub const EXTENSION_SCHEMA_VERSION: &str = "v1alpha1";
/// The version string of each application entry.
pub const APPLICATION_VERSION: &str = "v1";
/// Where apps live in the cluster rootfs.
pub const APPS_ROOT: &str = "application/apps";
/// Label set for each CNI app: `<prefix><name>=true`.
pub const CNI_LABEL_PREFIX: &str = "cluster.alpha.sealer.io/kube-cni-";
/// Label set for each CSI app: `<prefix><name>=true`.
pub const CSI_LABEL_PREFIX: &str = "cluster.alpha.sealer.io/kube-csi-";
/// Label that KUBEVERSION sets.
pub const KUBE_VERSION_LABEL: &str = "app.alpha.sealer.io/supported-kube-version";

/// What a plan is made for, besides the Kubefile itself.
pub struct PlanOptions<'a> {
    /// The build context, read-only.
    pub context: &'a dyn ContextView,
    /// `--build-arg` values.
    pub build_args: BuildArgs,
    /// The platform the image is for.
    pub target_platform: Platform,
    /// The platform the build runs on.
    pub build_platform: Platform,
    /// `--type`.
    pub image_type: ImageType,
    /// What is known of the base image, once it has been resolved; `None` before that (names
    /// the Kubefile does not declare are then assumed to come from the base image, with a
    /// warning).
    pub base: Option<BaseImage>,
}

impl<'a> PlanOptions<'a> {
    /// Options for the host platform, no build arguments, a kube-installer image.
    pub fn new(context: &'a dyn ContextView) -> Self {
        PlanOptions {
            context,
            build_args: BuildArgs::default(),
            target_platform: Platform::host(),
            build_platform: Platform::host(),
            image_type: ImageType::KubeInstaller,
            base: None,
        }
    }
}

/// What the plan inherits from a resolved base image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseImage {
    /// `ENV` of the base image config, in order.
    pub env: Vec<EnvVar>,
    /// Labels of the base image config.
    pub labels: BTreeMap<String, String>,
    /// Apps and global env of the base's sealer extension (empty for a plain image).
    pub applications: Vec<Application>,
    /// Global env of the base's sealer extension.
    pub extension_env: BTreeMap<String, String>,
}

/// `kube-installer` (installs a cluster and its apps) or `app-installer` (apps only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageType {
    /// Installs a whole cluster.
    #[serde(rename = "kube-installer")]
    KubeInstaller,
    /// Installs apps into an existing cluster.
    #[serde(rename = "app-installer")]
    AppInstaller,
}

impl std::str::FromStr for ImageType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kube-installer" => Ok(ImageType::KubeInstaller),
            "app-installer" => Ok(ImageType::AppInstaller),
            other => Err(format!(
                "unknown image type `{other}`: expected kube-installer or app-installer"
            )),
        }
    }
}

/// The resolved build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildPlan {
    /// The platform the image is for.
    pub platform: Platform,
    /// The base image.
    pub base: Base,
    /// Filesystem steps, in order; each makes one layer.
    pub steps: Vec<Step>,
    /// Image config changes.
    pub config: ImageConfig,
    /// The sealer image extension (apps, launch, env).
    pub extension: ImageExtension,
    /// Build arguments declared with ARG, with the values they took.
    pub args: BTreeMap<String, String>,
}

/// Where an instruction starts in the Kubefile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// The base image of the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Base {
    /// The image reference as written (after substitution); `None` for `scratch`.
    pub image: Option<String>,
    /// `FROM --platform=...`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The FROM instruction.
    pub location: Location,
}

/// One filesystem step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Step {
    /// Files into the rootfs (COPY, ADD, APP, CNI, CSI).
    Copy(CopyStep),
    /// A command run in the rootfs (RUN).
    Run(RunStep),
}

impl Step {
    /// The instruction the step comes from.
    pub fn location(&self) -> Location {
        match self {
            Step::Copy(c) => c.location,
            Step::Run(r) => r.location,
        }
    }
}

/// Files copied into the rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyStep {
    /// The instruction.
    pub location: Location,
    /// `COPY`, `ADD`, `APP`, `CNI` or `CSI`.
    pub instruction: String,
    /// Where the sources are read from.
    pub origin: Origin,
    /// What is copied.
    pub sources: Vec<Source>,
    /// Destination relative to the rootfs (`""` is the root).
    pub dest: String,
    /// True when the destination is a directory (it ended with `/`, or is the root).
    pub dest_is_dir: bool,
    /// `--chown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chown: Option<String>,
    /// `--chmod`, as an octal mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chmod: Option<u32>,
    /// ADD: local tar archives are unpacked into the destination.
    pub unpack_archives: bool,
    /// The app the files belong to (APP, CNI, CSI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

/// Where a copy step reads its sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The build context.
    Context,
    /// The root filesystem of another image (`COPY --from`).
    Image(String),
}

/// One source of a copy step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Source {
    /// A path (possibly with wildcards) relative to the origin's root.
    Path {
        /// The cleaned path, `""` for the root.
        path: String,
    },
    /// A file downloaded from a URL, named after the URL's last path segment.
    Url {
        /// The URL.
        url: String,
        /// Expected digest (`ADD --checksum`).
        #[serde(skip_serializing_if = "Option::is_none")]
        checksum: Option<String>,
    },
    /// A file given inline (heredoc).
    Inline {
        /// The file name.
        name: String,
        /// Its content.
        content: String,
    },
}

/// A command run in the rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunStep {
    /// The instruction.
    pub location: Location,
    /// What to run.
    pub command: RunCommand,
    /// Environment: the image's ENV and the build arguments in scope, in order.
    pub env: Vec<EnvVar>,
    /// `--network`: `default`, `none` or `host`.
    pub network: String,
}

/// The command of a run step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunCommand {
    /// A script for `/bin/sh -c` (heredoc bodies included).
    Shell(String),
    /// Program and arguments.
    Exec(Vec<String>),
}

/// A `NAME=value` variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// Changes to the image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageConfig {
    /// `ENV`, in order of first definition (base image first).
    pub env: Vec<EnvVar>,
    /// Labels (base image labels, LABEL, and the labels CNI, CSI and KUBEVERSION imply).
    pub labels: BTreeMap<String, String>,
    /// `MAINTAINER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// The sealer image extension, stored in the `sealer.image.extension` manifest annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageExtension {
    /// Always [`EXTENSION_SCHEMA_VERSION`].
    pub schema_version: String,
    /// Image type.
    #[serde(rename = "type")]
    pub image_type: ImageType,
    /// Apps of the base image and of this Kubefile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<Application>,
    /// What runs when the cluster is up.
    #[serde(default)]
    pub launch: LaunchSpec,
    /// Global env (`ENV`), used to render templates at install time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// One app of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// App name; its files are under `application/apps/<name>/`.
    pub name: String,
    /// `helm`, `kube`, `shell`, or empty when no type was detected.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub app_type: String,
    /// Files the default launch command uses, relative to the app directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Always [`APPLICATION_VERSION`].
    #[serde(default)]
    pub version: String,
    /// `APPENV`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `APPCMDS`: commands run in order in the app directory instead of the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmds: Vec<String>,
}

/// What runs when the cluster is up: apps (LAUNCH) or raw commands (CMDS, CMD).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchSpec {
    /// Raw commands, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmds: Vec<String>,
    /// Apps to launch, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_names: Vec<String>,
}
