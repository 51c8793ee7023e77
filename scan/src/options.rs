//! What a scan is told besides the context: extra and ignored image lists, the environment
//! for `.tmpl` files, per-chart values, and parser limits.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
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
    /// Values given as text (read elsewhere, such as from a BuildKit session), each as
    /// (the name warnings call it, its YAML), in order; applied after [`Self::values_files`].
    pub values_texts: Vec<(String, String)>,
    /// `--set` expressions, in order.
    pub set: Vec<String>,
    /// `--set-string` expressions, in order.
    pub set_string: Vec<String>,
}

/// An image list or ignore list given besides the context: a file on the host, or a text
/// (one reference per line either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSource {
    /// A file read from disk when the scan runs.
    File(PathBuf),
    /// A text already read (from a BuildKit context, a request, ...).
    Text {
        /// What provenance and warnings call it (`.sealerignore`, a file name).
        name: String,
        /// The list.
        text: String,
    },
}

impl ListSource {
    /// What provenance and warnings call the list: the file's path, or the text's name.
    pub fn name(&self) -> Cow<'_, str> {
        match self {
            ListSource::File(path) => path.to_string_lossy(),
            ListSource::Text { name, .. } => Cow::Borrowed(name),
        }
    }

    /// The list's text (a file is read now).
    pub fn read(&self) -> io::Result<Cow<'_, str>> {
        match self {
            ListSource::File(path) => std::fs::read_to_string(path).map(Cow::Owned),
            ListSource::Text { text, .. } => Ok(Cow::Borrowed(text)),
        }
    }
}

impl From<PathBuf> for ListSource {
    fn from(path: PathBuf) -> Self {
        ListSource::File(path)
    }
}

/// Options of [`crate::scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Extra image lists (`--image-list`).
    pub image_lists: Vec<ListSource>,
    /// Ignore lists (`--ignored-image-list`), besides the `.sealerignore` of the scanned view.
    pub ignored_image_lists: Vec<ListSource>,
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

/// `CHART.KEY=VALUE` (a `--set` flag) → (`CHART`, `KEY=VALUE`): the chart is everything
/// before the first dot.
pub fn split_chart_expression(entry: &str) -> Option<(&str, &str)> {
    match entry.split_once('.') {
        Some((chart, expression))
            if !chart.is_empty() && !chart.contains('=') && expression.contains('=') =>
        {
            Some((chart, expression))
        }
        _ => None,
    }
}
