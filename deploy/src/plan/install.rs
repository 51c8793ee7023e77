//! The install plan (the original's sequence, section 5.2 of its behaviour) and the upgrade.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::clusterfile::{Host, Phase};

use super::shell::{self, quote};
use super::{Action, Environment, Operation, Plan, RegistryFiles, Stage, Step};
use crate::registry_auth::RegistryAuth;
use crate::registry_tls::RegistryTls;
use crate::target::Target;

/// Flags `kubeadm init` and `kubeadm join` are given, as the original gives them.
pub(crate) const IGNORED_PREFLIGHT_ERRORS: &str =
    "SystemVerification,Port-10250,DirAvailable--etc-kubernetes-manifests";

/// Name the control plane is reached by; `/etc/hosts` maps it on every host.
pub(crate) const APISERVER_NAME: &str = "apiserver.cluster.local";

/// Installs the cluster on every host.
pub fn install_plan(target: &Target) -> Plan {
    let cluster = &target.clusterfile.cluster;
    let all: Vec<&Host> = cluster.hosts.iter().collect();
    let mut plan = Plan {
        operation: Operation::Install,
        cluster: cluster.name.clone(),
        stages: Vec::new(),
    };
    plan.push(inventory(target, &all));
    plan.push(host_aliases(target, &all));
    plan.push(distribute(target, &all));
    plan.push(target.hook_stage(Phase::PreInstall, &all));
    plan.push(target.hook_stage(Phase::PreInitHost, &all));
    plan.push(container_runtime(target, &all));
    plan.push(registry_servers(target, &all));
    plan.push(registry_clients(target, &all));
    plan.push(init_master0(target));
    let masters: Vec<&Host> = cluster.masters().skip(1).collect();
    let workers: Vec<&Host> = cluster.workers().collect();
    plan.push(join_masters(target, &masters));
    plan.push(join_workers(target, &workers));
    plan.push(target.hook_stage(Phase::PostInitHost, &all));
    plan.push(target.hook_stage(Phase::PostInstall, &all));
    plan.push(labels(target, &all));
    plan.push(launch(target));
    plan.push(save(target));
    plan
}

/// Moves an installed cluster to the target's image: distribution of the new rootfs, the
/// `upgrade-host` hooks, the registry again, the `upgrade` hook on master0, the apps.
pub fn upgrade_plan(target: &Target) -> Plan {
    let cluster = &target.clusterfile.cluster;
    let all: Vec<&Host> = cluster.hosts.iter().collect();
    let mut plan = Plan {
        operation: Operation::Upgrade,
        cluster: cluster.name.clone(),
        stages: Vec::new(),
    };
    plan.push(distribute(target, &all));
    plan.push(target.hook_stage(Phase::UpgradeHost, &all));
    plan.push(registry_servers(target, &all));
    plan.push(registry_clients(target, &all));
    plan.push(target.hook_stage(Phase::Upgrade, &all));
    plan.push(launch(target));
    plan.push(save(target));
    plan
}

/// Before anything changes on `hosts`: which of the paths a delete removes were there
/// already, recorded once in `<cluster dir>/host-before`, so that a delete keeps them.
pub(super) fn inventory(target: &Target, hosts: &[&Host]) -> Stage {
    let dir = quote(&target.cluster_dir());
    let script = format!(
        "mkdir -p {dir}\nif [ ! -f {dir}/host-before ]; then\n  for path in {}; do\n    if [ -e \"$path\" ]; then echo \"$path\"; fi\n  done >{dir}/host-before.tmp\n  mv {dir}/host-before.tmp {dir}/host-before\nfi\n",
        super::delete::KUBERNETES_LEFTOVERS.join(" ")
    );
    Stage::parallel(
        "inventory",
        hosts
            .iter()
            .map(|host| {
                Step::new(
                    "inventory",
                    host.ip,
                    host_script("record what the host has before the install", &script),
                )
            })
            .collect(),
    )
}

/// `hostAliases` written to `/etc/hosts` of `hosts`.
pub(super) fn host_aliases(target: &Target, hosts: &[&Host]) -> Stage {
    let cluster = &target.clusterfile.cluster;
    if cluster.host_aliases.is_empty() {
        return Stage::parallel("host-aliases", Vec::new());
    }
    let entries: Vec<(IpAddr, Vec<String>)> = cluster
        .host_aliases
        .iter()
        .map(|alias| (alias.ip, alias.hostnames.clone()))
        .collect();
    let script = shell::set_hosts_lines(&cluster.name, "alias", &entries);
    Stage::parallel(
        "host-aliases",
        hosts
            .iter()
            .map(|host| {
                Step::new(
                    "host-aliases",
                    host.ip,
                    host_script("write host aliases to /etc/hosts", &script),
                )
            })
            .collect(),
    )
}

/// The rootfs streamed to `hosts`, with the registry data on the registry hosts.
pub(super) fn distribute(target: &Target, hosts: &[&Host]) -> Stage {
    let registry_hosts = target.registry_hosts();
    Stage::parallel(
        "distribute",
        hosts
            .iter()
            .map(|host| {
                Step::new(
                    "distribute",
                    host.ip,
                    Action::Distribute {
                        with_registry: registry_hosts.contains(&host.ip),
                        content_key: target.image.content_key.clone(),
                    },
                )
            })
            .collect(),
    )
}

/// The image's container runtime script (`scripts/<type>.sh`) on `hosts`.
pub(super) fn container_runtime(target: &Target, hosts: &[&Host]) -> Stage {
    let runtime = target.container_runtime();
    let name = format!("{runtime}.sh");
    if !target.image.has_script(&name) {
        return Stage::parallel("container-runtime", Vec::new());
    }
    let script = shell::image_script(&target.rootfs(), &name, &[]);
    Stage::parallel(
        "container-runtime",
        hosts
            .iter()
            .map(|host| {
                Step::new(
                    "container-runtime",
                    host.ip,
                    host_script(&format!("scripts/{name}"), &script),
                )
            })
            .collect(),
    )
}

/// The registry on the registry hosts among `hosts`: its certificate when it serves TLS, then
/// the image's `init-registry.sh` when it has one, the built-in registry otherwise.
pub(super) fn registry_servers(target: &Target, hosts: &[&Host]) -> Stage {
    let Some((domain, port)) = target.local_registry_address() else {
        return Stage::sequential("registry", Vec::new());
    };
    // The same files and server step on every registry host: made once.
    let files = RegistryFiles {
        certificate_sha256: target
            .registry_tls
            .as_ref()
            .map(RegistryTls::certificate_digest),
        htpasswd_sha256: target.registry_auth.as_ref().map(RegistryAuth::digest),
    };
    let mut installs = Vec::new();
    if let Some(digest) = &files.certificate_sha256 {
        installs.push((
            "registry-certificate",
            Action::InstallRegistryCertificate {
                domain: domain.clone(),
                certificate_sha256: digest.clone(),
            },
        ));
    }
    if let Some(digest) = &files.htpasswd_sha256 {
        installs.push((
            "registry-htpasswd",
            Action::InstallRegistryHtpasswd {
                htpasswd_sha256: digest.clone(),
            },
        ));
    }
    let server = if target.image.has_script("init-registry.sh") {
        // The digests make the step change, and run again, with the files it reads.
        let mut script = String::new();
        for (what, digest) in [
            ("certificate", &files.certificate_sha256),
            ("htpasswd", &files.htpasswd_sha256),
        ] {
            if let Some(digest) = digest {
                let _ = writeln!(script, "# serves the {what} with SHA-256 {digest}");
            }
        }
        let rootfs = target.rootfs();
        let data = format!("{rootfs}/registry");
        script.push_str(&shell::image_script(
            &rootfs,
            "init-registry.sh",
            &[&port.to_string(), &data, &domain],
        ));
        host_script("scripts/init-registry.sh", &script)
    } else {
        Action::StartBuiltinRegistry { port, files }
    };
    let mut steps = Vec::new();
    for ip in target.registry_hosts_among(hosts) {
        for (id, action) in &installs {
            steps.push(Step::new(*id, ip, action.clone()));
        }
        steps.push(Step::new("registry", ip, server.clone()));
    }
    Stage::sequential("registry", steps)
}

/// Every host resolves the registry's domain and pulls through it: `/etc/hosts`, containerd's
/// `hosts.toml` for the registry and for the domains of the images the ClusterImage caches.
pub(super) fn registry_clients(target: &Target, hosts: &[&Host]) -> Stage {
    let (Some((domain, port)), Some(endpoint)) = (
        target.local_registry_address(),
        target.registry_client_endpoint(),
    ) else {
        return Stage::parallel("registry-clients", Vec::new());
    };
    let cluster = &target.clusterfile.cluster;
    // What every host gets besides its /etc/hosts line: made once.
    let mut files_script = String::new();
    let mut secret_paths = Vec::new();
    for file in target.registry_client_files() {
        if file.secret {
            secret_paths.push(file.path);
        } else {
            files_script.push_str(&shell::write_owned_file(
                &cluster.name,
                &file.path,
                &file.content,
            ));
        }
    }
    let docker_daemon = target
        .docker_registry_entries()
        .map(|entries| Action::ConfigureDockerDaemon { entries });
    let login = target
        .registry_auth
        .as_ref()
        .map(|auth| Action::InstallRegistryLogin {
            paths: secret_paths,
            endpoint,
            htpasswd_sha256: auth.digest(),
        });
    let registry_hosts = target.registry_hosts();
    let mut steps = Vec::new();
    for host in hosts {
        // A registry host uses its own registry; the others the first registry host.
        let server = if registry_hosts.contains(&host.ip) {
            host.ip
        } else {
            registry_hosts[0]
        };
        let mut script =
            shell::set_hosts_lines(&cluster.name, "registry", &[(server, vec![domain.clone()])]);
        script.push_str(&files_script);
        steps.push(Step::new(
            "registry-clients",
            host.ip,
            host_script(&format!("use the registry {domain}:{port}"), &script),
        ));
        for (id, action) in [
            ("docker-daemon", &docker_daemon),
            ("registry-login", &login),
        ] {
            if let Some(action) = action {
                steps.push(Step::new(id, host.ip, action.clone()));
            }
        }
    }
    Stage::parallel("registry-clients", steps)
}

/// `init-kube.sh` on `host` (when the image has it) and the control plane's name.
fn prepare_kube(target: &Target, host: IpAddr, apiserver: IpAddr) -> Vec<Step> {
    let mut steps = Vec::new();
    if target.image.has_script("init-kube.sh") {
        steps.push(Step::new(
            "init-kube",
            host,
            host_script(
                "scripts/init-kube.sh",
                &shell::image_script(&target.rootfs(), "init-kube.sh", &[]),
            ),
        ));
    }
    steps.push(apiserver_line(target, host, apiserver));
    steps
}

/// `/etc/hosts` of `host` maps the control plane's name to `apiserver`.
fn apiserver_line(target: &Target, host: IpAddr, apiserver: IpAddr) -> Step {
    let cluster = &target.clusterfile.cluster;
    Step::new(
        format!("apiserver-address-{apiserver}"),
        host,
        host_script(
            &format!("resolve {APISERVER_NAME} to {apiserver}"),
            &shell::set_hosts_lines(
                &cluster.name,
                "apiserver",
                &[(apiserver, vec![APISERVER_NAME.to_owned()])],
            ),
        ),
    )
}

/// master0: `init-kube.sh`, the audit policy, `kubeadm init`.
fn init_master0(target: &Target) -> Stage {
    let master0 = target.clusterfile.cluster.master0().ip;
    let mut steps = prepare_kube(target, master0, master0);
    steps.push(Step::new(
        "kubeadm-init",
        master0,
        Action::KubeadmInit {
            config: target.image.kubeadm_config.clone(),
            node_name: target.node_name(master0),
        },
    ));
    Stage::sequential("init-master0", steps)
}

/// The other masters, one after the other (etcd grows one member at a time).
pub(super) fn join_masters(target: &Target, masters: &[&Host]) -> Stage {
    let master0 = target.clusterfile.cluster.master0().ip;
    let mut steps = Vec::new();
    for host in masters {
        steps.extend(prepare_kube(target, host.ip, master0));
        steps.push(Step::new(
            "kubeadm-join",
            host.ip,
            Action::KubeadmJoin {
                control_plane: true,
                node_name: target.node_name(host.ip),
            },
        ));
        steps.push(apiserver_line(target, host.ip, host.ip));
    }
    Stage::sequential("join-masters", steps)
}

/// The workers, at the same time.
pub(super) fn join_workers(target: &Target, workers: &[&Host]) -> Stage {
    let master0 = target.clusterfile.cluster.master0().ip;
    let mut steps = Vec::new();
    for host in workers {
        steps.extend(prepare_kube(target, host.ip, master0));
        steps.push(Step::new(
            "kubeadm-join",
            host.ip,
            Action::KubeadmJoin {
                control_plane: false,
                node_name: target.node_name(host.ip),
            },
        ));
    }
    Stage::parallel("join-workers", steps)
}

/// Role labels, host labels and taints, applied from master0.
pub(super) fn labels(target: &Target, hosts: &[&Host]) -> Stage {
    let master0 = target.clusterfile.cluster.master0().ip;
    let steps = hosts
        .iter()
        .map(|host| {
            let mut labels: Vec<String> = host
                .roles
                .iter()
                .map(|role| format!("node-role.kubernetes.io/{role}="))
                .collect();
            labels.extend(host.labels.iter().map(|(k, v)| format!("{k}={v}")));
            Step::new(
                format!("labels-{}", host.ip),
                master0,
                Action::LabelNode {
                    node_host: host.ip,
                    node_name: target.node_name(host.ip),
                    labels,
                    taints: host.taints.iter().map(ToString::to_string).collect(),
                },
            )
        })
        .collect();
    Stage::sequential("labels", steps)
}

/// The launch commands on master0, from the rootfs, without the cluster's environment (as
/// the original runs them).
pub(super) fn launch(target: &Target) -> Stage {
    let master0 = target.clusterfile.cluster.master0().ip;
    let rootfs = quote(&target.rootfs());
    let steps = target
        .launch_commands()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, command)| {
            Step::new(
                format!("launch-{index}"),
                master0,
                Action::Script {
                    title: format!("launch: {command}"),
                    script: format!("cd {rootfs} && {command}\n"),
                    environment: Environment::Bare,
                },
            )
        })
        .collect();
    Stage::sequential("launch", steps)
}

/// The Clusterfile saved on master0 and in the cluster.
pub(super) fn save(target: &Target) -> Stage {
    let master0 = target.clusterfile.cluster.master0().ip;
    Stage::sequential(
        "save",
        vec![Step::new(
            "save-clusterfile",
            master0,
            Action::SaveClusterfile,
        )],
    )
}

/// A script run with the host's environment.
pub(super) fn host_script(title: &str, script: &str) -> Action {
    Action::Script {
        title: title.to_owned(),
        script: script.to_owned(),
        environment: Environment::Host,
    }
}
