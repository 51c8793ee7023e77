//! Template values reduced to the data `encoding/json` would write: objects replaced by
//! their data, bytes by base64, maps sorted, and NaN, infinities and cycles rejected.

use std::rc::Rc;

use base64::Engine as _;
use gotemplate::Value;

/// Deepest nesting written; deeper values are refused (Go has no limit but its stack).
const MAX_DEPTH: usize = 500;

/// Data as JSON sees it.
pub(crate) enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    /// A finite `float64`.
    Float(f64),
    String(Rc<str>),
    List(Vec<Plain>),
    /// Keys in byte order, as `encoding/json` sorts them.
    Map(Vec<(String, Plain)>),
}

impl Plain {
    /// Converts a value, failing as `json.Marshal` does on NaN, infinities and cycles.
    pub(crate) fn from_value(value: &Value) -> Result<Plain, String> {
        let mut path = Vec::new();
        convert(value, &mut path)
    }
}

fn convert(value: &Value, path: &mut Vec<*const ()>) -> Result<Plain, String> {
    let (pointer, type_name): (*const (), &str) = match value {
        Value::List(items) => (Rc::as_ptr(items).cast(), "[]interface {}"),
        Value::Map(map) => (Rc::as_ptr(map).cast(), "map[string]interface {}"),
        Value::Object(object) => (Rc::as_ptr(object).cast(), "struct"),
        _ => return scalar(value),
    };
    if path.contains(&pointer) {
        return Err(format!(
            "json: unsupported value: encountered a cycle via {type_name}"
        ));
    }
    if path.len() >= MAX_DEPTH {
        return Err(format!("json: value nested deeper than {MAX_DEPTH} levels"));
    }
    path.push(pointer);
    let result = match value {
        Value::List(items) => items
            .iter()
            .map(|item| convert(item, path))
            .collect::<Result<_, _>>()
            .map(Plain::List),
        Value::Map(map) => map
            .borrow()
            .iter()
            .map(|(key, item)| Ok((key.clone(), convert(item, path)?)))
            .collect::<Result<_, _>>()
            .map(Plain::Map),
        Value::Object(object) => convert(&object.to_data(), path),
        _ => scalar(value),
    };
    path.pop();
    result
}

fn scalar(value: &Value) -> Result<Plain, String> {
    Ok(match value {
        Value::Bool(value) => Plain::Bool(*value),
        Value::Int(number, _) => Plain::Int(*number),
        Value::Float(number) if number.is_finite() => Plain::Float(*number),
        Value::Float(number) => {
            return Err(format!(
                "json: unsupported value: {}",
                gotemplate::value::format_go_float(*number)
            ));
        }
        Value::String(text) => Plain::String(text.clone()),
        Value::Bytes(bytes) => Plain::String(
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        ),
        _ => Plain::Null,
    })
}
