//! Fuzz target `parse_execute`: parses arbitrary UTF-8 text as a template (with a few
//! functions, including `include` and `tpl`, which re-enter the engine) and executes it, and
//! every template it defines, with a small fixed data value under each missing-key option;
//! then formats the text as a `printf` format. Nothing may panic or overflow the stack.
//! Execution is bounded in depth and steps so that `{{range 10000000000}}` and
//! self-duplicating templates do not hang the fuzzer.
#![no_main]

use std::collections::BTreeMap;

use gotemplate::{ExecOptions, Functions, MissingKey, Runtime, Templates, Value};
use libfuzzer_sys::fuzz_target;

fn include(runtime: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    let name = args
        .first()
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let dot = args.get(1).cloned().unwrap_or(Value::Nil);
    runtime
        .execute_named(&name, dot)
        .map(Value::string)
        .map_err(|error| error.to_string())
}

fn tpl(runtime: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    let text = args
        .first()
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let dot = args.get(1).cloned().unwrap_or(Value::Nil);
    runtime
        .execute_text("fuzz", &text, dot)
        .map(Value::string)
        .map_err(|error| error.to_string())
}

fn fail(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    Err(gotemplate::fmt::sprint(args))
}

fn list(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    Ok(Value::list(args.to_vec()))
}

fn data() -> Value {
    let inner = Value::map(BTreeMap::from([
        ("name".to_string(), Value::string("web")),
        ("port".to_string(), Value::Float(8080.0)),
        (
            "tags".to_string(),
            Value::list(vec![Value::string("a"), Value::Nil, Value::Bool(true)]),
        ),
    ]));
    Value::map(BTreeMap::from([
        ("Values".to_string(), inner),
        ("global".to_string(), Value::Nil),
        ("count".to_string(), Value::int(3)),
        ("ratio".to_string(), Value::Float(0.5)),
        (
            "bytes".to_string(),
            Value::Bytes(std::rc::Rc::from(&b"xyz"[..])),
        ),
        (
            "list".to_string(),
            Value::list(vec![
                Value::Float(1.0),
                Value::string("two"),
                Value::empty_map(),
            ]),
        ),
    ]))
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let mut functions = Functions::new();
    functions.insert("include", include);
    functions.insert("tpl", tpl);
    functions.insert("fail", fail);
    functions.insert("list", list);
    let mut set = Templates::new(functions).with_name("gotpl");
    match set.parse("fuzz", text) {
        Ok(()) => {
            let mut names: Vec<String> = set.names().map(str::to_string).collect();
            names.sort();
            for missing_key in [MissingKey::Invalid, MissingKey::Zero, MissingKey::Error] {
                let options = ExecOptions {
                    missing_key,
                    max_depth: 40,
                    max_steps: Some(20_000),
                };
                for name in &names {
                    match set.execute(name, data(), &options) {
                        Ok(output) => drop(output),
                        Err(error) => drop(error.to_string()),
                    }
                }
            }
        }
        Err(error) => drop(error.to_string()),
    }
    let args = [
        Value::int(-7),
        Value::Float(2.5),
        Value::string("s"),
        Value::Nil,
        data(),
    ];
    drop(gotemplate::fmt::sprintf(text, &args));
});
