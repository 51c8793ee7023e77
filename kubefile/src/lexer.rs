//! From physical lines to logical lines, the way Dockerfiles are read: UTF-8 BOM, parser
//! directives at the very top, `#` comment lines, line continuation with the escape character
//! (comment and empty lines inside a continuation are dropped), and heredoc bodies after
//! RUN, COPY and ADD lines.
//!
//! A logical line keeps a map from its own byte offsets back to the file, so every later
//! stage can report errors at the exact line and column of the original text.

use serde::Serialize;

use crate::diagnostics::Diagnostic;
use crate::source::Span;

/// Parser directives that may appear as `# name=value` comments at the top of a Kubefile.
pub const KNOWN_DIRECTIVES: [&str; 3] = ["syntax", "escape", "platform"];

/// A parser directive (`# syntax=...`, `# escape=...`, `# platform=...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// Lower-case directive name.
    pub name: String,
    /// Its value, trimmed.
    pub value: String,
    /// The whole directive line.
    pub span: Span,
    /// The value only.
    pub value_span: Span,
}

/// The body of one heredoc (`<<EOF` ... `EOF`) that follows a logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeredocBody {
    /// Delimiter word as written after `<<` / `<<-` (quotes included).
    pub word: String,
    /// The body, each line ending with `\n`, leading tabs removed for `<<-`.
    pub content: String,
    /// From the first body line through the terminator line.
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    logical: usize,
    source: usize,
}

/// One instruction's text with continuations joined, and the heredoc bodies that follow it.
#[derive(Debug, Clone)]
pub(crate) struct LogicalLine {
    pub text: String,
    segments: Vec<Segment>,
    /// From the first character of the instruction to the end of its last line or heredoc.
    pub span: Span,
    pub heredocs: Vec<HeredocBody>,
}

impl LogicalLine {
    fn new(text: &str, source_start: usize) -> Self {
        LogicalLine {
            text: text.to_owned(),
            segments: vec![Segment {
                logical: 0,
                source: source_start,
            }],
            span: Span::new(source_start, source_start + text.len()),
            heredocs: Vec::new(),
        }
    }

    fn append(&mut self, text: &str, source_start: usize) {
        self.segments.push(Segment {
            logical: self.text.len(),
            source: source_start,
        });
        self.text.push_str(text);
        self.span.end = source_start + text.len();
    }

    fn truncate(&mut self, logical_len: usize) {
        self.text.truncate(logical_len);
        let end = self.source_offset(logical_len);
        self.span.end = self.span.end.min(end.max(self.span.start));
    }

    /// Maps a byte offset of [`LogicalLine::text`] to a byte offset in the file.
    pub fn source_offset(&self, logical: usize) -> usize {
        let index = self.segments.partition_point(|s| s.logical <= logical) - 1;
        let segment = self.segments[index];
        segment.source + (logical - segment.logical)
    }

    /// Maps a byte range of [`LogicalLine::text`] to a span in the file.
    pub fn span_of(&self, start: usize, end: usize) -> Span {
        let source_start = self.source_offset(start);
        let source_end = if end > start {
            self.source_offset(end - 1) + 1
        } else {
            source_start
        };
        Span::new(source_start, source_end.max(source_start))
    }
}

/// The result of lexing a whole file.
#[derive(Debug, Clone)]
pub(crate) struct Lexed {
    pub escape: char,
    pub directives: Vec<Directive>,
    pub lines: Vec<LogicalLine>,
    pub diagnostics: Vec<Diagnostic>,
}

/// One physical line: where its text starts and ends in the file (line break excluded).
#[derive(Debug, Clone, Copy)]
struct Physical {
    start: usize,
    end: usize,
}

fn physical_lines(text: &str) -> Vec<Physical> {
    let mut lines = Vec::new();
    let mut start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let bytes = text.as_bytes();
    while start < text.len() {
        let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let content_end = if end > start && bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        lines.push(Physical {
            start,
            end: content_end,
        });
        start = end + 1;
    }
    lines
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_blank).starts_with('#')
}

/// Parses `# name = value` into (name, name offset, value, value offset).
fn directive_parts(line: &str) -> Option<(String, usize, usize)> {
    let rest = line.strip_prefix('#')?;
    let name_start = rest.len() - rest.trim_start().len();
    let after_space = &rest[name_start..];
    let name_len = after_space
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(after_space.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let name = after_space[..name_len].to_ascii_lowercase();
    let after_name = &after_space[name_len..];
    let after_name_trim = after_name.trim_start();
    let after_eq = after_name_trim.strip_prefix('=')?;
    let value = after_eq.trim();
    if value.is_empty() {
        return None;
    }
    let value_start = line.len() - after_eq.len() + (after_eq.len() - after_eq.trim_start().len());
    Some((name, value_start, value_start + value.len()))
}

/// If `line` ends with the escape character (and optional blanks), the text before it.
fn strip_continuation(line: &str, escape: char) -> Option<&str> {
    let trimmed = line.trim_end_matches(is_blank);
    trimmed.strip_suffix(escape)
}

/// The heredoc delimiter words of a line: `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`, in order.
pub(crate) fn heredoc_words(text: &str, escape: char) -> Vec<(usize, String)> {
    crate::syntax::raw_words(text, escape)
        .into_iter()
        .filter_map(|(start, word)| {
            let digits = word.bytes().take_while(u8::is_ascii_digit).count();
            let rest = word[digits..].strip_prefix("<<")?;
            let rest = rest.strip_prefix('-').unwrap_or(rest);
            if rest.is_empty() || rest.contains('<') {
                return None;
            }
            Some((start, word))
        })
        .collect()
}

/// A heredoc delimiter word split into its name, whether tabs are stripped (`<<-`) and whether
/// the name was quoted (which turns off variable expansion in the body).
pub(crate) fn heredoc_name(word: &str) -> (String, bool, bool) {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &word[digits + 2..];
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let quoted = rest.contains('"') || rest.contains('\'');
    let name: String = rest.chars().filter(|&c| c != '"' && c != '\'').collect();
    (name, strip_tabs, quoted)
}

fn first_word_upper(text: &str) -> String {
    text.split(|c: char| c.is_whitespace())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Splits a whole Kubefile into directives and logical lines.
pub(crate) fn lex(text: &str) -> Lexed {
    let physical = physical_lines(text);
    let mut lexed = Lexed {
        escape: '\\',
        directives: Vec::new(),
        lines: Vec::new(),
        diagnostics: Vec::new(),
    };
    let mut index = 0;
    while let Some(line) = physical.get(index) {
        let raw = &text[line.start..line.end];
        let indent = raw.len() - raw.trim_start_matches(is_blank).len();
        let content = &raw[indent..];
        let Some((name, mut value_start, mut value_end)) = directive_parts(content) else {
            break;
        };
        value_start += indent;
        value_end += indent;
        if !KNOWN_DIRECTIVES.contains(&name.as_str()) {
            break;
        }
        let span = Span::new(line.start, line.end);
        let value_span = Span::new(line.start + value_start, line.start + value_end);
        let value = raw[value_start..value_end].to_owned();
        if lexed.directives.iter().any(|d| d.name == name) {
            lexed.diagnostics.push(
                Diagnostic::error(
                    span,
                    format!("only one `{name}` parser directive can be used"),
                )
                .with_label("repeated directive"),
            );
        } else if name == "escape" && value != "\\" && value != "`" {
            lexed.diagnostics.push(
                Diagnostic::error(
                    value_span,
                    format!("invalid escape character `{value}`: it must be `\\` or `` ` ``"),
                )
                .with_label("not an escape character"),
            );
        } else {
            if name == "escape" {
                lexed.escape = value.chars().next().unwrap_or('\\');
            }
            lexed.directives.push(Directive {
                name,
                value,
                span,
                value_span,
            });
        }
        index += 1;
    }

    let escape = lexed.escape;
    while let Some(line) = physical.get(index) {
        index += 1;
        let content = &text[line.start..line.end];
        let trimmed = content.trim_start_matches(is_blank);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let start = line.start + (content.len() - trimmed.len());
        let mut logical = LogicalLine::new(trimmed, start);
        let mut continued = strip_continuation(trimmed, escape).map(str::len);
        while let Some(kept) = continued {
            logical.truncate(kept);
            let Some(next) = physical.get(index) else {
                break;
            };
            index += 1;
            let next_content = &text[next.start..next.end];
            if is_comment(next_content) || next_content.trim_matches(is_blank).is_empty() {
                continue;
            }
            logical.append(next_content, next.start);
            continued = strip_continuation(&logical.text, escape).map(str::len);
        }
        let keyword = first_word_upper(&logical.text);
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for (word_start, word) in heredoc_words(&logical.text, escape) {
                let (name, strip_tabs, _) = heredoc_name(&word);
                let body_start = physical.get(index).map_or(text.len(), |p| p.start);
                let mut content = String::new();
                let mut terminated = false;
                while let Some(body_line) = physical.get(index) {
                    index += 1;
                    let raw = &text[body_line.start..body_line.end];
                    let candidate = if strip_tabs {
                        raw.trim_start_matches('\t')
                    } else {
                        raw
                    };
                    if candidate == name {
                        terminated = true;
                        logical.span.end = body_line.end;
                        break;
                    }
                    content.push_str(candidate);
                    content.push('\n');
                    logical.span.end = body_line.end;
                }
                if !terminated {
                    let at = logical.span_of(word_start, word_start + word.len());
                    lexed.diagnostics.push(
                        Diagnostic::error(at, format!("unterminated heredoc `{word}`"))
                            .with_label("opened here")
                            .with_help(format!(
                                "end the heredoc with a line that holds only `{name}`"
                            )),
                    );
                }
                logical.heredocs.push(HeredocBody {
                    word,
                    content,
                    span: Span::new(body_start, logical.span.end.max(body_start)),
                });
            }
        }
        lexed.lines.push(logical);
    }
    lexed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<String> {
        lex(src).lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn continuation_joins_without_adding_space() {
        assert_eq!(texts("RUN a \\\n  b\\\nc\n"), vec!["RUN a   bc"]);
    }

    #[test]
    fn comments_and_blank_lines_inside_continuations_are_dropped() {
        assert_eq!(texts("RUN a \\\n# note\n\n  \t\n  b\n"), vec!["RUN a   b"]);
    }

    #[test]
    fn offsets_map_back_to_the_file() {
        let src = "RUN a \\\n  b\n";
        let lexed = lex(src);
        let line = &lexed.lines[0];
        let b = line.text.find('b').unwrap();
        assert_eq!(&src[line.source_offset(b)..=line.source_offset(b)], "b");
    }

    #[test]
    fn directives_only_at_the_top() {
        let lexed = lex("# syntax=foo/bar\n# escape=`\nFROM a\n# platform=x\n");
        assert_eq!(lexed.escape, '`');
        assert_eq!(lexed.directives.len(), 2);
        assert_eq!(lexed.directives[0].value, "foo/bar");
        let lexed = lex("# hello\n# escape=`\nFROM a\n");
        assert!(lexed.directives.is_empty());
        assert_eq!(lexed.escape, '\\');
    }

    #[test]
    fn heredoc_bodies_follow_the_line() {
        let lexed = lex("RUN <<EOF\necho hi\nEOF\nFROM x\n");
        assert_eq!(lexed.lines.len(), 2);
        assert_eq!(lexed.lines[0].heredocs[0].content, "echo hi\n");
        let lexed = lex("COPY <<-\"A\" <<B /d\n\tx\n\tA\ny\nB\n");
        let docs = &lexed.lines[0].heredocs;
        assert_eq!(docs[0].content, "x\n");
        assert_eq!(docs[1].content, "y\n");
    }

    #[test]
    fn unterminated_heredoc_is_an_error() {
        let lexed = lex("RUN <<EOF\necho\n");
        assert_eq!(lexed.diagnostics[0].message, "unterminated heredoc `<<EOF`");
    }
}
