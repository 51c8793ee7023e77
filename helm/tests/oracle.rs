//! Differential tests against the real Helm: our render of the hand-written charts in
//! `tests/oracle/` must equal the output recorded from `helm template` (document by document,
//! parsed as YAML), and, for every corpus chart, the output of a live `helm template` run
//! (fields that differ between two Helm runs, such as random passwords, are masked).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use gotemplate::Value;
use helm::output::{split_documents, template_output};
use helm::{Chart, RenderOptions};

/// Differences from Helm 3.17 we keep on purpose: (case/variant, field path or "" for the
/// whole variant, why).
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "capabilities/",
        ".data.chart",
        "toJson .Chart: Go writes struct fields in declaration order; our values are maps with sorted keys",
    ),
    (
        "capabilities/",
        ".data.kubeVersion",
        "quote .Capabilities.KubeVersion: Go's String() has a pointer receiver, so quote prints the struct ({v1.32.0 1 32}); we print v1.32.0 everywhere",
    ),
    (
        "errors/range-int",
        "",
        "range over an integer: Helm 3.17 is built with Go 1.23, which refuses it; we follow Go 1.24+ (Helm 3.18+), which iterates 0..n",
    ),
];

fn known_difference(label: &str, path: &str) -> bool {
    KNOWN_DIFFERENCES.iter().any(|(variant, known_path, _)| {
        label.starts_with(variant) && (known_path.is_empty() || *known_path == path)
    })
}

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle")
}

/// Splits a `cases.txt` flag string into words as a POSIX shell does (quotes, backslashes).
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for inner in chars.by_ref() {
                    if inner == '\'' {
                        break;
                    }
                    current.push(inner);
                }
            }
            '"' => {
                in_word = true;
                while let Some(inner) = chars.next() {
                    match inner {
                        '"' => break,
                        '\\' => current.extend(chars.next()),
                        other => current.push(other),
                    }
                }
            }
            '\\' => {
                in_word = true;
                current.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            other => {
                in_word = true;
                current.push(other);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

fn options_from_flags(case_dir: &Path, flags: &[String]) -> RenderOptions {
    let mut options = RenderOptions::new();
    let mut words = flags.iter();
    while let Some(flag) = words.next() {
        let value = words
            .next()
            .unwrap_or_else(|| panic!("flag {flag} has no value"))
            .clone();
        match flag.as_str() {
            "-f" | "--values" => {
                let text = std::fs::read_to_string(case_dir.join(&value)).unwrap();
                options.values_files.push((value, text));
            }
            "--set" => options.set.push(value),
            "--set-string" => options.set_string.push(value),
            "-n" | "--namespace" => options.namespace = value,
            other => panic!("cases.txt uses an unsupported flag {other}"),
        }
    }
    options
}

/// Each document of a `helm template` stream, parsed, with its `# Source:` path.
fn parsed_documents(stream: &str) -> Vec<(String, Value)> {
    split_documents(stream)
        .into_iter()
        .map(|text| {
            let source = text
                .lines()
                .next()
                .and_then(|line| line.strip_prefix("# Source: "))
                .unwrap_or_default()
                .to_owned();
            let value = kyaml::from_yaml(&text)
                .unwrap_or_else(|error| Value::from(format!("unparsable: {error}")));
            (source, value)
        })
        .collect()
}

/// Compares two parsed streams; `masked(document index, path)` leaves out differences.
fn compare_streams(
    ours: &str,
    theirs: &str,
    masked: &dyn Fn(usize, &str) -> bool,
) -> Result<(), String> {
    let ours = parsed_documents(ours);
    let theirs = parsed_documents(theirs);
    let mut problems = Vec::new();
    if ours.len() != theirs.len() {
        problems.push(format!(
            "{} documents, helm has {}",
            ours.len(),
            theirs.len()
        ));
    }
    for (index, ((our_source, our_value), (their_source, their_value))) in
        ours.iter().zip(&theirs).enumerate()
    {
        if our_source != their_source {
            problems.push(format!(
                "document {index}: source {our_source}, helm has {their_source}"
            ));
            continue;
        }
        let mut differences = Vec::new();
        diff_values(our_value, their_value, String::new(), &mut differences);
        differences.retain(|path| !masked(index, path));
        if !differences.is_empty() {
            problems.push(format!(
                "document {index} ({their_source}) differs at {}:\n  ours: {}\n  helm: {}",
                differences.join(", "),
                our_value.to_go_string(),
                their_value.to_go_string()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Collects the paths where two values differ.
fn diff_values(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Map(a), Value::Map(b)) => {
            let a = a.borrow();
            let b = b.borrow();
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let (Some(va), Some(vb)) = (a.get(key), b.get(key)) else {
                    out.push(format!("{path}.{key}"));
                    continue;
                };
                diff_values(va, vb, format!("{path}.{key}"), out);
            }
        }
        (Value::List(a), Value::List(b)) if a.len() == b.len() => {
            for (index, (va, vb)) in a.iter().zip(b.iter()).enumerate() {
                diff_values(va, vb, format!("{path}[{index}]"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(if path.is_empty() { ".".into() } else { path }),
    }
}

#[test]
fn hand_written_charts_render_as_helm_recorded() {
    let mut failures = Vec::new();
    let mut variants = 0;
    let mut byte_exact = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(oracle_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("cases.txt").exists())
        .collect();
    dirs.sort();
    for dir in dirs {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let chart =
            Chart::load_dir(&dir.join("chart")).unwrap_or_else(|error| panic!("{case}: {error}"));
        for line in std::fs::read_to_string(dir.join("cases.txt"))
            .unwrap()
            .lines()
        {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = shell_words(line);
            let variant = &words[0];
            variants += 1;
            let options = options_from_flags(&dir, &words[1..]);
            let ours = helm::render(&chart, &options).and_then(|rendered| {
                if let Some(error) = rendered.errors.first() {
                    return Err(helm::HelmError::new(error.message.clone()));
                }
                template_output(&rendered)
            });
            let expected_yaml = dir.join(format!("expected/{variant}.yaml"));
            let expected_err = dir.join(format!("expected/{variant}.err"));
            let label = format!("{case}/{variant}");
            if known_difference(&label, "") {
                continue;
            }
            if expected_err.exists() {
                let text = std::fs::read_to_string(&expected_err).unwrap();
                let first = text
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("Error: ");
                let essence = first.rsplit(": ").next().unwrap_or(first);
                match ours {
                    Err(error) if error.message.contains(essence) => {}
                    Err(error) => failures.push(format!(
                        "{label}: error {:?} does not contain helm's {essence:?}",
                        error.message
                    )),
                    Ok(_) => {
                        failures.push(format!("{label}: rendered, helm failed with {first:?}"));
                    }
                }
                continue;
            }
            let expected = std::fs::read_to_string(&expected_yaml)
                .unwrap_or_else(|_| panic!("{label}: no expected output"));
            match ours {
                Err(error) => failures.push(format!("{label}: failed: {error}")),
                Ok(output) => {
                    if output == expected {
                        byte_exact += 1;
                    }
                    let masked = |_: usize, path: &str| known_difference(&label, path);
                    if let Err(problem) = compare_streams(&output, &expected, &masked) {
                        failures.push(format!("{label}:\n{problem}"));
                    }
                }
            }
        }
    }
    println!("{variants} variants, {byte_exact} byte-exact");
    assert!(
        failures.is_empty(),
        "{} of {variants} variants differ from helm:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The real Helm binary: `SEALER_TEST_HELM`, or the one `scripts/install-helm` installs (run
/// when missing).
fn helm_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SEALER_TEST_HELM") {
        return PathBuf::from(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-helm");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .expect("cannot run scripts/install-helm");
    assert!(
        output.status.success(),
        "scripts/install-helm failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("install-helm prints the path")
            .trim(),
    )
}

fn helm_template(helm: &Path, chart: &Path) -> String {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(helm)
        .args(["template", "release-name"])
        .arg(chart)
        .env("HOME", home.path())
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env("KUBECONFIG", home.path().join("no-kubeconfig"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "helm template {} failed: {}",
        chart.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn corpus_charts_render_as_helm_does() {
    let Some(corpus) = testkit::corpus::corpus_dir("charts") else {
        return;
    };
    let helm = helm_binary();
    let charts = testkit::corpus::sorted_entries(&corpus);
    let mut failures = Vec::new();
    for chart_dir in &charts {
        let name = chart_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let first = helm_template(&helm, chart_dir);
        let second = helm_template(&helm, chart_dir);
        let mut random = Vec::new();
        for (index, ((_, a), (_, b))) in parsed_documents(&first)
            .iter()
            .zip(parsed_documents(&second).iter())
            .enumerate()
        {
            let mut differences = Vec::new();
            diff_values(a, b, String::new(), &mut differences);
            random.extend(differences.into_iter().map(|path| (index, path)));
        }
        let chart = Chart::load_dir(chart_dir).unwrap_or_else(|error| panic!("{name}: {error}"));
        let ours = helm::render(&chart, &RenderOptions::new()).and_then(|rendered| {
            if let Some(error) = rendered.errors.first() {
                return Err(helm::HelmError::new(format!(
                    "{}: {}",
                    error.template, error.message
                )));
            }
            template_output(&rendered)
        });
        match ours {
            Err(error) => failures.push(format!("{name}: {error}")),
            Ok(output) => {
                let masked = |index: usize, path: &str| random.contains(&(index, path.to_owned()));
                if let Err(problem) = compare_streams(&output, &first, &masked) {
                    failures.push(format!("{name}:\n{problem}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus charts differ from helm:\n{}",
        failures.len(),
        charts.len(),
        failures.join("\n\n")
    );
}

/// Cases of the template tables that Helm 3.17 renders differently from us, on purpose.
const KNOWN_CASE_DIFFERENCES: &[(&str, &str)] = &[(
    "toStrings",
    "our values have no []string type: typeOf says []interface {}",
)];

/// One chart holding every output case of the three template tables (Go's builtins, Sprig's
/// and Helm's functions), each rendered by `tpl` from a file with its data: Helm's output
/// and ours must agree case by case. Cases Helm refuses to render (features newer than its
/// Go, Sprig's `slice` on strings) are left out one by one and counted.
#[test]
fn every_template_case_renders_as_helm_renders_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cases = Vec::new();
    for dir in [
        "gotemplate/tests/cases",
        "sprig/tests/cases",
        "helm/tests/cases",
    ] {
        for case in testkit::template_cases::read_cases(&root.join(dir)) {
            let object_data = case
                .data
                .as_deref()
                .is_none_or(|data| data.trim_start().starts_with('{'));
            if matches!(case.expected, testkit::template_cases::Expected::Output(_)) && object_data
            {
                cases.push(case);
            }
        }
    }
    let helm = helm_binary();
    let mut included: Vec<usize> = (0..cases.len()).collect();
    let mut refused = Vec::new();
    let (chart_dir, helm_output) = loop {
        let dir = tempfile::tempdir().unwrap();
        write_case_chart(dir.path(), &cases, &included);
        let home = tempfile::tempdir().unwrap();
        let output = Command::new(&helm)
            .args(["template", "release-name"])
            .arg(dir.path())
            .env("HOME", home.path())
            .env("KUBECONFIG", home.path().join("none"))
            .output()
            .unwrap();
        if output.status.success() {
            break (dir, String::from_utf8(output.stdout).unwrap());
        }
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let failing = stderr
            .split("case-")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("helm failed without naming a case: {stderr}"));
        assert!(
            refused.len() < 40,
            "helm refuses too many cases; last: {stderr}"
        );
        included.retain(|&index| index != failing);
        refused.push(format!("{} / {}", cases[failing].file, cases[failing].name));
    };
    let chart = Chart::load_dir(chart_dir.path()).unwrap();
    let rendered = helm::render(&chart, &RenderOptions::new()).unwrap();
    assert!(rendered.errors.is_empty(), "{:?}", rendered.errors.first());
    let ours = template_output(&rendered).unwrap();
    let outputs = |stream: &str| -> BTreeMap<String, String> {
        parsed_documents(stream)
            .into_iter()
            .filter_map(|(source, value)| {
                let Value::Map(map) = value else { return None };
                let data = map.borrow().get("data").cloned()?;
                let Value::Map(data) = data else { return None };
                let out = data.borrow().get("out")?.as_str()?.to_owned();
                Some((source, out))
            })
            .collect()
    };
    let (ours, theirs) = (outputs(&ours), outputs(&helm_output));
    assert_eq!(
        theirs.len(),
        included.len(),
        "helm printed one document per case"
    );
    let mut failures = Vec::new();
    for &index in &included {
        let case = &cases[index];
        let source = format!("generated/templates/case-{index}.yaml");
        let known = KNOWN_CASE_DIFFERENCES
            .iter()
            .any(|(name, _)| *name == case.name);
        let same = ours.get(&source) == theirs.get(&source);
        if same == known {
            failures.push(format!(
                "{} / {}: ours {:?}, helm {:?}{}",
                case.file,
                case.name,
                ours.get(&source),
                theirs.get(&source),
                if known {
                    " (listed as a known difference, but equal now)"
                } else {
                    ""
                }
            ));
        }
    }
    println!(
        "{} cases compared with helm, {} refused by helm 3.17: {}",
        included.len(),
        refused.len(),
        refused.join("; ")
    );
    assert!(
        failures.is_empty(),
        "{} cases differ from helm:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A chart whose template `case-N` renders case N's text (kept in `files/`) with its data.
fn write_case_chart(
    dir: &Path,
    cases: &[testkit::template_cases::TemplateCase],
    included: &[usize],
) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        "apiVersion: v2\nname: generated\nversion: 0.1.0\n",
    )
    .unwrap();
    let mut values = String::from("{");
    for &index in included {
        let case = &cases[index];
        if let Some(data) = &case.data {
            if values.len() > 1 {
                values.push(',');
            }
            let _ = write!(values, "\"case-{index}\": {data}");
        }
        std::fs::write(dir.join(format!("files/case-{index}.tpl")), &case.template).unwrap();
        std::fs::write(
            dir.join(format!("templates/case-{index}.yaml")),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: case-{index}\ndata:\n  out: {{{{ tpl (.Files.Get \"files/case-{index}.tpl\") (index .Values \"case-{index}\") | toJson }}}}\n"
            ),
        )
        .unwrap();
    }
    values.push('}');
    std::fs::write(dir.join("values.yaml"), values).unwrap();
}
