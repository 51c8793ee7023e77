//! Charts through the real renderer: every corpus chart gives exactly its EXPECTED-IMAGES.txt,
//! and user values (values files, `--set`, subchart conditions, aliases, global registries)
//! change what is found as `helm template` would.

use std::collections::BTreeMap;
use std::path::Path;

use scan::sources::charts::ChartInput;
use scan::{ChartValues, ScanOptions};

fn chart_files(root: &Path) -> ChartInput {
    ChartInput::Files(helm::Chart::read_dir_files(root).unwrap())
}

#[test]
fn every_corpus_chart_gives_exactly_its_expected_images() {
    let Some(corpus) = testkit::corpus::corpus_dir("charts") else {
        return;
    };
    let charts = testkit::corpus::sorted_entries(&corpus);
    let mut failures = Vec::new();
    for dir in &charts {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Vec<String> = std::fs::read_to_string(dir.join("EXPECTED-IMAGES.txt"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let report = scan::scan_chart(
            &format!("charts/{name}"),
            &chart_files(dir),
            &ScanOptions::default(),
        );
        let found = report.references();
        if found != expected {
            failures.push(format!("{name}: found {found:?}\n  expected {expected:?}"));
        }
        if !report.partial_charts.is_empty() || !report.warnings.is_empty() {
            failures.push(format!(
                "{name}: partial {:?}, warnings {:?}",
                report.partial_charts,
                report
                    .warnings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ));
        }
        for image in &report.images {
            let source = &image.sources[0];
            assert!(
                source.file.contains("/templates/")
                    && source.line.is_some()
                    && source.object.is_some(),
                "{name}: {} has no template provenance: {source:?}",
                image.reference
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} charts differ:\n{}",
        failures.len(),
        charts.len(),
        failures.join("\n")
    );
}

/// A chart `app` with a subchart `extra` (off unless `extra.enabled`), used twice more under
/// the aliases `primary` and `replica`, and images built from a global registry.
fn user_values_chart() -> ChartInput {
    let sub_chart = "apiVersion: v2\nname: extra\nversion: 1.0.0\nappVersion: \"2.0\"\n";
    let sub_values =
        "image:\n  repository: example/extra\n  tag: \"\"\nglobal:\n  imageRegistry: \"\"\n";
    let sub_template = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Chart.Name }}\nspec:\n  containers:\n  - name: c\n    image: {{ with .Values.global.imageRegistry }}{{ . }}/{{ end }}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}\n";
    let mut files = BTreeMap::new();
    files.insert(
        "Chart.yaml".into(),
        b"apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n- name: extra\n  version: 1.x\n  condition: extra.enabled\n- name: extra\n  alias: primary\n  version: 1.x\n- name: extra\n  alias: replica\n  version: 1.x\n  condition: replica.enabled\n".to_vec(),
    );
    files.insert(
        "values.yaml".into(),
        b"image:\n  repository: example/app\n  tag: \"1.0\"\nextra:\n  enabled: false\nprimary:\n  image:\n    tag: primary-1\nreplica:\n  enabled: false\nglobal:\n  imageRegistry: \"\"\n".to_vec(),
    );
    files.insert(
        "templates/deployment.yaml".into(),
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: \"{{ with .Values.global.imageRegistry }}{{ . }}/{{ end }}{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n".to_vec(),
    );
    for (path, text) in [
        ("charts/extra/Chart.yaml", sub_chart),
        ("charts/extra/values.yaml", sub_values),
        ("charts/extra/templates/pod.yaml", sub_template),
    ] {
        files.insert(path.into(), text.as_bytes().to_vec());
    }
    ChartInput::Files(files)
}

fn images_with(values: ChartValues) -> Vec<String> {
    let options = ScanOptions {
        chart_values: BTreeMap::from([("app".to_owned(), values)]),
        ..ScanOptions::default()
    };
    let report = scan::scan_chart("charts/app", &user_values_chart(), &options);
    assert!(report.partial_charts.is_empty(), "{:?}", report.warnings);
    report.references()
}

#[test]
fn defaults_render_the_parent_and_the_always_on_alias() {
    assert_eq!(
        images_with(ChartValues::default()),
        [
            "docker.io/example/app:1.0",
            "docker.io/example/extra:primary-1"
        ]
    );
}

#[test]
fn a_values_file_and_set_change_the_images() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prod.yaml");
    std::fs::write(
        &file,
        "image:\n  tag: \"2.0\"\nprimary:\n  image:\n    repository: example/db\n",
    )
    .unwrap();
    assert_eq!(
        images_with(ChartValues {
            values_files: vec![file.clone()],
            ..ChartValues::default()
        }),
        [
            "docker.io/example/app:2.0",
            "docker.io/example/db:primary-1"
        ]
    );
    assert_eq!(
        images_with(ChartValues {
            values_files: vec![file],
            set: vec!["image.tag=3.0".into()],
            ..ChartValues::default()
        }),
        [
            "docker.io/example/app:3.0",
            "docker.io/example/db:primary-1"
        ],
        "--set wins over values files"
    );
}

#[test]
fn values_texts_apply_after_values_files_and_before_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prod.yaml");
    std::fs::write(&file, "image:\n  tag: \"2.0\"\n").unwrap();
    let texts = vec![
        (
            "values/0000.yaml".to_owned(),
            "image:\n  tag: \"4.0\"\nprimary:\n  image:\n    repository: example/db\n".to_owned(),
        ),
        (
            "values/0001.yaml".to_owned(),
            "primary:\n  image:\n    tag: p5\n".to_owned(),
        ),
    ];
    assert_eq!(
        images_with(ChartValues {
            values_files: vec![file.clone()],
            values_texts: texts.clone(),
            ..ChartValues::default()
        }),
        ["docker.io/example/app:4.0", "docker.io/example/db:p5"],
        "texts apply in order, after the files"
    );
    assert_eq!(
        images_with(ChartValues {
            values_files: vec![file],
            values_texts: texts,
            set: vec!["image.tag=3.0".into()],
            ..ChartValues::default()
        }),
        ["docker.io/example/app:3.0", "docker.io/example/db:p5"],
        "--set wins over values texts"
    );
}

#[test]
fn an_invalid_values_text_is_named_in_the_warning() {
    let options = ScanOptions {
        chart_values: BTreeMap::from([(
            "app".to_owned(),
            ChartValues {
                values_texts: vec![("values/0000.yaml".to_owned(), "image: [\n".to_owned())],
                ..ChartValues::default()
            },
        )]),
        ..ScanOptions::default()
    };
    let report = scan::scan_chart("charts/app", &user_values_chart(), &options);
    assert_eq!(report.partial_charts, ["app"]);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.to_string().contains("values/0000.yaml")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn subcharts_enabled_only_through_set_and_aliases_get_their_own_values() {
    assert_eq!(
        images_with(ChartValues {
            set: vec![
                "extra.enabled=true".into(),
                "replica.enabled=true".into(),
                "replica.image.tag=r2".into()
            ],
            ..ChartValues::default()
        }),
        [
            "docker.io/example/app:1.0",
            "docker.io/example/extra:2.0",
            "docker.io/example/extra:primary-1",
            "docker.io/example/extra:r2",
        ]
    );
}

#[test]
fn a_global_registry_reaches_every_chart() {
    assert_eq!(
        images_with(ChartValues {
            set: vec![
                "global.imageRegistry=registry.local:5000".into(),
                "extra.enabled=true".into()
            ],
            ..ChartValues::default()
        }),
        [
            "registry.local:5000/example/app:1.0",
            "registry.local:5000/example/extra:2.0",
            "registry.local:5000/example/extra:primary-1",
        ]
    );
}

#[test]
fn a_template_syntax_error_is_reported_and_the_chart_falls_back() {
    let mut files = BTreeMap::new();
    files.insert(
        "Chart.yaml".to_owned(),
        b"apiVersion: v2\nname: shaky\nversion: 1.0.0\nappVersion: \"7.1\"\n".to_vec(),
    );
    files.insert(
        "values.yaml".to_owned(),
        b"image:\n  repository: example/shaky\n  tag: \"\"\nhelper:\n  image: busybox:1.36\n"
            .to_vec(),
    );
    files.insert(
        "templates/ok.yaml".to_owned(),
        b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: ok\nspec:\n  containers:\n  - name: c\n    image: {{ .Values.helper.image }}\n".to_vec(),
    );
    files.insert(
        "templates/broken.yaml".to_owned(),
        b"kind: Pod\n# fine so far\nimage: {{ if .Values.image }}\n".to_vec(),
    );
    let report = scan::scan_chart(
        "charts/shaky",
        &ChartInput::Files(files),
        &ScanOptions::default(),
    );
    assert_eq!(report.partial_charts, ["shaky"]);
    let warning = report
        .warnings
        .iter()
        .find(|w| w.file.contains("broken.yaml"))
        .unwrap_or_else(|| panic!("no warning for the broken template: {:?}", report.warnings));
    assert_eq!(
        warning.line,
        Some(4),
        "Go reports an unclosed action at the end of the text: {warning}"
    );
    assert!(warning.message.contains("unexpected EOF"), "{warning}");
    assert_eq!(
        report.references(),
        [
            "docker.io/example/shaky:7.1",
            "docker.io/library/busybox:1.36"
        ],
        "the rendered template and the values fallback both count"
    );
}

#[test]
fn rendered_output_is_read_as_helm_reads_it() {
    let mut files = BTreeMap::new();
    files.insert(
        "Chart.yaml".to_owned(),
        b"apiVersion: v2\nname: hooks\nversion: 1.0.0\n".to_vec(),
    );
    files.insert(
        "templates/pods.yaml".to_owned(),
        concat!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: main\nspec:\n  containers:\n  - name: c\n    image: example/main:1\n",
            "---# a comment glued to the separator still separates, as in Helm\n",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: test\n  annotations:\n    helm.sh/hook: test\nspec:\n  containers:\n  - name: c\n    image: example/test:1\n",
            "---\n",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: old\n  annotations:\n    helm.sh/hook: crd-install\nspec:\n  containers:\n  - name: c\n    image: example/dropped-by-helm:1\n",
        )
        .as_bytes()
        .to_vec(),
    );
    let report = scan::scan_chart(
        "charts/hooks",
        &ChartInput::Files(files),
        &ScanOptions::default(),
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(
        report.references(),
        ["docker.io/example/main:1", "docker.io/example/test:1"]
    );
    let test_pod = &report.images[1].sources[0];
    assert_eq!(
        (test_pod.line, test_pod.document),
        (Some(19), Some(1)),
        "{test_pod:?}"
    );
}

#[test]
fn declared_images_add_to_the_render_and_bitnami_lists_do_not() {
    let mut files = BTreeMap::new();
    files.insert(
        "Chart.yaml".to_owned(),
        concat!(
            "apiVersion: v2\nname: declared\nversion: 1.0.0\nannotations:\n",
            "  helm.sh/images: |\n    - name: helper\n      image: example/helper:2\n",
            "  images: |\n    - name: optional\n      image: example/optional-feature:9\n",
        )
        .as_bytes()
        .to_vec(),
    );
    files.insert(
        "templates/pod.yaml".to_owned(),
        b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: example/main:1\n".to_vec(),
    );
    let report = scan::scan_chart(
        "charts/declared",
        &ChartInput::Files(files),
        &ScanOptions::default(),
    );
    assert!(report.partial_charts.is_empty());
    assert_eq!(
        report.references(),
        ["docker.io/example/helper:2", "docker.io/example/main:1"]
    );
    let declared = &report.images[0].sources[0];
    assert_eq!(declared.kind, scan::SourceKind::ChartAnnotation);
    assert_eq!(
        (declared.file.as_str(), declared.line),
        ("charts/declared/Chart.yaml", Some(7))
    );
}
