//! What the image scan is told besides the context (`--values`, `--set`, `--set-string`,
//! `--image-list`, `--ignored-image-list`) when building through BuildKit.
//!
//! BuildKit hands frontend options over as environment variables, which Linux caps at 128 KiB
//! each, so the files travel as a session local directory instead: the client copies them into
//! a temporary directory ([`ScanInputs::write`]: `values/0000.yaml`, `lists/0000.txt`,
//! `ignored/0000.txt`), serves it as [`INPUTS_LOCAL`], and sends one option [`SCAN_OPTION`]
//! whose JSON ([`ScanInputs::to_option`]) names the files. The frontend parses the option
//! ([`ScanInputs::parse`]), reads the files from the local and adds them to its scan
//! ([`ScanInputs::add_to`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The frontend option carrying the JSON of [`ScanInputs`].
pub const SCAN_OPTION: &str = "sealer.scan";

/// The name of the session local the client serves the files as.
pub const INPUTS_LOCAL: &str = "sealer-inputs";

/// A values file for one chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuesFile {
    /// The chart: its Chart.yaml name or its path in the context.
    pub chart: String,
    /// The file's path in the local.
    pub path: String,
}

/// The scan inputs of a build, as the [`SCAN_OPTION`] JSON holds them. Paths are relative
/// to the local [`ScanInputs::local`]; lists keep the order the user gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanInputs {
    /// The session local holding the files.
    pub local: String,
    /// Values files per chart (`--values CHART=FILE`).
    #[serde(default)]
    pub values: Vec<ValuesFile>,
    /// `--set CHART.KEY=VALUE` expressions.
    #[serde(default)]
    pub set: Vec<String>,
    /// `--set-string CHART.KEY=VALUE` expressions.
    #[serde(default)]
    pub set_string: Vec<String>,
    /// Extra image lists (`--image-list`).
    #[serde(default)]
    pub image_lists: Vec<String>,
    /// Lists of images not to cache (`--ignored-image-list`).
    #[serde(default)]
    pub ignored_image_lists: Vec<String>,
}

/// The scan flags as the user gave them on the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanFlags {
    /// `--values` entries, each `CHART=FILE`.
    pub values: Vec<String>,
    /// `--set` entries, each `CHART.KEY=VALUE`.
    pub set: Vec<String>,
    /// `--set-string` entries, each `CHART.KEY=VALUE`.
    pub set_string: Vec<String>,
    /// `--image-list` files.
    pub image_lists: Vec<PathBuf>,
    /// `--ignored-image-list` files.
    pub ignored_image_lists: Vec<PathBuf>,
}

/// Why the client could not prepare the scan inputs.
#[derive(Debug, thiserror::Error)]
pub enum ScanInputsError {
    /// A flag's value does not have the expected shape.
    #[error("{flag} {entry}: expected {expected}")]
    Malformed {
        /// The flag (`--values`, `--set`, `--set-string`).
        flag: &'static str,
        /// The value as given.
        entry: String,
        /// The expected shape, with an example.
        expected: &'static str,
    },
    /// A file named by a flag cannot be read.
    #[error("cannot read the {flag} file {}: {source}", path.display())]
    Read {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A file named by a flag is not text.
    #[error("the {flag} file {} is not UTF-8 text", path.display())]
    NotUtf8 {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The copy for BuildKit cannot be written.
    #[error("cannot write {} (the scan inputs sent to BuildKit): {source}", path.display())]
    Write {
        /// The file or directory being written.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

/// The shape `--set` and `--set-string` entries must have.
const CHART_EXPRESSION: &str = "CHART.KEY=VALUE (e.g. nginx.image.tag=1.25)";

impl ScanInputs {
    /// Copies the files `flags` name into `dir` (which must exist) and returns the inputs
    /// naming the copies, with [`INPUTS_LOCAL`] as the local; `None` when no flag is given.
    /// Every entry is checked here, so a mistake is reported before anything is sent.
    pub fn write(dir: &Path, flags: &ScanFlags) -> Result<Option<ScanInputs>, ScanInputsError> {
        if *flags == ScanFlags::default() {
            return Ok(None);
        }
        let mut inputs = ScanInputs {
            local: INPUTS_LOCAL.to_owned(),
            ..ScanInputs::default()
        };
        for (flag, entries) in [("--set", &flags.set), ("--set-string", &flags.set_string)] {
            if let Some(entry) = entries
                .iter()
                .find(|entry| scan::options::split_chart_expression(entry).is_none())
            {
                return Err(ScanInputsError::Malformed {
                    flag,
                    entry: entry.clone(),
                    expected: CHART_EXPRESSION,
                });
            }
        }
        inputs.set.clone_from(&flags.set);
        inputs.set_string.clone_from(&flags.set_string);
        for (index, entry) in flags.values.iter().enumerate() {
            let Some((chart, file)) = entry
                .split_once('=')
                .filter(|(chart, file)| !chart.is_empty() && !file.is_empty())
            else {
                return Err(ScanInputsError::Malformed {
                    flag: "--values",
                    entry: entry.clone(),
                    expected: "CHART=FILE (e.g. nginx=prod-values.yaml)",
                });
            };
            let path = copy_into(dir, "values", index, "yaml", "--values", Path::new(file))?;
            inputs.values.push(ValuesFile {
                chart: chart.to_owned(),
                path,
            });
        }
        for (index, file) in flags.image_lists.iter().enumerate() {
            let path = copy_into(dir, "lists", index, "txt", "--image-list", file)?;
            inputs.image_lists.push(path);
        }
        for (index, file) in flags.ignored_image_lists.iter().enumerate() {
            let path = copy_into(dir, "ignored", index, "txt", "--ignored-image-list", file)?;
            inputs.ignored_image_lists.push(path);
        }
        Ok(Some(inputs))
    }

    /// The value of the [`SCAN_OPTION`] option.
    pub fn to_option(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings always serializes")
    }

    /// The inputs in a [`SCAN_OPTION`] value, checked: the local is named, every path is
    /// relative and stays inside the local, and every expression names its chart. The error
    /// says what is wrong.
    pub fn parse(json: &str) -> Result<ScanInputs, String> {
        let inputs: ScanInputs =
            serde_json::from_str(json).map_err(|e| format!("not valid scan inputs JSON: {e}"))?;
        if inputs.local.is_empty() {
            return Err("`local` must name the session directory holding the files".to_owned());
        }
        for path in inputs.paths() {
            check_path(path)?;
        }
        if let Some(values) = inputs.values.iter().find(|v| v.chart.is_empty()) {
            return Err(format!("the values file `{}` names no chart", values.path));
        }
        for (field, entries) in [("set", &inputs.set), ("set_string", &inputs.set_string)] {
            if let Some(entry) = entries
                .iter()
                .find(|entry| scan::options::split_chart_expression(entry).is_none())
            {
                return Err(format!(
                    "`{field}` entry `{entry}`: expected {CHART_EXPRESSION}"
                ));
            }
        }
        Ok(inputs)
    }

    /// Every file path, in the order the lists hold them (values, image lists, ignore lists).
    pub fn paths(&self) -> Vec<&str> {
        self.values
            .iter()
            .map(|values| values.path.as_str())
            .chain(self.image_lists.iter().map(String::as_str))
            .chain(self.ignored_image_lists.iter().map(String::as_str))
            .collect()
    }

    /// Adds the inputs to `options`, with `files` holding the text of every path of
    /// [`ScanInputs::paths`]; values texts and lists are named by their path in the local.
    /// The error names a path `files` lacks.
    pub fn add_to(
        &self,
        options: &mut scan::ScanOptions,
        files: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let text = |path: &str| {
            files.get(path).cloned().ok_or_else(|| {
                format!(
                    "the scan input `{path}` was not read from the `{}` directory",
                    self.local
                )
            })
        };
        for values in &self.values {
            options
                .chart_values
                .entry(values.chart.clone())
                .or_default()
                .values_texts
                .push((values.path.clone(), text(&values.path)?));
        }
        for (entries, as_strings) in [(&self.set, false), (&self.set_string, true)] {
            for entry in entries {
                let (chart, expression) = scan::options::split_chart_expression(entry)
                    .ok_or_else(|| format!("`{entry}`: expected {CHART_EXPRESSION}"))?;
                let values = options.chart_values.entry(chart.to_owned()).or_default();
                if as_strings {
                    values.set_string.push(expression.to_owned());
                } else {
                    values.set.push(expression.to_owned());
                }
            }
        }
        for (paths, lists) in [
            (&self.image_lists, &mut options.image_lists),
            (&self.ignored_image_lists, &mut options.ignored_image_lists),
        ] {
            for path in paths {
                lists.push(scan::ListSource::Text {
                    name: path.clone(),
                    text: text(path)?,
                });
            }
        }
        Ok(())
    }
}

/// Copies `source` to `dir/<sub>/<index>.<extension>` and returns that path relative to `dir`.
fn copy_into(
    dir: &Path,
    sub: &str,
    index: usize,
    extension: &str,
    flag: &'static str,
    source: &Path,
) -> Result<String, ScanInputsError> {
    let bytes = std::fs::read(source).map_err(|e| ScanInputsError::Read {
        flag,
        path: source.to_owned(),
        source: e,
    })?;
    if std::str::from_utf8(&bytes).is_err() {
        return Err(ScanInputsError::NotUtf8 {
            flag,
            path: source.to_owned(),
        });
    }
    let sub_dir = dir.join(sub);
    std::fs::create_dir_all(&sub_dir).map_err(|e| ScanInputsError::Write {
        path: sub_dir.clone(),
        source: e,
    })?;
    let name = format!("{index:04}.{extension}");
    let target = sub_dir.join(&name);
    std::fs::write(&target, bytes).map_err(|e| ScanInputsError::Write {
        path: target,
        source: e,
    })?;
    Ok(format!("{sub}/{name}"))
}

/// Ok for a path that names a file inside the local: relative, `/`-separated, without
/// empty, `.` or `..` parts.
fn check_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') {
        return Err(format!(
            "the path `{path}` is absolute; paths are relative to the local"
        ));
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "the path `{path}` must stay inside the local, without empty, `.` or `..` parts"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_copies_the_files_and_names_them_in_the_option() {
        let given = tempfile::tempdir().unwrap();
        let values = given.path().join("prod.yaml");
        let list = given.path().join("images.txt");
        let ignored = given.path().join("skip.txt");
        std::fs::write(&values, "image:\n  tag: \"2\"\n").unwrap();
        std::fs::write(&list, "busybox:1.36\n").unwrap();
        std::fs::write(&ignored, "nginx:1\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let flags = ScanFlags {
            values: vec![
                format!("nginx={}", values.display()),
                format!("charts/web={}", values.display()),
            ],
            set: vec!["nginx.image.tag=1".to_owned()],
            set_string: vec!["nginx.image.pullPolicy=Always".to_owned()],
            image_lists: vec![list],
            ignored_image_lists: vec![ignored],
        };
        let inputs = ScanInputs::write(dir.path(), &flags).unwrap().unwrap();
        assert_eq!(
            inputs.paths(),
            [
                "values/0000.yaml",
                "values/0001.yaml",
                "lists/0000.txt",
                "ignored/0000.txt"
            ]
        );
        assert_eq!(inputs.values[1].chart, "charts/web");
        for path in inputs.paths() {
            assert!(dir.path().join(path).is_file(), "{path}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("lists/0000.txt")).unwrap(),
            "busybox:1.36\n"
        );
        let option = inputs.to_option();
        assert_eq!(
            option,
            r#"{"local":"sealer-inputs","values":[{"chart":"nginx","path":"values/0000.yaml"},{"chart":"charts/web","path":"values/0001.yaml"}],"set":["nginx.image.tag=1"],"set_string":["nginx.image.pullPolicy=Always"],"image_lists":["lists/0000.txt"],"ignored_image_lists":["ignored/0000.txt"]}"#
        );
        assert_eq!(ScanInputs::parse(&option).unwrap(), inputs);
    }

    #[test]
    fn write_gives_nothing_without_flags_and_checks_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            ScanInputs::write(dir.path(), &ScanFlags::default())
                .unwrap()
                .is_none()
        );
        let cases = [
            (
                ScanFlags {
                    values: vec!["values.yaml".to_owned()],
                    ..ScanFlags::default()
                },
                "--values values.yaml: expected CHART=FILE",
            ),
            (
                ScanFlags {
                    set: vec!["tag=1".to_owned()],
                    ..ScanFlags::default()
                },
                "--set tag=1: expected CHART.KEY=VALUE",
            ),
            (
                ScanFlags {
                    set_string: vec!["nginx.tag".to_owned()],
                    ..ScanFlags::default()
                },
                "--set-string nginx.tag: expected CHART.KEY=VALUE",
            ),
            (
                ScanFlags {
                    image_lists: vec![dir.path().join("missing.txt")],
                    ..ScanFlags::default()
                },
                "cannot read the --image-list file",
            ),
        ];
        for (flags, expected) in cases {
            let error = ScanInputs::write(dir.path(), &flags).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
        let binary = dir.path().join("binary.txt");
        std::fs::write(&binary, [0xff, 0xfe]).unwrap();
        let error = ScanInputs::write(
            dir.path(),
            &ScanFlags {
                ignored_image_lists: vec![binary],
                ..ScanFlags::default()
            },
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("--ignored-image-list file ")
                && error.to_string().ends_with("binary.txt is not UTF-8 text"),
            "{error}"
        );
    }

    #[test]
    fn parse_refuses_paths_outside_the_local_and_unknown_fields() {
        let cases = [
            (r#"{"local":""}"#, "`local` must name"),
            (
                r#"{"local":"l","image_lists":["/etc/passwd"]}"#,
                "is absolute",
            ),
            (
                r#"{"local":"l","values":[{"chart":"a","path":"../x.yaml"}]}"#,
                "must stay inside the local",
            ),
            (
                r#"{"local":"l","ignored_image_lists":["a//b"]}"#,
                "must stay inside the local",
            ),
            (
                r#"{"local":"l","values":[{"chart":"","path":"x.yaml"}]}"#,
                "names no chart",
            ),
            (r#"{"local":"l","set":["x=1"]}"#, "`set` entry `x=1`"),
            (r#"{"local":"l","extra":1}"#, "unknown field `extra`"),
            (r#"{"local":"l""#, "not valid scan inputs JSON"),
        ];
        for (json, expected) in cases {
            let error = ScanInputs::parse(json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
        let minimal = ScanInputs::parse(r#"{"local":"l","set":["a.b=c"]}"#).unwrap();
        assert!(minimal.paths().is_empty());
    }

    #[test]
    fn add_to_fills_the_scan_options_in_order() {
        let inputs = ScanInputs::parse(
            r#"{"local":"sealer-inputs","values":[{"chart":"nginx","path":"values/0000.yaml"},{"chart":"nginx","path":"values/0001.yaml"}],
                "set":["nginx.image.tag=1","web.a.b=2"],"set_string":["nginx.x=01"],
                "image_lists":["lists/0000.txt"],"ignored_image_lists":["ignored/0000.txt"]}"#,
        )
        .unwrap();
        let files: BTreeMap<String, String> = [
            ("values/0000.yaml", "a: 1\n"),
            ("values/0001.yaml", "a: 2\n"),
            ("lists/0000.txt", "busybox:1\n"),
            ("ignored/0000.txt", "nginx:1\n"),
        ]
        .into_iter()
        .map(|(path, text)| (path.to_owned(), text.to_owned()))
        .collect();
        let mut options = scan::ScanOptions::default();
        options.ignored_image_lists.push(scan::ListSource::Text {
            name: ".sealerignore".to_owned(),
            text: String::new(),
        });
        inputs.add_to(&mut options, &files).unwrap();
        let nginx = &options.chart_values["nginx"];
        assert_eq!(
            nginx.values_texts,
            [
                ("values/0000.yaml".to_owned(), "a: 1\n".to_owned()),
                ("values/0001.yaml".to_owned(), "a: 2\n".to_owned())
            ]
        );
        assert_eq!(nginx.set, ["image.tag=1"]);
        assert_eq!(nginx.set_string, ["x=01"]);
        assert_eq!(options.chart_values["web"].set, ["a.b=2"]);
        assert_eq!(
            options.image_lists,
            [scan::ListSource::Text {
                name: "lists/0000.txt".to_owned(),
                text: "busybox:1\n".to_owned()
            }]
        );
        assert_eq!(options.ignored_image_lists.len(), 2);
        assert_eq!(options.ignored_image_lists[1].name(), "ignored/0000.txt");

        let mut missing = files.clone();
        missing.remove("lists/0000.txt");
        let error = inputs
            .add_to(&mut scan::ScanOptions::default(), &missing)
            .unwrap_err();
        assert_eq!(
            error,
            "the scan input `lists/0000.txt` was not read from the `sealer-inputs` directory"
        );
    }
}
