//! What can go wrong reading a Clusterfile or applying its documents.

use std::fmt;
use std::path::PathBuf;

/// Where in which document a problem is: the file, the 1-based line and column, the
/// document's 1-based index and kind, and the field's path (`spec.hosts[1].ips[0]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file read (the Clusterfile, or a plugin file of an image).
    pub source: PathBuf,
    /// 1-based line (0 when the problem concerns the whole file).
    pub line: usize,
    /// 1-based column (0 when the problem concerns the whole file).
    pub column: usize,
    /// The document's 1-based index in the file and its `kind`; `None` for YAML syntax errors.
    pub document: Option<(usize, String)>,
    /// The field's path in the document; empty for the document itself.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.source.display())?;
        if self.line > 0 {
            write!(formatter, ":{}:{}", self.line, self.column)?;
        }
        if let Some((index, kind)) = &self.document {
            write!(formatter, ": document {index} ({kind})")?;
        }
        if !self.field.is_empty() {
            write!(formatter, ": {}", self.field)?;
        }
        write!(formatter, ": {}", self.message)
    }
}

/// Every problem found in a file, in the order of the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(formatter)?;
            }
            write!(formatter, "{problem}")?;
        }
        Ok(())
    }
}

/// Errors of the [`clusterfile`](crate::clusterfile) module.
#[derive(Debug, thiserror::Error)]
pub enum ClusterfileError {
    /// The text is not a valid Clusterfile (or plugin file); every problem found, one per line.
    #[error("{0}")]
    Invalid(Problems),
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A Config document could not be written into the rootfs.
    #[error("{location}: Config {name:?}: cannot write {}: {message}", path.display())]
    ConfigWrite {
        /// The Config document's `file:line:column`.
        location: String,
        /// The Config's `metadata.name`.
        name: String,
        /// The file it writes.
        path: PathBuf,
        /// What went wrong and what to do.
        message: String,
    },
    /// The image's env holds a value sealer computes from (e.g. an unparsable `SvcCIDR`).
    #[error("the image's env {key}={value:?}: {message}")]
    ImageEnv {
        /// The env key.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// The launch settings name an app the image does not have.
    #[error(
        "{location}: app {app:?} is not in the image (its apps: {known}); fix the name or drop it"
    )]
    UnknownApp {
        /// Where the name was given (`file:line:column`).
        location: String,
        /// The unknown name.
        app: String,
        /// The image's app names, comma separated.
        known: String,
    },
}

impl ClusterfileError {
    /// The problems when the text was invalid; empty for other errors.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ClusterfileError::Invalid(problems) => &problems.0,
            _ => &[],
        }
    }
}
