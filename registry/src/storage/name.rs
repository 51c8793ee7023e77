//! Repository names, tags and upload ids, validated before any path is built from them.

use std::fmt;

use image::reference::is_valid_path_component;
pub use image::reference::is_valid_tag;

/// Distribution's limit on the length of a repository name.
pub const MAX_NAME_LEN: usize = 255;

/// A repository name in distribution's grammar: path components
/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*` joined by `/`, at most 255 characters. Such a
/// name has no empty, `.` or `..` component and no leading `/`, so it is safe to join to the
/// storage's repositories directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepositoryName(String);

/// Why a text is not a repository name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid repository name `{name}`: {reason}")]
pub struct NameError {
    /// The text given.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl RepositoryName {
    /// Checks `text` against distribution's grammar.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let error = |reason| NameError {
            name: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(error("the name is empty"));
        }
        if text.len() > MAX_NAME_LEN {
            return Err(error("the name is longer than 255 characters"));
        }
        for component in text.split('/') {
            if component.is_empty() {
                return Err(error("a path component is empty"));
            }
            if !is_valid_path_component(component) {
                return Err(error(
                    "a path component has characters other than a-z, 0-9 and the separators `.`, `_`, `__` or dashes between them",
                ));
            }
        }
        Ok(RepositoryName(text.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True for an upload id as this registry makes them: a UUID in its 36-character text form
/// (lower-case hex and dashes), so it is safe as a directory name.
pub fn is_valid_upload_id(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_distribution_names() {
        for name in [
            "a",
            "library/nginx",
            "docker.io/library/nginx",
            "localhost_5000/team/app",
            "a__b",
            "a---b",
            "a.b_c-d",
            "0/1/2",
        ] {
            assert!(RepositoryName::parse(name).is_ok(), "{name}");
        }
        let longest = ["a"; 128].join("/");
        assert_eq!(longest.len(), 255);
        assert!(RepositoryName::parse(&longest).is_ok());
    }

    #[test]
    fn rejects_traversal_and_bad_grammar() {
        for name in [
            "",
            "..",
            ".",
            "../x",
            "a/../b",
            "a/./b",
            "/a",
            "a/",
            "a//b",
            "A",
            "a..b",
            "a___b",
            "a_.b",
            "-a",
            "a-",
            "_a",
            "%2e%2e",
            "a b",
            "a\\b",
            "_uploads",
            "a/_manifests",
        ] {
            assert!(RepositoryName::parse(name).is_err(), "{name:?}");
        }
        let too_long = ["a"; 129].join("/");
        let error = RepositoryName::parse(&too_long).unwrap_err();
        assert!(error.to_string().contains("255"), "{error}");
    }

    #[test]
    fn tags_follow_the_grammar() {
        assert!(is_valid_tag("v1.2-rc_3"));
        assert!(is_valid_tag("_x"));
        assert!(is_valid_tag(&"a".repeat(128)));
        assert!(!is_valid_tag(&"a".repeat(129)));
        for tag in ["", ".x", "-x", "a/b", "..", "a:b", "sha256:00"] {
            assert!(!is_valid_tag(tag), "{tag}");
        }
    }

    #[test]
    fn upload_ids_are_uuids() {
        assert!(is_valid_upload_id("3f448d72-458a-4c44-9275-a272e4cfdc2c"));
        assert!(!is_valid_upload_id("3f448d72-458a-4c44-9275-a272e4cfdc2"));
        assert!(!is_valid_upload_id("../../../../../../../../../../../x"));
        assert!(!is_valid_upload_id("3F448D72-458A-4C44-9275-A272E4CFDC2C"));
    }
}
