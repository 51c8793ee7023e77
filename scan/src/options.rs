//! What a scan is told besides the context: extra and ignored image lists, the environment
//! for `.tmpl` files, per-chart values, and parser limits.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kyaml::Limits;

/// The YAML bounds of [`ScanOptions::default`]: kyaml's, with nesting and alias expansion held
/// to what manifests need.
pub(crate) fn default_limits() -> Limits {
    Limits {
        max_depth: 256,
        max_alias_nodes: 100_000,
        ..Limits::default()
    }
}

/// User values for one chart, as `helm template -f FILE --set X --set-string Y` takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartValues {
    /// Values files, in order (paths outside the context allowed).
    pub values_files: Vec<PathBuf>,
    /// `--set` expressions, in order.
    pub set: Vec<String>,
    /// `--set-string` expressions, in order.
    pub set_string: Vec<String>,
}

/// Options of [`crate::scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Extra image list files (`--image-list`), read from disk.
    pub image_lists: Vec<PathBuf>,
    /// Ignore lists (`--ignored-image-list`), read from disk, besides the context's
    /// `.sealerignore`.
    pub ignored_image_lists: Vec<PathBuf>,
    /// Variables for `.tmpl` manifests (`{{ .Name }}`).
    pub env: BTreeMap<String, String>,
    /// Values per chart, keyed by the chart's name (Chart.yaml `name`) or its context path
    /// (`charts/nginx`, `charts/nginx-1.0.0.tgz`, `application/apps/x`).
    pub chart_values: BTreeMap<String, ChartValues>,
    /// `.Release.Name` for rendering charts.
    pub release_name: String,
    /// `.Release.Namespace` for rendering charts.
    pub namespace: String,
    /// `--kube-version` for rendering charts; Helm's default when `None`.
    pub kube_version: Option<String>,
    /// `--api-versions` added to Helm's default set when rendering charts.
    pub api_versions: Vec<String>,
    /// Bounds for every YAML text read.
    pub limits: Limits,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            image_lists: Vec::new(),
            ignored_image_lists: Vec::new(),
            env: BTreeMap::new(),
            chart_values: BTreeMap::new(),
            release_name: "release-name".into(),
            namespace: "default".into(),
            kube_version: None,
            api_versions: Vec::new(),
            limits: default_limits(),
        }
    }
}
