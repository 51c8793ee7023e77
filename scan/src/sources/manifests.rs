//! Manifest files: `.yaml`, `.yml` and `.json` files (multi-document) read as Kubernetes
//! objects, and `.tmpl` files rendered with the build's environment first.

use std::collections::BTreeMap;

use kubefile::context::{ContextView, join};
use kyaml::Limits;

use super::{has_extension, read_text, scan_yaml, template};
use crate::report::{Collector, Provenance, SourceKind, WarningKind};

/// Extensions of files read as YAML.
const YAML_EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Scans every manifest file under `dir` of the context, recursively, in path order.
pub fn scan_dir(
    view: &dyn ContextView,
    dir: &str,
    env: &BTreeMap<String, String>,
    limits: &Limits,
    out: &mut Collector,
) {
    for relative in view.walk_files(dir) {
        let path = join(dir, &relative);
        if has_extension(&path, &YAML_EXTENSIONS) {
            if let Some(text) = read_text(view, &path, out) {
                scan_text(&path, &text, limits, out);
            }
        } else if has_extension(&path, &["tmpl"])
            && let Some(text) = read_text(view, &path, out)
        {
            scan_template(&path, &text, env, limits, out);
        }
    }
}

/// Scans one manifest text; `name` is the file named in provenance and warnings.
pub fn scan_text(name: &str, text: &str, limits: &Limits, out: &mut Collector) {
    scan_yaml(
        text,
        &Provenance::new(SourceKind::Manifest, name),
        limits,
        out,
    );
}

/// Renders a `.tmpl` manifest with `env` and scans the result; a template that fails to parse
/// or to render (it needs more than the environment has) is skipped with a warning naming the
/// file, the line and the problem.
pub fn scan_template(
    name: &str,
    text: &str,
    env: &BTreeMap<String, String>,
    limits: &Limits,
    out: &mut Collector,
) {
    match template::render(name, text, env) {
        Ok(rendered) => scan_text(name, &rendered, limits, out),
        Err(error) => out.warn(
            WarningKind::Template,
            name,
            error.line,
            format!("not rendered: {error}"),
        ),
    }
}
