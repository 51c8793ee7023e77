//! Argument checks as Go's template engine makes them for typed parameters, and the
//! `interface{}` conversions Sprig borrows from spf13/cast and its own `strval`.

use std::rc::Rc;

use gotemplate::{Map, Value};

/// What every registered function returns.
pub(crate) type Outcome = Result<Value, String>;

/// The arguments of a function with exactly `N` parameters.
pub(crate) fn fixed<'a, const N: usize>(
    name: &str,
    args: &'a [Value],
) -> Result<&'a [Value; N], String> {
    args.try_into().map_err(|_| {
        format!(
            "wrong number of args for {name}: want {N} got {}",
            args.len()
        )
    })
}

/// The arguments of a variadic function with `min` fixed parameters.
pub(crate) fn at_least<'a>(
    name: &str,
    args: &'a [Value],
    min: usize,
) -> Result<&'a [Value], String> {
    if args.len() < min {
        return Err(format!(
            "wrong number of args for {name}: want at least {min} got {}",
            args.len()
        ));
    }
    Ok(args)
}

/// The error Go's `validateType` reports when a value does not fit a typed parameter.
pub(crate) fn wrong_type(expected: &str, value: &Value) -> String {
    let got = if value.is_nil() {
        "interface {}".to_string()
    } else {
        value.type_name()
    };
    format!("wrong type for value; expected {expected}; got {got}")
}

/// A Go `string` parameter.
pub(crate) fn string(value: &Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| wrong_type("string", value))
}

/// A Go `int` parameter (integers of either kind are accepted).
pub(crate) fn int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Int(number, _) => Ok(*number),
        other => Err(wrong_type("int", other)),
    }
}

/// A Go `bool` parameter.
pub(crate) fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        other => Err(wrong_type("bool", other)),
    }
}

/// A Go `map[string]interface {}` parameter; nil is a nil map, read as empty.
pub(crate) fn map(value: &Value) -> Result<Map, String> {
    match value {
        Value::Map(map) => Ok(Rc::clone(map)),
        Value::Nil => Ok(Rc::default()),
        other => Err(wrong_type("map[string]interface {}", other)),
    }
}

/// A Go `[]interface {}` parameter; nil is a nil slice, read as empty.
pub(crate) fn list(value: &Value) -> Result<&[Value], String> {
    match value {
        Value::List(items) => Ok(items),
        Value::Nil => Ok(&[]),
        other => Err(wrong_type("[]interface {}", other)),
    }
}

/// The elements of any Go slice (Sprig's reflection over `Slice`/`Array` kinds).
pub(crate) fn slice_items(value: &Value) -> Option<Rc<Vec<Value>>> {
    match value {
        Value::List(items) => Some(Rc::clone(items)),
        Value::Bytes(bytes) => Some(Rc::new(
            bytes
                .iter()
                .map(|byte| Value::int(i64::from(*byte)))
                .collect(),
        )),
        _ => None,
    }
}

/// The elements of a slice, or Sprig's error (a nil pointer panic for `nil`, Go's
/// `reflect.TypeOf(nil).Kind()`), formatted by `describe` from the reflect kind.
pub(crate) fn require_slice(
    value: &Value,
    describe: impl Fn(&str) -> String,
) -> Result<Rc<Vec<Value>>, String> {
    if value.is_nil() {
        return Err(NIL_DEREFERENCE.to_string());
    }
    slice_items(value).ok_or_else(|| describe(value.kind_name()))
}

/// The message of the panic Go raises when Sprig reflects over a nil value.
pub(crate) const NIL_DEREFERENCE: &str =
    "runtime error: invalid memory address or nil pointer dereference";

/// Sprig's `strval`: strings and bytes as they are, everything else as `fmt`'s `%v`.
pub(crate) fn strval(value: &Value) -> String {
    match value {
        Value::String(text) => text.to_string(),
        Value::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => other.to_go_string(),
    }
}

/// Sprig's `strslice`: a slice's non-nil elements as strings; `nil` is empty, a scalar is one.
pub(crate) fn strslice(value: &Value) -> Vec<String> {
    match value {
        Value::Nil => Vec::new(),
        Value::List(items) => items
            .iter()
            .filter(|item| !item.is_nil())
            .map(strval)
            .collect(),
        Value::Bytes(bytes) => bytes.iter().map(u8::to_string).collect(),
        other => vec![strval(other)],
    }
}

/// Sprig's `empty`: nil, false, zero numbers, and empty strings, slices and maps.
pub(crate) fn is_empty(value: &Value) -> bool {
    match value {
        Value::Object(object) => {
            object.kind() == "map" && object.entries().is_some_and(|entries| entries.is_empty())
        }
        other => !other.is_true(),
    }
}

/// `strconv.ParseInt(text, 0, 64)`: optional sign, `0x`/`0o`/`0b`/`0` prefixes, underscores
/// between digits only with a prefix.
pub(crate) fn parse_go_int(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest, true)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest, true)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    if digits.contains('_') && (!prefixed || digits.ends_with('_') || digits.contains("__")) {
        return None;
    }
    let digits = digits.replace('_', "");
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(&digits, radix).ok()?;
    if negative {
        0_i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// cast's `trimZeroDecimal`: "12.000" becomes "12", other text stays.
fn trim_zero_decimal(text: &str) -> &str {
    let mut found_zero = false;
    for (index, byte) in text.bytes().enumerate().rev() {
        match byte {
            b'.' if found_zero => return &text[..index],
            b'.' => {}
            b'0' => found_zero = true,
            _ => return text,
        }
    }
    text
}

/// `cast.ToInt64` (and `cast.ToInt`): conversion failures give 0.
pub(crate) fn to_int64(value: &Value) -> i64 {
    match value {
        Value::Bool(flag) => i64::from(*flag),
        Value::Int(number, _) => *number,
        #[allow(clippy::cast_possible_truncation)]
        Value::Float(number) => *number as i64,
        Value::String(text) => parse_go_int(trim_zero_decimal(text)).unwrap_or(0),
        _ => 0,
    }
}

/// `cast.ToFloat64`: conversion failures give 0.
pub(crate) fn to_float64(value: &Value) -> f64 {
    match value {
        Value::Bool(flag) => f64::from(u8::from(*flag)),
        #[allow(clippy::cast_precision_loss)]
        Value::Int(number, _) => *number as f64,
        Value::Float(number) => *number,
        Value::String(text) => parse_go_float(text).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// `strconv.ParseFloat(text, 64)` for the forms Go accepts (decimal, exponents, inf, nan).
pub(crate) fn parse_go_float(text: &str) -> Option<f64> {
    let plain = text
        .strip_prefix(['+', '-'])
        .unwrap_or(text)
        .to_ascii_lowercase();
    let valid = matches!(plain.as_str(), "inf" | "infinity" | "nan")
        || (!plain.is_empty()
            && plain
                .bytes()
                .all(|byte| byte.is_ascii_digit() || matches!(byte, b'.' | b'e' | b'+' | b'-')));
    if !valid {
        return None;
    }
    text.parse::<f64>()
        .ok()
        .filter(|number| number.is_finite() || !plain.bytes().any(|b| b.is_ascii_digit()))
}

/// Go's `strconv.Quote`, which `%q` uses for strings.
pub(crate) use gotemplate::strconv::quote as go_quote;

/// Go's `regexp` quoting of a pattern in messages: backquoted when possible.
pub(crate) fn go_quote_backquoted(text: &str) -> String {
    if gotemplate::strconv::can_backquote(text) {
        format!("`{text}`")
    } else {
        go_quote(text)
    }
}
