//! `*.tmpl` files. Sealer renders them at deploy time with the cluster's environment as Go
//! templates; the scan renders the subset that only substitutes variables (`{{ .Name }}`,
//! with `{{-`/`-}}` trimming and `{{/* comments */}}`) from the build's environment. A file
//! with an unknown variable or any other template action is not guessed at: the caller skips
//! it with a warning naming the file and what was missing.

use std::collections::BTreeMap;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateProblem {
    /// Variables that are not in the environment, in order of first use.
    Unknown(Vec<String>),
    /// An action other than a variable or comment (`{{ if }}`, a function call), at a line.
    Unsupported {
        /// 1-based line of the action.
        line: usize,
        /// The action as written.
        action: String,
    },
    /// `{{` without a closing `}}`, at a line.
    Unclosed(usize),
}

impl TemplateProblem {
    /// The line the problem is on, when it is on one.
    pub fn line(&self) -> Option<usize> {
        match self {
            TemplateProblem::Unknown(_) => None,
            TemplateProblem::Unsupported { line, .. } | TemplateProblem::Unclosed(line) => {
                Some(*line)
            }
        }
    }
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateProblem::Unknown(names) => write!(
                f,
                "not rendered: unknown variables {}",
                names
                    .iter()
                    .map(|n| format!(".{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TemplateProblem::Unsupported { line, action } => write!(
                f,
                "not rendered: line {line}: `{action}` is more than variable substitution"
            ),
            TemplateProblem::Unclosed(line) => {
                write!(f, "not rendered: line {line}: `{{{{` is never closed")
            }
        }
    }
}

/// Renders `text`, substituting `{{ .Name }}` from `env`.
pub fn render(text: &str, env: &BTreeMap<String, String>) -> Result<String, TemplateProblem> {
    let mut output = String::with_capacity(text.len());
    let mut unknown: Vec<String> = Vec::new();
    let mut rest = text;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let line = text.len() - rest.len() + start;
        let line = text[..line].matches('\n').count() + 1;
        let mut before = &rest[..start];
        if trim_next {
            before = before.trim_start();
        }
        let after_open = &rest[start + 2..];
        let Some(end) = after_open.find("}}") else {
            return Err(TemplateProblem::Unclosed(line));
        };
        let mut action = &after_open[..end];
        if let Some(stripped) = action.strip_prefix('-') {
            before = before.trim_end();
            action = stripped;
        }
        trim_next = false;
        if let Some(stripped) = action.strip_suffix('-') {
            trim_next = true;
            action = stripped;
        }
        output.push_str(before);
        let action = action.trim();
        if action.starts_with("/*") && action.ends_with("*/") {
            // A comment renders as nothing.
        } else if let Some(name) = variable_name(action) {
            match env.get(name) {
                Some(value) => output.push_str(value),
                None if !unknown.iter().any(|u| u == name) => unknown.push(name.to_owned()),
                None => {}
            }
        } else {
            return Err(TemplateProblem::Unsupported {
                line,
                action: format!("{{{{{action}}}}}"),
            });
        }
        rest = &after_open[end + 2..];
    }
    output.push_str(if trim_next { rest.trim_start() } else { rest });
    if unknown.is_empty() {
        Ok(output)
    } else {
        Err(TemplateProblem::Unknown(unknown))
    }
}

/// `Name` for an action `.Name`.
fn variable_name(action: &str) -> Option<&str> {
    let name = action.strip_prefix('.')?;
    (!name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit()))
    .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([("Registry".to_owned(), "sea.hub:5000".to_owned())])
    }

    #[test]
    fn substitutes_known_variables() {
        let text = "image: {{ .Registry }}/x:1\n{{/* c */}}a: {{- .Registry -}}  \nb\n";
        assert_eq!(
            render(text, &env()).unwrap(),
            "image: sea.hub:5000/x:1\na:sea.hub:5000b\n"
        );
    }

    #[test]
    fn names_unknown_variables_and_unsupported_actions() {
        assert_eq!(
            render("{{.A}} {{ .Registry }} {{.B}} {{.A}}", &env()),
            Err(TemplateProblem::Unknown(vec!["A".into(), "B".into()]))
        );
        assert_eq!(
            render("x\n{{ if .A }}y{{ end }}", &env()),
            Err(TemplateProblem::Unsupported {
                line: 2,
                action: "{{if .A}}".into()
            })
        );
        assert_eq!(render("{{ .A", &env()), Err(TemplateProblem::Unclosed(1)));
    }
}
