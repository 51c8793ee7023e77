//! App type detection, as the original tool does it: a Helm chart, Kubernetes manifests, shell
//! scripts, or no type (then APPCMDS must say how to launch the app).

use serde::Serialize;

use crate::context::{ContextView, EntryKind, basename, join};

/// The detected type of an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppType {
    /// A chart: installed with `helm install`.
    Helm,
    /// YAML manifests: applied with `kubectl apply -f`.
    Kube,
    /// Shell scripts: run with `bash`.
    Shell,
    /// Anything else: APPCMDS is required.
    None,
}

impl AppType {
    /// The name stored in the image extension (`""` for no type).
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Helm => "helm",
            AppType::Kube => "kube",
            AppType::Shell => "shell",
            AppType::None => "",
        }
    }
}

/// An app source as the type detection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSource {
    /// A path in the context (a file or a directory).
    Local(String),
    /// A URL; its file is named after the last path segment.
    Url(String),
}

impl AppSource {
    fn file_name(&self) -> String {
        match self {
            AppSource::Local(path) => basename(path).to_owned(),
            AppSource::Url(url) => url_file_name(url),
        }
    }
}

/// The file name a URL download gets: its last path segment, without query or fragment;
/// `__unnamed__` when the URL has no path (BuildKit's name).
pub fn url_file_name(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let path = without_query
        .split_once("://")
        .map_or(without_query, |(_, rest)| rest);
    let path = path.split_once('/').map_or("", |(_, p)| p);
    match basename(path) {
        "" => "__unnamed__".to_owned(),
        name => name.to_owned(),
    }
}

const CHART_FILES: [&str; 3] = ["Chart.yaml", "values.yaml", "templates"];

fn is_chart_dir(view: &dyn ContextView, dir: &str) -> bool {
    view.kind(&join(dir, "Chart.yaml")) == Some(EntryKind::File)
        && view.kind(&join(dir, "values.yaml")) == Some(EntryKind::File)
        && view.kind(&join(dir, "templates")) == Some(EntryKind::Dir)
}

/// Detects an app's type from its sources and lists the files its default launch command
/// uses, relative to the app directory.
///
/// - helm: a source directory holds `Chart.yaml`, `values.yaml` and `templates/`, or the
///   sources themselves are those three; files = `[name]`.
/// - kube: every file is `.yaml`/`.yml`; files = all of them.
/// - shell: every file is `.sh`; files = those of the first source.
pub fn detect_app_type(
    view: &dyn ContextView,
    name: &str,
    sources: &[AppSource],
) -> (AppType, Vec<String>) {
    let local_dirs = sources.iter().filter_map(|s| match s {
        AppSource::Local(path) if view.kind(path) == Some(EntryKind::Dir) => Some(path),
        _ => None,
    });
    let has_chart_dir = local_dirs.clone().any(|dir| is_chart_dir(view, dir));
    let names: Vec<String> = sources.iter().map(AppSource::file_name).collect();
    let covers_chart = CHART_FILES.iter().all(|f| names.iter().any(|n| n == f));
    if has_chart_dir || covers_chart {
        return (AppType::Helm, vec![name.to_owned()]);
    }
    let files_of = |source: &AppSource| -> Vec<String> {
        match source {
            AppSource::Local(path) => view.walk_files(path),
            AppSource::Url(_) => vec![source.file_name()],
        }
    };
    let all: Vec<String> = sources.iter().flat_map(files_of).collect();
    if all.is_empty() {
        return (AppType::None, Vec::new());
    }
    let ext = |f: &String| f.rsplit_once('.').map_or("", |(_, e)| e).to_owned();
    if all.iter().all(|f| ext(f) == "sh") {
        let first = sources.first().map(files_of).unwrap_or_default();
        return (AppType::Shell, first);
    }
    if all
        .iter()
        .all(|f| matches!(ext(f).as_str(), "yaml" | "yml"))
    {
        return (AppType::Kube, all);
    }
    (AppType::None, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::MemoryContext;

    fn ctx() -> MemoryContext {
        MemoryContext::new()
            .with_file("chart/Chart.yaml")
            .with_file("chart/values.yaml")
            .with("chart/templates", EntryKind::Dir)
            .with_file("yamls/a.yaml")
            .with_file("yamls/sub/b.yml")
            .with_file("scripts/a.sh")
            .with_file("scripts/b.sh")
            .with_file("install.sh")
            .with_file("mixed/x.yaml")
            .with_file("mixed/y.sh")
    }

    fn local(p: &str) -> AppSource {
        AppSource::Local(p.into())
    }

    #[test]
    fn detection() {
        let c = ctx();
        assert_eq!(
            detect_app_type(&c, "n", &[local("chart")]),
            (AppType::Helm, vec!["n".into()])
        );
        assert_eq!(
            detect_app_type(
                &c,
                "n",
                &[
                    local("chart/Chart.yaml"),
                    local("chart/values.yaml"),
                    local("chart/templates")
                ]
            )
            .0,
            AppType::Helm
        );
        assert_eq!(
            detect_app_type(&c, "n", &[local("yamls")]),
            (AppType::Kube, vec!["a.yaml".into(), "sub/b.yml".into()])
        );
        assert_eq!(
            detect_app_type(&c, "n", &[local("scripts"), local("install.sh")]),
            (AppType::Shell, vec!["a.sh".into(), "b.sh".into()])
        );
        assert_eq!(detect_app_type(&c, "n", &[local("mixed")]).0, AppType::None);
        assert_eq!(
            detect_app_type(
                &c,
                "n",
                &[AppSource::Url("https://x.io/a/b.yaml?x=1".into())]
            ),
            (AppType::Kube, vec!["b.yaml".into()])
        );
    }

    #[test]
    fn url_names() {
        assert_eq!(url_file_name("https://h/p/chart.tgz"), "chart.tgz");
        assert_eq!(url_file_name("https://h"), "__unnamed__");
        assert_eq!(url_file_name("https://h/"), "__unnamed__");
        assert_eq!(url_file_name("https://h/dir/"), "dir");
        assert_eq!(url_file_name("https://h/p/chart.tgz?x=1#f"), "chart.tgz");
    }
}
