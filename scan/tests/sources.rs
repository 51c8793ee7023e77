//! Each source on small contexts built in memory: manifests, templates, image lists,
//! archives, charts' fallback, ignore lists, ordering, provenance, and hostile YAML.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use kubefile::context::MemoryContext;
use scan::sources::charts::ChartInput;
use scan::{
    ChartValues, ScanOptions, SourceKind, WarningKind, scan, scan_archive, scan_chart,
    scan_image_list_text, scan_manifest_text,
};

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, *bytes).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: nginx:1.27\n";

#[test]
fn provenance_names_file_line_document_object_and_path() {
    let text = format!("kind: ConfigMap\nmetadata: {{name: c}}\n---\n{DEPLOYMENT}");
    let report = scan_manifest_text("manifests/web.yaml", &text);
    assert_eq!(report.references(), ["docker.io/library/nginx:1.27"]);
    let source = &report.images[0].sources[0];
    assert_eq!(source.kind, SourceKind::Manifest);
    assert_eq!(source.file, "manifests/web.yaml");
    assert_eq!(source.line, Some(14));
    assert_eq!(source.document, Some(1));
    let object = source.object.as_ref().unwrap();
    assert_eq!(
        (
            object.kind.as_str(),
            object.name.as_str(),
            object.namespace.as_deref()
        ),
        ("Deployment", "web", Some("prod"))
    );
    assert_eq!(
        source.path.as_deref(),
        Some("spec.template.spec.containers[0].image")
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["images"][0]["reference"],
        "docker.io/library/nginx:1.27"
    );
    assert_eq!(json["images"][0]["sources"][0]["kind"], "manifest");
}

#[test]
fn rejections_are_warnings_never_images() {
    let text = "kind: Task\nspec:\n  steps:\n  - image: '{{ .Values.x }}'\n  - image: ${X}\n  - image: $(params.B)\n  - image: parameter.image\n  - image: ''\n  - image: {}\n  - image: 12\n  - image: bad/Name\n  - image: alpine\n";
    let report = scan_manifest_text("t.yaml", text);
    assert_eq!(report.references(), ["docker.io/library/alpine:latest"]);
    let kinds: Vec<_> = report.warnings.iter().map(|w| (w.kind, w.line)).collect();
    assert_eq!(
        kinds,
        [
            (WarningKind::Unresolved, Some(4)),
            (WarningKind::Unresolved, Some(5)),
            (WarningKind::Unresolved, Some(6)),
            (WarningKind::Unresolved, Some(7)),
            (WarningKind::InvalidReference, Some(8)),
            (WarningKind::InvalidReference, Some(9)),
            (WarningKind::InvalidReference, Some(10)),
            (WarningKind::InvalidReference, Some(11)),
        ]
    );
}

#[test]
fn ordering_is_byte_order_and_duplicates_merge() {
    let text = "kind: Pod\nspec:\n  containers:\n  - image: quay.io/z:1\n  - image: busybox\n  - image: docker.io/library/busybox:latest\n  - image: Quay.io/a:1\n";
    let report = scan_manifest_text("p.yaml", text);
    assert_eq!(
        report.references(),
        [
            "Quay.io/a:1",
            "docker.io/library/busybox:latest",
            "quay.io/z:1"
        ]
    );
    assert_eq!(report.images[1].sources.len(), 2);
    assert_eq!(report, scan_manifest_text("p.yaml", text));
}

#[test]
fn image_lists_skip_comments_and_warn_with_lines() {
    let text = "# images\n\n  nginx:1.2  \nquay.io/a/b:1 # pinned\nnot valid\n${X}\nnginx:1.2\n";
    let report = scan_image_list_text("imageList", text);
    assert_eq!(
        report.references(),
        ["docker.io/library/nginx:1.2", "quay.io/a/b:1"]
    );
    let lines: Vec<_> = report.images[0].sources.iter().map(|s| s.line).collect();
    assert_eq!(lines, [Some(3), Some(7)]);
    let warned: Vec<_> = report.warnings.iter().map(|w| (w.kind, w.line)).collect();
    assert_eq!(
        warned,
        [
            (WarningKind::InvalidReference, Some(5)),
            (WarningKind::Unresolved, Some(6))
        ]
    );
}

#[test]
fn archives_list_docker_and_oci_names() {
    let docker = tar_of(&[
        ("blobs/x", b"layer"),
        (
            "manifest.json",
            br#"[{"Config":"c","RepoTags":["nginx:1","quay.io/a/b:2"],"Layers":[]},{"RepoTags":null}]"#,
        ),
    ]);
    let report = scan_archive("images/d.tar", &docker[..]);
    assert_eq!(
        report.references(),
        ["docker.io/library/nginx:1", "quay.io/a/b:2"]
    );
    assert_eq!(report.images[0].sources[0].kind, SourceKind::Archive);
    assert_eq!(
        report.images[0].sources[0].path.as_deref(),
        Some("manifest.json")
    );

    let oci = gzip(&tar_of(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        (
            "./index.json",
            br#"{"schemaVersion":2,"manifests":[
                {"annotations":{"io.containerd.image.name":"ghcr.io/x/y:3","org.opencontainers.image.ref.name":"3"}},
                {"annotations":{"org.opencontainers.image.ref.name":"registry.k8s.io/pause:3.10"}},
                {"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}"#,
        ),
    ]));
    let report = scan_archive("images/o.tar.gz", &oci[..]);
    assert_eq!(
        report.references(),
        ["ghcr.io/x/y:3", "registry.k8s.io/pause:3.10"]
    );

    let report = scan_archive("images/bad.tar", &b"not a tar at all"[..]);
    assert!(report.images.is_empty());
    assert_eq!(report.warnings[0].kind, WarningKind::Archive);
    assert_eq!(report.warnings[0].file, "images/bad.tar");
}

#[test]
fn whole_context_with_ignore_lists() {
    let dir = tempfile::tempdir().unwrap();
    let ignore_file = dir.path().join("ignore.txt");
    std::fs::write(&ignore_file, "# extra\nquay.io/skip/*\nnot valid!\n").unwrap();
    let list_file = dir.path().join("list.txt");
    std::fs::write(&list_file, "quay.io/skip/me:1\nredis:7\n").unwrap();
    let docker = tar_of(&[("manifest.json", br#"[{"RepoTags":["loaded:1"]}]"#)]);
    let view = MemoryContext::new()
        .with_content("manifests/a/web.yaml", DEPLOYMENT)
        .with_content(
            "manifests/b.json",
            r#"{"kind":"Pod","spec":{"containers":[{"image":"alpine:3"}]}}"#,
        )
        .with_content("manifests/notes.txt", "image: ignored-not-yaml:1")
        .with_content("manifests/imageList", "busybox:1\n")
        .with_content(
            "manifests/x.yaml.tmpl",
            "kind: Pod\nspec: {containers: [{image: '{{ .Registry }}/x:1'}]}\n",
        )
        .with_content("manifests/y.yaml.tmpl", "image: {{ .Missing }}\n")
        .with_content(
            "application/apps/raw/app.yaml",
            "kind: Pod\nspec: {containers: [{image: 'mysql:8'}]}\n",
        )
        .with_content("images/d.tar", docker)
        .with_content(".sealerignore", "busybox:1\nalpine:3 # not needed\n");
    let options = ScanOptions {
        image_lists: vec![
            list_file.clone().into(),
            dir.path().join("missing.txt").into(),
        ],
        ignored_image_lists: vec![ignore_file.into()],
        env: BTreeMap::from([("Registry".to_owned(), "sea.hub:5000".to_owned())]),
        ..ScanOptions::default()
    };
    let report = scan(&view, &options);
    assert_eq!(
        report.references(),
        [
            "docker.io/library/loaded:1",
            "docker.io/library/mysql:8",
            "docker.io/library/nginx:1.27",
            "docker.io/library/redis:7",
            "sea.hub:5000/x:1",
        ]
    );
    let ignored: Vec<_> = report
        .ignored
        .iter()
        .map(|i| (i.reference.to_string(), i.origin.clone()))
        .collect();
    assert_eq!(
        ignored,
        [
            (
                "docker.io/library/alpine:3".to_owned(),
                ".sealerignore:2".to_owned()
            ),
            (
                "docker.io/library/busybox:1".to_owned(),
                ".sealerignore:1".to_owned()
            ),
            (
                "quay.io/skip/me:1".to_owned(),
                format!("{}:2", dir.path().join("ignore.txt").display())
            ),
        ]
    );
    let warning = |kind| report.warnings.iter().find(|w| w.kind == kind).unwrap();
    assert!(warning(WarningKind::Template).message.contains(".Missing"));
    assert_eq!(warning(WarningKind::Template).file, "manifests/y.yaml.tmpl");
    assert_eq!(warning(WarningKind::IgnoreList).line, Some(3));
    assert!(
        warning(WarningKind::Unreadable)
            .file
            .ends_with("missing.txt")
    );
}

#[test]
fn templates_render_with_sprig_or_are_skipped_with_file_and_line() {
    let view = MemoryContext::new()
        .with_content(
            "manifests/a.yaml.tmpl",
            "kind: Pod\nspec:\n  containers:\n{{- range $i, $name := list \"x\" \"y\" }}\n  - image: {{ $.Registry | default \"docker.io\" }}/{{ $name }}:{{ add $i 1 }}\n{{- end }}\n",
        )
        .with_content(
            "manifests/b.tmpl",
            "kind: Pod\nspec:\n  containers:\n  - image: {{ .Registry }}/{{ .DeployOnly }}:1\n",
        )
        .with_content("manifests/c.tmpl", "kind: Pod\n\n{{ deployTimeHelper }}\n");
    let options = ScanOptions {
        env: BTreeMap::from([("Registry".to_owned(), "sea.hub:5000".to_owned())]),
        ..ScanOptions::default()
    };
    let report = scan(&view, &options);
    assert_eq!(
        report.references(),
        ["sea.hub:5000/x:1", "sea.hub:5000/y:2"]
    );
    assert_eq!(report.images[1].sources[0].file, "manifests/a.yaml.tmpl");
    assert_eq!(
        report.images[1].sources[0].path.as_deref(),
        Some("spec.containers[1].image")
    );
    let warned: Vec<_> = report
        .warnings
        .iter()
        .map(|w| (w.kind, w.file.as_str(), w.line))
        .collect();
    assert_eq!(
        warned,
        [
            (WarningKind::Template, "manifests/b.tmpl", Some(4)),
            (WarningKind::Template, "manifests/c.tmpl", Some(3)),
        ]
    );
    assert!(
        report.warnings[0].message.contains(".DeployOnly"),
        "{}",
        report.warnings[0]
    );
    assert!(
        report.warnings[1].message.contains("deployTimeHelper"),
        "{}",
        report.warnings[1]
    );
}

#[test]
fn documents_after_a_bad_one_count_and_keep_their_index() {
    let text = "---\n# only a comment\n---\nkind: Pod\nspec: {containers: [{image: a:1}]}\n---\nkind: Pod\nspec: [bad\n---\nkind: Pod\nspec: {containers: [{image: *b}]}\n---\nx: &b b:1\nkind: Pod\nspec: {containers: [{image: *b, name: c}]}\n";
    let report = scan_manifest_text("m.yaml", text);
    assert_eq!(
        report.references(),
        ["docker.io/library/a:1", "docker.io/library/b:1"]
    );
    let a = &report.images[0].sources[0];
    assert_eq!((a.document, a.line), (Some(1), Some(5)));
    let b = &report.images[1].sources[0];
    assert_eq!((b.document, b.line), (Some(4), Some(15)));
    let warned: Vec<_> = report.warnings.iter().map(|w| w.kind).collect();
    assert_eq!(warned, [WarningKind::InvalidYaml, WarningKind::InvalidYaml]);
}

#[test]
fn typed_scalars_keep_their_text() {
    let text = "apiVersion: x.io/v1\nkind: Thing\nspec:\n  app: {repository: r/x, tag: 1.10}\n  image: 0x1F\n  yes: {image: y:1}\n";
    let report = scan_manifest_text("t.yaml", text);
    assert_eq!(
        report.references(),
        ["docker.io/library/y:1", "docker.io/r/x:1.10"]
    );
    assert_eq!(
        report.images[0].sources[0].path.as_deref(),
        Some("spec.yes.image")
    );
    assert_eq!(
        report.warnings[0].message,
        "spec.image: the image field holds `0x1F`, not a string"
    );
}

#[test]
fn malformed_yaml_names_file_and_line_and_others_still_count() {
    let view = MemoryContext::new()
        .with_content(
            "manifests/a.yaml",
            "kind: Pod\nspec: {containers: [{image: a:1}]}\n---\nkind: Pod\nspec: [unclosed\n",
        )
        .with_content(
            "manifests/b.yaml",
            "kind: Pod\nspec: {containers: [{image: b:1}]}\n",
        );
    let report = scan(&view, &ScanOptions::default());
    assert_eq!(
        report.references(),
        ["docker.io/library/a:1", "docker.io/library/b:1"]
    );
    let warning = &report.warnings[0];
    assert_eq!(warning.kind, WarningKind::InvalidYaml);
    assert_eq!(warning.file, "manifests/a.yaml");
    assert!(warning.line.unwrap() >= 5, "{warning}");
    assert!(warning.to_string().starts_with("manifests/a.yaml:"));
}

#[test]
fn deep_nesting_and_alias_bombs_are_clear_errors() {
    let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let report = scan_manifest_text("deep.yaml", &deep);
    assert_eq!(report.warnings.len(), 1);
    let message = &report.warnings[0].message;
    assert!(
        message.contains("nesting") || message.contains("nested"),
        "{message}"
    );
    let block = (0..300).fold(String::new(), |text, depth| {
        format!("{text}{}k:\n", "  ".repeat(depth))
    });
    let report = scan_manifest_text("block.yaml", &block);
    let message = &report.warnings[0].message;
    assert!(message.contains("nesting deeper than"), "{message}");

    // The "billion laughs": each level holds nine aliases of the one before.
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    let mut bomb = format!("a: &a [{}]\n", ["\"x\""; 9].join(", "));
    for pair in names.windows(2) {
        let (prev, name) = (pair[0], pair[1]);
        let aliases = vec![format!("*{prev}"); 9].join(", ");
        writeln!(bomb, "{name}: &{name} [{aliases}]").unwrap();
    }
    let start = Instant::now();
    let report = scan_manifest_text("bomb.yaml", &bomb);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(report.warnings[0].kind, WarningKind::InvalidYaml);
    assert!(
        report.warnings[0].message.contains("alias"),
        "{}",
        report.warnings[0]
    );
}

#[test]
fn fifty_mib_manifest_in_bounded_time() {
    let mut text = String::with_capacity(51 << 20);
    let mut i = 0;
    while text.len() < 50 << 20 {
        write!(
            text,
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d{i}\n  labels: {{app: x, tier: backend}}\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: c\n        image: registry.example.com/team/app-{}:v{i}\n        args: [\"--flag=1\", \"--other=2\"]\n        env: [{{name: A, value: b}}]\n",
            i % 7
        )
        .unwrap();
        i += 1;
    }
    let start = Instant::now();
    let report = scan_manifest_text("big.yaml", &text);
    let elapsed = start.elapsed();
    println!(
        "50 MiB manifest: {i} documents scanned in {:.2} s",
        elapsed.as_secs_f64()
    );
    assert_eq!(report.images.len(), i);
    assert!(report.warnings.is_empty());
    assert!(elapsed < Duration::from_secs(120), "took {elapsed:?}");
}

const CHART_YAML: &str = "apiVersion: v2\nname: web\nversion: 1.0.0\nappVersion: \"2.4\"\nannotations:\n  images: |\n    - name: web\n      image: docker.io/bitnami/web:2.4.1\n    - name: os-shell\n      image: docker.io/bitnami/os-shell:12\n  artifacthub.io/images: |\n    - name: extra\n      image: quay.io/extra/tool:1\n";
const VALUES_YAML: &str = "global:\n  imageRegistry: my.registry\nimage:\n  repository: bitnami/web\n  tag: \"\"\nsidecar:\n  image: \"busybox:1.36\"\nmetrics:\n  image: {registry: quay.io, repository: m/exporter, tag: \"0.1\", digest: \"\"}\n  enabled: false\n";

#[test]
fn chart_fallback_reads_annotations_and_values_without_helm() {
    let files = BTreeMap::from([
        ("Chart.yaml".to_owned(), CHART_YAML.as_bytes().to_vec()),
        ("values.yaml".to_owned(), VALUES_YAML.as_bytes().to_vec()),
        (
            "templates/deploy.yaml".to_owned(),
            b"{{ include \"x\" . }}".to_vec(),
        ),
    ]);
    // Until the renderer lands, loading fails and the fallback is all there is; once it
    // renders, this chart's broken template still sends it to the fallback.
    let report = scan_chart(
        "charts/web",
        &ChartInput::Files(files),
        &ScanOptions::default(),
    );
    assert_eq!(report.partial_charts, ["web"]);
    let fallback: Vec<_> = report
        .images
        .iter()
        .filter(|i| {
            i.sources
                .iter()
                .all(|s| s.kind == SourceKind::ChartFallback)
        })
        .map(|i| i.reference.to_string())
        .collect();
    assert_eq!(
        fallback,
        [
            "docker.io/bitnami/os-shell:12",
            "docker.io/bitnami/web:2.4.1",
            "docker.io/library/busybox:1.36",
            "my.registry/bitnami/web:2.4",
            "quay.io/extra/tool:1",
            "quay.io/m/exporter:0.1",
        ]
    );
    let web = report
        .images
        .iter()
        .find(|i| i.reference.to_string() == "docker.io/bitnami/web:2.4.1")
        .unwrap();
    assert_eq!(web.sources[0].file, "charts/web/Chart.yaml");
    assert_eq!(web.sources[0].line, Some(8));
    assert_eq!(web.sources[0].chart.as_deref(), Some("web"));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.kind == WarningKind::Chart && w.message.contains("partially"))
    );
}

#[test]
fn packaged_charts_and_missing_values_files_are_reported() {
    let archive = gzip(&tar_of(&[
        ("web/Chart.yaml", CHART_YAML.as_bytes()),
        ("web/values.yaml", b"image: {repository: r/x, tag: \"9\"}\n"),
    ]));
    let view = MemoryContext::new()
        .with_content("charts/web-1.0.0.tgz", archive)
        .with_content("charts/README.md", "not a chart");
    let options = ScanOptions {
        chart_values: BTreeMap::from([(
            "web".to_owned(),
            ChartValues {
                values_files: vec!["/nonexistent/values.yaml".into()],
                ..ChartValues::default()
            },
        )]),
        ..ScanOptions::default()
    };
    let report = scan(&view, &options);
    assert!(report.references().contains(&"docker.io/r/x:9".to_owned()));
    assert_eq!(report.partial_charts, ["web"]);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.file == "charts/README.md" && w.message.contains("not a chart"))
    );
}
