//! From a logical line to a typed [`Instruction`]: per-instruction flags and argument forms,
//! with a diagnostic at the exact place of every problem.

use super::{
    App, AppCmds, AppEnv, Arg, ArgDecl, ArgsForm, Command, Commands, Copy, CopySource, From,
    Heredoc, Instruction, KeyValue, KeyValues, Launch, Run, RunCommand, Text, Word,
};
use crate::diagnostics::Diagnostic;
use crate::lexer::{LogicalLine, heredoc_name, heredoc_words};
use crate::source::Span;
use crate::syntax::{self, Head, RawFlag, Token};

/// Every keyword a Kubefile accepts, for suggestions.
pub const KEYWORDS: [&str; 17] = [
    "FROM",
    "COPY",
    "ADD",
    "RUN",
    "ARG",
    "ENV",
    "LABEL",
    "MAINTAINER",
    "APP",
    "APPCMDS",
    "APPENV",
    "CNI",
    "CSI",
    "KUBEVERSION",
    "LAUNCH",
    "CMDS",
    "CMD",
];

/// Dockerfile instructions a Kubefile rejects, and why a ClusterImage has no use for them.
const REJECTED: [(&str, &str); 9] = [
    (
        "ENTRYPOINT",
        "a ClusterImage is installed on hosts, never run as a container; use LAUNCH or CMDS for commands that run once the cluster is up",
    ),
    (
        "WORKDIR",
        "ClusterImage paths are relative to the cluster rootfs; write COPY destinations relative to it (RUN runs in the rootfs directory)",
    ),
    (
        "USER",
        "a ClusterImage runs no container process whose user could be set; use COPY --chown to set file owners",
    ),
    (
        "EXPOSE",
        "a ClusterImage runs no container whose ports could be published; services are declared by the cluster's manifests",
    ),
    (
        "VOLUME",
        "a ClusterImage runs no container that could mount volumes; storage is set up by the cluster (CSI) or its manifests",
    ),
    (
        "SHELL",
        "RUN always uses /bin/sh -c on the build host, and LAUNCH/CMDS run in the hosts' shell",
    ),
    (
        "ONBUILD",
        "instructions hidden in a base image would run unseen in every ClusterImage built on it; write them in each Kubefile",
    ),
    (
        "HEALTHCHECK",
        "a ClusterImage runs no container to check; check the cluster from LAUNCH/CMDS or a plugin",
    ),
    (
        "STOPSIGNAL",
        "a ClusterImage runs no container that could be stopped",
    ),
];

/// What the shell form of an instruction's arguments is.
#[derive(Clone, Copy)]
enum ShellForm {
    /// Whitespace-separated words (COPY, APP, LAUNCH, ...).
    Words,
    /// One shell command, the whole text (RUN, CMDS, CMD).
    OneCommand,
}

struct Line<'a> {
    logical: &'a LogicalLine,
    escape: char,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Line<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        self.logical.span_of(start, end)
    }

    fn word(&self, token: &Token) -> Word {
        Word {
            text: token.text.clone(),
            span: self.span(token.start, token.end),
        }
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Checks flags against those `keyword` accepts; returns their values by name.
    fn flags(
        &mut self,
        keyword: &str,
        flags: &[RawFlag],
        allowed: &[&str],
    ) -> Option<Vec<(String, Word)>> {
        let mut values: Vec<(String, Word)> = Vec::new();
        let mut ok = true;
        for flag in flags {
            let span = self.span(flag.start, flag.end);
            let name = flag.name.text.as_str();
            if !allowed.contains(&name) {
                let help = if allowed.is_empty() {
                    format!("{keyword} takes no flags")
                } else {
                    format!(
                        "{keyword} accepts {}",
                        allowed
                            .iter()
                            .map(|f| format!("--{f}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let d = Diagnostic::error(span, format!("unknown flag `--{name}` for {keyword}"))
                    .with_label("unknown flag")
                    .with_help(help);
                self.push(d);
                ok = false;
                continue;
            }
            if values.iter().any(|(n, _)| n == name) {
                let d = Diagnostic::error(span, format!("flag `--{name}` is given twice"))
                    .with_label("repeated flag");
                self.push(d);
                ok = false;
                continue;
            }
            match &flag.value {
                Some(value) if !value.text.is_empty() => {
                    values.push((name.to_owned(), self.word(value)));
                }
                _ => {
                    let d = Diagnostic::error(span, format!("flag `--{name}` needs a value"))
                        .with_label("no value")
                        .with_help(format!("write it as --{name}=VALUE"));
                    self.push(d);
                    ok = false;
                }
            }
        }
        ok.then_some(values)
    }

    /// Reports a JSON array that holds something other than strings.
    fn non_string_json(&mut self, at: usize, error: &syntax::JsonError) {
        let d = Diagnostic::error(
            self.span(at, at + 1),
            format!("invalid JSON array: {}", error.message),
        )
        .with_label("not a string")
        .with_help("quote every element: [\"a\", \"1\"]");
        self.push(d);
    }

    /// Arguments as a JSON array when the text is one, else in shell form: whitespace-separated
    /// words, or the whole text as one command (RUN, CMDS, CMD). Text that starts with `[` but
    /// is not valid JSON is read in shell form, with a warning; a JSON array of other things
    /// than strings is an error (`None`).
    fn json_or_shell(&mut self, head: &Head, shell: ShellForm) -> Option<(ArgsForm, Vec<Word>)> {
        let shell_form = |ctx: &mut Self| match shell {
            ShellForm::Words => ctx.shell_words(head),
            ShellForm::OneCommand => vec![ctx.rest_word(head)],
        };
        Some(match syntax::json_array(&head.rest.text) {
            Ok(Some(items)) => (
                ArgsForm::Json,
                items
                    .iter()
                    .map(|t| self.word(&shifted(t, head.rest.start)))
                    .collect(),
            ),
            Ok(None) => (ArgsForm::Shell, shell_form(self)),
            Err(e) if e.non_string => {
                self.non_string_json(head.rest.start + e.offset, &e);
                return None;
            }
            Err(e) => {
                let at = head.rest.start + e.offset;
                let read_as = match shell {
                    ShellForm::Words => "read in shell form",
                    ShellForm::OneCommand => "kept as one shell command",
                };
                let d = Diagnostic::warning(
                    self.span(at, at + 1),
                    format!("not a valid JSON array ({}); {read_as}", e.message),
                )
                .with_label("JSON stops here")
                .with_help("write a JSON array of double-quoted strings, or drop the `[`");
                self.push(d);
                (ArgsForm::Shell, shell_form(self))
            }
        })
    }

    fn shell_words(&mut self, head: &Head) -> Vec<Word> {
        let words = syntax::whitespace_words(&head.rest.text, head.rest.start);
        if let Some(hash) = words.iter().find(|w| w.text.starts_with('#')) {
            let d = Diagnostic::warning(
                self.span(hash.start, hash.end),
                "`#` only starts a comment at the beginning of a line; here it is an argument",
            )
            .with_label("read as an argument")
            .with_help("move the comment to a line of its own");
            self.push(d);
        }
        words.iter().map(|t| self.word(t)).collect()
    }

    /// The whole argument text as one word.
    fn rest_word(&self, head: &Head) -> Word {
        self.word(&head.rest)
    }

    /// Quote-aware words of the argument text (ENV, LABEL, ARG, APPENV).
    fn raw_words(&self, head: &Head) -> Vec<Token> {
        syntax::raw_words(&head.rest.text, self.escape)
            .into_iter()
            .map(|(start, text)| Token {
                start: head.rest.start + start,
                end: head.rest.start + start + text.len(),
                text,
            })
            .collect()
    }

    /// `key=value` words; `what` names the instruction for messages.
    fn pairs(&mut self, words: &[Token], what: &str) -> Option<Vec<KeyValue>> {
        let mut pairs = Vec::new();
        let mut ok = true;
        for token in words {
            let Some(eq) = token.text.find('=') else {
                let d = Diagnostic::error(
                    self.span(token.start, token.end),
                    format!("{what} expects KEY=VALUE, but `{}` has no `=`", token.text),
                )
                .with_label("no `=`")
                .with_help(format!("write {what} KEY=VALUE [KEY2=VALUE2 ...]"));
                self.push(d);
                ok = false;
                continue;
            };
            if eq == 0 {
                let d = Diagnostic::error(
                    self.span(token.start, token.end),
                    format!("{what} has an empty key in `{}`", token.text),
                )
                .with_label("no key before `=`");
                self.push(d);
                ok = false;
                continue;
            }
            pairs.push(KeyValue {
                key: self.word(&Token {
                    start: token.start,
                    end: token.start + eq,
                    text: token.text[..eq].to_owned(),
                }),
                value: self.word(&Token {
                    start: token.start + eq + 1,
                    end: token.end,
                    text: token.text[eq + 1..].to_owned(),
                }),
            });
        }
        ok.then_some(pairs)
    }

    fn heredocs(&mut self) -> Vec<Heredoc> {
        let words = heredoc_words(&self.logical.text, self.escape);
        words
            .iter()
            .zip(&self.logical.heredocs)
            .map(|((start, word), body)| {
                let (name, strip_tabs, quoted) = heredoc_name(word);
                Heredoc {
                    word: Word {
                        text: word.clone(),
                        span: self.span(*start, start + word.len()),
                    },
                    name,
                    strip_tabs,
                    expand: !quoted,
                    content: body.content.clone(),
                    content_span: body.span,
                }
            })
            .collect()
    }
}

fn shifted(token: &Token, by: usize) -> Token {
    Token {
        start: token.start + by,
        end: token.end + by,
        text: token.text.clone(),
    }
}

fn flag_value(flags: &[(String, Word)], name: &str) -> Option<Word> {
    flags
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, w)| w.clone())
}

/// Levenshtein distance, for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Parses one logical line into an instruction, or records why it cannot be one.
pub(crate) fn parse_line(
    line: &LogicalLine,
    escape: char,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Instruction> {
    let head = syntax::head(&line.text)?;
    let mut ctx = Line {
        logical: line,
        escape,
        diagnostics,
    };
    let keyword = head.keyword.text.to_ascii_uppercase();
    let keyword_span = ctx.span(head.keyword.start, head.keyword.end);
    let command = parse_command(&mut ctx, &keyword, keyword_span, &head)?;
    Some(Instruction {
        span: line.span,
        keyword_span,
        command,
    })
}

fn parse_command(
    ctx: &mut Line<'_>,
    keyword: &str,
    keyword_span: Span,
    head: &Head,
) -> Option<Command> {
    let needs = |ctx: &mut Line<'_>, what: &str, usage: &str| {
        let d = Diagnostic::error(keyword_span, format!("{keyword} needs {what}"))
            .with_label("incomplete instruction")
            .with_help(format!("usage: {usage}"));
        ctx.push(d);
    };
    match keyword {
        "FROM" => {
            let flags = ctx.flags(keyword, &head.flags, &["platform"])?;
            let words = ctx.shell_words(head);
            match words.len() {
                0 => {
                    needs(ctx, "an image", "FROM [--platform=os/arch] <image>|scratch");
                    None
                }
                1 => Some(Command::From(From {
                    platform: flag_value(&flags, "platform"),
                    image: words[0].clone(),
                })),
                3 if words[1].text.eq_ignore_ascii_case("as") => {
                    let d = Diagnostic::error(
                        words[1].span.to(words[2].span),
                        "named build stages (`FROM ... AS name`) are not supported: a Kubefile has one stage",
                    )
                    .with_label("stage name")
                    .with_help("remove `AS ...`; to take files out of another image use COPY --from=<image>");
                    ctx.push(d);
                    None
                }
                n => {
                    let d = Diagnostic::error(
                        words[1].span.to(words[n - 1].span),
                        format!("FROM takes one image reference, but {n} words were given"),
                    )
                    .with_label("unexpected words")
                    .with_help("usage: FROM [--platform=os/arch] <image>|scratch");
                    ctx.push(d);
                    None
                }
            }
        }
        "COPY" | "ADD" => {
            let allowed: &[&str] = if keyword == "COPY" {
                &["from", "chown", "chmod"]
            } else {
                &["chown", "chmod", "checksum"]
            };
            let flags = ctx.flags(keyword, &head.flags, allowed)?;
            let (form, words) = ctx.json_or_shell(head, ShellForm::Words)?;
            let heredocs = if form == ArgsForm::Shell {
                ctx.heredocs()
            } else {
                Vec::new()
            };
            if words.len() < 2 {
                needs(
                    ctx,
                    "at least one source and a destination",
                    &format!("{keyword} [flags] <src>... <dest>"),
                );
                return None;
            }
            let mut heredocs = heredocs.into_iter();
            let (dest, sources) = words.split_last()?;
            if form == ArgsForm::Shell && !heredoc_words(&dest.text, ctx.escape).is_empty() {
                let d = Diagnostic::error(
                    dest.span,
                    format!("a heredoc cannot be the {keyword} destination"),
                )
                .with_label("heredoc as destination")
                .with_help(format!(
                    "write {keyword} <<EOF <destination>, then the body"
                ));
                ctx.push(d);
                return None;
            }
            let sources = sources
                .iter()
                .map(|w| {
                    if form == ArgsForm::Shell
                        && !heredoc_words(&w.text, ctx.escape).is_empty()
                        && let Some(doc) = heredocs.next()
                    {
                        return CopySource::Heredoc(doc);
                    }
                    CopySource::Path(w.clone())
                })
                .collect();
            let copy = Copy {
                from: flag_value(&flags, "from"),
                chown: flag_value(&flags, "chown"),
                chmod: flag_value(&flags, "chmod"),
                checksum: flag_value(&flags, "checksum"),
                form,
                sources,
                dest: dest.clone(),
            };
            Some(if keyword == "COPY" {
                Command::Copy(copy)
            } else {
                Command::Add(copy)
            })
        }
        "RUN" => {
            let flags = ctx.flags(keyword, &head.flags, &["network"])?;
            if head.rest.text.is_empty() {
                needs(
                    ctx,
                    "a command",
                    "RUN <command> or RUN [\"program\", \"arg\"...]",
                );
                return None;
            }
            let command = match ctx.json_or_shell(head, ShellForm::OneCommand)? {
                (ArgsForm::Json, words) if words.is_empty() => {
                    needs(
                        ctx,
                        "a command",
                        "RUN <command> or RUN [\"program\", \"arg\"...]",
                    );
                    return None;
                }
                (ArgsForm::Json, words) => RunCommand::Exec(words),
                (ArgsForm::Shell, mut words) => RunCommand::Shell(words.remove(0)),
            };
            let heredocs = match command {
                RunCommand::Shell(_) => ctx.heredocs(),
                RunCommand::Exec(_) => Vec::new(),
            };
            Some(Command::Run(Run {
                network: flag_value(&flags, "network"),
                command,
                heredocs,
            }))
        }
        "ARG" => {
            ctx.flags(keyword, &head.flags, &[])?;
            let words = ctx.raw_words(head);
            if words.is_empty() {
                needs(ctx, "a name", "ARG <name>[=<default>] ...");
                return None;
            }
            let mut args = Vec::new();
            let mut ok = true;
            for token in words {
                let (name, default) = match token.text.find('=') {
                    Some(eq) => (
                        Token {
                            start: token.start,
                            end: token.start + eq,
                            text: token.text[..eq].to_owned(),
                        },
                        Some(Token {
                            start: token.start + eq + 1,
                            end: token.end,
                            text: token.text[eq + 1..].to_owned(),
                        }),
                    ),
                    None => (token.clone(), None),
                };
                if !is_identifier(&name.text) {
                    let d = Diagnostic::error(
                        ctx.span(name.start, name.end.max(name.start + 1)),
                        format!("`{}` is not a valid ARG name", name.text),
                    )
                    .with_label("invalid name")
                    .with_help("names start with a letter or `_` and hold letters, digits and `_`");
                    ctx.push(d);
                    ok = false;
                    continue;
                }
                args.push(ArgDecl {
                    name: ctx.word(&name),
                    default: default.as_ref().map(|d| ctx.word(d)),
                });
            }
            ok.then_some(Command::Arg(Arg { args }))
        }
        "ENV" | "LABEL" => {
            ctx.flags(keyword, &head.flags, &[])?;
            let words = ctx.raw_words(head);
            if words.is_empty() {
                needs(ctx, "KEY=VALUE", &format!("{keyword} <key>=<value> ..."));
                return None;
            }
            let values = if words[0].text.contains('=') {
                KeyValues {
                    pairs: ctx.pairs(&words, keyword)?,
                    legacy: false,
                }
            } else {
                if words.len() < 2 {
                    let d = Diagnostic::error(
                        ctx.span(words[0].start, words[0].end),
                        format!("{keyword} `{}` has no value", words[0].text),
                    )
                    .with_label("no value")
                    .with_help(format!("write {keyword} {}=VALUE", words[0].text));
                    ctx.push(d);
                    return None;
                }
                let value = Token {
                    start: words[1].start,
                    end: head.rest.end,
                    text: head.rest.text[words[1].start - head.rest.start..].to_owned(),
                };
                let d = Diagnostic::warning(
                    ctx.span(words[0].start, value.end),
                    format!("legacy `{keyword} key value` form"),
                )
                .with_label("legacy form")
                .with_help(format!("write {keyword} {}=\"...\"", words[0].text));
                ctx.push(d);
                KeyValues {
                    pairs: vec![KeyValue {
                        key: ctx.word(&words[0]),
                        value: ctx.word(&value),
                    }],
                    legacy: true,
                }
            };
            Some(if keyword == "ENV" {
                Command::Env(values)
            } else {
                Command::Label(values)
            })
        }
        "MAINTAINER" | "KUBEVERSION" => {
            ctx.flags(keyword, &head.flags, &[])?;
            if head.rest.text.is_empty() {
                let (what, usage) = if keyword == "MAINTAINER" {
                    ("a name", "MAINTAINER <name>")
                } else {
                    (
                        "a version range",
                        "KUBEVERSION <range>, e.g. KUBEVERSION >=1.20.0 <1.27.0",
                    )
                };
                needs(ctx, what, usage);
                return None;
            }
            let text = Text {
                text: ctx.rest_word(head),
            };
            if keyword == "MAINTAINER" {
                let d = Diagnostic::warning(keyword_span, "MAINTAINER is deprecated")
                    .with_label("deprecated")
                    .with_help("use LABEL maintainer=\"...\"");
                ctx.push(d);
                Some(Command::Maintainer(text))
            } else {
                Some(Command::KubeVersion(text))
            }
        }
        "APP" | "CNI" | "CSI" => {
            ctx.flags(keyword, &head.flags, &[])?;
            let (form, words) = ctx.json_or_shell(head, ShellForm::Words)?;
            if words.len() < 2 {
                needs(
                    ctx,
                    "a name and at least one source",
                    &format!("{keyword} <name> local://<path>|https://<url> ..."),
                );
                return None;
            }
            let app = App {
                form,
                name: words[0].clone(),
                sources: words[1..].to_vec(),
            };
            Some(match keyword {
                "APP" => Command::App(app),
                "CNI" => Command::Cni(app),
                _ => Command::Csi(app),
            })
        }
        "APPCMDS" => {
            ctx.flags(keyword, &head.flags, &[])?;
            let usage = "APPCMDS <app> [\"command 1\", \"command 2\", ...]";
            let words = syntax::whitespace_words(&head.rest.text, head.rest.start);
            let Some(name) = words.first() else {
                needs(ctx, "an app name and a JSON array of commands", usage);
                return None;
            };
            let array_start = name.end;
            let array_text = head.rest.text[array_start - head.rest.start..].trim_start();
            let array_offset = head.rest.end - array_text.len();
            match syntax::json_array(array_text) {
                Ok(Some(items)) if !items.is_empty() => Some(Command::AppCmds(AppCmds {
                    name: ctx.word(name),
                    commands: items
                        .iter()
                        .map(|t| ctx.word(&shifted(t, array_offset)))
                        .collect(),
                })),
                Ok(Some(_)) => {
                    let d = Diagnostic::error(
                        ctx.span(array_offset, head.rest.end),
                        "APPCMDS needs at least one command",
                    )
                    .with_label("empty list")
                    .with_help(format!("usage: {usage}"));
                    ctx.push(d);
                    None
                }
                Ok(None) => {
                    let end = if array_text.is_empty() {
                        name.end
                    } else {
                        head.rest.end
                    };
                    let d = Diagnostic::error(
                        ctx.span(array_offset.min(end), end),
                        "APPCMDS needs its commands as a JSON array",
                    )
                    .with_label("not a JSON array")
                    .with_help(format!("usage: {usage}"));
                    ctx.push(d);
                    None
                }
                Err(e) => {
                    let at = array_offset + e.offset;
                    let d = Diagnostic::error(
                        ctx.span(at, (at + 1).min(head.rest.end).max(at)),
                        format!("invalid JSON array of commands: {}", e.message),
                    )
                    .with_label("JSON stops here")
                    .with_help(format!("usage: {usage}"));
                    ctx.push(d);
                    None
                }
            }
        }
        "APPENV" => {
            ctx.flags(keyword, &head.flags, &[])?;
            let words = ctx.raw_words(head);
            if words.len() < 2 {
                needs(
                    ctx,
                    "an app name and at least one KEY=VALUE",
                    "APPENV <app> <key>=<value> ...",
                );
                return None;
            }
            let pairs = ctx.pairs(&words[1..], "APPENV")?;
            Some(Command::AppEnv(AppEnv {
                name: ctx.word(&words[0]),
                pairs,
            }))
        }
        "LAUNCH" => {
            ctx.flags(keyword, &head.flags, &[])?;
            let (form, apps) = ctx.json_or_shell(head, ShellForm::Words)?;
            if apps.is_empty() {
                needs(ctx, "at least one app name", "LAUNCH [\"app1\", \"app2\"]");
                return None;
            }
            Some(Command::Launch(Launch { form, apps }))
        }
        "CMDS" | "CMD" => {
            ctx.flags(keyword, &head.flags, &[])?;
            let usage = format!("{keyword} [\"command 1\", \"command 2\"] or {keyword} <command>");
            if head.rest.text.is_empty() {
                needs(ctx, "a command", &usage);
                return None;
            }
            let (form, commands) = ctx.json_or_shell(head, ShellForm::OneCommand)?;
            if commands.is_empty() {
                needs(ctx, "a command", &usage);
                return None;
            }
            if keyword == "CMD" {
                let d = Diagnostic::warning(keyword_span, "CMD is deprecated")
                    .with_label("deprecated")
                    .with_help(
                        "use CMDS [\"command 1\", \"command 2\"]; CMD in JSON form runs each element as its own command",
                    );
                ctx.push(d);
                Some(Command::Cmd(Commands { form, commands }))
            } else {
                Some(Command::Cmds(Commands { form, commands }))
            }
        }
        other => {
            if let Some((_, why)) = REJECTED.iter().find(|(k, _)| *k == other) {
                let d = Diagnostic::error(
                    keyword_span,
                    format!("{other} is not supported in a Kubefile"),
                )
                .with_label("not a Kubefile instruction")
                .with_help(format!("{other} has no use in a ClusterImage: {why}"));
                ctx.push(d);
                return None;
            }
            let suggestion = KEYWORDS
                .iter()
                .map(|k| (distance(other, k), *k))
                .min()
                .filter(|(d, _)| *d <= 2);
            let help = match suggestion {
                Some((_, k)) => format!("did you mean `{k}`?"),
                None => format!("the Kubefile instructions are {}", KEYWORDS.join(", ")),
            };
            let d = Diagnostic::error(
                keyword_span,
                format!("unknown instruction `{}`", head.keyword.text),
            )
            .with_label("not an instruction")
            .with_help(help);
            ctx.push(d);
            None
        }
    }
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::distance;

    #[test]
    fn distances() {
        assert_eq!(distance("COPPY", "COPY"), 1);
        assert_eq!(distance("LANCH", "LAUNCH"), 1);
        assert_eq!(distance("", "ADD"), 3);
    }
}
