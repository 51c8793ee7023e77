//! The Cluster document: image, env, hosts (flattened one per IP), SSH, registry, data root.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;

use kyaml::{Node, NodeKind};

use super::document::{Location, Reader, child, item};
use super::env::{HOST_ONLY_KEY, RESERVED_KEYS, parse_cidr};
use super::host::{Host, PartialSsh, Taint};
use super::validate::{check_label_key, check_label_value, check_role, parse_env_item};
use crate::secret::Secret;

/// The default `dataRoot`.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/sealer/data";
/// The built-in registry's default domain.
pub const DEFAULT_REGISTRY_DOMAIN: &str = "sea.hub";
/// The built-in registry's default port.
pub const DEFAULT_REGISTRY_PORT: u16 = 5000;

/// The cluster to install: the Clusterfile's `kind: Cluster` document.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// `metadata.name`.
    pub name: String,
    /// The document's `apiVersion` as written.
    pub api_version: String,
    /// `spec.image`: the ClusterImage reference.
    pub image: String,
    /// `spec.env` in order (later entries win), reserved keys removed.
    pub env: Vec<(String, String)>,
    /// `spec.cmd`: replaces every launch command when not empty.
    pub cmds: Vec<String>,
    /// `spec.appNames`: replaces the apps to launch when given (`[""]` launches none).
    pub app_names: Option<Vec<String>>,
    /// Every host, one per IP, in the order written (the first master is master0).
    pub hosts: Vec<Host>,
    /// `spec.containerRuntime.type`, overriding the image's.
    pub container_runtime: Option<String>,
    /// `spec.hostAliases`: `/etc/hosts` entries for every host.
    pub host_aliases: Vec<HostAlias>,
    /// `spec.registry`, with sealer's defaults filled in.
    pub registry: Registry,
    /// `spec.dataRoot` (default `/var/lib/sealer/data`).
    pub data_root: PathBuf,
    /// Where the document starts.
    pub location: Location,
    /// Where `spec.appNames` is written, for messages about unknown apps.
    pub(crate) app_names_location: Option<Location>,
}

impl Cluster {
    /// The first host with the `master` role. A parsed Cluster always has one; a Cluster
    /// built by hand without a master makes this panic.
    pub fn master0(&self) -> &Host {
        self.masters()
            .next()
            .unwrap_or_else(|| unreachable!("a parsed Cluster has a master"))
    }

    /// The hosts with the `master` role, master0 first.
    pub fn masters(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|host| host.is_master())
    }

    /// The hosts without the `master` role.
    pub fn workers(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|host| !host.is_master())
    }

    /// The host with this IP.
    pub fn host(&self, ip: IpAddr) -> Option<&Host> {
        self.hosts.iter().find(|host| host.ip == ip)
    }

    /// `<dataRoot>/<name>/rootfs`: where the rootfs goes on every host.
    pub fn rootfs_dir(&self) -> PathBuf {
        self.data_root.join(&self.name).join("rootfs")
    }

    /// Whether the hosts are IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.hosts.first().is_some_and(|host| host.ip.is_ipv6())
    }
}

/// An `/etc/hosts` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAlias {
    /// The address.
    pub ip: IpAddr,
    /// The names for it.
    pub hostnames: Vec<String>,
}

/// A registry's address and credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEndpoint {
    /// Domain (or IP).
    pub domain: String,
    /// Port, when one is given.
    pub port: Option<u16>,
    /// User name for `docker login`.
    pub username: Option<String>,
    /// Password for `docker login`.
    pub password: Option<Secret>,
}

impl RegistryEndpoint {
    /// `domain:port`, or the domain alone without a port (IPv6 literals in brackets).
    pub fn url(&self) -> String {
        match self.port {
            Some(port) if self.domain.contains(':') => format!("[{}]:{port}", self.domain),
            Some(port) => format!("{}:{port}", self.domain),
            None => self.domain.clone(),
        }
    }
}

/// The built-in registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalRegistry {
    /// Address (default `sea.hub:5000`) and credentials.
    pub endpoint: RegistryEndpoint,
    /// Deployed on every master (default) or on master0 only.
    pub ha: bool,
    /// Served over plain HTTP (default false).
    pub insecure: bool,
    /// Extra DNS names for its certificate.
    pub cert_dns_names: Vec<String>,
    /// Extra IPs for its certificate.
    pub cert_ips: Vec<IpAddr>,
}

/// `spec.registry`: the built-in registry, an external one, or both (then the external one
/// is what clients use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry {
    /// The built-in registry; defaulted when neither is given.
    pub local: Option<LocalRegistry>,
    /// An external registry clients are configured for.
    pub external: Option<RegistryEndpoint>,
}

impl Registry {
    /// The registry clients use: the external one when given, else the built-in one (a
    /// parsed Cluster always has one of them; a `Registry` built with neither panics here).
    pub fn effective(&self) -> &RegistryEndpoint {
        match (&self.external, &self.local) {
            (Some(external), _) => external,
            (None, Some(local)) => &local.endpoint,
            (None, None) => unreachable!("a parsed Registry has a local or an external registry"),
        }
    }

    fn default_local() -> LocalRegistry {
        LocalRegistry {
            endpoint: RegistryEndpoint {
                domain: DEFAULT_REGISTRY_DOMAIN.to_owned(),
                port: Some(DEFAULT_REGISTRY_PORT),
                username: None,
                password: None,
            },
            ha: true,
            insecure: false,
            cert_dns_names: Vec::new(),
            cert_ips: Vec::new(),
        }
    }
}

/// One `hosts[]` group (or a v1 `masters`/`nodes` block) before flattening.
struct HostGroup<'n> {
    path: String,
    ips: Vec<(IpAddr, &'n Node, String)>,
    roles: Vec<String>,
    ssh: PartialSsh,
    env: Vec<(String, String)>,
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
}

const SPEC_KEYS: &[&str] = &[
    "image",
    "env",
    "cmd",
    "cmd_args",
    "appNames",
    "hosts",
    "ssh",
    "containerRuntime",
    "hostAliases",
    "registry",
    "dataRoot",
    // sealer.aliyun.com/v1alpha1 and sealer.io/v1 Cluster fields
    "provider",
    "network",
    "certSANS",
    "masters",
    "nodes",
];

/// Reads a Cluster document; `None` when it has problems (they are in the reader).
pub(crate) fn read_cluster(
    reader: &mut Reader<'_>,
    root: &Node,
    api_version: &str,
) -> Option<Cluster> {
    let problems_before = reader.problems.len();
    let metadata = root.get("metadata").unwrap_or(root);
    let name = reader.required_string(metadata, "name", "metadata", "give the cluster a name");
    if let Some(name) = &name
        && (name == "."
            || name == ".."
            || name.contains(['/', '\\', '\0'])
            || name.chars().any(char::is_whitespace))
    {
        let node = metadata.get("name").unwrap_or(metadata);
        reader.problem(
                node,
                "metadata.name",
                format!("{name:?} cannot be a directory name (it names <dataRoot>/<name>): use letters, digits, '-' and '.'"),
            );
    }
    let empty = Node {
        kind: NodeKind::Mapping(Vec::new()),
        line: root.line,
        column: root.column,
        written: None,
    };
    let spec = if let Some(spec) = root.get("spec") {
        spec
    } else {
        reader.problem(root, "spec", "missing: give spec.image and spec.hosts");
        &empty
    };
    reader.mapping(Some(spec), "spec");
    reader.check_keys(spec, "spec", SPEC_KEYS);
    let image = reader.required_string(spec, "image", "spec", "name the ClusterImage to install");

    let mut env = legacy_env(reader, spec);
    env.extend(read_env(
        reader,
        spec.get("env"),
        "spec.env",
        Level::Cluster,
    ));
    if let Some((_, svc_cidr)) = env.iter().rev().find(|(key, _)| key == "SvcCIDR") {
        let first = svc_cidr.split(',').next().unwrap_or_default().trim();
        if parse_cidr(first).is_none() {
            let node = spec.get("env").unwrap_or(spec);
            reader.problem(
                node,
                "spec.env",
                format!("SvcCIDR={svc_cidr:?} is not a CIDR (e.g. 10.96.0.0/16)"),
            );
        }
    }
    let cmds = reader
        .string_list(spec.get("cmd"), "spec.cmd")
        .into_iter()
        .map(|(text, _)| text)
        .collect();
    if let Some(node) = spec.get("cmd_args") {
        reader.warning(
            node,
            "spec.cmd_args",
            "ignored (sealer v0.8 only): use spec.cmd",
        );
    }
    let app_names = read_app_names(reader, spec.get("appNames"));
    let app_names_location = spec.get("appNames").map(|node| reader.location(node));
    let cluster_ssh = PartialSsh::read(reader, spec.get("ssh"), "spec.ssh");

    let groups = read_host_groups(reader, spec);
    let hosts = flatten_hosts(reader, spec, &groups, &cluster_ssh, &env);

    let container_runtime = spec.get("containerRuntime").and_then(|node| {
        reader.mapping(Some(node), "spec.containerRuntime");
        reader.check_keys(node, "spec.containerRuntime", &["type"]);
        reader.string(node.get("type"), "spec.containerRuntime.type")
    });
    let host_aliases = read_host_aliases(reader, spec.get("hostAliases"));
    let registry = read_registry(reader, spec.get("registry"));
    let data_root = match reader.string(spec.get("dataRoot"), "spec.dataRoot") {
        Some(text) if text.starts_with('/') && !text.split('/').any(|part| part == "..") => {
            PathBuf::from(text)
        }
        Some(text) => {
            let node = spec.get("dataRoot").unwrap_or(spec);
            reader.problem(
                node,
                "spec.dataRoot",
                format!(
                    "{text:?} is not an absolute path without '..': write e.g. /var/lib/sealer/data"
                ),
            );
            PathBuf::from(DEFAULT_DATA_ROOT)
        }
        None => PathBuf::from(DEFAULT_DATA_ROOT),
    };

    if reader.problems.len() > problems_before {
        return None;
    }
    Some(Cluster {
        name: name?,
        api_version: api_version.to_owned(),
        image: image?,
        env,
        cmds,
        app_names,
        hosts,
        container_runtime,
        host_aliases,
        registry: registry?,
        data_root,
        location: reader.location(root),
        app_names_location,
    })
}

/// Where an env list is, which decides the keys it may not set: the cluster's and a host
/// group's may not set the computed [`RESERVED_KEYS`], the cluster's not [`HOST_ONLY_KEY`]
/// either; an app's may set any.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// `spec.env`.
    Cluster,
    /// `spec.hosts[].env`.
    HostGroup,
    /// An Application's `configs[].env`.
    App,
}

/// `KEY=VALUE` items; reserved keys are dropped with a warning (sealer computes them).
pub(crate) fn read_env(
    reader: &mut Reader<'_>,
    node: Option<&Node>,
    field: &str,
    level: Level,
) -> Vec<(String, String)> {
    let reserved = |key: &str| match level {
        Level::Cluster => RESERVED_KEYS.contains(&key) || key == HOST_ONLY_KEY,
        Level::HostGroup => RESERVED_KEYS.contains(&key),
        Level::App => false,
    };
    let mut env = Vec::new();
    for (index, (text, entry)) in reader.string_list(node, field).into_iter().enumerate() {
        let path = item(field, index);
        match parse_env_item(&text) {
            Ok((key, _)) if reserved(&key) => reader.warning(
                entry,
                &path,
                format!("{key} is computed by sealer: this value is ignored"),
            ),
            Ok(pair) => env.push(pair),
            Err(message) => reader.problem(entry, &path, message),
        }
    }
    env
}

/// `spec.appNames`: a list whose items may be empty (`[""]` launches no app).
fn read_app_names(reader: &mut Reader<'_>, node: Option<&Node>) -> Option<Vec<String>> {
    let node = node.filter(|node| !matches!(node.kind, NodeKind::Null))?;
    let items = reader.sequence(Some(node), "spec.appNames");
    let mut names = Vec::new();
    for (index, entry) in items.iter().enumerate() {
        if matches!(entry.kind, NodeKind::Null) {
            names.push(String::new());
        } else if let Some(text) = entry
            .scalar_text()
            .filter(|_| !matches!(entry.kind, NodeKind::Sequence(_) | NodeKind::Mapping(_)))
        {
            names.push(text.to_owned());
        } else {
            reader.problem(entry, &item("spec.appNames", index), "expected an app name");
        }
    }
    Some(names)
}

/// The env that the v1 fields `network.podCIDR`, `network.svcCIDR` and `certSANS` stood for.
fn legacy_env(reader: &mut Reader<'_>, spec: &Node) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(network) = spec.get("network") {
        reader.mapping(Some(network), "spec.network");
        for (key, name) in [("podCIDR", "PodCIDR"), ("svcCIDR", "SvcCIDR")] {
            if let Some(value) = reader.string(network.get(key), &child("spec.network", key)) {
                env.push((name.to_owned(), value));
            }
        }
    }
    let sans: Vec<String> = reader
        .string_list(spec.get("certSANS"), "spec.certSANS")
        .into_iter()
        .map(|(text, _)| text)
        .collect();
    if !sans.is_empty() {
        env.push(("CertSANs".to_owned(), sans.join(",")));
    }
    if let Some(provider) = spec.get("provider") {
        let value = reader
            .string(Some(provider), "spec.provider")
            .unwrap_or_default();
        if !value.eq_ignore_ascii_case("BAREMETAL") {
            reader.warning(
                provider,
                "spec.provider",
                format!("provider {value:?} is ignored: hosts are reached over SSH as BAREMETAL"),
            );
        }
    }
    env
}

fn read_host_groups<'n>(reader: &mut Reader<'_>, spec: &'n Node) -> Vec<HostGroup<'n>> {
    let legacy = ["masters", "nodes"]
        .iter()
        .any(|key| spec.get(key).is_some());
    if let (Some(hosts), true) = (spec.get("hosts"), legacy) {
        reader.problem(
            hosts,
            "spec.hosts",
            "give either spec.hosts or the older spec.masters/spec.nodes, not both",
        );
        return Vec::new();
    }
    if legacy {
        let mut groups = Vec::new();
        for (key, role) in [("masters", "master"), ("nodes", "node")] {
            let Some(block) = spec.get(key) else { continue };
            let path = child("spec", key);
            reader.mapping(Some(block), &path);
            let ip_path = child(&path, "ipList");
            let ips = read_ips(reader, block.get("ipList"), &ip_path);
            groups.push(HostGroup {
                path,
                ips,
                roles: vec![role.to_owned()],
                ssh: PartialSsh::default(),
                env: Vec::new(),
                labels: BTreeMap::new(),
                taints: Vec::new(),
            });
        }
        return groups;
    }
    let items = reader.sequence(spec.get("hosts"), "spec.hosts");
    let mut groups = Vec::new();
    for (index, group) in items.iter().enumerate() {
        let path = item("spec.hosts", index);
        if !matches!(group.kind, NodeKind::Mapping(_)) {
            reader.problem(
                group,
                &path,
                "expected a host group: {ips: [...], roles: [...]}",
            );
            continue;
        }
        reader.check_keys(
            group,
            &path,
            &["ips", "roles", "ssh", "env", "labels", "taints"],
        );
        let ips_path = child(&path, "ips");
        let ips = read_ips(reader, group.get("ips"), &ips_path);
        if group.get("ips").is_none() {
            reader.problem(group, &ips_path, "missing: give the hosts' IP addresses");
        }
        let roles_path = child(&path, "roles");
        let mut roles = Vec::new();
        for (role_index, (role, node)) in reader
            .string_list(group.get("roles"), &roles_path)
            .into_iter()
            .enumerate()
        {
            match check_role(&role) {
                Ok(()) => roles.push(role),
                Err(message) => reader.problem(node, &item(&roles_path, role_index), message),
            }
        }
        let ssh = PartialSsh::read(reader, group.get("ssh"), &child(&path, "ssh"));
        let env = read_env(
            reader,
            group.get("env"),
            &child(&path, "env"),
            Level::HostGroup,
        );
        let labels = read_labels(reader, group.get("labels"), &child(&path, "labels"));
        let taints_path = child(&path, "taints");
        let mut taints = Vec::new();
        for (taint_index, (text, node)) in reader
            .string_list(group.get("taints"), &taints_path)
            .into_iter()
            .enumerate()
        {
            match Taint::parse(&text) {
                Ok(taint) => taints.push(taint),
                Err(message) => reader.problem(node, &item(&taints_path, taint_index), message),
            }
        }
        groups.push(HostGroup {
            path,
            ips,
            roles,
            ssh,
            env,
            labels,
            taints,
        });
    }
    groups
}

fn read_ips<'n>(
    reader: &mut Reader<'_>,
    node: Option<&'n Node>,
    field: &str,
) -> Vec<(IpAddr, &'n Node, String)> {
    let mut ips = Vec::new();
    let listed = reader.strings(node, field);
    if let (Some(listed), Some(node)) = (&listed, node)
        && listed.is_empty()
    {
        reader.problem(node, field, "empty: give the hosts' IP addresses");
    }
    for (index, (text, entry)) in listed.unwrap_or_default().into_iter().enumerate() {
        let path = item(field, index);
        match text.trim().parse::<IpAddr>() {
            Ok(ip) => ips.push((ip, entry, path)),
            Err(_) => reader.problem(entry, &path, format!("{text:?} is not an IP address")),
        }
    }
    ips
}

fn read_labels(
    reader: &mut Reader<'_>,
    node: Option<&Node>,
    field: &str,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (key, value) in reader.mapping(node, field) {
        let name = key.key_string().unwrap_or_default();
        let path = child(field, &name);
        let text = match &value.kind {
            NodeKind::Null => String::new(),
            NodeKind::Sequence(_) | NodeKind::Mapping(_) => {
                reader.problem(value, &path, "a label value must be a string");
                continue;
            }
            _ => value.scalar_text().unwrap_or_default().to_owned(),
        };
        if let Err(message) = check_label_key(&name) {
            reader.problem(key, &path, message);
        } else if let Err(message) = check_label_value(&text) {
            reader.problem(value, &path, message);
        } else {
            labels.insert(name, text);
        }
    }
    labels
}

fn flatten_hosts(
    reader: &mut Reader<'_>,
    spec: &Node,
    groups: &[HostGroup<'_>],
    cluster_ssh: &PartialSsh,
    cluster_env: &[(String, String)],
) -> Vec<Host> {
    let mut seen: HashMap<IpAddr, (usize, usize)> = HashMap::new();
    let mut first: Option<(IpAddr, usize, usize)> = None;
    let mut hosts = Vec::new();
    for group in groups {
        let ssh = group.ssh.resolve(cluster_ssh);
        let mut env: BTreeMap<String, String> = cluster_env.iter().cloned().collect();
        env.extend(group.env.iter().cloned());
        for (ip, node, path) in &group.ips {
            if let Some((line, column)) = seen.get(ip) {
                reader.problem(
                    node,
                    path,
                    format!(
                        "\"{ip}\" appears twice (also at {line}:{column}): list each host once"
                    ),
                );
                continue;
            }
            seen.insert(*ip, (node.line, node.column));
            match first {
                None => first = Some((*ip, node.line, node.column)),
                Some((other, line, column)) if other.is_ipv4() != ip.is_ipv4() => {
                    let family = |ip: &IpAddr| if ip.is_ipv4() { "IPv4" } else { "IPv6" };
                    reader.problem(
                        node,
                        path,
                        format!(
                            "\"{ip}\" is {} but \"{other}\" (at {line}:{column}) is {}: all hosts must be in one IP family",
                            family(ip),
                            family(&other)
                        ),
                    );
                    continue;
                }
                Some(_) => {}
            }
            hosts.push(Host {
                ip: *ip,
                roles: group.roles.clone(),
                ssh: ssh.clone(),
                env: env.clone(),
                labels: group.labels.clone(),
                taints: group.taints.clone(),
                location: reader.location(node),
            });
        }
    }
    let where_hosts = spec
        .get("hosts")
        .or_else(|| spec.get("masters"))
        .unwrap_or(spec);
    let field = if spec.get("masters").is_some() {
        "spec.masters"
    } else {
        "spec.hosts"
    };
    if groups.iter().all(|group| group.ips.is_empty()) {
        if spec.get("hosts").is_none()
            && spec.get("masters").is_none()
            && spec.get("nodes").is_none()
        {
            reader.problem(
                spec,
                "spec.hosts",
                "missing: list the hosts, e.g. hosts: [{ips: [10.0.0.2], roles: [master]}]",
            );
        }
    } else if !groups.iter().any(|group| {
        !group.ips.is_empty()
            && group
                .roles
                .iter()
                .any(|role| role == super::host::MASTER_ROLE)
    }) {
        reader.problem(
            where_hosts,
            field,
            format!("no host has the role master: give at least one host group roles: [master] (groups: {})",
                groups.iter().map(|group| group.path.as_str()).collect::<Vec<_>>().join(", ")),
        );
    }
    hosts
}

fn read_host_aliases(reader: &mut Reader<'_>, node: Option<&Node>) -> Vec<HostAlias> {
    let mut aliases = Vec::new();
    for (index, entry) in reader.sequence(node, "spec.hostAliases").iter().enumerate() {
        let path = item("spec.hostAliases", index);
        reader.check_keys(entry, &path, &["ip", "hostnames"]);
        let ip_text =
            reader.required_string(entry, "ip", &path, "give the address the names stand for");
        let hostnames: Vec<String> = reader
            .string_list(entry.get("hostnames"), &child(&path, "hostnames"))
            .into_iter()
            .map(|(text, _)| text)
            .collect();
        if let Some(text) = ip_text {
            match text.parse::<IpAddr>() {
                Ok(ip) => aliases.push(HostAlias { ip, hostnames }),
                Err(_) => reader.problem(
                    entry.get("ip").unwrap_or(entry),
                    &child(&path, "ip"),
                    format!("{text:?} is not an IP address"),
                ),
            }
        }
    }
    aliases
}

fn read_endpoint(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> (Option<String>, RegistryEndpoint) {
    let domain = reader.string(node.get("domain"), &child(path, "domain"));
    let endpoint = RegistryEndpoint {
        domain: domain.clone().unwrap_or_default(),
        port: reader.port(node.get("port"), &child(path, "port")),
        username: reader.string(node.get("username"), &child(path, "username")),
        password: reader
            .string(node.get("password"), &child(path, "password"))
            .map(Secret::new),
    };
    if let (Some(domain), Some(domain_node)) = (&domain, node.get("domain"))
        && let Some(problem) = host_name_problem(domain)
    {
        reader.problem(domain_node, &child(path, "domain"), problem);
    }
    if let (Some(username), Some(user_node)) = (&endpoint.username, node.get("username"))
        && username.contains(|c: char| c == ':' || c.is_control())
    {
        reader.problem(
            user_node,
            &child(path, "username"),
            "a user name cannot hold `:` or control characters (it goes into an htpasswd line)",
        );
    }
    if endpoint.username.is_some() != endpoint.password.is_some() {
        reader.problem(
            node,
            path,
            "username and password go together: give both, or neither for a registry without authentication",
        );
    }
    (domain, endpoint)
}

/// What is wrong with `text` as a registry's host name (DNS labels of letters, digits and
/// `-`, or an IP address), if anything.
fn host_name_problem(text: &str) -> Option<String> {
    if text.parse::<IpAddr>().is_ok() {
        return None;
    }
    let valid = !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    (!valid).then(|| {
        format!(
            "{text:?} is not a host name: use DNS labels of ASCII letters, digits and `-` separated by dots, or an IP address"
        )
    })
}

fn read_registry(reader: &mut Reader<'_>, node: Option<&Node>) -> Option<Registry> {
    let mut registry = Registry {
        local: None,
        external: None,
    };
    let Some(node) = node.filter(|node| !matches!(node.kind, NodeKind::Null)) else {
        registry.local = Some(Registry::default_local());
        return Some(registry);
    };
    reader.mapping(Some(node), "spec.registry");
    reader.check_keys(
        node,
        "spec.registry",
        &["localRegistry", "externalRegistry"],
    );
    if let Some(local) = node.get("localRegistry") {
        let path = "spec.registry.localRegistry";
        reader.mapping(Some(local), path);
        reader.check_keys(
            local,
            path,
            &[
                "domain", "port", "username", "password", "ha", "insecure", "cert",
            ],
        );
        let (domain, mut endpoint) = read_endpoint(reader, local, path);
        let defaults = Registry::default_local();
        if domain.is_none() {
            endpoint.domain = defaults.endpoint.domain;
        }
        endpoint.port = endpoint.port.or(defaults.endpoint.port);
        let san = local.get_path(&["cert", "subjectAltName"]);
        let san_path = "spec.registry.localRegistry.cert.subjectAltName";
        let names_path = child(san_path, "dnsNames");
        let mut cert_dns_names = Vec::new();
        for (index, (text, entry)) in reader
            .string_list(san.and_then(|san| san.get("dnsNames")), &names_path)
            .into_iter()
            .enumerate()
        {
            match host_name_problem(text.strip_prefix("*.").unwrap_or(&text)) {
                Some(problem) => reader.problem(entry, &item(&names_path, index), problem),
                None => cert_dns_names.push(text),
            }
        }
        let mut cert_ips = Vec::new();
        let ips_path = child(san_path, "ips");
        for (index, (text, entry)) in reader
            .string_list(san.and_then(|san| san.get("ips")), &ips_path)
            .into_iter()
            .enumerate()
        {
            match text.parse::<IpAddr>() {
                Ok(ip) => cert_ips.push(ip),
                Err(_) => reader.problem(
                    entry,
                    &item(&ips_path, index),
                    format!("{text:?} is not an IP address"),
                ),
            }
        }
        registry.local = Some(LocalRegistry {
            endpoint,
            ha: reader
                .boolean(local.get("ha"), &child(path, "ha"))
                .unwrap_or(true),
            insecure: reader
                .boolean(local.get("insecure"), &child(path, "insecure"))
                .unwrap_or(false),
            cert_dns_names,
            cert_ips,
        });
    }
    if let Some(external) = node.get("externalRegistry") {
        let path = "spec.registry.externalRegistry";
        reader.mapping(Some(external), path);
        reader.check_keys(external, path, &["domain", "port", "username", "password"]);
        let (domain, endpoint) = read_endpoint(reader, external, path);
        if domain.is_none() {
            reader.problem(
                external,
                &child(path, "domain"),
                "missing: an external registry needs its domain",
            );
            return None;
        }
        registry.external = Some(endpoint);
    }
    if registry.local.is_none() && registry.external.is_none() {
        registry.local = Some(Registry::default_local());
    }
    Some(registry)
}
