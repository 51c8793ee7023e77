//! Computing a chart's values as Helm does: user values over the chart's defaults
//! (`coalesce`), globals copied into every subchart, subcharts enabled or removed by their
//! `condition` and `tags`, aliases, and `import-values`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use gotemplate::{Map, Value};

use crate::HelmError;
use crate::chart::Chart;

/// The key whose table every subchart receives from its parent.
const GLOBAL_KEY: &str = "global";

fn table(value: &Value) -> Option<Map> {
    match value {
        Value::Map(map) => Some(map.clone()),
        _ => None,
    }
}

fn deep_copy_table(map: &Map) -> Map {
    new_map(
        map.borrow()
            .iter()
            .map(|(key, value)| (key.clone(), value.deep_copy()))
            .collect(),
    )
}

/// A new shared map holding `entries`.
pub(crate) fn new_map(entries: BTreeMap<String, Value>) -> Map {
    Rc::new(RefCell::new(entries))
}

/// Fills `dst` from `src` where `dst` has no value; `dst` wins. Without `merge`, a nil in
/// `dst` deletes the key (how a user removes a default) and it is not filled again.
pub fn coalesce_tables(dst: &Map, src: &Map, merge: bool) {
    let src = src.borrow().clone();
    let mut dst = dst.borrow_mut();
    let nil_keys: Vec<String> = dst
        .iter()
        .filter(|(_, value)| value.is_nil())
        .map(|(key, _)| key.clone())
        .collect();
    if !merge {
        for key in &nil_keys {
            dst.remove(key);
        }
    }
    for (key, source_value) in src {
        if nil_keys.contains(&key) {
            continue;
        }
        match dst.get(&key).map(table) {
            None => {
                dst.insert(key, source_value.deep_copy());
            }
            Some(Some(dst_table)) => {
                if let Some(src_table) = table(&source_value) {
                    coalesce_tables(&dst_table, &src_table, merge);
                }
            }
            Some(None) => {}
        }
    }
}

/// Coalesces `values` (the user's, modified in place) with `chart`'s defaults and those of
/// its subcharts, as Helm's `CoalesceValues` (`merge == false`) or `MergeValues` does.
pub fn coalesce_chart(chart: &Chart, values: &Map, merge: bool) -> Result<(), HelmError> {
    coalesce_own_values(chart, values, merge);
    coalesce_dependencies(chart, values, merge)
}

fn coalesce_own_values(chart: &Chart, values: &Map, merge: bool) {
    let defaults = chart.values.clone();
    for (key, default) in defaults {
        let current = values.borrow().get(&key).cloned();
        match current {
            None => {
                values.borrow_mut().insert(key, default.deep_copy());
            }
            Some(Value::Nil) if !merge => {
                values.borrow_mut().remove(&key);
            }
            Some(Value::Map(user_table)) => {
                if let Some(default_table) = table(&default) {
                    let is_subchart = chart
                        .dependencies
                        .iter()
                        .any(|sub| sub.metadata.name == key);
                    coalesce_tables(&user_table, &default_table, merge || is_subchart);
                }
            }
            Some(_) => {}
        }
    }
}

fn coalesce_dependencies(chart: &Chart, values: &Map, merge: bool) -> Result<(), HelmError> {
    for subchart in &chart.dependencies {
        let name = &subchart.metadata.name;
        let existing = values.borrow().get(name).cloned();
        let sub_values = match existing {
            None => {
                let map = new_map(BTreeMap::new());
                values
                    .borrow_mut()
                    .insert(name.clone(), Value::Map(map.clone()));
                map
            }
            Some(Value::Map(map)) => map,
            Some(other) => {
                return Err(HelmError::new(format!(
                    "values: `{name}` must be a table for subchart {name}, found {}",
                    other.type_name()
                )));
            }
        };
        coalesce_globals(&sub_values, values);
        coalesce_chart(subchart, &sub_values, merge)?;
    }
    Ok(())
}

/// Copies the parent's `global` table into the subchart's: the parent's scalars win, tables
/// are merged with the parent's entries first.
fn coalesce_globals(dest: &Map, parent: &Map) {
    let parent_globals = parent.borrow().get(GLOBAL_KEY).and_then(table);
    let dest_globals = match dest.borrow().get(GLOBAL_KEY) {
        None => Some(new_map(BTreeMap::new())),
        Some(value) => table(value),
    };
    let (Some(dest_globals), Some(parent_globals)) = (
        dest_globals,
        parent_globals.or_else(|| Some(new_map(BTreeMap::new()))),
    ) else {
        return;
    };
    let parent_entries = parent_globals.borrow().clone();
    for (key, value) in parent_entries {
        if let Some(parent_table) = table(&value) {
            let copy = deep_copy_table(&parent_table);
            let existing = dest_globals.borrow().get(&key).cloned();
            match existing {
                None => {
                    dest_globals.borrow_mut().insert(key, Value::Map(copy));
                }
                Some(Value::Map(dest_table)) => {
                    coalesce_tables(&copy, &dest_table, true);
                    dest_globals.borrow_mut().insert(key, Value::Map(copy));
                }
                Some(_) => {}
            }
        } else {
            let dest_is_table = dest_globals
                .borrow()
                .get(&key)
                .is_some_and(|existing| table(existing).is_some());
            if !dest_is_table {
                dest_globals.borrow_mut().insert(key, value);
            }
        }
    }
    dest.borrow_mut()
        .insert(GLOBAL_KEY.into(), Value::Map(dest_globals));
}

/// The value at a dotted path, when it is not a table (Helm's `Values.PathValue`).
fn path_value(values: &Map, path: &str) -> Option<Value> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop()?;
    let mut current = values.clone();
    for part in parts {
        let next = current.borrow().get(part).and_then(table)?;
        current = next;
    }
    let value = current.borrow().get(last).cloned()?;
    if table(&value).is_some() {
        None
    } else {
        Some(value)
    }
}

/// The table at a dotted path (Helm's `Values.Table`).
fn path_table(values: &Map, path: &str) -> Option<Map> {
    let mut current = values.clone();
    for part in path.split('.').filter(|part| !part.is_empty()) {
        let next = current.borrow().get(part).and_then(table)?;
        current = next;
    }
    Some(current)
}

/// Applies `condition`, `tags` and `alias` of Chart.yaml dependencies: disabled subcharts
/// are removed from the chart, aliased ones renamed (Helm's `processDependencyEnabled`).
pub fn process_dependency_enabled(
    chart: &mut Chart,
    values: &Map,
    path: &str,
) -> Result<(), HelmError> {
    if chart.metadata.dependencies.is_empty() {
        return Ok(());
    }
    let existing = std::mem::take(&mut chart.dependencies);
    let mut kept: Vec<Chart> = existing
        .iter()
        .filter(|sub| {
            !chart.metadata.dependencies.iter().any(|req| {
                req.name == sub.metadata.name
                    && crate::semver_compatible(&req.version, &sub.metadata.version)
            })
        })
        .cloned()
        .collect();
    for req in &mut chart.metadata.dependencies {
        if let Some(found) = existing.iter().find(|sub| {
            sub.metadata.name == req.name
                && crate::semver_compatible(&req.version, &sub.metadata.version)
        }) {
            let mut aliased = found.clone();
            if !req.alias.is_empty() {
                aliased.metadata.name.clone_from(&req.alias);
                aliased
                    .metadata
                    .raw
                    .insert("name".into(), Value::from(req.alias.as_str()));
            }
            kept.push(aliased);
        }
        if !req.alias.is_empty() {
            req.name.clone_from(&req.alias);
        }
    }
    chart.dependencies = kept;

    let coalesced = deep_copy_table(values);
    coalesce_chart(chart, &coalesced, false)?;

    let tags = path_table(&coalesced, "tags");
    let mut disabled = Vec::new();
    for req in &chart.metadata.dependencies {
        let mut enabled = true;
        if let Some(tags) = &tags {
            let tags = tags.borrow();
            let states: Vec<bool> = req
                .tags
                .iter()
                .filter_map(|tag| match tags.get(tag) {
                    Some(Value::Bool(state)) => Some(*state),
                    _ => None,
                })
                .collect();
            let has_true = states.contains(&true);
            let has_false = states.contains(&false);
            enabled = has_true || !has_false;
        }
        for condition in req
            .condition
            .trim()
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            if let Some(Value::Bool(state)) = path_value(&coalesced, &format!("{path}{condition}"))
            {
                enabled = state;
                break;
            }
        }
        if !enabled {
            disabled.push(req.name.clone());
        }
    }
    chart
        .dependencies
        .retain(|sub| !disabled.contains(&sub.metadata.name));
    chart
        .metadata
        .dependencies
        .retain(|req| !disabled.contains(&req.name));
    for sub in &mut chart.dependencies {
        let sub_path = format!("{path}{}.", sub.metadata.name);
        process_dependency_enabled(sub, &coalesced, &sub_path)?;
    }
    Ok(())
}

/// Applies `import-values` bottom-up: children's exported tables become defaults of the
/// parent, which still override them (Helm's `processDependencyImportValues`, merge mode).
pub fn process_import_values(chart: &mut Chart) -> Result<(), HelmError> {
    for sub in &mut chart.dependencies {
        process_import_values(sub)?;
    }
    if chart.metadata.dependencies.is_empty() {
        return Ok(());
    }
    let merged = new_map(BTreeMap::new());
    coalesce_chart(chart, &merged, true)?;
    let imported = new_map(BTreeMap::new());
    for req in &chart.metadata.dependencies {
        for import in &req.import_values {
            let (child, parent) = match import {
                Value::String(name) => (format!("exports.{name}"), ".".to_owned()),
                Value::Map(map) => {
                    let map = map.borrow();
                    let text = |key: &str| {
                        map.get(key)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    (text("child"), text("parent"))
                }
                _ => continue,
            };
            let Some(found) = path_table(&merged, &format!("{}.{child}", req.name)) else {
                continue;
            };
            let found = deep_copy_table(&found);
            let placed = if parent == "." || parent.is_empty() {
                found
            } else {
                let mut value = Value::Map(found);
                for part in parent.rsplit('.') {
                    value = Value::map(BTreeMap::from([(part.to_owned(), value)]));
                }
                match value {
                    Value::Map(map) => map,
                    _ => continue,
                }
            };
            coalesce_tables(&imported, &placed, true);
        }
    }
    coalesce_tables(&merged, &imported, true);
    chart.values = merged.borrow().clone();
    Ok(())
}
