//! Property test: any text made of template tokens parses (or fails to parse) and executes
//! (or fails) without panicking, under every missing-key option, with `include` and `tpl`
//! re-entering the engine. The same checks as the `parse_execute` fuzz target, run in CI.

use std::collections::BTreeMap;

use gotemplate::{ExecOptions, Functions, MissingKey, Runtime, Templates, Value};
use proptest::prelude::*;

const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    "{{/* c */}}",
    "if ",
    "else ",
    "end",
    "range ",
    "with ",
    "define ",
    "template ",
    "block ",
    "break",
    "continue",
    ".",
    ".Values",
    ".a",
    ".name",
    "$",
    "$x",
    "$x := ",
    "$x = ",
    "$i, $v := ",
    " | ",
    "(",
    ")",
    "\"s\"",
    "\"a\"",
    "`r`",
    "1",
    "-2",
    "0",
    "3",
    "1.5",
    "'c'",
    "nil",
    "true",
    "false",
    "and ",
    "or ",
    "not ",
    "eq ",
    "ne ",
    "lt ",
    "le ",
    "len ",
    "index ",
    "slice ",
    "print ",
    "printf ",
    "println ",
    "html ",
    "js ",
    "urlquery ",
    "call ",
    "\"%d %s %v %5.2f %[2]q %*d\" ",
    "include ",
    "tpl ",
    "fail ",
    "list ",
    "\"{{ .a }}\" ",
    "\"a\" ",
    " ",
    "\n",
    "x",
    ",",
    "=",
    ":=",
];

fn include(runtime: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    let name = args
        .first()
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    runtime
        .execute_named(&name, args.get(1).cloned().unwrap_or(Value::Nil))
        .map(Value::string)
        .map_err(|error| error.to_string())
}

fn tpl(runtime: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    let text = args
        .first()
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    runtime
        .execute_text("p", &text, args.get(1).cloned().unwrap_or(Value::Nil))
        .map(Value::string)
        .map_err(|error| error.to_string())
}

fn fail(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    Err(gotemplate::fmt::sprint(args))
}

#[allow(clippy::unnecessary_wraps)] // The signature of a template function.
fn list(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    Ok(Value::list(args.to_vec()))
}

fn data() -> Value {
    Value::map(BTreeMap::from([
        (
            "Values".to_string(),
            Value::map(BTreeMap::from([(
                "a".to_string(),
                Value::list(vec![Value::Nil, Value::Float(1.0)]),
            )])),
        ),
        ("a".to_string(), Value::string("text")),
        ("name".to_string(), Value::Nil),
    ]))
}

fn exercise(text: &str) {
    let mut functions = Functions::new();
    functions.insert("include", include);
    functions.insert("tpl", tpl);
    functions.insert("fail", fail);
    functions.insert("list", list);
    let mut set = Templates::new(functions);
    match set.parse("p", text) {
        Ok(()) => {
            let names: Vec<String> = set.names().map(str::to_string).collect();
            for missing_key in [MissingKey::Invalid, MissingKey::Zero, MissingKey::Error] {
                let options = ExecOptions {
                    missing_key,
                    max_depth: 30,
                    max_steps: Some(5_000),
                };
                for name in &names {
                    if let Err(error) = set.execute(name, data(), &options) {
                        let _ = error.to_string();
                    }
                }
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
    let _ = gotemplate::fmt::sprintf(
        text,
        &[
            Value::int(5),
            Value::Float(-1.5),
            Value::string("s"),
            Value::Nil,
            data(),
        ],
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(tokens in proptest::collection::vec(proptest::sample::select(TOKENS), 0..48)) {
        exercise(&tokens.concat());
    }

    #[test]
    fn well_formed_actions_never_panic(
        parts in proptest::collection::vec(
            (proptest::sample::select(TOKENS), proptest::sample::select(TOKENS), proptest::sample::select(TOKENS)),
            0..12,
        )
    ) {
        let mut text = String::new();
        for (a, b, c) in parts {
            text.push_str("{{ ");
            text.push_str(a);
            text.push_str(b);
            text.push_str(c);
            text.push_str(" }}");
        }
        exercise(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        exercise(&text);
    }
}

#[test]
fn known_tricky_inputs() {
    for text in [
        "{{",
        "}}",
        "{{-",
        "{{- ",
        "{{ -}}",
        "{{/*",
        "{{/**/}}",
        "{{'",
        "{{'\\",
        "{{\"\\",
        "{{\"\\ⷈ\"",
        "{{'\\é'}}",
        "{{`",
        "{{$",
        "{{.",
        "{{..}}",
        "{{$.}}",
        "{{(}}",
        "{{)}}",
        "{{0x}}",
        "{{1e}}",
        "{{.1.}}",
        "{{ 1+}}",
        "{{ 1+2i }}",
        "{{define \"a\"}}{{template \"a\" .}}{{template \"a\" .}}{{end}}{{template \"a\"}}",
        "{{range $i, $v := 5}}{{end}}",
        "{{range 3}}{{range 3}}{{.}}{{end}}{{end}}",
        "{{ printf \"%[\" }}",
        "{{ printf \"%[1\" 1 }}",
        "{{ printf \"%.*[2]d\" 1 2 }}",
        "{{ printf \"%-0*.*x\" -3 -2 1 }}",
        "{{ slice \"héllo\" 1 2 }}",
        "{{ index \"é\" 1 }}",
        "{{ tpl \"{{ tpl . . }}\" \"{{ tpl . . }}\" }}",
        "{{ include \"p\" . }}",
        "{{ $x := 1 }}{{ range $x = .Values.a }}{{ end }}{{ $x }}",
        "{{ with $x := 1 }}{{ else with $y := 2 }}{{ $y }}{{ end }}",
    ] {
        exercise(text);
    }
}
