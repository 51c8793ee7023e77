//! Loading a chart: Chart.yaml, values.yaml, templates, other files (for `.Files`), and the
//! subcharts under `charts/` (directories or `.tgz` archives), from a map of files.

use std::collections::BTreeMap;
use std::io::Read;

use gotemplate::Value;

use crate::HelmError;

/// Largest chart archive, unpacked, that is read (Helm's own limits are 100 MiB per chart
/// and 5 MiB per file; ours is looser, for vendored images of charts, but bounded).
const MAX_ARCHIVE_BYTES: u64 = 512 * 1024 * 1024;

/// A byte-order mark, which Helm strips from every file it loads.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Files of the chart's root that are the chart's own description, not `.Files`.
const NOT_FILES: &[&str] = &[
    "Chart.yaml",
    "values.yaml",
    "Chart.lock",
    "values.schema.json",
    "requirements.yaml",
    "requirements.lock",
];

/// A loaded chart: its metadata, default values, templates, files and subcharts.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Chart.yaml, decoded.
    pub metadata: Metadata,
    /// values.yaml (empty when absent).
    pub values: BTreeMap<String, Value>,
    /// Templates by path relative to the chart (`templates/x.yaml`), in path order.
    pub templates: Vec<(String, String)>,
    /// Every other file, for `.Files` (crds/, files/, README, ...).
    pub files: BTreeMap<String, Vec<u8>>,
    /// Subcharts found under `charts/`, in name order.
    pub dependencies: Vec<Chart>,
}

/// Chart.yaml.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: String,
    /// `appVersion`.
    pub app_version: String,
    /// `kubeVersion` constraint.
    pub kube_version: String,
    /// `type` (`application` or `library`).
    pub chart_type: String,
    /// `annotations` with scalar values, as text.
    pub annotations: BTreeMap<String, String>,
    /// `dependencies`.
    pub dependencies: Vec<Dependency>,
    /// The whole Chart.yaml, for `.Chart` in templates.
    pub raw: BTreeMap<String, Value>,
}

/// One entry of Chart.yaml `dependencies`.
#[derive(Debug, Clone, Default)]
pub struct Dependency {
    /// `name` of the subchart.
    pub name: String,
    /// `version` constraint.
    pub version: String,
    /// `condition`: comma-separated value paths; the first that holds a bool decides.
    pub condition: String,
    /// `tags`.
    pub tags: Vec<String>,
    /// `alias`: the name the subchart is used under.
    pub alias: String,
    /// `import-values`: strings or `{child, parent}` maps.
    pub import_values: Vec<Value>,
}

impl Chart {
    /// Loads an unpacked chart directory's files, keyed by paths relative to its root: the
    /// top `.helmignore` (and Helm's default rules) leave files out first, as `helm` does
    /// when it reads a directory.
    pub fn load_unpacked(mut files: BTreeMap<String, Vec<u8>>) -> Result<Chart, HelmError> {
        let ignore_text = files
            .get(".helmignore")
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
        let rules = crate::ignore::Rules::parse(ignore_text.as_deref());
        files.retain(|path, _| !rules.ignores(path));
        Chart::load(files)
    }

    /// Loads a chart from its files as they are (a packaged chart's content), keyed by paths
    /// relative to the chart's root.
    pub fn load(mut files: BTreeMap<String, Vec<u8>>) -> Result<Chart, HelmError> {
        for bytes in files.values_mut() {
            if bytes.starts_with(UTF8_BOM) {
                bytes.drain(..UTF8_BOM.len());
            }
        }
        let chart_yaml = files
            .get("Chart.yaml")
            .ok_or_else(|| HelmError::new("Chart.yaml file is missing"))?;
        let mut metadata = Metadata::parse(&text_of("Chart.yaml", chart_yaml)?)?;
        if metadata.dependencies.is_empty()
            && let Some(requirements) = files.get("requirements.yaml")
        {
            metadata.dependencies = Metadata::dependencies_of(&yaml_map(
                "requirements.yaml",
                &text_of("requirements.yaml", requirements)?,
            )?);
        }
        let values = match files.get("values.yaml") {
            Some(bytes) => yaml_map("values.yaml", &text_of("values.yaml", bytes)?)?,
            None => BTreeMap::new(),
        };
        let mut templates = Vec::new();
        let mut other = BTreeMap::new();
        let mut subchart_files: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        let mut archives = Vec::new();
        for (path, bytes) in files {
            if NOT_FILES.contains(&path.as_str()) {
                continue;
            }
            if let Some(name) = path.strip_prefix("templates/") {
                if !name.is_empty() {
                    templates.push((path.clone(), String::from_utf8_lossy(&bytes).into_owned()));
                }
            } else if let Some(rest) = path.strip_prefix("charts/") {
                if rest.starts_with('_') || rest.starts_with('.') {
                    continue;
                }
                match rest.split_once('/') {
                    Some((dir, inner)) => {
                        subchart_files
                            .entry(dir.to_owned())
                            .or_default()
                            .insert(inner.to_owned(), bytes);
                    }
                    None if is_chart_archive(rest) => {
                        archives.push((path, bytes));
                    }
                    None => {
                        other.insert(path, bytes);
                    }
                }
            } else {
                other.insert(path, bytes);
            }
        }
        let mut dependencies = Vec::new();
        for (dir, sub_files) in subchart_files {
            let chart = Chart::load(sub_files).map_err(|error| {
                HelmError::new(format!(
                    "error loading subchart charts/{dir}: {}",
                    error.message
                ))
            })?;
            dependencies.push(chart);
        }
        for (path, bytes) in archives {
            let chart = Chart::load_archive(&bytes).map_err(|error| {
                HelmError::new(format!("error loading subchart {path}: {}", error.message))
            })?;
            dependencies.push(chart);
        }
        dependencies.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(Chart {
            metadata,
            values,
            templates,
            files: other,
            dependencies,
        })
    }

    /// Loads a chart from a `.tgz` archive (`helm package` output: one top directory).
    pub fn load_archive(bytes: &[u8]) -> Result<Chart, HelmError> {
        Chart::load(Chart::read_archive_files(bytes)?)
    }

    /// The files of a `.tgz` chart archive, keyed by paths relative to its top directory;
    /// what is unpacked is bounded, so a compression bomb ends in an error.
    pub fn read_archive_files(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, HelmError> {
        let decoder = flate2::read::GzDecoder::new(bytes);
        let mut archive = tar::Archive::new(decoder.take(MAX_ARCHIVE_BYTES));
        let mut files = BTreeMap::new();
        let entries = archive
            .entries()
            .map_err(|error| HelmError::new(format!("not a chart archive: {error}")))?;
        for entry in entries {
            let mut entry = entry
                .map_err(|error| HelmError::new(format!("chart archive is damaged: {error}")))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .map_err(|error| HelmError::new(format!("chart archive has a bad path: {error}")))?
                .to_string_lossy()
                .into_owned();
            let Some((_, inner)) = path.trim_start_matches("./").split_once('/') else {
                continue;
            };
            if inner.split('/').any(|part| part == "..") {
                return Err(HelmError::new(format!(
                    "chart archive path {path} leaves the chart"
                )));
            }
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(|error| {
                HelmError::new(format!("chart archive is damaged at {path}: {error}"))
            })?;
            files.insert(inner.to_owned(), data);
        }
        Ok(files)
    }

    /// Loads a chart directory from disk.
    pub fn load_dir(root: &std::path::Path) -> Result<Chart, HelmError> {
        Chart::load_unpacked(Chart::read_dir_files(root)?)
    }

    /// Reads every file under `root`, keyed by its path relative to `root`: what
    /// [`Chart::load`] takes.
    pub fn read_dir_files(root: &std::path::Path) -> Result<BTreeMap<String, Vec<u8>>, HelmError> {
        let mut files = BTreeMap::new();
        read_dir_into(root, "", &mut files)?;
        Ok(files)
    }

    /// Chart.yaml `annotations`.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.metadata.annotations.clone()
    }

    /// Whether this is a library chart (defines only, nothing rendered).
    pub fn is_library(&self) -> bool {
        self.metadata.chart_type == "library"
    }
}

/// Whether a file under `charts/` is a packaged subchart (`.tgz`, `.tar.gz`, any case).
fn is_chart_archive(name: &str) -> bool {
    let has_extension = |path: &std::path::Path, wanted: &str| {
        path.extension()
            .is_some_and(|found| found.eq_ignore_ascii_case(wanted))
    };
    let path = std::path::Path::new(name);
    has_extension(path, "tgz")
        || (has_extension(path, "gz")
            && path
                .file_stem()
                .is_some_and(|stem| has_extension(std::path::Path::new(stem), "tar")))
}

fn read_dir_into(
    root: &std::path::Path,
    prefix: &str,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), HelmError> {
    let dir = root.join(prefix);
    let entries = std::fs::read_dir(&dir)
        .map_err(|error| HelmError::new(format!("cannot read {}: {error}", dir.display())))?;
    for entry in entries {
        let entry = entry
            .map_err(|error| HelmError::new(format!("cannot read {}: {error}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type().map_err(|error| {
            HelmError::new(format!("cannot read {}: {error}", entry.path().display()))
        })?;
        if kind.is_dir() {
            read_dir_into(root, &relative, files)?;
        } else if kind.is_file() {
            let data = std::fs::read(entry.path()).map_err(|error| {
                HelmError::new(format!("cannot read {}: {error}", entry.path().display()))
            })?;
            files.insert(relative, data);
        }
    }
    Ok(())
}

impl Metadata {
    /// The `dependencies` list of a Chart.yaml (or an old chart's requirements.yaml).
    fn dependencies_of(raw: &BTreeMap<String, Value>) -> Vec<Dependency> {
        match raw.get("dependencies") {
            Some(Value::List(items)) => items.iter().filter_map(Dependency::from_value).collect(),
            _ => Vec::new(),
        }
    }

    fn parse(text: &str) -> Result<Metadata, HelmError> {
        let raw = yaml_map("Chart.yaml", text)?;
        let string = |key: &str| raw.get(key).and_then(scalar_text).unwrap_or_default();
        let name = string("name");
        if name.is_empty() {
            return Err(HelmError::new("Chart.yaml: `name` is required"));
        }
        let annotations = match raw.get("annotations") {
            Some(Value::Map(map)) => map
                .borrow()
                .iter()
                .filter_map(|(key, value)| scalar_text(value).map(|text| (key.clone(), text)))
                .collect(),
            _ => BTreeMap::new(),
        };
        let dependencies = Metadata::dependencies_of(&raw);
        Ok(Metadata {
            version: string("version"),
            app_version: string("appVersion"),
            kube_version: string("kubeVersion"),
            chart_type: string("type"),
            name,
            annotations,
            dependencies,
            raw,
        })
    }
}

impl Dependency {
    fn from_value(value: &Value) -> Option<Dependency> {
        let Value::Map(map) = value else {
            return None;
        };
        let map = map.borrow();
        let string = |key: &str| map.get(key).and_then(scalar_text).unwrap_or_default();
        let tags = match map.get("tags") {
            Some(Value::List(items)) => items.iter().filter_map(scalar_text).collect(),
            _ => Vec::new(),
        };
        let import_values = match map.get("import-values") {
            Some(Value::List(items)) => items.as_ref().clone(),
            _ => Vec::new(),
        };
        Some(Dependency {
            name: string("name"),
            version: string("version"),
            condition: string("condition"),
            alias: string("alias"),
            tags,
            import_values,
        })
    }
}

/// The text of a Chart.yaml scalar as Helm reads it into a string field: strings as they
/// are, bools as `true`/`false`, whole numbers in plain form (`appVersion: 20240101` is
/// `20240101`), other numbers as Go's 32-bit `%g` (sigs.k8s.io/yaml's conversion).
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.to_string()),
        Value::Bool(_) | Value::Int(..) => Some(value.to_go_string()),
        Value::Float(number)
            if number.fract() == 0.0 && number.abs() < 9.007_199_254_740_992e15 =>
        {
            Some(format!("{number:.0}"))
        }
        #[allow(clippy::cast_possible_truncation)]
        Value::Float(number) => Some(format!("{}", *number as f32)),
        _ => None,
    }
}

fn text_of(path: &str, bytes: &[u8]) -> Result<String, HelmError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| HelmError::new(format!("{path} is not UTF-8 text")))
}

/// Parses a YAML file that must hold a mapping (or nothing).
pub(crate) fn yaml_map(path: &str, text: &str) -> Result<BTreeMap<String, Value>, HelmError> {
    match kyaml::from_yaml(text) {
        Ok(Value::Map(map)) => Ok(map.borrow().clone()),
        Ok(Value::Nil) => Ok(BTreeMap::new()),
        Ok(other) => Err(HelmError::new(format!(
            "{path}: expected a mapping at the top, found {}",
            other.type_name()
        ))),
        Err(error) => Err(HelmError::new(format!("{path}: {error}"))),
    }
}
