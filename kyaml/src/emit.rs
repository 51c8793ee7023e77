//! YAML as `sigs.k8s.io/yaml.Marshal` writes it: the value goes through `encoding/json`, is read
//! back by go-yaml v2 (integral numbers become ints) and written by go-yaml v2's emitter with
//! its key order, quoting rules, literal blocks and 80-column folding.

use std::cmp::Ordering;

use gotemplate::Value;
use gotemplate::value::format_go_float;

use crate::plain::Plain;
use crate::scalar::{Resolved, is_base60_float, resolve_plain};

const BEST_INDENT: isize = 2;
const BEST_WIDTH: usize = 80;
/// go-yaml writes keys longer than this (in bytes) in the explicit `? key` form.
const MAX_SIMPLE_KEY: usize = 128;

/// `sigs.k8s.io/yaml.Marshal`: block YAML with keys in go-yaml's order, ending in a newline.
pub fn to_yaml(value: &Value) -> Result<String, String> {
    let plain =
        Plain::from_value(value).map_err(|error| format!("error marshaling into JSON: {error}"))?;
    let mut emitter = Emitter {
        out: String::new(),
        column: 0,
        indent: -1,
        whitespace: true,
        indention: true,
    };
    emitter.node(&plain, false);
    emitter.write_indent();
    Ok(emitter.out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Emitter {
    out: String,
    column: usize,
    indent: isize,
    /// The last character written was whitespace (or nothing was written on the line).
    whitespace: bool,
    /// Only indentation (and indicators that count as such) is on the current line.
    indention: bool,
}

impl Emitter {
    fn put(&mut self, character: char) {
        self.out.push(character);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.indention = true;
    }

    fn write_break(&mut self, character: char) {
        if character == '\n' {
            self.put_break();
        } else {
            self.out.push(character);
            self.column = 0;
            self.indention = true;
        }
    }

    fn write_indent(&mut self) {
        let indent = usize::try_from(self.indent).unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for character in indicator.chars() {
            self.put(character);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    /// Raises the indentation and returns the previous one.
    fn increase_indent(&mut self, flow: bool, indentless: bool) -> isize {
        let saved = self.indent;
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
        saved
    }

    /// Emits a node; `mapping_context` is true for the keys and values of a mapping.
    fn node(&mut self, value: &Plain, mapping_context: bool) {
        match value {
            Plain::Null => self.scalar("null", Style::Plain, false),
            Plain::Bool(value) => {
                self.scalar(if *value { "true" } else { "false" }, Style::Plain, false);
            }
            Plain::Int(number) => self.scalar(&number.to_string(), Style::Plain, false),
            Plain::Float(number) => self.scalar(&yaml_number(*number), Style::Plain, false),
            Plain::String(text) => self.string(text, false),
            Plain::List(items) if items.is_empty() => self.empty("[]"),
            Plain::Map(entries) if entries.is_empty() => self.empty("{}"),
            Plain::List(items) => {
                let saved = self.increase_indent(false, mapping_context && !self.indention);
                for item in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(item, false);
                }
                self.indent = saved;
            }
            Plain::Map(entries) => {
                let saved = self.increase_indent(false, false);
                for (key, item) in sorted(entries) {
                    self.write_indent();
                    if key.len() <= MAX_SIMPLE_KEY && !analyze(key).multiline {
                        self.string(key, true);
                        self.write_indicator(":", false, false, false);
                    } else {
                        self.write_indicator("?", true, false, true);
                        self.string(key, false);
                        self.write_indent();
                        self.write_indicator(":", true, false, true);
                    }
                    self.node(item, true);
                }
                self.indent = saved;
            }
        }
    }

    fn empty(&mut self, brackets: &str) {
        let (open, close) = brackets.split_at(1);
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    /// A string, styled as go-yaml v2's `stringv` and `select_scalar_style` choose.
    fn string(&mut self, text: &str, simple_key: bool) {
        let can_use_plain = resolve_plain(text, true) == Resolved::Str && !is_base60_float(text);
        let style = if text.contains('\n') {
            Style::Literal
        } else if can_use_plain {
            Style::Plain
        } else {
            Style::Double
        };
        self.scalar(text, style, simple_key);
    }

    fn scalar(&mut self, text: &str, requested: Style, simple_key: bool) {
        let analysis = analyze(text);
        let mut style = requested;
        if simple_key && analysis.multiline {
            style = Style::Double;
        }
        if style == Style::Plain
            && (!analysis.block_plain_allowed || (text.is_empty() && simple_key))
        {
            style = Style::Single;
        }
        if style == Style::Single && !analysis.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!analysis.block_allowed || simple_key) {
            style = Style::Double;
        }
        if analysis.yaml_1_1_breaks {
            style = Style::Double;
        }
        let saved = self.increase_indent(true, false);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.write_plain(text, allow_breaks),
            Style::Single => self.write_single_quoted(text, allow_breaks),
            Style::Double => self.write_double_quoted(text, allow_breaks),
            Style::Literal => self.write_literal(text),
        }
        self.indent = saved;
    }

    fn write_plain(&mut self, text: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let mut spaces = false;
        for (index, character) in text.char_indices() {
            if character == ' ' {
                let next_space = text.as_bytes().get(index + 1) == Some(&b' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space {
                    self.write_indent();
                } else {
                    self.put(' ');
                }
                spaces = true;
            } else {
                self.put(character);
                self.indention = false;
                spaces = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, text: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let mut spaces = false;
        let mut breaks = false;
        for (index, character) in text.char_indices() {
            if character == ' ' {
                let next_space = text.as_bytes().get(index + 1) == Some(&b' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && index > 0
                    && index + 1 < text.len()
                    && !next_space
                {
                    self.write_indent();
                } else {
                    self.put(' ');
                }
                spaces = true;
            } else if is_break(character) {
                if !breaks && character == '\n' {
                    self.put_break();
                }
                self.write_break(character);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if character == '\'' {
                    self.put('\'');
                }
                self.put(character);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_quoted(&mut self, text: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let mut spaces = false;
        for (index, character) in text.char_indices() {
            if !is_printable(character)
                || character == '\u{FEFF}'
                || is_break(character)
                || character == '"'
                || character == '\\'
            {
                self.put('\\');
                self.escape(character);
                spaces = false;
            } else if character == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && index > 0
                    && index + 1 < text.len()
                {
                    self.write_indent();
                    if text.as_bytes().get(index + 1) == Some(&b' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(' ');
                }
                spaces = true;
            } else {
                self.put(character);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn escape(&mut self, character: char) {
        let short = match character {
            '\0' => '0',
            '\u{7}' => 'a',
            '\u{8}' => 'b',
            '\t' => 't',
            '\n' => 'n',
            '\u{b}' => 'v',
            '\u{c}' => 'f',
            '\r' => 'r',
            '\u{1b}' => 'e',
            '"' => '"',
            '\\' => '\\',
            '\u{85}' => 'N',
            '\u{a0}' => '_',
            '\u{2028}' => 'L',
            '\u{2029}' => 'P',
            _ => {
                let code = u32::from(character);
                let (letter, width) = match code {
                    0..=0xFF => ('x', 2),
                    0x100..=0xFFFF => ('u', 4),
                    _ => ('U', 8),
                };
                self.put(letter);
                for digit in format!("{code:0width$X}").chars() {
                    self.put(digit);
                }
                return;
            }
        };
        self.put(short);
    }

    fn write_literal(&mut self, text: &str) {
        self.write_indicator("|", true, false, false);
        if text.starts_with(|character: char| character == ' ' || is_break(character)) {
            self.write_indicator("2", false, false, false);
        }
        let mut tail = text.chars().rev();
        let chomp = match (tail.next(), tail.next()) {
            (Some(last), _) if !is_break(last) => Some("-"),
            (None, _) => Some("-"),
            (Some(_), None) => Some("+"),
            (Some(_), Some(before)) if is_break(before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for character in text.chars() {
            if is_break(character) {
                self.write_break(character);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(character);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// The YAML text of a JSON number as go-yaml re-reads `encoding/json`'s output: integral
/// values that fit `int64` or `uint64` are ints, the rest floats in `%g` form.
fn yaml_number(number: f64) -> String {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if number.fract() == 0.0 && (-TWO_63..TWO_64).contains(&number) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return if number < TWO_63 {
            (number as i64).to_string()
        } else {
            (number as u64).to_string()
        };
    }
    format_go_float(number)
}

fn is_break(character: char) -> bool {
    matches!(character, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's `is_printable` (on the UTF-8 encoding), in characters.
fn is_printable(character: char) -> bool {
    matches!(character, '\n' | ' '..='~' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        && character != '\u{FEFF}'
}

#[allow(clippy::struct_excessive_bools)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
    /// Holds U+0085, U+2028 or U+2029. go-yaml v2 writes them raw in plain, single-quoted
    /// and literal scalars and reads them back as line breaks (YAML 1.1); YAML 1.2 parsers,
    /// ours included, read them as content, so such text is double-quoted with its escapes
    /// (`\N`, `\L`, `\P`), which both read the same.
    yaml_1_1_breaks: bool,
}

/// go-yaml v2's `yaml_emitter_analyze_scalar`, for block context.
fn analyze(text: &str) -> Analysis {
    if text.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
            yaml_1_1_breaks: false,
        };
    }
    let mut block_indicators = text.starts_with("---") || text.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let mut characters = text.chars().peekable();
    let mut first = true;
    while let Some(character) = characters.next() {
        let next = characters.peek().copied();
        let last = next.is_none();
        let followed_by_whitespace = matches!(next, None | Some(' ' | '\t'));
        if first {
            match character {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    block_indicators = true;
                }
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match character {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(character) {
            special = true;
        }
        if character == ' ' {
            leading_space |= first;
            trailing_space |= last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(character) {
            line_breaks = true;
            leading_break |= first;
            trailing_break |= last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = matches!(character, ' ' | '\t' | '\0') || is_break(character);
        first = false;
    }
    let edges = leading_space || leading_break || trailing_space || trailing_break;
    Analysis {
        multiline: line_breaks,
        block_plain_allowed: !(edges
            || break_space
            || space_break
            || special
            || line_breaks
            || block_indicators),
        single_quoted_allowed: !(break_space || space_break || special),
        block_allowed: !(trailing_space || space_break || special),
        yaml_1_1_breaks: text.contains(['\u{85}', '\u{2028}', '\u{2029}']),
    }
}

/// Map keys in go-yaml v2's order (its `keyList.Less` for strings: runs of digits compare
/// as numbers, letters before other characters). A merge sort, which needs no total order.
fn sorted(entries: &[(String, Plain)]) -> Vec<(&str, &Plain)> {
    let mut items: Vec<(&str, &Plain)> = entries
        .iter()
        .map(|(key, value)| (key.as_str(), value))
        .collect();
    let mut buffer = items.clone();
    let mut width = 1;
    while width < items.len() {
        let mut start = 0;
        while start < items.len() {
            let middle = (start + width).min(items.len());
            let end = (start + 2 * width).min(items.len());
            let (mut left, mut right) = (start, middle);
            for slot in &mut buffer[start..end] {
                let take_right =
                    right < end && (left >= middle || key_less(items[right].0, items[left].0));
                if take_right {
                    *slot = items[right];
                    right += 1;
                } else {
                    *slot = items[left];
                    left += 1;
                }
            }
            start = end;
        }
        std::mem::swap(&mut items, &mut buffer);
        width *= 2;
    }
    items
}

fn key_less(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    for index in 0..a.len().min(b.len()) {
        if a[index] == b[index] {
            continue;
        }
        let a_letter = a[index].is_alphabetic();
        let b_letter = b[index].is_alphabetic();
        if a_letter && b_letter {
            return a[index] < b[index];
        }
        if a_letter || b_letter {
            return b_letter;
        }
        let (mut a_number, mut b_number) = (0_i64, 0_i64);
        if a[index] == '0' || b[index] == '0' {
            let nonzero_before = a[..index]
                .iter()
                .rev()
                .take_while(|character| character.is_ascii_digit())
                .any(|&character| character != '0');
            if nonzero_before {
                a_number = 1;
                b_number = 1;
            }
        }
        let run = |digits: &[char], mut number: i64| {
            let length = digits
                .iter()
                .take_while(|character| character.is_ascii_digit())
                .count();
            for digit in &digits[..length] {
                number = number
                    .wrapping_mul(10)
                    .wrapping_add(i64::from(u32::from(*digit) - u32::from('0')));
            }
            (number, length)
        };
        let (a_number, a_end) = run(&a[index..], a_number);
        let (b_number, b_end) = run(&b[index..], b_number);
        if a_number != b_number {
            return a_number < b_number;
        }
        if a_end != b_end {
            return a_end < b_end;
        }
        return a[index].cmp(&b[index]) == Ordering::Less;
    }
    a.len() < b.len()
}
