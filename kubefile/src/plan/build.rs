//! Walks the instructions in order, keeping ARG and ENV scopes as a Dockerfile does, and turns
//! them into a [`BuildPlan`]. Every semantic problem becomes a diagnostic at the word that
//! caused it; the plan is returned only when there is no error.

use std::collections::{BTreeMap, BTreeSet};

use super::apps::{AppSource, AppType, detect_app_type};
use super::platform::predefined_args;
use super::sources::{expand_pattern, has_wildcard};
use super::{
    APPLICATION_VERSION, APPS_ROOT, Application, Base, BuildPlan, CNI_LABEL_PREFIX,
    CSI_LABEL_PREFIX, CopyStep, EXTENSION_SCHEMA_VERSION, EnvVar, ImageConfig, ImageExtension,
    KUBE_VERSION_LABEL, LaunchSpec, Location, Origin, PlanOptions, Platform, RunCommand, RunStep,
    Source, Step,
};
use crate::context::clean_relative;
use crate::diagnostics::Diagnostic;
use crate::expand::{ExpandError, expand_command, expand_word};
use crate::instructions::{
    App, AppCmds, AppEnv, Arg, Command, Commands, Copy, CopySource, From, Instruction, KeyValues,
    Kubefile, Launch, Run, Word,
};
use crate::source::{SourceFile, Span};

/// The outcome of planning: the plan when there is no error, and every diagnostic.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The plan, when no diagnostic is an error.
    pub plan: Option<BuildPlan>,
    /// Errors and warnings found while planning, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Resolves a parsed Kubefile into a build plan.
///
/// `file` is the Kubefile's source (for locations); `options` gives the context, build
/// arguments, platforms and what is known of the base image.
pub fn build_plan(kubefile: &Kubefile, file: &SourceFile, options: &PlanOptions<'_>) -> Planned {
    let mut builder = Builder::new(kubefile, file, options);
    for instruction in &kubefile.instructions {
        builder.instruction(instruction);
    }
    builder.finish()
}

/// One app as the plan knows it.
struct AppState {
    app: Application,
    /// Where the app was declared in this Kubefile; `None` for apps of the base image.
    declared_at: Option<Span>,
    /// Where its APPCMDS was given.
    cmds_at: Option<Span>,
}

struct Builder<'a> {
    file: &'a SourceFile,
    options: &'a PlanOptions<'a>,
    escape: char,
    diagnostics: Vec<Diagnostic>,
    predefined: Vec<(String, String)>,
    global_args: Vec<(String, Option<String>)>,
    stage_args: Vec<(String, Option<String>)>,
    declared_args: BTreeSet<String>,
    in_stage: bool,
    base: Option<Base>,
    steps: Vec<Step>,
    config: ImageConfig,
    apps: Vec<AppState>,
    launch: LaunchSpec,
    extension_env: BTreeMap<String, String>,
}

fn expand_error_span(word: &Word, error: &ExpandError) -> Span {
    let start = (word.span.start + error.offset).min(word.span.end);
    Span::new(start, (start + 1).min(word.span.end).max(start))
}

fn is_url(text: &str) -> bool {
    text.starts_with("http://") || text.starts_with("https://")
}

/// A valid app name: it names the directory `application/apps/<name>`.
fn valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with(['.', '-'])
}

/// Cleans a destination path; `..` cannot climb above the rootfs and stops at its root.
fn clean_dest(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

impl<'a> Builder<'a> {
    fn new(kubefile: &Kubefile, file: &'a SourceFile, options: &'a PlanOptions<'a>) -> Self {
        Builder {
            file,
            options,
            escape: kubefile.escape,
            diagnostics: Vec::new(),
            predefined: predefined_args(&options.target_platform, &options.build_platform),
            global_args: Vec::new(),
            stage_args: Vec::new(),
            declared_args: BTreeSet::new(),
            in_stage: false,
            base: None,
            steps: Vec::new(),
            config: ImageConfig::default(),
            apps: Vec::new(),
            launch: LaunchSpec::default(),
            extension_env: BTreeMap::new(),
        }
    }

    fn location(&self, span: Span) -> Location {
        let pos = self.file.position(span.start);
        Location {
            line: pos.line,
            column: pos.column,
        }
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// The value of a variable in the current scope: ENV first, then declared ARGs, then the
    /// predefined platform arguments.
    fn lookup(&self, name: &str) -> Option<String> {
        if self.in_stage {
            if let Some(var) = self.config.env.iter().find(|v| v.name == name) {
                return Some(var.value.clone());
            }
            if let Some((_, value)) = self.stage_args.iter().rev().find(|(n, _)| n == name) {
                return value.clone();
            }
        } else if let Some((_, value)) = self.global_args.iter().rev().find(|(n, _)| n == name) {
            return value.clone();
        }
        self.predefined
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// Expands a build-time word, reporting a failed substitution at its place.
    fn word(&mut self, word: &Word) -> Option<String> {
        let result = expand_word(&word.text, self.escape, &|n| self.lookup(n));
        self.expanded(word, result)
    }

    /// Expands a command that runs later on the cluster: only known variables are replaced.
    fn command(&mut self, word: &Word) -> Option<String> {
        let result = expand_command(&word.text, self.escape, &|n| self.lookup(n));
        self.expanded(word, result)
    }

    fn expanded(&mut self, word: &Word, result: Result<String, ExpandError>) -> Option<String> {
        match result {
            Ok(text) => Some(text),
            Err(error) => {
                let span = expand_error_span(word, &error);
                self.push(
                    Diagnostic::error(
                        span,
                        format!("cannot substitute variables: {}", error.message),
                    )
                    .with_label("substitution fails here"),
                );
                None
            }
        }
    }

    fn instruction(&mut self, instruction: &Instruction) {
        let location = self.location(instruction.span);
        match &instruction.command {
            Command::From(from) => self.from(from, location),
            _ if !self.in_stage && !matches!(instruction.command, Command::Arg(_)) => {}
            Command::Arg(arg) => self.arg(arg),
            Command::Copy(copy) => self.copy(copy, "COPY", location),
            Command::Add(copy) => self.copy(copy, "ADD", location),
            Command::Run(run) => self.run(run, location),
            Command::Env(values) => self.env(values),
            Command::Label(values) => self.label(values),
            Command::Maintainer(text) => {
                if let Some(author) = self.word(&text.text) {
                    self.config.author = Some(author);
                }
            }
            Command::App(app) => self.app(app, "APP", location),
            Command::Cni(app) => self.app(app, "CNI", location),
            Command::Csi(app) => self.app(app, "CSI", location),
            Command::AppCmds(cmds) => self.app_cmds(cmds),
            Command::AppEnv(env) => self.app_env(env),
            Command::KubeVersion(text) => self.kube_version(&text.text),
            Command::Launch(launch) => self.launch(launch),
            Command::Cmds(commands) | Command::Cmd(commands) => self.cmds(commands),
        }
    }

    fn from(&mut self, from: &From, location: Location) {
        if self.base.is_some() {
            return;
        }
        let Some(image) = self.word(&from.image) else {
            return;
        };
        if image.is_empty() {
            self.push(
                Diagnostic::error(
                    from.image.span,
                    "FROM names no image once variables are substituted",
                )
                .with_label("empty after substitution")
                .with_help("set the build argument, or give it a default: ARG NAME=default"),
            );
            return;
        }
        let platform = match &from.platform {
            Some(word) => match self.word(word).map(|p| p.parse::<Platform>()) {
                Some(Ok(platform)) => Some(platform),
                Some(Err(message)) => {
                    self.push(Diagnostic::error(word.span, message).with_label("invalid platform"));
                    return;
                }
                None => return,
            },
            None => None,
        };
        self.in_stage = true;
        if let Some(base) = &self.options.base {
            self.config.env.clone_from(&base.env);
            self.config.labels.clone_from(&base.labels);
            self.extension_env.clone_from(&base.extension_env);
            self.apps = base
                .applications
                .iter()
                .map(|app| AppState {
                    app: app.clone(),
                    declared_at: None,
                    cmds_at: None,
                })
                .collect();
        }
        self.base = Some(Base {
            image: (image != "scratch").then_some(image),
            platform,
            location,
        });
    }

    fn arg(&mut self, arg: &Arg) {
        for decl in &arg.args {
            let name = decl.name.text.clone();
            let default = match &decl.default {
                Some(word) => match self.word(word) {
                    Some(value) => Some(value),
                    None => continue,
                },
                None => None,
            };
            let global = if self.in_stage {
                self.global_args
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, v)| v.clone())
            } else {
                None
            };
            let value = self
                .options
                .build_args
                .get(&name)
                .map(str::to_owned)
                .or(default)
                .or(global);
            self.declared_args.insert(name.clone());
            if self.in_stage {
                self.stage_args.push((name, value));
            } else {
                self.global_args.push((name, value));
            }
        }
    }

    fn copy(&mut self, copy: &Copy, keyword: &str, location: Location) {
        let origin = match &copy.from {
            Some(word) => match self.word(word) {
                Some(image) if !image.is_empty() => Origin::Image(image),
                Some(_) => {
                    self.push(
                        Diagnostic::error(
                            word.span,
                            "--from names no image once variables are substituted",
                        )
                        .with_label("empty"),
                    );
                    return;
                }
                None => return,
            },
            None => Origin::Context,
        };
        let checksum = match &copy.checksum {
            Some(word) => match self.word(word) {
                Some(c) => Some(c),
                None => return,
            },
            None => None,
        };
        let mut ok = true;
        let mut sources = Vec::new();
        let mut wildcard = false;
        for source in &copy.sources {
            match source {
                CopySource::Heredoc(doc) => {
                    let content = if doc.expand {
                        let word = Word {
                            text: doc.content.clone(),
                            span: doc.content_span,
                        };
                        let Some(content) = self.command(&word) else {
                            ok = false;
                            continue;
                        };
                        content
                    } else {
                        doc.content.clone()
                    };
                    sources.push(Source::Inline {
                        name: doc.name.clone(),
                        content,
                    });
                }
                CopySource::Path(word) => {
                    let Some(text) = self.word(word) else {
                        ok = false;
                        continue;
                    };
                    match self.copy_source(keyword, &origin, word, &text, checksum.as_ref()) {
                        Some(source) => {
                            if let Source::Path { path } = &source {
                                wildcard |= has_wildcard(path);
                            }
                            sources.push(source);
                        }
                        None => ok = false,
                    }
                }
            }
        }
        if checksum.is_some() && sources.iter().any(|s| !matches!(s, Source::Url { .. })) {
            let span = copy.checksum.as_ref().map_or(copy.dest.span, |w| w.span);
            self.push(
                Diagnostic::error(
                    span,
                    "--checksum only applies to http:// and https:// sources",
                )
                .with_label("not a URL download"),
            );
            ok = false;
        }
        let Some(dest_text) = self.word(&copy.dest) else {
            return;
        };
        let dest = clean_dest(&dest_text);
        let dest_is_dir = dest_text.ends_with('/') || dest.is_empty();
        if (copy.sources.len() > 1 || wildcard) && !dest_is_dir {
            self.push(
                Diagnostic::error(
                    copy.dest.span,
                    format!("with several sources or a wildcard, the {keyword} destination must be a directory"),
                )
                .with_label("not a directory")
                .with_help(format!("end it with `/`: {dest_text}/")),
            );
            ok = false;
        }
        let chown = match &copy.chown {
            Some(word) => match self.word(word) {
                Some(owner) if valid_owner(&owner) => Some(owner),
                Some(owner) => {
                    self.push(
                        Diagnostic::error(word.span, format!("invalid --chown `{owner}`"))
                            .with_label("expected user[:group]")
                            .with_help("use names or numeric ids, such as --chown=0:0 or --chown=root:root"),
                    );
                    return;
                }
                None => return,
            },
            None => None,
        };
        let chmod = match &copy.chmod {
            Some(word) => match self.word(word) {
                Some(mode) => match u32::from_str_radix(&mode, 8) {
                    Ok(bits) if bits <= 0o7777 && !mode.is_empty() => Some(bits),
                    _ => {
                        self.push(
                            Diagnostic::error(word.span, format!("invalid --chmod `{mode}`"))
                                .with_label("expected an octal mode")
                                .with_help("use an octal mode such as --chmod=755 or --chmod=0644"),
                        );
                        return;
                    }
                },
                None => return,
            },
            None => None,
        };
        if !ok {
            return;
        }
        self.steps.push(Step::Copy(CopyStep {
            location,
            instruction: keyword.to_owned(),
            origin,
            sources,
            dest,
            dest_is_dir,
            chown,
            chmod,
            unpack_archives: keyword == "ADD",
            app: None,
        }));
    }

    /// Resolves one path source of COPY/ADD.
    fn copy_source(
        &mut self,
        keyword: &str,
        origin: &Origin,
        word: &Word,
        text: &str,
        checksum: Option<&String>,
    ) -> Option<Source> {
        if is_url(text) {
            if keyword == "COPY" || matches!(origin, Origin::Image(_)) {
                self.push(
                    Diagnostic::error(word.span, format!("{keyword} cannot download `{text}`"))
                        .with_label("a URL")
                        .with_help("use ADD to download a URL into the image"),
                );
                return None;
            }
            return Some(Source::Url {
                url: text.to_owned(),
                checksum: checksum.cloned(),
            });
        }
        let where_ = match origin {
            Origin::Context => "the build context",
            Origin::Image(_) => "the image root",
        };
        let Ok(path) = clean_relative(text) else {
            self.push(
                Diagnostic::error(
                    word.span,
                    format!("{keyword} source `{text}` is outside {where_}"),
                )
                .with_label("climbs out with `..`")
                .with_help(format!(
                    "sources are relative to {where_} and cannot leave it"
                )),
            );
            return None;
        };
        if *origin == Origin::Context {
            let exists = if has_wildcard(&path) {
                !expand_pattern(self.options.context, &path).is_empty()
            } else {
                self.options.context.kind(&path).is_some()
            };
            if !exists {
                let what = if has_wildcard(&path) {
                    format!("no file in the build context matches `{text}`")
                } else {
                    format!("`{text}` does not exist in the build context")
                };
                self.push(
                    Diagnostic::error(word.span, what)
                        .with_label("not found")
                        .with_help("sources are relative to the build context directory given to the build"),
                );
                return None;
            }
        }
        Some(Source::Path { path })
    }

    fn run(&mut self, run: &Run, location: Location) {
        let network = match &run.network {
            Some(word) => match self.word(word) {
                Some(n) if matches!(n.as_str(), "default" | "none" | "host") => n,
                Some(n) => {
                    self.push(
                        Diagnostic::error(word.span, format!("unknown network mode `{n}`"))
                            .with_label("invalid")
                            .with_help("use --network=default, --network=none or --network=host"),
                    );
                    return;
                }
                None => return,
            },
            None => "default".to_owned(),
        };
        let command = match &run.command {
            crate::instructions::RunCommand::Exec(words) => {
                RunCommand::Exec(words.iter().map(|w| w.text.clone()).collect())
            }
            crate::instructions::RunCommand::Shell(text) => {
                let only_heredoc =
                    run.heredocs.len() == 1 && text.text.trim() == run.heredocs[0].word.text;
                if only_heredoc {
                    RunCommand::Shell(run.heredocs[0].content.clone())
                } else {
                    let mut script = text.text.clone();
                    for doc in &run.heredocs {
                        script.push('\n');
                        script.push_str(&doc.content);
                        script.push_str(&doc.name);
                    }
                    RunCommand::Shell(script)
                }
            }
        };
        let mut env = self.config.env.clone();
        let args = self
            .stage_args
            .iter()
            .rev()
            .filter_map(|(n, v)| v.as_ref().map(|v| (n.clone(), v.clone())))
            .chain(self.predefined.iter().cloned());
        for (name, value) in args {
            if !env.iter().any(|v| v.name == name) {
                env.push(EnvVar { name, value });
            }
        }
        self.steps.push(Step::Run(RunStep {
            location,
            command,
            env,
            network,
        }));
    }

    fn pairs(&mut self, values: &KeyValues) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for pair in &values.pairs {
            let (Some(key), Some(value)) = (self.word(&pair.key), self.word(&pair.value)) else {
                continue;
            };
            if key.is_empty() {
                self.push(
                    Diagnostic::error(
                        pair.key.span,
                        "the key is empty once variables are substituted",
                    )
                    .with_label("empty key"),
                );
                continue;
            }
            out.push((key, value));
        }
        out
    }

    fn env(&mut self, values: &KeyValues) {
        for (name, value) in self.pairs(values) {
            self.extension_env.insert(name.clone(), value.clone());
            match self.config.env.iter_mut().find(|v| v.name == name) {
                Some(var) => var.value = value,
                None => self.config.env.push(EnvVar { name, value }),
            }
        }
    }

    fn label(&mut self, values: &KeyValues) {
        for (key, value) in self.pairs(values) {
            self.config.labels.insert(key, value);
        }
    }

    fn find_app(&self, name: &str) -> Option<usize> {
        self.apps.iter().position(|a| a.app.name == name)
    }

    fn app(&mut self, app: &App, keyword: &str, location: Location) {
        let Some(name) = self.word(&app.name) else {
            return;
        };
        if !valid_app_name(&name) {
            self.push(
                Diagnostic::error(app.name.span, format!("invalid app name `{name}`"))
                    .with_label("invalid name")
                    .with_help(format!(
                        "app names become the directory {APPS_ROOT}/<name>/: use letters, digits, `-`, `_` and `.`, not starting with `.` or `-`"
                    )),
            );
            return;
        }
        if let Some(index) = self.find_app(&name) {
            if let Some(previous) = self.apps[index].declared_at {
                let line = self.file.position(previous.start).line;
                self.push(
                    Diagnostic::error(
                        app.name.span,
                        format!("app `{name}` is already declared at line {line}"),
                    )
                    .with_label("declared twice")
                    .with_help(
                        "give each app one APP (or CNI/CSI) instruction, with all its sources",
                    ),
                );
                return;
            }
            self.apps.remove(index);
        }
        let mut ok = true;
        let mut app_sources = Vec::new();
        let mut step_sources = Vec::new();
        for word in &app.sources {
            let Some(text) = self.word(word) else {
                ok = false;
                continue;
            };
            if is_url(&text) {
                app_sources.push(AppSource::Url(text.clone()));
                step_sources.push(Source::Url {
                    url: text,
                    checksum: None,
                });
                continue;
            }
            let Some(path) = text.strip_prefix("local://") else {
                self.push(
                    Diagnostic::error(word.span, format!("{keyword} source `{text}` has no supported scheme"))
                        .with_label("expected local://, http:// or https://")
                        .with_help(format!(
                            "write local://<path in the build context> or a URL, e.g. {keyword} {name} local://{text}"
                        )),
                );
                ok = false;
                continue;
            };
            let Ok(path) = clean_relative(path) else {
                self.push(
                    Diagnostic::error(
                        word.span,
                        format!("{keyword} source `{text}` is outside the build context"),
                    )
                    .with_label("climbs out with `..`"),
                );
                ok = false;
                continue;
            };
            if self.options.context.kind(&path).is_none() {
                self.push(
                    Diagnostic::error(
                        word.span,
                        format!("{keyword} source `{text}` does not exist in the build context"),
                    )
                    .with_label("not found")
                    .with_help("local:// paths are relative to the build context directory"),
                );
                ok = false;
                continue;
            }
            app_sources.push(AppSource::Local(path.clone()));
            step_sources.push(Source::Path { path });
        }
        if !ok {
            // Still known by name, so later APPCMDS/APPENV/LAUNCH do not report it again.
            self.apps.push(AppState {
                app: Application {
                    name,
                    app_type: String::new(),
                    files: Vec::new(),
                    version: APPLICATION_VERSION.to_owned(),
                    env: BTreeMap::new(),
                    cmds: Vec::new(),
                },
                declared_at: None,
                cmds_at: None,
            });
            return;
        }
        let (app_type, files) = detect_app_type(self.options.context, &name, &app_sources);
        match keyword {
            "CNI" => {
                self.config
                    .labels
                    .insert(format!("{CNI_LABEL_PREFIX}{name}"), "true".into());
            }
            "CSI" => {
                self.config
                    .labels
                    .insert(format!("{CSI_LABEL_PREFIX}{name}"), "true".into());
            }
            _ => {}
        }
        self.steps.push(Step::Copy(CopyStep {
            location,
            instruction: keyword.to_owned(),
            origin: Origin::Context,
            sources: step_sources,
            dest: format!("{APPS_ROOT}/{name}"),
            dest_is_dir: true,
            chown: None,
            chmod: None,
            unpack_archives: false,
            app: Some(name.clone()),
        }));
        self.apps.push(AppState {
            app: Application {
                name,
                app_type: app_type.as_str().to_owned(),
                files,
                version: APPLICATION_VERSION.to_owned(),
                env: BTreeMap::new(),
                cmds: Vec::new(),
            },
            declared_at: Some(app.name.span),
            cmds_at: None,
        });
    }

    /// Finds the app an instruction names, or reports that it is unknown. `Err(())` means the
    /// app may come from a base image that is not resolved yet (a warning was given).
    fn known_app(&mut self, word: &Word, keyword: &str) -> Result<Option<usize>, ()> {
        let Some(name) = self.word(word) else {
            return Ok(None);
        };
        if let Some(index) = self.find_app(&name) {
            return Ok(Some(index));
        }
        let base_image = self.base.as_ref().and_then(|b| b.image.clone());
        match base_image {
            Some(image) if self.options.base.is_none() => {
                self.push(
                    Diagnostic::warning(word.span, format!("{keyword} names app `{name}`, which this Kubefile does not declare"))
                        .with_label("not declared here")
                        .with_help(format!("it must come from the base image {image}; this is checked when the base image is resolved")),
                );
                Err(())
            }
            _ => {
                let from = match base_image {
                    Some(image) => {
                        format!("this Kubefile and its base image {image} do not declare it")
                    }
                    None => "this Kubefile does not declare it".to_owned(),
                };
                self.push(
                    Diagnostic::error(
                        word.span,
                        format!("{keyword} names unknown app `{name}`: {from}"),
                    )
                    .with_label("unknown app")
                    .with_help(format!("declare it first with APP {name} local://<path>")),
                );
                Ok(None)
            }
        }
    }

    fn app_cmds(&mut self, cmds: &AppCmds) {
        let Ok(Some(index)) = self.known_app(&cmds.name, "APPCMDS") else {
            return;
        };
        let commands: Option<Vec<String>> = cmds.commands.iter().map(|c| self.command(c)).collect();
        let Some(commands) = commands else {
            return;
        };
        if let Some(previous) = self.apps[index].cmds_at {
            let line = self.file.position(previous.start).line;
            let name = self.apps[index].app.name.clone();
            self.push(
                Diagnostic::warning(cmds.name.span, format!("APPCMDS for `{name}` was already given at line {line}; this one replaces it"))
                    .with_label("replaces the earlier APPCMDS"),
            );
        }
        self.apps[index].app.cmds = commands;
        self.apps[index].cmds_at = Some(cmds.name.span);
    }

    fn app_env(&mut self, env: &AppEnv) {
        let Ok(Some(index)) = self.known_app(&env.name, "APPENV") else {
            return;
        };
        let values = KeyValues {
            pairs: env.pairs.clone(),
            legacy: false,
        };
        for (key, value) in self.pairs(&values) {
            self.apps[index].app.env.insert(key, value);
        }
    }

    fn kube_version(&mut self, word: &Word) {
        let Some(range) = self.word(word) else {
            return;
        };
        if !valid_version_range(&range) {
            self.push(
                Diagnostic::warning(
                    word.span,
                    format!("`{range}` does not look like a Kubernetes version range"),
                )
                .with_label("unrecognized range")
                .with_help(
                    "write a semantic version constraint such as >=1.20.0 <1.27.0, ~1.22 or 1.22.x",
                ),
            );
        }
        self.config
            .labels
            .insert(KUBE_VERSION_LABEL.to_owned(), range);
    }

    fn launch(&mut self, launch: &Launch) {
        for word in &launch.apps {
            match self.known_app(word, "LAUNCH") {
                Ok(Some(index)) => {
                    let name = self.apps[index].app.name.clone();
                    if self.launch.app_names.contains(&name) {
                        self.push(
                            Diagnostic::warning(
                                word.span,
                                format!("app `{name}` is launched twice"),
                            )
                            .with_label("repeated"),
                        );
                    }
                    self.launch.app_names.push(name);
                }
                Err(()) => {
                    if let Some(name) = self.word(word) {
                        self.launch.app_names.push(name);
                    }
                }
                Ok(None) => {}
            }
        }
    }

    fn cmds(&mut self, commands: &Commands) {
        for command in &commands.commands {
            if let Some(text) = self.command(command) {
                self.launch.cmds.push(text);
            }
        }
    }

    fn finish(mut self) -> Planned {
        let untyped: Vec<(Span, String)> = self
            .apps
            .iter()
            .filter(|a| {
                a.declared_at.is_some()
                    && a.app.app_type == AppType::None.as_str()
                    && a.app.cmds.is_empty()
            })
            .filter_map(|a| a.declared_at.map(|s| (s, a.app.name.clone())))
            .collect();
        for (span, name) in untyped {
            self.push(
                Diagnostic::error(span, format!("cannot tell how to launch app `{name}`"))
                    .with_label("no app type")
                    .with_help(format!(
                        "its files are not a Helm chart, nor only YAML manifests, nor only shell scripts: add APPCMDS {name} [\"<command>\"]"
                    )),
            );
        }
        let unused: Vec<String> = self
            .options
            .build_args
            .names()
            .filter(|n| {
                !self.declared_args.contains(*n) && !self.predefined.iter().any(|(p, _)| p == n)
            })
            .map(str::to_owned)
            .collect();
        if !unused.is_empty() {
            let span = Span::default();
            self.push(
                Diagnostic::warning(
                    span,
                    format!(
                        "build arguments not declared with ARG were ignored: {}",
                        unused.join(", ")
                    ),
                )
                .with_label("no ARG declares them")
                .with_help("declare each with ARG NAME, or drop the --build-arg"),
            );
        }
        self.diagnostics.sort_by_key(|d| (d.span.start, d.severity));
        let errors = self.diagnostics.iter().any(Diagnostic::is_error);
        let plan = match self.base {
            Some(base) if !errors => {
                let mut args = BTreeMap::new();
                for (name, value) in self.global_args.iter().chain(&self.stage_args) {
                    if let Some(value) = value {
                        args.insert(name.clone(), value.clone());
                    }
                }
                Some(BuildPlan {
                    platform: self.options.target_platform.clone(),
                    base,
                    steps: self.steps,
                    config: self.config,
                    extension: ImageExtension {
                        schema_version: EXTENSION_SCHEMA_VERSION.to_owned(),
                        image_type: self.options.image_type,
                        applications: self.apps.into_iter().map(|a| a.app).collect(),
                        launch: self.launch,
                        env: self.extension_env,
                    },
                    args,
                })
            }
            _ => None,
        };
        Planned {
            plan,
            diagnostics: self.diagnostics,
        }
    }
}

fn valid_owner(owner: &str) -> bool {
    let mut parts = owner.split(':');
    let user = parts.next().unwrap_or("");
    let group = parts.next();
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    name_ok(user) && group.is_none_or(name_ok) && parts.next().is_none()
}

/// Accepts semantic version constraints: `>=1.20.0 <1.27`, `~1.22`, `^1.2`, `1.22.x`,
/// `1.20 - 1.24`, `>=1.20, <1.25`, alternatives joined with `||`.
pub(crate) fn valid_version_range(range: &str) -> bool {
    let version = |v: &str| {
        let v = v.strip_prefix('v').unwrap_or(v);
        let core = v.split(['-', '+']).next().unwrap_or("");
        let parts: Vec<&str> = core.split('.').collect();
        !core.is_empty()
            && parts.len() <= 3
            && parts.iter().enumerate().all(|(i, p)| {
                (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                    || (i > 0 && matches!(*p, "x" | "X" | "*"))
            })
    };
    !range.trim().is_empty()
        && range.split("||").all(|alternative| {
            let tokens: Vec<&str> = alternative
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|t| !t.is_empty())
                .collect();
            let mut i = 0;
            let mut any = false;
            while i < tokens.len() {
                let token = tokens[i];
                if token == "*" {
                    any = true;
                    i += 1;
                    continue;
                }
                if token == "-" && any {
                    i += 1;
                    continue;
                }
                let op_len = token
                    .chars()
                    .take_while(|c| matches!(c, '>' | '<' | '=' | '!' | '~' | '^'))
                    .count();
                let (op, rest) = token.split_at(op_len);
                if !matches!(
                    op,
                    "" | ">" | ">=" | "<" | "<=" | "=" | "==" | "!=" | "~" | "~>" | "^"
                ) {
                    return false;
                }
                let rest = if rest.is_empty() && i + 1 < tokens.len() {
                    i += 1;
                    tokens[i]
                } else {
                    rest
                };
                if !version(rest) {
                    return false;
                }
                any = true;
                i += 1;
            }
            any
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ranges() {
        for ok in [
            ">=1.20.0 <1.27.0",
            "~1.22",
            "^1.2",
            "1.22.x",
            "1.20 - 1.24",
            ">=1.20, <1.25",
            "v1.22.15",
            ">= 1.2 || 2.x",
            "*",
        ] {
            assert!(valid_version_range(ok), "{ok}");
        }
        for bad in ["", "latest", ">>1", "1.2.3.4", "=>1.2"] {
            assert!(!valid_version_range(bad), "{bad}");
        }
    }

    #[test]
    fn owners() {
        assert!(valid_owner("0:0"));
        assert!(valid_owner("root"));
        assert!(!valid_owner("a:b:c"));
        assert!(!valid_owner(":x"));
    }

    #[test]
    fn destinations_stay_in_the_rootfs() {
        assert_eq!(clean_dest("../../etc/"), "etc");
        assert_eq!(clean_dest("/a/./b"), "a/b");
        assert_eq!(clean_dest("."), "");
    }
}
