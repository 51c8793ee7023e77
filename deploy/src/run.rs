//! Carries out a [`Plan`] over the hosts' SSH connections: stage after stage; within a
//! parallel stage each host's steps in order and the hosts at the same time. Every finished
//! step is recorded at once, so that a failed run resumes at the step that failed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use futures_util::StreamExt as _;
use futures_util::stream;

use crate::builtin_registry;
use crate::distribute::distribute;
use crate::docker_daemon;
use crate::kubeadm::{self, JoinInfo};
use crate::plan::install::{APISERVER_NAME, IGNORED_PREFLIGHT_ERRORS};
use crate::plan::shell::{self, quote};
use crate::plan::{Action, Environment, Plan, Step};
use crate::platforms::PlatformRootfs;
use crate::ssh::{CommandOutput, Connection, RemoteCommand};
use crate::state::{ClusterState, StateError, StateFile};
use crate::target::Target;

/// Lines of a failed command's output an error quotes.
const OUTPUT_TAIL_LINES: usize = 20;

/// `PATH` of launch commands, which get no other environment (as in the original).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a plan stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A step failed.
    #[error("step {step} ({title}) failed on {host}: {detail}")]
    Step {
        /// The host.
        host: String,
        /// The step's id.
        step: String,
        /// What the step does.
        title: String,
        /// Exit status and output tail, or the error.
        detail: String,
    },
    /// The plan has no connection to a host (a bug in the caller).
    #[error("no SSH connection to {0}")]
    NotConnected(IpAddr),
    /// The state cannot be recorded.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Progress lines for the user.
pub trait Report: Sync {
    /// One line.
    fn line(&self, text: &str);
}

/// What carries out a plan.
pub struct Runner<'a, 'p> {
    /// The cluster the plan moves to.
    pub target: &'a Target,
    /// The prepared rootfs of each platform (needed by distribution steps).
    pub rootfs: Option<&'a PlatformRootfs<'p>>,
    /// The Clusterfile's text (saved on master0).
    pub clusterfile_text: &'a str,
    /// One connection per host of the plan.
    pub connections: &'a BTreeMap<IpAddr, Connection>,
    /// Where finished steps are recorded.
    pub state_file: &'a StateFile,
    /// The recorded state; `pending` is the operation under way.
    pub state: &'a Mutex<ClusterState>,
    /// Hosts worked on at the same time.
    pub parallelism: usize,
    /// This program, copied to registry hosts for the built-in registry.
    pub sealer_binary: builtin_registry::SealerBinary,
    /// Progress.
    pub report: &'a dyn Report,
}

impl Runner<'_, '_> {
    /// Runs the steps of `plan` not yet recorded as done.
    pub async fn execute(&self, plan: &Plan) -> Result<(), RunError> {
        for stage in &plan.stages {
            let done = self.done();
            let steps: Vec<&Step> = stage
                .steps
                .iter()
                .filter(|step| !done.contains(&step.fingerprint()))
                .collect();
            if steps.is_empty() {
                continue;
            }
            self.report.line(&format!("== {}", stage.name));
            if stage.parallel {
                let mut by_host: BTreeMap<IpAddr, Vec<&Step>> = BTreeMap::new();
                for step in steps {
                    by_host.entry(step.host).or_default().push(step);
                }
                let results: Vec<Result<(), RunError>> = stream::iter(by_host.into_values())
                    .map(|host_steps| async move {
                        for step in host_steps {
                            self.run_step(step).await?;
                        }
                        Ok(())
                    })
                    .buffer_unordered(self.parallelism.max(1))
                    .collect()
                    .await;
                if let Some(error) = results.into_iter().find_map(Result::err) {
                    return Err(error);
                }
            } else {
                for step in steps {
                    self.run_step(step).await?;
                }
            }
        }
        Ok(())
    }

    /// The recorded state, for reading or changing (a panicked holder leaves it usable).
    fn state(&self) -> std::sync::MutexGuard<'_, ClusterState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn done(&self) -> BTreeSet<String> {
        let state = self.state();
        state
            .pending
            .as_ref()
            .map(|pending| pending.done.clone())
            .unwrap_or_default()
    }

    /// Changes the recorded state and writes it.
    fn record(&self, change: impl FnOnce(&mut ClusterState)) -> Result<(), RunError> {
        let mut state = self.state();
        change(&mut state);
        self.state_file.save(&state)?;
        Ok(())
    }

    async fn run_step(&self, step: &Step) -> Result<(), RunError> {
        let started = Instant::now();
        let connection = self
            .connections
            .get(&step.host)
            .ok_or(RunError::NotConnected(step.host))?;
        let failed = |detail: String| RunError::Step {
            host: connection.host().to_owned(),
            step: step.id.clone(),
            title: step.action.summary(),
            detail,
        };
        let note = self.perform(connection, step).await.map_err(failed)?;
        let fingerprint = step.fingerprint();
        self.record(|state| {
            if let Some(pending) = state.pending.as_mut() {
                pending.done.insert(fingerprint);
            }
        })?;
        self.report.line(&format!(
            "{:<15} {}{note} ({:.1} s)",
            step.host.to_string(),
            step.action.summary(),
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Does the step's action; returns a note for the progress line.
    async fn perform(&self, connection: &Connection, step: &Step) -> Result<String, String> {
        match &step.action {
            Action::Distribute { with_registry, .. } => {
                let platforms = self
                    .rootfs
                    .ok_or_else(|| "no prepared rootfs to distribute (a bug)".to_owned())?;
                let (rootfs, content_key) = platforms.for_host(connection).await?;
                let sent = distribute(
                    connection,
                    &rootfs,
                    &self.target.cluster_dir(),
                    &content_key,
                    *with_registry,
                )
                .await
                .map_err(|e| e.to_string())?;
                Ok(if sent.skipped {
                    ": unchanged, skipped".to_owned()
                } else {
                    format!(": {} MiB", sent.bytes / (1024 * 1024))
                })
            }
            Action::Script {
                script,
                environment,
                ..
            } => {
                let command = match environment {
                    Environment::Host => self.host_command(step.host, script),
                    Environment::Bare => {
                        RemoteCommand::new(script.clone()).env("PATH", DEFAULT_PATH)
                    }
                };
                checked(connection, &command)
                    .await
                    .map(|output| kept_files_note(&output))
            }
            Action::KubeadmInit { config, node_name } => {
                let output =
                    checked(connection, &self.kubeadm_init(config, node_name.as_deref())).await?;
                let join = kubeadm::join_info(&output.stdout_text())
                    .ok_or_else(|| "kubeadm init printed no join command".to_owned())?;
                self.remember_join(join).map(|()| String::new())
            }
            Action::KubeadmRefreshJoin => {
                let output = checked(connection, &RemoteCommand::new(
                    "kubeadm token create --print-join-command\nkubeadm init phase upload-certs --upload-certs\n",
                ))
                .await?;
                let join = kubeadm::refreshed_join_info(&output.stdout_text())
                    .ok_or_else(|| "kubeadm printed no join command".to_owned())?;
                self.remember_join(join).map(|()| String::new())
            }
            Action::KubeadmJoin {
                control_plane,
                node_name,
            } => {
                let join = self.join_info().ok_or_else(|| {
                    "no join token is recorded: kubeadm init has not run for this cluster"
                        .to_owned()
                })?;
                let command =
                    self.kubeadm_join(step.host, &join, *control_plane, node_name.as_deref())?;
                checked(connection, &command).await.map(|_| String::new())
            }
            Action::InstallRegistryCertificate { domain, .. } => {
                let tls = self.target.registry_tls.as_ref().ok_or_else(|| {
                    "the registry serves plain HTTP: it has no certificate to install".to_owned()
                })?;
                let (command, key) =
                    tls.install_command(&self.target.registry_certificate_dir(), domain);
                checked_with_input(connection, &command, key)
                    .await
                    .map(|_| String::new())
            }
            Action::ConfigureDockerDaemon { entries } => {
                docker_daemon::configure(connection, &self.target.clusterfile.cluster.name, entries)
                    .await
                    .map(|()| String::new())
            }
            Action::InstallRegistryHtpasswd { .. } => {
                let auth = self.registry_auth()?;
                let command = RemoteCommand::new(shell::write_private_file_from_stdin(
                    &self.target.registry_htpasswd_path(),
                ));
                checked_with_input(connection, &command, auth.htpasswd.expose().into())
                    .await
                    .map(|_| String::new())
            }
            Action::InstallRegistryLogin { paths, .. } => {
                let mut notes = String::new();
                for file in self.target.registry_client_files() {
                    if !paths.contains(&file.path) {
                        continue;
                    }
                    let command = RemoteCommand::new(shell::write_owned_file_from_stdin(
                        &self.target.clusterfile.cluster.name,
                        &file.path,
                    ));
                    let output =
                        checked_with_input(connection, &command, file.content.into_bytes()).await?;
                    notes.push_str(&kept_files_note(&output));
                }
                Ok(notes)
            }
            Action::StartBuiltinRegistry { port, files } => {
                builtin_registry::install_binary(
                    connection,
                    &self.sealer_binary,
                    &builtin_registry::binary_path(self.target),
                )
                .await?;
                checked(
                    connection,
                    &self.host_command(
                        step.host,
                        &builtin_registry::start_script(self.target, *port, files),
                    ),
                )
                .await
                .map(|_| String::new())
            }
            Action::LabelNode {
                node_host,
                node_name,
                labels,
                taints,
            } => {
                let name = self.node_name(*node_host, node_name.as_deref()).await?;
                let mut script = String::new();
                if !labels.is_empty() {
                    let labels: Vec<String> = labels.iter().map(|l| quote(l)).collect();
                    let _ = writeln!(
                        script,
                        "kubectl label node {} {} --overwrite",
                        quote(&name),
                        labels.join(" ")
                    );
                }
                for taint in taints {
                    let _ = writeln!(
                        script,
                        "kubectl taint node {} {} --overwrite",
                        quote(&name),
                        quote(taint)
                    );
                }
                if script.is_empty() {
                    return Ok(String::new());
                }
                checked(connection, &RemoteCommand::new(script))
                    .await
                    .map(|_| format!(": node {name}"))
            }
            Action::DeleteNode {
                node_host,
                node_name,
            } => {
                let name = self.node_name(*node_host, node_name.as_deref()).await?;
                checked(
                    connection,
                    &RemoteCommand::new(format!(
                        "if command -v kubectl >/dev/null 2>&1; then kubectl delete node {} --ignore-not-found; fi\n",
                        quote(&name)
                    )),
                )
                .await
                .map(|_| format!(": node {name}"))
            }
            Action::SaveClusterfile => {
                let path = format!("{}/Clusterfile", self.target.cluster_dir());
                let mut script = shell::write_file(&path, self.clusterfile_text.as_bytes(), "0600");
                let _ = writeln!(
                    script,
                    "if command -v kubectl >/dev/null 2>&1; then kubectl -n kube-system create configmap sealer-clusterfile --from-file=Clusterfile={} --dry-run=client -o yaml | kubectl apply -f -; fi",
                    quote(&path)
                );
                checked(connection, &RemoteCommand::new(script))
                    .await
                    .map(|_| String::new())
            }
        }
    }

    /// The registry's credentials, which steps installing them need.
    fn registry_auth(&self) -> Result<&crate::registry_auth::RegistryAuth, String> {
        self.target.registry_auth.as_ref().ok_or_else(|| {
            "the Clusterfile gives the registry no credentials to install".to_owned()
        })
    }

    /// A script with the host's environment.
    fn host_command(&self, host: IpAddr, script: &str) -> RemoteCommand {
        let env = self.target.host_env(host);
        let mut command = RemoteCommand::new(script.to_owned());
        for (name, value) in env {
            command = if is_secret_name(&name) {
                command.secret_env(name, &crate::secret::Secret::new(value))
            } else {
                command.env(name, value)
            };
        }
        command
    }

    fn kubeadm_init(&self, config: &str, node_name: Option<&str>) -> RemoteCommand {
        let rootfs = self.target.rootfs();
        let mut script =
            shell::write_file("/etc/kubernetes/kubeadm.yaml", config.as_bytes(), "0600");
        let _ = writeln!(
            script,
            "if [ -f {audit} ]; then cp {audit} /etc/kubernetes/; fi\nkubeadm init --config=/etc/kubernetes/kubeadm.yaml --upload-certs --ignore-preflight-errors={IGNORED_PREFLIGHT_ERRORS}{}\nmkdir -p /root/.kube && cp /etc/kubernetes/admin.conf /root/.kube/config",
            node_flag(node_name),
            audit = quote(&format!("{rootfs}/statics/audit-policy.yml")),
        );
        self.host_command(self.target.clusterfile.cluster.master0().ip, &script)
    }

    fn kubeadm_join(
        &self,
        host: IpAddr,
        join: &JoinInfo,
        control_plane: bool,
        node_name: Option<&str>,
    ) -> Result<RemoteCommand, String> {
        let mut script = format!(
            "kubeadm join {APISERVER_NAME}:6443 --token \"$SEALER_JOIN_TOKEN\" --discovery-token-ca-cert-hash {}",
            quote(&join.ca_cert_hash)
        );
        let mut command = self.host_command(host, "");
        if control_plane {
            let key = join.certificate_key.as_ref().ok_or_else(|| {
                "kubeadm init printed no certificate key, so no master can join".to_owned()
            })?;
            script.push_str(" --control-plane --certificate-key \"$SEALER_JOIN_CERTIFICATE_KEY\"");
            command = command.secret_env("SEALER_JOIN_CERTIFICATE_KEY", key);
        }
        let _ = writeln!(
            script,
            " --ignore-preflight-errors={IGNORED_PREFLIGHT_ERRORS}{}",
            node_flag(node_name)
        );
        if control_plane {
            script.push_str(
                "mkdir -p /root/.kube && cp /etc/kubernetes/admin.conf /root/.kube/config\n",
            );
        }
        command.script = script;
        Ok(command.secret_env("SEALER_JOIN_TOKEN", &join.token))
    }

    /// Records what the joins need, for this operation and later scale-ups.
    fn remember_join(&self, join: JoinInfo) -> Result<(), String> {
        self.record(|state| {
            state.join = Some(join.clone());
            if let Some(pending) = state.pending.as_mut() {
                pending.join = Some(join);
            }
        })
        .map_err(|e| e.to_string())
    }

    fn join_info(&self) -> Option<JoinInfo> {
        let state = self.state();
        state
            .pending
            .as_ref()
            .and_then(|pending| pending.join.clone())
            .or_else(|| state.join.clone())
    }

    /// The node name of `host`: given by the plan, or the host's hostname as kubelet
    /// registers it (lower case).
    async fn node_name(&self, host: IpAddr, known: Option<&str>) -> Result<String, String> {
        if let Some(name) = known {
            return Ok(name.to_owned());
        }
        let connection = self
            .connections
            .get(&host)
            .ok_or_else(|| format!("no SSH connection to {host} to read its node name"))?;
        let output = checked(connection, &RemoteCommand::new("hostname")).await?;
        let name = output.stdout_text().trim().to_lowercase();
        if name.is_empty() {
            return Err(format!("{host} has an empty hostname"));
        }
        Ok(name)
    }
}

/// Runs `command`; a failure becomes the exit status and the output's last lines.
async fn checked(
    connection: &Connection,
    command: &RemoteCommand,
) -> Result<CommandOutput, String> {
    let output = connection.run(command).await.map_err(|e| e.to_string())?;
    explain_failure(command, output)
}

/// Runs `command` with `input` on its stdin, as [`checked`].
async fn checked_with_input(
    connection: &Connection,
    command: &RemoteCommand,
    input: Vec<u8>,
) -> Result<CommandOutput, String> {
    let output = connection
        .run_with_input(command, std::io::Cursor::new(input))
        .await
        .map_err(|e| e.to_string())?;
    explain_failure(command, output)
}

/// A failed command's output becomes its exit status and last lines.
fn explain_failure(
    command: &RemoteCommand,
    output: CommandOutput,
) -> Result<CommandOutput, String> {
    if output.success() {
        return Ok(output);
    }
    Err(format!(
        "`{}` exited with {}; its output ends with:\n{}",
        command.summary(),
        output.status,
        output_tail(&output)
    ))
}

/// The last lines of a command's stdout and stderr.
fn output_tail(output: &CommandOutput) -> String {
    let text = format!("{}{}", output.stdout_text(), output.stderr_text());
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(OUTPUT_TAIL_LINES);
    lines[start..]
        .iter()
        .map(|line| format!("  | {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn node_flag(node_name: Option<&str>) -> String {
    node_name
        .map(|name| format!(" --node-name {}", quote(name)))
        .unwrap_or_default()
}

/// The progress note for files a step kept because apply did not write them (empty when
/// none), so that the user sees that the registry or runtime may not be configured there.
fn kept_files_note(output: &CommandOutput) -> String {
    let stderr = output.stderr_text();
    let kept = shell::kept_files(&stderr);
    if kept.is_empty() {
        String::new()
    } else {
        format!(
            ": kept {} (not written by sealer: merge the registry's settings by hand)",
            kept.join(", ")
        )
    }
}

/// Whether an environment variable's value must not be logged.
fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["passw", "secret", "token", "credential"]
        .iter()
        .any(|word| lower.contains(word))
}
