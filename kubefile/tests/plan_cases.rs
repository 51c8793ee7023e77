//! The build plan case table: every `tests/plans/*.cases` file holds cases of the form
//!
//! ```text
//! ### name
//! --- context          (optional) one path per line; a trailing `/` makes a directory
//! --- args             (optional) one --build-arg per line
//! --- platform         (optional) the target platform, default linux/amd64
//! --- type             (optional) kube-installer or app-installer
//! --- kubefile
//! <Kubefile text>
//! --- diagnostics      (optional) line:column: severity: message, in source order
//! --- expect           (optional) `<JSON pointer into the plan> = <JSON value>` lines
//! ```
//!
//! A case without `--- diagnostics` must produce none; a case with an error has no plan, so
//! `--- expect` lines only make sense without errors. The build platform is linux/amd64.

mod common;

use kubefile::context::{EntryKind, MemoryContext};
use kubefile::plan::{BuildArgs, PlanOptions};
use kubefile::{SourceFile, parse_and_plan};
use serde_json::Value;

#[derive(Default)]
struct Case {
    file: String,
    name: String,
    context: Vec<String>,
    args: Vec<String>,
    platform: Option<String>,
    image_type: Option<String>,
    kubefile: Vec<String>,
    diagnostics: Vec<String>,
    expect: Vec<String>,
}

fn load_cases() -> Vec<Case> {
    common::case_blocks("tests/plans")
        .into_iter()
        .map(|block| {
            let mut case = Case {
                file: block.file,
                name: block.header,
                ..Case::default()
            };
            let mut section = String::new();
            for line in block.body.lines() {
                if let Some(name) = line.strip_prefix("--- ") {
                    name.trim().clone_into(&mut section);
                    continue;
                }
                if section != "kubefile" && line.trim().is_empty() {
                    continue;
                }
                let line = line.to_owned();
                match section.as_str() {
                    "context" => case.context.push(line),
                    "args" => case.args.push(line),
                    "platform" => case.platform = Some(line),
                    "type" => case.image_type = Some(line),
                    "kubefile" => case.kubefile.push(line),
                    "diagnostics" => case.diagnostics.push(line),
                    "expect" => case.expect.push(line),
                    other => panic!("{} / {}: unknown section {other}", case.file, case.name),
                }
            }
            while case.kubefile.last().is_some_and(|l| l.trim().is_empty()) {
                case.kubefile.pop();
            }
            case
        })
        .collect()
}

fn run(case: &Case) -> Result<(), String> {
    let mut context = MemoryContext::new();
    for path in &case.context {
        match path.strip_suffix('/') {
            Some(dir) => context.insert(dir, EntryKind::Dir),
            None => context.insert(path, EntryKind::File),
        }
    }
    let mut options = PlanOptions::new(&context);
    options.build_args = BuildArgs::from_cli(&case.args, &|_| None)?;
    options.target_platform = case
        .platform
        .as_deref()
        .unwrap_or("linux/amd64")
        .parse()
        .unwrap();
    options.build_platform = "linux/amd64".parse().unwrap();
    if let Some(t) = &case.image_type {
        options.image_type = t.parse().unwrap();
    }
    let text = case.kubefile.join("\n") + "\n";
    let file = SourceFile::new("Kubefile", text);
    let planned = parse_and_plan(&file, &options);
    let got: Vec<String> = planned
        .diagnostics
        .iter()
        .map(|d| d.short(&file).trim_start_matches("Kubefile:").to_owned())
        .collect();
    if got != case.diagnostics {
        return Err(format!(
            "diagnostics differ\n  expected: {:#?}\n  got:      {got:#?}",
            case.diagnostics
        ));
    }
    if case.expect.is_empty() {
        return Ok(());
    }
    let plan = planned.plan.ok_or("no plan was made")?;
    let value = serde_json::to_value(&plan).unwrap();
    for line in &case.expect {
        let (pointer, expected) = line
            .split_once(" = ")
            .ok_or_else(|| format!("bad expect line {line}"))?;
        let expected: Value = serde_json::from_str(expected)
            .map_err(|e| format!("bad expected JSON in {line}: {e}"))?;
        let actual = value.pointer(pointer.trim());
        if actual != Some(&expected) {
            return Err(format!(
                "{pointer}: expected {expected}, got {}",
                actual.map_or_else(|| "nothing".to_owned(), Value::to_string)
            ));
        }
    }
    Ok(())
}

#[test]
fn plan_case_table() {
    let cases = load_cases();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run(case)
                .err()
                .map(|e| format!("{} / {}: {e}", case.file, case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
