//! The Application document (`kind: Application`): what to launch once the cluster is up,
//! and per-app env, launch commands and file changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kyaml::{Node, NodeKind};

use super::cluster::{Cluster, Level, read_env};
use super::config::{Strategy, check_app_name, check_relative, merge_documents, write_into_rootfs};
use super::document::{Location, Reader, child, item};
use super::error::ClusterfileError;

/// A `kind: Application` document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    /// `spec.cmds`: when not empty, the only commands launched.
    pub cmds: Vec<String>,
    /// `spec.launchApps`: the apps to launch instead of the image's LAUNCH list.
    pub launch_apps: Option<Vec<String>>,
    /// `spec.configs`: per-app settings.
    pub configs: Vec<AppConfig>,
    /// Where the document starts.
    pub location: Location,
    launch_apps_location: Option<Location>,
}

/// `spec.configs[]`: settings for one app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppConfig {
    /// The app's name.
    pub name: String,
    /// Env over the image's APPENV and ENV, used to render the app's `*.tmpl` files.
    pub env: Vec<(String, String)>,
    /// `launch.cmds`: replaces the app's launch command.
    pub launch_cmds: Option<Vec<String>>,
    /// Files of the app directory to overwrite or merge.
    pub files: Vec<AppFile>,
}

/// `spec.configs[].files[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppFile {
    /// Path relative to the app directory.
    pub path: PathBuf,
    /// Overwrite (default) or merge.
    pub strategy: Strategy,
    /// Content, or the mapping to merge.
    pub data: String,
}

impl Application {
    /// The settings for `app`.
    pub fn config(&self, app: &str) -> Option<&AppConfig> {
        self.configs.iter().find(|config| config.name == app)
    }

    /// Writes the `files` of the apps in `launched` into `<rootfs>/application/apps/<app>/`
    /// (configs of apps not launched are ignored, as sealer does). Returns the files written.
    pub fn apply_files(
        &self,
        rootfs: &Path,
        launched: &[String],
    ) -> Result<Vec<PathBuf>, ClusterfileError> {
        let mut written = Vec::new();
        for config in self
            .configs
            .iter()
            .filter(|config| launched.contains(&config.name))
        {
            for file in &config.files {
                let target = rootfs
                    .join("application/apps")
                    .join(&config.name)
                    .join(&file.path);
                write_into_rootfs(rootfs, &target, |existing| {
                    match (existing, file.strategy) {
                        (Some(existing), Strategy::Merge) => merge_documents(existing, &file.data),
                        _ => Ok(file.data.clone()),
                    }
                })
                .map_err(|message| ClusterfileError::ConfigWrite {
                    location: self.location.to_string(),
                    name: config.name.clone(),
                    path: target.clone(),
                    message,
                })?;
                written.push(target);
            }
        }
        Ok(written)
    }
}

/// The commands to run on master0 once the cluster is up, by sealer's precedence:
/// `spec.cmd` of the Cluster, else the Application's `cmds`, else the image's CMDS/CMD
/// (`image_cmds`), else the launch command of each app to launch. The apps to launch are
/// `spec.appNames`, else the Application's `launchApps`, else the image's LAUNCH list
/// (`image_launch_apps`); empty names are skipped; an app's command is its Application
/// `launch.cmds`, else `image_apps[app]` (the image's default command for it).
pub(crate) fn launch_commands(
    cluster: &Cluster,
    application: Option<&Application>,
    image_cmds: &[String],
    image_launch_apps: &[String],
    image_apps: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<String>, ClusterfileError> {
    if !cluster.cmds.is_empty() {
        return Ok(cluster.cmds.clone());
    }
    if let Some(application) = application.filter(|application| !application.cmds.is_empty()) {
        return Ok(application.cmds.clone());
    }
    let (apps, location) = if let Some(names) = &cluster.app_names {
        (names.clone(), cluster.app_names_location.clone())
    } else if let Some(names) = application.and_then(|application| application.launch_apps.clone())
    {
        (
            names,
            application.and_then(|application| application.launch_apps_location.clone()),
        )
    } else {
        (image_launch_apps.to_vec(), None)
    };
    for app in apps.iter().filter(|app| !app.is_empty()) {
        if !image_apps.contains_key(app) {
            return Err(ClusterfileError::UnknownApp {
                location: location
                    .as_ref()
                    .map_or_else(|| "the image's LAUNCH".to_owned(), ToString::to_string),
                app: app.clone(),
                known: image_apps.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
    }
    if !image_cmds.is_empty() {
        return Ok(image_cmds.to_vec());
    }
    let mut commands = Vec::new();
    for app in apps.iter().filter(|app| !app.is_empty()) {
        let own = application
            .and_then(|application| application.config(app))
            .and_then(|config| config.launch_cmds.clone());
        match own {
            Some(cmds) => commands.extend(cmds),
            None => commands.extend(image_apps.get(app).cloned().unwrap_or_default()),
        }
    }
    Ok(commands
        .into_iter()
        .filter(|command| !command.is_empty())
        .collect())
}

/// Reads an Application document; `None` when it has problems (they are in the reader).
pub(crate) fn read_application(reader: &mut Reader<'_>, root: &Node) -> Option<Application> {
    let before = reader.problems.len();
    let spec = root.get("spec");
    if let Some(spec) = spec {
        reader.mapping(Some(spec), "spec");
        reader.check_keys(spec, "spec", &["cmds", "launchApps", "configs"]);
    }
    let cmds = reader
        .string_list(spec.and_then(|spec| spec.get("cmds")), "spec.cmds")
        .into_iter()
        .map(|(text, _)| text)
        .collect();
    let launch_node = spec
        .and_then(|spec| spec.get("launchApps"))
        .filter(|node| !matches!(node.kind, NodeKind::Null));
    let launch_apps = launch_node.map(|node| {
        reader
            .sequence(Some(node), "spec.launchApps")
            .iter()
            .map(|entry| entry.scalar_text().unwrap_or_default().to_owned())
            .collect()
    });
    let launch_apps_location = launch_node.map(|node| reader.location(node));
    let mut configs = Vec::new();
    for (index, entry) in reader
        .sequence(spec.and_then(|spec| spec.get("configs")), "spec.configs")
        .iter()
        .enumerate()
    {
        let path = item("spec.configs", index);
        reader.check_keys(entry, &path, &["name", "env", "files", "launch", "delete"]);
        let name =
            reader.required_string(entry, "name", &path, "name the app these settings are for");
        if let Some(name) = &name
            && let Err(message) = check_app_name(name)
        {
            reader.problem(
                entry.get("name").unwrap_or(entry),
                &child(&path, "name"),
                message,
            );
        }
        let env = read_env(reader, entry.get("env"), &child(&path, "env"), Level::App);
        let launch_cmds = entry.get("launch").and_then(|launch| {
            let cmds = reader.strings(launch.get("cmds"), &child(&path, "launch.cmds"));
            if cmds.is_none() {
                reader.problem(
                    launch,
                    &child(&path, "launch"),
                    "give launch.cmds: the commands that launch the app",
                );
            }
            cmds.map(|cmds| cmds.into_iter().map(|(text, _)| text).collect())
        });
        let mut files = Vec::new();
        for (file_index, file) in reader
            .sequence(entry.get("files"), &child(&path, "files"))
            .iter()
            .enumerate()
        {
            let file_path = item(&child(&path, "files"), file_index);
            reader.check_keys(file, &file_path, &["path", "strategy", "data"]);
            let relative = reader
                .required_string(
                    file,
                    "path",
                    &file_path,
                    "give the file, relative to the app directory",
                )
                .and_then(|text| {
                    check_relative(&text)
                        .map_err(|message| {
                            reader.problem(
                                file.get("path").unwrap_or(file),
                                &child(&file_path, "path"),
                                message,
                            );
                        })
                        .ok()
                });
            let data = reader.required_string(file, "data", &file_path, "give the file's content");
            let strategy = match reader
                .string(file.get("strategy"), &child(&file_path, "strategy"))
                .as_deref()
            {
                None | Some("overwrite") => Strategy::Overwrite,
                Some("merge") => Strategy::Merge,
                Some(other) => {
                    reader.problem(
                        file.get("strategy").unwrap_or(file),
                        &child(&file_path, "strategy"),
                        format!("{other:?} is not a strategy: use overwrite or merge"),
                    );
                    Strategy::Overwrite
                }
            };
            if let (Some(path), Some(data)) = (relative, data) {
                files.push(AppFile {
                    path,
                    strategy,
                    data,
                });
            }
        }
        if let Some(name) = name {
            configs.push(AppConfig {
                name,
                env,
                launch_cmds,
                files,
            });
        }
    }
    if reader.problems.len() > before {
        return None;
    }
    Some(Application {
        cmds,
        launch_apps,
        configs,
        location: reader.location(root),
        launch_apps_location,
    })
}
