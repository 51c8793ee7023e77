//! The typed objects Helm puts in a template's data: `.Files`, `.Capabilities` (with
//! `KubeVersion` and `APIVersions.Has`) and `.Chart`.

use std::collections::BTreeMap;
use std::rc::Rc;

use gotemplate::{Object, Value};

use crate::glob;

/// `.Files`: the chart's non-template files (Helm's `files` type, a map of path to bytes).
pub struct Files {
    files: BTreeMap<String, Rc<[u8]>>,
}

impl Files {
    /// The files of one chart.
    pub fn new(files: &BTreeMap<String, Vec<u8>>) -> Self {
        Files {
            files: files
                .iter()
                .map(|(path, bytes)| (path.clone(), Rc::from(bytes.as_slice())))
                .collect(),
        }
    }

    fn text(&self, path: &str) -> String {
        self.files
            .get(path)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .unwrap_or_default()
    }

    fn by_base_name(&self, encode: impl Fn(&[u8]) -> String) -> String {
        let entries: BTreeMap<String, Value> = self
            .files
            .iter()
            .map(|(path, bytes)| {
                let base = path.rsplit('/').next().unwrap_or(path).to_owned();
                (base, Value::string(encode(bytes)))
            })
            .collect();
        crate::funcs::to_yaml_text(&Value::map(entries))
    }
}

fn string_arg(method: &str, args: &[Value]) -> Result<String, String> {
    match args {
        [Value::String(text)] => Ok(text.to_string()),
        [other] => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
        _ => Err(format!(
            "wrong number of args for {method}: want 1 got {}",
            args.len()
        )),
    }
}

impl Object for Files {
    fn type_name(&self) -> &'static str {
        "engine.files"
    }

    fn kind(&self) -> &'static str {
        "map"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "AsConfig" => {
                Some(Value::string(self.by_base_name(|bytes| {
                    String::from_utf8_lossy(bytes).into_owned()
                })))
            }
            "AsSecrets" => Some(Value::string(self.by_base_name(sprig_base64))),
            _ => None,
        }
    }

    fn call_method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let result = match name {
            "Get" => string_arg(name, args).map(|path| Value::string(self.text(&path))),
            "GetBytes" => string_arg(name, args).map(|path| {
                Value::Bytes(
                    self.files
                        .get(&path)
                        .cloned()
                        .unwrap_or_else(|| Rc::from(&[][..])),
                )
            }),
            "Glob" => string_arg(name, args).map(|pattern| {
                let files = self
                    .files
                    .iter()
                    .filter(|(path, _)| glob::matches(&pattern, path))
                    .map(|(path, bytes)| (path.clone(), bytes.clone()))
                    .collect();
                Value::Object(Rc::new(Files { files }))
            }),
            "Lines" => string_arg(name, args).map(|path| {
                let Some(bytes) = self.files.get(&path) else {
                    return Value::list(Vec::new());
                };
                let text = String::from_utf8_lossy(bytes);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                Value::list(text.split('\n').map(Value::from).collect())
            }),
            "AsConfig" | "AsSecrets" => {
                if args.is_empty() {
                    return self.field(name).map(Ok);
                }
                Err(format!(
                    "wrong number of args for {name}: want 0 got {}",
                    args.len()
                ))
            }
            _ => return None,
        };
        Some(result)
    }

    fn display(&self) -> String {
        self.to_data().to_go_string()
    }

    fn entries(&self) -> Option<Vec<(String, Value)>> {
        Some(
            self.files
                .iter()
                .map(|(path, bytes)| (path.clone(), Value::Bytes(bytes.clone())))
                .collect(),
        )
    }

    fn to_data(&self) -> Value {
        Value::map(self.entries().unwrap_or_default().into_iter().collect())
    }
}

fn sprig_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The Kubernetes version `helm template` assumes without a cluster.
#[derive(Debug, Clone)]
pub struct KubeVersion {
    /// `v1.32.0`.
    pub version: String,
    /// `1`.
    pub major: String,
    /// `32`.
    pub minor: String,
}

impl Object for KubeVersion {
    fn type_name(&self) -> &'static str {
        "*chartutil.KubeVersion"
    }

    fn kind(&self) -> &'static str {
        "ptr"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Version" | "GitVersion" | "String" => Some(Value::string(self.version.as_str())),
            "Major" => Some(Value::string(self.major.as_str())),
            "Minor" => Some(Value::string(self.minor.as_str())),
            _ => None,
        }
    }

    fn call_method(&self, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn display(&self) -> String {
        self.version.clone()
    }

    fn to_data(&self) -> Value {
        Value::map(BTreeMap::from([
            ("Version".into(), Value::string(self.version.as_str())),
            ("Major".into(), Value::string(self.major.as_str())),
            ("Minor".into(), Value::string(self.minor.as_str())),
        ]))
    }
}

/// `.Capabilities.APIVersions`: the API versions the cluster serves (`group/version`, and
/// `group/version/Kind` entries when given with `--api-versions`).
pub struct ApiVersions {
    versions: Vec<String>,
}

impl Object for ApiVersions {
    fn type_name(&self) -> &'static str {
        "chartutil.VersionSet"
    }

    fn kind(&self) -> &'static str {
        "slice"
    }

    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    fn call_method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        (name == "Has").then(|| {
            string_arg(name, args).map(|wanted| Value::Bool(self.versions.contains(&wanted)))
        })
    }

    fn display(&self) -> String {
        format!("[{}]", self.versions.join(" "))
    }

    fn entries(&self) -> Option<Vec<(String, Value)>> {
        Some(
            self.versions
                .iter()
                .enumerate()
                .map(|(index, version)| (index.to_string(), Value::string(version.as_str())))
                .collect(),
        )
    }

    fn to_data(&self) -> Value {
        Value::list(
            self.versions
                .iter()
                .map(|v| Value::string(v.as_str()))
                .collect(),
        )
    }
}

/// `.Capabilities`.
pub struct Capabilities {
    kube_version: Rc<KubeVersion>,
    api_versions: Rc<ApiVersions>,
}

impl Capabilities {
    /// Helm's defaults for a render without a cluster, with extra API versions added
    /// (`--api-versions`).
    pub fn new(kube_version: KubeVersion, extra_api_versions: &[String]) -> Self {
        let mut versions: Vec<String> = crate::defaults::API_VERSIONS
            .iter()
            .map(|v| (*v).to_owned())
            .collect();
        versions.extend(extra_api_versions.iter().cloned());
        Capabilities {
            kube_version: Rc::new(kube_version),
            api_versions: Rc::new(ApiVersions { versions }),
        }
    }
}

/// `.Capabilities.HelmVersion`: fields by Go name, JSON by its snake-case tags.
struct HelmVersion;

const HELM_VERSION_FIELDS: [(&str, &str); 4] = [
    ("Version", "version"),
    ("GitCommit", "git_commit"),
    ("GitTreeState", "git_tree_state"),
    ("GoVersion", "go_version"),
];

impl Object for HelmVersion {
    fn type_name(&self) -> &'static str {
        "chartutil.HelmVersion"
    }

    fn field(&self, name: &str) -> Option<Value> {
        let index = HELM_VERSION_FIELDS
            .iter()
            .position(|(field, _)| *field == name)?;
        Some(Value::string(crate::defaults::HELM_VERSION[index]))
    }

    fn call_method(&self, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn display(&self) -> String {
        format!("{{{}}}", crate::defaults::HELM_VERSION.join(" "))
    }

    fn to_data(&self) -> Value {
        Value::map(
            HELM_VERSION_FIELDS
                .iter()
                .zip(crate::defaults::HELM_VERSION)
                .map(|((_, key), value)| ((*key).to_owned(), Value::string(value)))
                .collect(),
        )
    }
}

fn helm_version() -> Value {
    Value::Object(Rc::new(HelmVersion))
}

impl Object for Capabilities {
    fn type_name(&self) -> &'static str {
        "*chartutil.Capabilities"
    }

    fn kind(&self) -> &'static str {
        "ptr"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "KubeVersion" => Some(Value::Object(self.kube_version.clone())),
            "APIVersions" => Some(Value::Object(self.api_versions.clone())),
            "HelmVersion" => Some(helm_version()),
            _ => None,
        }
    }

    fn call_method(&self, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn display(&self) -> String {
        format!(
            "&{{{{{} {} {}}} {} {}}}",
            self.kube_version.version,
            self.kube_version.major,
            self.kube_version.minor,
            self.api_versions.display(),
            HelmVersion.display()
        )
    }

    fn to_data(&self) -> Value {
        Value::map(BTreeMap::from([
            ("KubeVersion".into(), self.kube_version.to_data()),
            ("APIVersions".into(), self.api_versions.to_data()),
            ("HelmVersion".into(), HelmVersion.to_data()),
        ]))
    }
}

/// `.Chart`: Chart.yaml as Helm's `*chart.Metadata` struct (fields by their Go names).
pub struct ChartMetadata {
    raw: BTreeMap<String, Value>,
    is_root: bool,
}

/// The Go type of a `chart.Metadata` field, which decides its zero value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Text,
    Flag,
    List,
    Table,
}

/// Go field name, Chart.yaml key, and Go type of each `chart.Metadata` field.
const METADATA_FIELDS: &[(&str, &str, FieldType)] = &[
    ("Name", "name", FieldType::Text),
    ("Home", "home", FieldType::Text),
    ("Sources", "sources", FieldType::List),
    ("Version", "version", FieldType::Text),
    ("Description", "description", FieldType::Text),
    ("Keywords", "keywords", FieldType::List),
    ("Maintainers", "maintainers", FieldType::List),
    ("Icon", "icon", FieldType::Text),
    ("APIVersion", "apiVersion", FieldType::Text),
    ("Condition", "condition", FieldType::Text),
    ("Tags", "tags", FieldType::Text),
    ("AppVersion", "appVersion", FieldType::Text),
    ("Deprecated", "deprecated", FieldType::Flag),
    ("Annotations", "annotations", FieldType::Table),
    ("KubeVersion", "kubeVersion", FieldType::Text),
    ("Dependencies", "dependencies", FieldType::List),
    ("Type", "type", FieldType::Text),
];

impl ChartMetadata {
    /// Wraps a decoded Chart.yaml; `is_root` is what `.Chart.IsRoot` says.
    pub fn new(raw: BTreeMap<String, Value>, is_root: bool) -> Self {
        ChartMetadata { raw, is_root }
    }
}

impl Object for ChartMetadata {
    fn type_name(&self) -> &'static str {
        "struct { chart.Metadata; IsRoot bool }"
    }

    fn field(&self, name: &str) -> Option<Value> {
        if name == "IsRoot" {
            return Some(Value::Bool(self.is_root));
        }
        let &(_, key, field_type) = METADATA_FIELDS
            .iter()
            .find(|(field, _, _)| *field == name)?;
        Some(match (self.raw.get(key), field_type) {
            (Some(value), FieldType::Text) => {
                Value::string(crate::chart::scalar_text(value).unwrap_or_default())
            }
            (Some(Value::Bool(flag)), FieldType::Flag) => Value::Bool(*flag),
            (Some(value @ Value::List(_)), FieldType::List)
            | (Some(value @ Value::Map(_)), FieldType::Table) => value.clone(),
            (_, FieldType::Text) => Value::string(""),
            (_, FieldType::Flag) => Value::Bool(false),
            (_, FieldType::List) => Value::list(Vec::new()),
            (_, FieldType::Table) => Value::empty_map(),
        })
    }

    fn call_method(&self, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn display(&self) -> String {
        let fields: Vec<String> = METADATA_FIELDS
            .iter()
            .map(|(field, _, _)| {
                self.field(field)
                    .map(|value| value.to_go_string())
                    .unwrap_or_default()
            })
            .collect();
        format!("{{{{{}}} {}}}", fields.join(" "), self.is_root)
    }

    fn to_data(&self) -> Value {
        let mut data: BTreeMap<String, Value> = self
            .raw
            .iter()
            .filter(|(key, _)| METADATA_FIELDS.iter().any(|(_, known, _)| known == key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        data.insert("IsRoot".into(), Value::Bool(self.is_root));
        Value::map(data)
    }
}
