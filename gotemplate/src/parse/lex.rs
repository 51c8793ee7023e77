//! The lexer, a transcription of Go's `text/template/parse/lex.go` state machine that is
//! pulled one item at a time (no goroutine, no regular expressions).

#![allow(
    // Runes are i32 as in Go's lexer (with -1 for EOF); the casts mirror its conversions.
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::borrow::Cow;
use std::collections::VecDeque;

/// What kind of token an [`Item`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords appear after all the rest.
    Keyword,
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

/// A token or text string returned from the scanner.
#[derive(Debug, Clone)]
pub(crate) struct Item<'s> {
    pub typ: ItemType,
    pub pos: usize,
    pub val: Cow<'s, str>,
    pub line: usize,
}

impl Item<'_> {
    pub(crate) fn placeholder() -> Self {
        Item {
            typ: ItemType::Eof,
            pos: 0,
            val: Cow::Borrowed(""),
            line: 0,
        }
    }
}

impl std::fmt::Display for Item<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.typ {
            ItemType::Eof => formatter.write_str("EOF"),
            ItemType::Error => formatter.write_str(&self.val),
            typ if typ > ItemType::Keyword => write!(formatter, "<{}>", self.val),
            _ => {
                if self.val.chars().count() > 10 {
                    let head: String = self.val.chars().take(10).collect();
                    write!(formatter, "{}...", crate::strconv::quote(&head))
                } else {
                    formatter.write_str(&crate::strconv::quote(&self.val))
                }
            }
        }
    }
}

fn keyword(word: &str) -> Option<ItemType> {
    Some(match word {
        "block" => ItemType::Block,
        "break" => ItemType::Break,
        "continue" => ItemType::Continue,
        "define" => ItemType::Define,
        "else" => ItemType::Else,
        "end" => ItemType::End,
        "if" => ItemType::If,
        "range" => ItemType::Range,
        "nil" => ItemType::Nil,
        "template" => ItemType::Template,
        "with" => ItemType::With,
        _ => return None,
    })
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";
const TRIM_MARKER_LEN: usize = 2;
const EOF: i32 = -1;

#[derive(Clone, Copy)]
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Space,
    Identifier,
    Field,
    Variable,
    Char,
    Number,
    Quote,
    RawQuote,
    Done,
}

/// The scanner state.
pub(crate) struct Lexer<'s> {
    input: &'s str,
    pos: usize,
    start: usize,
    at_eof: bool,
    paren_depth: i64,
    line: usize,
    start_line: usize,
    break_ok: bool,
    continue_ok: bool,
    state: State,
    items: VecDeque<Item<'s>>,
}

pub(crate) fn is_space(r: i32) -> bool {
    r == ' ' as i32 || r == '\t' as i32 || r == '\r' as i32 || r == '\n' as i32
}

pub(crate) fn is_alphanumeric(r: i32) -> bool {
    if r < 0 {
        return false;
    }
    if r < 0x80 {
        let byte = r as u8;
        return byte == b'_' || byte.is_ascii_alphanumeric();
    }
    char::from_u32(r as u32).is_some_and(|c| c.is_alphabetic() || c.is_numeric())
}

fn has_left_trim_marker(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 2 && bytes[0] == b'-' && is_space(i32::from(bytes[1]))
}

fn has_right_trim_marker(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 2 && is_space(i32::from(bytes[0])) && bytes[1] == b'-'
}

fn right_trim_length(text: &str) -> usize {
    text.len() - text.trim_end_matches([' ', '\t', '\r', '\n']).len()
}

fn left_trim_length(text: &str) -> usize {
    text.len() - text.trim_start_matches([' ', '\t', '\r', '\n']).len()
}

/// Go's `%#U` of a rune: `U+0023 '#'`.
pub(crate) fn format_rune_u(r: i32) -> String {
    if r < 0 {
        return format!("U+{:04X}", -1i64 as u64);
    }
    let code = r as u32;
    match char::from_u32(code) {
        Some(character) if crate::strconv::is_print(character) => {
            format!("U+{code:04X} '{character}'")
        }
        _ => format!("U+{code:04X}"),
    }
}

impl<'s> Lexer<'s> {
    pub(crate) fn new(input: &'s str, break_ok: bool, continue_ok: bool) -> Self {
        Lexer {
            input,
            pos: 0,
            start: 0,
            at_eof: false,
            paren_depth: 0,
            line: 1,
            start_line: 1,
            break_ok,
            continue_ok,
            state: State::Text,
            items: VecDeque::new(),
        }
    }

    /// The next item from the input; EOF (or the error) repeats once the input is done.
    pub(crate) fn next_item(&mut self) -> Item<'s> {
        loop {
            if let Some(item) = self.items.pop_front() {
                return item;
            }
            if matches!(self.state, State::Done) {
                return Item {
                    typ: ItemType::Eof,
                    pos: self.input.len(),
                    val: Cow::Borrowed(""),
                    line: self.line,
                };
            }
            self.state = self.step(self.state);
        }
    }

    fn step(&mut self, state: State) -> State {
        match state {
            State::Text => self.lex_text(),
            State::LeftDelim => self.lex_left_delim(),
            State::Comment => self.lex_comment(),
            State::RightDelim => self.lex_right_delim(),
            State::InsideAction => self.lex_inside_action(),
            State::Space => self.lex_space(),
            State::Identifier => self.lex_identifier(),
            State::Field => self.lex_field_or_variable(ItemType::Field),
            State::Variable => self.lex_variable(),
            State::Char => self.lex_char(),
            State::Number => self.lex_number(),
            State::Quote => self.lex_quote(),
            State::RawQuote => self.lex_raw_quote(),
            State::Done => State::Done,
        }
    }

    fn next(&mut self) -> i32 {
        if self.pos >= self.input.len() {
            self.at_eof = true;
            return EOF;
        }
        let byte = self.input.as_bytes()[self.pos];
        if byte < 0x80 {
            self.pos += 1;
            if byte == b'\n' {
                self.line += 1;
            }
            return i32::from(byte);
        }
        let character = self.input[self.pos..]
            .chars()
            .next()
            .expect("pos is on a char boundary inside the input");
        self.pos += character.len_utf8();
        character as i32
    }

    fn peek(&mut self) -> i32 {
        let r = self.next();
        self.backup();
        r
    }

    fn backup(&mut self) {
        if !self.at_eof && self.pos > 0 {
            let byte = self.input.as_bytes()[self.pos - 1];
            if byte < 0x80 {
                self.pos -= 1;
                if byte == b'\n' {
                    self.line -= 1;
                }
                return;
            }
            let character = self.input[..self.pos].chars().next_back().expect("pos > 0");
            self.pos -= character.len_utf8();
        }
    }

    fn emit(&mut self, typ: ItemType) {
        self.items.push_back(Item {
            typ,
            pos: self.start,
            val: Cow::Borrowed(&self.input[self.start..self.pos]),
            line: self.start_line,
        });
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn ignore(&mut self) {
        self.line += count_newlines(&self.input[self.start..self.pos]);
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn accept(&mut self, valid: &str) -> bool {
        let r = self.next();
        if r >= 0 && valid.contains(char::from_u32(r as u32).unwrap_or('\0')) && r != 0 {
            return true;
        }
        self.backup();
        false
    }

    fn accept_run(&mut self, valid: &str) {
        loop {
            let r = self.next();
            if !(r > 0 && valid.contains(char::from_u32(r as u32).unwrap_or('\0'))) {
                break;
            }
        }
        self.backup();
    }

    fn errorf(&mut self, message: String) -> State {
        self.items.push_back(Item {
            typ: ItemType::Error,
            pos: self.start,
            val: Cow::Owned(message),
            line: self.start_line,
        });
        State::Done
    }

    fn lex_text(&mut self) -> State {
        if let Some(offset) = self.input[self.pos..].find(LEFT_DELIM) {
            let delim_len = LEFT_DELIM.len();
            self.pos += offset;
            let mut trim_length = 0;
            if has_left_trim_marker(&self.input[self.pos + delim_len..]) {
                trim_length = right_trim_length(&self.input[self.start..self.pos]);
            }
            self.pos -= trim_length;
            if self.pos > self.start {
                self.line += count_newlines(&self.input[self.start..self.pos]);
                self.emit(ItemType::Text);
            }
            self.pos += trim_length;
            self.ignore();
            return State::LeftDelim;
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.line += count_newlines(&self.input[self.start..self.pos]);
            self.emit(ItemType::Text);
        }
        self.emit(ItemType::Eof);
        State::Done
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.input[self.pos..];
        if has_right_trim_marker(rest) && rest[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            return (true, true);
        }
        if rest.starts_with(RIGHT_DELIM) {
            return (true, false);
        }
        (false, false)
    }

    fn lex_left_delim(&mut self) -> State {
        self.pos += LEFT_DELIM.len();
        let trim_space = has_left_trim_marker(&self.input[self.pos..]);
        let after_marker = if trim_space { TRIM_MARKER_LEN } else { 0 };
        if self.input[self.pos + after_marker..].starts_with(LEFT_COMMENT) {
            self.pos += after_marker;
            self.ignore();
            return State::Comment;
        }
        self.emit(ItemType::LeftDelim);
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        State::InsideAction
    }

    fn lex_comment(&mut self) -> State {
        self.pos += LEFT_COMMENT.len();
        let Some(index) = self.input[self.pos..].find(RIGHT_COMMENT) else {
            return self.errorf("unclosed comment".into());
        };
        self.pos += index + RIGHT_COMMENT.len();
        let (delim, trim_space) = self.at_right_delim();
        if !delim {
            return self.errorf("comment ends before closing delimiter".into());
        }
        if trim_space {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim_space {
            self.pos += left_trim_length(&self.input[self.pos..]);
        }
        self.ignore();
        State::Text
    }

    fn lex_right_delim(&mut self) -> State {
        let trim_space = has_right_trim_marker(&self.input[self.pos..]);
        if trim_space {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        self.emit(ItemType::RightDelim);
        if trim_space {
            self.pos += left_trim_length(&self.input[self.pos..]);
            self.ignore();
        }
        State::Text
    }

    fn lex_inside_action(&mut self) -> State {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return State::RightDelim;
            }
            return self.errorf("unclosed left paren".into());
        }
        let r = self.next();
        if r == EOF {
            return self.errorf("unclosed action".into());
        }
        if is_space(r) {
            self.backup();
            return State::Space;
        }
        let Some(character) = char::from_u32(r as u32) else {
            return self.errorf(format!(
                "unrecognized character in action: {}",
                format_rune_u(r)
            ));
        };
        match character {
            '=' => self.emit(ItemType::Assign),
            ':' => {
                if self.next() != '=' as i32 {
                    return self.errorf("expected :=".into());
                }
                self.emit(ItemType::Declare);
            }
            '|' => self.emit(ItemType::Pipe),
            '"' => return State::Quote,
            '`' => return State::RawQuote,
            '$' => return State::Variable,
            '\'' => return State::Char,
            '.' => {
                if let Some(&next) = self.input.as_bytes().get(self.pos)
                    && !next.is_ascii_digit()
                {
                    return State::Field;
                }
                self.backup();
                return State::Number;
            }
            '+' | '-' | '0'..='9' => {
                self.backup();
                return State::Number;
            }
            _ if is_alphanumeric(r) => {
                self.backup();
                return State::Identifier;
            }
            '(' => {
                self.paren_depth += 1;
                self.emit(ItemType::LeftParen);
            }
            ')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.errorf("unexpected right paren".into());
                }
                self.emit(ItemType::RightParen);
            }
            _ if r < 0x80 && (0x20..0x7f).contains(&r) => self.emit(ItemType::Char),
            _ => {
                return self.errorf(format!(
                    "unrecognized character in action: {}",
                    format_rune_u(r)
                ));
            }
        }
        State::InsideAction
    }

    fn lex_space(&mut self) -> State {
        let mut spaces = 0;
        loop {
            let r = self.peek();
            if !is_space(r) {
                break;
            }
            self.next();
            spaces += 1;
        }
        let last = self.pos - 1;
        if has_right_trim_marker(&self.input[last..])
            && self.input[last + TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM)
        {
            self.backup();
            if spaces == 1 {
                return State::RightDelim;
            }
        }
        self.emit(ItemType::Space);
        State::InsideAction
    }

    fn lex_identifier(&mut self) -> State {
        loop {
            let r = self.next();
            if is_alphanumeric(r) {
                continue;
            }
            self.backup();
            let word = &self.input[self.start..self.pos];
            if !self.at_terminator() {
                return self.errorf(format!("bad character {}", format_rune_u(r)));
            }
            match keyword(word) {
                Some(item) => {
                    if (item == ItemType::Break && !self.break_ok)
                        || (item == ItemType::Continue && !self.continue_ok)
                    {
                        self.emit(ItemType::Identifier);
                    } else {
                        self.emit(item);
                    }
                }
                None if word == "true" || word == "false" => self.emit(ItemType::Bool),
                None => self.emit(ItemType::Identifier),
            }
            return State::InsideAction;
        }
    }

    fn lex_variable(&mut self) -> State {
        if self.at_terminator() {
            self.emit(ItemType::Variable);
            return State::InsideAction;
        }
        self.lex_field_or_variable(ItemType::Variable)
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) -> State {
        if self.at_terminator() {
            if typ == ItemType::Variable {
                self.emit(ItemType::Variable);
            } else {
                self.emit(ItemType::Dot);
            }
            return State::InsideAction;
        }
        let mut r;
        loop {
            r = self.next();
            if !is_alphanumeric(r) {
                self.backup();
                break;
            }
        }
        if !self.at_terminator() {
            return self.errorf(format!("bad character {}", format_rune_u(r)));
        }
        self.emit(typ);
        State::InsideAction
    }

    fn at_terminator(&mut self) -> bool {
        let r = self.peek();
        if is_space(r) {
            return true;
        }
        if r == EOF {
            return true;
        }
        if let Some(character) = char::from_u32(r as u32)
            && matches!(character, '.' | ',' | '|' | ':' | ')' | '(')
        {
            return true;
        }
        self.input[self.pos..].starts_with(RIGHT_DELIM)
    }

    fn lex_char(&mut self) -> State {
        self.lex_escaped_until(
            '\'',
            ItemType::CharConstant,
            "unterminated character constant",
        )
    }

    /// Scans a quoted literal whose backslash escapes may not cross a line, up to `close`.
    fn lex_escaped_until(&mut self, close: char, item: ItemType, unterminated: &str) -> State {
        loop {
            let r = self.next();
            if r == '\\' as i32 {
                let next = self.next();
                if next != EOF && next != '\n' as i32 {
                    continue;
                }
                return self.errorf(unterminated.into());
            }
            if r == EOF || r == '\n' as i32 {
                return self.errorf(unterminated.into());
            }
            if r == close as i32 {
                break;
            }
        }
        self.emit(item);
        State::InsideAction
    }

    fn lex_number(&mut self) -> State {
        if !self.scan_number() {
            let text = self.input[self.start..self.pos].to_string();
            return self.errorf(format!(
                "bad number syntax: {}",
                crate::strconv::quote(&text)
            ));
        }
        let sign = self.peek();
        if sign == '+' as i32 || sign == '-' as i32 {
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let text = self.input[self.start..self.pos].to_string();
                return self.errorf(format!(
                    "bad number syntax: {}",
                    crate::strconv::quote(&text)
                ));
            }
            self.emit(ItemType::Complex);
        } else {
            self.emit(ItemType::Number);
        }
        State::InsideAction
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if is_alphanumeric(self.peek()) {
            self.next();
            return false;
        }
        true
    }

    fn lex_quote(&mut self) -> State {
        self.lex_escaped_until('"', ItemType::String, "unterminated quoted string")
    }

    fn lex_raw_quote(&mut self) -> State {
        loop {
            let r = self.next();
            if r == EOF {
                return self.errorf("unterminated raw quoted string".into());
            }
            if r == '`' as i32 {
                break;
            }
        }
        self.emit(ItemType::RawString);
        State::InsideAction
    }
}

pub(crate) fn count_newlines(text: &str) -> usize {
    count_newlines_bytes(text.as_bytes())
}

pub(crate) fn count_newlines_bytes(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .fold(0, |count, &byte| count + usize::from(byte == b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &str) -> Vec<(ItemType, std::string::String)> {
        let mut lexer = Lexer::new(input, true, true);
        let mut out = Vec::new();
        loop {
            let item = lexer.next_item();
            let done = matches!(item.typ, ItemType::Eof | ItemType::Error);
            out.push((item.typ, item.val.into_owned()));
            if done {
                return out;
            }
        }
    }

    #[test]
    fn text_and_actions() {
        use ItemType::*;
        assert_eq!(
            items("a{{ .x | f 1 }}b"),
            vec![
                (Text, "a".into()),
                (LeftDelim, "{{".into()),
                (Space, " ".into()),
                (Field, ".x".into()),
                (Space, " ".into()),
                (Pipe, "|".into()),
                (Space, " ".into()),
                (Identifier, "f".into()),
                (Space, " ".into()),
                (Number, "1".into()),
                (Space, " ".into()),
                (RightDelim, "}}".into()),
                (Text, "b".into()),
                (Eof, std::string::String::new()),
            ]
        );
    }

    #[test]
    fn trim_markers_need_a_space() {
        use ItemType::*;
        assert_eq!(
            items("a  \n {{- 3 -}} \n b"),
            vec![
                (Text, "a".into()),
                (LeftDelim, "{{".into()),
                (Number, "3".into()),
                (RightDelim, "}}".into()),
                (Text, "b".into()),
                (Eof, std::string::String::new()),
            ]
        );
        assert_eq!(
            items("a {{-3}}"),
            vec![
                (Text, "a ".into()),
                (LeftDelim, "{{".into()),
                (Number, "-3".into()),
                (RightDelim, "}}".into()),
                (Eof, std::string::String::new()),
            ]
        );
    }

    #[test]
    fn comments_are_skipped_with_their_trim_markers() {
        use ItemType::*;
        assert_eq!(
            items("a \n{{- /* x\n}} */ -}}\n b"),
            vec![
                (Text, "a".into()),
                (Text, "b".into()),
                (Eof, std::string::String::new())
            ]
        );
        assert_eq!(
            items("{{/* x */ }}")[0].1,
            "comment ends before closing delimiter"
        );
        assert_eq!(items("{{/* x ")[0].1, "unclosed comment");
    }

    #[test]
    fn variables_keywords_and_literals() {
        use ItemType::*;
        let got = items("{{$x := 'a' \"s\\\"\" `r` true nil range $ .}}");
        let kinds: Vec<ItemType> = got
            .iter()
            .map(|(typ, _)| *typ)
            .filter(|typ| *typ != Space)
            .collect();
        assert_eq!(
            kinds,
            vec![
                LeftDelim,
                Variable,
                Declare,
                CharConstant,
                String,
                RawString,
                Bool,
                Nil,
                Range,
                Variable,
                Dot,
                RightDelim,
                Eof
            ]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            items("{{ \"abc }}").last().unwrap().1,
            "unterminated quoted string"
        );
        assert_eq!(
            items("{{ 3x }}").last().unwrap().1,
            "bad number syntax: \"3x\""
        );
        assert_eq!(
            items("{{ .a# }}").last().unwrap().1,
            "bad character U+0023 '#'"
        );
        assert_eq!(items("{{ ) }}").last().unwrap().1, "unexpected right paren");
        assert_eq!(items("{{ ( }}").last().unwrap().1, "unclosed left paren");
        assert_eq!(items("{{ .a ").last().unwrap().1, "unclosed action");
        assert_eq!(
            items("{{ \u{1} }}").last().unwrap().1,
            "unrecognized character in action: U+0001"
        );
    }
}
