//! What the cluster should be: the Clusterfile and the facts of its prepared image, with the
//! decisions both together give (registry hosts, node names, hooks, launch commands).

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::clusterfile::{
    Clusterfile, DEFAULT_REGISTRY_PORT, Hook, Host, LocalRegistry, Phase, plugins_from_text,
};
use crate::plan::shell;
use crate::plan::{Action, Environment, Stage, Step};
use crate::prepare::ImageFacts;

/// The cluster as the Clusterfile and its image describe it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The Clusterfile.
    pub clusterfile: Clusterfile,
    /// What the prepared image holds.
    pub image: ImageFacts,
}

impl Target {
    /// The rootfs directory on every host, as a string for scripts.
    pub fn rootfs(&self) -> String {
        self.clusterfile.cluster.rootfs_dir().display().to_string()
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

    /// The files every host gets so that its container runtime pulls through the registry;
    /// `(path, content)`. containerd: a `hosts.toml` for the registry itself and, as a
    /// mirror, for every domain of the images the ClusterImage caches. docker: `daemon.json`
    /// with the registry as mirror and insecure registry (written only where the host has
    /// none of its own).
    pub fn registry_client_files(&self) -> Vec<(String, String)> {
        let Some((domain, port)) = self.local_registry_address() else {
            return Vec::new();
        };
        let endpoint = format!("http://{domain}:{port}");
        let registry = format!("{domain}:{port}");
        match self.container_runtime().as_str() {
            "containerd" => {
                let mut files = vec![(
                    containerd_hosts_toml(&registry),
                    format!(
                        "server = \"{endpoint}\"\n\n[host.\"{endpoint}\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n  skip_verify = true\n"
                    ),
                )];
                for domain in &self.image.mirror_domains {
                    let upstream = if domain == "docker.io" {
                        "https://registry-1.docker.io".to_owned()
                    } else {
                        format!("https://{domain}")
                    };
                    files.push((
                        containerd_hosts_toml(domain),
                        format!(
                            "server = \"{upstream}\"\n\n[host.\"{endpoint}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n"
                        ),
                    ));
                }
                files
            }
            "docker" => vec![(
                "/etc/docker/daemon.json".to_owned(),
                format!(
                    "{}\n",
                    serde_json::json!({
                        "registry-mirrors": [endpoint],
                        "insecure-registries": [registry],
                    })
                ),
            )],
            _ => Vec::new(),
        }
    }

    /// Scripts that remove what [`Target::registry_client_files`] wrote.
    pub fn remove_registry_client_files(&self) -> String {
        let cluster = &self.clusterfile.cluster.name;
        let mut script = String::new();
        for (path, _) in self.registry_client_files() {
            script.push_str(&shell::remove_owned_file(cluster, &path, "/etc"));
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

/// Where containerd reads a registry host's configuration.
fn containerd_hosts_toml(host: &str) -> String {
    format!("/etc/containerd/certs.d/{host}/hosts.toml")
}
