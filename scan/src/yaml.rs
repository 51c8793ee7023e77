//! Positioned YAML documents, streamed one at a time so a huge manifest never sits in memory
//! as a whole tree. Scalars are typed as go-yaml types them (a plain `true`, `12` or `null` is
//! not a string), every node keeps its line and column for provenance, and aliases and nesting
//! are bounded so an alias bomb or a deeply nested file ends in an error, not a crash.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, StrInput};

/// Bounds on what one document may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most nodes all alias expansions of one document may add together.
    pub max_alias_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 256,
            max_alias_nodes: 100_000,
        }
    }
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A null scalar (`null`, `~`, or nothing).
    Null,
    /// A string scalar.
    String(String),
    /// A scalar of another type (bool, number, or an explicitly tagged one), as written.
    Other(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

/// A YAML node with its position (line 1-based, column 0-based; line 0 when the node was not
/// read from a text, e.g. built from rendered chart values).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node's contents.
    pub kind: NodeKind,
    /// Line of the node's first character.
    pub line: usize,
    /// Column of the node's first character.
    pub column: usize,
}

impl Node {
    /// A node without a position.
    pub fn unpositioned(kind: NodeKind) -> Self {
        Node {
            kind,
            line: 0,
            column: 0,
        }
    }

    /// The string value, for string scalars.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::String(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar text of any scalar (a number's or bool's text too); `None` for collections
    /// and null.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::String(s) | NodeKind::Other(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a mapping's key whose scalar text is `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar_text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a path of mapping keys.
    pub fn get_path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    /// The string at a path of mapping keys.
    pub fn str_at(&self, keys: &[&str]) -> Option<&str> {
        self.get_path(keys).and_then(Node::as_str)
    }

    fn count(&self) -> usize {
        1 + match &self.kind {
            NodeKind::Seq(items) => items.iter().map(Node::count).sum(),
            NodeKind::Map(entries) => entries.iter().map(|(k, v)| k.count() + v.count()).sum(),
            _ => 0,
        }
    }
}

/// One document of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 0-based position in the stream.
    pub index: usize,
    /// Its root node.
    pub root: Node,
}

/// Why a text could not be read as YAML, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// The documents of a YAML (or JSON) text, one at a time; after an error it ends.
pub struct Documents<'a> {
    parser: Parser<'a, StrInput<'a>>,
    limits: Limits,
    next_index: usize,
    done: bool,
}

/// Reads the documents of `text`.
pub fn documents<'a>(text: &'a str, limits: &Limits) -> Documents<'a> {
    Documents {
        parser: Parser::new_from_str(text),
        limits: *limits,
        next_index: 0,
        done: false,
    }
}

/// A collection being built.
struct Frame {
    node: Node,
    anchor: usize,
    key: Option<Node>,
}

fn error_at(span: Span, message: impl Into<String>) -> YamlError {
    YamlError {
        line: span.start.line(),
        column: span.start.col() + 1,
        message: message.into(),
    }
}

impl Documents<'_> {
    fn next_event(&mut self) -> Result<Option<(Event<'_>, Span)>, YamlError> {
        match self.parser.next_event() {
            None => Ok(None),
            Some(Ok(event)) => Ok(Some(event)),
            Some(Err(e)) => Err(YamlError {
                line: e.marker().line(),
                column: e.marker().col() + 1,
                message: e.info().to_owned(),
            }),
        }
    }

    /// Reads events up to the end of the next document; `None` at the end of the stream.
    fn read_document(&mut self) -> Result<Option<Node>, YamlError> {
        let limits = self.limits;
        let mut anchors: HashMap<usize, Node> = HashMap::new();
        let mut alias_nodes = 0usize;
        let mut stack: Vec<Frame> = Vec::new();
        let mut root: Option<Node> = None;
        loop {
            let Some((event, span)) = self.next_event()? else {
                return Ok(None);
            };
            let position = |kind| Node {
                kind,
                line: span.start.line(),
                column: span.start.col(),
            };
            let complete = match event {
                Event::StreamEnd => return Ok(None),
                Event::DocumentEnd => {
                    return Ok(Some(root.unwrap_or_else(|| position(NodeKind::Null))));
                }
                Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => continue,
                Event::Scalar(text, style, anchor, tag) => {
                    let explicit = tag.as_ref().map(|t| t.suffix.as_str());
                    let node = position(scalar_kind(&text, style, explicit));
                    if anchor > 0 {
                        anchors.insert(anchor, node.clone());
                    }
                    node
                }
                Event::Alias(id) => {
                    let Some(target) = anchors.get(&id) else {
                        return Err(error_at(span, "alias to an unknown anchor"));
                    };
                    alias_nodes += target.count();
                    if alias_nodes > limits.max_alias_nodes {
                        return Err(error_at(
                            span,
                            format!(
                                "aliases expand to more than {} nodes (an alias bomb?)",
                                limits.max_alias_nodes
                            ),
                        ));
                    }
                    Node {
                        line: span.start.line(),
                        column: span.start.col(),
                        ..target.clone()
                    }
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    if stack.len() >= limits.max_depth {
                        return Err(error_at(
                            span,
                            format!("nesting deeper than {} levels", limits.max_depth),
                        ));
                    }
                    let kind = if matches!(event, Event::SequenceStart(..)) {
                        NodeKind::Seq(Vec::new())
                    } else {
                        NodeKind::Map(Vec::new())
                    };
                    stack.push(Frame {
                        node: position(kind),
                        anchor,
                        key: None,
                    });
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let Some(frame) = stack.pop() else {
                        return Err(error_at(span, "unbalanced collection end"));
                    };
                    if frame.anchor > 0 {
                        anchors.insert(frame.anchor, frame.node.clone());
                    }
                    frame.node
                }
            };
            match stack.last_mut() {
                None => root = Some(complete),
                Some(frame) => match &mut frame.node.kind {
                    NodeKind::Seq(items) => items.push(complete),
                    NodeKind::Map(entries) => match frame.key.take() {
                        None => frame.key = Some(complete),
                        Some(key) => entries.push((key, complete)),
                    },
                    _ => {}
                },
            }
        }
    }
}

impl Iterator for Documents<'_> {
    type Item = Result<Document, YamlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_document() {
            Ok(Some(root)) => {
                let index = self.next_index;
                self.next_index += 1;
                Some(Ok(Document { index, root }))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Types a scalar as go-yaml (YAML 1.1 booleans included, as Kubernetes reads YAML) does.
fn scalar_kind(text: &str, style: ScalarStyle, tag: Option<&str>) -> NodeKind {
    match tag {
        Some("str") => return NodeKind::String(text.to_owned()),
        Some("null") => return NodeKind::Null,
        Some(_) => return NodeKind::Other(text.to_owned()),
        None => {}
    }
    if style != ScalarStyle::Plain {
        return NodeKind::String(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => NodeKind::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "n" | "N" | "no" | "No" | "NO" | "true" | "True"
        | "TRUE" | "false" | "False" | "FALSE" | "on" | "On" | "ON" | "off" | "Off" | "OFF" => {
            NodeKind::Other(text.to_owned())
        }
        _ if is_number(text) => NodeKind::Other(text.to_owned()),
        _ => NodeKind::String(text.to_owned()),
    }
}

fn is_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let digits: String = unsigned.chars().filter(|&c| c != '_').collect();
    if let Some(hex) = digits.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(octal) = digits.strip_prefix("0o") {
        return !octal.is_empty() && octal.chars().all(|c| c.is_digit(8));
    }
    digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && digits.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Result<Document, YamlError>> {
        documents(text, &Limits::default()).collect()
    }

    #[test]
    fn types_scalars_like_go_yaml() {
        let docs =
            parse("a: 1\nb: '1'\nc: yes\nd: x\ne:\nf: !!str 2\ng: 1.5e3\nh: 0x1f\ni: 1.2.3\n");
        let root = &docs[0].as_ref().unwrap().root;
        assert_eq!(root.get("a").unwrap().kind, NodeKind::Other("1".into()));
        assert_eq!(root.str_at(&["b"]), Some("1"));
        assert_eq!(root.get("c").unwrap().kind, NodeKind::Other("yes".into()));
        assert_eq!(root.str_at(&["d"]), Some("x"));
        assert_eq!(root.get("e").unwrap().kind, NodeKind::Null);
        assert_eq!(root.str_at(&["f"]), Some("2"));
        assert!(matches!(root.get("g").unwrap().kind, NodeKind::Other(_)));
        assert!(matches!(root.get("h").unwrap().kind, NodeKind::Other(_)));
        assert_eq!(root.str_at(&["i"]), Some("1.2.3"));
    }

    #[test]
    fn positions_and_documents() {
        let docs = parse("# c\na: 1\n---\nb:\n  c: [x, y]\n");
        assert_eq!(docs.len(), 2);
        let second = docs[1].as_ref().unwrap();
        assert_eq!(second.index, 1);
        let c = second.root.get_path(&["b", "c"]).unwrap();
        assert_eq!((c.line, c.column), (5, 5));
    }

    #[test]
    fn aliases_expand_within_bounds() {
        let docs = parse("a: &x {k: v}\nb: *x\n");
        let root = &docs[0].as_ref().unwrap().root;
        assert_eq!(root.str_at(&["b", "k"]), Some("v"));
        assert_eq!(root.get("b").unwrap().line, 2);
    }

    #[test]
    fn errors_carry_positions() {
        let docs = parse("a: 1\n---\nb: [1, 2\nc: d\n");
        assert!(docs[0].is_ok());
        let error = docs[1].as_ref().unwrap_err();
        assert!(error.line >= 3, "{error}");
        assert_eq!(docs.len(), 2);
    }
}
