//! Helm's own template functions, on top of Sprig's: `include`, `tpl`, `required`,
//! `lookup`, and the YAML/JSON conversions (`toYaml`, `fromYaml`, `toJson`, ...).

use std::collections::BTreeMap;

use gotemplate::{Functions, Runtime, Value};

/// Every function a Helm template can call: Sprig's (without `env`/`expandenv`) and Helm's.
pub fn helm_functions() -> Functions {
    let mut functions = Functions::new();
    sprig::register(&mut functions);
    functions.insert("include", include);
    functions.insert("tpl", tpl);
    functions.insert("required", required);
    functions.insert("lookup", lookup);
    functions.insert("toYaml", to_yaml);
    functions.insert("mustToYaml", must_to_yaml);
    functions.insert("fromYaml", from_yaml);
    functions.insert("fromYamlArray", from_yaml_array);
    functions.insert("toJson", to_json);
    functions.insert("mustToJson", must_to_json);
    functions.insert("toPrettyJson", to_pretty_json);
    functions.insert("mustToPrettyJson", must_to_pretty_json);
    functions.insert("toRawJson", to_raw_json);
    functions.insert("mustToRawJson", must_to_raw_json);
    functions.insert("fromJson", from_json);
    functions.insert("fromJsonArray", from_json_array);
    functions
}

fn arity(name: &str, args: &[Value], want: usize) -> Result<(), String> {
    if args.len() == want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ))
    }
}

fn string_arg(value: &Value) -> Result<&str, String> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            go_type_for_argument(other)
        )),
    }
}

/// The type Go's template engine names when a nil reaches a typed parameter.
fn go_type_for_argument(value: &Value) -> String {
    if value.is_nil() {
        "interface {}".into()
    } else {
        value.type_name()
    }
}

/// Helm's rendered-text cleanup: a missing value prints as nothing.
pub(crate) fn strip_no_value(text: &str) -> String {
    text.replace("<no value>", "")
}

fn include(runtime: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("include", args, 2)?;
    let name = string_arg(&args[0])?;
    runtime
        .execute_named(name, args[1].clone())
        .map(Value::from)
        .map_err(|error| error.go_message())
}

fn tpl(runtime: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("tpl", args, 2)?;
    let text = string_arg(&args[0])?;
    let output = runtime
        .execute_text("gotpl", text, args[1].clone())
        .map_err(|error| {
            format!(
                "error during tpl function execution for {text:?}: {}",
                error.go_message()
            )
        })?;
    Ok(Value::from(strip_no_value(&output)))
}

fn required(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("required", args, 2)?;
    let message = string_arg(&args[0])?;
    match &args[1] {
        Value::Nil => Err(message.to_owned()),
        Value::String(text) if text.is_empty() => Err(message.to_owned()),
        value => Ok(value.clone()),
    }
}

/// `lookup` needs a cluster; like `helm template`, it finds nothing.
fn lookup(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("lookup", args, 4)?;
    for arg in args {
        string_arg(arg)?;
    }
    Ok(Value::empty_map())
}

/// `toYaml` text: the YAML of the value's data, without the final newline; "" on error.
pub(crate) fn to_yaml_text(value: &Value) -> String {
    kyaml::to_yaml(&value.to_data())
        .map(|text| text.strip_suffix('\n').unwrap_or(&text).to_owned())
        .unwrap_or_default()
}

fn to_yaml(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("toYaml", args, 1)?;
    Ok(Value::from(to_yaml_text(&args[0])))
}

fn must_to_yaml(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("mustToYaml", args, 1)?;
    kyaml::to_yaml(&args[0].to_data())
        .map(|text| Value::from(text.strip_suffix('\n').unwrap_or(&text)))
}

fn from_yaml(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("fromYaml", args, 1)?;
    let text = string_arg(&args[0])?;
    Ok(kyaml::from_yaml(text).unwrap_or_else(|error| error_map(&go_yaml_error(&error))))
}

fn from_yaml_array(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("fromYamlArray", args, 1)?;
    let text = string_arg(&args[0])?;
    Ok(kyaml::from_yaml_array(text)
        .unwrap_or_else(|error| Value::list(vec![Value::from(go_yaml_error(&error))])))
}

fn from_json(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("fromJson", args, 1)?;
    let text = string_arg(&args[0])?;
    Ok(match kyaml::from_json(text) {
        Ok(Value::Map(map)) => Value::Map(map),
        Ok(Value::Nil) => Value::empty_map(),
        Ok(other) => error_map(&format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_kind(&other)
        )),
        Err(error) => error_map(&error),
    })
}

fn from_json_array(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("fromJsonArray", args, 1)?;
    let text = string_arg(&args[0])?;
    Ok(match kyaml::from_json(text) {
        Ok(Value::List(items)) => Value::List(items),
        Ok(Value::Nil) => Value::list(Vec::new()),
        Ok(other) => Value::list(vec![Value::from(format!(
            "json: cannot unmarshal {} into Go value of type []interface {{}}",
            json_kind(&other)
        ))]),
        Err(error) => Value::list(vec![Value::from(error)]),
    })
}

/// A YAML error worded as sigs.k8s.io/yaml words it (`yaml: line N: ...`, no column).
pub(crate) fn go_yaml_error(error: &kyaml::YamlError) -> String {
    format!(
        "error converting YAML to JSON: yaml: line {}: {}",
        error.line, error.message
    )
}

fn error_map(message: &str) -> Value {
    Value::map(BTreeMap::from([("Error".to_owned(), Value::from(message))]))
}

/// How Go's JSON decoder names a value that does not fit the target.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Int(..) | Value::Float(_) => "number",
        Value::List(_) | Value::Bytes(_) => "array",
        _ => "object",
    }
}

fn to_json(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("toJson", args, 1)?;
    Ok(Value::from(
        kyaml::to_json(&args[0].to_data()).unwrap_or_default(),
    ))
}

fn must_to_json(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("mustToJson", args, 1)?;
    kyaml::to_json(&args[0].to_data()).map(Value::from)
}

fn to_pretty_json(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("toPrettyJson", args, 1)?;
    Ok(Value::from(
        kyaml::to_pretty_json(&args[0].to_data()).unwrap_or_default(),
    ))
}

fn must_to_pretty_json(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("mustToPrettyJson", args, 1)?;
    kyaml::to_pretty_json(&args[0].to_data()).map(Value::from)
}

fn to_raw_json(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("toRawJson", args, 1)?;
    Ok(Value::from(
        kyaml::to_raw_json(&args[0].to_data()).unwrap_or_default(),
    ))
}

fn must_to_raw_json(_: &mut dyn Runtime, args: &[Value]) -> Result<Value, String> {
    arity("mustToRawJson", args, 1)?;
    kyaml::to_raw_json(&args[0].to_data()).map(Value::from)
}
