//! The template case tables (`*.cases` files of `=== name` blocks with `--- template`,
//! `--- data`, `--- output` or `--- error` sections) and a runner that reports every
//! failing case before failing.

use std::path::Path;

use gotemplate::{ExecOptions, Functions, Templates, Value};

/// One case of a table.
#[derive(Debug, Clone)]
pub struct TemplateCase {
    /// The file it came from.
    pub file: String,
    /// Its name (the text after `=== `).
    pub name: String,
    /// The template text.
    pub template: String,
    /// The data as JSON text, when given.
    pub data: Option<String>,
    /// What rendering must give.
    pub expected: Expected,
}

/// What a case expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// This exact output.
    Output(String),
    /// An error whose message contains this text.
    Error(String),
}

/// Reads every case of every `*.cases` file in `dir`, files in name order.
pub fn read_cases(dir: &Path) -> Vec<TemplateCase> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "cases"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        let file = path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        cases.extend(parse_cases(&file, &text));
    }
    cases
}

/// Parses the cases of one file's text.
pub fn parse_cases(file: &str, text: &str) -> Vec<TemplateCase> {
    let mut cases = Vec::new();
    let mut name: Option<String> = None;
    let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
    let mut finish = |name: Option<String>, sections: &mut Vec<(String, Vec<&str>)>| {
        let Some(name) = name else {
            sections.clear();
            return;
        };
        let mut template = None;
        let mut data = None;
        let mut expected = None;
        for (section, lines) in sections.drain(..) {
            // The newline that ends a section's last line belongs to the file, not the case.
            let body = lines.join("\n");
            match section.as_str() {
                "template" => template = Some(body),
                "data" => data = Some(body),
                "output" => expected = Some(Expected::Output(body)),
                "error" => expected = Some(Expected::Error(body.trim().to_owned())),
                other => panic!("{file}: case {name:?} has an unknown section {other:?}"),
            }
        }
        cases.push(TemplateCase {
            file: file.to_owned(),
            template: template.unwrap_or_else(|| panic!("{file}: case {name:?} has no template")),
            expected: expected
                .unwrap_or_else(|| panic!("{file}: case {name:?} has no output or error")),
            name,
            data,
        });
    };
    for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
        if let Some(rest) = line.strip_prefix("=== ") {
            finish(name.take(), &mut sections);
            name = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("--- ") {
            sections.push((rest.trim().to_owned(), Vec::new()));
        } else if let Some((_, lines)) = sections.last_mut() {
            lines.push(line);
        }
    }
    finish(name.take(), &mut sections);
    cases
}

/// Renders a case's template as Helm runs a template file (missing keys yield nil and print
/// `<no value>`), with the case's JSON data (numbers are `float64`, as Helm values are) as dot.
pub fn render_case(case: &TemplateCase, functions: &Functions) -> Result<String, String> {
    let data = match &case.data {
        Some(json) => kyaml::from_json(json)
            .map_err(|error| format!("the case's data is not JSON: {error}"))?,
        None => Value::Nil,
    };
    let mut templates = Templates::new(functions.clone());
    templates
        .parse("case", &case.template)
        .map_err(|error| error.to_string())?;
    templates
        .execute("case", data, &ExecOptions::helm())
        .map_err(|error| error.to_string())
}

/// Runs every `*.cases` table in `dir` with `functions` (only the cases whose name contains
/// `$CASE`, when set) and panics with a list of all failures, if any.
///
/// `known` lists cases we knowingly get wrong, each with the reason; they must still fail
/// (so the list shrinks when one is fixed) and are reported apart.
pub fn run_dir(dir: &Path, functions: &Functions, known: &[(&str, &str)]) {
    let only = std::env::var("CASE").ok();
    let (known_cases, cases): (Vec<TemplateCase>, Vec<TemplateCase>) = read_cases(dir)
        .into_iter()
        .filter(|case| {
            only.as_ref()
                .is_none_or(|only| case.name.contains(only.as_str()))
        })
        .partition(|case| known.iter().any(|(name, _)| *name == case.name));
    for case in &known_cases {
        let passes = match (&case.expected, render_case(case, functions)) {
            (Expected::Output(want), Ok(got)) => *want == got,
            (Expected::Error(want), Err(got)) => got.contains(want.as_str()),
            _ => false,
        };
        assert!(
            !passes,
            "{} / {} passes now: take it off the known differences",
            case.file, case.name
        );
    }
    for (name, reason) in known {
        println!("known difference: {name}: {reason}");
    }
    run_cases(&cases, |case| render_case(case, functions));
}

/// Renders every case with `render` (`Ok(output)` or `Err(message)`) and panics with a list
/// of all failures, if any.
pub fn run_cases(cases: &[TemplateCase], render: impl Fn(&TemplateCase) -> Result<String, String>) {
    assert!(!cases.is_empty(), "no cases found");
    let mut failures = Vec::new();
    for case in cases {
        let result = render(case);
        let failure = match (&case.expected, &result) {
            (Expected::Output(want), Ok(got)) if want == got => None,
            (Expected::Error(want), Err(got)) if got.contains(want.as_str()) => None,
            (Expected::Output(want), _) => {
                Some(format!("want output {want:?}\n    got {result:?}"))
            }
            (Expected::Error(want), _) => Some(format!(
                "want error containing {want:?}\n    got {result:?}"
            )),
        };
        if let Some(failure) = failure {
            failures.push(format!("{} / {}:\n    {failure}", case.file, case.name));
        }
    }
    println!(
        "{} of {} cases passed",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keep_inner_newlines_and_drop_the_last() {
        let text = "=== a\n--- template\n{{ 1 }}\nx\n--- output\n1\nx\n\n=== b\n--- template\n{{ fail }}\n--- error\nboom\n";
        let cases = parse_cases("t.cases", text);
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].template, "{{ 1 }}\nx");
        assert_eq!(cases[0].expected, Expected::Output("1\nx\n".into()));
        assert_eq!(cases[1].expected, Expected::Error("boom".into()));
    }
}
