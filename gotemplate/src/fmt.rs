//! Go's `fmt` over [`Value`]s: `Sprintf`, `Sprint` and `Sprintln`, with Go's verbs, flags,
//! width and precision (including `*` and explicit argument indexes `%[n]d`), and Go's
//! error forms (`%!d(string=abc)`, `%!d(MISSING)`, `%!(EXTRA string=x)`, `%!(NOVERB)`, ...).
//!
//! Values print with the Go types they stand for: `Float` is a `float64`, `Int` an `int` or
//! `int64`, `List` an `[]interface {}`, `Map` a `map[string]interface {}`, `Bytes` a
//! `[]uint8`, and an [`Object`](crate::Object) prints through its `display` (Go's
//! `String()` method).

#![allow(
    // Go's fmt works on int64/uint64 bit patterns, widths and precisions; the casts mirror its conversions.
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::struct_excessive_bools
)]

use std::fmt::Write as _;

use crate::strconv;
use crate::value::format_go_float;
use crate::{IntKind, Value};

const LOWER_DIGITS: &[u8; 17] = b"0123456789abcdefx";
const UPPER_DIGITS: &[u8; 17] = b"0123456789ABCDEFX";

/// Go's `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut printer = Printer::default();
    printer.do_printf(format, args);
    printer.buf
}

/// Go's `fmt.Sprint`: operands in their default format, with a space between two operands
/// when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut printer = Printer::default();
    let mut previous_string = false;
    for (index, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::String(_));
        if index > 0 && !is_string && !previous_string {
            printer.buf.push(' ');
        }
        printer.flags = Flags::default();
        printer.print_arg(arg, 'v');
        previous_string = is_string;
    }
    printer.buf
}

/// Go's `fmt.Sprintln`: operands in their default format, always separated by a space,
/// and a final newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut printer = Printer::default();
    for (index, arg) in args.iter().enumerate() {
        if index > 0 {
            printer.buf.push(' ');
        }
        printer.flags = Flags::default();
        printer.print_arg(arg, 'v');
    }
    printer.buf.push('\n');
    printer.buf
}

/// One value formatted with one verb and no flags (`fmt.Sprintf("%s", value)` and the like).
pub fn format_value(value: &Value, verb: char) -> String {
    let mut printer = Printer::default();
    printer.print_arg(value, verb);
    printer.buf
}

#[derive(Clone, Copy, Default)]
struct Flags {
    wid: usize,
    prec: usize,
    wid_present: bool,
    prec_present: bool,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
}

#[derive(Default)]
struct Printer {
    buf: String,
    flags: Flags,
    good_arg_num: bool,
    reordered: bool,
}

fn parse_num(format: &[u8], start: usize, end: usize) -> (usize, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut number: usize = 0;
    let mut is_number = false;
    let mut index = start;
    while index < end && format[index].is_ascii_digit() {
        if number > 1_000_000 {
            return (0, false, end);
        }
        number = number * 10 + usize::from(format[index] - b'0');
        is_number = true;
        index += 1;
    }
    (number, is_number, index)
}

fn parse_arg_number(format: &[u8]) -> (i64, usize, bool) {
    if format.len() < 3 {
        return (0, 1, false);
    }
    for index in 1..format.len() {
        if format[index] == b']' {
            let (width, ok, new_index) = parse_num(format, 1, index);
            if !ok || new_index != index {
                return (0, index + 1, false);
            }
            return (width as i64 - 1, index + 1, true);
        }
    }
    (0, 1, false)
}

impl Printer {
    fn arg_number(
        &mut self,
        arg_num: usize,
        format: &[u8],
        index: usize,
        num_args: usize,
    ) -> (usize, usize, bool) {
        if format.len() <= index || format[index] != b'[' {
            return (arg_num, index, false);
        }
        self.reordered = true;
        let (number, width, ok) = parse_arg_number(&format[index..]);
        if ok && number >= 0 && (number as usize) < num_args {
            return (number as usize, index + width, true);
        }
        self.good_arg_num = false;
        (arg_num, index + width, ok)
    }

    fn int_from_arg(args: &[Value], arg_num: usize) -> (i64, bool, usize) {
        let mut new_arg_num = arg_num;
        let mut number = 0;
        let mut is_int = false;
        if arg_num < args.len() {
            if let Value::Int(value, _) = &args[arg_num] {
                number = *value;
                is_int = true;
            }
            new_arg_num = arg_num + 1;
            if !(-1_000_000..=1_000_000).contains(&number) {
                number = 0;
                is_int = false;
            }
        }
        (number, is_int, new_arg_num)
    }

    fn do_printf(&mut self, format: &str, args: &[Value]) {
        let bytes = format.as_bytes();
        let end = bytes.len();
        let mut arg_num = 0;
        let mut after_index;
        self.reordered = false;
        let mut i = 0;
        'format: while i < end {
            self.good_arg_num = true;
            let last = i;
            while i < end && bytes[i] != b'%' {
                i += 1;
            }
            if i > last {
                self.buf.push_str(&format[last..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.flags = Flags::default();
            'simple: while i < end {
                let c = bytes[i];
                match c {
                    b'#' => self.flags.sharp = true,
                    b'0' => self.flags.zero = !self.flags.minus,
                    b'+' => self.flags.plus = true,
                    b'-' => {
                        self.flags.minus = true;
                        self.flags.zero = false;
                    }
                    b' ' => self.flags.space = true,
                    _ => {
                        if c.is_ascii_lowercase() && arg_num < args.len() {
                            if c == b'v' {
                                self.flags.sharp_v = self.flags.sharp;
                                self.flags.sharp = false;
                                self.flags.plus_v = self.flags.plus;
                                self.flags.plus = false;
                            }
                            self.print_arg(&args[arg_num], char::from(c));
                            arg_num += 1;
                            i += 1;
                            continue 'format;
                        }
                        break 'simple;
                    }
                }
                i += 1;
            }

            (arg_num, i, after_index) = self.arg_number(arg_num, bytes, i, args.len());

            if i < end && bytes[i] == b'*' {
                i += 1;
                let (width, present, next) = Self::int_from_arg(args, arg_num);
                arg_num = next;
                self.flags.wid_present = present;
                if !present {
                    self.buf.push_str("%!(BADWIDTH)");
                }
                if width < 0 {
                    self.flags.wid = width.unsigned_abs() as usize;
                    self.flags.minus = true;
                    self.flags.zero = false;
                } else {
                    self.flags.wid = width as usize;
                }
                after_index = false;
            } else {
                let (width, present, next) = parse_num(bytes, i, end);
                self.flags.wid = width;
                self.flags.wid_present = present;
                i = next;
                if after_index && present {
                    self.good_arg_num = false;
                }
            }

            if i + 1 < end && bytes[i] == b'.' {
                i += 1;
                if after_index {
                    self.good_arg_num = false;
                }
                (arg_num, i, after_index) = self.arg_number(arg_num, bytes, i, args.len());
                if i < end && bytes[i] == b'*' {
                    i += 1;
                    let (precision, present, next) = Self::int_from_arg(args, arg_num);
                    arg_num = next;
                    self.flags.prec_present = present;
                    if precision < 0 {
                        self.flags.prec = 0;
                        self.flags.prec_present = false;
                    } else {
                        self.flags.prec = precision as usize;
                    }
                    if !self.flags.prec_present {
                        self.buf.push_str("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (precision, present, next) = parse_num(bytes, i, end);
                    self.flags.prec = precision;
                    self.flags.prec_present = present;
                    i = next;
                    if !present {
                        self.flags.prec = 0;
                        self.flags.prec_present = true;
                    }
                }
            }

            if !after_index {
                (arg_num, i, _) = self.arg_number(arg_num, bytes, i, args.len());
            }

            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }

            let verb = format[i..]
                .chars()
                .next()
                .expect("i < end on a char boundary");
            i += verb.len_utf8();

            if verb == '%' {
                self.buf.push('%');
            } else if !self.good_arg_num {
                self.buf.push_str("%!");
                self.buf.push(verb);
                self.buf.push_str("(BADINDEX)");
            } else if arg_num >= args.len() {
                self.buf.push_str("%!");
                self.buf.push(verb);
                self.buf.push_str("(MISSING)");
            } else {
                if verb == 'v' {
                    self.flags.sharp_v = self.flags.sharp;
                    self.flags.sharp = false;
                    self.flags.plus_v = self.flags.plus;
                    self.flags.plus = false;
                }
                self.print_arg(&args[arg_num], verb);
                arg_num += 1;
            }
        }

        if !self.reordered && arg_num < args.len() {
            self.flags = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (index, arg) in args[arg_num..].iter().enumerate() {
                if index > 0 {
                    self.buf.push_str(", ");
                }
                if arg.is_nil() {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str(&arg.type_name());
                    self.buf.push('=');
                    self.print_arg(arg, 'v');
                }
            }
            self.buf.push(')');
        }
    }

    fn no_flags(&self) -> bool {
        let f = &self.flags;
        !(f.wid_present || f.prec_present || f.minus || f.plus || f.sharp || f.space || f.zero)
            && !f.plus_v
            && !f.sharp_v
    }

    /// Go's `printArg` for a top-level operand.
    fn print_arg(&mut self, arg: &Value, verb: char) {
        if arg.is_nil() {
            match verb {
                'T' | 'v' => self.pad_string("<nil>"),
                _ => self.bad_verb(arg, verb),
            }
            return;
        }
        if verb == 'T' {
            let name = arg.type_name();
            self.fmt_s(&name);
            return;
        }
        if verb == 'v' && self.no_flags() {
            // The common case, in Value's own %v.
            match arg {
                Value::String(text) => self.buf.push_str(text),
                other => self.buf.push_str(&other.to_go_string()),
            }
            return;
        }
        self.print_value(arg, verb, 0);
    }

    /// Go's `printValue` (and the typed cases of `printArg`).
    fn print_value(&mut self, value: &Value, verb: char, depth: usize) {
        match value {
            Value::Nil => {
                if depth == 0 {
                    match verb {
                        'T' | 'v' => self.pad_string("<nil>"),
                        _ => self.bad_verb(value, verb),
                    }
                } else if self.flags.sharp_v {
                    self.buf.push_str("interface {}(nil)");
                } else {
                    self.buf.push_str("<nil>");
                }
            }
            Value::Bool(boolean) => match verb {
                't' | 'v' => self.pad_string(if *boolean { "true" } else { "false" }),
                _ => self.bad_verb(value, verb),
            },
            Value::Int(number, _) => self.fmt_integer_verb(*number as u64, true, verb, value),
            Value::Float(number) => self.fmt_float_verb(*number, verb, value),
            Value::String(text) => self.fmt_string_verb(text, verb, value),
            Value::Bytes(bytes) => self.fmt_bytes(bytes, verb, value),
            Value::Object(object) => match verb {
                'v' | 's' | 'x' | 'X' | 'q' => {
                    let text = object.display();
                    self.fmt_string_verb(&text, verb, value);
                }
                _ => self.bad_verb(value, verb),
            },
            Value::List(items) => {
                if self.flags.sharp_v {
                    self.buf.push_str("[]interface {}{");
                    for (index, item) in items.iter().enumerate() {
                        if index > 0 {
                            self.buf.push_str(", ");
                        }
                        crate::parse::with_stack(|| self.print_value(item, verb, depth + 1));
                    }
                    self.buf.push('}');
                } else {
                    self.buf.push('[');
                    for (index, item) in items.iter().enumerate() {
                        if index > 0 {
                            self.buf.push(' ');
                        }
                        crate::parse::with_stack(|| self.print_value(item, verb, depth + 1));
                    }
                    self.buf.push(']');
                }
            }
            Value::Map(map) => {
                let entries: Vec<(String, Value)> = map
                    .borrow()
                    .iter()
                    .map(|(key, item)| (key.clone(), item.clone()))
                    .collect();
                if self.flags.sharp_v {
                    self.buf.push_str("map[string]interface {}{");
                } else {
                    self.buf.push_str("map[");
                }
                for (index, (key, item)) in entries.iter().enumerate() {
                    if index > 0 {
                        if self.flags.sharp_v {
                            self.buf.push_str(", ");
                        } else {
                            self.buf.push(' ');
                        }
                    }
                    self.fmt_string_verb(key, verb, &Value::string(key.as_str()));
                    self.buf.push(':');
                    crate::parse::with_stack(|| self.print_value(item, verb, depth + 1));
                }
                self.buf.push(if self.flags.sharp_v { '}' } else { ']' });
            }
        }
    }

    fn bad_verb(&mut self, value: &Value, verb: char) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        if value.is_nil() {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(&value.type_name());
            self.buf.push('=');
            self.print_arg(value, 'v');
        }
        self.buf.push(')');
    }

    fn write_padding(&mut self, count: usize) {
        let pad = if self.flags.zero { '0' } else { ' ' };
        for _ in 0..count {
            self.buf.push(pad);
        }
    }

    /// Go's `fmt.pad`: pads to the width with spaces (or zeros), left or right.
    fn pad(&mut self, text: &str) {
        if !self.flags.wid_present || self.flags.wid == 0 {
            self.buf.push_str(text);
            return;
        }
        let length = text.chars().count();
        let width = self.flags.wid.saturating_sub(length);
        if self.flags.minus {
            self.buf.push_str(text);
            self.write_padding(width);
        } else {
            self.write_padding(width);
            self.buf.push_str(text);
        }
    }

    fn pad_string(&mut self, text: &str) {
        self.pad(text);
    }

    fn truncate<'t>(&self, text: &'t str) -> &'t str {
        if self.flags.prec_present
            && let Some((index, _)) = text.char_indices().nth(self.flags.prec)
        {
            return &text[..index];
        }
        text
    }

    fn fmt_s(&mut self, text: &str) {
        let text = self.truncate(text);
        self.pad_string(text);
    }

    fn fmt_q(&mut self, text: &str) {
        let text = self.truncate(text);
        if self.flags.sharp && strconv::can_backquote(text) {
            let quoted = format!("`{text}`");
            self.pad_string(&quoted);
            return;
        }
        let quoted = if self.flags.plus {
            strconv::quote_ascii(text)
        } else {
            strconv::quote(text)
        };
        self.pad(&quoted);
    }

    fn fmt_sbx(&mut self, bytes: &[u8], digits: &[u8; 17]) {
        let mut length = bytes.len();
        if self.flags.prec_present && self.flags.prec < length {
            length = self.flags.prec;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.flags.space {
                if self.flags.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.flags.sharp {
                width += 2;
            }
        } else {
            if self.flags.wid_present {
                self.write_padding(self.flags.wid);
            }
            return;
        }
        if self.flags.wid_present && self.flags.wid > width && !self.flags.minus {
            self.write_padding(self.flags.wid - width);
        }
        if self.flags.sharp {
            self.buf.push('0');
            self.buf.push(char::from(digits[16]));
        }
        for (index, &byte) in bytes[..length].iter().enumerate() {
            if self.flags.space && index > 0 {
                self.buf.push(' ');
                if self.flags.sharp {
                    self.buf.push('0');
                    self.buf.push(char::from(digits[16]));
                }
            }
            self.buf.push(char::from(digits[usize::from(byte >> 4)]));
            self.buf.push(char::from(digits[usize::from(byte & 0xF)]));
        }
        if self.flags.wid_present && self.flags.wid > width && self.flags.minus {
            self.write_padding(self.flags.wid - width);
        }
    }

    fn fmt_string_verb(&mut self, text: &str, verb: char, value: &Value) {
        match verb {
            'v' => {
                if self.flags.sharp_v {
                    self.fmt_q(text);
                } else {
                    self.fmt_s(text);
                }
            }
            's' => self.fmt_s(text),
            'x' => self.fmt_sbx(text.as_bytes(), LOWER_DIGITS),
            'X' => self.fmt_sbx(text.as_bytes(), UPPER_DIGITS),
            'q' => self.fmt_q(text),
            _ => self.bad_verb(value, verb),
        }
    }

    fn fmt_bytes(&mut self, bytes: &[u8], verb: char, value: &Value) {
        match verb {
            'v' | 'd' => {
                if self.flags.sharp_v {
                    self.buf.push_str("[]byte{");
                    for (index, &byte) in bytes.iter().enumerate() {
                        if index > 0 {
                            self.buf.push_str(", ");
                        }
                        self.fmt_0x64(u64::from(byte), true);
                    }
                    self.buf.push('}');
                } else {
                    self.buf.push('[');
                    for (index, &byte) in bytes.iter().enumerate() {
                        if index > 0 {
                            self.buf.push(' ');
                        }
                        self.fmt_integer(u64::from(byte), 10, false, verb, LOWER_DIGITS);
                    }
                    self.buf.push(']');
                }
            }
            's' => {
                let text = String::from_utf8_lossy(bytes);
                self.fmt_s(&text);
            }
            'x' => self.fmt_sbx(bytes, LOWER_DIGITS),
            'X' => self.fmt_sbx(bytes, UPPER_DIGITS),
            'q' => {
                let text = String::from_utf8_lossy(bytes);
                self.fmt_q(&text);
            }
            _ => {
                let _ = value;
                // Other verbs format each byte as a uint8.
                self.buf.push('[');
                for (index, &byte) in bytes.iter().enumerate() {
                    if index > 0 {
                        self.buf.push(' ');
                    }
                    let element = Value::Int(i64::from(byte), IntKind::Int);
                    self.fmt_integer_verb_unsigned(u64::from(byte), verb, &element, "uint8");
                }
                self.buf.push(']');
            }
        }
    }

    fn fmt_0x64(&mut self, value: u64, leading_0x: bool) {
        let sharp = self.flags.sharp;
        self.flags.sharp = leading_0x;
        self.fmt_integer(value, 16, false, 'v', LOWER_DIGITS);
        self.flags.sharp = sharp;
    }

    fn fmt_integer_verb(&mut self, value: u64, signed: bool, verb: char, original: &Value) {
        match verb {
            'v' => {
                if self.flags.sharp_v && !signed {
                    self.fmt_0x64(value, true);
                } else {
                    self.fmt_integer(value, 10, signed, verb, LOWER_DIGITS);
                }
            }
            'd' => self.fmt_integer(value, 10, signed, verb, LOWER_DIGITS),
            'b' => self.fmt_integer(value, 2, signed, verb, LOWER_DIGITS),
            'o' | 'O' => self.fmt_integer(value, 8, signed, verb, LOWER_DIGITS),
            'x' => self.fmt_integer(value, 16, signed, verb, LOWER_DIGITS),
            'X' => self.fmt_integer(value, 16, signed, verb, UPPER_DIGITS),
            'c' => self.fmt_c(value),
            'q' => self.fmt_qc(value),
            'U' => self.fmt_unicode(value),
            _ => self.bad_verb(original, verb),
        }
    }

    fn fmt_integer_verb_unsigned(
        &mut self,
        value: u64,
        verb: char,
        original: &Value,
        type_name: &str,
    ) {
        match verb {
            'v' | 'd' | 'b' | 'o' | 'O' | 'x' | 'X' | 'c' | 'q' | 'U' => {
                self.fmt_integer_verb(value, false, verb, original);
            }
            _ => {
                self.buf.push_str("%!");
                self.buf.push(verb);
                self.buf.push('(');
                self.buf.push_str(type_name);
                self.buf.push('=');
                self.fmt_integer(value, 10, false, 'v', LOWER_DIGITS);
                self.buf.push(')');
            }
        }
    }

    /// Go's `fmt.fmtInteger`.
    fn fmt_integer(&mut self, value: u64, base: u64, signed: bool, verb: char, digits: &[u8; 17]) {
        let negative = signed && (value as i64) < 0;
        let mut u = if negative {
            (value as i64).unsigned_abs()
        } else {
            value
        };
        let mut prec: usize = 0;
        if self.flags.prec_present {
            prec = self.flags.prec;
            if prec == 0 && u == 0 {
                let zero = self.flags.zero;
                self.flags.zero = false;
                self.write_padding(self.flags.wid);
                self.flags.zero = zero;
                return;
            }
        } else if self.flags.zero && self.flags.wid_present {
            prec = self.flags.wid;
            if negative || self.flags.plus || self.flags.space {
                prec = prec.saturating_sub(1);
            }
        }
        // Right to left.
        let mut buf: Vec<u8> = Vec::with_capacity(24 + prec);
        loop {
            buf.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while prec > buf.len() {
            buf.push(b'0');
        }
        if self.flags.sharp {
            match base {
                2 => {
                    buf.push(b'b');
                    buf.push(b'0');
                }
                8 if buf.last() != Some(&b'0') => buf.push(b'0'),
                16 => {
                    buf.push(digits[16]);
                    buf.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            buf.push(b'o');
            buf.push(b'0');
        }
        if negative {
            buf.push(b'-');
        } else if self.flags.plus {
            buf.push(b'+');
        } else if self.flags.space {
            buf.push(b' ');
        }
        buf.reverse();
        let text = String::from_utf8(buf).expect("ASCII digits");
        let zero = self.flags.zero;
        self.flags.zero = false;
        self.pad(&text);
        self.flags.zero = zero;
    }

    fn fmt_c(&mut self, value: u64) {
        let character = u32::try_from(value)
            .ok()
            .and_then(char::from_u32)
            .unwrap_or('\u{FFFD}');
        let mut text = [0u8; 4];
        let text = character.encode_utf8(&mut text);
        self.pad(text);
    }

    fn fmt_qc(&mut self, value: u64) {
        let code = u32::try_from(value)
            .ok()
            .filter(|&code| code <= 0x0010_FFFF)
            .map_or(0xFFFD, i64::from);
        let character = u32::try_from(code)
            .ok()
            .and_then(char::from_u32)
            .unwrap_or('\u{FFFD}');
        if self.flags.sharp && strconv::is_print(character) {
            let text = format!("'{character}'");
            self.pad(&text);
        } else {
            let text = strconv::quote_rune(code, self.flags.plus);
            self.pad(&text);
        }
    }

    fn fmt_unicode(&mut self, value: u64) {
        let mut prec: i64 = 4;
        if self.flags.prec_present && self.flags.prec > 4 {
            prec = self.flags.prec as i64;
        }
        let mut hex = format!("{value:X}");
        let missing = prec - hex.len() as i64;
        if missing > 0 {
            hex = "0".repeat(missing as usize) + &hex;
        }
        let mut text = format!("U+{hex}");
        if self.flags.sharp
            && value <= 0x0010_FFFF
            && let Some(character) = char::from_u32(value as u32)
            && strconv::is_print(character)
        {
            let _ = write!(text, " '{character}'");
        }
        let zero = self.flags.zero;
        self.flags.zero = false;
        self.pad(&text);
        self.flags.zero = zero;
    }

    fn fmt_float_verb(&mut self, value: f64, verb: char, original: &Value) {
        match verb {
            'v' => self.fmt_float(value, 'g', -1),
            'b' | 'g' | 'G' | 'x' | 'X' => {
                let prec = if self.flags.prec_present {
                    self.flags.prec as i64
                } else {
                    -1
                };
                self.fmt_float(value, verb, prec);
            }
            'f' | 'e' | 'E' | 'F' => {
                let prec = if self.flags.prec_present {
                    self.flags.prec as i64
                } else {
                    6
                };
                self.fmt_float(value, verb, prec);
            }
            _ => self.bad_verb(original, verb),
        }
    }

    /// Go's `fmt.fmtFloat`.
    fn fmt_float(&mut self, value: f64, verb: char, prec: i64) {
        let prec = if self.flags.prec_present {
            self.flags.prec as i64
        } else {
            prec
        };
        let formatted = format_float(value, verb, prec);
        // num[0] is the sign.
        let mut num: Vec<u8> = Vec::with_capacity(formatted.len() + 1);
        if formatted.starts_with('-') || formatted.starts_with('+') {
            num.extend_from_slice(formatted.as_bytes());
        } else {
            num.push(b'+');
            num.extend_from_slice(formatted.as_bytes());
        }
        if self.flags.space && num[0] == b'+' && !self.flags.plus {
            num[0] = b' ';
        }
        if num[1] == b'I' || num[1] == b'N' {
            let zero = self.flags.zero;
            self.flags.zero = false;
            if num[1] == b'N' && !self.flags.space && !self.flags.plus {
                num.remove(0);
            }
            let text = String::from_utf8(num).expect("ASCII");
            self.pad(&text);
            self.flags.zero = zero;
            return;
        }
        if self.flags.sharp && verb != 'b' {
            let mut digits: i64 = 0;
            if matches!(verb, 'v' | 'g' | 'G' | 'x') {
                digits = prec;
                if digits == -1 {
                    digits = 6;
                }
            }
            let mut tail: Vec<u8> = Vec::new();
            let mut has_decimal_point = false;
            let mut saw_nonzero_digit = false;
            let mut index = 1;
            while index < num.len() {
                match num[index] {
                    b'.' => has_decimal_point = true,
                    b'p' | b'P' => {
                        tail.extend_from_slice(&num[index..]);
                        num.truncate(index);
                        break;
                    }
                    b'e' | b'E' if verb != 'x' && verb != 'X' => {
                        tail.extend_from_slice(&num[index..]);
                        num.truncate(index);
                        break;
                    }
                    byte => {
                        if byte != b'0' {
                            saw_nonzero_digit = true;
                        }
                        if saw_nonzero_digit {
                            digits -= 1;
                        }
                    }
                }
                index += 1;
            }
            if !has_decimal_point {
                if num.len() == 2 && num[1] == b'0' {
                    digits -= 1;
                }
                num.push(b'.');
            }
            while digits > 0 {
                num.push(b'0');
                digits -= 1;
            }
            num.extend_from_slice(&tail);
        }
        let text = String::from_utf8(num).expect("ASCII");
        if self.flags.plus || !text.starts_with('+') {
            if self.flags.zero && self.flags.wid_present && self.flags.wid > text.len() {
                self.buf.push_str(&text[..1]);
                self.write_padding(self.flags.wid - text.len());
                self.buf.push_str(&text[1..]);
                return;
            }
            self.pad(&text);
            return;
        }
        self.pad(&text[1..]);
    }
}

/// The decimal digits of a float (no leading or trailing zeros) and the position of the
/// decimal point: value = 0.d1d2... × 10^dp.
struct Decimal {
    digits: Vec<u8>,
    dp: i64,
}

/// Digits from Rust's `{:e}` output ("d.ddde±x").
fn decimal_from_exp(text: &str) -> Decimal {
    let (mantissa, exponent) = text.split_once('e').expect("exponent form");
    let exponent: i64 = exponent.parse().expect("integer exponent");
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        return Decimal { digits, dp: 0 };
    }
    Decimal {
        digits,
        dp: exponent + 1,
    }
}

/// More significant digits than any float64's exact decimal expansion has.
const MAX_EXACT_DIGITS: usize = 800;

fn shortest_decimal(value: f64) -> Decimal {
    if value == 0.0 {
        return Decimal {
            digits: Vec::new(),
            dp: 0,
        };
    }
    decimal_from_exp(&format!("{:e}", value.abs()))
}

fn rounded_decimal(value: f64, significant: usize) -> Decimal {
    if value == 0.0 {
        return Decimal {
            digits: Vec::new(),
            dp: 0,
        };
    }
    // A float64's exact decimal expansion has fewer than 800 significant digits; the rest
    // are zeros, which the callers pad (and Rust's formatter refuses precisions past 65535).
    let significant = significant.clamp(1, MAX_EXACT_DIGITS);
    decimal_from_exp(&format!("{:.*e}", significant - 1, value.abs()))
}

fn fmt_e(out: &mut String, negative: bool, decimal: &Decimal, prec: i64, exp_char: char) {
    if negative {
        out.push('-');
    }
    let first = decimal.digits.first().copied().unwrap_or(b'0');
    out.push(char::from(first));
    if prec > 0 {
        out.push('.');
        let mut index = 1usize;
        let limit = decimal.digits.len().min(prec as usize + 1);
        if index < limit {
            for &digit in &decimal.digits[index..limit] {
                out.push(char::from(digit));
            }
            index = limit;
        }
        while index as i64 <= prec {
            out.push('0');
            index += 1;
        }
    }
    out.push(exp_char);
    let mut exponent = decimal.dp - 1;
    if decimal.digits.is_empty() {
        exponent = 0;
    }
    if exponent < 0 {
        out.push('-');
        exponent = -exponent;
    } else {
        out.push('+');
    }
    if exponent < 10 {
        out.push('0');
    }
    out.push_str(&exponent.to_string());
}

fn fmt_f(out: &mut String, negative: bool, decimal: &Decimal, prec: i64) {
    if negative {
        out.push('-');
    }
    if decimal.dp > 0 {
        let limit = decimal.digits.len().min(decimal.dp as usize);
        for &digit in &decimal.digits[..limit] {
            out.push(char::from(digit));
        }
        for _ in limit as i64..decimal.dp {
            out.push('0');
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for index in 1..=prec {
            let position = decimal.dp + index - 1;
            let digit = if position >= 0 && (position as usize) < decimal.digits.len() {
                decimal.digits[position as usize]
            } else {
                b'0'
            };
            out.push(char::from(digit));
        }
    }
}

/// Go's `strconv.FormatFloat(value, verb, prec, 64)`.
pub(crate) fn format_float(value: f64, verb: char, prec: i64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let negative = value.is_sign_negative();
    let mut out = String::new();
    match verb {
        'b' => {
            let bits = value.to_bits();
            let mut exponent = ((bits >> 52) & 0x7FF) as i64;
            let mut mantissa = bits & ((1u64 << 52) - 1);
            if exponent == 0 {
                exponent += 1;
            } else {
                mantissa |= 1u64 << 52;
            }
            exponent += -1023 - 52;
            if negative {
                out.push('-');
            }
            out.push_str(&mantissa.to_string());
            out.push('p');
            if exponent >= 0 {
                out.push('+');
            }
            out.push_str(&exponent.to_string());
            out
        }
        'x' | 'X' => format_hex_float(value, verb, prec),
        'e' | 'E' => {
            let decimal = if prec < 0 {
                shortest_decimal(value)
            } else {
                rounded_decimal(value, prec as usize + 1)
            };
            let prec = if prec < 0 {
                decimal.digits.len().max(1) as i64 - 1
            } else {
                prec
            };
            fmt_e(&mut out, negative, &decimal, prec, verb);
            out
        }
        'f' | 'F' => {
            if prec < 0 {
                let decimal = shortest_decimal(value);
                let prec = (decimal.digits.len() as i64 - decimal.dp).max(0);
                fmt_f(&mut out, negative, &decimal, prec);
                out
            } else {
                let prec = prec as usize;
                let exact = prec.min(MAX_EXACT_DIGITS + 400);
                let text = format!("{:.*}", exact, value.abs());
                if negative {
                    out.push('-');
                }
                out.push_str(&text);
                out.extend(std::iter::repeat_n('0', prec - exact));
                out
            }
        }
        _ => {
            // 'g' and 'G'.
            let shortest = prec < 0;
            let decimal = if shortest {
                shortest_decimal(value)
            } else {
                rounded_decimal(value, if prec == 0 { 1 } else { prec as usize })
            };
            let nd = decimal.digits.len() as i64;
            let mut prec = if shortest {
                nd
            } else if prec == 0 {
                1
            } else {
                prec
            };
            let mut eprec = prec;
            if eprec > nd && nd >= decimal.dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exponent = decimal.dp - 1;
            let exp_char = if verb == 'G' { 'E' } else { 'e' };
            if exponent < -4 || exponent >= eprec {
                if prec > nd {
                    prec = nd;
                }
                fmt_e(&mut out, negative, &decimal, (prec - 1).max(0), exp_char);
                return out;
            }
            if prec > decimal.dp {
                prec = nd;
            }
            fmt_f(&mut out, negative, &decimal, (prec - decimal.dp).max(0));
            out
        }
    }
}

fn format_hex_float(value: f64, verb: char, prec: i64) -> String {
    let bits = value.to_bits();
    let negative = value.is_sign_negative();
    let mut exponent = ((bits >> 52) & 0x7FF) as i64;
    let mut mantissa = bits & ((1u64 << 52) - 1);
    if exponent == 0 {
        exponent += 1;
    } else {
        mantissa |= 1u64 << 52;
    }
    exponent -= 1023;
    if mantissa == 0 {
        exponent = 0;
    }
    mantissa <<= 60 - 52;
    while mantissa != 0 && mantissa & (1u64 << 60) == 0 {
        mantissa <<= 1;
        exponent -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = (prec * 4) as u32;
        let extra = (mantissa << shift) & ((1u64 << 60) - 1);
        mantissa >>= 60 - shift;
        if extra | (mantissa & 1) > 1u64 << 59 {
            mantissa += 1;
        }
        mantissa <<= 60 - shift;
        if mantissa & (1u64 << 61) != 0 {
            mantissa >>= 1;
            exponent += 1;
        }
    }
    let digits = if verb == 'X' {
        UPPER_DIGITS
    } else {
        LOWER_DIGITS
    };
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push('0');
    out.push(verb);
    out.push(char::from(b'0' + ((mantissa >> 60) & 1) as u8));
    mantissa <<= 4;
    if prec < 0 && mantissa != 0 {
        out.push('.');
        while mantissa != 0 {
            out.push(char::from(digits[((mantissa >> 60) & 15) as usize]));
            mantissa <<= 4;
        }
    } else if prec > 0 {
        out.push('.');
        for _ in 0..prec {
            out.push(char::from(digits[((mantissa >> 60) & 15) as usize]));
            mantissa <<= 4;
        }
    }
    out.push(if verb == 'X' { 'P' } else { 'p' });
    if exponent < 0 {
        out.push('-');
        exponent = -exponent;
    } else {
        out.push('+');
    }
    if exponent < 10 {
        out.push('0');
    }
    out.push_str(&exponent.to_string());
    out
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`); the same as
/// [`format_go_float`].
pub fn format_float_v(value: f64) -> String {
    format_go_float(value)
}

#[cfg(test)]
mod tests;
