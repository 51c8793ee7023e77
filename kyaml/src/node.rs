//! Parsed YAML with positions, and its conversion to template values.

use std::borrow::Cow;
use std::collections::BTreeMap;

use gotemplate::Value;

use crate::YamlError;
use crate::scalar::format_float32_key;

/// One YAML document of a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The document's content.
    pub root: Node,
    /// 1-based line where the document starts (its `---`, or its first content).
    pub start_line: usize,
}

/// A YAML value with the position of its text. Aliases are expanded (an alias's node has the
/// alias's position, the nodes inside it keep the anchored text's) and merge keys applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the node is.
    pub kind: NodeKind,
    /// 1-based line of the node's first character.
    pub line: usize,
    /// 1-based column (in characters) of the node's first character.
    pub column: usize,
    /// A bool's, int's or float's text as written (`yes`, `0x1F`, `1.10`), which its value
    /// alone does not tell; `None` for other nodes.
    pub written: Option<Box<str>>,
}

/// The type and content of a [`Node`], typed as go-yaml v2 decodes into `interface{}`.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// `~`, `null`, an empty value.
    Null,
    /// `true`, `yes`, `on`, ... and their negatives.
    Bool(bool),
    /// An integer (Go `int`, `uint64` or `big.Int` up to 128 bits).
    Int(i128),
    /// A float, including `.inf` and `.nan`.
    Float(f64),
    /// A string: quoted or block scalars, plain text that is no other type, timestamps.
    String(String),
    /// A sequence.
    Sequence(Vec<Node>),
    /// A mapping's pairs in document order, after merge keys; of duplicate keys only the last
    /// value is kept, at the place of the first.
    Mapping(Vec<(Node, Node)>),
}

impl Node {
    /// The string a mapping key becomes in `sigs.k8s.io/yaml`'s conversion to JSON; `None`
    /// for keys it rejects (null, sequences, mappings).
    pub fn key_string(&self) -> Option<String> {
        self.key_name().map(Cow::into_owned)
    }

    pub(crate) fn key_name(&self) -> Option<Cow<'_, str>> {
        match &self.kind {
            NodeKind::String(text) => Some(Cow::Borrowed(text)),
            NodeKind::Int(number) => Some(Cow::Owned(number.to_string())),
            NodeKind::Float(number) => Some(Cow::Owned(format_float32_key(*number))),
            NodeKind::Bool(value) => Some(Cow::Borrowed(if *value { "true" } else { "false" })),
            NodeKind::Null | NodeKind::Sequence(_) | NodeKind::Mapping(_) => None,
        }
    }

    /// The value for `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Mapping(pairs) => pairs
                .iter()
                .find(|(name, _)| matches!(&name.kind, NodeKind::String(text) if text == key))
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// The value at a path of mapping keys (see [`Node::get`]).
    pub fn get_path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    /// What the node is, for messages: `a string`, `a list`, `a mapping`, ...
    pub fn describe(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "nothing",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) | NodeKind::Float(_) => "a number",
            NodeKind::String(_) => "a string",
            NodeKind::Sequence(_) => "a list",
            NodeKind::Mapping(_) => "a mapping",
        }
    }

    /// The text when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::String(text) => Some(text),
            _ => None,
        }
    }

    /// The text of a scalar as written: a string's value, or a bool's, int's or float's
    /// [`written`](Node::written) text; `None` for nulls and collections.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::String(text) => Some(text),
            _ => self.written.as_deref(),
        }
    }

    /// The template value Helm sees for this node (`sigs.k8s.io/yaml`: YAML to JSON, then
    /// `encoding/json` into `interface{}`): every number a `float64`, keys as strings.
    /// NaN and infinities fail as JSON cannot hold them; so do null or collection keys.
    pub fn to_value(&self) -> Result<Value, YamlError> {
        Ok(match &self.kind {
            NodeKind::Null => Value::Nil,
            NodeKind::Bool(value) => Value::Bool(*value),
            #[allow(clippy::cast_precision_loss)]
            NodeKind::Int(number) => Value::Float(*number as f64),
            NodeKind::Float(number) if number.is_finite() => Value::Float(*number),
            NodeKind::Float(number) => {
                let name = if number.is_nan() {
                    "NaN"
                } else if *number > 0.0 {
                    "+Inf"
                } else {
                    "-Inf"
                };
                return Err(self.error(format!("json: unsupported value: {name}")));
            }
            NodeKind::String(text) => Value::string(text.as_str()),
            NodeKind::Sequence(items) => {
                Value::list(items.iter().map(Node::to_value).collect::<Result<_, _>>()?)
            }
            NodeKind::Mapping(pairs) => {
                let mut map = BTreeMap::new();
                for (key, value) in pairs {
                    let name = key.key_string().ok_or_else(|| {
                        key.error(format!(
                            "unsupported map key of type: {}",
                            key.go_type_name()
                        ))
                    })?;
                    map.insert(name, value.to_value()?);
                }
                Value::map(map)
            }
        })
    }

    fn go_type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "<nil>",
            NodeKind::Sequence(_) => "[]interface {}",
            NodeKind::Mapping(_) => "map[interface {}]interface {}",
            NodeKind::Bool(_) => "bool",
            NodeKind::Int(_) => "int",
            NodeKind::Float(_) => "float64",
            NodeKind::String(_) => "string",
        }
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> YamlError {
        YamlError::new(self.line, self.column, message)
    }
}
