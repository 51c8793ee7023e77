//! Config documents (`kind: Config`): files written into the rootfs before distribution,
//! created, overwritten, or merged into every YAML document of the file, after an optional
//! `process` pipeline (`value|toJson|toBase64|toSecret`).

use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use gotemplate::Value;
use kyaml::{Limits, Node};

use super::document::{Location, Reader, child};
use super::error::ClusterfileError;

/// How a file that exists already is changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Replace the file (the default).
    Overwrite,
    /// Deep-merge the data (a YAML mapping) into every `---` document of the file, the data's
    /// values winning.
    Merge,
}

/// One step of a Config's `process` pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Processor {
    /// `value`: the next steps treat the data as a mapping and change each value.
    Value,
    /// `toJson`: YAML to JSON (each value to a JSON string after `value`).
    ToJson,
    /// `toBase64`: base64 of the data (of each value after `value`).
    ToBase64,
    /// `toSecret`: the data's keys go into the `data` of the Secret the file holds.
    ToSecret,
}

impl Processor {
    fn parse(name: &str) -> Option<Processor> {
        match name {
            "value" => Some(Processor::Value),
            "toJson" => Some(Processor::ToJson),
            "toBase64" => Some(Processor::ToBase64),
            "toSecret" => Some(Processor::ToSecret),
            _ => None,
        }
    }
}

/// A `kind: Config` document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `metadata.name`.
    pub name: String,
    /// `spec.path`, relative to the rootfs (or to the app's directory with `appName`).
    pub path: PathBuf,
    /// `spec.data`.
    pub data: String,
    /// `spec.strategy`.
    pub strategy: Strategy,
    /// `spec.process`, in order.
    pub process: Vec<Processor>,
    /// `spec.appName`: the file is under `application/apps/<appName>/`.
    pub app_name: Option<String>,
    /// Where the document starts.
    pub location: Location,
}

impl Config {
    /// The file written, relative to the rootfs.
    pub fn relative_target(&self) -> PathBuf {
        match &self.app_name {
            Some(app) => Path::new("application/apps").join(app).join(&self.path),
            None => self.path.clone(),
        }
    }

    /// The data after the `process` pipeline.
    pub fn processed_data(&self) -> Result<String, String> {
        let mut data = self.data.clone();
        let mut each_value = false;
        for processor in &self.process {
            match processor {
                Processor::Value => each_value = true,
                Processor::ToJson if each_value => {
                    data = map_values(&data, "toJson", |value| {
                        kyaml::to_json(value).map(Value::string)
                    })?;
                }
                Processor::ToJson => {
                    let value = kyaml::from_yaml_value(&data)
                        .map_err(|error| format!("toJson: {error}"))?;
                    data = kyaml::to_json(&value).map_err(|error| format!("toJson: {error}"))?;
                }
                Processor::ToBase64 if each_value => {
                    data = map_values(&data, "toBase64", |value| match value {
                        Value::List(_) | Value::Map(_) => {
                            Err("the value is not a string".to_owned())
                        }
                        _ => Ok(Value::string(base64_text(&value.to_go_string()))),
                    })?;
                }
                Processor::ToBase64 => data = base64_text(&data),
                Processor::ToSecret => {}
            }
        }
        Ok(data)
    }

    /// Writes the Config into `rootfs`; returns the file written.
    pub fn apply(&self, rootfs: &Path) -> Result<PathBuf, ClusterfileError> {
        let error = |path: &Path, message: String| ClusterfileError::ConfigWrite {
            location: self.location.to_string(),
            name: self.name.clone(),
            path: path.to_path_buf(),
            message,
        };
        let target = rootfs.join(self.relative_target());
        let data = self
            .processed_data()
            .map_err(|message| error(&target, message))?;
        let secret = self.process.contains(&Processor::ToSecret);
        let encoded = self.process.contains(&Processor::ToBase64);
        write_into_rootfs(rootfs, &target, |existing| match existing {
            None => Ok(data.clone()),
            Some(existing) => {
                let mut new = data.clone();
                if secret {
                    new = merge_secret(existing, &new, encoded)?;
                }
                if self.strategy == Strategy::Merge {
                    new = merge_documents(existing, &new)?;
                }
                Ok(new)
            }
        })
        .map_err(|message| error(&target, message))?;
        Ok(target)
    }
}

fn base64_text(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// The data as a mapping with `change` applied to each value, written back as YAML.
fn map_values(
    data: &str,
    step: &str,
    change: impl Fn(&Value) -> Result<Value, String>,
) -> Result<String, String> {
    let parsed = kyaml::from_yaml(data).map_err(|error| format!("{step}: {error}"))?;
    let Value::Map(map) = &parsed else {
        return Err(format!("{step}: with `value` the data must be a mapping"));
    };
    let mut changed = std::collections::BTreeMap::new();
    for (key, value) in map.borrow().iter() {
        let new = change(value).map_err(|message| format!("{step}: key {key:?}: {message}"))?;
        changed.insert(key.clone(), new);
    }
    kyaml::to_yaml(&Value::map(changed)).map_err(|error| format!("{step}: {error}"))
}

/// Writes `target` (inside `rootfs`) with what `content` makes of its current text. The
/// parent directories are created; the file and its directory must stay inside the rootfs
/// (a symbolic link out of it is refused).
pub(crate) fn write_into_rootfs(
    rootfs: &Path,
    target: &Path,
    content: impl FnOnce(Option<&str>) -> Result<String, String>,
) -> Result<(), String> {
    let parent = target
        .parent()
        .ok_or_else(|| "the path has no directory".to_owned())?;
    std::fs::create_dir_all(parent)
        .map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
    let real_root = rootfs
        .canonicalize()
        .map_err(|error| format!("cannot resolve the rootfs {}: {error}", rootfs.display()))?;
    let real_parent = parent
        .canonicalize()
        .map_err(|error| format!("cannot resolve {}: {error}", parent.display()))?;
    if !real_parent.starts_with(&real_root) {
        return Err(format!(
            "{} leads out of the rootfs (to {}) through a symbolic link: change the path",
            parent.display(),
            real_parent.display()
        ));
    }
    let existing = match std::fs::symlink_metadata(target) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            return Err("the file is a symbolic link: refusing to write through it".to_owned());
        }
        Ok(metadata) if metadata.is_dir() => return Err("it is a directory".to_owned()),
        Ok(_) => Some(
            std::fs::read_to_string(target).map_err(|error| format!("cannot read it: {error}"))?,
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(format!("cannot read it: {error}")),
    };
    let text = content(existing.as_deref())?;
    std::fs::write(target, text).map_err(|error| format!("cannot write it: {error}"))
}

/// The data (a mapping) deep-merged into every document of `existing`, data winning.
pub(crate) fn merge_documents(existing: &str, data: &str) -> Result<String, String> {
    let overlay = kyaml::from_yaml(data)
        .map_err(|error| format!("the data is not a YAML mapping: {error}"))?;
    let documents = kyaml::parse_documents(existing, &Limits::default())
        .map_err(|error| format!("the file is not YAML, so it cannot be merged: {error}"))?;
    if documents.is_empty() {
        return kyaml::to_yaml(&overlay);
    }
    let mut merged = Vec::new();
    for document in documents {
        let value = mapping_value(&document.root)?;
        merge_value(&value, &overlay);
        merged.push(kyaml::to_yaml(&value)?);
    }
    Ok(merged.join("---\n"))
}

fn mapping_value(node: &Node) -> Result<Value, String> {
    let value = node.to_value().map_err(|error| error.to_string())?;
    match value {
        Value::Map(_) => Ok(value),
        Value::Nil => Ok(Value::empty_map()),
        _ => Err(format!(
            "the document at line {} is not a mapping, so it cannot be merged: use strategy overwrite",
            node.line
        )),
    }
}

/// Deep merge with override: mappings merge key by key, anything else is replaced; null
/// values of the overlay change nothing.
fn merge_value(target: &Value, overlay: &Value) {
    let (Value::Map(target), Value::Map(overlay)) = (target, overlay) else {
        return;
    };
    for (key, value) in overlay.borrow().iter() {
        if value.is_nil() {
            continue;
        }
        let current = target.borrow().get(key).cloned();
        match (current, value) {
            (Some(current @ Value::Map(_)), Value::Map(_)) => merge_value(&current, value),
            _ => {
                target.borrow_mut().insert(key.clone(), value.deep_copy());
            }
        }
    }
}

/// The keys of `data` (a mapping of strings) put into the `data` of the Secret `existing`
/// holds: as they are when the pipeline base64-encoded them, else base64-encoded here.
fn merge_secret(existing: &str, data: &str, encoded: bool) -> Result<String, String> {
    let overlay = kyaml::from_yaml(data)
        .map_err(|error| format!("toSecret: the data is not a YAML mapping: {error}"))?;
    let secret = kyaml::from_yaml(existing)
        .map_err(|error| format!("toSecret: the file is not a YAML Secret: {error}"))?;
    let Value::Map(secret_map) = &secret else {
        return Err("toSecret: the file is not a YAML Secret".to_owned());
    };
    let current = secret_map.borrow().get("data").cloned();
    let secret_data = if let Some(map @ Value::Map(_)) = current {
        map
    } else {
        let map = Value::empty_map();
        secret_map
            .borrow_mut()
            .insert("data".to_owned(), map.clone());
        map
    };
    let (Value::Map(target), Value::Map(overlay)) = (&secret_data, &overlay) else {
        return Err("toSecret: the data is not a YAML mapping".to_owned());
    };
    for (key, value) in overlay.borrow().iter() {
        if matches!(value, Value::List(_) | Value::Map(_)) {
            return Err(format!("toSecret: key {key:?}: the value is not a string"));
        }
        let text = value.to_go_string();
        let text = if encoded { text } else { base64_text(&text) };
        target.borrow_mut().insert(key.clone(), Value::string(text));
    }
    kyaml::to_yaml(&secret)
}

/// A path relative to the rootfs with no `..`: anything else is refused.
pub(crate) fn check_relative(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if path.is_absolute() {
        return Err(format!(
            "{text:?} is absolute: write it relative to the rootfs (e.g. etc/{})",
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
    }
    if path
        .components()
        .any(|component| matches!(component, Component::ParentDir))
    {
        return Err(format!(
            "{text:?} leaves the rootfs with '..': write a path inside it"
        ));
    }
    if !path
        .components()
        .any(|component| matches!(component, Component::Normal(_)))
    {
        return Err(format!("{text:?} names no file"));
    }
    Ok(path)
}

/// An app name used as a directory name.
pub(crate) fn check_app_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
        Err(format!(
            "{name:?} is not an app name (it names application/apps/<name>)"
        ))
    } else {
        Ok(())
    }
}

/// Reads a Config document; `None` when it has problems (they are in the reader).
pub(crate) fn read_config(reader: &mut Reader<'_>, root: &Node) -> Option<Config> {
    let before = reader.problems.len();
    let metadata = root.get("metadata").unwrap_or(root);
    let name = reader
        .string(metadata.get("name"), "metadata.name")
        .unwrap_or_default();
    let Some(spec) = root.get("spec") else {
        reader.problem(root, "spec", "missing: give spec.path and spec.data");
        return None;
    };
    reader.mapping(Some(spec), "spec");
    reader.check_keys(
        spec,
        "spec",
        &["path", "data", "strategy", "process", "appName"],
    );
    let path = reader
        .required_string(
            spec,
            "path",
            "spec",
            "give the file to write, relative to the rootfs",
        )
        .and_then(|text| {
            check_relative(&text)
                .map_err(|message| {
                    reader.problem(spec.get("path").unwrap_or(spec), "spec.path", message);
                })
                .ok()
        });
    let data = reader.required_string(spec, "data", "spec", "give the file's content");
    let strategy = match reader
        .string(spec.get("strategy"), "spec.strategy")
        .as_deref()
    {
        None | Some("overwrite") => Strategy::Overwrite,
        Some("merge") => Strategy::Merge,
        Some(other) => {
            reader.problem(
                spec.get("strategy").unwrap_or(spec),
                "spec.strategy",
                format!("{other:?} is not a strategy: use overwrite or merge"),
            );
            Strategy::Overwrite
        }
    };
    let mut process = Vec::new();
    if let Some(pipeline) = reader.string(spec.get("process"), "spec.process") {
        for step in pipeline
            .split('|')
            .map(str::trim)
            .filter(|step| !step.is_empty())
        {
            match Processor::parse(step) {
                Some(processor) => process.push(processor),
                None => reader.problem(
                    spec.get("process").unwrap_or(spec),
                    "spec.process",
                    format!("unknown step {step:?}: use value, toJson, toBase64 and toSecret joined by |"),
                ),
            }
        }
    }
    let app_name = reader.string(spec.get("appName"), &child("spec", "appName"));
    if let Some(app) = &app_name
        && let Err(message) = check_app_name(app)
    {
        reader.problem(spec.get("appName").unwrap_or(spec), "spec.appName", message);
    }
    if reader.problems.len() > before {
        return None;
    }
    Some(Config {
        name,
        path: path?,
        data: data?,
        strategy,
        process,
        app_name,
        location: reader.location(root),
    })
}
