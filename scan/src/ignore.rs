//! Ignore lists (`--ignored-image-list` files and the context's `.sealerignore`): one
//! reference per line, `#` comments. Entries are normalized before matching, so `nginx`
//! ignores `docker.io/library/nginx:latest`; an entry with `*` is a wildcard (any run of
//! characters) matched against the normalized text, with `docker.io/` (and `library/`)
//! put in front when the entry names no registry.

use crate::candidate;
use crate::report::{Collector, IgnoredImage, ScanReport, WarningKind};
use crate::sources::image_list;

/// One ignore entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// As written.
    pattern: String,
    /// Normalized reference, or the wildcard pattern to match the normalized text with.
    matcher: String,
    wildcard: bool,
    /// `file:line`.
    origin: String,
}

/// The entries of every ignore list read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreList {
    rules: Vec<Rule>,
}

impl IgnoreList {
    /// An empty list.
    pub fn new() -> Self {
        IgnoreList::default()
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Adds the entries of a list text; `name` is the file named in origins and warnings.
    pub fn add_text(&mut self, name: &str, text: &str, out: &mut Collector) {
        for (line, entry) in image_list::entries(text) {
            let origin = format!("{name}:{line}");
            if entry.contains('*') {
                self.rules.push(Rule {
                    pattern: entry.to_owned(),
                    matcher: qualify_wildcard(entry),
                    wildcard: true,
                    origin,
                });
                continue;
            }
            match candidate::check(entry) {
                Ok(reference) => self.rules.push(Rule {
                    pattern: entry.to_owned(),
                    matcher: reference.to_string(),
                    wildcard: false,
                    origin,
                }),
                Err(rejection) => out.warn(
                    WarningKind::IgnoreList,
                    name,
                    Some(line),
                    format!("ignored entry `{entry}`: {}", rejection.message()),
                ),
            }
        }
    }

    /// Removes the images an entry matches from `report`, recording each in `ignored`.
    pub fn apply(&self, report: &mut ScanReport) {
        if self.rules.is_empty() {
            return;
        }
        let mut kept = Vec::with_capacity(report.images.len());
        for image in std::mem::take(&mut report.images) {
            let text = image.reference.to_string();
            let rule = self.rules.iter().find(|rule| {
                if rule.wildcard {
                    wildcard_match(&rule.matcher, &text)
                } else {
                    rule.matcher == text
                }
            });
            match rule {
                Some(rule) => report.ignored.push(IgnoredImage {
                    reference: image.reference,
                    pattern: rule.pattern.clone(),
                    origin: rule.origin.clone(),
                }),
                None => kept.push(image),
            }
        }
        report.images = kept;
    }
}

/// Puts Docker's default registry (and `library/`) in front of a wildcard entry that names
/// no registry.
fn qualify_wildcard(entry: &str) -> String {
    let first = entry.split('/').next().unwrap_or_default();
    let has_registry =
        entry.contains('/') && (first.contains(['.', ':']) || first == "localhost" || first == "*");
    if has_registry {
        entry.to_owned()
    } else if entry.contains('/') {
        format!("docker.io/{entry}")
    } else {
        format!("docker.io/library/{entry}")
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match(
            "docker.io/library/nginx:*",
            "docker.io/library/nginx:1.2"
        ));
        assert!(!wildcard_match(
            "docker.io/library/nginx:*",
            "docker.io/library/nginx2:1"
        ));
        assert!(wildcard_match("quay.io/*/x:*", "quay.io/a/b/x:1"));
        assert!(wildcard_match("*", "anything"));
        assert!(!wildcard_match("a*b", "ab-c"));
        assert_eq!(qualify_wildcard("nginx:*"), "docker.io/library/nginx:*");
        assert_eq!(qualify_wildcard("bitnami/*"), "docker.io/bitnami/*");
        assert_eq!(qualify_wildcard("quay.io/*"), "quay.io/*");
        assert_eq!(qualify_wildcard("*/x:1"), "*/x:1");
    }
}
