//! Rendering a chart tree as `helm template` does: every chart's templates in one template
//! set (so `include` reaches across charts), parsed and executed in Helm's order, each with
//! its chart's `.Values`, `.Chart`, `.Files`, `.Release`, `.Capabilities` and `.Template`.

use std::collections::BTreeMap;
use std::rc::Rc;

use gotemplate::{ExecOptions, Map, Templates, Value};

use crate::chart::Chart;
use crate::funcs::{helm_functions, strip_no_value};
use crate::objects::{Capabilities, ChartMetadata, Files, KubeVersion};
use crate::values::{coalesce_chart, new_map, process_dependency_enabled, process_import_values};
use crate::{HelmError, RenderOptions, Rendered, RenderedManifest, TemplateError, strvals};

/// One template file to parse and maybe render.
struct TemplateFile {
    /// `chart/templates/x.yaml`, `chart/charts/sub/templates/y.yaml`.
    name: String,
    text: String,
    /// The data the file renders with (shared by the files of one chart).
    top: Map,
    /// `chart/templates`.
    base_path: String,
    /// The chart path, `chart` or `chart/sub`.
    chart: String,
    /// Library charts contribute definitions only.
    library: bool,
}

/// Renders every template of `chart` and of its enabled subcharts.
pub fn render(chart: &Chart, options: &RenderOptions) -> Result<Rendered, HelmError> {
    check_dependencies(chart)?;
    let user_values = user_values(options)?;
    let mut chart = chart.clone();
    process_dependency_enabled(&mut chart, &user_values, "")?;
    process_import_values(&mut chart)?;

    let kube_version = kube_version(options.kube_version.as_deref())?;
    if !chart.metadata.kube_version.is_empty()
        && !crate::semver_compatible(&chart.metadata.kube_version, &kube_version.version)
    {
        return Err(HelmError::new(format!(
            "chart requires kubeVersion: {} which is incompatible with Kubernetes {}",
            chart.metadata.kube_version, kube_version.version
        )));
    }
    coalesce_chart(&chart, &user_values, false)?;

    let capabilities = Value::Object(Rc::new(Capabilities::new(
        kube_version,
        &options.api_versions,
    )));
    let release = Value::map(BTreeMap::from([
        ("Name".into(), Value::from(options.release_name.as_str())),
        ("Namespace".into(), Value::from(options.namespace.as_str())),
        ("IsUpgrade".into(), Value::Bool(false)),
        ("IsInstall".into(), Value::Bool(true)),
        ("Revision".into(), Value::int(1)),
        ("Service".into(), Value::from("Helm")),
    ]));
    let mut files = Vec::new();
    let shared = Shared {
        release,
        capabilities,
    };
    collect_templates(
        &chart,
        None,
        &Value::Map(user_values.clone()),
        &shared,
        &mut files,
    );
    sort_like_helm(&mut files);

    let mut templates = Templates::new(helm_functions()).with_name("gotpl");
    let mut rendered = Rendered::default();
    let mut parsed = Vec::new();
    for file in &files {
        match templates.parse(&file.name, &file.text) {
            Ok(()) => parsed.push(file),
            Err(error) => rendered.errors.push(template_error(file, &error)),
        }
    }
    for file in parsed {
        let base = file.name.rsplit('/').next().unwrap_or(&file.name);
        if base.starts_with('_') || file.library {
            continue;
        }
        file.top.borrow_mut().insert(
            "Template".into(),
            Value::map(BTreeMap::from([
                ("Name".into(), Value::from(file.name.as_str())),
                ("BasePath".into(), Value::from(file.base_path.as_str())),
            ])),
        );
        match templates.execute(
            &file.name,
            Value::Map(file.top.clone()),
            &ExecOptions::helm(),
        ) {
            Ok(output) => {
                if file.name.ends_with("NOTES.txt") {
                    continue;
                }
                let text = strip_no_value(&output);
                if !text.trim().is_empty() {
                    rendered.manifests.push(RenderedManifest {
                        template: file.name.clone(),
                        text,
                    });
                }
            }
            Err(error) => rendered.errors.push(template_error(file, &error)),
        }
    }
    collect_values(&chart, "", &Value::Map(user_values), &mut rendered.values);
    Ok(rendered)
}

/// Every dependency Chart.yaml names must be vendored under `charts/` (Helm refuses to
/// render otherwise: its images would be missed without a word).
fn check_dependencies(chart: &Chart) -> Result<(), HelmError> {
    let missing: Vec<&str> = chart
        .metadata
        .dependencies
        .iter()
        .filter(|req| {
            !chart
                .dependencies
                .iter()
                .any(|sub| sub.metadata.name == req.name)
        })
        .map(|req| req.name.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(HelmError::new(format!(
        "found in Chart.yaml, but missing in charts/ directory: {} (run `helm dependency build` to vendor them)",
        missing.join(", ")
    )))
}

/// What every chart's data shares.
struct Shared {
    release: Value,
    capabilities: Value,
}

/// Builds the data of `chart` (Helm's `recAllTpls`) and registers its templates; returns
/// the data map, which the parent lists under `.Subcharts`.
fn collect_templates(
    chart: &Chart,
    parent: Option<(&str, &str)>,
    values: &Value,
    shared: &Shared,
    files: &mut Vec<TemplateFile>,
) -> Map {
    let name = &chart.metadata.name;
    let (full_path, chart_path) = match parent {
        None => (name.clone(), name.clone()),
        Some((parent_full, parent_chart)) => (
            format!("{parent_full}/charts/{name}"),
            format!("{parent_chart}/{name}"),
        ),
    };
    let own_values = match values {
        Value::Map(map) if parent.is_none() => Value::Map(map.clone()),
        Value::Map(map) => match map.borrow().get(name) {
            Some(Value::Map(sub)) => Value::Map(sub.clone()),
            _ => Value::empty_map(),
        },
        _ => Value::empty_map(),
    };
    let subcharts = Value::empty_map();
    let top = new_map(BTreeMap::from([
        (
            "Chart".into(),
            Value::Object(Rc::new(ChartMetadata::new(
                chart.metadata.raw.clone(),
                parent.is_none(),
            ))),
        ),
        (
            "Files".into(),
            Value::Object(Rc::new(Files::new(&chart.files))),
        ),
        ("Release".into(), shared.release.clone()),
        ("Capabilities".into(), shared.capabilities.clone()),
        ("Values".into(), own_values.clone()),
        ("Subcharts".into(), subcharts.clone()),
    ]));
    for sub in &chart.dependencies {
        let sub_top = collect_templates(
            sub,
            Some((&full_path, &chart_path)),
            &own_values,
            shared,
            files,
        );
        if let Value::Map(list) = &subcharts {
            list.borrow_mut()
                .insert(sub.metadata.name.clone(), Value::Map(sub_top));
        }
    }
    for (path, text) in &chart.templates {
        let base = path.rsplit('/').next().unwrap_or(path);
        if chart.is_library() && !base.starts_with('_') {
            continue;
        }
        files.push(TemplateFile {
            name: format!("{full_path}/{path}"),
            text: text.clone(),
            top: top.clone(),
            base_path: format!("{full_path}/templates"),
            chart: chart_path.clone(),
            library: chart.is_library(),
        });
    }
    top
}

/// Helm's order: deeper paths first, then reverse alphabetical; later definitions of a
/// name win, so a parent's `define` overrides its subcharts'.
fn sort_like_helm(files: &mut [TemplateFile]) {
    files.sort_by(|a, b| {
        let depth_a = a.name.matches('/').count();
        let depth_b = b.name.matches('/').count();
        depth_b.cmp(&depth_a).then_with(|| b.name.cmp(&a.name))
    });
}

fn collect_values(chart: &Chart, prefix: &str, values: &Value, out: &mut BTreeMap<String, Value>) {
    out.insert(prefix.to_owned(), values.clone());
    for sub in &chart.dependencies {
        let sub_values = match values {
            Value::Map(map) => map
                .borrow()
                .get(&sub.metadata.name)
                .cloned()
                .unwrap_or(Value::Nil),
            _ => Value::Nil,
        };
        let path = if prefix.is_empty() {
            sub.metadata.name.clone()
        } else {
            format!("{prefix}/{}", sub.metadata.name)
        };
        collect_values(sub, &path, &sub_values, out);
    }
}

fn template_error(file: &TemplateFile, error: &gotemplate::Error) -> TemplateError {
    TemplateError {
        chart: file.chart.clone(),
        template: file.name.clone(),
        line: error.line,
        function: error.function.clone(),
        message: error.go_message(),
    }
}

/// The user's values: values files merged in order, then `--set` and `--set-string`.
fn user_values(options: &RenderOptions) -> Result<Map, HelmError> {
    let mut merged = BTreeMap::new();
    for (name, text) in &options.values_files {
        let file = crate::chart::yaml_map(name, text)?;
        merged = merge_maps(merged, file);
    }
    for expression in &options.set {
        strvals::parse_into(expression, &mut merged, false).map_err(HelmError::new)?;
    }
    for expression in &options.set_string {
        strvals::parse_into(expression, &mut merged, true).map_err(HelmError::new)?;
    }
    Ok(new_map(merged))
}

/// Helm's `mergeMaps`: tables merge recursively, anything else from `overlay` replaces.
fn merge_maps(
    mut base: BTreeMap<String, Value>,
    overlay: BTreeMap<String, Value>,
) -> BTreeMap<String, Value> {
    for (key, value) in overlay {
        if let (Value::Map(overlay_table), Some(Value::Map(base_table))) = (&value, base.get(&key))
        {
            let merged = merge_maps(base_table.borrow().clone(), overlay_table.borrow().clone());
            base.insert(key, Value::map(merged));
        } else {
            base.insert(key, value);
        }
    }
    base
}

fn kube_version(requested: Option<&str>) -> Result<KubeVersion, HelmError> {
    let text = requested.unwrap_or(crate::defaults::KUBE_VERSION);
    let trimmed = text.trim_start_matches('v');
    let mut parts = trimmed.split('.');
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        return Err(HelmError::new(format!(
            "invalid kube version {text:?}: want MAJOR.MINOR[.PATCH]"
        )));
    };
    if major.parse::<u64>().is_err() || minor.parse::<u64>().is_err() {
        return Err(HelmError::new(format!(
            "invalid kube version {text:?}: want MAJOR.MINOR[.PATCH]"
        )));
    }
    let patch = parts.next().unwrap_or("0");
    Ok(KubeVersion {
        version: format!("v{major}.{minor}.{patch}"),
        major: major.to_owned(),
        minor: minor.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::{Chart, RenderOptions, render};

    fn chart(files: &[(&str, &str)]) -> Chart {
        Chart::load(
            files
                .iter()
                .map(|(path, text)| ((*path).to_owned(), text.as_bytes().to_vec()))
                .collect::<BTreeMap<_, _>>(),
        )
        .unwrap()
    }

    #[test]
    fn a_dependency_missing_from_charts_is_an_error_not_a_silent_gap() {
        let chart = chart(&[(
            "Chart.yaml",
            "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: redis\n  version: 1.x\n",
        )]);
        let error = render(&chart, &RenderOptions::new()).unwrap_err();
        assert!(
            error
                .message
                .contains("missing in charts/ directory: redis"),
            "{error}"
        );
    }

    #[test]
    fn numeric_chart_fields_read_as_helm_reads_them() {
        let chart = chart(&[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: app\nversion: 1.0.0\nappVersion: 20240101\n",
            ),
            (
                "templates/cm.yaml",
                "v: {{ .Chart.AppVersion }} {{ len .Chart.Annotations }}\n",
            ),
        ]);
        let rendered = render(&chart, &RenderOptions::new()).unwrap();
        assert_eq!(rendered.manifests[0].text, "v: 20240101 0\n");
    }
}
