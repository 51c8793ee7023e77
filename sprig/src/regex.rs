//! Sprig's regular expression functions over Go's RE2 syntax.
//!
//! Patterns are translated so that `\d`, `\w`, `\s` and `\b` stay ASCII-only as in Go.

use gotemplate::{Functions, Value};
use regex::Regex;

use crate::args::{Outcome, fixed, int, string};
use crate::lists::register_as;

pub(crate) fn register(functions: &mut Functions) {
    register_as!(functions, regex_match, "regexMatch", "mustRegexMatch");
    register_as!(functions, find_all, "regexFindAll", "mustRegexFindAll");
    register_as!(functions, find, "regexFind", "mustRegexFind");
    register_as!(
        functions,
        replace_all,
        "regexReplaceAll",
        "mustRegexReplaceAll"
    );
    register_as!(
        functions,
        replace_all_literal,
        "regexReplaceAllLiteral",
        "mustRegexReplaceAllLiteral"
    );
    register_as!(functions, split, "regexSplit", "mustRegexSplit");
    functions.insert("regexQuoteMeta", |_, args| {
        let [text] = fixed("regexQuoteMeta", args)?;
        Ok(quote_meta(string(text)?).into())
    });
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        if "\\.+*?()|[]{}^$".contains(character) {
            out.push('\\');
        }
        out.push(character);
    }
    out
}

/// Rewrites Go's ASCII-only Perl classes and word boundaries for Rust's Unicode engine.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut characters = pattern.chars();
    let mut in_class = false;
    while let Some(character) = characters.next() {
        match character {
            '\\' => match characters.next() {
                Some('d') => out.push_str("[0-9]"),
                Some('D') => out.push_str("[^0-9]"),
                Some('w') => out.push_str("[0-9A-Za-z_]"),
                Some('W') => out.push_str("[^0-9A-Za-z_]"),
                Some('s') => out.push_str("[\\t\\n\\f\\r ]"),
                Some('S') => out.push_str("[^\\t\\n\\f\\r ]"),
                Some('b') if !in_class => out.push_str("(?-u:\\b)"),
                Some('B') if !in_class => out.push_str("(?-u:\\B)"),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                let mut lookahead = characters.clone();
                if lookahead.next() == Some('^') {
                    out.push('^');
                    characters.next();
                    lookahead = characters.clone();
                }
                if lookahead.next() == Some(']') {
                    out.push_str("\\]");
                    characters.next();
                }
            }
            '[' if characters.clone().next() == Some(':') => {
                out.push('[');
                for inner in characters.by_ref() {
                    out.push(inner);
                    if inner == ']' {
                        break;
                    }
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '[' => out.push_str("\\["),
            other => out.push(other),
        }
    }
    out
}

/// Compiles a Go pattern for the function `name`: the `must` variants fail with Go's
/// `regexp.Compile` error, the others with `regexp.MustCompile`'s panic.
fn compile(name: &str, pattern: &str) -> Result<Regex, String> {
    compile_go(pattern).map_err(|error| {
        if name.starts_with("must") {
            error
        } else {
            format!(
                "regexp: Compile({}): {error}",
                crate::args::go_quote_backquoted(pattern)
            )
        }
    })
}

/// Compiles a Go pattern; the error reads like Go's `regexp.Compile` error.
fn compile_go(pattern: &str) -> Result<Regex, String> {
    Regex::new(&translate(pattern)).map_err(|error| {
        let text = error.to_string();
        let code = [
            ("unclosed group", "missing closing )"),
            ("unopened group", "unexpected )"),
            ("unclosed character class", "missing closing ]"),
            (
                "repetition operator missing expression",
                "missing argument to repetition operator",
            ),
            ("invalid escape", "invalid escape sequence"),
            (
                "invalid character class range",
                "invalid character class range",
            ),
        ]
        .iter()
        .find(|(rust, _)| text.contains(rust))
        .map_or("invalid syntax", |(_, go)| go);
        format!("error parsing regexp: {code}: `{pattern}`")
    })
}

fn two(name: &str, args: &[Value]) -> Result<(Regex, String), String> {
    let [pattern, text] = fixed(name, args)?;
    let (pattern, text) = (string(pattern)?, string(text)?);
    Ok((compile(name, pattern)?, text.to_string()))
}

fn strings(items: impl Iterator<Item = impl Into<Value>>) -> Value {
    Value::list(items.map(Into::into).collect())
}

/// Go's `n` argument: negative means all.
fn limit(count: i64) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX)
}

fn regex_match(name: &str, args: &[Value]) -> Outcome {
    if name == "regexMatch" {
        let [pattern, text] = fixed(name, args)?;
        let (pattern, text) = (string(pattern)?, string(text)?);
        return Ok(compile_go(pattern)
            .is_ok_and(|regex| regex.is_match(text))
            .into());
    }
    let (regex, text) = two(name, args)?;
    Ok(regex.is_match(&text).into())
}

fn find(name: &str, args: &[Value]) -> Outcome {
    let (regex, text) = two(name, args)?;
    Ok(regex.find(&text).map_or("", |found| found.as_str()).into())
}

fn find_all(name: &str, args: &[Value]) -> Outcome {
    let [pattern, text, count] = fixed(name, args)?;
    let (pattern, text, count) = (string(pattern)?, string(text)?, int(count)?);
    let regex = compile(name, pattern)?;
    Ok(strings(
        regex
            .find_iter(text)
            .take(limit(count))
            .map(|found| found.as_str()),
    ))
}

fn replacement(name: &str, args: &[Value]) -> Result<(Regex, String, String), String> {
    let [pattern, text, replacement] = fixed(name, args)?;
    let (pattern, text, replacement) = (string(pattern)?, string(text)?, string(replacement)?);
    Ok((
        compile(name, pattern)?,
        text.to_string(),
        replacement.to_string(),
    ))
}

fn replace_all(name: &str, args: &[Value]) -> Outcome {
    let (regex, text, replacement) = replacement(name, args)?;
    Ok(regex
        .replace_all(&text, replacement.as_str())
        .into_owned()
        .into())
}

fn replace_all_literal(name: &str, args: &[Value]) -> Outcome {
    let (regex, text, replacement) = replacement(name, args)?;
    Ok(regex
        .replace_all(&text, regex::NoExpand(&replacement))
        .into_owned()
        .into())
}

/// Go's `Regexp.Split`.
fn split(name: &str, args: &[Value]) -> Outcome {
    let [pattern, text, count] = fixed(name, args)?;
    let (pattern, text, count) = (string(pattern)?, string(text)?, int(count)?);
    let regex = compile(name, pattern)?;
    if count == 0 {
        return Ok(Value::list(Vec::new()));
    }
    if !pattern.is_empty() && text.is_empty() {
        return Ok(strings(std::iter::once("")));
    }
    let mut parts = Vec::new();
    let (mut begin, mut end) = (0, 0);
    for found in regex.find_iter(text).take(limit(count)) {
        if count > 0 && parts.len() == limit(count) - 1 {
            break;
        }
        end = found.start();
        if found.end() != 0 {
            parts.push(&text[begin..end]);
        }
        begin = found.end();
    }
    if end != text.len() {
        parts.push(&text[begin..]);
    }
    Ok(strings(parts.into_iter()))
}
