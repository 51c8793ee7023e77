//! Tokens of one logical line, parsed with `nom` over a located span so every token keeps its
//! byte offset in the line: the instruction keyword, `--flag[=value]` flags, JSON string
//! arrays, whitespace-separated words and quote-aware words.

use nom::IResult;
use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while_m_n, take_while1};
use nom::character::complete::{char, multispace0, none_of};
use nom::combinator::{map, opt, recognize, value};
use nom::multi::{many0, separated_list0};
use nom::sequence::{delimited, preceded};
use nom_locate::LocatedSpan;

/// Input of the token parsers: the logical line with byte offsets.
pub(crate) type Input<'a> = LocatedSpan<&'a str>;

/// A piece of the logical line: its byte offset there and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

impl Token {
    fn from_input(input: Input<'_>) -> Self {
        Token {
            start: input.location_offset(),
            end: input.location_offset() + input.fragment().len(),
            text: (*input.fragment()).to_owned(),
        }
    }
}

/// A `--name` or `--name=value` flag before an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawFlag {
    pub start: usize,
    pub end: usize,
    pub name: Token,
    pub value: Option<Token>,
}

/// Keyword, flags and the remaining argument text of a logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub keyword: Token,
    pub flags: Vec<RawFlag>,
    /// The arguments, with surrounding blanks trimmed.
    pub rest: Token,
}

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// A flag value: a run of non-blank characters where quotes may group blanks.
fn flag_value(input: Input<'_>) -> IResult<Input<'_>, Input<'_>> {
    recognize(many0(alt((
        recognize(delimited(char('"'), take_while(|c| c != '"'), char('"'))),
        recognize(delimited(char('\''), take_while(|c| c != '\''), char('\''))),
        take_while1(|c: char| !is_space(c) && c != '"' && c != '\''),
    ))))
    .parse(input)
}

fn flag(input: Input<'_>) -> IResult<Input<'_>, RawFlag> {
    let start = input.location_offset();
    let (rest, (name, value)) = preceded(
        tag("--"),
        (
            take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            opt(preceded(char('='), flag_value)),
        ),
    )
    .parse(input)?;
    if rest.fragment().chars().next().is_some_and(|c| !is_space(c)) {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::Verify,
        )));
    }
    Ok((
        rest,
        RawFlag {
            start,
            end: rest.location_offset(),
            name: Token::from_input(name),
            value: value.map(Token::from_input),
        },
    ))
}

fn head_parser(input: Input<'_>) -> IResult<Input<'_>, (Input<'_>, Vec<RawFlag>)> {
    let (input, _) = multispace0.parse(input)?;
    let (input, keyword) = take_while1(|c: char| !is_space(c)).parse(input)?;
    let (input, flags) = many0(preceded(take_while1(is_space), flag)).parse(input)?;
    let (input, _) = multispace0.parse(input)?;
    Ok((input, (keyword, flags)))
}

/// Splits a logical line into keyword, leading flags and argument text.
pub(crate) fn head(text: &str) -> Option<Head> {
    let (rest, (keyword, flags)) = head_parser(Input::new(text)).ok()?;
    let trimmed = rest.fragment().trim_end();
    Some(Head {
        keyword: Token::from_input(keyword),
        flags,
        rest: Token {
            start: rest.location_offset(),
            end: rest.location_offset() + trimmed.len(),
            text: trimmed.to_owned(),
        },
    })
}

/// Why a text that starts with `[` is not a JSON array of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError {
    /// Byte offset (in the parsed text) where the array stops making sense.
    pub offset: usize,
    /// What was expected there.
    pub message: String,
    /// The text is a valid JSON array, but not of strings only: an error, never shell form.
    pub non_string: bool,
}

fn hex_escape(input: Input<'_>) -> IResult<Input<'_>, u32> {
    map(
        preceded(
            char('u'),
            take_while_m_n(4, 4, |c: char| c.is_ascii_hexdigit()),
        ),
        |digits: Input<'_>| u32::from_str_radix(digits.fragment(), 16).unwrap_or(0xfffd),
    )
    .parse(input)
}

fn json_escape(input: Input<'_>) -> IResult<Input<'_>, Vec<u32>> {
    preceded(
        char('\\'),
        alt((
            value(vec![u32::from('"')], char('"')),
            value(vec![u32::from('\\')], char('\\')),
            value(vec![u32::from('/')], char('/')),
            value(vec![8], char('b')),
            value(vec![12], char('f')),
            value(vec![10], char('n')),
            value(vec![13], char('r')),
            value(vec![9], char('t')),
            map(hex_escape, |u| vec![u]),
        )),
    )
    .parse(input)
}

fn json_string(input: Input<'_>) -> IResult<Input<'_>, Token> {
    let start = input.location_offset();
    let (mut rest, _) = char('"').parse(input)?;
    let mut units: Vec<u32> = Vec::new();
    let mut text = String::new();
    loop {
        if let Ok((after, _)) = char::<_, nom::error::Error<Input<'_>>>('"').parse(rest) {
            flush_utf16(&mut units, &mut text);
            return Ok((
                after,
                Token {
                    start,
                    end: after.location_offset(),
                    text,
                },
            ));
        }
        if let Ok((after, escaped)) = json_escape(rest) {
            units.extend(escaped);
            rest = after;
            continue;
        }
        let (after, c) = none_of("\\\"\n").parse(rest)?;
        if u32::from(c) < 0x20 {
            return Err(nom::Err::Error(nom::error::Error::new(
                rest,
                nom::error::ErrorKind::Char,
            )));
        }
        flush_utf16(&mut units, &mut text);
        text.push(c);
        rest = after;
    }
}

/// Decodes pending `\uXXXX` code units (surrogate pairs included) into `text`.
fn flush_utf16(units: &mut Vec<u32>, text: &mut String) {
    let code_units: Vec<u16> = units
        .iter()
        .map(|&u| u16::try_from(u).unwrap_or(0xfffd))
        .collect();
    text.extend(char::decode_utf16(code_units).map(|r| r.unwrap_or('\u{fffd}')));
    units.clear();
}

fn json_array_parser(input: Input<'_>) -> IResult<Input<'_>, Vec<Token>> {
    delimited(
        (char('['), multispace0),
        separated_list0((multispace0, char(','), multispace0), json_string),
        (multispace0, char(']'), multispace0),
    )
    .parse(input)
}

/// Parses `text` as a JSON array of strings (the exec form of Dockerfile instructions).
///
/// `Ok(None)` means the text does not start with `[`, so it is not meant as JSON.
pub(crate) fn json_array(text: &str) -> Result<Option<Vec<Token>>, JsonError> {
    if !text.starts_with('[') {
        return Ok(None);
    }
    if let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(text)
        && let Some(index) = values.iter().position(|v| !v.is_string())
    {
        let mut error = json_error_at(text, Input::new(text));
        error.message = format!(
            "element {} is not a string: a JSON array here holds strings only",
            index + 1
        );
        error.non_string = true;
        return Err(error);
    }
    match json_array_parser(Input::new(text)) {
        Ok((rest, items)) if rest.fragment().is_empty() => Ok(Some(items)),
        Ok((rest, _)) => Err(JsonError {
            offset: rest.location_offset(),
            message: "unexpected text after the closing `]`".into(),
            non_string: false,
        }),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(json_error_at(text, e.input)),
        Err(nom::Err::Incomplete(_)) => Err(JsonError {
            offset: text.len(),
            message: "unexpected end of the JSON array".into(),
            non_string: false,
        }),
    }
}

/// Finds the first place where the JSON array goes wrong, by walking the valid prefix.
fn json_error_at(text: &str, _failed_at: Input<'_>) -> JsonError {
    let mut rest = Input::new(text);
    let mut expect_value = true;
    rest = char::<_, nom::error::Error<Input<'_>>>('[')
        .parse(rest)
        .map_or(rest, |(r, _)| r);
    loop {
        rest = multispace0::<_, nom::error::Error<Input<'_>>>(rest).map_or(rest, |(r, _)| r);
        let offset = rest.location_offset();
        let next = rest.fragment().chars().next();
        if expect_value {
            if next == Some(']') && offset == 1 {
                return JsonError {
                    offset,
                    message: "unexpected text after the closing `]`".into(),
                    non_string: false,
                };
            }
            match json_string(rest) {
                Ok((after, _)) => {
                    rest = after;
                    expect_value = false;
                }
                Err(_) if next == Some('"') => {
                    return JsonError {
                        offset,
                        message: "invalid JSON string: unterminated, or with a bad escape or a control character".into(),
                        non_string: false,
                    };
                }
                Err(_) => {
                    return JsonError {
                        offset,
                        message: "expected a JSON string (in double quotes)".into(),
                        non_string: false,
                    };
                }
            }
        } else {
            match next {
                Some(',') => {
                    rest = char::<_, nom::error::Error<Input<'_>>>(',')
                        .parse(rest)
                        .map_or(rest, |(r, _)| r);
                    expect_value = true;
                }
                None => {
                    return JsonError {
                        offset,
                        message: "unexpected end of the JSON array: expected `,` or `]`".into(),
                        non_string: false,
                    };
                }
                _ => {
                    return JsonError {
                        offset,
                        message: "expected `,` or `]`".into(),
                        non_string: false,
                    };
                }
            }
        }
    }
}

/// Splits on whitespace, with no quote handling (Dockerfile's shell form of COPY, FROM, ...).
pub(crate) fn whitespace_words(text: &str, base: usize) -> Vec<Token> {
    let parser = many0(preceded(
        multispace0::<Input<'_>, nom::error::Error<Input<'_>>>,
        take_while1(|c: char| !is_space(c)),
    ));
    let mut parser = parser;
    let mut words: Vec<Token> = match parser.parse(Input::new(text)) {
        Ok((_, words)) => words.into_iter().map(Token::from_input).collect(),
        Err(_) => Vec::new(),
    };
    for w in &mut words {
        w.start += base;
        w.end += base;
    }
    words
}

/// Splits on whitespace outside quotes, keeping quotes and escapes in the words (Dockerfile's
/// word splitting for ENV, LABEL and ARG); returns each word with its byte offset.
pub(crate) fn raw_words(text: &str, escape: char) -> Vec<(usize, String)> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut start = None;
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if quote.is_none() && is_space(c) {
            if let Some(s) = start.take() {
                words.push((s, std::mem::take(&mut current)));
            }
            continue;
        }
        start.get_or_insert(i);
        current.push(c);
        if c == escape && quote != Some('\'') {
            if let Some((_, next)) = chars.next() {
                current.push(next);
            }
            continue;
        }
        match quote {
            Some(q) if q == c => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, current));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_splits_keyword_flags_and_rest() {
        let h = head("COPY --chown=1:2 --from=img a b").unwrap();
        assert_eq!(h.keyword.text, "COPY");
        assert_eq!(h.flags.len(), 2);
        assert_eq!(h.flags[0].name.text, "chown");
        assert_eq!(h.flags[0].value.as_ref().unwrap().text, "1:2");
        assert_eq!(h.rest.text, "a b");
        assert_eq!(h.rest.start, 28);
    }

    #[test]
    fn flags_stop_at_the_first_argument() {
        let h = head("RUN echo --not-a-flag").unwrap();
        assert!(h.flags.is_empty());
        assert_eq!(h.rest.text, "echo --not-a-flag");
    }

    #[test]
    fn json_arrays() {
        let items = json_array(r#"["a", "b\"c", "\u00e9"]"#).unwrap().unwrap();
        let texts: Vec<_> = items.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, vec!["a", "b\"c", "é"]);
        assert_eq!(items[1].start, 6);
        assert_eq!(json_array("[]").unwrap().unwrap(), vec![]);
        assert_eq!(json_array("echo").unwrap(), None);
        let e = json_array(r#"["a" "b"]"#).unwrap_err();
        assert_eq!((e.offset, e.message.as_str()), (5, "expected `,` or `]`"));
        let e = json_array(r#"["a", 1]"#).unwrap_err();
        assert_eq!(e.offset, 6);
        let e = json_array(r#"["a"] x"#).unwrap_err();
        assert_eq!(e.offset, 6);
        let e = json_array(r#"["a"#).unwrap_err();
        assert_eq!(e.offset, 1);
    }

    #[test]
    fn quote_aware_words_keep_quotes() {
        let words = raw_words(r#"a="b c" 'd e' f\ g"#, '\\');
        let texts: Vec<_> = words.iter().map(|(_, w)| w.as_str()).collect();
        assert_eq!(texts, vec![r#"a="b c""#, "'d e'", r"f\ g"]);
    }
}
