//! The parts of Go's `strconv` the template engine needs: literal parsing (`ParseInt`,
//! `ParseUint` and `ParseFloat` with Go's syntax, `Unquote`, `UnquoteChar`) and quoting
//! (`Quote`, `QuoteToASCII`, `QuoteRune`, `CanBackquote`).

#![allow(
    // Go's strconv works on bytes, runes and 64-bit bit patterns; the casts mirror its conversions.
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::fmt::Write as _;

/// Go's `strconv.ErrSyntax` text.
pub(crate) const INVALID_SYNTAX: &str = "invalid syntax";

/// Why a number did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumError {
    /// Not a number in Go's syntax.
    Syntax,
    /// A number, but out of range for the type.
    Range,
}

fn lower(byte: u8) -> u8 {
    byte | 0x20
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscore_ok(text: &str) -> bool {
    let mut bytes = text.as_bytes();
    let mut saw = b'^';
    let mut index = 0;
    if let Some(&first) = bytes.first()
        && (first == b'-' || first == b'+')
    {
        bytes = &bytes[1..];
    }
    let mut hex = false;
    if bytes.len() >= 2 && bytes[0] == b'0' && matches!(lower(bytes[1]), b'b' | b'o' | b'x') {
        index = 2;
        saw = b'0';
        hex = lower(bytes[1]) == b'x';
    }
    while index < bytes.len() {
        let byte = bytes[index];
        index += 1;
        if byte.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&lower(byte))) {
            saw = b'0';
            continue;
        }
        if byte == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// Go's `strconv.ParseUint(text, 0, 64)`.
pub(crate) fn parse_uint(text: &str) -> Result<u64, NumError> {
    if text.is_empty() {
        return Err(NumError::Syntax);
    }
    let bytes = text.as_bytes();
    let mut base: u64 = 10;
    let mut digits = bytes;
    if bytes[0] == b'0' {
        if bytes.len() >= 3 && lower(bytes[1]) == b'b' {
            base = 2;
            digits = &bytes[2..];
        } else if bytes.len() >= 3 && lower(bytes[1]) == b'o' {
            base = 8;
            digits = &bytes[2..];
        } else if bytes.len() >= 3 && lower(bytes[1]) == b'x' {
            base = 16;
            digits = &bytes[2..];
        } else {
            base = 8;
            digits = &bytes[1..];
        }
    }
    let mut value: u64 = 0;
    let mut underscores = false;
    let mut overflow = false;
    for &byte in digits {
        let digit = match byte {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => u64::from(byte - b'0'),
            b'a'..=b'z' => u64::from(byte - b'a') + 10,
            b'A'..=b'Z' => u64::from(byte - b'A') + 10,
            _ => return Err(NumError::Syntax),
        };
        if digit >= base {
            return Err(NumError::Syntax);
        }
        if !overflow {
            match value.checked_mul(base).and_then(|v| v.checked_add(digit)) {
                Some(next) => value = next,
                None => overflow = true,
            }
        }
    }
    if underscores && !underscore_ok(text) {
        return Err(NumError::Syntax);
    }
    if overflow {
        return Err(NumError::Range);
    }
    Ok(value)
}

/// Go's `strconv.ParseInt(text, 0, 64)`.
pub(crate) fn parse_int(text: &str) -> Result<i64, NumError> {
    if text.is_empty() {
        return Err(NumError::Syntax);
    }
    let (negative, rest) = match text.as_bytes()[0] {
        b'+' => (false, &text[1..]),
        b'-' => (true, &text[1..]),
        _ => (false, text),
    };
    let magnitude = parse_uint(rest)?;
    let cutoff = 1u64 << 63;
    if !negative && magnitude >= cutoff {
        return Err(NumError::Range);
    }
    if negative && magnitude > cutoff {
        return Err(NumError::Range);
    }
    if negative {
        Ok((magnitude as i64).wrapping_neg())
    } else {
        Ok(magnitude as i64)
    }
}

/// Go's `strconv.ParseFloat(text, 64)` for the literal forms a template can contain
/// (decimal and hexadecimal mantissas, exponents, underscores between digits).
pub(crate) fn parse_float(text: &str) -> Result<f64, NumError> {
    let bytes = text.as_bytes();
    let mut index = 0;
    let mut negative = false;
    if let Some(&sign) = bytes.first()
        && (sign == b'+' || sign == b'-')
    {
        negative = sign == b'-';
        index = 1;
    }
    let rest = &text[index..];
    let lowered = rest.to_ascii_lowercase();
    if lowered == "inf" || lowered == "infinity" {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lowered == "nan" {
        return Ok(f64::NAN);
    }
    let hex = bytes.len() >= index + 2 && bytes[index] == b'0' && lower(bytes[index + 1]) == b'x';
    let underscores = rest.contains('_');
    if underscores && !underscore_ok(text) {
        return Err(NumError::Syntax);
    }
    let clean: String = rest.chars().filter(|&c| c != '_').collect();
    let value = if hex {
        parse_hex_float(&clean[2..])?
    } else {
        // Go's decimal syntax: digits, optional '.', digits, optional exponent; at least
        // one digit in the mantissa.
        let cb = clean.as_bytes();
        let mut position = 0;
        let mut mantissa_digits = 0;
        while position < cb.len() && cb[position].is_ascii_digit() {
            position += 1;
            mantissa_digits += 1;
        }
        if position < cb.len() && cb[position] == b'.' {
            position += 1;
            while position < cb.len() && cb[position].is_ascii_digit() {
                position += 1;
                mantissa_digits += 1;
            }
        }
        if mantissa_digits == 0 {
            return Err(NumError::Syntax);
        }
        if position < cb.len() && lower(cb[position]) == b'e' {
            position += 1;
            if position < cb.len() && (cb[position] == b'+' || cb[position] == b'-') {
                position += 1;
            }
            let start = position;
            while position < cb.len() && cb[position].is_ascii_digit() {
                position += 1;
            }
            if position == start {
                return Err(NumError::Syntax);
            }
        }
        if position != cb.len() {
            return Err(NumError::Syntax);
        }
        clean.parse::<f64>().map_err(|_| NumError::Syntax)?
    };
    if value.is_infinite() {
        return Err(NumError::Range);
    }
    Ok(if negative { -value } else { value })
}

fn parse_hex_float(text: &str) -> Result<f64, NumError> {
    let bytes = text.as_bytes();
    let mut position = 0;
    let mut mantissa: f64 = 0.0;
    let mut digits = 0;
    let mut fraction_digits: i32 = 0;
    let mut seen_dot = false;
    while position < bytes.len() {
        let byte = bytes[position];
        if byte == b'.' && !seen_dot {
            seen_dot = true;
            position += 1;
            continue;
        }
        let Some(digit) = (byte as char).to_digit(16) else {
            break;
        };
        mantissa = mantissa * 16.0 + f64::from(digit);
        digits += 1;
        if seen_dot {
            fraction_digits += 1;
        }
        position += 1;
    }
    if digits == 0 || position >= bytes.len() || lower(bytes[position]) != b'p' {
        return Err(NumError::Syntax);
    }
    position += 1;
    let exponent_text = &text[position..];
    let exponent: i32 = match exponent_text.parse::<i64>() {
        Ok(value) => value.clamp(-100_000, 100_000) as i32,
        Err(_) => return Err(NumError::Syntax),
    };
    if exponent_text.is_empty() || exponent_text.starts_with('+') && exponent_text.len() == 1 {
        return Err(NumError::Syntax);
    }
    let exponent = exponent - 4 * fraction_digits;
    Ok(mantissa * 2f64.powi(exponent))
}

/// Go's `strconv.UnquoteChar`: decodes the first character or escape of `text`.
/// Returns the value, whether it is a Unicode code point (as opposed to a single byte from
/// `\x` or octal escapes) and the rest of the text.
pub(crate) fn unquote_char(text: &str, quote: u8) -> Result<(u32, bool, &str), ()> {
    let bytes = text.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(());
    };
    if first == quote && (quote == b'\'' || quote == b'"') {
        return Err(());
    }
    if first >= 0x80 {
        let character = text.chars().next().ok_or(())?;
        return Ok((character as u32, true, &text[character.len_utf8()..]));
    }
    if first != b'\\' {
        return Ok((u32::from(first), false, &text[1..]));
    }
    if bytes.len() <= 1 {
        return Err(());
    }
    let escape = bytes[1];
    if !escape.is_ascii() {
        return Err(());
    }
    let rest = &text[2..];
    let simple = match escape {
        b'a' => Some(7),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(10),
        b'r' => Some(13),
        b't' => Some(9),
        b'v' => Some(11),
        b'\\' => Some(u32::from(b'\\')),
        b'\'' | b'"' => {
            if escape != quote {
                return Err(());
            }
            Some(u32::from(escape))
        }
        _ => None,
    };
    if let Some(value) = simple {
        return Ok((value, false, rest));
    }
    match escape {
        b'x' | b'u' | b'U' => {
            let count = match escape {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            if rest.len() < count {
                return Err(());
            }
            let mut value: u32 = 0;
            for &byte in &rest.as_bytes()[..count] {
                let digit = (byte as char).to_digit(16).ok_or(())?;
                value = value.checked_mul(16).ok_or(())? + digit;
            }
            let rest = &rest[count..];
            if escape == b'x' {
                return Ok((value, false, rest));
            }
            if char::from_u32(value).is_none() {
                return Err(());
            }
            Ok((value, true, rest))
        }
        b'0'..=b'7' => {
            let all = &text.as_bytes()[1..];
            if all.len() < 3 {
                return Err(());
            }
            let mut value: u32 = 0;
            for &byte in &all[..3] {
                if !(b'0'..=b'7').contains(&byte) {
                    return Err(());
                }
                value = value * 8 + u32::from(byte - b'0');
            }
            if value > 255 {
                return Err(());
            }
            Ok((value, false, &text[4..]))
        }
        _ => Err(()),
    }
}

/// Go's `strconv.Unquote` for `"..."`, `` `...` `` and `'...'` literals. Bytes that are not
/// UTF-8 (from `\x` or octal escapes) are replaced as Rust strings require.
pub(crate) fn unquote(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    if bytes.len() < 2 {
        return Err(());
    }
    let quote = bytes[0];
    if quote != bytes[bytes.len() - 1] {
        return Err(());
    }
    let inner = &text[1..text.len() - 1];
    match quote {
        b'`' => {
            if inner.contains('`') {
                return Err(());
            }
            if inner.contains('\r') {
                Ok(inner.chars().filter(|&c| c != '\r').collect())
            } else {
                Ok(inner.to_string())
            }
        }
        b'"' | b'\'' => {
            if !inner.contains('\\') && !inner.contains('\n') {
                if quote == b'"' {
                    if inner.contains('"') {
                        return Err(());
                    }
                    return Ok(inner.to_string());
                }
                let mut chars = inner.chars();
                return match (chars.next(), chars.next()) {
                    (Some(character), None) if character != '\'' => Ok(character.to_string()),
                    _ => Err(()),
                };
            }
            if inner.contains('\n') {
                return Err(());
            }
            let mut out: Vec<u8> = Vec::with_capacity(inner.len());
            let mut rest = inner;
            while !rest.is_empty() {
                let (value, multibyte, tail) = unquote_char(rest, quote)?;
                rest = tail;
                if value < 0x80 || !multibyte {
                    out.push(value as u8);
                } else {
                    push_char(&mut out, value);
                }
                if quote == b'\'' && !rest.is_empty() {
                    return Err(());
                }
            }
            Ok(String::from_utf8(out)
                .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()))
        }
        _ => Err(()),
    }
}

fn push_char(out: &mut Vec<u8>, value: u32) {
    let character = char::from_u32(value).unwrap_or('\u{FFFD}');
    let mut buffer = [0u8; 4];
    out.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
}

/// Go's `unicode.IsPrint`, approximated for characters outside ASCII: letters, marks,
/// numbers, punctuation and symbols are printable; controls, spaces other than U+0020,
/// format characters and private-use characters are not.
pub(crate) fn is_print(character: char) -> bool {
    let code = character as u32;
    if code < 0x80 {
        return (0x20..0x7f).contains(&code);
    }
    if character.is_control() || character.is_whitespace() {
        return false;
    }
    !matches!(code,
        0xAD
        | 0x600..=0x605
        | 0x61C
        | 0x6DD
        | 0x70F
        | 0x890..=0x891
        | 0x8E2
        | 0x180E
        | 0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x206F
        | 0xFEFF
        | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF
        | 0xFFFE..=0xFFFF
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0001
        | 0xE0020..=0xE007F
        | 0xF0000..=0x0010_FFFF)
}

fn append_escaped_rune(out: &mut String, character: char, quote: char, ascii_only: bool) {
    if character == quote || character == '\\' {
        out.push('\\');
        out.push(character);
        return;
    }
    if ascii_only {
        if (character as u32) < 0x80 && is_print(character) {
            out.push(character);
            return;
        }
    } else if is_print(character) {
        out.push(character);
        return;
    }
    match character {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        _ => {
            let code = character as u32;
            if code < 0x20 || code == 0x7f {
                let _ = write!(out, "\\x{code:02x}");
            } else if code > 0xFFFF {
                let _ = write!(out, "\\U{code:08x}");
            } else {
                let _ = write!(out, "\\u{code:04x}");
            }
        }
    }
}

/// Go's `strconv.Quote`.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        append_escaped_rune(&mut out, character, '"', false);
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteToASCII`.
pub(crate) fn quote_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        append_escaped_rune(&mut out, character, '"', true);
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune` (or `QuoteRuneToASCII` when `ascii_only`); invalid code points
/// print as U+FFFD.
pub(crate) fn quote_rune(code: i64, ascii_only: bool) -> String {
    let character = u32::try_from(code)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}');
    let mut out = String::from("'");
    append_escaped_rune(&mut out, character, '\'', ascii_only);
    out.push('\'');
    out
}

/// Go's `strconv.CanBackquote`.
pub fn can_backquote(text: &str) -> bool {
    text.chars().all(|character| {
        if character == '`' || character == '\u{FEFF}' {
            return false;
        }
        if (character as u32) < 0x20 {
            return character == '\t';
        }
        character != '\u{7f}'
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_with_go_prefixes_and_underscores() {
        assert_eq!(parse_int("1_000"), Ok(1000));
        assert_eq!(parse_int("0x_1F"), Ok(31));
        assert_eq!(parse_int("0o17"), Ok(15));
        assert_eq!(parse_int("017"), Ok(15));
        assert_eq!(parse_int("0b101"), Ok(5));
        assert_eq!(parse_int("-0"), Ok(0));
        assert_eq!(parse_int("+5"), Ok(5));
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("08"), Err(NumError::Syntax));
        assert_eq!(parse_int("1__0"), Err(NumError::Syntax));
        assert_eq!(parse_int("_1"), Err(NumError::Syntax));
        assert_eq!(parse_int("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_int("9223372036854775808"), Err(NumError::Range));
        assert_eq!(parse_uint("9223372036854775808"), Ok(1 << 63));
        assert_eq!(parse_uint("-1"), Err(NumError::Syntax));
    }

    #[test]
    fn floats_parse_with_go_syntax() {
        assert_eq!(parse_float("1.5"), Ok(1.5));
        assert_eq!(parse_float("1e3"), Ok(1000.0));
        assert_eq!(parse_float(".5"), Ok(0.5));
        assert_eq!(parse_float("08"), Ok(8.0));
        assert_eq!(parse_float("0x1p4"), Ok(16.0));
        assert_eq!(parse_float("0x1.8p1"), Ok(3.0));
        assert_eq!(parse_float("1_0.5"), Ok(10.5));
        assert_eq!(parse_float("1e400"), Err(NumError::Range));
        assert_eq!(parse_float("."), Err(NumError::Syntax));
        assert_eq!(parse_float("0x1"), Err(NumError::Syntax));
        assert_eq!(parse_float("1e"), Err(NumError::Syntax));
    }

    #[test]
    fn unquote_follows_go() {
        assert_eq!(unquote(r#""a\tb""#).unwrap(), "a\tb");
        assert_eq!(unquote(r#""\u00e9\x41\101""#).unwrap(), "éAA");
        assert_eq!(unquote("`a\\n\r`").unwrap(), "a\\n");
        assert!(unquote(r#""\q""#).is_err());
        assert!(unquote(r#""\'""#).is_err());
        assert_eq!(unquote("'a'").unwrap(), "a");
        assert!(unquote("'ab'").is_err());
        assert_eq!(unquote_char("\\n'", b'\'').unwrap(), (10, false, "'"));
        assert_eq!(unquote_char("é'", b'\'').unwrap(), (0xe9, true, "'"));
        assert!(unquote_char("\\ⷈ\"", b'"').is_err());
        assert!(unquote("\"\\é\"").is_err());
    }

    #[test]
    fn quote_follows_go() {
        assert_eq!(quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
        assert_eq!(quote_ascii("é☺\u{1F600}"), r#""\u00e9\u263a\U0001f600""#);
        assert_eq!(quote("\u{a0}\u{200b}"), r#""\u00a0\u200b""#);
        assert_eq!(quote_rune(97, false), "'a'");
        assert_eq!(quote_rune(39, false), r"'\''");
        assert_eq!(quote_rune(-1, false), "'\u{FFFD}'");
        assert!(can_backquote("a\tb"));
        assert!(!can_backquote("a`b"));
        assert!(!can_backquote("a\nb"));
    }
}
