//! Sprig's list functions. Sprig's plain and `must` variants fail alike for lists (the plain
//! ones panic, which Go's template engine reports as the same error).

use std::rc::Rc;

use gotemplate::{Functions, Value};

use crate::args::{
    NIL_DEREFERENCE, Outcome, at_least, fixed, int, is_empty, require_slice, slice_items, strslice,
    strval, to_int64,
};

/// Registers `$body` (a `fn(&str, &[Value]) -> Outcome` taking its own name) under each name.
macro_rules! register_as {
    ($functions:expr, $body:path, $($name:literal),+) => {
        $( $functions.insert($name, |_, args| $body($name, args)); )+
    };
}
pub(crate) use register_as;

pub(crate) fn register(functions: &mut Functions) {
    functions.insert("list", |_, args| Ok(Value::list(args.to_vec())));
    functions.insert("tuple", |_, args| Ok(Value::list(args.to_vec())));
    register_as!(functions, first, "first", "mustFirst");
    register_as!(functions, last, "last", "mustLast");
    register_as!(functions, rest, "rest", "mustRest");
    register_as!(functions, initial, "initial", "mustInitial");
    register_as!(functions, push, "append", "push", "mustAppend", "mustPush");
    register_as!(functions, prepend, "prepend", "mustPrepend");
    register_as!(functions, reverse, "reverse", "mustReverse");
    register_as!(functions, uniq, "uniq", "mustUniq");
    register_as!(functions, compact, "compact", "mustCompact");
    register_as!(functions, without, "without", "mustWithout");
    register_as!(functions, has, "has", "mustHas");
    register_as!(functions, slice, "slice", "mustSlice");
    register_as!(functions, chunk, "chunk", "mustChunk");
    functions.insert("concat", concat);
    functions.insert("sortAlpha", |_, args| {
        let [items] = fixed("sortAlpha", args)?;
        let mut texts = if slice_items(items).is_some() {
            strslice(items)
        } else {
            vec![strval(items)]
        };
        texts.sort();
        Ok(Value::list(texts.into_iter().map(Value::from).collect()))
    });
}

fn one_list(name: &str, args: &[Value], operation: &str) -> Result<Rc<Vec<Value>>, String> {
    let [items] = fixed(name, args)?;
    require_slice(items, |kind| {
        format!("Cannot find {operation} on type {kind}")
    })
}

fn first(name: &str, args: &[Value]) -> Outcome {
    Ok(one_list(name, args, "first")?
        .first()
        .cloned()
        .unwrap_or(Value::Nil))
}

fn last(name: &str, args: &[Value]) -> Outcome {
    Ok(one_list(name, args, "last")?
        .last()
        .cloned()
        .unwrap_or(Value::Nil))
}

fn rest(name: &str, args: &[Value]) -> Outcome {
    let items = one_list(name, args, "rest")?;
    Ok(Value::list(items.iter().skip(1).cloned().collect()))
}

fn initial(name: &str, args: &[Value]) -> Outcome {
    let items = one_list(name, args, "initial")?;
    Ok(Value::list(items[..items.len().saturating_sub(1)].to_vec()))
}

fn reverse(name: &str, args: &[Value]) -> Outcome {
    let items = one_list(name, args, "reverse")?;
    Ok(Value::list(items.iter().rev().cloned().collect()))
}

fn uniq(name: &str, args: &[Value]) -> Outcome {
    let items = one_list(name, args, "uniq")?;
    let mut unique: Vec<Value> = Vec::new();
    for item in items.iter() {
        if !unique.contains(item) {
            unique.push(item.clone());
        }
    }
    Ok(Value::list(unique))
}

fn compact(name: &str, args: &[Value]) -> Outcome {
    let [items] = fixed(name, args)?;
    let items = require_slice(items, |kind| format!("Cannot compact on type {kind}"))?;
    Ok(Value::list(
        items
            .iter()
            .filter(|item| !is_empty(item))
            .cloned()
            .collect(),
    ))
}

fn push(name: &str, args: &[Value]) -> Outcome {
    let [items, value] = fixed(name, args)?;
    let mut items = require_slice(items, |kind| format!("Cannot push on type {kind}"))?.to_vec();
    items.push(value.clone());
    Ok(Value::list(items))
}

fn prepend(name: &str, args: &[Value]) -> Outcome {
    let [items, value] = fixed(name, args)?;
    let items = require_slice(items, |kind| format!("Cannot prepend on type {kind}"))?;
    Ok(Value::list(
        std::iter::once(value.clone())
            .chain(items.iter().cloned())
            .collect(),
    ))
}

fn without(name: &str, args: &[Value]) -> Outcome {
    let args = at_least(name, args, 1)?;
    let items = require_slice(&args[0], |kind| {
        format!("Cannot find without on type {kind}")
    })?;
    let omitted = &args[1..];
    Ok(Value::list(
        items
            .iter()
            .filter(|item| !omitted.contains(item))
            .cloned()
            .collect(),
    ))
}

fn has(name: &str, args: &[Value]) -> Outcome {
    let [needle, haystack] = fixed(name, args)?;
    if haystack.is_nil() {
        return Ok(false.into());
    }
    let items = require_slice(haystack, |kind| format!("Cannot find has on type {kind}"))?;
    Ok(items.contains(needle).into())
}

fn slice(name: &str, args: &[Value]) -> Outcome {
    let args = at_least(name, args, 1)?;
    let items = require_slice(&args[0], |kind| {
        format!("list should be type of slice or array but {kind}")
    })?;
    if items.is_empty() {
        return Ok(Value::Nil);
    }
    let start = args.get(1).map_or(0, to_int64);
    let end = args
        .get(2)
        .map_or(i64::try_from(items.len()).unwrap_or(i64::MAX), to_int64);
    let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
        return Err("reflect.Value.Slice: slice index out of bounds".into());
    };
    if start > end || end > items.len() {
        return Err("reflect.Value.Slice: slice index out of bounds".into());
    }
    let part = items[start..end].to_vec();
    Ok(match &args[0] {
        Value::Bytes(bytes) => Value::Bytes(bytes[start..end].into()),
        _ => Value::list(part),
    })
}

fn chunk(name: &str, args: &[Value]) -> Outcome {
    let [size, items] = fixed(name, args)?;
    let size = int(size)?;
    let items = require_slice(items, |kind| format!("Cannot chunk type {kind}"))?;
    let size = usize::try_from(size)
        .ok()
        .filter(|size| *size > 0)
        .ok_or_else(|| "runtime error: makeslice: len out of range".to_string())?;
    Ok(Value::list(
        items
            .chunks(size)
            .map(|part| Value::list(part.to_vec()))
            .collect(),
    ))
}

fn concat(_: &mut dyn gotemplate::Runtime, args: &[Value]) -> Outcome {
    let mut joined = Vec::new();
    for list in args {
        if list.is_nil() {
            return Err(NIL_DEREFERENCE.into());
        }
        let items = slice_items(list)
            .ok_or_else(|| format!("Cannot concat type {} as list", list.kind_name()))?;
        joined.extend(items.iter().cloned());
    }
    Ok(Value::list(joined))
}
