//! The cluster commands: decide what an apply has to do from the recorded state and the
//! Clusterfile (install, scale up, scale down, upgrade, or nothing), plan it, connect to every
//! host it touches before changing any, carry it out, and record the outcome.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::StreamExt as _;
use futures_util::stream;

use crate::clusterfile::{Clusterfile, Host, LocalRegistry, RegistryEndpoint};
use crate::plan::{self, Operation, Plan};
use crate::platforms::PlatformRootfs;
use crate::prepare::{self, ImageFacts, PrepareOptions, PreparedImage};
use crate::registry_auth::{AuthError, RegistryAuth};
use crate::registry_tls::{RegistryTls, TlsError};
use crate::run::{Report, Runner};
use crate::ssh::{ConnectOptions, Connection, HostKeyPolicy, SshAuth, SshTarget};
use crate::state::{ClusterState, Pending, Snapshot, StateFile};
use crate::target::Target;
use kubefile::plan::Platform;

/// Why a cluster command failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The Clusterfile is invalid.
    #[error("{0}")]
    Clusterfile(String),
    /// The image cannot be prepared.
    #[error(transparent)]
    Prepare(#[from] prepare::PrepareError),
    /// The state cannot be read or written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The registry's certificates cannot be read or made.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The registry's credentials cannot be read or made.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Hosts cannot be reached; nothing was changed.
    #[error("cannot reach every host, so nothing was changed:\n{0}")]
    Connect(String),
    /// A step failed; the run can be resumed.
    #[error(
        "{error}\nthe {operation} stopped there; fix the cause and run the same command again to resume from that step, or `sealer delete -a` to clean the hosts"
    )]
    Run {
        /// What was under way.
        operation: &'static str,
        /// The step's failure.
        error: crate::run::RunError,
    },
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Refused(String),
}

/// How the cluster commands reach the hosts and the image.
pub struct Options<'a> {
    /// Where the state of clusters is recorded (`~/.sealer`).
    pub home: PathBuf,
    /// The local image store.
    pub store: &'a image::store::Store,
    /// The registry client for pulls.
    pub client: &'a image::registry::RegistryClient,
    /// When to pull the image.
    pub pull: engine::options::PullPolicy,
    /// The `known_hosts` file.
    pub known_hosts: PathBuf,
    /// Whether unknown host keys are accepted (and recorded).
    pub accept_new_host_keys: bool,
    /// Hosts worked on at the same time.
    pub parallelism: usize,
    /// Print the plan and change nothing.
    pub dry_run: bool,
    /// Remove hosts without asking.
    pub force: bool,
    /// This program (copied to registry hosts for the built-in registry).
    pub sealer_binary: PathBuf,
    /// Progress.
    pub report: &'a dyn Report,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The cluster already is as the Clusterfile says.
    UpToDate,
    /// The plan was printed, nothing changed.
    Planned,
    /// The operation completed.
    Done(Operation),
}

/// Reads and validates a Clusterfile.
pub fn read_clusterfile(path: &Path) -> Result<(Clusterfile, String), ApplyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ApplyError::Clusterfile(format!("cannot read {}: {e}", path.display())))?;
    let clusterfile =
        Clusterfile::parse(&text, path).map_err(|e| ApplyError::Clusterfile(e.to_string()))?;
    Ok((clusterfile, text))
}

/// Makes the cluster what `clusterfile` says.
pub async fn apply(
    clusterfile: Clusterfile,
    text: String,
    options: &Options<'_>,
) -> Result<Outcome, ApplyError> {
    let state_file = StateFile::new(&options.home, &clusterfile.cluster.name);
    let state = state_file.load()?;
    if let Some(pending) = &state.pending
        && pending.operation == Operation::Delete
    {
        return Err(ApplyError::Refused(format!(
            "a delete of cluster {} did not finish; run `sealer delete -a` again first",
            clusterfile.cluster.name
        )));
    }
    let prepared = prepare_image(&clusterfile, &state_file, options, Platform::host()).await?;
    let target = target(
        clusterfile,
        prepared.facts.clone(),
        &state_file,
        options,
        Certificates::Current,
    )?;
    let applied = state
        .applied
        .as_ref()
        .map(|snapshot| parse_snapshot(snapshot, &state_file, options))
        .transpose()?;
    let plan = match &applied {
        None => plan::install_plan(&target),
        Some(applied) => {
            let Some(plan) = decide(applied, &target, options)? else {
                let applied_text = state.applied.as_ref().map(|s| s.clusterfile.as_str());
                if applied_text.map(documents_of) != Some(documents_of(&text)) {
                    options.report.line(&format!(
                        "note: the Clusterfile of cluster {} changes settings of the installed cluster (labels, taints, env, registry, plugins, ...); apply changes only its hosts and image, so these take effect for hosts added from now on, or after `sealer delete -a` and apply",
                        target.clusterfile.cluster.name
                    ));
                }
                options.report.line(&format!(
                    "cluster {} is up to date: nothing to do",
                    target.clusterfile.cluster.name
                ));
                return Ok(Outcome::UpToDate);
            };
            plan
        }
    };
    let work_state = state_file.clone();
    let platforms = PlatformRootfs::new(
        Platform::host(),
        prepared,
        Box::new(|platform| {
            let state_file = work_state.clone();
            let clusterfile = &target.clusterfile;
            Box::pin(async move {
                prepare_image(clusterfile, &state_file, options, platform)
                    .await
                    .map_err(|e| e.to_string())
            })
        }),
    );
    // A scale down runs against the cluster as it was, so that the leaving hosts' env and
    // hooks are known; the Clusterfile it saves is the new one.
    let runner_target = match (&applied, &plan.operation) {
        (Some(applied), Operation::ScaleDown) => applied,
        _ => &target,
    };
    run_plan(
        &plan,
        runner_target,
        Some(&platforms),
        &text,
        &plan_hosts(&plan, applied.as_ref(), &target),
        state_file,
        state,
        options,
    )
    .await
}

/// Removes the cluster from its hosts (`hosts` empty) or only `hosts` from it.
pub async fn delete(
    name: &str,
    clusterfile: Option<(Clusterfile, String)>,
    hosts: &[IpAddr],
    prune: bool,
    options: &Options<'_>,
) -> Result<Outcome, ApplyError> {
    let state_file = StateFile::new(&options.home, name);
    let state = state_file.load()?;
    // What may be on the hosts: the operation under way (a superset when it adds hosts),
    // else what was applied, else the Clusterfile given.
    let recorded = state
        .pending
        .as_ref()
        .map(|pending| pending.target.clone())
        .or_else(|| state.applied.clone());
    let (target, text) = match (recorded, clusterfile) {
        (Some(snapshot), _) => (
            parse_snapshot(&snapshot, &state_file, options)?,
            snapshot.clusterfile,
        ),
        (None, Some((clusterfile, text))) => {
            let prepared =
                prepare_image(&clusterfile, &state_file, options, Platform::host()).await?;
            (
                target(
                    clusterfile,
                    prepared.facts,
                    &state_file,
                    options,
                    Certificates::Recorded,
                )?,
                text,
            )
        }
        (None, None) => {
            return Err(ApplyError::Refused(format!(
                "nothing is recorded for cluster {name} on this machine; pass its Clusterfile with -f"
            )));
        }
    };
    if hosts.is_empty() {
        let plan = plan::delete_plan(&target, prune);
        let connect: Vec<&Host> = target.clusterfile.cluster.hosts.iter().collect();
        return run_plan(
            &plan, &target, None, &text, &connect, state_file, state, options,
        )
        .await;
    }
    let removed: Vec<&Host> = target
        .clusterfile
        .cluster
        .hosts
        .iter()
        .filter(|host| hosts.contains(&host.ip))
        .collect();
    if let Some(unknown) = hosts
        .iter()
        .find(|ip| !removed.iter().any(|host| host.ip == **ip))
    {
        return Err(ApplyError::Refused(format!(
            "{unknown} is not a host of cluster {name}"
        )));
    }
    check_removal(&target, &removed)?;
    let remaining_text = crate::clusterfile::edit::with_hosts_removed(&text, hosts)
        .map_err(ApplyError::Clusterfile)?;
    let plan = plan::scale_down_plan(&target, &removed);
    let mut connect = removed.clone();
    connect.push(target.clusterfile.cluster.master0());
    run_plan(
        &plan,
        &target,
        None,
        &remaining_text,
        &connect,
        state_file,
        state,
        options,
    )
    .await
}

/// Runs `command` on the hosts of cluster `name` with one of `roles` (all when empty); the
/// output or the error of each host, in host order.
pub async fn exec(
    name: &str,
    roles: &[String],
    command: &str,
    options: &Options<'_>,
) -> Result<Vec<(IpAddr, Result<crate::ssh::CommandOutput, String>)>, ApplyError> {
    let state_file = StateFile::new(&options.home, name);
    let state = state_file.load()?;
    let snapshot = state
        .applied
        .or(state.pending.map(|p| p.target))
        .ok_or_else(|| {
            ApplyError::Refused(format!("cluster {name} is not installed from this machine"))
        })?;
    let target = parse_snapshot(&snapshot, &state_file, options)?;
    let hosts: Vec<&Host> = target
        .clusterfile
        .cluster
        .hosts
        .iter()
        .filter(|host| roles.is_empty() || host.roles.iter().any(|role| roles.contains(role)))
        .collect();
    let connections = connect(&hosts, options).await?;
    let remote = crate::ssh::RemoteCommand::new(command.to_owned());
    let mut results = Vec::new();
    for (ip, connection) in &connections {
        results.push((
            *ip,
            connection.run(&remote).await.map_err(|e| e.to_string()),
        ));
    }
    Ok(results)
}

/// The plan that moves `applied` to `target`; `None` when they are the same.
fn decide(
    applied: &Target,
    target: &Target,
    options: &Options<'_>,
) -> Result<Option<Plan>, ApplyError> {
    let now = &applied.clusterfile.cluster;
    let wanted = &target.clusterfile.cluster;
    let added: Vec<IpAddr> = wanted
        .hosts
        .iter()
        .filter(|host| now.host(host.ip).is_none())
        .map(|host| host.ip)
        .collect();
    let removed: Vec<&Host> = now
        .hosts
        .iter()
        .filter(|host| wanted.host(host.ip).is_none())
        .collect();
    for host in &wanted.hosts {
        if let Some(before) = now.host(host.ip)
            && before.roles != host.roles
        {
            return Err(ApplyError::Refused(format!(
                "the roles of {} changed from {} to {}: remove the host in one apply and add it back in another",
                host.ip,
                before.roles.join("|"),
                host.roles.join("|")
            )));
        }
    }
    let image_changed = applied.image.content_key != target.image.content_key;
    let changes = usize::from(!added.is_empty())
        + usize::from(!removed.is_empty())
        + usize::from(image_changed);
    if changes > 1 {
        return Err(ApplyError::Refused(
            "the Clusterfile adds hosts, removes hosts or changes the image at once: make one of these changes per apply".to_owned(),
        ));
    }
    if !removed.is_empty() {
        check_removal(applied, &removed)?;
        confirm_removal(&removed, options)?;
        return Ok(Some(plan::scale_down_plan(applied, &removed)));
    }
    if !added.is_empty() {
        if now.registry != wanted.registry {
            return Err(ApplyError::Refused(
                "the Clusterfile adds hosts and changes spec.registry at once: the new hosts would use settings the running registry does not have; add them with the registry as installed, and change the registry with an upgrade (another image) or `sealer delete -a` and apply".to_owned(),
            ));
        }
        return Ok(Some(plan::scale_up_plan(target, &added)));
    }
    if image_changed {
        return Ok(Some(plan::upgrade_plan(target)));
    }
    Ok(None)
}

/// Refuses to remove master0 or every master.
fn check_removal(target: &Target, removed: &[&Host]) -> Result<(), ApplyError> {
    let cluster = &target.clusterfile.cluster;
    let master0 = cluster.master0().ip;
    if removed.iter().any(|host| host.ip == master0) {
        return Err(ApplyError::Refused(format!(
            "{master0} is master0 (where the cluster is managed from): it cannot be removed; use `sealer delete -a` to remove the cluster"
        )));
    }
    Ok(())
}

/// Asks before hosts are cleaned, unless `--force`.
fn confirm_removal(removed: &[&Host], options: &Options<'_>) -> Result<(), ApplyError> {
    if options.force || options.dry_run {
        return Ok(());
    }
    let list: Vec<String> = removed.iter().map(|host| host.ip.to_string()).collect();
    if !std::io::stdin().is_terminal() {
        return Err(ApplyError::Refused(format!(
            "the Clusterfile no longer lists {}: removing them cleans them; pass --force to go on",
            list.join(", ")
        )));
    }
    eprint!(
        "remove {} from the cluster and clean them? [y/N] ",
        list.join(", ")
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| ApplyError::Refused(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(ApplyError::Refused("nothing was changed".to_owned()))
    }
}

/// The hosts a plan needs connections to: every host it has a step on, and for a scale
/// down the removed ones (known from what was applied).
fn plan_hosts<'a>(plan: &Plan, applied: Option<&'a Target>, target: &'a Target) -> Vec<&'a Host> {
    let find = |ip: IpAddr| {
        target
            .clusterfile
            .cluster
            .host(ip)
            .or_else(|| applied.and_then(|a| a.clusterfile.cluster.host(ip)))
    };
    let mut hosts: Vec<&Host> = Vec::new();
    for step in plan.steps() {
        let node = match &step.action {
            plan::Action::LabelNode { node_host, .. }
            | plan::Action::DeleteNode { node_host, .. } => Some(*node_host),
            _ => None,
        };
        for ip in std::iter::once(step.host).chain(node) {
            if let Some(host) = find(ip)
                && !hosts.iter().any(|known| known.ip == ip)
            {
                hosts.push(host);
            }
        }
    }
    hosts
}

#[allow(clippy::too_many_arguments)]
async fn run_plan(
    plan: &Plan,
    target: &Target,
    rootfs: Option<&PlatformRootfs<'_>>,
    text: &str,
    hosts: &[&Host],
    state_file: StateFile,
    mut state: ClusterState,
    options: &Options<'_>,
) -> Result<Outcome, ApplyError> {
    if options.dry_run {
        options.report.line(&plan.to_string());
        return Ok(Outcome::Planned);
    }
    let connections = connect(hosts, options).await?;
    let snapshot = Snapshot {
        clusterfile: text.to_owned(),
        image: target.image.clone(),
    };
    // A failed run of the same operation resumes: its finished steps are kept.
    let resumed = state
        .pending
        .take()
        .filter(|pending| pending.operation == plan.operation);
    let (done, join) = resumed
        .map(|pending| (pending.done, pending.join))
        .unwrap_or_default();
    if !done.is_empty() {
        options.report.line(&format!(
            "resuming the {} of cluster {}: {} steps were done before",
            plan.operation.describe(),
            plan.cluster,
            done.len()
        ));
    }
    state.pending = Some(Pending {
        operation: plan.operation.clone(),
        target: snapshot.clone(),
        done,
        join,
        failure: None,
    });
    state_file.save(&state)?;
    let state = Mutex::new(state);
    let runner = Runner {
        target,
        rootfs,
        clusterfile_text: text,
        connections: &connections,
        state_file: &state_file,
        state: &state,
        parallelism: options.parallelism,
        sealer_binary: crate::builtin_registry::SealerBinary::new(options.sealer_binary.clone()),
        report: options.report,
    };
    let result = runner.execute(plan).await;
    let mut state = state
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Err(error) = result {
        if let Some(pending) = state.pending.as_mut() {
            pending.failure = Some(error.to_string());
        }
        state_file.save(&state)?;
        return Err(ApplyError::Run {
            operation: plan.operation.describe(),
            error,
        });
    }
    if plan.operation == Operation::Delete {
        state_file.remove()?;
    } else {
        state.pending = None;
        state.applied = Some(snapshot);
        state_file.save(&state)?;
    }
    Ok(Outcome::Done(plan.operation.clone()))
}

/// The image prepared for `platform` in the cluster's work directory on this machine (one
/// per platform).
async fn prepare_image(
    clusterfile: &Clusterfile,
    state_file: &StateFile,
    options: &Options<'_>,
    platform: Platform,
) -> Result<PreparedImage, ApplyError> {
    let work_dir = state_file
        .dir()
        .join(format!("work-{}", platform.to_string().replace('/', "-")));
    if work_dir.exists() {
        std::fs::remove_dir_all(&work_dir).map_err(|source| prepare::PrepareError::File {
            path: work_dir.clone(),
            source,
        })?;
    }
    Ok(prepare::prepare(
        clusterfile,
        PrepareOptions {
            store: options.store,
            client: options.client,
            pull: options.pull,
            platform,
            work_dir,
        },
    )
    .await?)
}

/// A Clusterfile's documents as values: the same for texts that differ only in layout and
/// comments.
fn documents_of(text: &str) -> Option<Vec<gotemplate::Value>> {
    kyaml::parse_documents(text, &kyaml::Limits::default())
        .ok()?
        .iter()
        .map(|document| document.root.to_value().ok())
        .collect()
}

/// The cluster as recorded in `snapshot`.
fn parse_snapshot(
    snapshot: &Snapshot,
    state_file: &StateFile,
    options: &Options<'_>,
) -> Result<Target, ApplyError> {
    let clusterfile = Clusterfile::parse(&snapshot.clusterfile, Path::new("recorded Clusterfile"))
        .map_err(|e| ApplyError::Clusterfile(e.to_string()))?;
    target(
        clusterfile,
        snapshot.image.clone(),
        state_file,
        options,
        Certificates::Recorded,
    )
}

/// Where the registry certificates (and the htpasswd line) of a [`Target`] come from.
#[derive(Clone, Copy)]
enum Certificates {
    /// The cluster being applied: made when missing, issued again for changed names, stored
    /// unless this is a dry run.
    Current,
    /// A recorded cluster (the applied one, a delete, exec): as stored; made in memory only
    /// when none are (their paths still tell what a delete removes).
    Recorded,
}

/// The cluster as `clusterfile` and `image` describe it, with the registry's certificates
/// when it serves TLS and its credentials when it has some (kept in the cluster's state
/// directory).
fn target(
    clusterfile: Clusterfile,
    image: ImageFacts,
    state_file: &StateFile,
    options: &Options<'_>,
    certificates: Certificates,
) -> Result<Target, ApplyError> {
    let persist = matches!(certificates, Certificates::Current) && !options.dry_run;
    let registry_auth = match &clusterfile.cluster.registry.local {
        Some(LocalRegistry {
            endpoint:
                endpoint @ RegistryEndpoint {
                    username: Some(username),
                    password: Some(password),
                    ..
                },
            ..
        }) => Some(RegistryAuth::ensure(
            state_file.dir(),
            &endpoint.url(),
            username,
            password,
            persist,
        )?),
        _ => None,
    };
    let mut target = Target {
        clusterfile,
        image,
        registry_tls: None,
        registry_auth,
    };
    if target.registry_serves_tls() {
        let names = target.registry_certificate_names();
        let stored = match certificates {
            Certificates::Current => None,
            Certificates::Recorded => RegistryTls::load(state_file.dir())?,
        };
        target.registry_tls = Some(match stored {
            Some(tls) => tls,
            None => RegistryTls::ensure(state_file.dir(), &names, persist)?,
        });
    }
    Ok(target)
}

/// Connects to every host at the same time (bounded); all errors are reported together.
async fn connect(
    hosts: &[&Host],
    options: &Options<'_>,
) -> Result<BTreeMap<IpAddr, Connection>, ApplyError> {
    let connect_options = ConnectOptions {
        known_hosts: options.known_hosts.clone(),
        host_key_policy: if options.accept_new_host_keys {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        ..ConnectOptions::default()
    };
    let results: Vec<(IpAddr, Result<Connection, String>)> = stream::iter(hosts.iter())
        .map(|host| {
            let target = ssh_target(host);
            let connect_options = &connect_options;
            async move {
                (
                    host.ip,
                    Connection::connect(&target, connect_options)
                        .await
                        .map_err(|e| e.to_string()),
                )
            }
        })
        .buffer_unordered(options.parallelism.max(1))
        .collect()
        .await;
    let mut connections = BTreeMap::new();
    let mut errors = Vec::new();
    for (ip, result) in results {
        match result {
            Ok(connection) => {
                connections.insert(ip, connection);
            }
            Err(error) => errors.push(format!("  {ip}: {error}")),
        }
    }
    if errors.is_empty() {
        Ok(connections)
    } else {
        errors.sort();
        Err(ApplyError::Connect(errors.join("\n")))
    }
}

/// How to log in to `host`.
fn ssh_target(host: &Host) -> SshTarget {
    let ssh = &host.ssh;
    let auth = match (&ssh.password, &ssh.key) {
        (_, Some(key)) => SshAuth::KeyFile {
            path: key.clone(),
            passphrase: ssh.key_passphrase.clone(),
        },
        (Some(password), None) => SshAuth::Password(password.clone()),
        (None, None) => SshAuth::Agent { socket: None },
    };
    SshTarget::new(host.ip, ssh.user.clone(), auth).with_port(ssh.port)
}
