//! What `helm template` prints: each rendered file split into YAML documents, every document
//! checked to be a Kubernetes-shaped mapping, hooks with unknown events dropped, documents
//! ordered by kind as Helm installs them (hooks last), each under a `# Source:` header.

use std::fmt::Write as _;
use std::sync::LazyLock;

use gotemplate::Value;
use regex::Regex;

use crate::{HelmError, Rendered};

/// Helm's document separator: `---` at the start or after a newline, with the whitespace around it.
static SEPARATOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|\s*\n)---\s*").expect("a valid regex"));

/// Kinds in the order Helm installs them; other kinds follow, by name.
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

/// The hook events Helm knows; a document naming any other is skipped.
const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
];

/// One document of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The template it came from (`chart/templates/x.yaml`).
    pub source: String,
    /// Its text, trimmed.
    pub text: String,
    /// Its `kind` (may be empty).
    pub kind: String,
    /// Whether it is a Helm hook (printed after the other documents).
    pub hook: bool,
}

/// Splits a rendered file into documents as Helm does.
pub fn split_documents(text: &str) -> Vec<String> {
    split_documents_with_lines(text)
        .into_iter()
        .map(|(_, document)| document)
        .collect()
}

/// Splits a rendered file into documents as Helm does, each with the 1-based line of the
/// file its text starts on (Helm splits on `---` before any YAML parser sees the text, so
/// `---# comment` separates documents too).
pub fn split_documents_with_lines(text: &str) -> Vec<(usize, String)> {
    let leading = text.len() - text.trim_start().len();
    let trimmed = text.trim();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut push = |from: usize, to: usize| {
        let piece = &trimmed[from..to];
        let content = piece.trim();
        if content.is_empty() {
            return;
        }
        let offset = leading + from + (piece.len() - piece.trim_start().len());
        let line = text[..offset].matches('\n').count() + 1;
        pieces.push((line, content.to_owned()));
    };
    for separator in SEPARATOR.find_iter(trimmed) {
        push(start, separator.start());
        start = separator.end();
    }
    push(start, trimmed.len());
    pieces
}

/// Whether a `helm.sh/hook` annotation names only events Helm knows (Helm silently drops a
/// document naming any other).
pub fn known_hook_events(events: &str) -> bool {
    events
        .split(',')
        .map(|event| event.trim().to_lowercase())
        .all(|event| HOOK_EVENTS.contains(&event.as_str()))
}

/// The documents of a render in the order `helm template` prints them.
pub fn documents(rendered: &Rendered) -> Result<Vec<Document>, HelmError> {
    let mut manifests: Vec<&crate::RenderedManifest> = rendered.manifests.iter().collect();
    manifests.sort_by(|a, b| a.template.cmp(&b.template));
    let mut out = Vec::new();
    for manifest in manifests {
        for text in split_documents(&manifest.text) {
            let head = match kyaml::from_yaml_value(&text) {
                Ok(Value::Map(map)) => Some(map),
                Ok(Value::Nil) => None,
                Ok(other) => {
                    return Err(HelmError::new(format!(
                        "YAML parse error on {}: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type releaseutil.SimpleHead",
                        manifest.template,
                        crate::funcs::json_kind(&other)
                    )));
                }
                Err(error) => {
                    return Err(HelmError::new(format!(
                        "YAML parse error on {}: {}",
                        manifest.template,
                        crate::funcs::go_yaml_error(&error)
                    )));
                }
            };
            let field = |path: &[&str]| -> Option<Value> {
                let mut current = Value::Map(head.clone()?);
                for key in path {
                    let next = match &current {
                        Value::Map(map) => map.borrow().get(*key).cloned()?,
                        _ => return None,
                    };
                    current = next;
                }
                Some(current)
            };
            let kind = field(&["kind"])
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let hook = match field(&["metadata", "annotations", "helm.sh/hook"]) {
                Some(Value::String(events)) => {
                    if !known_hook_events(&events) {
                        continue;
                    }
                    true
                }
                _ => false,
            };
            out.push(Document {
                source: manifest.template.clone(),
                text,
                kind,
                hook,
            });
        }
    }
    out.sort_by(|a, b| {
        a.hook
            .cmp(&b.hook)
            .then_with(|| install_rank(&a.kind).cmp(&install_rank(&b.kind)))
    });
    Ok(out)
}

fn install_rank(kind: &str) -> (usize, &str) {
    match INSTALL_ORDER.iter().position(|known| *known == kind) {
        Some(index) => (index, ""),
        None => (INSTALL_ORDER.len(), kind),
    }
}

/// The text `helm template` prints for a render.
pub fn template_output(rendered: &Rendered) -> Result<String, HelmError> {
    let documents = documents(rendered)?;
    let mut manifests = String::new();
    let mut hooks = String::new();
    for document in &documents {
        let target = if document.hook {
            &mut hooks
        } else {
            &mut manifests
        };
        let _ = write!(
            target,
            "---
# Source: {}
{}
",
            document.source, document.text
        );
    }
    Ok(format!("{}\n{hooks}", manifests.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_as_helm_splits_them() {
        assert_eq!(split_documents("a: 1\n---\nb: 2\n"), ["a: 1", "b: 2"]);
        assert_eq!(split_documents("---\na: 1\n---  \n\n"), ["a: 1"]);
        assert_eq!(
            split_documents("a: 1\n  ---\n"),
            ["a: 1\n  ---"],
            "an indented --- does not separate"
        );
        assert_eq!(
            split_documents("---\n\n---\nkind: Namespace"),
            ["---\nkind: Namespace"]
        );
        assert_eq!(split_documents("  \n"), Vec::<String>::new());
        assert_eq!(
            split_documents("a: 1\n---# note\nb: 2"),
            ["a: 1", "# note\nb: 2"]
        );
    }

    #[test]
    fn documents_know_their_first_line() {
        let text = "\n\n# head\na: 1\n---\n\nb: 2\n--- \nc: 3\n";
        assert_eq!(
            split_documents_with_lines(text),
            [
                (3, "# head\na: 1".to_owned()),
                (7, "b: 2".to_owned()),
                (9, "c: 3".to_owned())
            ]
        );
    }

    #[test]
    fn unknown_hook_events_are_recognized() {
        assert!(known_hook_events("pre-install, Post-Upgrade"));
        assert!(known_hook_events("test"));
        assert!(!known_hook_events("pre-install,crd-install"));
    }
}
