//! ARG/ENV substitution with the rules of Dockerfile words: `$V`, `${V}`, `${V:-d}`, `${V-d}`,
//! `${V:+a}`, `${V+a}`, `${V:?msg}`, `${V?msg}`, single and double quotes, and the escape
//! character.
//!
//! Two modes:
//! - [`expand_word`] for build-time words (COPY paths, LABEL values, APP names, ...): quotes and
//!   escapes are removed, unset variables expand to nothing, as in a Dockerfile.
//! - [`expand_command`] for shell text that runs later on the cluster (CMDS, CMD, APPCMDS): only
//!   variables known at build time are replaced; quotes, escapes and every other `$...` are kept
//!   verbatim for the shell that runs the command, and nothing inside single quotes is touched.

use std::iter::Peekable;
use std::str::CharIndices;

/// A substitution that cannot be performed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    /// What is wrong.
    pub message: String,
    /// Byte offset in the expanded text where the problem starts.
    pub offset: usize,
}

/// Looks up a variable's current value; `None` when it is not set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands a build-time word: quotes and escapes removed, unset variables empty.
pub fn expand_word(word: &str, escape: char, vars: Lookup<'_>) -> Result<String, ExpandError> {
    let mut lexer = Lexer::new(word, escape, vars, Mode::Word);
    lexer.run_until(None)
}

/// Expands variables known at build time in shell text meant for a later shell; everything
/// else is left as written.
pub fn expand_command(text: &str, escape: char, vars: Lookup<'_>) -> Result<String, ExpandError> {
    let mut lexer = Lexer::new(text, escape, vars, Mode::Command);
    lexer.run_until(None)
}

/// Removes quotes and escapes without substituting anything (used for keys and names that are
/// compared before expansion, such as ARG names).
pub fn unquote(word: &str, escape: char) -> Result<String, ExpandError> {
    let mut lexer = Lexer::new(word, escape, &|_| None, Mode::Literal);
    lexer.run_until(None)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Dockerfile word processing.
    Word,
    /// Raw quotes and escapes, unknown variables kept verbatim.
    Command,
    /// Quote removal only: `$` is an ordinary character.
    Literal,
}

struct Lexer<'t, 'v> {
    text: &'t str,
    chars: Peekable<CharIndices<'t>>,
    escape: char,
    vars: Lookup<'v>,
    mode: Mode,
}

impl<'t, 'v> Lexer<'t, 'v> {
    fn new(text: &'t str, escape: char, vars: Lookup<'v>, mode: Mode) -> Self {
        Lexer {
            text,
            chars: text.char_indices().peekable(),
            escape,
            vars,
            mode,
        }
    }

    fn raw(&self) -> bool {
        self.mode == Mode::Command
    }

    fn offset(&mut self) -> usize {
        self.chars.peek().map_or(self.text.len(), |&(i, _)| i)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn next(&mut self) -> Option<char> {
        self.chars.next().map(|(_, c)| c)
    }

    fn error(&mut self, message: impl Into<String>) -> ExpandError {
        ExpandError {
            message: message.into(),
            offset: self.offset(),
        }
    }

    /// Processes text until `stop` (consumed, not included) or the end.
    fn run_until(&mut self, stop: Option<char>) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok(out);
            }
            if c == '\'' {
                self.single_quoted(&mut out)?;
            } else if c == '"' {
                self.double_quoted(&mut out)?;
            } else if c == '$' && self.mode != Mode::Literal {
                let value = self.dollar()?;
                out.push_str(&value);
            } else if c == self.escape {
                self.next();
                if let Some(escaped) = self.next() {
                    if self.raw() {
                        out.push(self.escape);
                    }
                    out.push(escaped);
                } else if self.raw() {
                    out.push(self.escape);
                }
            } else {
                self.next();
                out.push(c);
            }
        }
        match stop {
            Some(_) => Err(self.error("missing '}' to close the variable substitution")),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self, out: &mut String) -> Result<(), ExpandError> {
        let start = self.offset();
        self.next();
        if self.raw() {
            out.push('\'');
        }
        while let Some(c) = self.next() {
            if c == '\'' {
                if self.raw() {
                    out.push('\'');
                }
                return Ok(());
            }
            out.push(c);
        }
        Err(ExpandError {
            message: "unterminated single quote".into(),
            offset: start,
        })
    }

    fn double_quoted(&mut self, out: &mut String) -> Result<(), ExpandError> {
        let start = self.offset();
        self.next();
        if self.raw() {
            out.push('"');
        }
        while let Some(c) = self.peek() {
            if c == '"' {
                self.next();
                if self.raw() {
                    out.push('"');
                }
                return Ok(());
            }
            if c == '$' && self.mode != Mode::Literal {
                let value = self.dollar()?;
                out.push_str(&value);
                continue;
            }
            self.next();
            if c == self.escape {
                match self.peek() {
                    Some(next) if next == '"' || next == '$' || next == self.escape => {
                        self.next();
                        if self.raw() {
                            out.push(c);
                        }
                        out.push(next);
                    }
                    Some(_) => out.push(c),
                    None => {}
                }
                continue;
            }
            out.push(c);
        }
        Err(ExpandError {
            message: "unterminated double quote".into(),
            offset: start,
        })
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                self.next();
                name.push(d);
            }
            return name;
        }
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                self.next();
                name.push(c);
            } else {
                break;
            }
        }
        name
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.vars)(name)
    }

    /// Handles `$...` starting at the `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        let dollar_at = self.offset();
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.raw() => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(self.error("missing '}' to close the variable substitution")),
            Some('{' | '}' | ':') => {
                return Err(self.error("bad substitution: expected a variable name after '${'"));
            }
            _ => {}
        }
        let name_at = self.offset();
        let name = self.name();
        if name.is_empty() {
            return Err(ExpandError {
                message: "bad substitution: expected a variable name after '${'".into(),
                offset: name_at,
            });
        }
        let operator_at = self.offset();
        let value = self.lookup(&name);
        match self.next() {
            Some('}') => Ok(match value {
                Some(v) => v,
                None if self.raw() => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let modifier_at = self.offset();
                let modifier = self.next();
                let word = self.run_until(Some('}'))?;
                let raw_text = &self.text[dollar_at..self.offset()];
                if value.is_none() && self.raw() {
                    return Ok(raw_text.to_owned());
                }
                let value = value.unwrap_or_default();
                match modifier {
                    Some('-') => Ok(if value.is_empty() { word } else { value }),
                    Some('+') => Ok(if value.is_empty() { value } else { word }),
                    Some('?') if value.is_empty() => Err(ExpandError {
                        message: required_message(&name, &word, "is not allowed to be empty"),
                        offset: dollar_at,
                    }),
                    Some('?') => Ok(value),
                    Some(other) => Err(ExpandError {
                        message: format!(
                            "unsupported modifier ':{other}' in ${{{name}:...}}; use :-, :+ or :?"
                        ),
                        offset: modifier_at,
                    }),
                    None => Err(ExpandError {
                        message: "missing '}' to close the variable substitution".into(),
                        offset: modifier_at,
                    }),
                }
            }
            Some(op @ ('-' | '+' | '?')) => {
                let word = self.run_until(Some('}'))?;
                let raw_text = &self.text[dollar_at..self.offset()];
                match (op, value) {
                    (_, None) if self.raw() => Ok(raw_text.to_owned()),
                    ('-' | '?', Some(v)) => Ok(v),
                    ('-', None) | ('+', Some(_)) => Ok(word),
                    ('+', None) => Ok(String::new()),
                    (_, None) => Err(ExpandError {
                        message: required_message(&name, &word, "is not allowed to be unset"),
                        offset: dollar_at,
                    }),
                    _ => unreachable!("operator is one of - + ?"),
                }
            }
            None => Err(ExpandError {
                message: "missing '}' to close the variable substitution".into(),
                offset: operator_at,
            }),
            Some(other) => Err(ExpandError {
                message: format!(
                    "bad substitution: unexpected '{other}' after ${{{name}; expected '}}', ':-', '-', ':+', '+', ':?' or '?'"
                ),
                offset: operator_at,
            }),
        }
    }
}

fn required_message(name: &str, word: &str, default: &str) -> String {
    if word.is_empty() {
        format!("{name}: {default}")
    } else {
        format!("{name}: {word}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn vars() -> BTreeMap<String, String> {
        [("A", "alpha"), ("EMPTY", ""), ("SP", "a b")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn word(text: &str) -> Result<String, ExpandError> {
        let v = vars();
        expand_word(text, '\\', &|n| v.get(n).cloned())
    }

    fn command(text: &str) -> String {
        let v = vars();
        expand_command(text, '\\', &|n| v.get(n).cloned()).unwrap()
    }

    #[test]
    fn simple_forms() {
        assert_eq!(word("$A").unwrap(), "alpha");
        assert_eq!(word("${A}").unwrap(), "alpha");
        assert_eq!(word("x${A}y").unwrap(), "xalphay");
        assert_eq!(word("$A.b").unwrap(), "alpha.b");
        assert_eq!(word("$UNSET").unwrap(), "");
        assert_eq!(word("$").unwrap(), "$");
        assert_eq!(word("$(NAME)").unwrap(), "$(NAME)");
        assert_eq!(word("$1x").unwrap(), "x");
    }

    #[test]
    fn modifiers() {
        assert_eq!(word("${UNSET:-d}").unwrap(), "d");
        assert_eq!(word("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(word("${EMPTY-d}").unwrap(), "");
        assert_eq!(word("${UNSET-d}").unwrap(), "d");
        assert_eq!(word("${A:-d}").unwrap(), "alpha");
        assert_eq!(word("${A:+x}").unwrap(), "x");
        assert_eq!(word("${EMPTY:+x}").unwrap(), "");
        assert_eq!(word("${EMPTY+x}").unwrap(), "x");
        assert_eq!(word("${UNSET+x}").unwrap(), "");
        assert_eq!(word("${UNSET:-$A}").unwrap(), "alpha");
        assert_eq!(word(r#"${NAME:-"minio"}"#).unwrap(), "minio");
        assert_eq!(word("${A:?x}").unwrap(), "alpha");
        assert_eq!(
            word("${UNSET:?must be set}").unwrap_err().message,
            "UNSET: must be set"
        );
        assert_eq!(word("${EMPTY?}").unwrap(), "");
        assert_eq!(
            word("${UNSET?}").unwrap_err().message,
            "UNSET: is not allowed to be unset"
        );
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(word(r#""a $A""#).unwrap(), "a alpha");
        assert_eq!(word("'a $A'").unwrap(), "a $A");
        assert_eq!(word(r"\$A").unwrap(), "$A");
        assert_eq!(word(r#""\$A\"\x""#).unwrap(), r#"$A"\x"#);
        assert_eq!(word(r"a\ b").unwrap(), "a b");
        assert_eq!(word("a\\").unwrap(), "a");
        let v = vars();
        assert_eq!(
            expand_word("`$A", '`', &|n| v.get(n).cloned()).unwrap(),
            "$A"
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = word("x${A").unwrap_err();
        assert_eq!(e.message, "missing '}' to close the variable substitution");
        let e = word("${}").unwrap_err();
        assert_eq!(e.offset, 2);
        assert_eq!(
            word("'abc").unwrap_err().message,
            "unterminated single quote"
        );
        assert_eq!(word("ab\"c").unwrap_err().offset, 2);
        assert!(
            word("${A:=x}")
                .unwrap_err()
                .message
                .contains("unsupported modifier")
        );
        assert!(
            word("${A!}")
                .unwrap_err()
                .message
                .contains("unexpected '!'")
        );
    }

    #[test]
    fn command_mode_keeps_shell_syntax() {
        assert_eq!(command("echo $A"), "echo alpha");
        assert_eq!(command("echo '$A' \"$A\""), "echo '$A' \"alpha\"");
        assert_eq!(
            command("echo $HostIP ${X:-y} $(NAME)"),
            "echo $HostIP ${X:-y} $(NAME)"
        );
        assert_eq!(
            command(r#"kubectl patch -p '{"a":1}' \$A"#),
            r#"kubectl patch -p '{"a":1}' \$A"#
        );
        assert_eq!(command("${A:+on}"), "on");
    }

    #[test]
    fn unquote_only_removes_quotes() {
        assert_eq!(unquote(r#""a.b"$c"#, '\\').unwrap(), "a.b$c");
    }
}
