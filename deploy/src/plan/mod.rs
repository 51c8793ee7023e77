//! What an operation does, as data: stages of steps, each step one action on one host.
//!
//! A plan is made without touching a host (`--dry-run` prints it), then carried out by
//! [`crate::run`]. Every step has a fingerprint (its id and action); a run that failed records
//! the fingerprints of the steps it finished, and the next run of the same operation skips
//! them, so it resumes at the failed step (or at the first step whose content changed).

mod delete;
pub(crate) mod install;
mod print;
mod scale;
pub mod shell;

use std::net::IpAddr;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

pub use delete::{delete_plan, scale_down_plan};
pub use install::{install_plan, upgrade_plan};
pub use scale::scale_up_plan;

/// The kind of operation a plan carries out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Installs the cluster on every host.
    Install,
    /// Adds hosts to an installed cluster.
    ScaleUp,
    /// Removes hosts from an installed cluster.
    ScaleDown,
    /// Moves an installed cluster to another image.
    Upgrade,
    /// Removes the cluster from every host.
    Delete,
}

impl Operation {
    /// The word used in messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Operation::Install => "install",
            Operation::ScaleUp => "scale up",
            Operation::ScaleDown => "scale down",
            Operation::Upgrade => "upgrade",
            Operation::Delete => "delete",
        }
    }
}

/// An operation's stages, run one after the other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// What the plan does.
    pub operation: Operation,
    /// The cluster's name.
    pub cluster: String,
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

impl Plan {
    /// Every step, in order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.stages.iter().flat_map(|stage| &stage.steps)
    }

    /// Adds a stage unless it has no step.
    fn push(&mut self, stage: Stage) {
        if !stage.steps.is_empty() {
            self.stages.push(stage);
        }
    }
}

/// Steps that belong together (one phase of the original's sequence).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    /// The phase's name, as the original's logs and hooks call it.
    pub name: String,
    /// Whether the steps may run at the same time (on different hosts).
    pub parallel: bool,
    /// The steps.
    pub steps: Vec<Step>,
}

impl Stage {
    /// A stage whose steps run one after the other.
    fn sequential(name: &str, steps: Vec<Step>) -> Self {
        Stage {
            name: name.to_owned(),
            parallel: false,
            steps,
        }
    }

    /// A stage whose steps run on their hosts at the same time.
    fn parallel(name: &str, steps: Vec<Step>) -> Self {
        Stage {
            name: name.to_owned(),
            parallel: true,
            steps,
        }
    }
}

/// One action on one host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Stable name of the step within its operation, e.g. `init-kube/10.0.0.2`.
    pub id: String,
    /// The host it runs on.
    pub host: IpAddr,
    /// What it does.
    pub action: Action,
}

impl Step {
    pub(crate) fn new(id: impl Into<String>, host: IpAddr, action: Action) -> Self {
        Step {
            id: format!("{}/{host}", id.into()),
            host,
            action,
        }
    }

    /// Identifies the step and its content: a step whose command changed has another
    /// fingerprint, so a resumed run does it again.
    pub fn fingerprint(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

/// The certificate and credentials a registry server step uses, by digest: the step runs
/// again when they change (a server reads them when it starts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryFiles {
    /// SHA-256 of the server certificate, when it serves TLS.
    pub certificate_sha256: Option<String>,
    /// SHA-256 of the (salted) htpasswd line, when it requires credentials.
    pub htpasswd_sha256: Option<String>,
}

/// Which environment a script runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    /// The host's environment: image env, cluster env, host env, reserved keys and `HostIP`.
    Host,
    /// Only a default `PATH` (launch commands, as the original runs them).
    Bare,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Action {
    /// Streams the prepared rootfs to the host (skipped when the host already holds it).
    Distribute {
        /// Whether the image's `registry/` directory goes too (registry hosts only).
        with_registry: bool,
        /// The prepared image's content key (of this machine's platform): a resumed run
        /// distributes again when the image's content changed since the failure.
        content_key: String,
    },
    /// Runs a shell script on the host, from the host's rootfs directory.
    Script {
        /// What the script is, for messages (`init-kube.sh`, `plugin pre-init: check`).
        title: String,
        /// The script.
        script: String,
        /// Its environment.
        environment: Environment,
    },
    /// Writes the merged kubeadm configuration and runs `kubeadm init`; remembers the join
    /// token, discovery hash and certificate key it prints.
    KubeadmInit {
        /// The kubeadm configuration (YAML, several documents).
        config: String,
        /// `--node-name` (when `UseIPasNodeName=true`).
        node_name: Option<String>,
    },
    /// Asks kubeadm on master0 for a fresh join token and certificate key (those of
    /// `kubeadm init` expire), for joins after the install.
    KubeadmRefreshJoin,
    /// Joins the host with what `kubeadm init` printed.
    KubeadmJoin {
        /// A control-plane join (masters) or a worker join.
        control_plane: bool,
        /// `--node-name` (when `UseIPasNodeName=true`).
        node_name: Option<String>,
    },
    /// Writes the registry's server certificate and key into the host's rootfs
    /// (`certs/<domain>.crt|.key`), where the registry started next reads them.
    InstallRegistryCertificate {
        /// The registry's domain (names the files).
        domain: String,
        /// SHA-256 of the certificate: a reissued certificate is a changed step.
        certificate_sha256: String,
    },
    /// Writes the htpasswd file of the registry's credentials on the host
    /// ([`crate::target::Target::registry_htpasswd_path`]), where the registry started next
    /// reads it.
    InstallRegistryHtpasswd {
        /// SHA-256 of the (salted) htpasswd line: changed credentials are a changed step.
        htpasswd_sha256: String,
    },
    /// Writes the files of the host's registry clients that hold the registry's credentials
    /// (see [`crate::target::Target::registry_client_files`]), from stdin; a file sealer
    /// did not write is kept.
    InstallRegistryLogin {
        /// The files.
        paths: Vec<String>,
        /// The registry's URL they name (its scheme changes with TLS).
        endpoint: String,
        /// SHA-256 of the (salted) htpasswd line they go with.
        htpasswd_sha256: String,
    },
    /// Merges the registry into the host's docker `daemon.json` (see
    /// [`crate::docker_daemon`]).
    ConfigureDockerDaemon {
        /// What is merged.
        entries: crate::docker_daemon::RegistryEntries,
    },
    /// Starts the built-in registry (`sealer registry serve`) as a service on the host.
    StartBuiltinRegistry {
        /// Port it listens on.
        port: u16,
        /// The certificate and credentials installed before, which it serves and checks.
        files: RegistryFiles,
    },
    /// Applies labels and taints to the host's node, through `kubectl` on master0.
    LabelNode {
        /// The node's host (its node name is read from it).
        node_host: IpAddr,
        /// Node name when known from the plan (`UseIPasNodeName=true`).
        node_name: Option<String>,
        /// `key=value` labels (role labels included).
        labels: Vec<String>,
        /// Taints in kubectl's syntax (`key=value:Effect`, a trailing `-` removes).
        taints: Vec<String>,
    },
    /// Deletes the host's node through `kubectl` on master0.
    DeleteNode {
        /// The node's host.
        node_host: IpAddr,
        /// Node name when known from the plan.
        node_name: Option<String>,
    },
    /// Saves the Clusterfile on the host and in the cluster (ConfigMap
    /// `kube-system/sealer-clusterfile`).
    SaveClusterfile,
}

impl Action {
    /// One line saying what the step does, for progress and `--dry-run`.
    pub fn summary(&self) -> String {
        match self {
            Action::Distribute { with_registry, .. } => {
                if *with_registry {
                    "distribute the rootfs (with registry/)".to_owned()
                } else {
                    "distribute the rootfs".to_owned()
                }
            }
            Action::Script { title, .. } => title.clone(),
            Action::KubeadmInit { .. } => "kubeadm init".to_owned(),
            Action::KubeadmRefreshJoin => "kubeadm token create".to_owned(),
            Action::KubeadmJoin { control_plane, .. } => {
                if *control_plane {
                    "kubeadm join --control-plane".to_owned()
                } else {
                    "kubeadm join".to_owned()
                }
            }
            Action::InstallRegistryCertificate { domain, .. } => {
                format!("install the TLS certificate of {domain}")
            }
            Action::ConfigureDockerDaemon { entries } => {
                format!(
                    "add the registry {} to docker's daemon.json",
                    entries.mirror
                )
            }
            Action::InstallRegistryHtpasswd { .. } => {
                "install the registry's htpasswd file".to_owned()
            }
            Action::InstallRegistryLogin { paths, .. } => {
                format!("write the registry's credentials to {}", paths.join(", "))
            }
            Action::StartBuiltinRegistry { port, files } => {
                let protocol = if files.certificate_sha256.is_some() {
                    "HTTPS"
                } else {
                    "plain HTTP"
                };
                let auth = if files.htpasswd_sha256.is_some() {
                    ", with authentication"
                } else {
                    ""
                };
                format!("start the built-in registry on port {port} ({protocol}{auth})")
            }
            Action::LabelNode {
                node_host,
                labels,
                taints,
                ..
            } => format!(
                "label and taint the node of {node_host} ({} labels, {} taints)",
                labels.len(),
                taints.len()
            ),
            Action::DeleteNode { node_host, .. } => format!("delete the node of {node_host}"),
            Action::SaveClusterfile => "save the Clusterfile in the cluster".to_owned(),
        }
    }
}
