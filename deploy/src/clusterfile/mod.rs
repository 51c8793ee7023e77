//! The Clusterfile: its documents read with positions and validated.
//!
//! [`Clusterfile::parse`] reads a multi-document YAML stream. Documents are told apart by
//! `kind` (the `apiVersion` only picks between the current and the older formats):
//! - `Cluster` (exactly one): `sealer.io/v2` with `spec.hosts`, or the older
//!   `sealer.aliyun.com/v1alpha1` / `sealer.cloud/v2` layouts (`spec.masters.ipList`,
//!   `spec.nodes.ipList`, `spec.network`, `spec.certSANS`, which become host groups with the
//!   roles `master`/`node` and the env `PodCIDR`, `SvcCIDR`, `CertSANs`);
//! - `Config`, `Plugin` (as [`Hook`]s), `Application` (at most one);
//! - the kubeadm kinds, kept as YAML trees for the kubeadm config merge;
//! - anything else is ignored with a warning.
//!
//! Every problem is collected (not only the first) and printed one per line as
//! `file:line:column: document N (Kind): field.path: message`.

mod application;
mod cluster;
mod config;
mod document;
pub mod edit;
mod env;
mod error;
mod host;
mod plugin;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use kyaml::Node;

pub use application::{AppConfig, AppFile, Application};
pub use cluster::{
    Cluster, DEFAULT_DATA_ROOT, DEFAULT_REGISTRY_DOMAIN, DEFAULT_REGISTRY_PORT, HostAlias,
    LocalRegistry, Registry, RegistryEndpoint,
};
pub use config::{Config, Processor, Strategy};
pub use document::Location;
pub use env::RESERVED_KEYS;
pub use error::{ClusterfileError, Problem, Problems};
pub use host::{Host, MASTER_ROLE, SshSpec, Taint, TaintEffect};
pub use plugin::{
    Hook, HostSelector, IpRange, LabelRequirement, Phase, PluginFormat, hooks_in_phase,
    plugins_from_dir, plugins_from_text,
};

pub(crate) use config::merge_documents;
use document::{Reader, split_documents};

/// The kubeadm and kubelet kinds passed through to the kubeadm config merge.
pub const KUBEADM_KINDS: [&str; 5] = [
    "InitConfiguration",
    "ClusterConfiguration",
    "JoinConfiguration",
    "KubeletConfiguration",
    "KubeProxyConfiguration",
];

/// A kubeadm, kubelet or kube-proxy configuration document, kept as written.
#[derive(Clone, Debug, PartialEq)]
pub struct KubeadmDocument {
    /// One of [`KUBEADM_KINDS`].
    pub kind: String,
    /// The document's `apiVersion`.
    pub api_version: String,
    /// The whole document (`apiVersion`, `kind` and the fields), with positions.
    pub root: Node,
    /// Where the document starts.
    pub location: Location,
}

/// A parsed and validated Clusterfile.
#[derive(Clone, PartialEq)]
pub struct Clusterfile {
    /// The file it was read from (as given to [`Clusterfile::parse`]).
    pub source: PathBuf,
    /// The Cluster document.
    pub cluster: Cluster,
    /// The Config documents, in order.
    pub configs: Vec<Config>,
    /// The Plugin documents as hooks, in order.
    pub hooks: Vec<Hook>,
    /// The Application document, if any.
    pub application: Option<Application>,
    /// The kubeadm documents, in order (later ones win in the merge).
    pub kubeadm: Vec<KubeadmDocument>,
    /// Things ignored or worth a look (unknown kinds and fields, reserved env keys).
    pub warnings: Vec<Problem>,
    text: String,
}

impl fmt::Debug for Clusterfile {
    /// Everything but the text, which may hold passwords.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Clusterfile")
            .field("source", &self.source)
            .field("cluster", &self.cluster)
            .field("configs", &self.configs)
            .field("hooks", &self.hooks)
            .field("application", &self.application)
            .field("kubeadm", &self.kubeadm)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl Clusterfile {
    /// Reads and validates a Clusterfile; `source` names it in messages. All problems are
    /// returned together in [`ClusterfileError::Invalid`].
    pub fn parse(text: &str, source: &Path) -> Result<Clusterfile, ClusterfileError> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let documents = split_documents(text, source, &mut problems, &mut warnings);
        let mut clusters: Vec<(Option<Cluster>, &Node, usize)> = Vec::new();
        let mut configs = Vec::new();
        let mut hooks = Vec::new();
        let mut applications: Vec<(Application, usize)> = Vec::new();
        let mut kubeadm = Vec::new();
        for document in &documents {
            let mut reader = Reader::new(source, document, &mut problems, &mut warnings);
            match document.kind.as_str() {
                "Cluster" => {
                    let cluster =
                        cluster::read_cluster(&mut reader, &document.root, &document.api_version);
                    clusters.push((cluster, &document.root, document.index));
                }
                "Config" => configs.extend(config::read_config(&mut reader, &document.root)),
                "Plugin" => hooks.extend(plugin::read_plugin(
                    &mut reader,
                    &document.root,
                    &document.api_version,
                )),
                "Application" => {
                    if let Some(application) =
                        application::read_application(&mut reader, &document.root)
                    {
                        applications.push((application, document.index));
                    }
                }
                kind if KUBEADM_KINDS.contains(&kind) => kubeadm.push(KubeadmDocument {
                    kind: kind.to_owned(),
                    api_version: document.api_version.clone(),
                    root: document.root.clone(),
                    location: reader.location(&document.root),
                }),
                kind => reader.warning(
                    &document.root,
                    "kind",
                    format!("kind {kind:?} is not one sealer reads: ignored"),
                ),
            }
        }
        let mut cluster = None;
        match clusters.as_slice() {
            [] if problems.is_empty() => problems.push(Problem {
                source: source.to_path_buf(),
                line: 0,
                column: 0,
                document: None,
                field: String::new(),
                message: "no Cluster document: add one (apiVersion: sealer.io/v2, kind: Cluster)"
                    .to_owned(),
            }),
            [] => {}
            [(only, _, _)] => cluster.clone_from(only),
            [(_, _, first), rest @ ..] => {
                for (_, root, index) in rest {
                    let mut reader = Reader {
                        source,
                        index: *index,
                        kind: "Cluster",
                        problems: &mut problems,
                        warnings: &mut warnings,
                    };
                    reader.problem(
                        root,
                        "",
                        format!(
                            "a second Cluster document (the first is document {first}): keep one"
                        ),
                    );
                }
            }
        }
        if let [(_, first), rest @ ..] = applications.as_slice() {
            for (application, index) in rest {
                problems.push(Problem {
                    source: source.to_path_buf(),
                    line: application.location.line,
                    column: application.location.column,
                    document: Some((*index, "Application".to_owned())),
                    field: String::new(),
                    message: format!(
                        "a second Application document (the first is document {first}): keep one"
                    ),
                });
            }
        }
        problems.sort_by_key(|problem| (problem.line, problem.column));
        match cluster {
            Some(cluster) if problems.is_empty() => Ok(Clusterfile {
                source: source.to_path_buf(),
                cluster,
                configs,
                hooks,
                application: applications
                    .into_iter()
                    .next()
                    .map(|(application, _)| application),
                kubeadm,
                warnings,
                text: text.to_owned(),
            }),
            _ => Err(ClusterfileError::Invalid(Problems(problems))),
        }
    }

    /// Reads and parses the Clusterfile at `path`.
    pub fn read(path: &Path) -> Result<Clusterfile, ClusterfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClusterfileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Clusterfile::parse(&text, path)
    }

    /// The text as read: what `apply` saves (comments and order kept).
    pub fn to_yaml(&self) -> &str {
        &self.text
    }

    /// Writes every Config document into `rootfs` (a mounted copy of the image's rootfs),
    /// in order; returns the files written.
    pub fn apply_configs(&self, rootfs: &Path) -> Result<Vec<PathBuf>, ClusterfileError> {
        self.configs
            .iter()
            .map(|config| config.apply(rootfs))
            .collect()
    }

    /// The commands to run on master0 once the cluster is up (see sealer-behaviour §4.4):
    /// the Cluster's `spec.cmd`, else the Application's `cmds`, else the image's CMDS/CMD
    /// (`image_cmds`), else each app to launch (`spec.appNames`, else the Application's
    /// `launchApps`, else the image's LAUNCH list `image_launch_apps`) with its Application
    /// `launch.cmds` or its default command from `image_apps` (app name to commands). An app
    /// name the image does not have is an error.
    pub fn launch_commands(
        &self,
        image_cmds: &[String],
        image_launch_apps: &[String],
        image_apps: &BTreeMap<String, Vec<String>>,
    ) -> Result<Vec<String>, ClusterfileError> {
        application::launch_commands(
            &self.cluster,
            self.application.as_ref(),
            image_cmds,
            image_launch_apps,
            image_apps,
        )
    }
}

#[cfg(test)]
mod tests;
