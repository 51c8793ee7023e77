//! Executor tests. Expected outputs and messages are Go's (`text/template` as of Go 1.23,
//! which Helm builds with).

#![allow(
    clippy::unnecessary_wraps,
    clippy::unreadable_literal,
    clippy::approx_constant,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::unnecessary_literal_bound,
    clippy::needless_raw_string_hashes
)]

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::{
    ArgType, ExecOptions, Functions, MissingKey, Object, Runtime, Signature, Templates, Value,
};

/// A tiny JSON reader: numbers are float64 as in Helm values; `{"$int": n}` is a Go int.
fn json(text: &str) -> Value {
    fn value(bytes: &[u8], at: &mut usize) -> Value {
        while bytes[*at].is_ascii_whitespace() {
            *at += 1;
        }
        match bytes[*at] {
            b'{' => {
                *at += 1;
                let mut map = BTreeMap::new();
                loop {
                    while bytes[*at].is_ascii_whitespace() || bytes[*at] == b',' {
                        *at += 1;
                    }
                    if bytes[*at] == b'}' {
                        *at += 1;
                        break;
                    }
                    let Value::String(key) = value(bytes, at) else {
                        panic!("key")
                    };
                    while bytes[*at] != b':' {
                        *at += 1;
                    }
                    *at += 1;
                    let item = value(bytes, at);
                    map.insert(key.to_string(), item);
                }
                if map.len() == 1
                    && let Some(Value::Float(number)) = map.get("$int")
                {
                    return Value::int(*number as i64);
                }
                Value::map(map)
            }
            b'[' => {
                *at += 1;
                let mut items = Vec::new();
                loop {
                    while bytes[*at].is_ascii_whitespace() || bytes[*at] == b',' {
                        *at += 1;
                    }
                    if bytes[*at] == b']' {
                        *at += 1;
                        break;
                    }
                    items.push(value(bytes, at));
                }
                Value::list(items)
            }
            b'"' => {
                *at += 1;
                let start = *at;
                while bytes[*at] != b'"' {
                    *at += 1;
                }
                *at += 1;
                Value::string(std::str::from_utf8(&bytes[start..*at - 1]).unwrap())
            }
            b't' => {
                *at += 4;
                Value::Bool(true)
            }
            b'f' => {
                *at += 5;
                Value::Bool(false)
            }
            b'n' => {
                *at += 4;
                Value::Nil
            }
            _ => {
                let start = *at;
                while *at < bytes.len()
                    && matches!(bytes[*at], b'-' | b'+' | b'.' | b'e' | b'0'..=b'9')
                {
                    *at += 1;
                }
                Value::Float(
                    std::str::from_utf8(&bytes[start..*at])
                        .unwrap()
                        .parse()
                        .unwrap(),
                )
            }
        }
    }
    value(text.as_bytes(), &mut 0)
}

fn fail(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    Err(args[0].to_go_string())
}

fn identity(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    Ok(args[0].clone())
}

fn nothing(_: &mut dyn Runtime, _: &[Value]) -> Result<Value, String> {
    Ok(Value::Nil)
}

fn list(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    Ok(Value::list(args.to_vec()))
}

fn upper(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    Ok(Value::string(args[0].as_str().unwrap().to_uppercase()))
}

fn repeat(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    let Value::Int(count, _) = args[0] else {
        panic!("int expected")
    };
    Ok(Value::string(
        args[1].as_str().unwrap().repeat(count as usize),
    ))
}

fn include(runtime: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    let name = args[0].as_str().unwrap_or_default().to_string();
    runtime
        .execute_named(&name, args[1].clone())
        .map(Value::string)
        .map_err(|error| error.to_string())
}

fn tpl(runtime: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    let text = args[0].as_str().unwrap_or_default().to_string();
    runtime
        .execute_text("tpl-caller", &text, args[1].clone())
        .map(Value::string)
        .map_err(|error| error.to_string())
}

fn functions() -> Functions {
    let mut table = Functions::new();
    table.insert("fail", fail);
    table.insert("id", identity);
    table.insert("nothing", nothing);
    table.insert("list", list);
    table.insert_typed("upper", upper, Signature::fixed(&[ArgType::String]));
    table.insert_typed(
        "repeat",
        repeat,
        Signature::fixed(&[ArgType::Int, ArgType::String]),
    );
    table.insert_typed(
        "include",
        include,
        Signature::fixed(&[ArgType::String, ArgType::Any]),
    );
    table.insert_typed(
        "tpl",
        tpl,
        Signature::fixed(&[ArgType::String, ArgType::Map("chartutil.Values")]),
    );
    table
}

fn run_with(template: &str, data: Value, missing_key: MissingKey) -> Result<String, String> {
    let mut set = Templates::new(functions()).with_name("gotpl");
    set.parse("t", template)
        .map_err(|error| error.to_string())?;
    let options = ExecOptions {
        missing_key,
        ..ExecOptions::default()
    };
    set.execute("t", data, &options)
        .map_err(|error| error.to_string())
}

/// Runs with Helm's `missingkey=zero`.
fn run(template: &str, data: &str) -> Result<String, String> {
    let data = if data.is_empty() {
        Value::Nil
    } else {
        json(data)
    };
    run_with(template, data, MissingKey::Zero)
}

fn ok(template: &str, data: &str) -> String {
    run(template, data).unwrap_or_else(|error| panic!("{template}: {error}"))
}

fn err(template: &str, data: &str) -> String {
    match run(template, data) {
        Ok(output) => panic!("{template}: expected an error, got {output:?}"),
        Err(error) => error,
    }
}

#[test]
fn text_and_literals() {
    assert_eq!(ok("hello", ""), "hello");
    assert_eq!(
        ok(
            r#"{{ "a\tb" }}|{{ `raw\n` }}|{{ 'a' }}|{{ 1.5 }}|{{ 2.0 }}|{{ 1e6 }}"#,
            ""
        ),
        "a\tb|raw\\n|97|1.5|2|1e+06"
    );
    assert_eq!(
        ok(
            "{{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }} {{ -0 }} {{ +5 }} {{ 0x1p4 }}",
            ""
        ),
        "31 15 15 5 1000 0 5 16"
    );
    assert_eq!(ok("{{ true }} {{ false }}", ""), "true false");
    assert_eq!(
        ok(r#"{{ printf "%T %T %T %T %T" 1 1.0 1e3 'a' 0x10 }}"#, ""),
        "int float64 float64 int int"
    );
}

#[test]
fn number_literal_errors() {
    assert_eq!(
        err("{{ 08 }}", ""),
        "template: t:1: integer overflow: \"08\""
    );
    assert_eq!(
        err("{{ 1e400 }}", ""),
        "template: t:1: illegal number syntax: \"1e400\""
    );
    assert_eq!(
        err("{{ 9223372036854775808 }}", ""),
        "template: t:1:3: executing \"t\" at <9223372036854775808>: 9223372036854775808 overflows int"
    );
}

#[test]
fn printing_values() {
    assert_eq!(
        ok(
            "{{ .x }} {{ .y }} {{ .z }} {{ .l }} {{ .m }}",
            r#"{"x":1.5,"y":1e6,"z":123456,"l":[1,"a",null,true],"m":{"b":2,"a":[1]}}"#
        ),
        "1.5 1e+06 123456 [1 a <nil> true] map[a:[1] b:2]"
    );
    assert_eq!(ok("{{ .missing }}", "{}"), "<no value>");
    assert_eq!(ok("{{ . }}", ""), "<no value>");
    assert_eq!(ok("{{ .n }}", r#"{"n":null}"#), "<no value>");
}

#[test]
fn fields_and_missing_keys() {
    assert_eq!(ok("{{ .a.b.c }}", r#"{"a":{"b":{"c":"C"}}}"#), "C");
    assert_eq!(
        err("{{ .a.b }}", "{}"),
        "template: t:1:5: executing \"t\" at <.a.b>: nil pointer evaluating interface {}.b"
    );
    assert_eq!(
        err("{{ .g.x }}", r#"{"g":null}"#),
        "template: t:1:5: executing \"t\" at <.g.x>: nil pointer evaluating interface {}.x"
    );
    // Parenthesized pipelines and variables holding nil are nil-safe.
    assert_eq!(ok("{{ (.a).b }}", "{}"), "<no value>");
    assert_eq!(
        ok("{{ ((.global).compat).openshift }}", r#"{"global":null}"#),
        "<no value>"
    );
    assert_eq!(ok("{{ $x := .a }}{{ $x.b }}", "{}"), "<no value>");
    assert_eq!(ok("{{ (nothing).x }}", ""), "<no value>");
    // Missing keys are nil as arguments.
    assert_eq!(ok("{{ print .missing }}", "{}"), "<nil>");
    assert_eq!(ok(r#"{{ printf "%s" .missing }}"#, "{}"), "%!s(<nil>)");
}

#[test]
fn missing_key_options() {
    let data = || json(r#"{"x":1}"#);
    assert_eq!(
        run_with("{{ .a.b }}", data(), MissingKey::Invalid).unwrap(),
        "<no value>"
    );
    assert_eq!(
        run_with("{{ .a.b }}", data(), MissingKey::Error).unwrap_err(),
        "template: t:1:5: executing \"t\" at <.a.b>: map has no entry for key \"a\""
    );
    assert_eq!(
        run_with("{{ (.a).b }}", data(), MissingKey::Error).unwrap_err(),
        "template: t:1:4: executing \"t\" at <.a>: map has no entry for key \"a\""
    );
    assert_eq!(
        run_with("{{ $x := nothing }}{{ $x.b }}", data(), MissingKey::Error).unwrap_err(),
        "template: t:1:24: executing \"t\" at <$x.b>: nil data; no entry for key \"b\""
    );
    assert_eq!(
        run_with("{{ .a }}", Value::Nil, MissingKey::Invalid).unwrap(),
        "<no value>"
    );
}

#[test]
fn field_errors() {
    assert_eq!(
        err("{{ .a.b }}", r#"{"a":"str"}"#),
        "template: t:1:5: executing \"t\" at <.a.b>: can't evaluate field b in type interface {}"
    );
    assert_eq!(
        err("{{ with .a }}{{ .b }}{{ end }}", r#"{"a":"str"}"#),
        "template: t:1:16: executing \"t\" at <.b>: can't evaluate field b in type string"
    );
    assert_eq!(
        err("{{ .a 1 }}", r#"{"a":{"b":1}}"#),
        "template: t:1:3: executing \"t\" at <.a>: a is not a method but has arguments"
    );
    assert_eq!(
        err("{{ 1 | .a }}", r#"{"a":{"b":1}}"#),
        "template: t:1:7: executing \"t\" at <.a>: a is not a method but has arguments"
    );
    assert_eq!(
        err("{{ range .l }}{{ .b }}{{ end }}", r#"{"l":[null]}"#),
        "template: t:1:17: executing \"t\" at <.b>: nil pointer evaluating interface {}.b"
    );
}

#[test]
fn non_functions_with_arguments() {
    assert_eq!(
        err("{{ $x := 1 }}{{ $x 2 }}", ""),
        "template: t:1:16: executing \"t\" at <$x>: can't give argument to non-function $x"
    );
    assert_eq!(
        err(r#"{{ "a" 2 }}"#, ""),
        "template: t:1:3: executing \"t\" at <\"a\">: can't give argument to non-function \"a\""
    );
    assert_eq!(
        err("{{ nil }}", ""),
        "template: t:1:3: executing \"t\" at <nil>: nil is not a command"
    );
}

#[test]
fn if_with_else() {
    assert_eq!(
        ok("{{ if .a }}yes{{ else }}no{{ end }}", r#"{"a":[]}"#),
        "no"
    );
    assert_eq!(
        ok(
            "{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}",
            r#"{"a":0,"b":"x"}"#
        ),
        "B"
    );
    assert_eq!(
        ok(
            "{{ with .a }}{{ .x }}{{ else }}no{{ end }}",
            r#"{"a":{"x":1}}"#
        ),
        "1"
    );
    assert_eq!(
        ok(
            "{{ with .a }}{{ . }}{{ else with .b }}b{{ . }}{{ else }}no{{ end }}",
            r#"{"a":0,"b":"x"}"#
        ),
        "bx"
    );
    assert_eq!(
        ok(
            "{{ with $x := .a }}{{ $x }}{{ else }}[{{ $x }}]{{ end }}",
            r#"{"a":""}"#
        ),
        "[]"
    );
    for (data, expected) in [
        (r#"{"v":0}"#, "F"),
        (r#"{"v":0.5}"#, "T"),
        (r#"{"v":""}"#, "F"),
        (r#"{"v":"0"}"#, "T"),
        (r#"{"v":{}}"#, "F"),
        (r#"{"v":[0]}"#, "T"),
        (r#"{"v":null}"#, "F"),
        (r#"{"v":false}"#, "F"),
    ] {
        assert_eq!(
            ok("{{ if .v }}T{{ else }}F{{ end }}", data),
            expected,
            "{data}"
        );
    }
}

#[test]
fn range_forms() {
    assert_eq!(
        ok(
            "{{ range $i, $v := .l }}{{ $i }}={{ $v }},{{ end }}",
            r#"{"l":["a","b"]}"#
        ),
        "0=a,1=b,"
    );
    assert_eq!(
        ok(
            "{{ range $k, $v := .m }}{{ $k }}={{ $v }},{{ end }}",
            r#"{"m":{"b":1,"a":2,"B":3}}"#
        ),
        "B=3,a=2,b=1,"
    );
    assert_eq!(
        ok(
            "{{ range .m }}{{ . }},{{ else }}empty{{ end }}",
            r#"{"m":{}}"#
        ),
        "empty"
    );
    assert_eq!(
        ok("{{ range .m }}{{ . }},{{ else }}empty{{ end }}", "{}"),
        "empty"
    );
    assert_eq!(
        ok(
            "{{ range $v := .e }}{{ else }}{{ $v }}{{ end }}",
            r#"{"e":[]}"#
        ),
        "[]"
    );
    assert_eq!(
        ok(
            "{{ range 3 }}{{ . }}{{ end }}|{{ range $i := 2 }}{{ $i }}{{ end }}|{{ range 0 }}x{{ else }}none{{ end }}",
            ""
        ),
        "012|01|none"
    );
    assert_eq!(
        err("{{ range $i, $v := 3 }}{{ end }}", ""),
        "template: t:1:19: executing \"t\" at <3>: can't use 3 to iterate over more than one variable"
    );
    assert_eq!(
        err("{{ range .x }}{{ end }}", r#"{"x":3}"#),
        "template: t:1:9: executing \"t\" at <.x>: range can't iterate over 3"
    );
    assert_eq!(
        ok(
            "{{ range $x := .l }}{{ if eq $x 2.0 }}{{ break }}{{ end }}{{ $x }}{{ end }}",
            r#"{"l":[1,2,3]}"#
        ),
        "1"
    );
    assert_eq!(
        ok(
            "{{ range $x := .l }}{{ if eq $x 2.0 }}{{ continue }}{{ end }}{{ $x }}{{ end }}",
            r#"{"l":[1,2,3]}"#
        ),
        "13"
    );
    assert_eq!(
        ok(
            "{{ range .l }}{{ range . }}{{ if eq . 2.0 }}{{ break }}{{ end }}{{ . }}{{ end }};{{ end }}",
            r#"{"l":[[1,2,3],[4,2]]}"#
        ),
        "1;4;"
    );
    // The body sees a snapshot of the map; variables declared in the body end each turn.
    assert_eq!(
        ok(
            "{{ range .l }}{{ $x := . }}{{ $x }}{{ end }}",
            r#"{"l":["a","b"]}"#
        ),
        "ab"
    );
    assert_eq!(
        ok(
            "{{ $i := 9 }}{{ range $i = .l }}{{ $i }}{{ end }}{{ $i }}",
            r#"{"l":["a","b"]}"#
        ),
        "abb"
    );
}

#[test]
fn variables_and_scopes() {
    assert_eq!(
        ok(
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
            ""
        ),
        "2"
    );
    assert_eq!(
        ok(
            "{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}",
            ""
        ),
        "21"
    );
    assert_eq!(
        err("{{ if true }}{{ $y := 3 }}{{ end }}{{ $y }}", ""),
        "template: t:1: undefined variable \"$y\""
    );
    assert_eq!(
        ok(
            "{{ $.a }}{{ with .b }}{{ $.a }}{{ . }}{{ end }}",
            r#"{"a":"A","b":"B"}"#
        ),
        "AAB"
    );
    assert_eq!(ok("{{ $ }}", r#"{"k":"v"}"#), "map[k:v]");
    assert_eq!(
        ok(
            "{{ $s := \"\" }}{{ range .l }}{{ $s = print $s . }}{{ end }}{{ $s }}",
            r#"{"l":["a","b"]}"#
        ),
        "ab"
    );
}

#[test]
fn pipelines() {
    assert_eq!(
        ok(
            r#"{{ "x" | printf "%s%s" .a | printf "<%s>" }}"#,
            r#"{"a":"A"}"#
        ),
        "<Ax>"
    );
    assert_eq!(
        ok(
            r#"{{ (.a) }} {{ (.a | printf "%q") }} {{ ((.a)) }}"#,
            r#"{"a":"A"}"#
        ),
        r#"A "A" A"#
    );
    assert_eq!(
        ok(r#"{{ "a" | index .m }}"#, r#"{"m":{"a":"found"}}"#),
        "found"
    );
    assert_eq!(
        ok(
            r#"{{ (index .items 1).name }}"#,
            r#"{"items":[{"name":"a"},{"name":"b"}]}"#
        ),
        "b"
    );
    assert_eq!(
        err(r#"{{ "a" | "b" }}"#, ""),
        "template: t:1: non executable command in pipeline stage 2"
    );
}

#[test]
fn and_or_not_short_circuit() {
    assert_eq!(
        ok(
            r#"{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 "" 3 }} {{ or 0 "" }} {{ not 0 }} {{ not "a" }}"#,
            ""
        ),
        "0 2 3  true false"
    );
    assert_eq!(
        ok("{{ and .a .b }}|{{ or .a .b }}", r#"{"a":null,"b":"x"}"#),
        "<no value>|x"
    );
    // The short circuit stops before an argument that would fail.
    assert_eq!(ok("{{ if and .a .a.b }}x{{ else }}y{{ end }}", "{}"), "y");
    assert_eq!(ok(r#"{{ or "x" (fail "no") }}"#, ""), "x");
    assert_eq!(ok("{{ 0 | and 1 }}|{{ \"\" | or \"x\" }}", ""), "0|x");
    assert_eq!(
        err("{{ and }}", ""),
        "template: t:1:3: executing \"t\" at <and>: wrong number of args for and: want at least 1 got 0"
    );
    assert_eq!(
        err("{{ not 1 2 }}", ""),
        "template: t:1:3: executing \"t\" at <not>: wrong number of args for not: want 1 got 2"
    );
}

#[test]
fn comparisons() {
    assert_eq!(
        ok(
            r#"{{ eq 1 1 }} {{ eq 1 2 3 1 }} {{ eq "a" "b" }} {{ eq .x 1.0 }} {{ eq .missing nil }} {{ eq .missing "a" }}"#,
            r#"{"x":1}"#
        ),
        "true true false true true false"
    );
    assert_eq!(
        ok(
            r#"{{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1.5 2.5 }}"#,
            ""
        ),
        "true true true true false"
    );
    assert_eq!(
        ok(
            "{{ eq (len .l) 2 }} {{ eq .m nil }}",
            r#"{"l":[1,2],"m":{"a":1}}"#
        ),
        "true false"
    );
    assert_eq!(
        err("{{ eq .x 1 }}", r#"{"x":1}"#),
        "template: t:1:3: executing \"t\" at <eq .x 1>: error calling eq: incompatible types for comparison: float64 and int"
    );
    assert_eq!(
        err("{{ lt 1 2.0 }}", ""),
        "template: t:1:3: executing \"t\" at <lt 1 2.0>: error calling lt: incompatible types for comparison: int and float64"
    );
    assert_eq!(
        err("{{ lt nil 1 }}", ""),
        "template: t:1:3: executing \"t\" at <lt nil 1>: error calling lt: invalid type for comparison"
    );
    assert_eq!(
        err("{{ lt true false }}", ""),
        "template: t:1:3: executing \"t\" at <lt true false>: error calling lt: invalid type for comparison"
    );
    assert_eq!(
        err("{{ eq 1 }}", ""),
        "template: t:1:3: executing \"t\" at <eq 1>: error calling eq: missing argument for comparison"
    );
    assert_eq!(
        err("{{ eq .m .m }}", r#"{"m":{"a":1}}"#),
        "template: t:1:3: executing \"t\" at <eq .m .m>: error calling eq: non-comparable type map[a:%!s(float64=1)]: map[string]interface {}"
    );
    assert_eq!(
        err("{{ eq .m .l }}", r#"{"m":{"a":1},"l":[1]}"#),
        "template: t:1:3: executing \"t\" at <eq .m .l>: error calling eq: non-comparable types map[a:%!s(float64=1)]: map[string]interface {}, []interface {}: [1]"
    );
    assert_eq!(
        err(r#"{{ eq .m "x" }}"#, r#"{"m":{}}"#),
        "template: t:1:3: executing \"t\" at <eq .m \"x\">: error calling eq: incompatible types for comparison: map[string]interface {} and string"
    );
    assert_eq!(
        err("{{ ne 1 }}", ""),
        "template: t:1:3: executing \"t\" at <ne>: wrong number of args for ne: want 2 got 1"
    );
}

#[test]
fn len_index_slice() {
    assert_eq!(
        ok(
            r#"{{ len "héllo" }} {{ len .l }} {{ len .m }} {{ printf "%T" (len "a") }}"#,
            r#"{"l":[1,2],"m":{"a":1}}"#
        ),
        "6 2 1 int"
    );
    assert_eq!(
        err("{{ len 3 }}", ""),
        "template: t:1:3: executing \"t\" at <len 3>: error calling len: len of type int"
    );
    assert_eq!(
        err("{{ len .missing }}", "{}"),
        "template: t:1:3: executing \"t\" at <len .missing>: error calling len: len of nil pointer"
    );
    assert_eq!(
        err("{{ .missing | len }}", "{}"),
        "template: t:1:14: executing \"t\" at <len>: error calling len: reflect: call of reflect.Value.Type on zero Value"
    );
    assert_eq!(
        ok(
            r#"{{ index .l 2 }} {{ index .m "b" }} {{ index .s 1 }} {{ index .n "a" 1 }} {{ index .l }}"#,
            r#"{"l":[1,2,3],"m":{"a":1},"s":"abc","n":{"a":["x","y"]}}"#
        ),
        "3 <no value> 98 y [1 2 3]"
    );
    for (template, message) in [
        ("{{ index .l 3 }}", "reflect: slice index out of range"),
        ("{{ index .l 4 }}", "index out of range: 4"),
        ("{{ index .l -1 }}", "index out of range: -1"),
        ("{{ index .missing 2 }}", "index of untyped nil"),
        (r#"{{ index .m "a" "b" }}"#, "index of nil pointer"),
        ("{{ index .m 1 }}", "value has type int; should be string"),
        (
            r#"{{ index .l "a" }}"#,
            "cannot index slice/array with type string",
        ),
        (
            "{{ index .l 1.0 }}",
            "cannot index slice/array with type float64",
        ),
        ("{{ index .l nil }}", "cannot index slice/array with nil"),
        ("{{ index 3 1 }}", "can't index item of type int"),
    ] {
        let got = err(template, r#"{"l":[1,2,3],"m":{"a":null}}"#);
        assert!(
            got.ends_with(&format!("error calling index: {message}")),
            "{template}: {got}"
        );
    }
    assert_eq!(
        ok(
            r#"{{ slice "hello" 1 3 }} {{ slice .l 1 }} {{ slice .l }} {{ slice .l 0 1 2 }} {{ slice .l 3 }}"#,
            r#"{"l":[1,2,3]}"#
        ),
        "el [2 3] [1 2 3] [1] []"
    );
    for (template, message) in [
        (
            r#"{{ slice "hello" 1 3 4 }}"#,
            "cannot 3-index slice a string",
        ),
        ("{{ slice .l 2 1 }}", "invalid slice index: 2 > 1"),
        ("{{ slice .l 5 }}", "index out of range: 5"),
        ("{{ slice nil 1 }}", "slice of untyped nil"),
        ("{{ slice 3 1 }}", "can't slice item of type int"),
        ("{{ slice .l 1 2 3 4 }}", "too many slice indexes: 4"),
        (
            "{{ slice .l .one }}",
            "cannot index slice/array with type interface {}",
        ),
    ] {
        let got = err(template, r#"{"l":[1,2,3],"one":1}"#);
        assert!(
            got.ends_with(&format!("error calling slice: {message}")),
            "{template}: {got}"
        );
    }
}

#[test]
fn print_functions_and_escapers() {
    assert_eq!(
        ok(r#"{{ print 1 2 "a" "b" 3 true nil }}"#, ""),
        "1 2ab3 true <nil>"
    );
    assert_eq!(ok(r#"{{ println 1 2 "a" }}"#, ""), "1 2 a\n");
    assert_eq!(
        ok(
            r#"{{ html "<a href='x'>&\"" }} {{ js "a'b\"c<d>=&\\" }} {{ urlquery "a b&c=d/é" }}"#,
            ""
        ),
        r#"&lt;a href=&#39;x&#39;&gt;&amp;&#34; a\'b\"c\u003Cd\u003E\u003D\u0026\\ a+b%26c%3Dd%2F%C3%A9"#
    );
    assert_eq!(
        ok(
            r#"{{ html .missing }} {{ urlquery .missing }} {{ html 1 2 "a" }}"#,
            "{}"
        ),
        "&lt;no value&gt; %3Cno+value%3E 1 2a"
    );
    assert_eq!(
        err("{{ call .x }}", r#"{"x":1}"#),
        "template: t:1:3: executing \"t\" at <call .x>: error calling call: non-function .x of type float64"
    );
    assert_eq!(
        err("{{ call .y }}", "{}"),
        "template: t:1:3: executing \"t\" at <call .y>: error calling call: call of nil"
    );
}

#[test]
fn printf_argument_types() {
    assert_eq!(
        err("{{ printf .fmt }}", r#"{"fmt":3}"#),
        "template: t:1:10: executing \"t\" at <.fmt>: wrong type for value; expected string; got float64"
    );
    assert_eq!(
        err("{{ printf .fmt }}", "{}"),
        "template: t:1:10: executing \"t\" at <.fmt>: wrong type for value; expected string; got interface {}"
    );
    assert_eq!(
        err("{{ printf 3 }}", ""),
        "template: t:1:10: executing \"t\" at <3>: expected string; found 3"
    );
    assert_eq!(
        err("{{ printf (.missing) }}", "{}"),
        "template: t:1:11: executing \"t\" at <.missing>: invalid value; expected string"
    );
    assert_eq!(
        err("{{ printf }}", ""),
        "template: t:1:3: executing \"t\" at <printf>: wrong number of args for printf: want at least 1 got 0"
    );
}

#[test]
fn typed_function_signatures() {
    assert_eq!(
        ok(
            r#"{{ upper "a" }} {{ "b" | upper }} {{ repeat 3 "x" }} {{ repeat 2.0 "y" }}"#,
            ""
        ),
        "A B xxx yy"
    );
    assert_eq!(
        err("{{ upper }}", ""),
        "template: t:1:3: executing \"t\" at <upper>: wrong number of args for upper: want 1 got 0"
    );
    assert_eq!(
        err(r#"{{ upper "a" "b" }}"#, ""),
        "template: t:1:3: executing \"t\" at <upper>: wrong number of args for upper: want 1 got 2"
    );
    assert_eq!(
        err("{{ upper 1 }}", ""),
        "template: t:1:9: executing \"t\" at <1>: expected string; found 1"
    );
    assert_eq!(
        err("{{ upper .n }}", r#"{"n":1}"#),
        "template: t:1:9: executing \"t\" at <.n>: wrong type for value; expected string; got float64"
    );
    assert_eq!(
        err("{{ upper .missing }}", "{}"),
        "template: t:1:9: executing \"t\" at <.missing>: wrong type for value; expected string; got interface {}"
    );
    assert_eq!(
        err("{{ .missing | upper }}", "{}"),
        "template: t:1:14: executing \"t\" at <upper>: invalid value; expected string"
    );
    assert_eq!(
        err("{{ upper nil }}", ""),
        "template: t:1:9: executing \"t\" at <nil>: cannot assign nil to string"
    );
    assert_eq!(
        err(r#"{{ repeat 1.5 "x" }}"#, ""),
        "template: t:1:10: executing \"t\" at <1.5>: expected integer; found 1.5"
    );
    assert_eq!(
        err(r#"{{ repeat .n "x" }}"#, r#"{"n":2}"#),
        "template: t:1:10: executing \"t\" at <.n>: wrong type for value; expected int; got float64"
    );
    assert_eq!(
        err(r#"{{ tpl "x" "y" }}"#, ""),
        "template: t:1:11: executing \"t\" at <\"y\">: can't handle \"y\" for arg of type chartutil.Values"
    );
}

#[test]
fn function_errors_are_wrapped() {
    assert_eq!(
        err(r#"{{ fail "boom" }}"#, ""),
        "template: t:1:3: executing \"t\" at <fail \"boom\">: error calling fail: boom"
    );
    assert_eq!(
        err(r#"{{ id "z" | fail }}"#, ""),
        "template: t:1:12: executing \"t\" at <fail>: error calling fail: z"
    );
    let mut set = Templates::new(functions());
    set.parse("t", "line1\n  {{ fail \"x\" }}").unwrap();
    let error = set
        .execute("t", Value::Nil, &ExecOptions::default())
        .unwrap_err();
    assert_eq!(error.template, "t");
    assert_eq!(error.line, Some(2));
    assert_eq!(error.column, Some(5));
    assert_eq!(error.context.as_deref(), Some("fail \"x\""));
    assert_eq!(error.function.as_deref(), Some("fail"));
    assert_eq!(error.message, "x");
}

#[test]
fn templates_and_blocks() {
    assert_eq!(
        ok(
            r#"{{ define "d" }}D{{ .b }}{{ end }}{{ template "d" .a }}{{ template "d" }}"#,
            r#"{"a":{"b":"B"}}"#
        ),
        "DBD<no value>"
    );
    assert_eq!(
        ok(
            r#"{{ block "bl" .a }}block {{ .b }}{{ end }}"#,
            r#"{"a":{"b":"B"}}"#
        ),
        "block B"
    );
    assert_eq!(
        ok(
            r#"{{ template "x" 1 }}{{ define "x" }}{{ . }}{{ $ }}{{ end }}"#,
            ""
        ),
        "11"
    );
    assert_eq!(
        ok(
            r#"{{ define "r" }}{{ if . }}{{ index . 0 }}{{ template "r" (slice . 1) }}{{ end }}{{ end }}{{ template "r" .l }}"#,
            r#"{"l":["a","b","c"]}"#
        ),
        "abc"
    );
    assert_eq!(
        err(r#"{{ template "nope" }}"#, ""),
        "template: t:1:12: executing \"t\" at <{{template \"nope\"}}>: template \"nope\" not defined"
    );
    assert_eq!(
        err(
            r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#,
            ""
        ),
        "template: t:1:28: executing \"t\" at <{{template \"r\" .}}>: exceeded maximum template depth (1000)"
    );
}

#[test]
fn later_definitions_replace_earlier_ones_unless_empty() {
    let mut set = Templates::new(Functions::new());
    set.parse("a.tpl", r#"{{ define "x" }}one{{ end }}"#)
        .unwrap();
    set.parse("b.tpl", r#"{{ define "x" }}two{{ end }}"#)
        .unwrap();
    assert_eq!(
        set.execute("x", Value::Nil, &ExecOptions::default())
            .unwrap(),
        "two"
    );
    set.parse("c.tpl", "{{ define \"x\" }} \n {{/* nothing */}} {{ end }}")
        .unwrap();
    assert_eq!(
        set.execute("x", Value::Nil, &ExecOptions::default())
            .unwrap(),
        "two"
    );
    assert!(set.contains("a.tpl") && set.contains("c.tpl") && set.contains("x"));
    // Within one text, two non-empty definitions are an error.
    let error = set
        .parse(
            "d.tpl",
            r#"{{ define "y" }}1{{ end }}{{ define "y" }}2{{ end }}"#,
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "template: d.tpl:1: template: multiple definition of template \"y\""
    );
    assert!(!set.contains("d.tpl"));
    assert_eq!(
        set.execute("nope", Value::Nil, &ExecOptions::default())
            .unwrap_err()
            .to_string(),
        "template: no template \"nope\" associated with template \"\""
    );
}

#[test]
fn include_and_tpl_through_the_runtime() {
    let mut set = Templates::new(functions()).with_name("gotpl");
    set.parse(
        "_helpers.tpl",
        r#"{{ define "name" }}{{ .Release }}-{{ .x | default }}{{ end }}"#,
    )
    .unwrap_err();
    set.parse("_helpers.tpl", r#"{{ define "name" }}<{{ .x }}>{{ end }}"#)
        .unwrap();
    set.parse(
        "main.yaml",
        r#"{{ include "name" (dict) }}|{{ include "name" .v }}|{{ tpl "{{ define \"inner\" }}I{{ .x }}{{ end }}{{ include \"inner\" . }}{{ include \"name\" . }}" .v }}"#,
    )
    .unwrap_err();
    set.parse(
        "main.yaml",
        r#"{{ include "name" .v }}|{{ tpl "{{ define \"inner\" }}I{{ .x }}{{ end }}{{ include \"inner\" . }}{{ include \"name\" . }}" .v }}"#,
    )
    .unwrap();
    let data = json(r#"{"v":{"x":"X"}}"#);
    assert_eq!(
        set.execute("main.yaml", data, &ExecOptions::helm())
            .unwrap(),
        "<X>|IX<X>"
    );
    // A define made inside tpl text stays out of the set.
    assert!(!set.contains("inner"));
    assert!(!set.contains("tpl-caller"));
    // Errors inside an include carry their own location.
    set.parse("bad.yaml", r#"{{ include "missing" . }}"#)
        .unwrap();
    assert_eq!(
        set.execute("bad.yaml", Value::empty_map(), &ExecOptions::helm())
            .unwrap_err()
            .to_string(),
        "template: bad.yaml:1:3: executing \"bad.yaml\" at <include \"missing\" .>: error calling include: template: no template \"missing\" associated with template \"gotpl\""
    );
    set.parse("tplerr.yaml", r#"{{ tpl "{{ .a.b }}" . }}"#)
        .unwrap();
    assert_eq!(
        set.execute("tplerr.yaml", Value::empty_map(), &ExecOptions::helm())
            .unwrap_err()
            .to_string(),
        "template: tplerr.yaml:1:3: executing \"tplerr.yaml\" at <tpl \"{{ .a.b }}\" .>: error calling tpl: template: tpl-caller:1:5: executing \"tpl-caller\" at <.a.b>: nil pointer evaluating interface {}.b"
    );
    // Execution of a text at the top level.
    assert_eq!(
        set.execute_text(
            "x",
            r#"{{ include "name" . }}"#,
            json(r#"{"x":1}"#),
            &ExecOptions::helm()
        )
        .unwrap(),
        "<1>"
    );
}

#[test]
fn include_recursion_is_bounded() {
    let mut set = Templates::new(functions());
    set.parse(
        "t",
        r#"{{ define "loop" }}{{ include "loop" . }}{{ end }}{{ include "loop" . }}"#,
    )
    .unwrap();
    let error = set
        .execute("t", Value::Nil, &ExecOptions::default())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("exceeded maximum template depth (1000)"),
        "{error}"
    );
}

#[test]
fn deep_nesting_never_overflows_the_stack() {
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(100_000), ")".repeat(100_000));
    let error = run(&parens, "").unwrap_err();
    assert!(error.ends_with("max expression depth exceeded"), "{error}");
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(9_000), ")".repeat(9_000));
    assert_eq!(run(&parens, "").unwrap(), "1");
    let ifs = format!(
        "{}x{}",
        "{{ if 1 }}".repeat(5_000),
        "{{ end }}".repeat(5_000)
    );
    assert_eq!(run(&ifs, "").unwrap(), "x");
    let ifs = format!(
        "{}x{}",
        "{{ if 1 }}".repeat(100_000),
        "{{ end }}".repeat(100_000)
    );
    assert!(run(&ifs, "").is_err());
    // A deep error context renders without recursion trouble either.
    let parens = format!("{{{{ {}fail 1{} }}}}", "(".repeat(5_000), ")".repeat(5_000));
    assert!(
        run(&parens, "")
            .unwrap_err()
            .ends_with("error calling fail: 1")
    );
}

struct Versions;

impl Object for Versions {
    fn type_name(&self) -> &str {
        "chartutil.VersionSet"
    }
    fn kind(&self) -> &'static str {
        "slice"
    }
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn call_method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match name {
            "Has" => Some(match args {
                [Value::String(version)] => Ok(Value::Bool(&**version == "policy/v1")),
                _ => Err(format!(
                    "wrong number of args for Has: want 1 got {}",
                    args.len()
                )),
            }),
            _ => None,
        }
    }
    fn display(&self) -> String {
        "[policy/v1 v1]".into()
    }
    fn to_data(&self) -> Value {
        Value::list(vec!["policy/v1".into(), "v1".into()])
    }
}

struct Capabilities;

impl Object for Capabilities {
    fn type_name(&self) -> &str {
        "*chartutil.Capabilities"
    }
    fn kind(&self) -> &'static str {
        "ptr"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "APIVersions" => Some(Value::Object(Rc::new(Versions))),
            "KubeVersion" => Some(json(r#"{"Version":"v1.30.0"}"#)),
            "Nothing" => Some(Value::Nil),
            _ => None,
        }
    }
    fn call_method(&self, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }
    fn display(&self) -> String {
        "&{...}".into()
    }
    fn to_data(&self) -> Value {
        Value::empty_map()
    }
}

struct Files;

impl Object for Files {
    fn type_name(&self) -> &str {
        "chart.Files"
    }
    fn kind(&self) -> &'static str {
        "map"
    }
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn call_method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match name {
            "Get" => Some(Ok(Value::string(format!(
                "content of {}",
                args[0].to_go_string()
            )))),
            _ => None,
        }
    }
    fn display(&self) -> String {
        "map[a.txt:[97] b.txt:[98]]".into()
    }
    fn entries(&self) -> Option<Vec<(String, Value)>> {
        Some(vec![
            ("b.txt".into(), Value::Bytes(Rc::from(&b"b"[..]))),
            ("a.txt".into(), Value::Bytes(Rc::from(&b"a"[..]))),
        ])
    }
    fn to_data(&self) -> Value {
        Value::empty_map()
    }
}

fn object_data() -> Value {
    Value::map(BTreeMap::from([
        (
            "Capabilities".to_string(),
            Value::Object(Rc::new(Capabilities)),
        ),
        ("Files".to_string(), Value::Object(Rc::new(Files))),
    ]))
}

fn run_objects(template: &str) -> Result<String, String> {
    run_with(template, object_data(), MissingKey::Zero)
}

#[test]
fn objects_fields_and_methods() {
    assert_eq!(
        run_objects(r#"{{ .Capabilities.APIVersions.Has "policy/v1" }} {{ .Capabilities.APIVersions.Has "x/v1" }} {{ "policy/v1" | .Capabilities.APIVersions.Has }}"#).unwrap(),
        "true false true"
    );
    assert_eq!(
        run_objects("{{ .Capabilities.KubeVersion.Version }}").unwrap(),
        "v1.30.0"
    );
    assert_eq!(
        run_objects(r#"{{ if .Capabilities.APIVersions.Has "policy/v1" }}pdb{{ end }}"#).unwrap(),
        "pdb"
    );
    assert_eq!(
        run_objects("{{ .Capabilities.APIVersions }}").unwrap(),
        "[policy/v1 v1]"
    );
    assert_eq!(
        run_objects("{{ .Capabilities.Nope }}").unwrap_err(),
        "template: t:1:16: executing \"t\" at <.Capabilities.Nope>: can't evaluate field Nope in type *chartutil.Capabilities"
    );
    assert_eq!(
        run_objects("{{ .Capabilities.KubeVersion 1 }}").unwrap_err(),
        "template: t:1:16: executing \"t\" at <.Capabilities.KubeVersion>: KubeVersion has arguments but cannot be invoked as function"
    );
    assert_eq!(
        run_objects("{{ .Capabilities.APIVersions.Has }}").unwrap_err(),
        "template: t:1:16: executing \"t\" at <.Capabilities.APIVersions.Has>: error calling Has: wrong number of args for Has: want 1 got 0"
    );
    assert_eq!(
        run_objects("{{ .Capabilities.Nothing.x }}").unwrap_err(),
        "template: t:1:16: executing \"t\" at <.Capabilities.Nothing.x>: nil pointer evaluating interface {}.x"
    );
    assert_eq!(
        run_objects(r#"{{ $f := .Files }}{{ $f.Get "x.txt" }}"#).unwrap(),
        "content of x.txt"
    );
    assert_eq!(
        run_objects("{{ range $k, $v := .Files }}{{ $k }}={{ printf \"%s\" $v }};{{ end }}")
            .unwrap(),
        "a.txt=a;b.txt=b;"
    );
    assert_eq!(
        run_objects(r#"{{ len .Files }} {{ index .Files "b.txt" }} {{ printf "%T" .Files }}"#)
            .unwrap(),
        "2 [98] chart.Files"
    );
    assert_eq!(run_objects("[{{ .Files.nope }}]").unwrap(), "[<no value>]");
    assert_eq!(
        run_objects("{{ .Files.nope 1 }}").unwrap_err(),
        "template: t:1:9: executing \"t\" at <.Files.nope>: nope is not a method but has arguments"
    );
    assert_eq!(
        run_objects("{{ range .Capabilities }}{{ end }}").unwrap_err(),
        "template: t:1:9: executing \"t\" at <.Capabilities>: range can't iterate over &{...}"
    );
}

#[test]
fn error_location_spans_lines_and_defines() {
    assert_eq!(
        err("line1\nline2 {{ .a.b }}\n", "{}"),
        "template: t:2:11: executing \"t\" at <.a.b>: nil pointer evaluating interface {}.b"
    );
    assert_eq!(
        err("{{/* multi\nline\ncomment */}}\n{{ .a.b }}", "{}"),
        "template: t:4:5: executing \"t\" at <.a.b>: nil pointer evaluating interface {}.b"
    );
    assert_eq!(
        err("{{ if true }}\n  {{ .a.b }}\n{{ end }}", "{}"),
        "template: t:2:7: executing \"t\" at <.a.b>: nil pointer evaluating interface {}.b"
    );
    // Inside a define, the location is in the file the define is in.
    let error = run_with(
        "{{ define \"a\" }}\n{{ .x.y }}{{ end }}{{ template \"a\" . }}",
        json("{}"),
        MissingKey::Zero,
    )
    .unwrap_err();
    assert!(error.starts_with("template: t:2:5: executing"), "{error}");
    assert!(
        error.ends_with("at <.x.y>: nil pointer evaluating interface {}.y"),
        "{error}"
    );
}

#[test]
fn output_is_kept_up_to_the_error() {
    let mut set = Templates::new(functions());
    set.parse("t", "before {{ fail \"x\" }} after").unwrap();
    let mut out = String::new();
    assert!(
        set.execute_into("t", Value::Nil, &ExecOptions::default(), &mut out)
            .is_err()
    );
    assert_eq!(out, "before ");
}

#[test]
fn maps_are_shared_and_range_sees_a_snapshot() {
    // A function that changes a map is seen by later readers of the same map.
    fn set_key(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
        let Value::Map(map) = &args[0] else {
            return Err("map expected".into());
        };
        map.borrow_mut()
            .insert(args[1].as_str().unwrap().to_string(), args[2].clone());
        Ok(args[0].clone())
    }
    let mut table = functions();
    table.insert("set", set_key);
    let mut set = Templates::new(table);
    set.parse(
        "t",
        r#"{{ range $k, $v := .m }}{{ $_ := set $.m "z" 1 }}{{ $k }}{{ end }}|{{ len .m }}"#,
    )
    .unwrap();
    assert_eq!(
        set.execute("t", json(r#"{"m":{"a":1,"b":2}}"#), &ExecOptions::helm())
            .unwrap(),
        "ab|3"
    );
}

#[test]
fn step_limit_bounds_long_runs() {
    let mut set = Templates::new(functions());
    set.parse("t", "{{ range 100000000 }}{{ end }}").unwrap();
    let options = ExecOptions {
        max_steps: Some(1000),
        ..ExecOptions::default()
    };
    let error = set.execute("t", Value::Nil, &options).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("exceeded maximum number of steps (1000)"),
        "{error}"
    );
    set.parse("u", r#"{{ define "two" }}{{ include "two" . }}{{ include "two" . }}{{ end }}{{ include "two" . }}"#).unwrap();
    let error = set.execute("u", Value::Nil, &options).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("exceeded maximum number of steps (1000)"),
        "{error}"
    );
}
