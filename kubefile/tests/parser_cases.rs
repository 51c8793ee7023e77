//! The parser case table: every `tests/cases/*.cases` file holds cases of the form
//!
//! ```text
//! ### name [options]
//! <Kubefile text>
//! --- ast
//! <one JSON object per instruction (spans dropped, words as strings, absent = None)>
//! --- diagnostics
//! <line:column: severity: message, one per diagnostic, in source order>
//! ```
//!
//! A case without `--- diagnostics` must produce none; a case without `--- ast` does not
//! check the AST (used for errors). Options: `no-eol` (no final newline), `bom` (a UTF-8 BOM
//! first), `crlf` (CRLF line ends).

mod common;

use serde_json::Value;

struct Case {
    file: String,
    name: String,
    input: String,
    ast: Option<Vec<String>>,
    diagnostics: Vec<String>,
}

fn load_cases() -> Vec<Case> {
    common::case_blocks("tests/cases")
        .into_iter()
        .map(|block| {
            let (name, options) = match block.header.split_once(" [") {
                Some((n, o)) => (n.trim().to_owned(), o.trim_end_matches(']').to_owned()),
                None => (block.header.clone(), String::new()),
            };
            let mut input_lines = Vec::new();
            let mut ast: Option<Vec<String>> = None;
            let mut diagnostics = Vec::new();
            let mut section = "input";
            for line in block.body.lines() {
                match line {
                    "--- ast" => {
                        section = "ast";
                        ast = Some(Vec::new());
                    }
                    "--- diagnostics" => section = "diagnostics",
                    _ if section == "input" => input_lines.push(line),
                    _ if line.trim().is_empty() => {}
                    _ if section == "ast" => ast.as_mut().unwrap().push(line.to_owned()),
                    _ => diagnostics.push(line.to_owned()),
                }
            }
            let mut input = input_lines.join("\n");
            if !options.contains("no-eol") {
                input.push('\n');
            }
            if options.contains("crlf") {
                input = input.replace('\n', "\r\n");
            }
            if options.contains("bom") {
                input.insert(0, '\u{feff}');
            }
            Case {
                file: block.file,
                name,
                input,
                ast,
                diagnostics,
            }
        })
        .collect()
}

/// Drops spans, turns `{text, span}` words into plain strings and drops absent options.
fn project(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            if map.len() == 2 && map.contains_key("text") && map.contains_key("span") {
                return map["text"].clone();
            }
            Value::Object(
                map.into_iter()
                    .filter(|(k, v)| !k.ends_with("span") && !v.is_null())
                    .map(|(k, v)| (k, project(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(project).collect()),
        other => other,
    }
}

fn ast_lines(kubefile: &kubefile::Kubefile) -> Vec<Value> {
    let directives = kubefile
        .directives
        .iter()
        .map(|d| serde_json::json!({"directive": d.name, "value": d.value}));
    let instructions = kubefile
        .instructions
        .iter()
        .map(|i| project(serde_json::to_value(&i.command).unwrap()));
    directives.chain(instructions).collect()
}

#[test]
fn parser_case_table() {
    let cases = load_cases();
    let mut failures = Vec::new();
    for case in &cases {
        let parsed = kubefile::parse(&case.input);
        let file = kubefile::SourceFile::new("Kubefile", case.input.clone());
        let got_diagnostics: Vec<String> = parsed
            .diagnostics
            .iter()
            .map(|d| d.short(&file).trim_start_matches("Kubefile:").to_owned())
            .collect();
        if got_diagnostics != case.diagnostics {
            failures.push(format!(
                "{} / {}: diagnostics differ\n  expected: {:#?}\n  got:      {:#?}",
                case.file, case.name, case.diagnostics, got_diagnostics
            ));
        }
        if let Some(expected) = &case.ast {
            let expected: Vec<Value> = expected
                .iter()
                .map(|l| {
                    serde_json::from_str(l).unwrap_or_else(|e| {
                        panic!("{} / {}: bad expected JSON {l}: {e}", case.file, case.name)
                    })
                })
                .collect();
            let got = ast_lines(&parsed.kubefile);
            if got != expected {
                failures.push(format!(
                    "{} / {}: AST differs\n  expected:\n    {}\n  got:\n    {}",
                    case.file,
                    case.name,
                    expected
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("\n    "),
                    got.iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("\n    ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    assert!(
        cases.len() >= 150,
        "the table has only {} cases",
        cases.len()
    );
}
