//! Properties over generated input: parsing and planning never panic, and printing a parsed
//! Kubefile back then parsing it again gives the same AST (spans aside).

mod common;

use kubefile::context::MemoryContext;
use kubefile::plan::PlanOptions;
use kubefile::{SourceFile, parse, parse_and_plan, printer};
use proptest::prelude::*;
use serde_json::Value;

/// The AST as JSON without spans: what must survive printing and re-parsing.
fn without_spans(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !k.ends_with("span"))
                .map(|(k, v)| (k, without_spans(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_spans).collect()),
        other => other,
    }
}

/// Instructions with syntax errors are left out of the AST, so the property holds for every
/// input: the printed AST parses back to itself, whatever else the input got wrong.
///
/// The one exception, documented on [`printer::print`]: an instruction whose last word ends
/// with the escape character (only possible when the input ended in a continuation).
fn assert_round_trip(text: &str) -> Result<(), TestCaseError> {
    let parsed = parse(text);
    let printed = printer::print(&parsed.kubefile);
    if printed.lines().any(|l| l.ends_with(parsed.kubefile.escape)) {
        return Ok(());
    }
    let reparsed = parse(&printed);
    let before = without_spans(serde_json::to_value(&parsed.kubefile).unwrap());
    let after = without_spans(serde_json::to_value(&reparsed.kubefile).unwrap());
    prop_assert_eq!(
        before,
        after,
        "--- input\n{}\n--- printed\n{}",
        text,
        printed
    );
    Ok(())
}

/// Words made of the characters that matter to the lexer and the expander.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9./_-]{0,8}",
        "\\$\\{?[A-Z]{1,3}(:?[-+?][a-z]{0,3})?\\}?",
        "\"[a-z $]{0,6}\"",
        "'[a-z $]{0,6}'",
        "[a-z]{1,3}=[a-z\"' ]{0,4}",
        "local://[a-z]{1,5}",
        "https://h/[a-z]{1,5}",
        Just("\\".to_owned()),
        Just("#".to_owned()),
        Just("[".to_owned()),
        Just("<<EOF".to_owned()),
        Just("<<-'X'".to_owned()),
    ]
}

fn json_array() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z $\"\\\\é]{0,6}", 0..4).prop_map(|items| {
        let quoted: Vec<String> = items
            .iter()
            .map(|s| serde_json::Value::from(s.as_str()).to_string())
            .collect();
        format!("[{}]", quoted.join(", "))
    })
}

/// Every keyword, a lower-case one, a rejected Dockerfile one and an unknown one.
fn keyword() -> impl Strategy<Value = String> {
    let mut keywords: Vec<&str> = kubefile::instructions::KEYWORDS.to_vec();
    keywords.extend(["from", "WORKDIR", "FOO"]);
    prop::sample::select(keywords).prop_map(str::to_owned)
}

fn flag() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "--platform=linux/arm64",
        "--from=img",
        "--chown=1:2",
        "--chmod=755",
        "--checksum=sha256:00",
        "--network=host",
        "--bogus",
    ])
    .prop_map(str::to_owned)
}

/// One instruction line, sometimes continued, sometimes followed by heredoc bodies.
fn line() -> impl Strategy<Value = String> {
    (
        keyword(),
        prop::collection::vec(flag(), 0..2),
        prop_oneof![
            prop::collection::vec(word(), 0..5).prop_map(|w| w.join(" ")),
            json_array(),
            (word(), json_array()).prop_map(|(w, a)| format!("{w} {a}")),
        ],
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(keyword, flags, args, continued, heredoc)| {
            let mut line = keyword;
            for f in flags {
                line.push(' ');
                line.push_str(&f);
            }
            if continued {
                line.push_str(" \\\n  # comment inside\n\n   ");
            } else {
                line.push(' ');
            }
            line.push_str(&args);
            if heredoc {
                line.push_str(" <<EOF\n\tbody $X\nEOF");
            }
            line
        })
}

fn kubefile_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", "# syntax=x/y\n", "# escape=`\n", "\u{feff}"]),
        prop::collection::vec(line(), 0..12),
        prop::bool::ANY,
    )
        .prop_map(|(prefix, lines, first_from)| {
            let mut text = prefix.to_owned();
            if first_from {
                text.push_str("FROM scratch\n");
            }
            text.push_str(&lines.join("\n"));
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let parsed = parse(&text);
        let file = SourceFile::new("Kubefile", text.clone());
        for d in &parsed.diagnostics {
            let _ = d.render(&file, false);
        }
        let context = MemoryContext::new();
        let _ = parse_and_plan(&file, &PlanOptions::new(&context));
    }

    #[test]
    fn kubefile_like_text_never_panics(text in kubefile_text()) {
        let file = SourceFile::new("Kubefile", text.clone());
        let context = MemoryContext::new().with_file("a").with_file("b/c.yaml");
        let planned = parse_and_plan(&file, &PlanOptions::new(&context));
        for d in &planned.diagnostics {
            let _ = d.render(&file, false);
            let _ = d.short(&file);
        }
    }

    #[test]
    fn printing_and_reparsing_gives_the_same_ast(text in kubefile_text()) {
        assert_round_trip(&text)?;
    }
}

/// The same round trip over the real corpus Kubefiles and every case of the parser table.
#[test]
fn known_kubefiles_round_trip() {
    let mut inputs: Vec<(String, String)> = common::case_blocks("tests/cases")
        .into_iter()
        .map(|block| {
            let input = block.body.split("\n--- ").next().unwrap_or("");
            (
                format!("{} / {}", block.file, block.header),
                format!("{input}\n"),
            )
        })
        .collect();
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/kubefiles");
    if let Ok(entries) = std::fs::read_dir(corpus) {
        for entry in entries {
            let path = entry.unwrap().path().join("Kubefile");
            let text = std::fs::read_to_string(&path).unwrap();
            inputs.push((path.display().to_string(), text));
        }
    }
    assert!(inputs.len() > 50);
    for (label, input) in &inputs {
        if let Err(error) = assert_round_trip(input) {
            panic!("{label}: {error}");
        }
    }
}
