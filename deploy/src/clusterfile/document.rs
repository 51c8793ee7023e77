//! Splitting a YAML stream into documents with their kind, and reading typed fields with
//! their positions so that every problem names its line, column, document and field.

use std::fmt;
use std::path::{Path, PathBuf};

use kyaml::{Limits, Node, NodeKind};

use super::error::Problem;

/// A position in a file, printed `file:line:column`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub source: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}:{}:{}",
            self.source.display(),
            self.line,
            self.column
        )
    }
}

/// One document of the stream: its 1-based index, `kind`, `apiVersion` and content.
pub(crate) struct RawDocument {
    pub index: usize,
    pub kind: String,
    pub api_version: String,
    pub root: Node,
}

/// The documents of `text`; syntax errors and documents without a mapping root become
/// problems, documents without a `kind` warnings (they are skipped, as sealer skips them).
pub(crate) fn split_documents(
    text: &str,
    source: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Vec<RawDocument> {
    let (documents, errors) = kyaml::parse_documents_lenient(text, &Limits::default());
    for error in errors {
        problems.push(Problem {
            source: source.to_path_buf(),
            line: error.line,
            column: error.column,
            document: None,
            field: String::new(),
            message: format!("{}: fix the YAML syntax", error.message),
        });
    }
    let mut raw = Vec::new();
    for (position, document) in documents.into_iter().enumerate() {
        let index = position + 1;
        let root = document.root;
        let at = |field: &str, message: String| Problem {
            source: source.to_path_buf(),
            line: root.line,
            column: root.column,
            document: Some((index, String::new())),
            field: field.to_owned(),
            message,
        };
        if !matches!(root.kind, NodeKind::Mapping(_)) {
            problems.push(at(
                "",
                "a document must be a mapping with apiVersion, kind, metadata and spec".to_owned(),
            ));
            continue;
        }
        let kind = root.get("kind").and_then(Node::scalar_text).unwrap_or("");
        if kind.is_empty() {
            warnings.push(at("kind", "the document has no kind: ignored".to_owned()));
            continue;
        }
        let api_version = root
            .get("apiVersion")
            .and_then(Node::scalar_text)
            .unwrap_or("")
            .to_owned();
        raw.push(RawDocument {
            index,
            kind: kind.to_owned(),
            api_version,
            root,
        });
    }
    raw
}

/// `path.key`, or `key` at the top.
pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[index]`.
pub(crate) fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The value of `key` in a mapping, matching the key as written: YAML 1.1 reads a plain
/// `on:` key as the boolean true, yet the older plugins' field is called `on`.
pub(crate) fn get_as_written<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.kind {
        NodeKind::Mapping(pairs) => pairs
            .iter()
            .find(|(name, _)| name.scalar_text() == Some(key))
            .map(|(_, value)| value),
        _ => None,
    }
}

/// Reads the fields of one document, collecting problems and warnings with positions.
pub(crate) struct Reader<'a> {
    pub source: &'a Path,
    pub index: usize,
    pub kind: &'a str,
    pub problems: &'a mut Vec<Problem>,
    pub warnings: &'a mut Vec<Problem>,
}

impl<'a> Reader<'a> {
    /// A reader of `document` of the file `source`, adding to `problems` and `warnings`.
    pub fn new(
        source: &'a Path,
        document: &'a RawDocument,
        problems: &'a mut Vec<Problem>,
        warnings: &'a mut Vec<Problem>,
    ) -> Self {
        Reader {
            source,
            index: document.index,
            kind: &document.kind,
            problems,
            warnings,
        }
    }

    fn make(&self, node: &Node, field: &str, message: String) -> Problem {
        Problem {
            source: self.source.to_path_buf(),
            line: node.line,
            column: node.column,
            document: Some((self.index, self.kind.to_owned())),
            field: field.to_owned(),
            message,
        }
    }

    /// Records a problem at `node`.
    pub fn problem(&mut self, node: &Node, field: &str, message: impl Into<String>) {
        let problem = self.make(node, field, message.into());
        self.problems.push(problem);
    }

    /// Records a warning at `node`.
    pub fn warning(&mut self, node: &Node, field: &str, message: impl Into<String>) {
        let warning = self.make(node, field, message.into());
        self.warnings.push(warning);
    }

    /// The position of `node`.
    pub fn location(&self, node: &Node) -> Location {
        Location {
            source: self.source.to_path_buf(),
            line: node.line,
            column: node.column,
        }
    }

    /// A scalar field as text (numbers and booleans as written); `None` when absent, null or
    /// empty. Lists and mappings are problems.
    pub fn string(&mut self, node: Option<&Node>, field: &str) -> Option<String> {
        let node = node?;
        match &node.kind {
            NodeKind::Null => None,
            NodeKind::Sequence(_) | NodeKind::Mapping(_) => {
                let found = node.describe();
                self.problem(node, field, format!("expected a string, found {found}"));
                None
            }
            _ => node
                .scalar_text()
                .filter(|text| !text.is_empty())
                .map(str::to_owned),
        }
    }

    /// A required scalar field; a problem when absent or empty.
    pub fn required_string(
        &mut self,
        parent: &Node,
        key: &str,
        path: &str,
        what_to_do: &str,
    ) -> Option<String> {
        let field = child(path, key);
        let node = parent.get(key);
        let value = self.string(node, &field);
        if value.is_none() {
            match node {
                None => self.problem(parent, &field, format!("missing: {what_to_do}")),
                Some(node)
                    if !matches!(node.kind, NodeKind::Sequence(_) | NodeKind::Mapping(_)) =>
                {
                    self.problem(node, &field, format!("empty: {what_to_do}"));
                }
                Some(_) => {}
            }
        }
        value
    }

    /// A list of scalars with each item's node; `None` when absent or null. A scalar where
    /// a list belongs, or an empty or collection item, is a problem.
    pub fn strings<'n>(
        &mut self,
        node: Option<&'n Node>,
        field: &str,
    ) -> Option<Vec<(String, &'n Node)>> {
        let node = node?;
        match &node.kind {
            NodeKind::Null => None,
            NodeKind::Sequence(items) => {
                let mut values = Vec::new();
                for (index, entry) in items.iter().enumerate() {
                    let path = item(field, index);
                    match self.string(Some(entry), &path) {
                        Some(text) => values.push((text, entry)),
                        None if matches!(entry.kind, NodeKind::Null | NodeKind::String(_)) => {
                            self.problem(entry, &path, "empty item: remove it or give a value");
                        }
                        None => {}
                    }
                }
                Some(values)
            }
            _ => {
                let found = node.describe();
                self.problem(
                    node,
                    field,
                    format!("expected a list, found {found}: write it as [ ... ] or - items"),
                );
                None
            }
        }
    }

    /// A list of scalars, empty when absent; see [`Reader::strings`].
    pub fn string_list<'n>(
        &mut self,
        node: Option<&'n Node>,
        field: &str,
    ) -> Vec<(String, &'n Node)> {
        self.strings(node, field).unwrap_or_default()
    }

    /// A mapping's pairs; empty when absent or null, a problem for anything else.
    pub fn mapping<'n>(&mut self, node: Option<&'n Node>, field: &str) -> &'n [(Node, Node)] {
        let Some(node) = node else { return &[] };
        match &node.kind {
            NodeKind::Mapping(pairs) => pairs,
            NodeKind::Null => &[],
            _ => {
                let found = node.describe();
                self.problem(node, field, format!("expected a mapping, found {found}"));
                &[]
            }
        }
    }

    /// A list's items; empty when absent or null, a problem for anything else.
    pub fn sequence<'n>(&mut self, node: Option<&'n Node>, field: &str) -> &'n [Node] {
        let Some(node) = node else { return &[] };
        match &node.kind {
            NodeKind::Sequence(items) => items,
            NodeKind::Null => &[],
            _ => {
                let found = node.describe();
                self.problem(node, field, format!("expected a list, found {found}"));
                &[]
            }
        }
    }

    /// A boolean field (`true`/`false`, or the strings `"true"`/`"false"`).
    pub fn boolean(&mut self, node: Option<&Node>, field: &str) -> Option<bool> {
        let node = node?;
        match &node.kind {
            NodeKind::Null => None,
            NodeKind::Bool(value) => Some(*value),
            NodeKind::String(text) if text == "true" => Some(true),
            NodeKind::String(text) if text == "false" => Some(false),
            _ => {
                let found = node.describe();
                self.problem(
                    node,
                    field,
                    format!("expected true or false, found {found}"),
                );
                None
            }
        }
    }

    /// A TCP port, written as a number or a string (sealer writes `port: "22"`).
    pub fn port(&mut self, node: Option<&Node>, field: &str) -> Option<u16> {
        let node = node?;
        if matches!(node.kind, NodeKind::Null) {
            return None;
        }
        let text = self.string(Some(node), field)?;
        match text.trim().parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => {
                self.problem(
                    node,
                    field,
                    format!("{text:?} is not a port number: give a number from 1 to 65535"),
                );
                None
            }
        }
    }

    /// Warns about keys of `node` that are not in `known` (they are ignored, as sealer does,
    /// but a typo should not pass unseen).
    pub fn check_keys(&mut self, node: &Node, path: &str, known: &[&str]) {
        let NodeKind::Mapping(pairs) = &node.kind else {
            return;
        };
        for (key, _) in pairs {
            let name = key
                .scalar_text()
                .map(str::to_owned)
                .or_else(|| key.key_string())
                .unwrap_or_default();
            if !known.contains(&name.as_str()) {
                self.warning(
                    key,
                    &child(path, &name),
                    format!("unknown field: ignored (known: {})", known.join(", ")),
                );
            }
        }
    }
}
