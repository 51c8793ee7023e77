//! Image discovery speed. Three scenarios, each against a baseline run in the same process:
//!
//! - the corpus (`../shared/corpus`: 13 real charts, 11 manifests) scanned by `scan`, against
//!   the real `helm template` rendering the same charts (when a Helm binary is found via
//!   `SEALER_TEST_HELM` or `scripts/install-helm`'s cache; skipped otherwise);
//! - a generated tree of 10,000 manifest documents (1,000 in quick mode), against a naive
//!   line scan for `image:` (what the original tool does), which is fast and wrong;
//! - 200 generated charts (20 in quick mode) rendered and scanned, against the same naive
//!   line scan over their templates.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bench::{best_of, millis, quick_mode, ratio};
use kubefile::context::DirContext;
use scan::ScanOptions;

/// Writes `files` manifest files holding `documents` documents in all.
fn generate_manifests(root: &Path, files: usize, documents: usize) {
    let dir = root.join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    let per_file = documents / files;
    for file in 0..files {
        let mut text = String::new();
        for doc in 0..per_file {
            let n = file * per_file + doc;
            let _ = match n % 4 {
                0 => write!(
                    text,
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{n}\n  labels:\n    app: app-{n}\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels:\n        app: app-{n}\n    spec:\n      initContainers:\n      - name: init\n        image: registry.example.com/tools/init:{}\n      containers:\n      - name: main\n        image: registry.example.com/apps/app-{}:v1.{n}\n        args: [\"--image=not-an-image-field\"]\n        env:\n        - name: IMAGE\n          value: example.com/env:1\n",
                    n % 7,
                    n % 50
                ),
                1 => write!(
                    text,
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{n}\ndata:\n  config.yaml: |\n    image: embedded/in-text:{n}\n    key: value\n"
                ),
                2 => write!(
                    text,
                    "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w-{n}\nspec:\n  sidecarImage: quay.io/widgets/sidecar:{}\n  engine:\n    repository: quay.io/widgets/engine\n    tag: \"2.{}\"\n",
                    n % 9,
                    n % 13
                ),
                _ => write!(
                    text,
                    "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: job-{n}\nspec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - name: job\n            image: busybox:1.{}\n          restartPolicy: OnFailure\n",
                    n % 30
                ),
            };
            text.push_str("---\n");
        }
        std::fs::write(dir.join(format!("m-{file:04}.yaml")), text).unwrap();
    }
}

/// Writes `count` small charts with helpers, includes and a subchart-free values tree.
fn generate_charts(root: &Path, count: usize) {
    for n in 0..count {
        let dir = root.join(format!("charts/chart-{n:03}"));
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(
            dir.join("Chart.yaml"),
            format!("apiVersion: v2\nname: chart-{n}\nversion: 1.0.{n}\nappVersion: \"3.{n}\"\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("values.yaml"),
            format!(
                "image:\n  registry: docker.io\n  repository: example/app-{n}\n  tag: \"\"\nsidecar:\n  enabled: {}\n  image: quay.io/example/sidecar:1.{n}\nreplicas: 2\nresources:\n  limits:\n    cpu: 100m\n    memory: 128Mi\nlabels:\n  team: a\n  tier: web\n",
                n % 2 == 0
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("templates/_helpers.tpl"),
            "{{- define \"chart.fullname\" -}}{{ printf \"%s-%s\" .Release.Name .Chart.Name | trunc 63 | trimSuffix \"-\" }}{{- end -}}\n{{- define \"chart.image\" -}}{{ printf \"%s/%s:%s\" .Values.image.registry .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}{{- end -}}\n{{- define \"chart.labels\" -}}\napp: {{ include \"chart.fullname\" . }}\n{{- range $k, $v := .Values.labels }}\n{{ $k }}: {{ $v | quote }}\n{{- end }}\n{{- end -}}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("templates/deployment.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ include \"chart.fullname\" . }}\n  labels:\n    {{- include \"chart.labels\" . | nindent 4 }}\nspec:\n  replicas: {{ .Values.replicas }}\n  template:\n    spec:\n      containers:\n      - name: app\n        image: {{ include \"chart.image\" . | quote }}\n        resources:\n          {{- toYaml .Values.resources | nindent 10 }}\n      {{- if .Values.sidecar.enabled }}\n      - name: sidecar\n        image: {{ .Values.sidecar.image }}\n      {{- end }}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("templates/service.yaml"),
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ include \"chart.fullname\" . }}\nspec:\n  ports:\n  - port: 80\n",
        )
        .unwrap();
    }
}

/// The original tool's approach: every line with `image:` in every file, value taken as is.
fn naive_line_scan(root: &Path) -> usize {
    let mut found = std::collections::BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                for line in text.lines() {
                    if let Some((_, value)) = line.split_once("image:") {
                        found.insert(value.trim().trim_matches('"').to_owned());
                    }
                }
            }
        }
    }
    found.len()
}

fn scan_tree(root: &Path) -> scan::ScanReport {
    scan::scan(&DirContext::new(root), &ScanOptions::default())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn helm_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SEALER_TEST_HELM") {
        return Some(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME")?;
    let cached = Path::new(&home).join(".cache/sealer-rs/helm/helm");
    cached.exists().then_some(cached)
}

fn corpus_scenario(runs: usize) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if !corpus.exists() {
        println!("corpus: skipped ({} is not here)", corpus.display());
        return;
    }
    let context = tempfile::tempdir().unwrap();
    copy_dir(&corpus.join("charts"), &context.path().join("charts"));
    copy_dir(&corpus.join("manifests"), &context.path().join("manifests"));
    let report = scan_tree(context.path());
    let ours = best_of(runs, || scan_tree(context.path()).images.len());
    match helm_binary() {
        Some(helm) => {
            let charts: Vec<PathBuf> = std::fs::read_dir(corpus.join("charts"))
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .collect();
            let start = Instant::now();
            for chart in &charts {
                let status = Command::new(&helm)
                    .args(["template", "release-name"])
                    .arg(chart)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success(), "helm template {} failed", chart.display());
            }
            let helm_time = start.elapsed();
            println!(
                "corpus: 13 charts + 11 manifests, {} images: scan {}; helm template of the charts alone {}; ratio {:.2}",
                report.images.len(),
                millis(ours),
                millis(helm_time),
                ratio(ours, helm_time)
            );
        }
        None => println!(
            "corpus: {} images: scan {} (no helm binary for the baseline: run scripts/install-helm)",
            report.images.len(),
            millis(ours)
        ),
    }
}

fn scenario(label: &str, root: &Path, runs: usize) -> Duration {
    let report = scan_tree(root);
    let ours = best_of(runs, || scan_tree(root).images.len());
    let naive_found = naive_line_scan(root);
    let naive = best_of(runs, || naive_line_scan(root));
    println!(
        "{label}: {} images, {} warnings: scan {}; naive line scan {} ({naive_found} strings, many wrong); ratio {:.2}",
        report.images.len(),
        report.warnings.len(),
        millis(ours),
        millis(naive),
        ratio(ours, naive)
    );
    ours
}

fn main() {
    let quick = quick_mode();
    let runs = if quick { 1 } else { 3 };
    let (documents, charts) = if quick { (1_000, 20) } else { (10_000, 200) };
    println!(
        "scan benchmark ({} mode, best of {runs})",
        if quick { "quick" } else { "full" }
    );
    corpus_scenario(runs);

    let manifests = tempfile::tempdir().unwrap();
    generate_manifests(manifests.path(), 100, documents);
    let manifest_time = scenario(
        &format!("{documents} manifest documents"),
        manifests.path(),
        runs,
    );

    let chart_tree = tempfile::tempdir().unwrap();
    generate_charts(chart_tree.path(), charts);
    let chart_time = scenario(&format!("{charts} chart renders"), chart_tree.path(), runs);

    let both = tempfile::tempdir().unwrap();
    generate_manifests(both.path(), 100, documents);
    generate_charts(both.path(), charts);
    let total = scenario(
        &format!("{documents} documents + {charts} charts together"),
        both.path(),
        runs,
    );
    println!(
        "large tree: {} (goal: under 3000 ms on 2 cores); parts {} + {}",
        millis(total),
        millis(manifest_time),
        millis(chart_time)
    );
}
