//! Sprig's dictionary functions, with mergo's merge rules for `merge` and `mergeOverwrite`.

use std::collections::BTreeMap;

use gotemplate::{Functions, Map, Runtime, Value};

use crate::args::{Outcome, at_least, fixed, is_empty, map, string, strval};
use crate::lists::register_as;

pub(crate) fn register(functions: &mut Functions) {
    functions.insert("dict", |_, args| {
        let entries = args
            .chunks(2)
            .map(|pair| {
                (
                    strval(&pair[0]),
                    pair.get(1).cloned().unwrap_or_else(|| Value::from("")),
                )
            })
            .collect::<BTreeMap<_, _>>();
        Ok(Value::map(entries))
    });
    functions.insert("get", |_, args| {
        let [dict, key] = fixed("get", args)?;
        let value = map(dict)?.borrow().get(string(key)?).cloned();
        Ok(value.unwrap_or_else(|| Value::from("")))
    });
    functions.insert("set", |_, args| {
        let [dict, key, value] = fixed("set", args)?;
        map(dict)?
            .borrow_mut()
            .insert(string(key)?.to_string(), value.clone());
        Ok(dict.clone())
    });
    functions.insert("unset", |_, args| {
        let [dict, key] = fixed("unset", args)?;
        map(dict)?.borrow_mut().remove(string(key)?);
        Ok(dict.clone())
    });
    functions.insert("hasKey", |_, args| {
        let [dict, key] = fixed("hasKey", args)?;
        Ok(map(dict)?.borrow().contains_key(string(key)?).into())
    });
    functions.insert("pluck", |_, args| {
        let args = at_least("pluck", args, 1)?;
        let key = string(&args[0])?;
        let mut found = Vec::new();
        for dict in &args[1..] {
            if let Some(value) = map(dict)?.borrow().get(key) {
                found.push(value.clone());
            }
        }
        Ok(Value::list(found))
    });
    functions.insert("keys", |_, args| {
        let mut keys = Vec::new();
        for dict in args {
            keys.extend(map(dict)?.borrow().keys().cloned());
        }
        keys.sort();
        Ok(Value::list(keys.into_iter().map(Value::from).collect()))
    });
    functions.insert("values", |_, args| {
        let [dict] = fixed("values", args)?;
        Ok(Value::list(map(dict)?.borrow().values().cloned().collect()))
    });
    functions.insert("pick", |_, args| select("pick", args, true));
    functions.insert("omit", |_, args| select("omit", args, false));
    functions.insert("dig", dig);
    register_as!(functions, merge, "merge", "mustMerge");
    register_as!(
        functions,
        merge_overwrite,
        "mergeOverwrite",
        "mustMergeOverwrite"
    );
}

/// `pick` (keep the named keys) and `omit` (drop them).
fn select(name: &str, args: &[Value], keep_named: bool) -> Outcome {
    let args = at_least(name, args, 1)?;
    let dict = map(&args[0])?;
    let named = args[1..]
        .iter()
        .map(string)
        .collect::<Result<Vec<_>, _>>()?;
    let picked = dict
        .borrow()
        .iter()
        .filter(|(key, _)| named.contains(&key.as_str()) == keep_named)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    Ok(Value::map(picked))
}

/// The panic message of a failed Go type assertion on an `interface{}`.
fn assertion_failure(value: &Value, expected: &str) -> String {
    let got = if value.is_nil() {
        "nil".to_string()
    } else {
        value.type_name()
    };
    format!("interface conversion: interface {{}} is {got}, not {expected}")
}

fn as_dict(value: &Value) -> Result<&Map, String> {
    match value {
        Value::Map(dict) => Ok(dict),
        other => Err(assertion_failure(other, "map[string]interface {}")),
    }
}

fn dig(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    if args.len() < 3 {
        return Err("dig needs at least three arguments".into());
    }
    let (keys, rest) = args.split_at(args.len() - 2);
    let default = &rest[0];
    let mut dict = as_dict(&rest[1])?.clone();
    let keys = keys
        .iter()
        .map(|key| key.as_str().ok_or_else(|| assertion_failure(key, "string")))
        .collect::<Result<Vec<_>, _>>()?;
    for (index, key) in keys.iter().enumerate() {
        let Some(step) = dict.borrow().get(*key).cloned() else {
            return Ok(default.clone());
        };
        if index + 1 == keys.len() {
            return Ok(step);
        }
        dict = as_dict(&step)?.clone();
    }
    Ok(default.clone())
}

fn merge(name: &str, args: &[Value]) -> Outcome {
    merge_all(name, args, false)
}

fn merge_overwrite(name: &str, args: &[Value]) -> Outcome {
    merge_all(name, args, true)
}

fn merge_all(name: &str, args: &[Value], overwrite: bool) -> Outcome {
    let args = at_least(name, args, 1)?;
    let destination = map(&args[0])?;
    for source in &args[1..] {
        let source = map(source)?;
        if !std::rc::Rc::ptr_eq(&destination, &source) {
            deep_merge(&destination, &source, overwrite);
        }
    }
    Ok(args[0].clone())
}

/// mergo's map merge: `overwrite` sets every source value (nil included); otherwise only
/// missing or empty destination values are filled; nested maps merge recursively.
pub(crate) fn deep_merge(destination: &Map, source: &Map, overwrite: bool) {
    let entries: Vec<(String, Value)> = source
        .borrow()
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    for (key, value) in entries {
        let existing = destination.borrow().get(&key).cloned();
        if value.is_nil() {
            if overwrite {
                destination.borrow_mut().insert(key, Value::Nil);
            }
            continue;
        }
        if let (Value::Map(inner_source), Some(Value::Map(inner_destination))) = (&value, &existing)
            && !std::rc::Rc::ptr_eq(inner_source, inner_destination)
        {
            deep_merge(inner_destination, inner_source, overwrite);
        }
        if let Some(existing) = &existing
            && !is_empty(existing)
        {
            let keep = match (&value, existing) {
                (Value::List(_) | Value::Bytes(_), _) => !overwrite,
                (Value::Map(_), Value::Map(_)) => true,
                _ => false,
            };
            if keep {
                continue;
            }
        }
        if overwrite || existing.as_ref().is_none_or(is_empty) {
            destination.borrow_mut().insert(key, value);
        }
    }
}
