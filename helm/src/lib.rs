//! Helm charts rendered without Helm.
//!
//! [`Chart`] loads a chart (a directory's files or a `.tgz`) with its subcharts; [`render`]
//! computes the values as Helm does (the chart's `values.yaml`, user files, `--set`,
//! globals, subchart scoping, conditions and tags) and renders every template with Go's
//! `text/template` semantics, Sprig's functions and Helm's own (`include`, `tpl`, `toYaml`,
//! `required`, `lookup`, ...). A template that fails does not stop the others: its error is
//! reported with the chart, template, line and function.

mod chart;
mod defaults;
mod funcs;
mod glob;
mod ignore;
mod objects;
pub mod output;
mod render;
pub mod strvals;
pub mod values;

use std::collections::BTreeMap;

pub use chart::{Chart, Dependency, Metadata};
pub use funcs::helm_functions;
pub use render::render;

/// Why a chart could not be loaded or its values not computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HelmError {
    /// What went wrong, naming the file.
    pub message: String,
}

impl HelmError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        HelmError {
            message: message.into(),
        }
    }
}

/// How to render: the release, the user's values, and the assumed cluster.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// `.Release.Name` (`helm template` uses `release-name` when none is given).
    pub release_name: String,
    /// `.Release.Namespace`.
    pub namespace: String,
    /// User values files in order (`-f`): a name for messages and the YAML text.
    pub values_files: Vec<(String, String)>,
    /// `--set` expressions in order.
    pub set: Vec<String>,
    /// `--set-string` expressions in order.
    pub set_string: Vec<String>,
    /// `--kube-version`; Helm's default when `None`.
    pub kube_version: Option<String>,
    /// `--api-versions` added to Helm's default set.
    pub api_versions: Vec<String>,
}

impl RenderOptions {
    /// The options `helm template` uses when given nothing: release `release-name` in `default`.
    pub fn new() -> Self {
        RenderOptions {
            release_name: "release-name".into(),
            namespace: "default".into(),
            ..RenderOptions::default()
        }
    }
}

/// One rendered template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedManifest {
    /// Its name, as Helm's `# Source:` comment writes it (`chart/templates/x.yaml`,
    /// `chart/charts/sub/templates/y.yaml`).
    pub template: String,
    /// The rendered text (may hold several YAML documents).
    pub text: String,
}

/// A template that could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The chart path (`parent/sub` for subcharts) the template belongs to.
    pub chart: String,
    /// The template's name.
    pub template: String,
    /// Line in the template, when known.
    pub line: Option<usize>,
    /// The function that failed, when one did.
    pub function: Option<String>,
    /// Go-style message.
    pub message: String,
}

/// The result of rendering a chart.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// Rendered templates in Helm's order, empty ones left out.
    pub manifests: Vec<RenderedManifest>,
    /// Templates that failed; the others are still in `manifests`.
    pub errors: Vec<TemplateError>,
    /// The final values of each enabled chart (`""` for the root, `sub` and `sub/subsub`
    /// for subcharts), for a structured scan of a chart whose templates failed.
    pub values: BTreeMap<String, gotemplate::Value>,
}

/// Whether `version` satisfies the semver `constraint` (Helm's `IsCompatibleRange`); an
/// unparsable constraint or version never does.
pub fn semver_compatible(constraint: &str, version: &str) -> bool {
    let (Ok(constraint), Ok(version)) = (
        sprig::semver::Constraints::parse(constraint),
        sprig::semver::Version::parse(version),
    ) else {
        return false;
    };
    constraint.check(&version)
}
