//! Image references, parsed and normalized exactly as Docker does: no registry means
//! `docker.io`, a single path segment on docker.io gets `library/`, no tag and no digest means
//! `:latest`, and `name:tag@digest` keeps both. Invalid forms are rejected with the rule they
//! break.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::Digest;

/// The registry of references that name none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The host that serves [`DEFAULT_REGISTRY`]'s API.
pub const DEFAULT_REGISTRY_API_HOST: &str = "registry-1.docker.io";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A normalized image reference: `registry/repository[:tag][@digest]`, with at least one of tag
/// and digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a text is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{text}`: {reason}")]
pub struct ReferenceError {
    /// The text that was given.
    pub text: String,
    /// The rule it breaks.
    pub reason: String,
}

impl Reference {
    /// Parses and normalizes a reference.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let error = |reason: String| ReferenceError {
            text: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(error("it is empty".into()));
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(error(format!(
                "it contains {c:?}; references have no spaces"
            )));
        }
        let (name_tag, digest) = match text.split_once('@') {
            Some((name_tag, digest)) => (
                name_tag,
                Some(digest.parse::<Digest>().map_err(|e| error(e.to_string()))?),
            ),
            None => (text, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(error)?;
        }
        if name.is_empty() {
            return Err(error("the repository name is empty".into()));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(error(format!(
                "the repository name is longer than {MAX_NAME_LEN} characters"
            )));
        }
        let (registry, path) = split_registry(name);
        if let Some(registry) = registry {
            check_registry(registry).map_err(error)?;
        }
        check_path(path).map_err(error)?;
        if registry.is_none() && path.len() == 64 && path.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(error(
                "a 64-character hexadecimal name looks like an image ID; name a repository".into(),
            ));
        }
        let registry = match registry {
            None | Some("index.docker.io" | "registry-1.docker.io") => DEFAULT_REGISTRY,
            Some(r) => r,
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry: registry.to_owned(),
            repository,
            tag,
            digest,
        })
    }

    /// The registry host (and port), such as `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host to send API requests to (`registry-1.docker.io` for docker.io).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DEFAULT_REGISTRY_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository path, such as `library/nginx`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the digest when there is one, else the tag.
    pub fn tag_or_digest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        check_tag(tag).map_err(|reason| ReferenceError {
            text: tag.to_owned(),
            reason,
        })?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to a digest (the tag is kept for display).
    #[must_use]
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The shortest form Docker shows: `nginx:latest` for `docker.io/library/nginx:latest`.
    pub fn familiar(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    /// The shortest repository name Docker shows: `nginx` for `docker.io/library/nginx`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            self.name()
        }
    }

    fn with_suffix(&self, mut name: String) -> String {
        if let Some(tag) = &self.tag {
            name.push(':');
            name.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            name.push('@');
            name.push_str(&digest.to_string());
        }
        name
    }
}

/// Splits off the registry: the first path component is one when it has a `.` or a `:`, is
/// `localhost`, or has upper-case letters (Docker's rule).
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// True for a tag in distribution's grammar: `[\w][\w.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn check_tag(tag: &str) -> Result<(), String> {
    let valid = is_valid_tag(tag);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "tag `{tag}` is invalid: a tag has 1 to {MAX_TAG_LEN} letters, digits, `_`, `.` and `-`, and does not start with `.` or `-`"
        ))
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after))
                if !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') =>
            {
                (
                    None,
                    after
                        .strip_prefix(':')
                        .map_or_else(|| (!after.is_empty()).then_some(""), Some),
                )
            }
            _ => {
                return Err(format!(
                    "registry `{registry}` is not a valid IPv6 address in brackets"
                ));
            }
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        };
        if !host.split('.').all(component_ok) {
            return Err(format!(
                "registry `{registry}` is not a valid host name: use letters, digits and inner `-`, separated by `.`"
            ));
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("registry `{registry}` has an invalid port"));
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), String> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("repository `{path}` must be lower-case"));
    }
    for component in path.split('/') {
        if !is_valid_path_component(component) {
            return Err(format!(
                "repository path component `{component}` is invalid: use lower-case letters and digits, separated by `.`, `_`, `__` or `-`"
            ));
        }
    }
    Ok(())
}

/// True for one path component of a repository name in distribution's grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn is_valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[sep_start..i];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok || i == bytes.len() {
            return false;
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(self.name()))
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Reference::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    fn norm(text: &str) -> String {
        Reference::parse(text).unwrap().to_string()
    }

    fn reason(text: &str) -> String {
        Reference::parse(text).unwrap_err().reason
    }

    #[test]
    fn normalization() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(norm("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(norm("index.docker.io/library/x:1"), "docker.io/library/x:1");
        assert_eq!(norm("docker.io/x"), "docker.io/library/x:latest");
        assert_eq!(norm("quay.io/a/b:c"), "quay.io/a/b:c");
        assert_eq!(norm("mirror.gcr.io/bash"), "mirror.gcr.io/bash:latest");
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        assert_eq!(norm("localhost:5000/x/y:1"), "localhost:5000/x/y:1");
        assert_eq!(norm("127.0.0.1:5000/x"), "127.0.0.1:5000/x:latest");
        assert_eq!(norm("[::1]:5000/x"), "[::1]:5000/x:latest");
        assert_eq!(norm(&format!("x@{D}")), format!("docker.io/library/x@{D}"));
        assert_eq!(
            norm(&format!(
                "registry.k8s.io/ingress-nginx/controller:v1.15.1@{D}"
            )),
            format!("registry.k8s.io/ingress-nginx/controller:v1.15.1@{D}")
        );
        assert_eq!(
            norm("a__b/c-d/e.f/g--h:T_1.x-y"),
            "docker.io/a__b/c-d/e.f/g--h:T_1.x-y"
        );
    }

    #[test]
    fn parts() {
        let r = Reference::parse("localhost:5000/team/app:v1").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.api_host(), "localhost:5000");
        assert_eq!(
            Reference::parse("x").unwrap().api_host(),
            "registry-1.docker.io"
        );
        assert_eq!(Reference::parse("x").unwrap().familiar(), "x:latest");
        assert_eq!(r.familiar(), "localhost:5000/team/app:v1");
    }

    #[test]
    fn rejections_name_the_rule() {
        assert!(reason("Nginx").contains("must be lower-case"));
        assert!(reason("x:").contains("tag `` is invalid"));
        assert!(reason("x:-a").contains("does not start with"));
        assert!(reason(&format!("x:{}", "a".repeat(129))).contains("1 to 128"));
        assert!(reason("a//b").contains("component `` is invalid"));
        assert!(reason("a_-b").contains("component `a_-b`"));
        assert!(reason("-a").contains("component"));
        assert!(reason("a.").contains("component"));
        assert!(reason("").contains("empty"));
        assert!(reason("a b").contains("no spaces"));
        assert!(reason("x@sha256:abc").contains("64 lower-case hex"));
        assert!(reason("x@md5:abc").contains("only sha256"));
        assert!(reason("exa_mple.com/x").contains("not a valid host name"));
        assert!(reason("example.com:port/x").contains("invalid port"));
        assert!(reason(&"a".repeat(64)).contains("image ID"));
        assert!(reason(&"a/".repeat(130)).contains("longer than 255"));
        assert_eq!(norm("Example.COM/x"), "Example.COM/x:latest");
    }
}
