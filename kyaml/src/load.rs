//! Builds positioned node trees from `saphyr-parser` events, with go-yaml v2's typing,
//! alias and merge-key expansion, and the [`Limits`] enforced.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use gotemplate::Value;
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, StrInput, Tag};

use crate::node::{Document, Node, NodeKind};
use crate::scalar::{Resolved, resolve_plain};
use crate::{Limits, YamlError};

/// Parses every document of a YAML stream. Empty documents (nothing but `---` or comments)
/// are skipped, as `kubectl` and Helm do. The first error ends parsing.
pub fn parse_documents(text: &str, limits: &Limits) -> Result<Vec<Document>, YamlError> {
    documents(text, limits).collect()
}

/// Parses every document it can: after an error, parsing resumes at the next line that starts
/// a document (`---`), so one bad document does not hide the others. Returns the documents
/// parsed and the errors met, in order.
pub fn parse_documents_lenient(text: &str, limits: &Limits) -> (Vec<Document>, Vec<YamlError>) {
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for item in documents(text, limits) {
        match item {
            Ok(document) => parsed.push(document),
            Err(error) => errors.push(error),
        }
    }
    (parsed, errors)
}

/// Reads the documents of a YAML stream one at a time, so that only the document being read
/// is held as a tree. Empty documents are skipped (see [`Documents::keep_empty`]).
///
/// The reading is lenient, as [`parse_documents_lenient`]'s: an error is yielded, then
/// reading resumes at the next line that starts a document (`---`). Input larger than
/// [`Limits::max_input_bytes`] yields that one error.
pub fn documents<'a>(text: &'a str, limits: &Limits) -> Documents<'a> {
    Documents {
        text,
        limits: *limits,
        keep_empty: false,
        state: State::Start,
    }
}

/// The documents of a YAML stream, read one at a time: see [`documents`].
pub struct Documents<'a> {
    text: &'a str,
    limits: Limits,
    keep_empty: bool,
    state: State<'a>,
}

enum State<'a> {
    /// Nothing read yet (the input's size is still to be checked).
    Start,
    /// Reading the text from one line on: the start, or a `---` line after an error.
    Reading {
        loader: Box<Loader<'a>>,
        /// Byte offset of the part read in the whole text.
        offset: usize,
        /// 0-based line the part starts on.
        first_line: usize,
    },
    /// An error ended the part that started at `offset` and `first_line`.
    Failed {
        offset: usize,
        first_line: usize,
        /// 1-based line of the error.
        error_line: usize,
    },
    Done,
}

impl<'a> Documents<'a> {
    /// Also yields empty documents (nothing but `---` or comments), with a null root, so that
    /// every document of the stream is counted.
    #[must_use]
    pub fn keep_empty(mut self) -> Self {
        self.keep_empty = true;
        self
    }

    fn read_from(&self, offset: usize, first_line: usize) -> State<'a> {
        let mut loader = Box::new(Loader::new(&self.text[offset..], first_line, self.limits));
        loader.keep_empty = self.keep_empty;
        State::Reading {
            loader,
            offset,
            first_line,
        }
    }

    /// Resumes at the first `---` line on or after the line of an error (and after the first
    /// line of the part that failed); done when there is none.
    fn resume(&self, mut offset: usize, first_line: usize, error_line: usize) -> State<'a> {
        let resume_from = error_line.saturating_sub(1).max(first_line + 1);
        for _ in first_line..resume_from {
            match self.text[offset..].find('\n') {
                Some(end) => offset += end + 1,
                None => return State::Done,
            }
        }
        for (line, text) in (resume_from..).zip(self.text[offset..].split_inclusive('\n')) {
            if is_document_start(text) {
                return self.read_from(offset, line);
            }
            offset += text.len();
        }
        State::Done
    }
}

impl Iterator for Documents<'_> {
    type Item = Result<Document, YamlError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Start => {
                    if let Err(error) = check_size(self.text, &self.limits) {
                        return Some(Err(error));
                    }
                    self.state = self.read_from(0, 0);
                }
                State::Reading {
                    mut loader,
                    offset,
                    first_line,
                } => {
                    return match loader.next_document() {
                        Ok(Some(document)) => {
                            self.state = State::Reading {
                                loader,
                                offset,
                                first_line,
                            };
                            Some(Ok(document))
                        }
                        Ok(None) => None,
                        Err(error) => {
                            self.state = State::Failed {
                                offset,
                                first_line,
                                error_line: error.line,
                            };
                            Some(Err(error))
                        }
                    };
                }
                State::Failed {
                    offset,
                    first_line,
                    error_line,
                } => self.state = self.resume(offset, first_line, error_line),
                State::Done => return None,
            }
        }
    }
}

/// The first document as Helm's `fromYaml` and values files read it (`sigs.k8s.io/yaml`
/// into `map[string]interface{}`): a mapping, or an empty map for an empty document.
pub fn from_yaml(text: &str) -> Result<Value, YamlError> {
    match first_document(text)? {
        None => Ok(Value::empty_map()),
        Some(node) => match node.kind {
            NodeKind::Null => Ok(Value::empty_map()),
            NodeKind::Mapping(_) => node.to_value(),
            _ => Err(node.error(mismatch(&node, "map[string]interface {}"))),
        },
    }
}

/// The first document as Helm's `fromYamlArray` reads it (into `[]interface{}`): a
/// sequence, or an empty list for an empty document.
pub fn from_yaml_array(text: &str) -> Result<Value, YamlError> {
    match first_document(text)? {
        None => Ok(Value::list(Vec::new())),
        Some(node) => match node.kind {
            NodeKind::Null => Ok(Value::list(Vec::new())),
            NodeKind::Sequence(_) => node.to_value(),
            _ => Err(node.error(mismatch(&node, "[]interface {}"))),
        },
    }
}

/// The first document as any template value (`sigs.k8s.io/yaml` into `interface{}`);
/// `Nil` for an empty input.
pub fn from_yaml_value(text: &str) -> Result<Value, YamlError> {
    first_document(text)?.map_or(Ok(Value::Nil), |node| node.to_value())
}

fn mismatch(node: &Node, target: &str) -> String {
    let found = match node.kind {
        NodeKind::Sequence(_) => "array",
        NodeKind::Mapping(_) => "object",
        NodeKind::String(_) => "string",
        NodeKind::Bool(_) => "bool",
        _ => "number",
    };
    format!(
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {found} into Go value of type {target}"
    )
}

fn first_document(text: &str) -> Result<Option<Node>, YamlError> {
    documents(text, &Limits::default())
        .keep_empty()
        .next()
        .transpose()
        .map(|document| document.map(|document| document.root))
}

fn check_size(text: &str, limits: &Limits) -> Result<(), YamlError> {
    if text.len() > limits.max_input_bytes {
        return Err(YamlError::new(
            0,
            0,
            format!(
                "input of {} bytes is larger than the limit of {} bytes",
                text.len(),
                limits.max_input_bytes
            ),
        ));
    }
    Ok(())
}

fn is_document_start(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// A finished node with what the limits need to know about it.
struct Built {
    node: Node,
    /// Nodes in the subtree (an upper bound after merges and duplicates).
    count: usize,
    /// Levels of collections in the subtree (0 for a scalar).
    height: usize,
    /// Whether this is the merge key `<<`.
    merge: bool,
}

enum Frame {
    Sequence {
        start: (usize, usize),
        anchor: usize,
        items: Vec<Node>,
        count: usize,
        height: usize,
    },
    Mapping {
        start: (usize, usize),
        anchor: usize,
        pairs: Vec<(Node, Node)>,
        index: HashMap<String, usize>,
        key: Option<Built>,
        count: usize,
        height: usize,
    },
}

struct Loader<'a> {
    parser: Parser<'a, StrInput<'a>>,
    line_offset: usize,
    limits: Limits,
    anchors: HashMap<usize, Built>,
    alias_nodes: usize,
    keep_empty: bool,
    /// The text read, to find its last line: an error at the very end is reported there, as
    /// go-yaml does.
    text: &'a str,
}

impl<'a> Loader<'a> {
    fn new(text: &'a str, line_offset: usize, limits: Limits) -> Self {
        Loader {
            parser: Parser::new_from_str(text),
            text,
            line_offset,
            limits,
            anchors: HashMap::new(),
            alias_nodes: 0,
            keep_empty: false,
        }
    }

    fn position(&self, span: &Span) -> (usize, usize) {
        (span.start.line() + self.line_offset, span.start.col() + 1)
    }

    fn scan_error(&self, error: &ScanError) -> YamlError {
        let marker = error.marker();
        let message = match error.info() {
            "recursion limit exceeded" => "flow collections nested too deeply",
            info => info
                .split_once(", ")
                .filter(|(context, _)| context.starts_with("while "))
                .map_or(info, |(_, problem)| problem),
        };
        // Lines are counted only up to the error's, so errors cost no more than the text before
        // them.
        let last_line = self.text.lines().take(marker.line()).count().max(1);
        let line = marker.line().min(last_line);
        YamlError::new(line + self.line_offset, marker.col() + 1, message)
    }

    fn next_event(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => Err(self.scan_error(&error)),
            None => Ok((Event::StreamEnd, Span::default())),
        }
    }

    /// The next document (empty ones skipped unless `keep_empty`); `None` at the end.
    fn next_document(&mut self) -> Result<Option<Document>, YamlError> {
        loop {
            let (event, span) = self.next_event()?;
            match event {
                Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
                Event::StreamEnd => return Ok(None),
                Event::DocumentStart(_) => {
                    let start_line = self.position(&span).0;
                    self.anchors.clear();
                    self.alias_nodes = 0;
                    let (root, empty) = self.build_root()?;
                    if !empty || self.keep_empty {
                        return Ok(Some(Document { root, start_line }));
                    }
                }
                _ => {
                    let (line, column) = self.position(&span);
                    return Err(YamlError::new(
                        line,
                        column,
                        "did not find expected <document start>",
                    ));
                }
            }
        }
    }

    /// Builds one document's root node; also says whether the document was empty.
    fn build_root(&mut self) -> Result<(Node, bool), YamlError> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            let (event, span) = self.next_event()?;
            let position = self.position(&span);
            let built = match event {
                Event::Scalar(text, style, anchor, tag) => {
                    if stack.is_empty()
                        && text.is_empty()
                        && style == ScalarStyle::Plain
                        && anchor == 0
                        && tag.is_none()
                    {
                        let node = Node {
                            kind: NodeKind::Null,
                            line: position.0,
                            column: position.1,
                            written: None,
                        };
                        return Ok((node, true));
                    }
                    let built = scalar(text, style, tag.as_deref(), position)?;
                    self.anchor(anchor, built)
                }
                Event::Alias(id) => self.alias(id, stack.len(), position)?,
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    if stack.len() >= self.limits.max_depth {
                        return Err(YamlError::new(
                            position.0,
                            position.1,
                            format!(
                                "nesting deeper than the limit of {} levels",
                                self.limits.max_depth
                            ),
                        ));
                    }
                    stack.push(if matches!(event, Event::SequenceStart(..)) {
                        Frame::Sequence {
                            start: position,
                            anchor,
                            items: Vec::new(),
                            count: 1,
                            height: 1,
                        }
                    } else {
                        Frame::Mapping {
                            start: position,
                            anchor,
                            pairs: Vec::new(),
                            index: HashMap::new(),
                            key: None,
                            count: 1,
                            height: 1,
                        }
                    });
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let Some(frame) = stack.pop() else {
                        return Err(YamlError::new(
                            position.0,
                            position.1,
                            "unexpected end of collection",
                        ));
                    };
                    let (anchor, built) = finish(frame);
                    self.anchor(anchor, built)
                }
                Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart(_)
                | Event::DocumentEnd
                | Event::Nothing => {
                    return Err(YamlError::new(
                        position.0,
                        position.1,
                        "unexpected end of document",
                    ));
                }
            };
            match stack.last_mut() {
                None => return Ok((built.node, false)),
                Some(frame) => attach(frame, built)?,
            }
        }
    }

    fn anchor(&mut self, anchor: usize, built: Built) -> Built {
        if anchor == 0 {
            return built;
        }
        let copy = Built {
            node: built.node.clone(),
            count: built.count,
            height: built.height,
            merge: built.merge,
        };
        self.anchors.insert(anchor, copy);
        built
    }

    fn alias(
        &mut self,
        id: usize,
        depth: usize,
        position: (usize, usize),
    ) -> Result<Built, YamlError> {
        let error = |message: String| YamlError::new(position.0, position.1, message);
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(error("unknown anchor referenced".into()));
        };
        if depth + anchored.height > self.limits.max_depth {
            return Err(error(format!(
                "alias expands deeper than the limit of {} levels",
                self.limits.max_depth
            )));
        }
        self.alias_nodes = self.alias_nodes.saturating_add(anchored.count);
        if self.alias_nodes > self.limits.max_alias_nodes {
            return Err(error(format!(
                "aliases expand to more than {} nodes (an alias bomb?)",
                self.limits.max_alias_nodes
            )));
        }
        // The alias stands where it is written; the nodes inside keep the anchored positions.
        let node = Node {
            line: position.0,
            column: position.1,
            ..anchored.node.clone()
        };
        Ok(Built {
            node,
            count: anchored.count,
            height: anchored.height,
            merge: anchored.merge,
        })
    }
}

fn finish(frame: Frame) -> (usize, Built) {
    let (start, anchor, kind, count, height) = match frame {
        Frame::Sequence {
            start,
            anchor,
            items,
            count,
            height,
        } => (start, anchor, NodeKind::Sequence(items), count, height),
        Frame::Mapping {
            start,
            anchor,
            mut pairs,
            key,
            count,
            height,
            ..
        } => {
            if let Some(key) = key {
                let line = key.node.line;
                let column = key.node.column;
                pairs.push((
                    key.node,
                    Node {
                        kind: NodeKind::Null,
                        line,
                        column,
                        written: None,
                    },
                ));
            }
            (start, anchor, NodeKind::Mapping(pairs), count, height)
        }
    };
    let node = Node {
        kind,
        line: start.0,
        column: start.1,
        written: None,
    };
    (
        anchor,
        Built {
            node,
            count,
            height,
            merge: false,
        },
    )
}

fn attach(frame: &mut Frame, built: Built) -> Result<(), YamlError> {
    match frame {
        Frame::Sequence {
            items,
            count,
            height,
            ..
        } => {
            *count = count.saturating_add(built.count);
            *height = (*height).max(built.height + 1);
            items.push(built.node);
        }
        Frame::Mapping {
            pairs,
            index,
            key,
            count,
            height,
            ..
        } => {
            *count = count.saturating_add(built.count);
            *height = (*height).max(built.height + 1);
            match key.take() {
                None => *key = Some(built),
                Some(name) if name.merge => merge(pairs, index, built.node)?,
                Some(name) => insert(pairs, index, name.node, built.node),
            }
        }
    }
    Ok(())
}

/// Sets a pair: a key seen before (as `sigs.k8s.io/yaml` names it) gets the new value.
/// Small mappings are searched in place; larger ones get an index of their key names.
fn insert(
    pairs: &mut Vec<(Node, Node)>,
    index: &mut HashMap<String, usize>,
    key: Node,
    value: Node,
) {
    const INDEXED_FROM: usize = 16;
    let Some(name) = key.key_name() else {
        pairs.push((key, value));
        return;
    };
    let found = if pairs.len() < INDEXED_FROM {
        pairs
            .iter()
            .position(|(existing, _)| existing.key_name().as_deref() == Some(&*name))
    } else {
        if index.is_empty() {
            for (at, (existing, _)) in pairs.iter().enumerate() {
                if let Some(existing) = existing.key_name() {
                    index.entry(existing.into_owned()).or_insert(at);
                }
            }
        }
        index.get(&*name).copied()
    };
    if let Some(at) = found {
        pairs[at] = (key, value);
    } else {
        if !index.is_empty() {
            index.insert(name.into_owned(), pairs.len());
        }
        pairs.push((key, value));
    }
}

/// Applies a merge key's value as go-yaml v2 does: a mapping's pairs are set in turn (later
/// explicit keys override them, earlier ones are overridden); in a sequence of mappings the
/// earlier mappings win.
fn merge(
    pairs: &mut Vec<(Node, Node)>,
    index: &mut HashMap<String, usize>,
    value: Node,
) -> Result<(), YamlError> {
    let wrong = |node: &Node| node.error("map merge requires map or sequence of maps as the value");
    match value.kind {
        NodeKind::Mapping(merged) => {
            for (key, item) in merged {
                insert(pairs, index, key, item);
            }
        }
        NodeKind::Sequence(ref items) => {
            if let Some(bad) = items
                .iter()
                .find(|item| !matches!(item.kind, NodeKind::Mapping(_)))
            {
                return Err(wrong(bad));
            }
            let NodeKind::Sequence(items) = value.kind else {
                return Ok(());
            };
            for item in items.into_iter().rev() {
                merge(pairs, index, item)?;
            }
        }
        _ => return Err(wrong(&value)),
    }
    Ok(())
}

const CORE_TAG: &str = "tag:yaml.org,2002:";

/// Types a scalar as go-yaml v2's decoder does into `interface{}`.
fn scalar(
    source: Cow<'_, str>,
    style: ScalarStyle,
    tag: Option<&Tag>,
    position: (usize, usize),
) -> Result<Built, YamlError> {
    let text = source.as_ref();
    let core = tag.and_then(|tag| (tag.handle == CORE_TAG).then_some(tag.suffix.as_str()));
    let resolved = match (tag, core) {
        (None, _) if style == ScalarStyle::Plain => resolve_plain(text, true),
        (Some(_), Some("binary")) => {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|error| {
                    YamlError::new(
                        position.0,
                        position.1,
                        format!("!!binary value contains invalid base64 data: {error}"),
                    )
                })?;
            let kind = NodeKind::String(String::from_utf8_lossy(&bytes).into_owned());
            return Ok(leaf(kind, None, position, false));
        }
        (Some(_), Some(expected @ ("null" | "bool" | "int" | "float" | "timestamp"))) => {
            let resolved = resolve_plain(text, expected == "timestamp");
            let fits = matches!(
                (&resolved, expected),
                (Resolved::Null, "null")
                    | (Resolved::Bool(_), "bool")
                    | (Resolved::Int(_), "int" | "float")
                    | (Resolved::Float(_), "float")
                    | (Resolved::Timestamp, "timestamp")
            );
            if !fits {
                let found = match resolved {
                    Resolved::Null => "!!null",
                    Resolved::Bool(_) => "!!bool",
                    Resolved::Int(_) => "!!int",
                    Resolved::Float(_) => "!!float",
                    Resolved::Timestamp => "!!timestamp",
                    Resolved::Merge => "!!merge",
                    Resolved::Str => "!!str",
                };
                return Err(YamlError::new(
                    position.0,
                    position.1,
                    format!("cannot decode {found} `{text}` as a !!{expected}"),
                ));
            }
            match (resolved, expected) {
                #[allow(clippy::cast_precision_loss)]
                (Resolved::Int(number), "float") => Resolved::Float(number as f64),
                (resolved, _) => resolved,
            }
        }
        (Some(_), Some("merge")) if text == "<<" => Resolved::Merge,
        _ => Resolved::Str,
    };
    let written = matches!(
        resolved,
        Resolved::Bool(_) | Resolved::Int(_) | Resolved::Float(_)
    )
    .then(|| Box::from(text));
    let (kind, merge) = match resolved {
        Resolved::Null => (NodeKind::Null, false),
        Resolved::Bool(value) => (NodeKind::Bool(value), false),
        Resolved::Int(value) => (NodeKind::Int(value), false),
        Resolved::Float(value) => (NodeKind::Float(value), false),
        Resolved::Merge => (NodeKind::String(source.into_owned()), true),
        Resolved::Timestamp | Resolved::Str => (NodeKind::String(source.into_owned()), false),
    };
    Ok(leaf(kind, written, position, merge))
}

fn leaf(kind: NodeKind, written: Option<Box<str>>, position: (usize, usize), merge: bool) -> Built {
    Built {
        node: Node {
            kind,
            line: position.0,
            column: position.1,
            written,
        },
        count: 1,
        height: 0,
        merge,
    }
}
