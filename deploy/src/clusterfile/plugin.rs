//! Plugins (`kind: Plugin`) as hooks: SHELL scripts run at install phases on selected hosts.
//!
//! Two formats are read into one [`Hook`]:
//! - `sealer.io/v1`: `spec.action` phases joined by `|` (`pre-init-host|post-install`),
//!   `spec.scope` roles joined by `|`. An empty scope selects every host (sealer's code
//!   selects none, its docs say all: we follow the docs).
//! - `sealer.aliyun.com/v1alpha1` (sealer ≤ v0.8): actions `PreInit`, `PostInstall`, ...,
//!   and `spec.on`: empty for all hosts, `master`, `node`, `master0`, a comma list of IPs
//!   and `a-b` ranges, or a label selector `k=v[,k2!=v2]` matched against the hosts' labels
//!   and role labels. As in v0.8, these hooks run on every selected host in every phase.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kyaml::Node;

use super::cluster::Cluster;
use super::document::{Location, Reader, get_as_written, split_documents};
use super::error::{ClusterfileError, Problems};
use super::host::Host;
use super::validate::check_role;

/// When a hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// `pre-install`: once on master0, before hosts are initialised.
    PreInstall,
    /// `post-install`: once on master0, after the cluster is up.
    PostInstall,
    /// `pre-uninstall`: once on master0, before `delete -a`.
    PreUninstall,
    /// `post-uninstall`: once on master0, after `delete -a`.
    PostUninstall,
    /// `pre-scaleup`: once on master0, before hosts join.
    PreScaleUp,
    /// `post-scaleup`: once on master0, after hosts joined.
    PostScaleUp,
    /// `upgrade`: once on master0, when the image changes.
    Upgrade,
    /// `rollback`: once on master0, on rollback.
    Rollback,
    /// `pre-init-host`: on each selected host, before the container runtime.
    PreInitHost,
    /// `post-init-host`: on each selected host, after it joined.
    PostInitHost,
    /// `pre-clean-host`: on each selected host, before it is reset.
    PreCleanHost,
    /// `post-clean-host`: on each selected host, after it was reset.
    PostCleanHost,
    /// `upgrade-host`: on each selected host, when the image changes.
    UpgradeHost,
}

impl Phase {
    /// Every phase.
    pub const ALL: [Phase; 13] = [
        Phase::PreInstall,
        Phase::PostInstall,
        Phase::PreUninstall,
        Phase::PostUninstall,
        Phase::PreScaleUp,
        Phase::PostScaleUp,
        Phase::Upgrade,
        Phase::Rollback,
        Phase::PreInitHost,
        Phase::PostInitHost,
        Phase::PreCleanHost,
        Phase::PostCleanHost,
        Phase::UpgradeHost,
    ];

    /// The phase's name in `spec.action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::PreInstall => "pre-install",
            Phase::PostInstall => "post-install",
            Phase::PreUninstall => "pre-uninstall",
            Phase::PostUninstall => "post-uninstall",
            Phase::PreScaleUp => "pre-scaleup",
            Phase::PostScaleUp => "post-scaleup",
            Phase::Upgrade => "upgrade",
            Phase::Rollback => "rollback",
            Phase::PreInitHost => "pre-init-host",
            Phase::PostInitHost => "post-init-host",
            Phase::PreCleanHost => "pre-clean-host",
            Phase::PostCleanHost => "post-clean-host",
            Phase::UpgradeHost => "upgrade-host",
        }
    }

    /// The phase named `name` (as `spec.action` writes it).
    pub fn parse(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|phase| phase.as_str() == name)
    }

    /// Whether the phase runs once on master0 (else on each selected host).
    pub fn is_cluster_phase(self) -> bool {
        !matches!(
            self,
            Phase::PreInitHost
                | Phase::PostInitHost
                | Phase::PreCleanHost
                | Phase::PostCleanHost
                | Phase::UpgradeHost
        )
    }

    /// Whether a hook of this phase is skipped when the rootfs directory is gone (the clean
    /// and uninstall phases, which also run after a failed or partial install).
    pub fn skips_without_rootfs(self) -> bool {
        matches!(
            self,
            Phase::PreUninstall | Phase::PostUninstall | Phase::PreCleanHost | Phase::PostCleanHost
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// An inclusive range of addresses of one family (a single IP is a range of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    /// First address.
    pub start: IpAddr,
    /// Last address.
    pub end: IpAddr,
}

impl IpRange {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let number = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        self.start.is_ipv4() == ip.is_ipv4()
            && number(self.start) <= number(ip)
            && number(ip) <= number(self.end)
    }
}

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelRequirement {
    /// Label key.
    pub key: String,
    /// Label value (empty matches a label with an empty value).
    pub value: String,
    /// `!=` rather than `=`.
    pub negated: bool,
}

/// Which hosts a hook runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostSelector {
    /// Every host.
    All,
    /// Hosts with any of these roles.
    Roles(Vec<String>),
    /// master0 only (`on: master0`).
    Master0,
    /// Hosts whose IP is in one of the ranges.
    Ips(Vec<IpRange>),
    /// Hosts whose labels (plus `node-role.kubernetes.io/<role>=""`) match every requirement.
    Labels(Vec<LabelRequirement>),
}

/// Which format a plugin was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginFormat {
    /// `sealer.io/v1`: cluster phases run once on master0.
    Current,
    /// `sealer.aliyun.com/v1alpha1`: every phase runs on each selected host.
    Legacy,
}

/// A SHELL hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// `metadata.name`: hooks of a phase run in the order of their names.
    pub name: String,
    /// The phases it runs in.
    pub phases: Vec<Phase>,
    /// The hosts it runs on.
    pub selector: HostSelector,
    /// The script, run as `cd <rootfs> && <script>` with the host's env (one trailing
    /// newline removed).
    pub script: String,
    /// The format it was written in.
    pub format: PluginFormat,
    /// Where the document is (`file:line:column`).
    pub source: Location,
}

impl Hook {
    /// Whether the selector picks `host` of `cluster`.
    pub fn selects(&self, host: &Host, cluster: &Cluster) -> bool {
        match &self.selector {
            HostSelector::All => true,
            HostSelector::Roles(roles) => roles.iter().any(|role| host.has_role(role)),
            HostSelector::Master0 => cluster.master0().ip == host.ip,
            HostSelector::Ips(ranges) => ranges.iter().any(|range| range.contains(host.ip)),
            HostSelector::Labels(requirements) => {
                let labels = host.selector_labels();
                requirements.iter().all(|requirement| {
                    let matches = labels.get(&requirement.key) == Some(&requirement.value);
                    matches != requirement.negated
                })
            }
        }
    }

    /// The hosts the hook runs on in `phase`, among `candidates` (the hosts of the current
    /// operation): master0 alone for a cluster phase of a current-format hook, else every
    /// selected candidate in the Clusterfile's order.
    pub fn targets<'c>(
        &self,
        phase: Phase,
        cluster: &'c Cluster,
        candidates: &[IpAddr],
    ) -> Vec<&'c Host> {
        if phase.is_cluster_phase() && self.format == PluginFormat::Current {
            return vec![cluster.master0()];
        }
        cluster
            .hosts
            .iter()
            .filter(|host| candidates.contains(&host.ip) && self.selects(host, cluster))
            .collect()
    }
}

/// The hooks of `phase`, ordered by name (hooks with the same name keep their order).
pub fn hooks_in_phase(hooks: &[Hook], phase: Phase) -> Vec<&Hook> {
    let mut selected: Vec<&Hook> = hooks
        .iter()
        .filter(|hook| hook.phases.contains(&phase))
        .collect();
    selected.sort_by(|left, right| left.name.cmp(&right.name));
    selected
}

/// The hooks of the `Plugin` documents in `<dir>/*.yaml|*.yml` (an image's `plugins/`), files
/// in name order; other kinds are ignored. A missing directory has none.
pub fn plugins_from_dir(dir: &Path) -> Result<Vec<Hook>, ClusterfileError> {
    let read_error = |source| ClusterfileError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(read_error(error)),
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(read_error)?.path();
        let yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut hooks = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| ClusterfileError::Read {
            path: file.clone(),
            source,
        })?;
        hooks.extend(plugins_from_text(&text, &file)?);
    }
    Ok(hooks)
}

/// The hooks of the `Plugin` documents in `text`, one file of an image's `plugins/` named
/// `source` in messages; other kinds are ignored.
pub fn plugins_from_text(text: &str, source: &Path) -> Result<Vec<Hook>, ClusterfileError> {
    let mut hooks = Vec::new();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for document in split_documents(text, source, &mut problems, &mut warnings) {
        if document.kind != "Plugin" {
            continue;
        }
        let mut reader = Reader::new(source, &document, &mut problems, &mut warnings);
        if let Some(hook) = read_plugin(&mut reader, &document.root, &document.api_version) {
            hooks.push(hook);
        }
    }
    if problems.is_empty() {
        Ok(hooks)
    } else {
        Err(ClusterfileError::Invalid(Problems(problems)))
    }
}

const LEGACY_API_VERSIONS: &[&str] = &["sealer.aliyun.com/v1alpha1", "zlink.aliyun.com/v1alpha1"];

/// Reads a Plugin document; `None` when it has problems (they are in the reader).
pub(crate) fn read_plugin(reader: &mut Reader<'_>, root: &Node, api_version: &str) -> Option<Hook> {
    let before = reader.problems.len();
    let metadata = root.get("metadata").unwrap_or(root);
    let name = reader.required_string(
        metadata,
        "name",
        "metadata",
        "name the plugin (hooks run in name order)",
    );
    let Some(spec) = root.get("spec") else {
        reader.problem(
            root,
            "spec",
            "missing: give spec.type, spec.action and spec.data",
        );
        return None;
    };
    reader.mapping(Some(spec), "spec");
    let legacy = LEGACY_API_VERSIONS.contains(&api_version);
    let known: &[&str] = if legacy {
        &["type", "action", "on", "data"]
    } else {
        &["type", "action", "scope", "data"]
    };
    reader.check_keys(spec, "spec", known);
    let plugin_type = reader.required_string(spec, "type", "spec", "write type: SHELL");
    if let Some(plugin_type) = &plugin_type
        && plugin_type != "SHELL"
    {
        let advice = match plugin_type.as_str() {
            "LABEL" | "TAINT" if legacy => {
                ": set spec.hosts[].labels or spec.hosts[].taints in the Cluster instead"
            }
            "HOSTNAME" if legacy => {
                ": set the hostnames in a SHELL plugin (hostnamectl set-hostname)"
            }
            _ => ": only SHELL plugins are supported",
        };
        reader.problem(
            spec.get("type").unwrap_or(spec),
            "spec.type",
            format!("plugin type {plugin_type:?} is not supported{advice}"),
        );
    }
    let script = reader
        .required_string(spec, "data", "spec", "give the shell script to run")
        .map(|data| data.strip_suffix('\n').unwrap_or(&data).to_owned());
    let action = reader.required_string(
        spec,
        "action",
        "spec",
        "give the phases, e.g. action: pre-init-host|post-install",
    );
    let action_node = spec.get("action").unwrap_or(spec);
    let mut phases: Vec<Phase> = Vec::new();
    for name in action
        .iter()
        .flat_map(|action| action.split('|'))
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let phase = if legacy {
            legacy_phase(name)
        } else {
            Phase::parse(name).ok_or_else(|| {
                format!(
                    "unknown phase {name:?}: use one of {}",
                    Phase::ALL.map(Phase::as_str).join(", ")
                )
            })
        };
        match phase {
            Ok(phase) if !phases.contains(&phase) => phases.push(phase),
            Ok(_) => {}
            Err(message) => reader.problem(action_node, "spec.action", message),
        }
    }
    let selector = if legacy {
        let on_node = get_as_written(spec, "on");
        let on = reader.string(on_node, "spec.on").unwrap_or_default();
        parse_on(&on)
            .map_err(|message| reader.problem(on_node.unwrap_or(spec), "spec.on", message))
            .ok()
    } else {
        let scope = reader
            .string(spec.get("scope"), "spec.scope")
            .unwrap_or_default();
        let roles: Vec<String> = scope
            .split('|')
            .map(str::trim)
            .filter(|role| !role.is_empty())
            .map(str::to_owned)
            .collect();
        for role in &roles {
            if let Err(message) = check_role(role) {
                reader.problem(spec.get("scope").unwrap_or(spec), "spec.scope", message);
            }
        }
        Some(if roles.is_empty() {
            HostSelector::All
        } else {
            HostSelector::Roles(roles)
        })
    };
    if reader.problems.len() > before {
        return None;
    }
    Some(Hook {
        name: name?,
        phases,
        selector: selector?,
        script: script?,
        format: if legacy {
            PluginFormat::Legacy
        } else {
            PluginFormat::Current
        },
        source: reader.location(root),
    })
}

/// The phase a v0.8 action stands for.
fn legacy_phase(action: &str) -> Result<Phase, String> {
    Ok(match action {
        "Originally" => Phase::PreInstall,
        "PreInit" => Phase::PreInitHost,
        "PreJoin" => Phase::PreScaleUp,
        "PostJoin" => Phase::PostScaleUp,
        "PreGuest" | "PostInstall" => Phase::PostInstall,
        "PreClean" => Phase::PreCleanHost,
        "PostClean" => Phase::PostCleanHost,
        _ => {
            return Err(format!(
                "unknown action {action:?}: use Originally, PreInit, PreJoin, PostJoin, PreGuest, \
                 PostInstall, PreClean or PostClean (or write the plugin as sealer.io/v1)"
            ));
        }
    })
}

/// A v0.8 `on` selector.
fn parse_on(on: &str) -> Result<HostSelector, String> {
    let on = on.trim();
    if on.is_empty() {
        return Ok(HostSelector::All);
    }
    if on == "master0" {
        return Ok(HostSelector::Master0);
    }
    if on == "master" || on == "node" {
        return Ok(HostSelector::Roles(vec![on.to_owned()]));
    }
    if on.contains('=') {
        let mut requirements = Vec::new();
        for part in on.split(',').map(str::trim) {
            let (key, value, negated) = if let Some((key, value)) = part.split_once("!=") {
                (key, value, true)
            } else if let Some((key, value)) = part.split_once("==") {
                (key, value, false)
            } else if let Some((key, value)) = part.split_once('=') {
                (key, value, false)
            } else {
                return Err(format!(
                    "{part:?} is not a label requirement: write key=value or key!=value"
                ));
            };
            super::validate::check_label_key(key.trim())?;
            requirements.push(LabelRequirement {
                key: key.trim().to_owned(),
                value: value.trim().to_owned(),
                negated,
            });
        }
        return Ok(HostSelector::Labels(requirements));
    }
    let mut ranges = Vec::new();
    for part in on.split(',').map(str::trim).filter(|part| !part.is_empty()) {
        let parse = |text: &str| {
            text.trim().parse::<IpAddr>().map_err(|_| format!("{text:?} is not an IP address (on takes master, node, master0, IPs, a-b ranges or key=value labels)"))
        };
        let range = if let Some((start, end)) = part.split_once('-') {
            let range = IpRange {
                start: parse(start)?,
                end: parse(end)?,
            };
            if range.start.is_ipv4() != range.end.is_ipv4()
                || !range.contains(range.start)
                || !range.contains(range.end)
            {
                return Err(format!(
                    "{part:?} is not a range: write first-last with first <= last, one IP family"
                ));
            }
            range
        } else {
            let ip = parse(part)?;
            IpRange { start: ip, end: ip }
        };
        ranges.push(range);
    }
    Ok(HostSelector::Ips(ranges))
}
