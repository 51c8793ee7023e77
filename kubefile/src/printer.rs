//! Writes a [`Kubefile`] AST back as Kubefile text, in a canonical layout: directives first,
//! upper-case keywords, one instruction per line, flags in a fixed order, heredoc bodies after
//! their line. Parsing the output gives the same AST (spans aside).

use std::fmt::Write;

use crate::instructions::{
    ArgsForm, Command, CopySource, Heredoc, KeyValue, Kubefile, RunCommand, Word,
};

/// Prints a Kubefile.
///
/// One AST cannot be printed faithfully: an instruction whose last word ends with the escape
/// character (the input ended with a continuation into nothing, as in `COPY a \ \` at the end
/// of the file). Printed, that line reads as a continuation again.
pub fn print(kubefile: &Kubefile) -> String {
    let mut out = String::new();
    for directive in &kubefile.directives {
        let _ = writeln!(out, "# {}={}", directive.name, directive.value);
    }
    for instruction in &kubefile.instructions {
        let command = &instruction.command;
        out.push_str(command.keyword());
        let mut heredocs: Vec<&Heredoc> = Vec::new();
        match command {
            Command::From(from) => {
                flag(&mut out, "platform", from.platform.as_ref());
                word(&mut out, &from.image);
            }
            Command::Copy(copy) | Command::Add(copy) => {
                flag(&mut out, "from", copy.from.as_ref());
                flag(&mut out, "chown", copy.chown.as_ref());
                flag(&mut out, "chmod", copy.chmod.as_ref());
                flag(&mut out, "checksum", copy.checksum.as_ref());
                let mut words: Vec<&str> = copy
                    .sources
                    .iter()
                    .map(|s| match s {
                        CopySource::Path(w) => w.text.as_str(),
                        CopySource::Heredoc(h) => {
                            heredocs.push(h);
                            h.word.text.as_str()
                        }
                    })
                    .collect();
                words.push(&copy.dest.text);
                list(&mut out, copy.form, &words);
            }
            Command::Run(run) => {
                flag(&mut out, "network", run.network.as_ref());
                match &run.command {
                    RunCommand::Shell(text) => word(&mut out, text),
                    RunCommand::Exec(words) => {
                        let words: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
                        list(&mut out, ArgsForm::Json, &words);
                    }
                }
                heredocs.extend(&run.heredocs);
            }
            Command::Arg(arg) => {
                for decl in &arg.args {
                    word(&mut out, &decl.name);
                    if let Some(default) = &decl.default {
                        out.push('=');
                        out.push_str(&default.text);
                    }
                }
            }
            Command::Env(values) | Command::Label(values) => {
                if values.legacy {
                    word(&mut out, &values.pairs[0].key);
                    word(&mut out, &values.pairs[0].value);
                } else {
                    pairs(&mut out, &values.pairs);
                }
            }
            Command::Maintainer(text) | Command::KubeVersion(text) => word(&mut out, &text.text),
            Command::App(app) | Command::Cni(app) | Command::Csi(app) => {
                let mut words = vec![app.name.text.as_str()];
                words.extend(app.sources.iter().map(|w| w.text.as_str()));
                list(&mut out, app.form, &words);
            }
            Command::AppCmds(cmds) => {
                word(&mut out, &cmds.name);
                let words: Vec<&str> = cmds.commands.iter().map(|w| w.text.as_str()).collect();
                list(&mut out, ArgsForm::Json, &words);
            }
            Command::AppEnv(env) => {
                word(&mut out, &env.name);
                pairs(&mut out, &env.pairs);
            }
            Command::Launch(launch) => {
                let words: Vec<&str> = launch.apps.iter().map(|w| w.text.as_str()).collect();
                list(&mut out, launch.form, &words);
            }
            Command::Cmds(commands) | Command::Cmd(commands) => {
                let words: Vec<&str> = commands.commands.iter().map(|w| w.text.as_str()).collect();
                list(&mut out, commands.form, &words);
            }
        }
        out.push('\n');
        for heredoc in heredocs {
            out.push_str(&heredoc.content);
            out.push_str(&heredoc.name);
            out.push('\n');
        }
    }
    out
}

fn flag(out: &mut String, name: &str, value: Option<&Word>) {
    if let Some(value) = value {
        let _ = write!(out, " --{name}={}", value.text);
    }
}

fn word(out: &mut String, word: &Word) {
    out.push(' ');
    out.push_str(&word.text);
}

fn pairs(out: &mut String, pairs: &[KeyValue]) {
    for pair in pairs {
        let _ = write!(out, " {}={}", pair.key.text, pair.value.text);
    }
}

fn list(out: &mut String, form: ArgsForm, words: &[&str]) {
    match form {
        ArgsForm::Shell => {
            for w in words {
                out.push(' ');
                out.push_str(w);
            }
        }
        ArgsForm::Json => {
            let items: Vec<String> = words
                .iter()
                .map(|w| serde_json::Value::from(*w).to_string())
                .collect();
            let _ = write!(out, " [{}]", items.join(", "));
        }
    }
}
