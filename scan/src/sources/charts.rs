//! Helm charts (`charts/<dir>` with a Chart.yaml, `charts/*.tgz`, and chart apps under
//! `application/apps/`): rendered with the user's values, and the rendered manifests scanned
//! like any manifest.
//!
//! When a chart cannot be loaded or rendered, or a template fails, each error is reported and
//! the chart falls back to (a) its Chart.yaml image annotations (`helm.sh/images`,
//! `artifacthub.io/images`, Bitnami's `images`) and (b) a structured scan of its values
//! (`image` strings, `repository` + `tag` mappings, `global.imageRegistry` for a missing
//! registry, appVersion for an empty tag). The chart is then marked partial. Annotations are
//! read only in the fallback: Bitnami's list every image a chart can use, most of them behind
//! features that are off by default, so adding them to a successful render would report
//! images the chart does not use. The fallback reads the raw Chart.yaml and values.yaml, so it
//! works even when the chart cannot be loaded at all.

use std::borrow::Cow;
use std::collections::BTreeMap;

use helm::{Chart, RenderOptions, Rendered};
use kubefile::context::{ContextView, EntryKind, basename, join};
use kyaml::{Node, NodeKind};

use super::{has_extension, record_fields, scan_document};
use crate::objects::{self, Defaults, str_at};
use crate::options::ScanOptions;
use crate::report::{Collector, Provenance, SourceKind, WarningKind};

/// Chart.yaml annotations that list images. Only the first is read besides rendering: the
/// others (Artifact Hub's, Bitnami's) list every image a chart can use, most of them behind
/// features its default values leave off, so they are read only when rendering fails.
const IMAGE_ANNOTATIONS: [&str; 3] = ["helm.sh/images", "artifacthub.io/images", "images"];

/// The annotation a chart declares the images it uses in, read as an extra source.
const DECLARED_IMAGES: &str = IMAGE_ANNOTATIONS[0];

/// A chart as found in the context.
#[derive(Debug, Clone)]
pub enum ChartInput {
    /// An unpacked chart: its files keyed by path relative to the chart root.
    Files(BTreeMap<String, Vec<u8>>),
    /// A packaged chart (`.tgz`).
    Archive(Vec<u8>),
}

/// Chart.yaml and values.yaml of a chart, read without Helm.
#[derive(Debug, Default)]
struct RawChart {
    chart_yaml: Option<String>,
    values_yaml: Option<String>,
}

impl RawChart {
    /// Chart.yaml and values.yaml out of a chart's files.
    fn from_files(files: &BTreeMap<String, Vec<u8>>) -> RawChart {
        let text = |bytes: &Vec<u8>| String::from_utf8_lossy(bytes).into_owned();
        RawChart {
            chart_yaml: files.get("Chart.yaml").map(text),
            values_yaml: files.get("values.yaml").map(text),
        }
    }
}

/// The first document of a YAML text (null when it is empty), if it parses.
fn first_document(text: &str, options: &ScanOptions) -> Option<Node> {
    kyaml::documents(text, &options.limits)
        .keep_empty()
        .next()
        .and_then(Result::ok)
        .map(|d| d.root)
}

/// Scans one chart; `path` is its context path (named in provenance and warnings).
pub fn scan_chart(path: &str, input: &ChartInput, options: &ScanOptions, out: &mut Collector) {
    // A packaged chart is unpacked once; its files serve both the raw read and the load.
    let files = match input {
        ChartInput::Files(files) => Ok(Cow::Borrowed(files)),
        ChartInput::Archive(bytes) => Chart::read_archive_files(bytes).map(Cow::Owned),
    };
    let raw = match &files {
        Ok(files) => RawChart::from_files(files),
        Err(e) => {
            out.warn(
                WarningKind::Chart,
                path,
                None,
                format!("cannot read the chart archive: {e}"),
            );
            RawChart::default()
        }
    };
    let chart_doc = raw
        .chart_yaml
        .as_deref()
        .and_then(|t| first_document(t, options));
    let loaded = files.and_then(|files| match input {
        ChartInput::Files(_) => Chart::load_unpacked(files.into_owned()),
        ChartInput::Archive(_) => Chart::load(files.into_owned()),
    });
    let name = match (
        &loaded,
        chart_doc.as_ref().and_then(|d| str_at(d, &["name"])),
    ) {
        (Ok(chart), _) => chart.metadata.name.clone(),
        (Err(_), Some(name)) => name.to_owned(),
        (Err(_), None) => basename(path).to_owned(),
    };
    out.chart_seen(&name, path);
    let chart = match loaded {
        Ok(chart) => chart,
        Err(e) => {
            out.warn(
                WarningKind::Chart,
                path,
                None,
                format!("chart {name}: cannot be loaded: {e}"),
            );
            fallback(path, &name, &raw, chart_doc.as_ref(), None, options, out);
            return;
        }
    };
    let Some(render_options) = render_options(path, &name, options, out) else {
        fallback(path, &name, &raw, chart_doc.as_ref(), None, options, out);
        return;
    };
    match helm::render(&chart, &render_options) {
        Ok(rendered) => {
            scan_rendered(&name, &rendered, options, out);
            if let Some(chart_doc) = &chart_doc {
                let mut base =
                    Provenance::new(SourceKind::ChartAnnotation, join(path, "Chart.yaml"));
                base.chart = Some(name.clone());
                annotation_images(chart_doc, &[DECLARED_IMAGES], &base, options, out);
            }
            if !rendered.errors.is_empty() {
                for error in &rendered.errors {
                    let function = error
                        .function
                        .as_deref()
                        .map(|f| format!(" (in {f})"))
                        .unwrap_or_default();
                    out.warn(
                        WarningKind::Chart,
                        &error.template,
                        error.line,
                        format!("chart {}: {}{function}", error.chart, error.message),
                    );
                }
                let values = Some(&rendered.values);
                fallback(path, &name, &raw, chart_doc.as_ref(), values, options, out);
            }
        }
        Err(e) => {
            out.warn(
                WarningKind::Chart,
                path,
                None,
                format!("chart {name}: cannot be rendered: {e}"),
            );
            fallback(path, &name, &raw, chart_doc.as_ref(), None, options, out);
        }
    }
}

/// The render options for a chart, with its user values files read; `None` (after a
/// warning) when one cannot be read, since rendering without it would give other images.
fn render_options(
    path: &str,
    name: &str,
    options: &ScanOptions,
    out: &mut Collector,
) -> Option<RenderOptions> {
    // Values given by the chart's name apply first, then those given by its path; for each,
    // its files, then its texts.
    let mut values_files = Vec::new();
    let mut set = Vec::new();
    let mut set_string = Vec::new();
    let path_values = options.chart_values.get(path).filter(|_| path != name);
    for given in [options.chart_values.get(name), path_values]
        .into_iter()
        .flatten()
    {
        for file in &given.values_files {
            let shown = file.display().to_string();
            match std::fs::read_to_string(file) {
                Ok(text) => values_files.push((shown, text)),
                Err(e) => {
                    out.warn(
                        WarningKind::Unreadable,
                        &shown,
                        None,
                        format!("values file of chart {name}: {e}"),
                    );
                    return None;
                }
            }
        }
        values_files.extend(given.values_texts.iter().cloned());
        set.extend(given.set.iter().cloned());
        set_string.extend(given.set_string.iter().cloned());
    }
    Some(RenderOptions {
        release_name: options.release_name.clone(),
        namespace: options.namespace.clone(),
        values_files,
        set,
        set_string,
        kube_version: options.kube_version.clone(),
        api_versions: options.api_versions.clone(),
    })
}

/// Scans the rendered manifests of a chart as Helm reads them: each file split on `---`
/// before any YAML parsing (so `---# comment` separates documents), and documents whose
/// `helm.sh/hook` names an event Helm does not know left out, as Helm drops them.
fn scan_rendered(name: &str, rendered: &Rendered, options: &ScanOptions, out: &mut Collector) {
    for manifest in &rendered.manifests {
        let mut base = Provenance::new(SourceKind::Chart, manifest.template.clone());
        base.chart = Some(name.to_owned());
        let documents = helm::output::split_documents_with_lines(&manifest.text);
        for (index, (first_line, text)) in documents.into_iter().enumerate() {
            for document in kyaml::documents(&text, &options.limits) {
                if document
                    .as_ref()
                    .is_ok_and(|document| is_dropped_hook(&document.root))
                {
                    continue;
                }
                scan_document(document, index, first_line, &base, out);
            }
        }
    }
}

/// Whether Helm leaves this document out: a hook naming an event it does not know.
fn is_dropped_hook(root: &Node) -> bool {
    root.get("metadata")
        .and_then(|metadata| metadata.get("annotations"))
        .and_then(|annotations| annotations.get("helm.sh/hook"))
        .and_then(Node::as_str)
        .is_some_and(|events| !helm::output::known_hook_events(events))
}

/// Reads images from a chart's annotations and values, and marks the chart partial.
fn fallback(
    path: &str,
    name: &str,
    raw: &RawChart,
    chart_doc: Option<&Node>,
    rendered_values: Option<&BTreeMap<String, gotemplate::Value>>,
    options: &ScanOptions,
    out: &mut Collector,
) {
    out.partial_chart(name);
    let chart_file = join(path, "Chart.yaml");
    let mut base = Provenance::new(SourceKind::ChartFallback, chart_file.clone());
    base.chart = Some(name.to_owned());
    let mut found = Collector::new();
    if let Some(chart_doc) = chart_doc {
        annotation_images(chart_doc, &IMAGE_ANNOTATIONS, &base, options, &mut found);
    }
    let app_version = chart_doc
        .and_then(|d| d.get("appVersion"))
        .and_then(Node::scalar_text);
    let values_file = join(path, "values.yaml");
    base.file.clone_from(&values_file);
    match rendered_values {
        Some(values) => {
            for (chart, value) in values {
                let node = value_to_node(value);
                let (prefix, tag) = if chart.is_empty() {
                    ("values".to_owned(), app_version)
                } else {
                    (format!("values of {chart}"), None)
                };
                values_images(&node, &prefix, tag, &base, &mut found);
            }
        }
        None => {
            if let Some(node) = raw
                .values_yaml
                .as_deref()
                .and_then(|t| first_document(t, options))
            {
                values_images(&node, "", app_version, &base, &mut found);
            }
        }
    }
    let count = found.image_count();
    out.merge(found);
    out.warn(
        WarningKind::Chart,
        path,
        None,
        format!(
            "chart {name} is scanned partially: {count} image(s) from its annotations and values \
             instead of its rendered templates (may miss images or list unused ones)"
        ),
    );
}

/// Images listed by the image annotations of Chart.yaml.
fn annotation_images(
    chart_doc: &Node,
    keys: &[&str],
    base: &Provenance,
    options: &ScanOptions,
    out: &mut Collector,
) {
    for key in keys {
        let Some(value) = chart_doc.get_path(&["annotations", key]) else {
            continue;
        };
        let Some(text) = value.as_str() else {
            continue;
        };
        let prefix = format!("annotations[{key:?}]");
        for document in kyaml::documents(text, &options.limits) {
            match document {
                Ok(document) => {
                    let mut fields =
                        objects::generic_fields(&document.root, &prefix, Defaults::default());
                    for field in &mut fields {
                        // A block scalar's node starts on its first content line.
                        field.line = if text.contains('\n') {
                            value.line + field.line - 1
                        } else {
                            value.line
                        };
                    }
                    record_fields(fields, None, base, out);
                }
                Err(e) => out.warn(
                    WarningKind::InvalidYaml,
                    &base.file,
                    Some(value.line + e.line - 1),
                    format!("annotation {key}: invalid YAML: {}", e.message),
                ),
            }
        }
    }
}

/// Images in a values tree, with `global.imageRegistry` and the default tag applied.
fn values_images(
    values: &Node,
    prefix: &str,
    tag: Option<&str>,
    base: &Provenance,
    out: &mut Collector,
) {
    let registry = str_at(values, &["global", "imageRegistry"]).filter(|r| !r.is_empty());
    let fields = objects::generic_fields(values, prefix, Defaults { registry, tag });
    record_fields(fields, None, base, out);
}

/// A computed values tree as YAML nodes without positions (line 0); bools and numbers are
/// written as Go prints them.
fn value_to_node(value: &gotemplate::Value) -> Node {
    use gotemplate::Value;
    let kind = match value {
        Value::Nil | Value::Object(_) => NodeKind::Null,
        Value::String(text) => NodeKind::String(text.to_string()),
        Value::Bytes(bytes) => NodeKind::String(String::from_utf8_lossy(bytes).into_owned()),
        Value::Bool(value) => NodeKind::Bool(*value),
        Value::Int(number, _) => NodeKind::Int(i128::from(*number)),
        Value::Float(number) => NodeKind::Float(*number),
        Value::List(items) => NodeKind::Sequence(items.iter().map(value_to_node).collect()),
        Value::Map(map) => NodeKind::Mapping(
            map.borrow()
                .iter()
                .map(|(k, v)| {
                    (
                        unpositioned(NodeKind::String(k.clone()), None),
                        value_to_node(v),
                    )
                })
                .collect(),
        ),
    };
    let written = matches!(value, Value::Bool(_) | Value::Int(..) | Value::Float(_))
        .then(|| value.to_go_string().into());
    unpositioned(kind, written)
}

/// A node without a position.
fn unpositioned(kind: NodeKind, written: Option<Box<str>>) -> Node {
    Node {
        kind,
        line: 0,
        column: 0,
        written,
    }
}

/// Reads a chart directory of the context into memory.
fn chart_files(
    view: &dyn ContextView,
    dir: &str,
    out: &mut Collector,
) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for relative in view.walk_files(dir) {
        let path = join(dir, &relative);
        match view.read(&path) {
            Ok(bytes) => {
                files.insert(relative, bytes);
            }
            Err(e) => out.warn(WarningKind::Unreadable, &path, None, e.to_string()),
        }
    }
    files
}

/// Whether a context directory holds a chart.
pub fn is_chart_dir(view: &dyn ContextView, dir: &str) -> bool {
    view.kind(&join(dir, "Chart.yaml")) == Some(EntryKind::File)
}

/// Scans the chart directory `dir` of the context.
pub fn scan_chart_dir(
    view: &dyn ContextView,
    dir: &str,
    options: &ScanOptions,
    out: &mut Collector,
) {
    let files = chart_files(view, dir, out);
    scan_chart(dir, &ChartInput::Files(files), options, out);
}

/// Scans each chart directly under `dir` (`charts/`): directories with a Chart.yaml and
/// `.tgz` archives. Anything else is reported, never skipped silently.
pub fn scan_dir(view: &dyn ContextView, dir: &str, options: &ScanOptions, out: &mut Collector) {
    for entry in view.list(dir) {
        let path = join(dir, &entry);
        match view.kind(&path) {
            Some(EntryKind::Dir) if is_chart_dir(view, &path) => {
                scan_chart_dir(view, &path, options, out);
            }
            Some(EntryKind::File) if has_extension(&path, &["tgz", "tar.gz"]) => {
                match view.read(&path) {
                    Ok(bytes) => scan_chart(&path, &ChartInput::Archive(bytes), options, out),
                    Err(e) => out.warn(WarningKind::Unreadable, &path, None, e.to_string()),
                }
            }
            _ => out.warn(
                WarningKind::Chart,
                &path,
                None,
                "not a chart (neither a directory with a Chart.yaml nor a .tgz); not scanned",
            ),
        }
    }
}
