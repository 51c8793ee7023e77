//! Source ops: registry images, client-side (session) directories and HTTP files, with the
//! attrs, caps and platform presence of Go's `client/llb/source.go`.

use std::collections::BTreeMap;

use crate::graph::{OpMetadata, Vertex};
use crate::pb;

/// How the daemon resolves an image reference (`image.resolvemode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResolveMode {
    /// The daemon's default; no attr is written.
    #[default]
    Default,
    /// Always ask the registry (`pull`).
    ForcePull,
    /// Use a local image if there is one (`local`).
    PreferLocal,
}

impl ResolveMode {
    /// The attr value, or `None` for [`ResolveMode::Default`] (Go omits the attr then).
    pub fn attr(self) -> Option<&'static str> {
        match self {
            ResolveMode::Default => None,
            ResolveMode::ForcePull => Some("pull"),
            ResolveMode::PreferLocal => Some("local"),
        }
    }
}

/// A `docker-image://` source. `reference` must already be normalized
/// (`docker.io/library/busybox:latest`, optionally `@sha256:…`). Image ops carry a platform.
pub fn image(reference: &str, platform: &pb::Platform, resolve_mode: ResolveMode) -> Vertex {
    let mut attrs = BTreeMap::new();
    let mut caps = vec!["source.image"];
    if let Some(mode) = resolve_mode.attr() {
        attrs.insert("image.resolvemode".to_owned(), mode.to_owned());
        // Go only requires the cap for the security-relevant forced pull.
        if resolve_mode == ResolveMode::ForcePull {
            caps.push("source.image.resolvemode");
        }
    }
    source_vertex(
        format!("docker-image://{reference}"),
        attrs,
        Some(platform.clone()),
        caps,
    )
}

/// Options of a `local://` source (a directory the client sends over its session).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalOpts {
    /// The client's session id (`BUILDKIT_SESSION_ID`); empty leaves the attr out.
    pub session: String,
    /// Only these paths (and their parents) are sent.
    pub follow_paths: Vec<String>,
    /// Include patterns applied by the client.
    pub include: Vec<String>,
    /// Exclude patterns (`.dockerignore` syntax) applied by the client.
    pub exclude: Vec<String>,
    /// Lets transfers of the same directory share a cache (`context`, `dockerfile`).
    pub shared_key_hint: String,
}

/// A `local://name` source. Local sources carry no platform.
pub fn local(name: &str, opts: &LocalOpts) -> Vertex {
    let mut attrs = BTreeMap::new();
    let mut caps = vec!["source.local"];
    if !opts.session.is_empty() {
        attrs.insert("local.session".to_owned(), opts.session.clone());
        caps.push("source.local.sessionid");
    }
    if !opts.include.is_empty() {
        attrs.insert(
            "local.includepattern".to_owned(),
            go_json_strings(&opts.include),
        );
        caps.push("source.local.includepatterns");
    }
    if !opts.follow_paths.is_empty() {
        attrs.insert(
            "local.followpaths".to_owned(),
            go_json_strings(&opts.follow_paths),
        );
        caps.push("source.local.followpaths");
    }
    if !opts.exclude.is_empty() {
        attrs.insert(
            "local.excludepatterns".to_owned(),
            go_json_strings(&opts.exclude),
        );
        caps.push("source.local.excludepatterns");
    }
    if !opts.shared_key_hint.is_empty() {
        attrs.insert(
            "local.sharedkeyhint".to_owned(),
            opts.shared_key_hint.clone(),
        );
        caps.push("source.local.sharedkeyhint");
    }
    source_vertex(format!("local://{name}"), attrs, None, caps)
}

/// An `http://` or `https://` file source. `checksum` is a `sha256:<hex>` digest the
/// download must match; `filename` names the file in the resulting state. HTTP sources
/// carry no platform.
pub fn http(url: &str, checksum: Option<&str>, filename: Option<&str>) -> Vertex {
    let mut attrs = BTreeMap::new();
    let mut caps = vec!["source.http"];
    if let Some(checksum) = checksum {
        attrs.insert("http.checksum".to_owned(), checksum.to_owned());
        caps.push("source.http.checksum");
    }
    if let Some(filename) = filename {
        attrs.insert("http.filename".to_owned(), filename.to_owned());
    }
    source_vertex(url.to_owned(), attrs, None, caps)
}

fn source_vertex(
    identifier: String,
    attrs: BTreeMap<String, String>,
    platform: Option<pb::Platform>,
    caps: Vec<&str>,
) -> Vertex {
    Vertex {
        op: pb::Op {
            inputs: Vec::new(),
            platform,
            // Go's LLB always marshals empty constraints (bytes `5a 00`).
            constraints: Some(pb::WorkerConstraints::default()),
            op: Some(pb::op::Op::Source(pb::SourceOp { identifier, attrs })),
        },
        metadata: OpMetadata::with_caps(caps),
    }
}

/// A JSON array of strings as Go's `encoding/json` writes it: compact, with `<`, `>`, `&`,
/// U+2028 and U+2029 escaped (they can only occur inside the strings).
fn go_json_strings(values: &[String]) -> String {
    let mut out = String::from("[");
    for (position, value) in values.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        let quoted = serde_json::Value::String(value.clone()).to_string();
        for character in quoted.chars() {
            match character {
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                other => out.push(other),
            }
        }
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Graph;
    use crate::test_support::amd64;

    fn source_of(vertex: &Vertex) -> &pb::SourceOp {
        match &vertex.op.op {
            Some(pb::op::Op::Source(source)) => source,
            other => panic!("expected a source op, got {other:?}"),
        }
    }

    fn caps_of(vertex: &Vertex) -> Vec<&str> {
        vertex.metadata.caps.iter().map(String::as_str).collect()
    }

    #[test]
    fn local_reproduces_the_go_dockerfile_source() {
        let vertex = local(
            "dockerfile",
            &LocalOpts {
                session: "ses29158".to_owned(),
                follow_paths: vec!["Kubefile".to_owned(), "Kubefile.dockerignore".to_owned()],
                shared_key_hint: "dockerfile".to_owned(),
                ..LocalOpts::default()
            },
        );
        let output = Graph::new().add_vertex(vertex.clone());
        assert_eq!(
            output.digest,
            "sha256:8783114a2e420ba58159d4fe03ae58b1f722a758842f65fb4cab108b3dcece57"
        );
        assert_eq!(
            caps_of(&vertex),
            [
                "source.local",
                "source.local.followpaths",
                "source.local.sessionid",
                "source.local.sharedkeyhint"
            ]
        );
        assert_eq!(vertex.op.platform, None);
        assert_eq!(
            vertex.op.constraints,
            Some(pb::WorkerConstraints::default())
        );
    }

    #[test]
    fn local_patterns_are_go_json_and_empty_options_are_left_out() {
        let vertex = local(
            "context",
            &LocalOpts {
                include: vec!["a/**".to_owned()],
                exclude: vec!["*.secret".to_owned(), "<x>&\"y\"".to_owned()],
                ..LocalOpts::default()
            },
        );
        let source = source_of(&vertex);
        assert_eq!(source.identifier, "local://context");
        assert_eq!(
            source
                .attrs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            [
                (
                    "local.excludepatterns",
                    r#"["*.secret","\u003cx\u003e\u0026\"y\""]"#
                ),
                ("local.includepattern", r#"["a/**"]"#),
            ]
        );
        assert_eq!(
            caps_of(&vertex),
            [
                "source.local",
                "source.local.excludepatterns",
                "source.local.includepatterns"
            ]
        );
    }

    #[test]
    fn image_carries_its_platform_and_resolve_mode() {
        let reference = "docker.io/library/busybox:latest";
        let plain = image(reference, &amd64(), ResolveMode::Default);
        assert_eq!(
            source_of(&plain).identifier,
            "docker-image://docker.io/library/busybox:latest"
        );
        assert!(source_of(&plain).attrs.is_empty());
        assert_eq!(plain.op.platform, Some(amd64()));
        assert_eq!(caps_of(&plain), ["source.image"]);

        let local_first = image(reference, &amd64(), ResolveMode::PreferLocal);
        assert_eq!(source_of(&local_first).attrs["image.resolvemode"], "local");
        assert_eq!(caps_of(&local_first), ["source.image"]);

        let pulled = image(reference, &amd64(), ResolveMode::ForcePull);
        assert_eq!(source_of(&pulled).attrs["image.resolvemode"], "pull");
        assert_eq!(
            caps_of(&pulled),
            ["source.image", "source.image.resolvemode"]
        );
    }

    #[test]
    fn http_has_no_platform_and_optional_attrs() {
        let bare = http("https://example.invalid/a.tgz", None, None);
        assert_eq!(source_of(&bare).identifier, "https://example.invalid/a.tgz");
        assert!(source_of(&bare).attrs.is_empty());
        assert_eq!(bare.op.platform, None);
        assert_eq!(caps_of(&bare), ["source.http"]);

        let checked = http(
            "https://example.invalid/a.tgz",
            Some("sha256:ab"),
            Some("a.tgz"),
        );
        let attrs = &source_of(&checked).attrs;
        assert_eq!(attrs["http.checksum"], "sha256:ab");
        assert_eq!(attrs["http.filename"], "a.tgz");
        assert_eq!(caps_of(&checked), ["source.http", "source.http.checksum"]);
    }
}
