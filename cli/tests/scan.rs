//! `sealer-build images CONTEXT`: the images a build of a context would cache, as a user
//! runs it on the example, on the corpus, with values, and on broken charts.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn sealer_build() -> Command {
    let mut command = Command::cargo_bin("sealer-build").unwrap();
    command.env_remove("SEALER_ROOT");
    command
}

fn example() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/app"))
}

fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn lists_the_images_of_the_example() {
    sealer_build()
        .arg("images")
        .arg(example())
        .assert()
        .success()
        .stdout("docker.io/library/busybox:1.36\ndocker.io/library/nginx:1.27.3\n");
}

#[test]
fn values_given_on_the_command_line_change_what_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("prod.yaml");
    std::fs::write(&values, "image:\n  registry: registry.local:5000\n").unwrap();
    sealer_build()
        .arg("images")
        .arg(example())
        .arg("--values")
        .arg(format!("web={}", values.display()))
        .args(["--set", "web.metrics.enabled=true", "--set-string", "web.image.tag=1.27.4"])
        .assert()
        .success()
        .stdout(
            "docker.io/library/busybox:1.36\ndocker.io/nginx/nginx-prometheus-exporter:1.3.0\nregistry.local:5000/library/nginx:1.27.4\n",
        );
}

#[test]
fn why_names_the_file_line_and_object() {
    sealer_build()
        .args(["images", "--why"])
        .arg(example())
        .assert()
        .success()
        .stdout(predicate::str::contains("    manifests/imageList:2 (image-list)"))
        .stdout(predicate::str::contains(
            "    web/templates/deployment.yaml:17 (chart, chart web, Deployment release-name-web, spec.template.spec.containers[0].image)",
        ));
}

#[test]
fn json_output_carries_references_and_provenance() {
    let output = sealer_build()
        .args(["images", "-o", "json"])
        .arg(example())
        .output()
        .unwrap();
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[1]["reference"], "docker.io/library/nginx:1.27.3");
    assert_eq!(images[1]["sources"][0]["kind"], "chart");
    assert_eq!(images[1]["sources"][0]["line"], 17);
}

#[test]
fn a_chart_that_cannot_render_is_scanned_partially_and_strict_fails() {
    let dir = context(&[
        (
            "charts/broken/Chart.yaml",
            "apiVersion: v2\nname: broken\nversion: 1.0.0\nappVersion: \"4.2\"\n",
        ),
        (
            "charts/broken/values.yaml",
            "image:\n  repository: example/broken\n  tag: \"\"\n",
        ),
        (
            "charts/broken/templates/pod.yaml",
            "image: {{ no_such_function .Values }}\n",
        ),
    ]);
    let relaxed = sealer_build()
        .arg("images")
        .arg(dir.path())
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&relaxed.get_output().stderr).into_owned();
    assert!(
        stderr.contains("function \"no_such_function\" not defined"),
        "{stderr}"
    );
    assert!(
        stderr.contains("chart broken could not be rendered completely"),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&relaxed.get_output().stdout),
        "docker.io/example/broken:4.2\n"
    );
    sealer_build()
        .args(["images", "--strict"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "scanned only partially (--strict)",
        ));
}

#[test]
fn bad_arguments_are_explained() {
    sealer_build()
        .args(["images", "--set", "nodot=1"])
        .arg(example())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("expected CHART.KEY=VALUE"));
    sealer_build()
        .args(["images", "/no/such/context"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a directory"));
}

#[test]
fn the_corpus_gives_every_expected_image_and_nothing_else() {
    let corpus = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
    if !corpus.exists() {
        println!(
            "skipped: the corpus ({}) is not here; CI has it",
            corpus.display()
        );
        return;
    }
    let mut expected = std::collections::BTreeSet::new();
    for dir in ["charts", "manifests"] {
        for entry in std::fs::read_dir(corpus.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let list = if path.is_dir() {
                path.join("EXPECTED-IMAGES.txt")
            } else if path.to_string_lossy().ends_with(".EXPECTED-IMAGES.txt") {
                path
            } else {
                continue;
            };
            expected.extend(
                std::fs::read_to_string(list)
                    .unwrap()
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
    let output = sealer_build().arg("images").arg(corpus).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let found: std::collections::BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn values_for_a_chart_the_context_lacks_are_reported() {
    sealer_build()
        .arg("images")
        .arg(example())
        .args(["--set", "wbe.image.tag=2"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "values were given for chart wbe, but the context has no chart of that name or path",
        ));
}
