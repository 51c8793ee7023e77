//! `*.tmpl` files. Sealer renders them at deploy time with the cluster's environment as Go
//! templates (with Sprig's functions); the scan renders them the same way with the build's
//! environment as dot, a map of strings (`{{ .Registry }}`). A missing key is an error, not an
//! empty string: a file that needs what only the deploy knows is not guessed at, the caller
//! skips it with a warning naming the file, the line and the problem.

use std::collections::BTreeMap;

use gotemplate::{ExecOptions, Functions, Templates, Value};

/// Most steps one rendering may take, so that a hostile template (`{{ range 10000000000 }}`)
/// ends in an error instead of running for ages.
const MAX_STEPS: u64 = 10_000_000;

/// Renders the template `text` of the file `name` with `env` as dot; the error says where and
/// what failed.
pub fn render(
    name: &str,
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<String, Box<gotemplate::Error>> {
    let mut functions = Functions::new();
    sprig::register(&mut functions);
    let mut templates = Templates::new(functions);
    templates.parse(name, text).map_err(Box::new)?;
    let dot = Value::map(
        env.iter()
            .map(|(key, value)| (key.clone(), Value::string(value.as_str())))
            .collect(),
    );
    let options = ExecOptions {
        max_steps: Some(MAX_STEPS),
        ..ExecOptions::strict()
    };
    templates.execute(name, dot, &options).map_err(Box::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([("Registry".to_owned(), "sea.hub:5000".to_owned())])
    }

    #[test]
    fn renders_go_templates_with_sprig() {
        let text = "image: {{ .Registry }}/x:1\n{{/* c */}}a: {{- .Registry -}}  \nb\n";
        assert_eq!(
            render("t.tmpl", text, &env()).unwrap(),
            "image: sea.hub:5000/x:1\na:sea.hub:5000b\n"
        );
        let text = "{{ if .Registry }}{{ .Registry | upper | quote }}{{ end }}{{ .Registry | trimSuffix \":5000\" | default \"x\" }}";
        assert_eq!(
            render("t.tmpl", text, &env()).unwrap(),
            "\"SEA.HUB:5000\"sea.hub"
        );
    }

    #[test]
    fn missing_keys_and_syntax_errors_are_located() {
        let error = render("t.tmpl", "x\n{{ .Registry }} {{ .Missing }}", &env()).unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(error.to_string().contains(".Missing"), "{error}");
        let error = render("t.tmpl", "x\ny\n{{ .A", &env()).unwrap_err();
        assert_eq!(error.line, Some(3));
        let error = render("t.tmpl", "{{ nofunc 1 }}", &env()).unwrap_err();
        assert!(error.to_string().contains("nofunc"), "{error}");
    }

    #[test]
    fn endless_templates_are_stopped() {
        let error = render("t.tmpl", "{{ range 100000000000 }}x{{ end }}", &env()).unwrap_err();
        assert!(error.to_string().contains("steps"), "{error}");
    }
}
