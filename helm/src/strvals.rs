//! Helm's `--set` syntax (`a.b=c,list={x,y},items[0].name=z,dots\.in\.key=v`), parsed into a
//! values map the way Helm's `strvals` package does, including its typing rules.

use std::collections::BTreeMap;

use gotemplate::Value;

/// Parses one `--set` (or `--set-string` when `as_strings`) expression into `values`,
/// later keys overriding earlier ones.
pub fn parse_into(
    expression: &str,
    values: &mut BTreeMap<String, Value>,
    as_strings: bool,
) -> Result<(), String> {
    let mut parser = Parser {
        text: expression.chars().collect(),
        position: 0,
        as_strings,
        expression,
        depth: 0,
    };
    parser.parse_map(values)
}

struct Parser<'a> {
    text: Vec<char>,
    position: usize,
    as_strings: bool,
    expression: &'a str,
    /// How deep the key being parsed is nested.
    depth: usize,
}

/// Deepest nesting of keys and list indexes in one expression (Helm's `MaxNestedNameLevel`).
const MAX_NESTING: usize = 30;

/// What ended a run of key or value characters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    Char(char),
    End,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> String {
        format!("failed parsing --set data `{}`: {message}", self.expression)
    }

    /// Reads characters up to one of `stops` (unescaped), returning them and what stopped.
    fn read_until(&mut self, stops: &[char]) -> (String, Stop) {
        let mut out = String::new();
        while let Some(&c) = self.text.get(self.position) {
            self.position += 1;
            if c == '\\' {
                match self.text.get(self.position) {
                    Some(&next) => {
                        out.push(next);
                        self.position += 1;
                    }
                    None => out.push('\\'),
                }
                continue;
            }
            if stops.contains(&c) {
                return (out, Stop::Char(c));
            }
            out.push(c);
        }
        (out, Stop::End)
    }

    fn parse_map(&mut self, values: &mut BTreeMap<String, Value>) -> Result<(), String> {
        while self.position < self.text.len() {
            self.parse_key_into(values)?;
        }
        Ok(())
    }

    /// Runs `parse` one nesting level deeper, refusing past [`MAX_NESTING`].
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<T, String> {
        if self.depth >= MAX_NESTING {
            return Err(self.error(&format!(
                "value name nested level is greater than maximum supported nested level of {MAX_NESTING}"
            )));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    /// Parses `key...=value` (one comma-separated item) into `map`.
    fn parse_key_into(&mut self, map: &mut BTreeMap<String, Value>) -> Result<(), String> {
        let (key, stop) = self.read_until(&['=', '[', ',', '.']);
        match stop {
            Stop::End => {
                if key.is_empty() {
                    return Ok(());
                }
                Err(self.error(&format!("key \"{key}\" has no value")))
            }
            Stop::Char(',') => {
                Err(self.error(&format!("key \"{key}\" has no value (cannot end with ,)")))
            }
            Stop::Char('=') => {
                if key.is_empty() {
                    return Err(self.error("key has no name"));
                }
                if self.text.get(self.position) == Some(&'{') {
                    self.position += 1;
                    let list = self.parse_list_value()?;
                    map.insert(key, Value::list(list));
                    self.skip_comma();
                    return Ok(());
                }
                let (text, _) = self.read_until(&[',']);
                let value = self.typed(&text);
                map.insert(key, value);
                Ok(())
            }
            Stop::Char('.') => {
                if key.is_empty() {
                    return Err(self.error("key has no name before ."));
                }
                let mut inner = match map.get(&key) {
                    Some(Value::Map(existing)) => existing.borrow().clone(),
                    _ => BTreeMap::new(),
                };
                self.nested(|parser| parser.parse_key_into(&mut inner))?;
                map.insert(key, Value::map(inner));
                Ok(())
            }
            Stop::Char('[') => {
                let index = self.read_index()?;
                let mut list = match map.get(&key) {
                    Some(Value::List(existing)) => existing.as_ref().clone(),
                    _ => Vec::new(),
                };
                self.nested(|parser| parser.parse_list_item(&mut list, index))?;
                map.insert(key, Value::list(list));
                Ok(())
            }
            Stop::Char(other) => Err(self.error(&format!("unexpected {other:?}"))),
        }
    }

    fn read_index(&mut self) -> Result<usize, String> {
        let (digits, stop) = self.read_until(&[']']);
        if stop == Stop::End {
            return Err(self.error("missing ] after a list index"));
        }
        let index: usize = digits
            .trim()
            .parse()
            .map_err(|_| self.error(&format!("list index \"{digits}\" is not a number")))?;
        if index > 65_536 {
            return Err(self.error(&format!("list index {index} is too large (at most 65536)")));
        }
        Ok(index)
    }

    /// After `name[index]`: `=value`, `.key...`, or `[index]...`.
    fn parse_list_item(&mut self, list: &mut Vec<Value>, index: usize) -> Result<(), String> {
        while list.len() <= index {
            list.push(Value::Nil);
        }
        match self.text.get(self.position).copied() {
            Some('=') => {
                self.position += 1;
                if self.text.get(self.position) == Some(&'{') {
                    self.position += 1;
                    let items = self.parse_list_value()?;
                    list[index] = Value::list(items);
                    self.skip_comma();
                    return Ok(());
                }
                let (text, _) = self.read_until(&[',']);
                list[index] = self.typed(&text);
                Ok(())
            }
            Some('.') => {
                self.position += 1;
                let mut inner = match &list[index] {
                    Value::Map(existing) => existing.borrow().clone(),
                    _ => BTreeMap::new(),
                };
                self.nested(|parser| parser.parse_key_into(&mut inner))?;
                list[index] = Value::map(inner);
                Ok(())
            }
            Some('[') => {
                self.position += 1;
                let inner_index = self.read_index()?;
                let mut inner = match &list[index] {
                    Value::List(existing) => existing.as_ref().clone(),
                    _ => Vec::new(),
                };
                self.nested(|parser| parser.parse_list_item(&mut inner, inner_index))?;
                list[index] = Value::list(inner);
                Ok(())
            }
            _ => Err(self.error("a list index must be followed by =, . or [")),
        }
    }

    /// After `={`: comma-separated values up to `}`.
    fn parse_list_value(&mut self) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        loop {
            let (text, stop) = self.read_until(&[',', '}']);
            match stop {
                Stop::Char(',') => items.push(self.typed(&text)),
                Stop::Char('}') => {
                    items.push(self.typed(&text));
                    return Ok(items);
                }
                _ => return Err(self.error("list value is missing its closing }")),
            }
        }
    }

    fn skip_comma(&mut self) {
        if self.text.get(self.position) == Some(&',') {
            self.position += 1;
        }
    }

    fn typed(&self, text: &str) -> Value {
        if self.as_strings {
            return Value::string(text);
        }
        typed_value(text)
    }
}

/// Helm's typing of a `--set` value: `true`/`false` (any case) are bools, `null` is nil, decimal
/// integers without a leading zero are `int64`, everything else (floats too) stays a string.
pub fn typed_value(text: &str) -> Value {
    if text.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if text.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if text.eq_ignore_ascii_case("null") {
        return Value::Nil;
    }
    if text == "0" {
        return Value::int64(0);
    }
    if !text.starts_with('0')
        && let Ok(number) = text.parse::<i64>()
    {
        return Value::int64(number);
    }
    Value::string(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(expression: &str) -> String {
        let mut values = BTreeMap::new();
        parse_into(expression, &mut values, false).unwrap();
        Value::map(values).to_go_string()
    }

    #[test]
    fn keys_nest_on_dots_and_escapes_keep_dots() {
        assert_eq!(parse("a.b=c"), "map[a:map[b:c]]");
        assert_eq!(parse("a.b=c,a.d=e"), "map[a:map[b:c d:e]]");
        assert_eq!(parse(r"a\.b=c"), "map[a.b:c]");
        assert_eq!(parse(r"a=x\,y"), "map[a:x,y]");
    }

    #[test]
    fn values_are_typed_as_helm_does() {
        let mut values = BTreeMap::new();
        parse_into(
            "i=12,z=0,lead=012,f=1.5,t=TRUE,n=null,s=abc",
            &mut values,
            false,
        )
        .unwrap();
        assert_eq!(values["i"].type_name(), "int64");
        assert_eq!(values["z"].type_name(), "int64");
        assert_eq!(values["lead"].type_name(), "string");
        assert_eq!(values["f"].type_name(), "string");
        assert_eq!(values["t"], Value::Bool(true));
        assert!(values["n"].is_nil());
        let mut strings = BTreeMap::new();
        parse_into("i=12,t=true", &mut strings, true).unwrap();
        assert_eq!(strings["i"].type_name(), "string");
        assert_eq!(strings["t"].type_name(), "string");
    }

    #[test]
    fn lists_and_indexes() {
        assert_eq!(parse("a={x,y},b=c"), "map[a:[x y] b:c]");
        let mut values = BTreeMap::new();
        parse_into("a={}", &mut values, false).unwrap();
        assert_eq!(
            values["a"],
            Value::list(vec![Value::from("")]),
            "Helm reads {{}} as one empty string"
        );
        assert_eq!(parse("a[1]=x"), "map[a:[<nil> x]]");
        assert_eq!(parse("a[0].b=x,a[0].c=y"), "map[a:[map[b:x c:y]]]");
        assert_eq!(parse("a[0][1]=x"), "map[a:[[<nil> x]]]");
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let mut values = BTreeMap::new();
        let deep = format!("{}=1", "a.".repeat(100_000));
        for bad in [
            "a",
            "a.b",
            "=x",
            "a[x]=1",
            "a[1",
            "a={x",
            "a[99999999]=1",
            &deep,
        ] {
            let error = parse_into(bad, &mut values, false).unwrap_err();
            assert!(error.contains(bad), "{}", &error[..error.len().min(200)]);
        }
    }
}
