//! Sprig's defaults, flow control and reflection functions.

use gotemplate::{Functions, Value};

use crate::args::{at_least, boolean, fixed, is_empty, string};

pub(crate) fn register(functions: &mut Functions) {
    functions.insert("default", |_, args| {
        let args = at_least("default", args, 1)?;
        Ok(match args.get(1) {
            Some(given) if !is_empty(given) => given.clone(),
            _ => args[0].clone(),
        })
    });
    functions.insert("empty", |_, args| {
        let [value] = fixed("empty", args)?;
        Ok(is_empty(value).into())
    });
    functions.insert("coalesce", |_, args| {
        Ok(args
            .iter()
            .find(|value| !is_empty(value))
            .cloned()
            .unwrap_or(Value::Nil))
    });
    functions.insert("all", |_, args| {
        Ok(args.iter().all(|value| !is_empty(value)).into())
    });
    functions.insert("any", |_, args| {
        Ok(args.iter().any(|value| !is_empty(value)).into())
    });
    functions.insert("ternary", |_, args| {
        let [if_true, if_false, condition] = fixed("ternary", args)?;
        Ok(if boolean(condition)? {
            if_true
        } else {
            if_false
        }
        .clone())
    });
    functions.insert("deepCopy", |_, args| {
        let [value] = fixed("deepCopy", args)?;
        Ok(value.deep_copy())
    });
    functions.insert("mustDeepCopy", |_, args| {
        let [value] = fixed("mustDeepCopy", args)?;
        Ok(value.deep_copy())
    });
    functions.insert("deepEqual", |_, args| {
        let [a, b] = fixed("deepEqual", args)?;
        Ok((a == b).into())
    });
    functions.insert("typeOf", |_, args| {
        let [value] = fixed("typeOf", args)?;
        Ok(value.type_name().into())
    });
    functions.insert("kindOf", |_, args| {
        let [value] = fixed("kindOf", args)?;
        Ok(value.kind_name().into())
    });
    functions.insert("typeIs", |_, args| {
        let [target, value] = fixed("typeIs", args)?;
        Ok((string(target)? == value.type_name()).into())
    });
    functions.insert("typeIsLike", |_, args| {
        let [target, value] = fixed("typeIsLike", args)?;
        let (target, actual) = (string(target)?, value.type_name());
        Ok((target == actual || actual.strip_prefix('*') == Some(target)).into())
    });
    functions.insert("kindIs", |_, args| {
        let [target, value] = fixed("kindIs", args)?;
        Ok((string(target)? == value.kind_name()).into())
    });
    functions.insert("fail", |_, args| {
        let [message] = fixed("fail", args)?;
        Err(string(message)?.to_string())
    });
}
