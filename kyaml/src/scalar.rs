//! go-yaml v2's typing of scalars (its `resolve`), and Go's number formatting.

/// What a scalar's text resolves to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Resolved {
    Null,
    Bool(bool),
    /// An integer; Go's `int`, `uint64` or `big.Int` all fit here up to 128 bits.
    Int(i128),
    Float(f64),
    /// A timestamp: go-yaml keeps its text as a string when decoding into `interface{}`.
    Timestamp,
    /// The merge key `<<`.
    Merge,
    Str,
}

/// Resolves an untagged plain scalar (or one tagged with a resolvable core tag) as go-yaml
/// v2 does. `timestamps` is false when an explicit non-timestamp tag is present.
pub(crate) fn resolve_plain(text: &str, timestamps: bool) -> Resolved {
    let Some(&first) = text.as_bytes().first() else {
        return Resolved::Null;
    };
    if let Some(known) = resolve_known(text) {
        return known;
    }
    match first {
        b'.' => parse_yaml_float(text).map_or(Resolved::Str, Resolved::Float),
        b'+' | b'-' | b'0'..=b'9' => {
            if timestamps && is_timestamp(text) {
                return Resolved::Timestamp;
            }
            let plain: String = text.chars().filter(|&c| c != '_').collect();
            match parse_go_int(&plain) {
                Ok(IntParse::Fits(value)) => return Resolved::Int(value),
                Ok(IntParse::Huge(value)) => return Resolved::Float(value),
                Err(()) => {}
            }
            parse_yaml_float(&plain).map_or(Resolved::Str, Resolved::Float)
        }
        _ => Resolved::Str,
    }
}

fn resolve_known(text: &str) -> Option<Resolved> {
    Some(match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Resolved::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Resolved::Bool(false)
        }
        "~" | "null" | "Null" | "NULL" => Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Resolved::Float(f64::NEG_INFINITY),
        "<<" => Resolved::Merge,
        _ => return None,
    })
}

/// go-yaml's `yamlStyleFloat` (`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)
/// followed by a parse that must stay finite, as Go's `ParseFloat` range check requires.
fn parse_yaml_float(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut at = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count()
    };
    if bytes.get(at) == Some(&b'.') {
        let fraction = digits(at + 1);
        if fraction == 0 {
            return None;
        }
        at += 1 + fraction;
    } else {
        let whole = digits(at);
        if whole == 0 {
            return None;
        }
        at += whole;
        if bytes.get(at) == Some(&b'.') {
            at += 1 + digits(at + 1);
        }
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(at);
        if exponent == 0 {
            return None;
        }
        at += exponent;
    }
    if at != bytes.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|value| value.is_finite())
}

enum IntParse {
    /// Fits Go's `int64`, `uint64`, or at least an `i128` (a `big.Int` in Go).
    Fits(i128),
    /// A `big.Int` beyond 128 bits, as the nearest float.
    Huge(f64),
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint`, then `big.Int.SetString(s, 0)`:
/// optional sign, `0x`/`0o`/`0b` or leading-`0` octal prefixes, then digits.
fn parse_go_int(text: &str) -> Result<IntParse, ()> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &body[2..]),
        Some("0o") => (8, &body[2..]),
        Some("0b") => (2, &body[2..]),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
        _ => (10, body),
    };
    if digits.is_empty() {
        return Err(());
    }
    let mut exact: Option<u128> = Some(0);
    let mut approximate = 0.0_f64;
    for character in digits.chars() {
        let digit = character.to_digit(radix).ok_or(())?;
        exact = exact
            .and_then(|value| value.checked_mul(u128::from(radix)))
            .and_then(|value| value.checked_add(u128::from(digit)));
        approximate = approximate * f64::from(radix) + f64::from(digit);
    }
    let signed = exact.and_then(|value| {
        if negative {
            0_i128.checked_sub_unsigned(value)
        } else {
            i128::try_from(value).ok()
        }
    });
    Ok(match signed {
        Some(value) => IntParse::Fits(value),
        None => IntParse::Huge(if negative { -approximate } else { approximate }),
    })
}

/// go-yaml v2's `parseTimestamp`: Go's `time.Parse` with `2006-1-2T15:4:5.999999999Z07:00`
/// (also lower-case `t`), `2006-1-2 15:4:5.999999999` and `2006-1-2`.
pub(crate) fn is_timestamp(text: &str) -> bool {
    let mut cursor = Cursor(text.as_bytes());
    let Some(year) = cursor.fixed(4) else {
        return false;
    };
    if !cursor.eat(b'-') {
        return false;
    }
    let Some(month) = cursor.number() else {
        return false;
    };
    if !(1..=12).contains(&month) || !cursor.eat(b'-') {
        return false;
    }
    let Some(day) = cursor.number() else {
        return false;
    };
    if day < 1 || day > days_in(month, year) {
        return false;
    }
    if cursor.0.is_empty() {
        return true;
    }
    let zoned = match cursor.0[0] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return false,
    };
    cursor.0 = &cursor.0[1..];
    let clock = [24, 60, 60];
    for (index, bound) in clock.into_iter().enumerate() {
        if index > 0 && !cursor.eat(b':') {
            return false;
        }
        match cursor.number() {
            Some(value) if value < bound => {}
            _ => return false,
        }
    }
    if matches!(cursor.0, [b'.' | b',', b'0'..=b'9', ..]) {
        let digits = cursor.0[1..]
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        cursor.0 = &cursor.0[1 + digits..];
    }
    if !zoned {
        return cursor.0.is_empty();
    }
    match cursor.0 {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
            };
            matches!((two(*h1, *h2), two(*m1, *m2)), (Some(hour), Some(minute)) if hour <= 24 && minute <= 60)
        }
        _ => false,
    }
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn eat(&mut self, byte: u8) -> bool {
        if self.0.first() == Some(&byte) {
            self.0 = &self.0[1..];
            true
        } else {
            false
        }
    }

    fn fixed(&mut self, count: usize) -> Option<u32> {
        let digits = self.0.get(..count)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = &self.0[count..];
        Some(
            digits
                .iter()
                .fold(0, |total, digit| total * 10 + u32::from(digit - b'0')),
        )
    }

    /// Go's `getnum(s, false)`: one digit, or two when two are there.
    fn number(&mut self) -> Option<u32> {
        let two = self.0.len() >= 2 && self.0[1].is_ascii_digit();
        if two { self.fixed(2) } else { self.fixed(1) }
    }
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// go-yaml v2's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
/// Such strings are quoted on output for old YAML 1.1 readers.
pub(crate) fn is_base60_float(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    if !bytes.get(at).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while bytes
        .get(at)
        .is_some_and(|byte| byte.is_ascii_digit() || *byte == b'_')
    {
        at += 1;
    }
    let mut groups = 0;
    while bytes.get(at) == Some(&b':') {
        at += 1;
        let digits = bytes[at..]
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        let valid = match digits {
            1 => true,
            2 => bytes[at] <= b'5',
            _ => false,
        };
        if !valid {
            return false;
        }
        at += digits;
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        while bytes
            .get(at)
            .is_some_and(|byte| byte.is_ascii_digit() || *byte == b'_')
        {
            at += 1;
        }
    }
    at == bytes.len()
}

/// Go's `strconv.FormatFloat(value, 'g', -1, 32)`, which `sigs.k8s.io/yaml` uses for float
/// map keys, with go-yaml's names for infinities and NaN.
pub(crate) fn format_float32_key(value: f64) -> String {
    if value.is_nan() {
        return ".nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    #[allow(clippy::cast_possible_truncation)]
    let single = value as f32;
    if single == 0.0 {
        return if single.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let scientific = format!("{single:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        format!("{single}")
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// Go's `encoding/json` text for a finite `float64`: shortest digits, plain decimal between
/// 1e-6 and 1e21, otherwise exponent form with at least one exponent digit (`1e+21`, `1e-7`).
pub(crate) fn format_json_float(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        let scientific = format!("{value:e}");
        let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let sign = if exponent < 0 { '-' } else { '+' };
        let width = if exponent < 0 { 1 } else { 2 };
        format!("{mantissa}e{sign}{:0width$}", exponent.abs())
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_as_go_yaml_v2() {
        use Resolved::{Bool, Float, Int, Null, Str, Timestamp};
        for (text, expected) in [
            ("", Null),
            ("~", Null),
            ("NULL", Null),
            ("nULL", Str),
            ("y", Bool(true)),
            ("Yes", Bool(true)),
            ("ON", Bool(true)),
            ("off", Bool(false)),
            ("N", Bool(false)),
            ("FALSE", Bool(false)),
            ("fAlse", Str),
            ("12", Int(12)),
            ("+12", Int(12)),
            ("-12", Int(-12)),
            ("1_000", Int(1000)),
            ("0x1F", Int(31)),
            ("-0x1f", Int(-31)),
            ("0o17", Int(15)),
            ("017", Int(15)),
            ("0b101", Int(5)),
            ("08", Float(8.0)),
            ("18446744073709551615", Int(18_446_744_073_709_551_615)),
            ("1.5", Float(1.5)),
            ("1.", Float(1.0)),
            (".5", Float(0.5)),
            ("-.5", Float(-0.5)),
            ("1e3", Float(1000.0)),
            ("1e400", Str),
            (".inf", Float(f64::INFINITY)),
            ("-.Inf", Float(f64::NEG_INFINITY)),
            ("0x", Str),
            ("1.2.3", Str),
            ("-", Str),
            ("2001-12-14", Timestamp),
            ("2001-12-14t21:59:43.10Z", Timestamp),
            ("2001-12-14T21:59:43+05:00", Timestamp),
            ("2001-12-14 21:59:43.10", Timestamp),
            ("2001-12-14T21:59:43", Str),
            ("2001-02-30", Str),
            ("2001-1-2", Timestamp),
            ("12:30", Str),
            ("v1.2", Str),
        ] {
            let resolved = resolve_plain(text, true);
            match (&resolved, &expected) {
                (Float(a), Float(b)) => assert!(a.to_bits() == b.to_bits(), "{text}: {resolved:?}"),
                _ => assert_eq!(resolved, expected, "{text}"),
            }
        }
        assert!(matches!(resolve_plain(".nan", true), Float(value) if value.is_nan()));
        assert_eq!(resolve_plain("2001-12-14", false), Str);
    }

    #[test]
    fn base60_floats_are_detected() {
        assert!(is_base60_float("1:20"));
        assert!(is_base60_float("-190:20:30.15"));
        assert!(!is_base60_float("1:60"));
        assert!(!is_base60_float("12"));
        assert!(!is_base60_float("a:1"));
    }

    #[test]
    fn floats_format_as_go() {
        assert_eq!(format_json_float(1e21), "1e+21");
        assert_eq!(format_json_float(1e20), "100000000000000000000");
        assert_eq!(format_json_float(1e-7), "1e-7");
        assert_eq!(format_json_float(1.5e-10), "1.5e-10");
        assert_eq!(format_json_float(0.000_001), "0.000001");
        assert_eq!(format_json_float(-2.5), "-2.5");
        assert_eq!(format_json_float(5.0), "5");
        assert_eq!(format_float32_key(0.1), "0.1");
        assert_eq!(format_float32_key(1e6), "1e+06");
        assert_eq!(format_float32_key(1.5), "1.5");
        assert_eq!(format_float32_key(f64::NEG_INFINITY), "-.inf");
    }
}
