//! `sealer-build parse` and `sealer-build lint` as a user runs them.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn sealer_build() -> Command {
    Command::cargo_bin("sealer-build").unwrap()
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

fn example() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/app"))
}

#[test]
fn parse_prints_the_plan_of_the_example() {
    let output = sealer_build()
        .args(["parse", "--platform", "linux/arm64"])
        .arg(example())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan["platform"]["architecture"], "arm64");
    assert_eq!(plan["extension"]["launch"]["app_names"][0], "hello");
    assert_eq!(plan["extension"]["applications"][0]["type"], "kube");
    assert_eq!(
        plan["extension"]["applications"][0]["env"]["NAMESPACE"],
        "demo"
    );
    assert_eq!(plan["config"]["env"][0]["value"], "demo");
}

#[test]
fn build_args_reach_the_plan() {
    let output = sealer_build()
        .args(["parse", "--build-arg", "NAMESPACE=prod=eu"])
        .arg(example())
        .output()
        .unwrap();
    assert!(output.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan["extension"]["env"]["NAMESPACE"], "prod=eu");
}

#[test]
fn errors_name_file_line_and_column_and_exit_1() {
    let dir = context(&[(
        "Kubefile",
        "FROM scratch\nCOPY missing.yaml manifests/\nWORKDIR /x\n",
    )]);
    sealer_build()
        .args(["parse", "--format", "short"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "Kubefile:3:1: error: WORKDIR is not supported in a Kubefile",
        ));
}

#[test]
fn human_errors_show_the_line_and_advice() {
    let dir = context(&[("Kubefile", "FROM scratch\nCOPPY a b\n")]);
    sealer_build()
        .arg("parse")
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("Kubefile:2:1: error: unknown instruction `COPPY`")
                .and(predicate::str::contains("COPPY a b"))
                .and(predicate::str::contains("did you mean `COPY`?"))
                .and(predicate::str::contains("1 error, 0 warnings")),
        );
}

#[test]
fn plan_errors_are_reported_with_the_context() {
    let dir = context(&[("Kubefile", "FROM scratch\nAPP web local://web\n")]);
    sealer_build()
        .args(["lint", "--format", "short"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "Kubefile:2:9: error: APP source `local://web` does not exist in the build context",
        ));
}

#[test]
fn lint_passes_with_warnings_only() {
    let dir = context(&[("Kubefile", "FROM scratch\nMAINTAINER me\n")]);
    sealer_build()
        .args(["lint", "--format", "short"])
        .arg(dir.path())
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "Kubefile:2:1: warning: MAINTAINER is deprecated",
        ));
}

#[test]
fn lint_says_when_all_is_well() {
    sealer_build()
        .arg("lint")
        .arg(example())
        .assert()
        .success()
        .stderr(predicate::str::contains("no problems found"));
}

#[test]
fn json_diagnostics() {
    let dir = context(&[("Kubefile", "FROM scratch\nLAUNCH\n")]);
    let output = sealer_build()
        .args(["lint", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let items: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(items[0]["line"], 2);
    assert_eq!(items[0]["column"], 1);
    assert_eq!(items[0]["severity"], "error");
    assert_eq!(items[0]["message"], "LAUNCH needs at least one app name");
}

#[test]
fn kubefile_from_another_path_and_from_stdin() {
    let dir = context(&[("build/My.kubefile", "FROM scratch\nLABEL a=b\n")]);
    sealer_build()
        .args(["parse", "-f"])
        .arg(dir.path().join("build/My.kubefile"))
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("\"a\": \"b\""));
    sealer_build()
        .args(["parse", "-f", "-"])
        .arg(dir.path())
        .write_stdin("FROM scratch\nLABEL c=d\n")
        .assert()
        .success()
        .stdout(predicate::str::contains("\"c\": \"d\""));
}

#[test]
fn a_missing_kubefile_is_a_clear_error() {
    let dir = context(&[]);
    sealer_build()
        .arg("parse")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("cannot read the Kubefile")
                .and(predicate::str::contains("give another one with -f")),
        );
}

#[test]
fn bad_flags_are_clear_errors() {
    sealer_build()
        .args(["parse", "--build-arg", "=x"])
        .arg(example())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid --build-arg `=x`"));
    sealer_build()
        .args(["parse", "--platform", "linux"])
        .arg(example())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid --platform"));
}
