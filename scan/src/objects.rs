//! Image fields of Kubernetes objects.
//!
//! Built-in workload kinds are read by their typed pod spec only (containers,
//! initContainers, ephemeralContainers and image volumes), so strings in args, env,
//! annotations or labels are never taken. Any other kind (custom resources, unknown
//! apiVersions) is walked generically outside `metadata`: a key named `image` (any case) or
//! ending in `Image`, and `repository` + `tag` (+ `registry`, `digest`) siblings in one
//! mapping. `List` kinds are read item by item.

use crate::report::ObjectRef;
use kyaml::{Node, NodeKind};

/// What an image field holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A candidate reference (still to be validated).
    Text(String),
    /// A value that cannot be a reference (empty, not a string, a mapping without a
    /// repository), with the reason.
    Rejected(String),
}

/// One image field of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageField {
    /// What it holds.
    pub value: FieldValue,
    /// 1-based line of the value (0 when unknown).
    pub line: usize,
    /// Path of the field in the document.
    pub path: String,
    /// The object it belongs to, when the document holds Kubernetes objects.
    pub object: Option<ObjectRef>,
}

/// Defaults for `repository` + `tag` mappings, used when scanning chart values: a registry
/// for mappings without one (`global.imageRegistry`) and a tag for mappings whose tag is
/// missing or empty (the chart's appVersion).
#[derive(Debug, Clone, Copy, Default)]
pub struct Defaults<'a> {
    /// Registry to put in front of a repository that has none.
    pub registry: Option<&'a str>,
    /// Tag for a repository whose tag is missing or empty.
    pub tag: Option<&'a str>,
}

/// Every image field of a document's objects.
pub fn document_fields(root: &Node) -> Vec<ImageField> {
    let mut out = Vec::new();
    object_fields(root, "", None, &mut out);
    out
}

/// Every image field found by the generic walk under `node` (whose path is `path`).
pub fn generic_fields(node: &Node, path: &str, defaults: Defaults<'_>) -> Vec<ImageField> {
    let mut out = Vec::new();
    walk(node, path, defaults, None, &mut out);
    out
}

const BUILTIN_GROUPS: [&str; 4] = ["", "apps", "extensions", "batch"];

/// Where a built-in kind keeps its pod spec.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "PodTemplate" => &["template", "spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

/// The string at a path of mapping keys.
pub(crate) fn str_at<'a>(node: &'a Node, keys: &[&str]) -> Option<&'a str> {
    node.get_path(keys).and_then(Node::as_str)
}

fn object_fields(node: &Node, path: &str, kind_hint: Option<&str>, out: &mut Vec<ImageField>) {
    let NodeKind::Mapping(entries) = &node.kind else {
        walk(node, path, Defaults::default(), None, out);
        return;
    };
    let kind = str_at(node, &["kind"]).or(kind_hint).unwrap_or_default();
    let object = ObjectRef {
        kind: kind.to_owned(),
        name: str_at(node, &["metadata", "name"])
            .unwrap_or_default()
            .to_owned(),
        namespace: str_at(node, &["metadata", "namespace"]).map(str::to_owned),
    };
    let object = (!kind.is_empty() || !object.name.is_empty()).then_some(object);
    let is_object = object.is_some();
    if let (Some(item_kind), Some(NodeKind::Sequence(items))) = (
        kind.strip_suffix("List"),
        node.get("items").map(|n| &n.kind),
    ) {
        let hint = (!item_kind.is_empty()).then_some(item_kind);
        for (i, item) in items.iter().enumerate() {
            object_fields(item, &index_path(&key_path(path, "items"), i), hint, out);
        }
        return;
    }
    let group =
        str_at(node, &["apiVersion"]).map(|v| v.rsplit_once('/').map_or("", |(group, _)| group));
    let builtin = group.is_none_or(|g| BUILTIN_GROUPS.contains(&g));
    if let Some(spec_path) = pod_spec_path(kind).filter(|_| builtin) {
        if let Some(spec) = node.get_path(spec_path) {
            let spec_at = spec_path
                .iter()
                .fold(path.to_owned(), |p, key| key_path(&p, key));
            pod_spec_fields(spec, &spec_at, object.as_ref(), out);
        }
        return;
    }
    walk_entries(
        entries,
        path,
        Defaults::default(),
        object.as_ref(),
        is_object,
        out,
    );
}

fn pod_spec_fields(spec: &Node, path: &str, object: Option<&ObjectRef>, out: &mut Vec<ImageField>) {
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(NodeKind::Sequence(containers)) = spec.get(list).map(|n| &n.kind) else {
            continue;
        };
        for (i, container) in containers.iter().enumerate() {
            if let Some(image) = container.get("image") {
                let at = key_path(&index_path(&key_path(path, list), i), "image");
                field(image, &at, object, out);
            }
        }
    }
    if let Some(NodeKind::Sequence(volumes)) = spec.get("volumes").map(|n| &n.kind) {
        for (i, volume) in volumes.iter().enumerate() {
            if let Some(reference) = volume.get_path(&["image", "reference"]) {
                let at = format!(
                    "{}.image.reference",
                    index_path(&key_path(path, "volumes"), i)
                );
                field(reference, &at, object, out);
            }
        }
    }
}

/// A key naming an image: `image` in any case, or camelCase ending in `Image`.
fn is_image_key(key: &str) -> bool {
    key.eq_ignore_ascii_case("image") || (key.len() > "Image".len() && key.ends_with("Image"))
}

fn walk(
    node: &Node,
    path: &str,
    defaults: Defaults<'_>,
    object: Option<&ObjectRef>,
    out: &mut Vec<ImageField>,
) {
    match &node.kind {
        NodeKind::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &index_path(path, i), defaults, object, out);
            }
        }
        NodeKind::Mapping(entries) => {
            if let Some(value) = repository_reference(node, defaults) {
                let line = node.get("repository").map_or(node.line, |r| r.line);
                out.push(ImageField {
                    value,
                    line,
                    path: path.to_owned(),
                    object: object.cloned(),
                });
            }
            walk_entries(entries, path, defaults, object, false, out);
        }
        _ => {}
    }
}

/// The entries of a mapping: image-named keys are fields, every value is walked; an
/// object's `metadata` is left out when `skip_metadata`.
fn walk_entries(
    entries: &[(Node, Node)],
    path: &str,
    defaults: Defaults<'_>,
    object: Option<&ObjectRef>,
    skip_metadata: bool,
    out: &mut Vec<ImageField>,
) {
    for (key, value) in entries {
        let Some(name) = key.scalar_text() else {
            continue;
        };
        if skip_metadata && name == "metadata" {
            continue;
        }
        let at = key_path(path, name);
        if is_image_key(name) && repository_reference(value, defaults).is_none() {
            // A `repository` mapping is read by the walk below; anything else must be a string.
            field(value, &at, object, out);
        }
        walk(value, &at, defaults, object, out);
    }
}

/// Records a node that must hold a reference string.
fn field(value: &Node, path: &str, object: Option<&ObjectRef>, out: &mut Vec<ImageField>) {
    let value_of = match &value.kind {
        NodeKind::String(text) => FieldValue::Text(text.clone()),
        NodeKind::Null => FieldValue::Rejected("the image field is empty".into()),
        NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::Float(_) => FieldValue::Rejected(format!(
            "the image field holds `{}`, not a string",
            value.scalar_text().unwrap_or_default()
        )),
        NodeKind::Mapping(_) => {
            FieldValue::Rejected("the image field holds a mapping, not a string".into())
        }
        NodeKind::Sequence(_) => {
            FieldValue::Rejected("the image field holds a sequence, not a string".into())
        }
    };
    out.push(ImageField {
        value: value_of,
        line: value.line,
        path: path.to_owned(),
        object: object.cloned(),
    });
}

/// `registry/repository:tag@digest` from sibling keys, when the mapping has a `repository`
/// string and a tag or digest (or a default tag).
fn repository_reference(map: &Node, defaults: Defaults<'_>) -> Option<FieldValue> {
    let repository = str_at(map, &["repository"]).filter(|r| !r.is_empty())?;
    let text = |key: &str| {
        map.get(key)
            .and_then(Node::scalar_text)
            .filter(|t| !t.is_empty())
    };
    let has_tag_key = map.get("tag").is_some() || map.get("digest").is_some();
    if !has_tag_key && defaults.tag.is_none() {
        return None;
    }
    let tag = text("tag").or(defaults.tag);
    let digest = text("digest");
    let registry = text("registry").or(defaults.registry);
    let mut reference = match registry {
        Some(registry) => format!("{}/{repository}", registry.trim_end_matches('/')),
        None => repository.to_owned(),
    };
    if tag.is_none() && digest.is_none() {
        return Some(FieldValue::Rejected(format!(
            "`{reference}` has an empty tag and no digest"
        )));
    }
    if let Some(tag) = tag {
        reference.push(':');
        reference.push_str(tag);
    }
    if let Some(digest) = digest {
        reference.push('@');
        reference.push_str(digest);
    }
    Some(FieldValue::Text(reference))
}

fn key_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kyaml::{Limits, documents};

    fn fields(text: &str) -> Vec<(String, String, usize)> {
        documents(text, &Limits::default())
            .flat_map(|d| document_fields(&d.unwrap().root))
            .map(|f| {
                let value = match f.value {
                    FieldValue::Text(t) => t,
                    FieldValue::Rejected(r) => format!("!{r}"),
                };
                (f.path, value, f.line)
            })
            .collect()
    }

    #[test]
    fn typed_pod_specs_only() {
        let text = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\n  annotations:\n    image: no\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - name: a\n            image: busybox\n            args: [\"image: nginx\"]\n            env: [{name: IMAGE, value: nginx}]\n          volumes:\n          - name: v\n            image: {reference: \"quay.io/x/y:1\"}\n";
        assert_eq!(
            fields(text),
            vec![
                (
                    "spec.jobTemplate.spec.template.spec.containers[0].image".into(),
                    "busybox".into(),
                    14
                ),
                (
                    "spec.jobTemplate.spec.template.spec.volumes[0].image.reference".into(),
                    "quay.io/x/y:1".into(),
                    19
                ),
            ]
        );
    }

    #[test]
    fn every_workload_kind() {
        for (kind, prefix) in [
            ("Pod", "spec"),
            ("PodTemplate", "template.spec"),
            ("Deployment", "spec.template.spec"),
            ("StatefulSet", "spec.template.spec"),
            ("DaemonSet", "spec.template.spec"),
            ("ReplicaSet", "spec.template.spec"),
            ("ReplicationController", "spec.template.spec"),
            ("Job", "spec.template.spec"),
        ] {
            let mut spec = "{initContainers: [{image: a}], containers: [{image: b}], ephemeralContainers: [{image: c}]}".to_owned();
            for key in prefix.split('.').rev() {
                spec = format!("{{{key}: {spec}}}");
            }
            let text = format!("kind: {kind}\n{}", &spec[1..spec.len() - 1]);
            let found: Vec<String> = fields(&text).into_iter().map(|f| f.1).collect();
            assert_eq!(found, ["a", "b", "c"], "{kind}");
        }
    }

    #[test]
    fn custom_resources_walk_generically() {
        let text = "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s, labels: {image: x}}\nspec:\n  image: quay.io/p/p:v1\n  version: 3.1\n  baseImage: base\n  sidecar: {registry: r.io, repository: s/c, tag: \"1\", digest: \"sha256:00\"}\n  chart: {repository: \"https://charts\"}\n  IMAGE: {}\n  args: [\"--image=x\"]\n";
        assert_eq!(
            fields(text),
            vec![
                ("spec.image".into(), "quay.io/p/p:v1".into(), 5),
                ("spec.baseImage".into(), "base".into(), 7),
                ("spec.sidecar".into(), "r.io/s/c:1@sha256:00".into(), 8),
                (
                    "spec.IMAGE".into(),
                    "!the image field holds a mapping, not a string".into(),
                    10
                ),
            ]
        );
    }

    #[test]
    fn deployments_of_other_groups_are_custom() {
        let text =
            "apiVersion: apps.example.com/v1\nkind: Deployment\nspec: {template: {image: x}}\n";
        assert_eq!(
            fields(text),
            vec![("spec.template.image".into(), "x".into(), 3)]
        );
    }

    #[test]
    fn lists_are_read_item_by_item() {
        let text = "kind: List\nitems:\n- kind: Pod\n  spec: {containers: [{image: a}]}\n- kind: ConfigMap\n  data: {x: 'image: b'}\n";
        assert_eq!(
            fields(text),
            vec![("items[0].spec.containers[0].image".into(), "a".into(), 4)]
        );
        let typed = "kind: PodList\nitems:\n- spec: {containers: [{image: a}]}\n";
        assert_eq!(fields(typed)[0].0, "items[0].spec.containers[0].image");
    }

    #[test]
    fn values_defaults_fill_registry_and_tag() {
        let text = "image: {repository: bitnami/nginx, tag: \"\"}\nother: {registry: q.io, repository: a/b}\n";
        let doc = documents(text, &Limits::default()).next().unwrap().unwrap();
        let defaults = Defaults {
            registry: Some("docker.io"),
            tag: Some("1.2"),
        };
        let found: Vec<FieldValue> = generic_fields(&doc.root, "", defaults)
            .into_iter()
            .map(|f| f.value)
            .collect();
        assert_eq!(
            found,
            vec![
                FieldValue::Text("docker.io/bitnami/nginx:1.2".into()),
                FieldValue::Text("q.io/a/b:1.2".into())
            ]
        );
    }

    #[test]
    fn odd_keys_are_quoted_in_paths() {
        assert_eq!(key_path("data", "helper.yaml"), "data[\"helper.yaml\"]");
        assert_eq!(key_path("", "spec"), "spec");
    }
}
