//! JSON as Go's `encoding/json` writes it, and reads it into `interface{}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gotemplate::Value;

use crate::plain::Plain;
use crate::scalar::format_json_float;

/// Go's `json.Marshal`: sorted keys, no spaces, `<`, `>`, `&`, U+2028 and U+2029 escaped,
/// byte slices as base64; NaN and infinities are errors.
pub fn to_json(value: &Value) -> Result<String, String> {
    let mut out = String::new();
    write_json(&mut out, &Plain::from_value(value)?, true, None, 0);
    Ok(out)
}

/// Go's `json.MarshalIndent(value, "", "  ")` (Helm's `toPrettyJson`).
pub fn to_pretty_json(value: &Value) -> Result<String, String> {
    let mut out = String::new();
    write_json(&mut out, &Plain::from_value(value)?, true, Some("  "), 0);
    Ok(out)
}

/// JSON without HTML escaping (Helm's `toRawJson`: an encoder with `SetEscapeHTML(false)`).
pub fn to_raw_json(value: &Value) -> Result<String, String> {
    let mut out = String::new();
    write_json(&mut out, &Plain::from_value(value)?, false, None, 0);
    Ok(out)
}

fn newline(out: &mut String, indent: Option<&str>, depth: usize) {
    if let Some(unit) = indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(unit);
        }
    }
}

fn write_json(out: &mut String, value: &Plain, html: bool, indent: Option<&str>, depth: usize) {
    match value {
        Plain::Null => out.push_str("null"),
        Plain::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        Plain::Int(number) => {
            let _ = write!(out, "{number}");
        }
        Plain::Float(number) => out.push_str(&format_json_float(*number)),
        Plain::String(text) => write_json_string(out, text, html),
        Plain::List(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_json(out, item, html, indent, depth + 1);
            }
            if !items.is_empty() {
                newline(out, indent, depth);
            }
            out.push(']');
        }
        Plain::Map(entries) => {
            out.push('{');
            for (index, (key, item)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_json_string(out, key, html);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(out, item, html, indent, depth + 1);
            }
            if !entries.is_empty() {
                newline(out, indent, depth);
            }
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, text: &str, html: bool) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if html => {
                let _ = write!(out, "\\u{:04x}", u32::from(character));
            }
            '\u{0}'..='\u{1f}' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(character));
            }
            _ => out.push(character),
        }
    }
    out.push('"');
}

/// Go's `json.Unmarshal` into `interface{}`: objects become maps (the last of duplicate keys
/// wins), arrays lists, every number a `float64`. Errors carry Go's messages.
pub fn from_json(text: &str) -> Result<Value, String> {
    JsonReader {
        bytes: text.as_bytes(),
        text,
        at: 0,
    }
    .document()
}

/// Go's `json.Unmarshal` into `[]interface{}` (Helm's `fromJsonArray`): `null` gives an
/// empty list, anything but an array is an error.
pub fn from_json_array(text: &str) -> Result<Value, String> {
    match from_json(text)? {
        Value::Nil => Ok(Value::list(Vec::new())),
        list @ Value::List(_) => Ok(list),
        other => Err(format!(
            "json: cannot unmarshal {} into Go value of type []interface {{}}",
            json_kind(&other)
        )),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Map(_) => "object",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        _ => "number",
    }
}

/// Go's `encoding/json` nesting limit.
const MAX_JSON_DEPTH: usize = 10_000;

enum Open {
    List(Vec<Value>),
    Map(BTreeMap<String, Value>, String),
}

struct JsonReader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl JsonReader<'_> {
    fn skip_space(&mut self) {
        while matches!(self.bytes.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn invalid(&self, context: &str) -> String {
        match self.text[self.at..].chars().next() {
            None => "unexpected end of JSON input".into(),
            Some(character) => format!("invalid character {} {context}", quote_char(character)),
        }
    }

    fn document(mut self) -> Result<Value, String> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            self.skip_space();
            let mut value = match self.bytes.get(self.at) {
                Some(b'{' | b'[') => {
                    if stack.len() >= MAX_JSON_DEPTH {
                        return Err("exceeded max depth".into());
                    }
                    let object = self.bytes[self.at] == b'{';
                    self.at += 1;
                    self.skip_space();
                    if object {
                        if self.bytes.get(self.at) == Some(&b'}') {
                            self.at += 1;
                            Value::empty_map()
                        } else {
                            let key = self.key()?;
                            stack.push(Open::Map(BTreeMap::new(), key));
                            continue;
                        }
                    } else if self.bytes.get(self.at) == Some(&b']') {
                        self.at += 1;
                        Value::list(Vec::new())
                    } else {
                        stack.push(Open::List(Vec::new()));
                        continue;
                    }
                }
                _ => self.scalar()?,
            };
            loop {
                self.skip_space();
                match stack.last_mut() {
                    None => {
                        if self.at < self.bytes.len() {
                            return Err(self.invalid("after top-level value"));
                        }
                        return Ok(value);
                    }
                    Some(Open::List(items)) => {
                        items.push(value);
                        match self.bytes.get(self.at) {
                            Some(b',') => {
                                self.at += 1;
                                break;
                            }
                            Some(b']') => {
                                self.at += 1;
                                let Some(Open::List(items)) = stack.pop() else {
                                    return Err("internal error".into());
                                };
                                value = Value::list(items);
                            }
                            _ => return Err(self.invalid("after array element")),
                        }
                    }
                    Some(Open::Map(entries, key)) => {
                        entries.insert(std::mem::take(key), value);
                        match self.bytes.get(self.at) {
                            Some(b',') => {
                                self.at += 1;
                                self.skip_space();
                                *key = self.key()?;
                                break;
                            }
                            Some(b'}') => {
                                self.at += 1;
                                let Some(Open::Map(entries, _)) = stack.pop() else {
                                    return Err("internal error".into());
                                };
                                value = Value::map(entries);
                            }
                            _ => return Err(self.invalid("after object key:value pair")),
                        }
                    }
                }
            }
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> Result<String, String> {
        if self.bytes.get(self.at) != Some(&b'"') {
            return Err(self.invalid("looking for beginning of object key string"));
        }
        let key = self.string()?;
        self.skip_space();
        if self.bytes.get(self.at) != Some(&b':') {
            return Err(self.invalid("after object key"));
        }
        self.at += 1;
        Ok(key)
    }

    fn scalar(&mut self) -> Result<Value, String> {
        match self.bytes.get(self.at) {
            Some(b'"') => Ok(Value::string(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Nil),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.invalid("looking for beginning of value")),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, String> {
        for expected in word.bytes() {
            match self.bytes.get(self.at) {
                Some(&byte) if byte == expected => self.at += 1,
                _ => {
                    return Err(self.invalid(&format!(
                        "in literal {word} (expecting {})",
                        quote_char(char::from(expected))
                    )));
                }
            }
        }
        Ok(value)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        if self.bytes[self.at] == b'-' {
            self.at += 1;
        }
        match self.bytes.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.invalid("in numeric literal")),
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.invalid("after decimal point in numeric literal"));
            }
        }
        if matches!(self.bytes.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.bytes.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.invalid("in exponent of numeric literal"));
            }
        }
        let text = &self.text[start..self.at];
        match text.parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(Value::Float(number)),
            _ => Err(format!(
                "json: cannot unmarshal number {text} into Go value of type float64"
            )),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self
                .bytes
                .get(self.at)
                .and_then(|&byte| char::from(byte).to_digit(16))
                .ok_or_else(|| self.invalid("in \\u hexadecimal character escape"))?;
            code = code * 16 + digit;
            self.at += 1;
        }
        Ok(code)
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let run = self.bytes[self.at..]
                .iter()
                .take_while(|&&byte| byte != b'"' && byte != b'\\' && byte >= 0x20)
                .count();
            out.push_str(&self.text[self.at..self.at + run]);
            self.at += run;
            match self.bytes.get(self.at) {
                None => return Err("unexpected end of JSON input".into()),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = match self.bytes.get(self.at) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.at += 1;
                            let code = self.hex4()?;
                            out.push(self.unicode_escape(code)?);
                            continue;
                        }
                        _ => return Err(self.invalid("in string escape code")),
                    };
                    self.at += 1;
                    out.push(escaped);
                }
                Some(_) => return Err(self.invalid("in string literal")),
            }
        }
    }

    /// A `\u` escape's character; surrogate pairs combine, lone surrogates become U+FFFD.
    fn unicode_escape(&mut self, code: u32) -> Result<char, String> {
        if (0xD800..0xDC00).contains(&code) && self.text[self.at..].starts_with("\\u") {
            let saved = self.at;
            self.at += 2;
            let low = self.hex4()?;
            if (0xDC00..0xE000).contains(&low) {
                let combined = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                return Ok(char::from_u32(combined).unwrap_or('\u{FFFD}'));
            }
            self.at = saved;
        }
        Ok(char::from_u32(code).unwrap_or('\u{FFFD}'))
    }
}

/// Go's `quoteChar` for syntax error messages.
fn quote_char(character: char) -> String {
    match character {
        '\'' => "'\\''".into(),
        '"' => "'\"'".into(),
        _ => {
            let quoted = format!("{character:?}");
            format!("'{}'", &quoted[1..quoted.len() - 1])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::map(
            entries
                .iter()
                .map(|(key, value)| ((*key).to_string(), value.clone()))
                .collect(),
        )
    }

    #[test]
    fn marshals_as_encoding_json() {
        let value = map(&[
            ("b", Value::Float(1e21)),
            (
                "a",
                Value::list(vec![Value::Nil, Value::Bool(true), Value::Float(1.5)]),
            ),
            ("html", Value::string("<a&b>\u{2028}")),
            ("int", Value::int(7)),
            ("small", Value::Float(1e-7)),
            ("whole", Value::Float(5.0)),
            ("bytes", Value::Bytes(b"hi".as_slice().into())),
            ("ctl", Value::string("\u{1}\t\u{8}")),
            ("empty", Value::empty_map()),
        ]);
        assert_eq!(
            to_json(&value).unwrap(),
            r#"{"a":[null,true,1.5],"b":1e+21,"bytes":"aGk=","ctl":"\u0001\t\b","empty":{},"html":"\u003ca\u0026b\u003e\u2028","int":7,"small":1e-7,"whole":5}"#
        );
        assert_eq!(
            to_raw_json(&Value::string("<a&b>\u{2028}")).unwrap(),
            "\"<a&b>\\u2028\""
        );
    }

    #[test]
    fn pretty_json_indents_two_spaces() {
        let value = map(&[
            (
                "a",
                Value::list(vec![Value::Float(1.0), Value::list(Vec::new())]),
            ),
            ("b", Value::empty_map()),
        ]);
        assert_eq!(
            to_pretty_json(&value).unwrap(),
            "{\n  \"a\": [\n    1,\n    []\n  ],\n  \"b\": {}\n}"
        );
    }

    #[test]
    fn non_finite_floats_are_errors() {
        assert_eq!(
            to_json(&Value::Float(f64::NAN)).unwrap_err(),
            "json: unsupported value: NaN"
        );
        assert_eq!(
            to_json(&Value::list(vec![Value::Float(f64::INFINITY)])).unwrap_err(),
            "json: unsupported value: +Inf"
        );
    }

    #[test]
    fn cycles_are_errors() {
        let value = Value::empty_map();
        let Value::Map(inner) = &value else {
            unreachable!()
        };
        inner.borrow_mut().insert("self".into(), value.clone());
        assert_eq!(
            to_json(&value).unwrap_err(),
            "json: unsupported value: encountered a cycle via map[string]interface {}"
        );
        inner.borrow_mut().clear();
    }

    #[test]
    fn deep_values_are_written_or_refused() {
        let mut value = Value::Nil;
        for _ in 0..500 {
            value = Value::list(vec![value]);
        }
        assert!(to_json(&value).unwrap().contains("[[[null]]]"));
        assert!(crate::to_yaml(&value).unwrap().ends_with("- - - null\n"));
        let deeper = Value::list(vec![value]);
        assert_eq!(
            to_json(&deeper).unwrap_err(),
            "json: value nested deeper than 500 levels"
        );
    }

    #[test]
    fn unmarshals_into_interface() {
        let value = from_json(
            r#" {"a": [1, 2.5e1, -0, "x\u00e9\ud83d\ude00\n"], "a": {"b": null, "c": false}} "#,
        )
        .unwrap();
        assert_eq!(
            value,
            map(&[("a", map(&[("b", Value::Nil), ("c", Value::Bool(false))]))])
        );
        let list = from_json(r#"[1, 2.5e1, "x\u00e9\ud83d\ude00\ud800"]"#).unwrap();
        assert_eq!(
            list,
            Value::list(vec![
                Value::Float(1.0),
                Value::Float(25.0),
                Value::string("xé😀\u{FFFD}")
            ])
        );
    }

    #[test]
    fn syntax_errors_use_go_messages() {
        for (text, message) in [
            ("", "unexpected end of JSON input"),
            ("{", "unexpected end of JSON input"),
            ("x", "invalid character 'x' looking for beginning of value"),
            ("{} x", "invalid character 'x' after top-level value"),
            ("01", "invalid character '1' after top-level value"),
            (
                "{1:2}",
                "invalid character '1' looking for beginning of object key string",
            ),
            ("{\"a\" 1}", "invalid character '1' after object key"),
            (
                "{\"a\":1 2}",
                "invalid character '2' after object key:value pair",
            ),
            ("[1 2]", "invalid character '2' after array element"),
            ("tru", "unexpected end of JSON input"),
            (
                "trux",
                "invalid character 'x' in literal true (expecting 'e')",
            ),
            ("-x", "invalid character 'x' in numeric literal"),
            (
                "1.x",
                "invalid character 'x' after decimal point in numeric literal",
            ),
            (
                "1ex",
                "invalid character 'x' in exponent of numeric literal",
            ),
            ("\"\\x\"", "invalid character 'x' in string escape code"),
            ("\"\n\"", "invalid character '\\n' in string literal"),
            (
                "\"\\u12x4\"",
                "invalid character 'x' in \\u hexadecimal character escape",
            ),
            (
                "1e999",
                "json: cannot unmarshal number 1e999 into Go value of type float64",
            ),
        ] {
            assert_eq!(from_json(text).unwrap_err(), message, "{text:?}");
        }
        assert_eq!(
            from_json(&"[".repeat(20_000)).unwrap_err(),
            "exceeded max depth"
        );
    }

    #[test]
    fn arrays_are_required_by_from_json_array() {
        assert_eq!(from_json_array("null").unwrap(), Value::list(Vec::new()));
        assert_eq!(
            from_json_array("{}").unwrap_err(),
            "json: cannot unmarshal object into Go value of type []interface {}"
        );
    }
}
