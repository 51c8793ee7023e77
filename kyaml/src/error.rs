//! Errors with positions, and the safety limits parsing enforces.

use std::fmt;

/// A YAML syntax or conversion error, with the 1-based position it was found at.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct YamlError {
    /// 1-based line of the problem (0 when it concerns the whole input).
    pub line: usize,
    /// 1-based column of the problem (0 when it concerns the whole input).
    pub column: usize,
    /// What went wrong, in go-yaml's words where it has them (`did not find expected key`).
    pub message: String,
}

impl YamlError {
    pub(crate) fn new(line: usize, column: usize, message: impl Into<String>) -> Self {
        YamlError {
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(formatter, "yaml: {}", self.message)
        } else {
            write!(
                formatter,
                "yaml: line {}: column {}: {}",
                self.line, self.column, self.message
            )
        }
    }
}

/// Bounds that keep hostile input from exhausting the stack, memory or time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of sequences and mappings, aliases included. Every recursive walk of a
    /// parsed tree (conversion, cloning, dropping) is bounded by this, so keep it modest.
    pub max_depth: usize,
    /// Most nodes that alias expansion may copy in one document (stops "billion laughs").
    pub max_alias_nodes: usize,
    /// Largest input accepted, in bytes.
    pub max_input_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 500,
            max_alias_nodes: 1_000_000,
            max_input_bytes: 256 << 20,
        }
    }
}
