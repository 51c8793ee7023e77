//! What the cluster should be: the Clusterfile and the facts of its prepared image, with the
//! decisions both together give (registry hosts, node names, hooks, launch commands).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::clusterfile::{
    Clusterfile, DEFAULT_REGISTRY_PORT, Hook, Host, LocalRegistry, Phase, plugins_from_text,
};
use crate::docker_daemon::RegistryEntries;
use crate::plan::shell;
use crate::plan::{Action, Environment, Stage, Step};
use crate::prepare::ImageFacts;
use crate::registry_auth::RegistryAuth;
use crate::registry_tls::{RegistryTls, certificate_names};

/// The cluster as the Clusterfile and its image describe it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The Clusterfile.
    pub clusterfile: Clusterfile,
    /// What the prepared image holds.
    pub image: ImageFacts,
    /// The registry's certificates when it serves TLS (see [`Target::registry_serves_tls`]);
    /// `None`: plain HTTP.
    pub registry_tls: Option<RegistryTls>,
    /// The registry's credentials when the Clusterfile gives them; `None`: no
    /// authentication.
    pub registry_auth: Option<RegistryAuth>,
}

impl Target {
    /// The rootfs directory on every host, as a string for scripts.
    pub fn rootfs(&self) -> String {
        self.clusterfile.cluster.rootfs_dir().display().to_string()
    }

    /// Where registry hosts hold the registry's certificate and key: `<rootfs>/certs`, as the
    /// original (images' `init-registry.sh` read them there).
    pub fn registry_certificate_dir(&self) -> String {
        format!("{}/certs", self.rootfs())
    }

    /// Where registry hosts hold the htpasswd file of the registry's credentials (the
    /// original's path, which images' `init-registry.sh` read).
    pub fn registry_htpasswd_path(&self) -> String {
        format!("{}/etc/registry_htpasswd", self.rootfs())
    }

    /// The cluster's directory on every host (`<dataRoot>/<name>`), holding the rootfs.
    pub fn cluster_dir(&self) -> String {
        let cluster = &self.clusterfile.cluster;
        cluster.data_root.join(&cluster.name).display().to_string()
    }

    /// The container runtime: the Clusterfile's, else the image's label, else `docker`.
    pub fn container_runtime(&self) -> String {
        self.clusterfile
            .cluster
            .container_runtime
            .clone()
            .unwrap_or_else(|| self.image.container_runtime.clone())
    }

    /// The registry apply starts, unless the Clusterfile names an external one.
    pub fn local_registry(&self) -> Option<&LocalRegistry> {
        self.clusterfile.cluster.registry.local.as_ref()
    }

    /// The built-in registry's domain and port.
    pub fn local_registry_address(&self) -> Option<(String, u16)> {
        self.local_registry().map(|local| {
            (
                local.endpoint.domain.clone(),
                local.endpoint.port.unwrap_or(DEFAULT_REGISTRY_PORT),
            )
        })
    }

    /// Whether the built-in registry serves TLS: the Clusterfile does not set
    /// `localRegistry.insecure` (as in the original, TLS is the default).
    pub fn registry_serves_tls(&self) -> bool {
        self.local_registry().is_some_and(|local| !local.insecure)
    }

    /// The names the registry's server certificate is issued for: its domain and the
    /// Clusterfile's `cert.subjectAltName` names, then its IPs and the registry hosts'
    /// addresses (so that it can be reached by address too).
    pub fn registry_certificate_names(&self) -> Vec<String> {
        let Some(local) = self.local_registry() else {
            return Vec::new();
        };
        certificate_names(
            std::iter::once(local.endpoint.domain.clone()).chain(local.cert_dns_names.clone()),
            local.cert_ips.iter().copied().chain(self.registry_hosts()),
        )
    }

    /// The built-in registry's `domain:port` (an IPv6 address in brackets), as clients and
    /// their configuration files name it.
    pub fn local_registry_url(&self) -> Option<String> {
        self.local_registry().map(|local| local.endpoint.url())
    }

    /// The hosts among `hosts` that serve the registry.
    pub fn registry_hosts_among(&self, hosts: &[&Host]) -> Vec<IpAddr> {
        let registry_hosts = self.registry_hosts();
        hosts
            .iter()
            .map(|host| host.ip)
            .filter(|ip| registry_hosts.contains(ip))
            .collect()
    }

    /// The cluster's environment (image env, Clusterfile env, reserved keys). Its only error
    /// (an image `SvcCIDR` that is no CIDR) stopped the preparation of the image already.
    pub fn cluster_env(&self) -> BTreeMap<String, String> {
        self.clusterfile
            .cluster
            .cluster_env(&self.image.env)
            .unwrap_or_default()
    }

    /// The environment of `host`: the cluster's, the host group's, `HostIP`.
    pub fn host_env(&self, host: IpAddr) -> BTreeMap<String, String> {
        self.clusterfile
            .cluster
            .host_env(host, &self.image.env)
            .ok()
            .flatten()
            .unwrap_or_else(|| self.cluster_env())
    }

    /// The hosts that serve the registry: every master when it is highly available (the
    /// default), master0 otherwise; none with an external registry.
    pub fn registry_hosts(&self) -> Vec<IpAddr> {
        let cluster = &self.clusterfile.cluster;
        match self.local_registry() {
            None => Vec::new(),
            Some(local) if local.ha => cluster.masters().map(|h| h.ip).collect(),
            Some(_) => vec![cluster.master0().ip],
        }
    }

    /// The node name kubeadm gives a host when the plan can tell it: its IP address with
    /// `UseIPasNodeName=true`; otherwise the host's hostname, read when the step runs.
    pub fn node_name(&self, ip: IpAddr) -> Option<String> {
        let env = self.cluster_env();
        (env.get("UseIPasNodeName").map(String::as_str) == Some("true")).then(|| ip.to_string())
    }

    /// What docker hosts merge into their `daemon.json` (see [`crate::docker_daemon`]): the
    /// registry as mirror, and as insecure registry over plain HTTP.
    pub fn docker_registry_entries(&self) -> Option<RegistryEntries> {
        if self.container_runtime() != "docker" {
            return None;
        }
        Some(RegistryEntries {
            mirror: self.registry_client_endpoint()?,
            insecure: self
                .registry_tls
                .is_none()
                .then(|| self.local_registry_url())
                .flatten(),
        })
    }

    /// The built-in registry's URL for its clients: `https://domain:port`, or `http://` when
    /// it serves plain HTTP.
    pub fn registry_client_endpoint(&self) -> Option<String> {
        let registry = self.local_registry_url()?;
        let scheme = if self.registry_tls.is_some() {
            "https"
        } else {
            "http"
        };
        Some(format!("{scheme}://{registry}"))
    }

    /// The files every host gets so that its container runtime pulls through the registry
    /// (docker's `daemon.json` aside: [`Target::docker_registry_entries`]).
    /// containerd: a `hosts.toml` for the registry itself and, as a mirror, for every domain
    /// of the images the ClusterImage caches. With TLS the registry's CA
    /// goes beside them (`certs.d/<registry>/ca.crt`) and is named as the one to trust;
    /// without, the registry is marked insecure (plain HTTP). With credentials: kubelet's
    /// `config.json` (and root's docker config with docker) logs in, and containerd's
    /// `hosts.toml` files send them as an `Authorization` header (so that mirror pulls of the
    /// original names carry them too); these files are secret.
    pub fn registry_client_files(&self) -> Vec<ClientFile> {
        let (Some(registry), Some(endpoint)) =
            (self.local_registry_url(), self.registry_client_endpoint())
        else {
            return Vec::new();
        };
        let tls = self.registry_tls.as_ref();
        let auth = self.registry_auth.as_ref();
        let mut files = Vec::new();
        let runtime = self.container_runtime();
        match runtime.as_str() {
            "containerd" => {
                let ca_path = containerd_ca_path(&registry);
                let mut host = match tls {
                    Some(tls) => {
                        files.push(ClientFile::public(&ca_path, &tls.ca_pem));
                        format!("  ca = \"{ca_path}\"\n")
                    }
                    None => "  skip_verify = true\n".to_owned(),
                };
                if let Some(auth) = auth {
                    let _ = write!(
                        host,
                        "  [host.\"{endpoint}\".header]\n    Authorization = [\"{}\"]\n",
                        auth.authorization.expose()
                    );
                }
                let hosts_toml = |path: String, content: String| ClientFile {
                    path,
                    content,
                    secret: auth.is_some(),
                };
                files.push(hosts_toml(
                    containerd_hosts_toml(&registry),
                    format!(
                        "server = \"{endpoint}\"\n\n[host.\"{endpoint}\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n{host}"
                    ),
                ));
                for domain in &self.image.mirror_domains {
                    let upstream = if domain == "docker.io" {
                        "https://registry-1.docker.io".to_owned()
                    } else {
                        format!("https://{domain}")
                    };
                    files.push(hosts_toml(
                        containerd_hosts_toml(domain),
                        format!(
                            "server = \"{upstream}\"\n\n[host.\"{endpoint}\"]\n  capabilities = [\"pull\", \"resolve\"]\n{host}"
                        ),
                    ));
                }
            }
            "docker" => {
                if let Some(tls) = tls {
                    files.push(ClientFile::public(&docker_ca_path(&registry), &tls.ca_pem));
                }
            }
            _ => {}
        }
        if let Some(auth) = auth {
            let mut logins = vec![KUBELET_DOCKER_CONFIG];
            if runtime == "docker" {
                logins.push(ROOT_DOCKER_CONFIG);
            }
            for path in logins {
                files.push(ClientFile {
                    path: path.to_owned(),
                    content: auth.docker_config.expose().to_owned(),
                    secret: true,
                });
            }
        }
        files
    }

    /// Scripts that remove what [`Target::registry_client_files`] wrote and put docker's
    /// `daemon.json` back. Every path those files may have had is tried, whatever the
    /// registry's settings were when apply wrote them (TLS or not, credentials or not): only
    /// files marked as the cluster's are removed.
    pub fn remove_registry_client_files(&self) -> String {
        let cluster = &self.clusterfile.cluster.name;
        let mut script = crate::docker_daemon::restore_script(cluster);
        let Some(registry) = self.local_registry_url() else {
            return script;
        };
        let mut paths = vec![
            containerd_ca_path(&registry),
            containerd_hosts_toml(&registry),
            docker_ca_path(&registry),
            KUBELET_DOCKER_CONFIG.to_owned(),
            ROOT_DOCKER_CONFIG.to_owned(),
        ];
        paths.extend(
            self.image
                .mirror_domains
                .iter()
                .map(|domain| containerd_hosts_toml(domain)),
        );
        for path in paths {
            script.push_str(&shell::remove_owned_file(cluster, &path, keep_above(&path)));
        }
        script
    }

    /// The hooks of the image's `plugins/` then of the Clusterfile, for `phase`, ordered by
    /// name.
    pub fn hooks(&self, phase: Phase) -> Vec<Hook> {
        let mut hooks: Vec<Hook> = self
            .image
            .plugin_files
            .iter()
            // Checked when the image was prepared (`prepare::PrepareError::Plugin`).
            .flat_map(|(name, text)| {
                plugins_from_text(text, std::path::Path::new(name)).unwrap_or_default()
            })
            .chain(self.clusterfile.hooks.iter().cloned())
            .filter(|hook| hook.phases.contains(&phase))
            .collect();
        hooks.sort_by(|a, b| a.name.cmp(&b.name));
        hooks
    }

    /// The hooks of `phase` as a stage: a cluster phase once on master0, a host phase on each
    /// of `hosts` the hook selects, hook by hook. Clean phases do nothing on a host whose
    /// rootfs is gone.
    pub fn hook_stage(&self, phase: Phase, hosts: &[&Host]) -> Stage {
        let rootfs = self.rootfs();
        let cluster = &self.clusterfile.cluster;
        let candidates: Vec<std::net::IpAddr> = hosts.iter().map(|host| host.ip).collect();
        let mut steps = Vec::new();
        for hook in self.hooks(phase) {
            let selected = hook.targets(phase, cluster, &candidates);
            let script = if phase.skips_without_rootfs() {
                shell::when_dir_exists(&rootfs, &hook.script)
            } else {
                format!("cd {} && {}\n", shell::quote(&rootfs), hook.script)
            };
            for host in selected {
                steps.push(Step::new(
                    format!("hook-{phase}-{}", hook.name),
                    host.ip,
                    Action::Script {
                        title: format!("plugin {} ({phase})", hook.name),
                        script: script.clone(),
                        environment: Environment::Host,
                    },
                ));
            }
        }
        Stage {
            name: phase.as_str().to_owned(),
            parallel: false,
            steps,
        }
    }

    /// The commands run on master0 once the cluster is up (the Clusterfile's, else the
    /// image's CMDS, else its apps' launch commands).
    pub fn launch_commands(&self) -> Result<Vec<String>, String> {
        let extension = &self.image.extension;
        let apps: BTreeMap<String, Vec<String>> = extension
            .applications
            .iter()
            .map(|app| (app.name.clone(), default_launch(app)))
            .collect();
        self.clusterfile
            .launch_commands(&extension.launch.cmds, &extension.launch.app_names, &apps)
            .map_err(|e| e.to_string())
    }
}

/// How the original launches an app by default, from the rootfs: `APPCMDS` in the app's
/// directory (joined with spaces, as the original does), else by its type.
fn default_launch(app: &kubefile::plan::Application) -> Vec<String> {
    let dir = format!("application/apps/{}", app.name);
    if !app.cmds.is_empty() {
        return vec![format!("cd {dir}/ && {}", app.cmds.join(" "))];
    }
    let each = |tool: &str| {
        app.files
            .iter()
            .map(|file| format!("{tool} {dir}/{file}"))
            .collect::<Vec<_>>()
            .join(" && ")
    };
    match app.app_type.as_str() {
        "helm" => vec![format!("helm install {} {dir}/", app.name)],
        "kube" => vec![each("kubectl apply -f")],
        "shell" => vec![each("bash")],
        _ => Vec::new(),
    }
}

/// A file apply writes on every host for the registry's clients.
pub struct ClientFile {
    /// Where it goes.
    pub path: String,
    /// What it holds.
    pub content: String,
    /// Whether it holds the registry's credentials: then it is sent on the command's stdin
    /// and written 0600, and appears in no plan or log.
    pub secret: bool,
}

impl ClientFile {
    fn public(path: &str, content: &str) -> Self {
        ClientFile {
            path: path.to_owned(),
            content: content.to_owned(),
            secret: false,
        }
    }
}

/// Above which directory a delete stops removing the emptied directories of `path`: `/etc`
/// for runtime configuration, else the file's grandparent (`/var/lib` for kubelet's, `/root`
/// for docker's).
fn keep_above(path: &str) -> &str {
    if path.starts_with("/etc/") {
        return "/etc";
    }
    std::path::Path::new(path)
        .ancestors()
        .nth(2)
        .and_then(std::path::Path::to_str)
        .unwrap_or("/")
}

/// Kubelet's Docker config: the credentials it pulls pods' images with.
const KUBELET_DOCKER_CONFIG: &str = "/var/lib/kubelet/config.json";

/// root's Docker config, which docker's clients read.
const ROOT_DOCKER_CONFIG: &str = "/root/.docker/config.json";

/// Where docker reads the CA of `registry`.
fn docker_ca_path(registry: &str) -> String {
    format!("/etc/docker/certs.d/{registry}/ca.crt")
}

/// Where containerd reads the CA of `registry` (named by `ca =` in its `hosts.toml`).
fn containerd_ca_path(registry: &str) -> String {
    format!("{CONTAINERD_CERTS}/{registry}/ca.crt")
}

/// containerd's hosts directory (`config_path` of its CRI registry configuration).
const CONTAINERD_CERTS: &str = "/etc/containerd/certs.d";

/// Where containerd reads a registry host's configuration.
fn containerd_hosts_toml(host: &str) -> String {
    format!("{CONTAINERD_CERTS}/{host}/hosts.toml")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn target(runtime: &str, registry: &str, tls: bool) -> Target {
        let text = format!(
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c\nspec:\n  image: example\n  containerRuntime:\n    type: {runtime}\n{registry}  hosts:\n  - ips: [10.0.0.2]\n    roles: [master]\n"
        );
        let clusterfile = Clusterfile::parse(&text, Path::new("Clusterfile")).unwrap();
        let image = ImageFacts {
            reference: "example".to_owned(),
            manifest_digest: String::new(),
            content_key: String::new(),
            container_runtime: runtime.to_owned(),
            scripts: std::collections::BTreeSet::new(),
            env: Vec::new(),
            extension: kubefile::plan::ImageExtension {
                schema_version: kubefile::plan::EXTENSION_SCHEMA_VERSION.to_owned(),
                image_type: kubefile::plan::ImageType::KubeInstaller,
                applications: Vec::new(),
                launch: kubefile::plan::LaunchSpec::default(),
                env: BTreeMap::new(),
            },
            plugin_files: Vec::new(),
            kubeadm_config: String::new(),
            mirror_domains: vec!["docker.io".to_owned()],
        };
        let mut target = Target {
            clusterfile,
            image,
            registry_tls: None,
            registry_auth: None,
        };
        assert_eq!(target.registry_serves_tls(), tls);
        if tls {
            target.registry_tls = Some(RegistryTls {
                ca_pem: "CA PEM".to_owned(),
                cert_pem: String::new(),
                key_pem: crate::secret::Secret::new(String::new()),
            });
        }
        target
    }

    fn files(target: &Target) -> BTreeMap<String, String> {
        target
            .registry_client_files()
            .into_iter()
            .map(|file| {
                assert!(!file.secret, "{}", file.path);
                (file.path, file.content)
            })
            .collect()
    }

    #[test]
    fn clients_trust_the_registry_ca_by_default() {
        let containerd = files(&target("containerd", "", true));
        assert_eq!(
            containerd["/etc/containerd/certs.d/sea.hub:5000/ca.crt"],
            "CA PEM"
        );
        assert_eq!(
            containerd["/etc/containerd/certs.d/docker.io/hosts.toml"],
            "server = \"https://registry-1.docker.io\"\n\n[host.\"https://sea.hub:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"/etc/containerd/certs.d/sea.hub:5000/ca.crt\"\n"
        );
        let docker = target("docker", "", true);
        assert_eq!(
            files(&docker)["/etc/docker/certs.d/sea.hub:5000/ca.crt"],
            "CA PEM"
        );
        assert_eq!(
            docker.docker_registry_entries(),
            Some(RegistryEntries {
                mirror: "https://sea.hub:5000".to_owned(),
                insecure: None
            })
        );
    }

    #[test]
    fn delete_tries_the_files_of_every_registry_setting() {
        let insecure = "  registry:\n    localRegistry:\n      insecure: true\n";
        let script = target("containerd", insecure, false).remove_registry_client_files();
        for path in [
            "/etc/containerd/certs.d/sea.hub:5000/ca.crt",
            "/etc/docker/certs.d/sea.hub:5000/ca.crt",
            "/var/lib/kubelet/config.json",
            "/root/.docker/config.json",
            "/etc/containerd/certs.d/docker.io/hosts.toml",
            "/etc/docker/daemon.json.sealer-backup",
        ] {
            assert!(script.contains(path), "{path} in {script}");
        }
    }

    #[test]
    fn an_insecure_registry_is_plain_http_for_its_clients() {
        let insecure =
            "  registry:\n    localRegistry:\n      domain: hub.local\n      insecure: true\n";
        let containerd = files(&target("containerd", insecure, false));
        assert_eq!(
            containerd.keys().collect::<Vec<_>>(),
            [
                "/etc/containerd/certs.d/docker.io/hosts.toml",
                "/etc/containerd/certs.d/hub.local:5000/hosts.toml"
            ]
        );
        assert!(
            containerd["/etc/containerd/certs.d/hub.local:5000/hosts.toml"]
                .contains("[host.\"http://hub.local:5000\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n  skip_verify = true\n")
        );
        let docker = target("docker", insecure, false);
        assert!(files(&docker).is_empty());
        assert_eq!(
            docker.docker_registry_entries(),
            Some(RegistryEntries {
                mirror: "http://hub.local:5000".to_owned(),
                insecure: Some("hub.local:5000".to_owned())
            })
        );
    }

    #[test]
    fn credentials_go_into_secret_files_only() {
        let state = tempfile::tempdir().unwrap();
        let mut target = target("containerd", "", true);
        target.registry_auth = Some(
            RegistryAuth::ensure(
                state.path(),
                "sea.hub:5000",
                "u",
                &crate::secret::Secret::new("p".to_owned()),
                false,
            )
            .unwrap(),
        );
        let files = target.registry_client_files();
        let secret: Vec<&str> = files
            .iter()
            .filter(|file| file.secret)
            .map(|file| file.path.as_str())
            .collect();
        assert_eq!(
            secret,
            [
                "/etc/containerd/certs.d/sea.hub:5000/hosts.toml",
                "/etc/containerd/certs.d/docker.io/hosts.toml",
                "/var/lib/kubelet/config.json"
            ]
        );
        for file in &files {
            assert_eq!(
                file.content.contains("dTpw"),
                file.secret,
                "{}: {}",
                file.path,
                file.content
            );
        }
        assert!(files[2].content.ends_with(
            "  ca = \"/etc/containerd/certs.d/sea.hub:5000/ca.crt\"\n  [host.\"https://sea.hub:5000\".header]\n    Authorization = [\"Basic dTpw\"]\n"
        ));
        let keep: Vec<&str> = files.iter().map(|file| keep_above(&file.path)).collect();
        assert_eq!(keep, ["/etc", "/etc", "/etc", "/var/lib"]);
    }

    #[test]
    fn changed_image_content_changes_the_distribution_steps() {
        let first = target("containerd", "", true);
        let mut second = first.clone();
        second.image.content_key = "another key".to_owned();
        let distribution = |target: &Target| -> Vec<String> {
            crate::plan::install_plan(target)
                .steps()
                .filter(|step| step.id.starts_with("distribute/"))
                .map(Step::fingerprint)
                .collect()
        };
        assert_eq!(distribution(&first).len(), 1);
        assert_ne!(
            distribution(&first),
            distribution(&second),
            "a resumed run distributes the new content"
        );
    }

    #[test]
    fn the_certificate_names_the_domain_extra_names_and_registry_hosts() {
        let registry = "  registry:\n    localRegistry:\n      cert:\n        subjectAltName:\n          dnsNames: [hub.example.com]\n          ips: [192.0.2.7]\n";
        assert_eq!(
            target("containerd", registry, true).registry_certificate_names(),
            ["sea.hub", "hub.example.com", "192.0.2.7", "10.0.0.2"]
        );
    }
}
