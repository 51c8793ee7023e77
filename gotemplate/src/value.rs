//! The data a template sees, typed the way Go's `interface{}` values are in a Helm render.
//!
//! Values decoded from YAML or JSON use Go's JSON types (`float64` numbers, `string`,
//! `bool`, `[]interface {}`, `map[string]interface {}`); functions return `int`/`int64`
//! where their Go counterparts do. Maps are shared and mutable, as Go maps are: Sprig's
//! `set`, `unset` and `merge` change the map every other holder sees.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::rc::Rc;

/// A Go map from string keys, shared by reference like a Go map.
pub type Map = Rc<RefCell<BTreeMap<String, Value>>>;

/// One value in a template's data or a function's result.
#[derive(Clone)]
pub enum Value {
    /// Go `nil` (an empty `interface{}`), also what a missing map key yields.
    Nil,
    /// Go `bool`.
    Bool(bool),
    /// A Go signed integer; [`IntKind`] says which Go type it is.
    Int(i64, IntKind),
    /// Go `float64`.
    Float(f64),
    /// Go `string`.
    String(Rc<str>),
    /// Go `[]byte` (file contents from `.Files.GetBytes` and `.Files.Glob`).
    Bytes(Rc<[u8]>),
    /// Go `[]interface {}`.
    List(Rc<Vec<Value>>),
    /// Go `map[string]interface {}`.
    Map(Map),
    /// A Go struct or other typed value with fields and methods (`.Files`, `.Capabilities`).
    Object(Rc<dyn Object>),
}

/// Which Go integer type an [`Value::Int`] stands for (it shows in `typeOf` and `%T`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntKind {
    /// Go `int` (template integer literals, `len`, `int`, `atoi`).
    Int,
    /// Go `int64` (`--set` numbers, Sprig arithmetic, `int64`).
    Int64,
}

/// A typed Go value with fields and methods, such as Helm's `.Files` or `.Capabilities`.
pub trait Object {
    /// The Go type name, as `%T` and `typeOf` print it (e.g. `chart.Files`).
    fn type_name(&self) -> &str;
    /// The Go kind, as `kindOf` prints it (`struct`, `map`, `ptr`, ...).
    fn kind(&self) -> &'static str {
        "struct"
    }
    /// A field or a method without arguments; `None` when the type has no such member.
    fn field(&self, name: &str) -> Option<Value>;
    /// Calls a method with arguments; `None` when the type has no such method.
    fn call_method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>>;
    /// The text Go's `fmt` prints for this value (its `String()` method or struct form).
    fn display(&self) -> String;
    /// The entries `range` visits and `len` counts, when the value is map-like.
    fn entries(&self) -> Option<Vec<(String, Value)>> {
        None
    }
    /// The plain data this value encodes to in JSON or YAML (Go's `json.Marshal` view).
    fn to_data(&self) -> Value;
}

impl Value {
    /// A Go string.
    pub fn string(text: impl Into<Rc<str>>) -> Self {
        Value::String(text.into())
    }

    /// A Go `int`.
    pub fn int(number: i64) -> Self {
        Value::Int(number, IntKind::Int)
    }

    /// A Go `int64`.
    pub fn int64(number: i64) -> Self {
        Value::Int(number, IntKind::Int64)
    }

    /// A new Go `[]interface {}`.
    pub fn list(items: Vec<Value>) -> Self {
        Value::List(Rc::new(items))
    }

    /// A new Go `map[string]interface {}`.
    pub fn map(entries: BTreeMap<String, Value>) -> Self {
        Value::Map(Rc::new(RefCell::new(entries)))
    }

    /// A new empty Go map.
    pub fn empty_map() -> Self {
        Value::map(BTreeMap::new())
    }

    /// Whether this is Go `nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// Go template truth: false for nil, false, zero numbers, and empty strings, lists and maps.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(value) => *value,
            Value::Int(value, _) => *value != 0,
            Value::Float(value) => *value != 0.0,
            Value::String(text) => !text.is_empty(),
            Value::Bytes(bytes) => !bytes.is_empty(),
            Value::List(items) => !items.is_empty(),
            Value::Map(map) => !map.borrow().is_empty(),
            Value::Object(object) => object.entries().is_none_or(|entries| !entries.is_empty()),
        }
    }

    /// The Go type name (`%T`, Sprig's `typeOf`): `float64`, `map[string]interface {}`, ...
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_, IntKind::Int) => "int".into(),
            Value::Int(_, IntKind::Int64) => "int64".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) => "string".into(),
            Value::Bytes(_) => "[]uint8".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::Object(object) => object.type_name().into(),
        }
    }

    /// The Go reflect kind (Sprig's `kindOf`): `float64`, `map`, `slice`, `invalid` for nil, ...
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_, IntKind::Int) => "int",
            Value::Int(_, IntKind::Int64) => "int64",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::Bytes(_) | Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Object(object) => object.kind(),
        }
    }

    /// The string inside, when this is a Go string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    /// Go's `fmt.Sprint` of this one value (the `%v` verb).
    pub fn to_go_string(&self) -> String {
        let mut out = String::new();
        write_go_value(&mut out, self, &mut Vec::new());
        out
    }

    /// A deep copy: maps and lists are new, so changing the copy leaves the original alone.
    #[must_use]
    ///
    /// A map that contains itself (templates can build one with Sprig's `set`) is copied
    /// down to where it repeats; the repetition stays shared instead of recursing forever.
    pub fn deep_copy(&self) -> Value {
        self.deep_copy_within(&mut Vec::new())
    }

    fn deep_copy_within(
        &self,
        open_maps: &mut Vec<*const RefCell<BTreeMap<String, Value>>>,
    ) -> Value {
        match self {
            Value::List(items) if open_maps.len() < MAX_NESTING => Value::list(
                items
                    .iter()
                    .map(|item| item.deep_copy_within(open_maps))
                    .collect(),
            ),
            Value::Map(map)
                if open_maps.len() < MAX_NESTING && !open_maps.contains(&Rc::as_ptr(map)) =>
            {
                open_maps.push(Rc::as_ptr(map));
                let copy = map
                    .borrow()
                    .iter()
                    .map(|(key, value)| (key.clone(), value.deep_copy_within(open_maps)))
                    .collect();
                open_maps.pop();
                Value::map(copy)
            }
            other => other.clone(),
        }
    }

    /// The plain data this value stands for, with objects replaced by their data view.
    #[must_use]
    pub fn to_data(&self) -> Value {
        match self {
            Value::Object(object) => object.to_data(),
            Value::List(items) => Value::list(items.iter().map(Value::to_data).collect()),
            other => other.clone(),
        }
    }
}

/// Formats a `float64` as Go's `%v` does (`strconv.FormatFloat(f, 'g', -1, 64)`):
/// shortest representation, exponent form below 1e-4 and from 1e6.
pub fn format_go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let exponent_form = format!("{value:e}");
    let (mantissa, exponent) = exponent_form
        .split_once('e')
        .expect("Rust's {:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("Rust's exponent is an integer");
    if (-4..6).contains(&exponent) {
        format!("{value}")
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// How deep values are printed or copied; deeper (or self-containing) values print `...`.
const MAX_NESTING: usize = 1000;

/// Writes `value` as `%v` does; `open` holds the lists and maps being written around it, so
/// a map that contains itself prints `...` where Go would recurse until its stack ran out.
fn write_go_value(out: &mut String, value: &Value, open: &mut Vec<*const ()>) {
    let identity = match value {
        Value::List(items) => Some(Rc::as_ptr(items).cast::<()>()),
        Value::Map(map) => Some(Rc::as_ptr(map).cast::<()>()),
        _ => None,
    };
    if let Some(identity) = identity {
        if open.len() >= MAX_NESTING || open.contains(&identity) {
            out.push_str("...");
            return;
        }
        open.push(identity);
    }
    write_go_value_inside(out, value, open);
    if identity.is_some() {
        open.pop();
    }
}

fn write_go_value_inside(out: &mut String, value: &Value, open: &mut Vec<*const ()>) {
    match value {
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        Value::Int(number, _) => {
            let _ = write!(out, "{number}");
        }
        Value::Float(number) => out.push_str(&format_go_float(*number)),
        Value::String(text) => out.push_str(text),
        Value::Bytes(bytes) => {
            out.push('[');
            for (index, byte) in bytes.iter().enumerate() {
                if index > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{byte}");
            }
            out.push(']');
        }
        Value::List(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(' ');
                }
                write_go_value(out, item, open);
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push_str("map[");
            for (index, (key, item)) in map.borrow().iter().enumerate() {
                if index > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                write_go_value(out, item, open);
            }
            out.push(']');
        }
        Value::Object(object) => out.push_str(&object.display()),
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(text) => write!(formatter, "{text:?}"),
            other => write!(formatter, "{}({})", other.type_name(), other.to_go_string()),
        }
    }
}

impl PartialEq for Value {
    /// Deep equality as Sprig's `reflect.DeepEqual` sees it (types must match).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a, kind_a), Value::Int(b, kind_b)) => a == b && kind_a == kind_b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => Rc::ptr_eq(a, b) || *a.borrow() == *b.borrow(),
            (Value::Object(a), Value::Object(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::string(text)
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::string(text)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Bool(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_does() {
        for (value, text) in [
            (3.9, "3.9"),
            (5.0, "5"),
            (1e6, "1e+06"),
            (123_456.0, "123456"),
            (1_234_567.0, "1.234567e+06"),
            (1e20, "1e+20"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1.0 / 3.0, "0.3333333333333333"),
        ] {
            assert_eq!(format_go_float(value), text, "{value}");
        }
    }

    #[test]
    fn a_map_that_contains_itself_prints_and_copies_without_recursing_forever() {
        let map = Value::empty_map();
        let Value::Map(inner) = &map else {
            unreachable!()
        };
        inner.borrow_mut().insert("self".into(), map.clone());
        inner
            .borrow_mut()
            .insert("again".into(), Value::list(vec![map.clone()]));
        assert_eq!(map.to_go_string(), "map[again:[...] self:...]");
        let copy = map.deep_copy();
        assert!(matches!(copy, Value::Map(_)) && copy.to_go_string().starts_with("map[again:["));
    }

    #[test]
    fn composite_values_print_as_go_does() {
        let map = Value::map(BTreeMap::from([
            ("b".to_string(), Value::Float(2.0)),
            ("a".to_string(), Value::list(vec![Value::Nil, "x".into()])),
        ]));
        assert_eq!(map.to_go_string(), "map[a:[<nil> x] b:2]");
    }
}
