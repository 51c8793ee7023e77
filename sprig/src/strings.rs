//! Sprig's string functions.

use std::collections::BTreeMap;

use gotemplate::{Functions, Runtime, Value};

use crate::args::{Outcome, fixed, go_quote, int, string, strslice, strval};
use crate::random;

pub(crate) fn register(functions: &mut Functions) {
    functions.insert("trim", |_, args| {
        unary("trim", args, |text| go_trim_space(text).to_string())
    });
    functions.insert("upper", |_, args| unary("upper", args, go_upper));
    functions.insert("lower", |_, args| unary("lower", args, go_lower));
    functions.insert("title", |_, args| unary("title", args, title));
    functions.insert("untitle", |_, args| unary("untitle", args, untitle));
    functions.insert("nospace", |_, args| unary("nospace", args, nospace));
    functions.insert("initials", |_, args| unary("initials", args, initials));
    functions.insert("swapcase", |_, args| unary("swapcase", args, swapcase));
    functions.insert("shuffle", |_, args| unary("shuffle", args, shuffle));
    functions.insert("snakecase", |_, args| {
        unary("snakecase", args, |text| words_joined(text, '_'))
    });
    functions.insert("kebabcase", |_, args| {
        unary("kebabcase", args, |text| words_joined(text, '-'))
    });
    functions.insert("camelcase", |_, args| unary("camelcase", args, pascal_case));
    functions.insert("trimAll", |_, args| {
        binary("trimAll", args, |cutset, text| trim_cutset(text, cutset))
    });
    functions.insert("trimall", |_, args| {
        binary("trimall", args, |cutset, text| trim_cutset(text, cutset))
    });
    functions.insert("trimSuffix", |_, args| {
        binary("trimSuffix", args, |suffix, text| {
            text.strip_suffix(suffix).unwrap_or(text).into()
        })
    });
    functions.insert("trimPrefix", |_, args| {
        binary("trimPrefix", args, |prefix, text| {
            text.strip_prefix(prefix).unwrap_or(text).into()
        })
    });
    functions.insert("contains", |_, args| {
        binary("contains", args, |part, text| text.contains(part).into())
    });
    functions.insert("hasPrefix", |_, args| {
        binary("hasPrefix", args, |part, text| {
            text.starts_with(part).into()
        })
    });
    functions.insert("hasSuffix", |_, args| {
        binary("hasSuffix", args, |part, text| text.ends_with(part).into())
    });
    functions.insert("splitList", |_, args| {
        binary("splitList", args, |separator, text| {
            Value::list(
                go_split(text, separator, -1)
                    .into_iter()
                    .map(Value::from)
                    .collect(),
            )
        })
    });
    functions.insert("split", |_, args| {
        binary("split", args, |separator, text| {
            indexed_map(go_split(text, separator, -1))
        })
    });
    functions.insert("splitn", splitn);
    functions.insert("replace", replace);
    functions.insert("repeat", repeat);
    functions.insert("substr", substr);
    functions.insert("trunc", trunc);
    functions.insert("abbrev", abbrev);
    functions.insert("abbrevboth", abbrevboth);
    functions.insert("wrap", wrap);
    functions.insert("wrapWith", wrap_with);
    functions.insert("indent", |_, args| indent_with("indent", args, ""));
    functions.insert("nindent", |_, args| indent_with("nindent", args, "\n"));
    functions.insert("plural", plural);
    functions.insert("quote", |_, args| {
        Ok(joined_non_nil(args, |value| go_quote(&strval(value))))
    });
    functions.insert("squote", |_, args| {
        Ok(joined_non_nil(args, |value| {
            format!("'{}'", value.to_go_string())
        }))
    });
    functions.insert("cat", |_, args| {
        Ok(joined_non_nil(args, Value::to_go_string))
    });
    functions.insert("toString", |_, args| {
        let [value] = fixed("toString", args)?;
        Ok(strval(value).into())
    });
    functions.insert("toStrings", |_, args| {
        let [value] = fixed("toStrings", args)?;
        Ok(Value::list(
            strslice(value).into_iter().map(Value::from).collect(),
        ))
    });
    functions.insert("join", |_, args| {
        let [separator, items] = fixed("join", args)?;
        Ok(strslice(items).join(string(separator)?).into())
    });
    functions.insert("randAlphaNum", |_, args| {
        random_string("randAlphaNum", args, ALPHANUMERIC)
    });
    functions.insert("randAlpha", |_, args| {
        random_string("randAlpha", args, &ALPHANUMERIC[10..])
    });
    functions.insert("randNumeric", |_, args| {
        random_string("randNumeric", args, &ALPHANUMERIC[..10])
    });
    functions.insert("randAscii", |_, args| {
        random_string("randAscii", args, PRINTABLE_ASCII)
    });
}

const ALPHANUMERIC: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const PRINTABLE_ASCII: &str = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

/// A function of one `string` parameter returning a string.
fn unary(name: &str, args: &[Value], operation: impl FnOnce(&str) -> String) -> Outcome {
    let [text] = fixed(name, args)?;
    Ok(operation(string(text)?).into())
}

/// A function of two `string` parameters.
fn binary(name: &str, args: &[Value], operation: impl FnOnce(&str, &str) -> Value) -> Outcome {
    let [first, second] = fixed(name, args)?;
    Ok(operation(string(first)?, string(second)?))
}

/// Go's `unicode.IsSpace`.
pub(crate) fn go_is_space(character: char) -> bool {
    character.is_whitespace()
}

/// Go's `strings.TrimSpace`.
pub(crate) fn go_trim_space(text: &str) -> &str {
    text.trim_matches(go_is_space)
}

fn simple_case(character: char, upper: bool) -> char {
    let mut mapped = if upper {
        character.to_uppercase().collect::<Vec<_>>()
    } else {
        character.to_lowercase().collect::<Vec<_>>()
    };
    if mapped.len() == 1 {
        mapped.remove(0)
    } else {
        character
    }
}

/// Go's `strings.ToUpper` (one-to-one rune mappings only, as `unicode.ToUpper`).
pub(crate) fn go_upper(text: &str) -> String {
    text.chars()
        .map(|character| simple_case(character, true))
        .collect()
}

/// Go's `strings.ToLower`.
pub(crate) fn go_lower(text: &str) -> String {
    text.chars()
        .map(|character| simple_case(character, false))
        .collect()
}

/// Go's `strings.Title`: the first letter of each word upper-cased.
fn title(text: &str) -> String {
    let mut previous = ' ';
    text.chars()
        .map(|character| {
            let separated = if previous.is_ascii() {
                !(previous.is_ascii_alphanumeric() || previous == '_')
            } else {
                !(previous.is_alphabetic() || previous.is_numeric()) && go_is_space(previous)
            };
            previous = character;
            if separated {
                simple_case(character, true)
            } else {
                character
            }
        })
        .collect()
}

/// goutils' `Uncapitalize`: the first letter of each space-separated word lower-cased.
fn untitle(text: &str) -> String {
    let mut at_word_start = true;
    text.chars()
        .map(|character| {
            if go_is_space(character) {
                at_word_start = true;
                character
            } else if at_word_start {
                at_word_start = false;
                simple_case(character, false)
            } else {
                character
            }
        })
        .collect()
}

/// goutils' byte-wise `DeleteWhiteSpace` (each kept byte is re-encoded as a rune, as in Go).
fn nospace(text: &str) -> String {
    if !text.bytes().any(|byte| go_is_space(char::from(byte))) {
        return text.to_string();
    }
    text.bytes()
        .map(char::from)
        .filter(|character| !go_is_space(*character))
        .collect()
}

/// goutils' byte-wise `Initials`.
fn initials(text: &str) -> String {
    let mut after_gap = true;
    let mut out = String::new();
    for character in text.bytes().map(char::from) {
        if go_is_space(character) {
            after_gap = true;
        } else if after_gap {
            out.push(character);
            after_gap = false;
        }
    }
    out
}

/// goutils' `SwapCase`: upper to lower, lower to upper (title case after whitespace).
fn swapcase(text: &str) -> String {
    let mut after_space = true;
    text.chars()
        .map(|character| {
            if character.is_uppercase() {
                after_space = false;
                simple_case(character, false)
            } else if character.is_lowercase() {
                after_space = false;
                simple_case(character, true)
            } else {
                after_space = go_is_space(character);
                character
            }
        })
        .collect()
}

/// xstrings' `Shuffle` (a Fisher-Yates shuffle of the runes) over the deterministic source.
fn shuffle(text: &str) -> String {
    let mut characters: Vec<char> = text.chars().collect();
    for index in (1..characters.len()).rev() {
        let other = random::below(index + 1);
        characters.swap(index, other);
    }
    characters.into_iter().collect()
}

fn trim_cutset(text: &str, cutset: &str) -> Value {
    text.trim_matches(|character| cutset.contains(character))
        .into()
}

/// xstrings' word kinds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Word {
    End,
    Number,
    Upper,
    Alphabet,
    Connector,
    Punct,
    Other,
}

fn is_connector(character: char) -> bool {
    character == '-' || character == '_' || go_is_space(character)
}

fn is_punct(character: char) -> bool {
    if character.is_ascii() {
        return "!\"#%&'()*,-./:;?@[\\]_{}".contains(character);
    }
    matches!(u32::from(character), 0xa1 | 0xa7 | 0xab | 0xb6 | 0xb7 | 0xbb | 0xbf | 0x2010..=0x2027 | 0x2030..=0x205e | 0x3001..=0x3003 | 0x3008..=0x3011)
}

fn is_alphabet(character: char) -> bool {
    character.is_alphabetic()
        && !matches!(u32::from(character), 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xf900..=0xfaff | 0x20000..=0x2fa1f)
}

fn span(text: &str, keep: impl Fn(char) -> bool) -> usize {
    text.char_indices()
        .find(|(_, character)| !keep(*character))
        .map_or(text.len(), |(index, _)| index)
}

/// xstrings' `nextWord`: the kind and text of the next word, and the rest.
fn next_word(text: &str) -> (Word, &str, &str) {
    let Some(first) = text.chars().next() else {
        return (Word::End, "", "");
    };
    let start = first.len_utf8();
    let rest = &text[start..];
    let (kind, length) = if is_connector(first) {
        (Word::Connector, span(rest, is_connector))
    } else if is_punct(first) {
        (Word::Punct, span(rest, is_punct))
    } else if first.is_uppercase() {
        let length = match rest.chars().next() {
            Some(next) if next.is_uppercase() => {
                let run = span(rest, char::is_uppercase);
                match rest[run..].chars().next() {
                    Some(after) if is_alphabet(after) => rest[..run]
                        .char_indices()
                        .last()
                        .map_or(0, |(index, _)| index),
                    _ => run,
                }
            }
            Some(next) if is_alphabet(next) => span(rest, |c| is_alphabet(c) && !c.is_uppercase()),
            _ => 0,
        };
        (Word::Upper, length)
    } else if is_alphabet(first) {
        (
            Word::Alphabet,
            span(rest, |c| is_alphabet(c) && !c.is_uppercase()),
        )
    } else if first.is_numeric() {
        (Word::Number, span(rest, char::is_numeric))
    } else {
        (
            Word::Other,
            span(rest, |c| {
                !(is_connector(c) || is_alphabet(c) || c.is_numeric() || is_punct(c))
            }),
        )
    };
    let end = start + length;
    (kind, &text[..end], &text[end..])
}

fn push_lowered(out: &mut String, kind: Word, word: &str, connector: char) {
    if kind != Word::Upper && kind != Word::Connector {
        out.push_str(word);
        return;
    }
    for character in word.chars() {
        if is_connector(character) {
            out.push(connector);
        } else {
            out.push(simple_case(character, false));
        }
    }
}

/// xstrings' `ToSnakeCase`/`ToKebabCase`: words lower-cased and joined by `connector`.
fn words_joined(text: &str, connector: char) -> String {
    let mut out = String::new();
    let (mut kind, mut word, mut remaining) = next_word(text);
    let separates = |kind: Word| !matches!(kind, Word::End | Word::Punct | Word::Connector);
    while !remaining.is_empty() {
        if kind != Word::Connector {
            push_lowered(&mut out, kind, word, connector);
        }
        let (previous, last) = (kind, word);
        (kind, word, remaining) = next_word(remaining);
        match previous {
            Word::Number => {
                while matches!(kind, Word::Alphabet | Word::Number) {
                    push_lowered(&mut out, kind, word, connector);
                    (kind, word, remaining) = next_word(remaining);
                }
                if separates(kind) {
                    out.push(connector);
                }
            }
            Word::Connector => push_lowered(&mut out, previous, last, connector),
            Word::Punct => {}
            _ if kind != Word::Number => {
                if kind != Word::Connector && kind != Word::Punct {
                    out.push(connector);
                }
            }
            _ if remaining.is_empty() => {}
            _ => {
                let number = word;
                (kind, word, remaining) = next_word(remaining);
                if kind == Word::Alphabet {
                    out.push(connector);
                    push_lowered(&mut out, Word::Number, number, connector);
                    while matches!(kind, Word::Alphabet | Word::Number) {
                        push_lowered(&mut out, kind, word, connector);
                        (kind, word, remaining) = next_word(remaining);
                    }
                    if separates(kind) {
                        out.push(connector);
                    }
                } else {
                    push_lowered(&mut out, Word::Number, number, connector);
                    if kind != Word::Connector && kind != Word::Punct {
                        out.push(connector);
                    }
                }
            }
        }
    }
    push_lowered(&mut out, kind, word, connector);
    out
}

/// xstrings' upper camel case: connectors dropped, the rune after one upper-cased.
fn pascal_case(text: &str) -> String {
    let mut out = String::new();
    let mut characters = text.chars();
    let mut current = None;
    for character in characters.by_ref() {
        if !is_connector(character) {
            current = Some(simple_case(character, true));
            break;
        }
        out.push(character);
        current = Some(character);
    }
    let Some(mut current) = current else {
        return out;
    };
    for next in characters {
        let previous = current;
        current = next;
        if is_connector(current) && is_connector(previous) {
            out.push(previous);
        } else if is_connector(previous) {
            current = simple_case(current, true);
        } else {
            out.push(previous);
        }
    }
    out.push(current);
    out
}

/// Go's `strings.SplitN` (`limit` < 0: no limit; 0: nothing).
pub(crate) fn go_split(text: &str, separator: &str, limit: i64) -> Vec<String> {
    if limit == 0 {
        return Vec::new();
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if separator.is_empty() {
        let characters: Vec<&str> = text
            .char_indices()
            .map(|(index, c)| &text[index..index + c.len_utf8()])
            .collect();
        if characters.len() <= limit {
            return characters.into_iter().map(str::to_string).collect();
        }
        let split_at: usize = characters[..limit - 1].iter().map(|part| part.len()).sum();
        let mut parts: Vec<String> = characters[..limit - 1]
            .iter()
            .map(|part| (*part).to_string())
            .collect();
        parts.push(text[split_at..].to_string());
        return parts;
    }
    text.splitn(limit, separator).map(str::to_string).collect()
}

fn indexed_map(parts: Vec<String>) -> Value {
    Value::map(
        parts
            .into_iter()
            .enumerate()
            .map(|(index, part)| (format!("_{index}"), Value::from(part)))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn splitn(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [separator, limit, text] = fixed("splitn", args)?;
    Ok(indexed_map(go_split(
        string(text)?,
        string(separator)?,
        int(limit)?,
    )))
}

fn replace(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [old, new, text] = fixed("replace", args)?;
    Ok(go_replace(string(text)?, string(old)?, string(new)?).into())
}

/// Go's `strings.Replace(text, old, new, -1)`: an empty `old` matches between every rune.
fn go_replace(text: &str, old: &str, new: &str) -> String {
    if !old.is_empty() {
        return text.replace(old, new);
    }
    let mut out = String::from(new);
    for character in text.chars() {
        out.push(character);
        out.push_str(new);
    }
    out
}

/// Go's `strings.Repeat`, which panics on a negative count.
fn go_repeat(text: &str, count: i64) -> Result<String, String> {
    let count = usize::try_from(count).map_err(|_| "strings: negative Repeat count".to_string())?;
    if text
        .len()
        .checked_mul(count)
        .is_none_or(|size| size > 1 << 30)
    {
        return Err("strings: Repeat output length overflow".into());
    }
    Ok(text.repeat(count))
}

fn repeat(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [count, text] = fixed("repeat", args)?;
    Ok(go_repeat(string(text)?, int(count)?)?.into())
}

/// Go's `text[start:end]` on bytes, with Go's panic for bounds out of range.
fn byte_slice(text: &str, start: i64, end: Option<i64>) -> Result<String, String> {
    let length = i64::try_from(text.len()).unwrap_or(i64::MAX);
    let end_value = end.unwrap_or(length);
    if end_value < 0 || end_value > length {
        return Err(format!(
            "runtime error: slice bounds out of range [:{end_value}] with length {length}"
        ));
    }
    if start < 0 || start > end_value {
        return Err(format!(
            "runtime error: slice bounds out of range [{start}:{end_value}]"
        ));
    }
    let (start, end) = (
        usize::try_from(start).unwrap_or(0),
        usize::try_from(end_value).unwrap_or(0),
    );
    Ok(String::from_utf8_lossy(&text.as_bytes()[start..end]).into_owned())
}

fn substr(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [start, end, text] = fixed("substr", args)?;
    let (start, end, text) = (int(start)?, int(end)?, string(text)?);
    let length = i64::try_from(text.len()).unwrap_or(i64::MAX);
    let result = if start < 0 {
        byte_slice(text, 0, Some(end))
    } else if end < 0 || end > length {
        byte_slice(text, start, None)
    } else {
        byte_slice(text, start, Some(end))
    };
    Ok(result?.into())
}

fn trunc(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [count, text] = fixed("trunc", args)?;
    let (count, text) = (int(count)?, string(text)?);
    let length = i64::try_from(text.len()).unwrap_or(i64::MAX);
    let result = if count < 0 && length + count > 0 {
        byte_slice(text, length + count, None)?
    } else if count >= 0 && length > count {
        byte_slice(text, 0, Some(count))?
    } else {
        text.to_string()
    };
    Ok(result.into())
}

/// goutils' `AbbreviateFull` on bytes; `None` where goutils reports an error.
fn abbreviate(text: &[u8], offset: i64, width: i64) -> Option<Vec<u8>> {
    const MARKER: &[u8] = b"...";
    if text.is_empty() {
        return Some(Vec::new());
    }
    if width < 4 {
        return None;
    }
    let length = i64::try_from(text.len()).ok()?;
    if length <= width {
        return Some(text.to_vec());
    }
    let mut offset = offset.min(length);
    if length - offset < width - 3 {
        offset = length - (width - 3);
    }
    let at = |index: i64| usize::try_from(index).unwrap_or(0);
    if offset <= 4 {
        return Some([&text[..at(width - 3)], MARKER].concat());
    }
    if width < 7 {
        return None;
    }
    if offset + width - 3 < length {
        let inner = abbreviate(&text[at(offset)..], 0, width - 3)?;
        return Some([MARKER, &inner].concat());
    }
    Some([MARKER, &text[at(length - (width - 3))..]].concat())
}

fn abbrev(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [width, text] = fixed("abbrev", args)?;
    let (width, text) = (int(width)?, string(text)?);
    if width < 4 {
        return Ok(text.into());
    }
    let result = abbreviate(text.as_bytes(), 0, width).unwrap_or_default();
    Ok(String::from_utf8_lossy(&result).into_owned().into())
}

fn abbrevboth(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [left, right, text] = fixed("abbrevboth", args)?;
    let (left, right, text) = (int(left)?, int(right)?, string(text)?);
    if right < 4 || left > 0 && right < 7 {
        return Ok(text.into());
    }
    let result = abbreviate(text.as_bytes(), left, right).unwrap_or_default();
    Ok(String::from_utf8_lossy(&result).into_owned().into())
}

/// goutils' `WrapCustom` on bytes.
fn wrap_custom(text: &str, width: i64, newline: &str, wrap_long_words: bool) -> String {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return String::new();
    }
    let newline = if newline.is_empty() {
        b"\n".as_slice()
    } else {
        newline.as_bytes()
    };
    let width = usize::try_from(width.max(1)).unwrap_or(1);
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut offset = 0;
    while bytes.len() - offset > width {
        if bytes[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = width + offset + 1;
        if let Some(space) = bytes[offset..end].iter().rposition(|byte| *byte == b' ') {
            out.extend_from_slice(&bytes[offset..offset + space]);
            out.extend_from_slice(newline);
            offset += space + 1;
        } else if wrap_long_words {
            out.extend_from_slice(&bytes[offset..offset + width]);
            out.extend_from_slice(newline);
            offset += width;
        } else {
            let end = width + offset;
            match bytes[end..].iter().position(|byte| *byte == b' ') {
                None => {
                    out.extend_from_slice(&bytes[offset..]);
                    offset = bytes.len();
                }
                Some(index) => {
                    out.extend_from_slice(&bytes[offset..end + index]);
                    out.extend_from_slice(newline);
                    offset = end + index + 1;
                }
            }
        }
    }
    out.extend_from_slice(&bytes[offset..]);
    String::from_utf8_lossy(&out).into_owned()
}

fn wrap(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [width, text] = fixed("wrap", args)?;
    Ok(wrap_custom(string(text)?, int(width)?, "", false).into())
}

fn wrap_with(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [width, separator, text] = fixed("wrapWith", args)?;
    Ok(wrap_custom(string(text)?, int(width)?, string(separator)?, true).into())
}

fn indent_with(name: &str, args: &[Value], before: &str) -> Outcome {
    let [spaces, text] = fixed(name, args)?;
    let pad = go_repeat(" ", int(spaces)?)?;
    let text = string(text)?;
    Ok(format!("{before}{pad}{}", text.replace('\n', &format!("\n{pad}"))).into())
}

fn plural(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [one, many, count] = fixed("plural", args)?;
    let (one, many) = (string(one)?, string(many)?);
    Ok(if int(count)? == 1 { one } else { many }.into())
}

fn joined_non_nil(args: &[Value], render: impl Fn(&Value) -> String) -> Value {
    let parts: Vec<String> = args
        .iter()
        .filter(|value| !value.is_nil())
        .map(render)
        .collect();
    parts.join(" ").into()
}

/// goutils' `CryptoRandom` over `alphabet`, with the deterministic source; a negative count
/// is goutils' error, which Sprig turns into "".
fn random_string(name: &str, args: &[Value], alphabet: &str) -> Outcome {
    let [count] = fixed(name, args)?;
    let count = usize::try_from(int(count)?).unwrap_or(0);
    let alphabet = alphabet.as_bytes();
    Ok((0..count)
        .map(|_| char::from(alphabet[random::below(alphabet.len())]))
        .collect::<String>()
        .into())
}

/// `atoi`'s conversion: `strconv.Atoi`, 0 on error.
pub(crate) fn atoi(text: &str) -> i64 {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return 0;
    }
    text.parse().unwrap_or(0)
}
