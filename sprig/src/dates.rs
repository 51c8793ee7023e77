//! Sprig's date functions over a Go-like `time.Time`. Every zone is UTC here (`Local`
//! included): named zones are not loaded.

use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use gotemplate::{Functions, IntKind, Object, Runtime, Value};

use crate::args::{Outcome, fixed, go_quote, string, wrong_type};

/// A Go `time.Time` in UTC: seconds since the Unix epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

/// Seconds from 0001-01-01 (Go's zero time) to the Unix epoch.
const ZERO_TIME: i64 = -62_135_596_800;
const NANOS_PER_SECOND: i128 = 1_000_000_000;

impl Time {
    /// The current time.
    pub fn now() -> Self {
        let elapsed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Time {
            seconds: i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
            nanos: elapsed.subsec_nanos(),
        }
    }

    fn total_nanos(self) -> i128 {
        i128::from(self.seconds) * NANOS_PER_SECOND + i128::from(self.nanos)
    }

    fn from_nanos(nanos: i128) -> Self {
        Time {
            seconds: i64::try_from(nanos.div_euclid(NANOS_PER_SECOND)).unwrap_or(i64::MAX),
            nanos: u32::try_from(nanos.rem_euclid(NANOS_PER_SECOND)).unwrap_or(0),
        }
    }

    /// The date and clock fields: (year, month 1-12, day, hour, minute, second).
    fn civil(self) -> (i64, u32, u32, u32, u32, u32) {
        let days = self.seconds.div_euclid(86_400);
        let in_day = self.seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let clock = u32::try_from(in_day).unwrap_or(0);
        (year, month, day, clock / 3600, clock / 60 % 60, clock % 60)
    }

    /// Formats with a Go layout such as `2006-01-02 15:04:05`.
    pub fn format(self, layout: &str) -> String {
        let (year, month, day, hour, minute, second) = self.civil();
        let weekday =
            usize::try_from((self.seconds.div_euclid(86_400) + 4).rem_euclid(7)).unwrap_or(0);
        let year_day = self.seconds.div_euclid(86_400) - days_from_civil(year, 1, 1) + 1;
        let mut out = String::new();
        let mut rest = layout;
        while !rest.is_empty() {
            let Some((token, length)) = layout_token(rest) else {
                let character = rest.chars().next().unwrap_or(' ');
                out.push(character);
                rest = &rest[character.len_utf8()..];
                continue;
            };
            let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
            let month_name = MONTHS[usize::try_from(month).unwrap_or(1) - 1];
            let piece = match token {
                Token::LongMonth => month_name.to_string(),
                Token::Month => month_name[..3].to_string(),
                Token::NumMonth => month.to_string(),
                Token::ZeroMonth => format!("{month:02}"),
                Token::LongWeekday => WEEKDAYS[weekday].to_string(),
                Token::Weekday => WEEKDAYS[weekday][..3].to_string(),
                Token::Day => day.to_string(),
                Token::UnderDay => format!("{day:>2}"),
                Token::ZeroDay => format!("{day:02}"),
                Token::UnderYearDay => format!("{year_day:>3}"),
                Token::ZeroYearDay => format!("{year_day:03}"),
                Token::Hour => format!("{hour:02}"),
                Token::Hour12 => hour12.to_string(),
                Token::ZeroHour12 => format!("{hour12:02}"),
                Token::Minute => minute.to_string(),
                Token::ZeroMinute => format!("{minute:02}"),
                Token::Second => second.to_string(),
                Token::ZeroSecond => format!("{second:02}"),
                Token::LongYear => format!("{year:04}"),
                Token::Year => format!("{:02}", year.rem_euclid(100)),
                Token::PM => (if hour >= 12 { "PM" } else { "AM" }).to_string(),
                Token::Pm => (if hour >= 12 { "pm" } else { "am" }).to_string(),
                Token::ZoneName => "UTC".to_string(),
                Token::Offset(text) => {
                    if text.starts_with('Z') {
                        "Z".to_string()
                    } else {
                        zero_offset(text)
                    }
                }
                Token::Fraction {
                    digits,
                    trim,
                    separator,
                } => {
                    let text = format!("{:09}", self.nanos);
                    let text = &text[..digits.min(9)];
                    let text = if trim {
                        text.trim_end_matches('0')
                    } else {
                        text
                    };
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!("{separator}{text}")
                    }
                }
            };
            out.push_str(&piece);
            rest = &rest[length..];
        }
        out
    }

    /// Go's `Time.String()`.
    fn go_string(self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }
}

fn zero_offset(layout: &str) -> String {
    layout
        .chars()
        .map(|character| {
            if character == '-' {
                '+'
            } else if character == ':' {
                ':'
            } else {
                '0'
            }
        })
        .collect()
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Days since the Unix epoch of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day since the Unix epoch.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * shifted_month + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    })
    .unwrap_or(1);
    let year = year_of_era + era * 400;
    (if month <= 2 { year + 1 } else { year }, month, day)
}

/// The elements of a Go time layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekday,
    Weekday,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    ZoneName,
    Offset(&'static str),
    Fraction {
        digits: usize,
        trim: bool,
        separator: char,
    },
}

/// The layout element at the start of `text`, and its length (Go's `nextStdChunk`).
fn layout_token(text: &str) -> Option<(Token, usize)> {
    const FIXED: [(&str, Token); 33] = [
        ("January", Token::LongMonth),
        ("Jan", Token::Month),
        ("Monday", Token::LongWeekday),
        ("Mon", Token::Weekday),
        ("MST", Token::ZoneName),
        ("2006", Token::LongYear),
        ("002", Token::ZeroYearDay),
        ("__2", Token::UnderYearDay),
        ("01", Token::ZeroMonth),
        ("02", Token::ZeroDay),
        ("03", Token::ZeroHour12),
        ("04", Token::ZeroMinute),
        ("05", Token::ZeroSecond),
        ("06", Token::Year),
        ("15", Token::Hour),
        ("_2", Token::UnderDay),
        ("1", Token::NumMonth),
        ("2", Token::Day),
        ("3", Token::Hour12),
        ("4", Token::Minute),
        ("5", Token::Second),
        ("PM", Token::PM),
        ("pm", Token::Pm),
        ("-07:00:00", Token::Offset("-07:00:00")),
        ("-070000", Token::Offset("-070000")),
        ("-07:00", Token::Offset("-07:00")),
        ("-0700", Token::Offset("-0700")),
        ("-07", Token::Offset("-07")),
        ("Z07:00:00", Token::Offset("Z07:00:00")),
        ("Z070000", Token::Offset("Z070000")),
        ("Z07:00", Token::Offset("Z07:00")),
        ("Z0700", Token::Offset("Z0700")),
        ("Z07", Token::Offset("Z07")),
    ];
    if text.starts_with("Jan")
        && !text.starts_with("January")
        && text[3..].starts_with(|c: char| c.is_ascii_lowercase())
    {
        return None;
    }
    if text.starts_with("Mon")
        && !text.starts_with("Monday")
        && text[3..].starts_with(|c: char| c.is_ascii_lowercase())
    {
        return None;
    }
    if let Some(separator) = text.chars().next().filter(|c| *c == '.' || *c == ',') {
        let digit = text[1..]
            .chars()
            .next()
            .filter(|c| *c == '0' || *c == '9')?;
        let run = text[1..].chars().take_while(|c| *c == digit).count();
        if !text[1 + run..].starts_with(|c: char| c.is_ascii_digit()) {
            return Some((
                Token::Fraction {
                    digits: run,
                    trim: digit == '9',
                    separator,
                },
                1 + run,
            ));
        }
        return None;
    }
    FIXED
        .iter()
        .find(|(pattern, _)| text.starts_with(pattern))
        .map(|(pattern, token)| (*token, pattern.len()))
}

/// Go's `time.Parse` for the numeric and named elements, in UTC.
fn parse_time(layout: &str, text: &str) -> Result<Time, String> {
    let failure = |element: &str, rest: &str| {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            go_quote(text),
            go_quote(layout),
            go_quote(rest),
            go_quote(element)
        )
    };
    let (mut year, mut month, mut day, mut hour, mut minute, mut second, mut nanos) =
        (1_i64, 1_u32, 1_u32, 0_u32, 0_u32, 0_u32, 0_u32);
    let mut offset_seconds = 0_i64;
    let mut pm = None;
    let (mut layout_rest, mut rest) = (layout, text);
    while !layout_rest.is_empty() {
        let Some((token, length)) = layout_token(layout_rest) else {
            let character = layout_rest.chars().next().unwrap_or(' ');
            let element = &layout_rest[..character.len_utf8()];
            rest = rest
                .strip_prefix(character)
                .ok_or_else(|| failure(element, rest))?;
            layout_rest = &layout_rest[character.len_utf8()..];
            continue;
        };
        let element = &layout_rest[..length];
        layout_rest = &layout_rest[length..];
        let number = |rest: &mut &str, min: usize, max: usize| -> Result<u32, String> {
            let digits = rest
                .bytes()
                .take(max)
                .take_while(u8::is_ascii_digit)
                .count();
            if digits < min {
                return Err(failure(element, rest));
            }
            let value = rest[..digits].parse().map_err(|_| failure(element, rest))?;
            *rest = &rest[digits..];
            Ok(value)
        };
        let name = |rest: &mut &str, names: &[&str], short: bool| -> Result<u32, String> {
            for (index, full) in names.iter().enumerate() {
                let candidate = if short { &full[..3] } else { full };
                if rest.len() >= candidate.len()
                    && rest[..candidate.len()].eq_ignore_ascii_case(candidate)
                {
                    *rest = &rest[candidate.len()..];
                    return Ok(u32::try_from(index).unwrap_or(0) + 1);
                }
            }
            Err(failure(element, rest))
        };
        match token {
            Token::LongYear => year = i64::from(number(&mut rest, 4, 4)?),
            Token::Year => {
                let short = i64::from(number(&mut rest, 2, 2)?);
                year = short + if short >= 69 { 1900 } else { 2000 };
            }
            Token::LongMonth => month = name(&mut rest, &MONTHS, false)?,
            Token::Month => month = name(&mut rest, &MONTHS, true)?,
            Token::NumMonth => month = number(&mut rest, 1, 2)?,
            Token::ZeroMonth => month = number(&mut rest, 2, 2)?,
            Token::LongWeekday => {
                name(&mut rest, &WEEKDAYS, false)?;
            }
            Token::Weekday => {
                name(&mut rest, &WEEKDAYS, true)?;
            }
            Token::Day | Token::UnderDay => {
                rest = rest.trim_start_matches(' ');
                day = number(&mut rest, 1, 2)?;
            }
            Token::ZeroDay => day = number(&mut rest, 2, 2)?,
            Token::ZeroYearDay | Token::UnderYearDay => {
                rest = rest.trim_start_matches(' ');
                number(&mut rest, 3, 3)?;
            }
            Token::Hour | Token::ZeroHour12 => hour = number(&mut rest, 2, 2)?,
            Token::Hour12 => hour = number(&mut rest, 1, 2)?,
            Token::Minute => minute = number(&mut rest, 1, 2)?,
            Token::ZeroMinute => minute = number(&mut rest, 2, 2)?,
            Token::Second | Token::ZeroSecond => {
                second = number(&mut rest, if token == Token::Second { 1 } else { 2 }, 2)?;
                if rest.starts_with(['.', ','])
                    && !matches!(layout_token(layout_rest), Some((Token::Fraction { .. }, _)))
                {
                    let digits = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
                    nanos = fraction_nanos(&rest[1..=digits]);
                    rest = &rest[1 + digits..];
                }
            }
            Token::Fraction { digits, trim, .. } => {
                if let Some(after) = rest.strip_prefix(['.', ',']) {
                    let count = if trim {
                        after.bytes().take_while(u8::is_ascii_digit).count()
                    } else {
                        digits
                    };
                    if after.len() < count
                        || !after[..count].bytes().all(|byte| byte.is_ascii_digit())
                    {
                        return Err(failure(element, rest));
                    }
                    nanos = fraction_nanos(&after[..count]);
                    rest = &after[count..];
                } else if !trim {
                    return Err(failure(element, rest));
                }
            }
            Token::PM | Token::Pm => {
                let marker = rest.get(..2).map(str::to_ascii_uppercase);
                pm = Some(match marker.as_deref() {
                    Some("PM") => true,
                    Some("AM") => false,
                    _ => return Err(failure(element, rest)),
                });
                rest = &rest[2..];
            }
            Token::ZoneName => {
                let length = rest.bytes().take_while(u8::is_ascii_uppercase).count();
                if length < 3 {
                    return Err(failure(element, rest));
                }
                rest = &rest[length..];
            }
            Token::Offset(pattern) => {
                if pattern.starts_with('Z')
                    && let Some(after) = rest.strip_prefix('Z')
                {
                    rest = after;
                    continue;
                }
                let sign = match rest.chars().next() {
                    Some('+') => 1,
                    Some('-') => -1,
                    _ => return Err(failure(element, rest)),
                };
                rest = &rest[1..];
                let mut total = 0_i64;
                let groups = pattern.chars().filter(char::is_ascii_digit).count() / 2;
                for (index, unit) in [3600_i64, 60, 1].iter().enumerate().take(groups) {
                    if index > 0 && pattern.contains(':') {
                        rest = rest
                            .strip_prefix(':')
                            .ok_or_else(|| failure(element, rest))?;
                    }
                    total += i64::from(number(&mut rest, 2, 2)?) * unit;
                }
                offset_seconds = sign * total;
            }
        }
    }
    if !rest.is_empty() {
        return Err(format!(
            "parsing time {}: extra text: {}",
            go_quote(text),
            go_quote(rest)
        ));
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(format!("parsing time {}: day out of range", go_quote(text)));
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_seconds;
    Ok(Time { seconds, nanos })
}

fn fraction_nanos(digits: &str) -> u32 {
    let padded = format!("{digits:0<9}");
    padded[..9].parse().unwrap_or(0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let next = if month == 12 {
        days_from_civil(year + 1, 1, 1)
    } else {
        days_from_civil(year, month + 1, 1)
    };
    u32::try_from(next - days_from_civil(year, month, 1)).unwrap_or(31)
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub(crate) fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(text));
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_length = rest
            .bytes()
            .take_while(|byte| byte.is_ascii_digit() || *byte == b'.')
            .count();
        let number = &rest[..number_length];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        rest = &rest[number_length..];
        let unit_length = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_length];
        rest = &rest[unit_length..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 6e10,
            "h" => 3.6e12,
            "" => return Err(format!("time: missing unit in duration {}", go_quote(text))),
            other => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(other),
                    go_quote(text)
                ));
            }
        };
        total += number.parse::<f64>().map_err(|_| invalid())? * scale;
    }
    if total > 9.223_372_036_854_776e18 {
        return Err(invalid());
    }
    #[allow(clippy::cast_possible_truncation)]
    let nanos = total.round() as i64;
    Ok(if negative { -nanos } else { nanos })
}

/// Go's `time.Duration.String()`.
pub(crate) fn format_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs();
    let trimmed = |whole: u64, fraction: u64, width: usize| {
        let fraction = format!("{fraction:0width$}");
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{fraction}")
        }
    };
    if magnitude < 1_000 {
        return format!("{sign}{magnitude}ns");
    }
    if magnitude < 1_000_000 {
        return format!(
            "{sign}{}µs",
            trimmed(magnitude / 1_000, magnitude % 1_000, 3)
        );
    }
    if magnitude < 1_000_000_000 {
        return format!(
            "{sign}{}ms",
            trimmed(magnitude / 1_000_000, magnitude % 1_000_000, 6)
        );
    }
    let seconds = magnitude / 1_000_000_000;
    let fraction = magnitude % 1_000_000_000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let seconds_text = format!("{}s", trimmed(seconds, fraction, 9));
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds_text}")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds_text}")
    } else {
        format!("{sign}{seconds_text}")
    }
}

/// The `time.Time` object templates see.
struct TimeObject(Time);

impl Object for TimeObject {
    fn type_name(&self) -> &'static str {
        "time.Time"
    }

    fn field(&self, name: &str) -> Option<Value> {
        let (year, month, day, hour, minute, second) = self.0.civil();
        Some(match name {
            "Unix" => Value::int64(self.0.seconds),
            "Year" => Value::int(year),
            "Month" => Value::string(MONTHS[usize::try_from(month).unwrap_or(1) - 1]),
            "Day" => Value::int(i64::from(day)),
            "Hour" => Value::int(i64::from(hour)),
            "Minute" => Value::int(i64::from(minute)),
            "Second" => Value::int(i64::from(second)),
            "UTC" | "Local" => time_value(self.0),
            "String" => self.0.go_string().into(),
            _ => return None,
        })
    }

    fn call_method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match (name, args) {
            (_, []) => self.field(name).map(Ok),
            ("Format", [layout]) => Some(string(layout).map(|layout| self.0.format(layout).into())),
            _ => None,
        }
    }

    fn display(&self) -> String {
        self.0.go_string()
    }

    fn to_data(&self) -> Value {
        self.0.format("2006-01-02T15:04:05.999999999Z07:00").into()
    }
}

/// A template value holding `time`.
pub fn time_value(time: Time) -> Value {
    Value::Object(Rc::new(TimeObject(time)))
}

/// The time inside a `time.Time` value.
fn as_time(value: &Value) -> Option<Time> {
    match value {
        Value::Object(object) if object.type_name() == "time.Time" => {
            let Some(Value::Int(seconds, _)) = object.field("Unix") else {
                return None;
            };
            let nanos = object
                .call_method("Format", &[Value::from(".000000000")])
                .and_then(Result::ok)
                .and_then(|text| text.as_str().and_then(|text| text[1..].parse().ok()))
                .unwrap_or(0);
            Some(Time { seconds, nanos })
        }
        _ => None,
    }
}

/// A Go `time.Time` parameter.
fn time_param(value: &Value) -> Result<Time, String> {
    as_time(value).ok_or_else(|| wrong_type("time.Time", value))
}

/// `dateInZone`'s reading of its date: a time, or Unix seconds, else now.
fn time_or_now(value: &Value) -> Time {
    match value {
        Value::Int(seconds, _) => Time {
            seconds: *seconds,
            nanos: 0,
        },
        other => as_time(other).unwrap_or_else(Time::now),
    }
}

pub(crate) fn register(functions: &mut Functions) {
    functions.insert("now", |_, args| {
        fixed::<0>("now", args)?;
        Ok(time_value(Time::now()))
    });
    functions.insert("date", |_, args| {
        let [layout, date] = fixed("date", args)?;
        Ok(time_or_now(date).format(string(layout)?).into())
    });
    functions.insert("dateInZone", |_, args| date_in_zone("dateInZone", args));
    functions.insert("date_in_zone", |_, args| date_in_zone("date_in_zone", args));
    functions.insert("htmlDate", |_, args| {
        let [date] = fixed("htmlDate", args)?;
        Ok(time_or_now(date).format("2006-01-02").into())
    });
    functions.insert("htmlDateInZone", |_, args| {
        let [date, zone] = fixed("htmlDateInZone", args)?;
        string(zone)?;
        Ok(time_or_now(date).format("2006-01-02").into())
    });
    functions.insert("dateModify", |_, args| {
        date_modify("dateModify", args, false)
    });
    functions.insert("date_modify", |_, args| {
        date_modify("date_modify", args, false)
    });
    functions.insert("mustDateModify", |_, args| {
        date_modify("mustDateModify", args, true)
    });
    functions.insert("must_date_modify", |_, args| {
        date_modify("must_date_modify", args, true)
    });
    functions.insert("toDate", |_, args| {
        let [layout, text] = fixed("toDate", args)?;
        let time = parse_time(string(layout)?, string(text)?).unwrap_or(Time {
            seconds: ZERO_TIME,
            nanos: 0,
        });
        Ok(time_value(time))
    });
    functions.insert("mustToDate", |_, args| {
        let [layout, text] = fixed("mustToDate", args)?;
        Ok(time_value(parse_time(string(layout)?, string(text)?)?))
    });
    functions.insert("unixEpoch", |_, args| {
        let [date] = fixed("unixEpoch", args)?;
        Ok(time_param(date)?.seconds.to_string().into())
    });
    functions.insert("ago", |_, args| {
        let [date] = fixed("ago", args)?;
        let since = Time::now().total_nanos() - time_or_now(date).total_nanos();
        let rounded =
            (since + since.signum() * NANOS_PER_SECOND / 2) / NANOS_PER_SECOND * NANOS_PER_SECOND;
        Ok(format_duration(i64::try_from(rounded).unwrap_or(i64::MAX)).into())
    });
    functions.insert("duration", |_, args| {
        let [seconds] = fixed("duration", args)?;
        let seconds = match seconds {
            Value::String(text) => text.parse::<i64>().unwrap_or(0),
            Value::Int(number, IntKind::Int64) => *number,
            _ => 0,
        };
        Ok(format_duration(seconds.wrapping_mul(1_000_000_000)).into())
    });
    functions.insert("durationRound", duration_round);
}

fn date_in_zone(name: &str, args: &[Value]) -> Outcome {
    let [layout, date, zone] = fixed(name, args)?;
    string(zone)?;
    Ok(time_or_now(date).format(string(layout)?).into())
}

fn date_modify(name: &str, args: &[Value], must: bool) -> Outcome {
    let [modification, date] = fixed(name, args)?;
    let (modification, date) = (string(modification)?, time_param(date)?);
    match parse_duration(modification) {
        Ok(nanos) => Ok(time_value(Time::from_nanos(
            date.total_nanos() + i128::from(nanos),
        ))),
        Err(error) if must => Err(error),
        Err(_) => Ok(time_value(date)),
    }
}

fn duration_round(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [duration] = fixed("durationRound", args)?;
    let nanos: i128 = match duration {
        Value::String(text) => parse_duration(text).map_or(0, i128::from),
        Value::Int(number, IntKind::Int64) => i128::from(*number),
        other => as_time(other).map_or(0, |time| Time::now().total_nanos() - time.total_nanos()),
    };
    let magnitude = nanos.unsigned_abs();
    let hour: u128 = 3_600_000_000_000;
    let units: [(u128, &str); 6] = [
        (hour * 24 * 365, "y"),
        (hour * 24 * 30, "mo"),
        (hour * 24, "d"),
        (hour, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
    ];
    Ok(units
        .iter()
        .find(|(size, _)| magnitude > *size)
        .map_or_else(
            || "0s".to_string(),
            |(size, suffix)| format!("{}{suffix}", magnitude / size),
        )
        .into())
}
