//! Removing hosts from a cluster, or the whole cluster (the original's `delete`).

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::clusterfile::{Host, Phase};
use crate::target::Target;

use super::install::{host_script, save};
use super::shell::{self, quote};
use super::{Action, Operation, Plan, Stage, Step};

/// What `kubeadm reset` leaves, which the original removes; a path that was on the host
/// before the install (see [`super::install::inventory`]) is kept.
pub(super) const KUBERNETES_LEFTOVERS: [&str; 7] = [
    "/etc/kubernetes",
    "/var/lib/kubelet",
    "/etc/cni",
    "/opt/cni",
    "/var/lib/etcd",
    "/root/.kube/config",
    "/root/.kube",
];

/// Removes `removed` (hosts of `target`, the cluster as installed) from the cluster,
/// cleaning them.
pub fn scale_down_plan(target: &Target, removed: &[&Host]) -> Plan {
    let cluster = &target.clusterfile.cluster;
    let master0 = cluster.master0().ip;
    let mut plan = Plan {
        operation: Operation::ScaleDown,
        cluster: cluster.name.clone(),
        stages: Vec::new(),
    };
    plan.push(target.hook_stage(Phase::PreCleanHost, removed));
    plan.push(Stage::sequential(
        "delete-nodes",
        removed
            .iter()
            .map(|host| {
                Step::new(
                    format!("delete-node-{}", host.ip),
                    master0,
                    Action::DeleteNode {
                        node_host: host.ip,
                        node_name: target.node_name(host.ip),
                    },
                )
            })
            .collect(),
    ));
    plan.push(stop_registry(target, removed));
    clean_hosts(target, removed, true, &mut plan);
    plan.push(save(target));
    plan
}

/// Removes the cluster from every host; `prune` removes the cluster's directory too.
pub fn delete_plan(target: &Target, prune: bool) -> Plan {
    let cluster = &target.clusterfile.cluster;
    let all: Vec<&Host> = cluster.hosts.iter().collect();
    let mut plan = Plan {
        operation: Operation::Delete,
        cluster: cluster.name.clone(),
        stages: Vec::new(),
    };
    plan.push(target.hook_stage(Phase::PreUninstall, &all));
    plan.push(target.hook_stage(Phase::PreCleanHost, &all));
    plan.push(reset(target, &all));
    plan.push(stop_registry(target, &all));
    clean_hosts_after_reset(target, &all, prune, &mut plan);
    plan.push(target.hook_stage(Phase::PostUninstall, &all));
    plan
}

/// The clean of `hosts` from the reset on.
fn clean_hosts(target: &Target, hosts: &[&Host], prune: bool, plan: &mut Plan) {
    plan.push(reset(target, hosts));
    clean_hosts_after_reset(target, hosts, prune, plan);
}

fn clean_hosts_after_reset(target: &Target, hosts: &[&Host], prune: bool, plan: &mut Plan) {
    let cluster = &target.clusterfile.cluster.name;
    let rootfs = target.rootfs();
    let runtime = target.container_runtime();
    let uninstall = format!("uninstall-{runtime}.sh");
    let each = |name: &str, title: &str, script: String| {
        Stage::parallel(
            name,
            hosts
                .iter()
                .map(|host| Step::new(name, host.ip, host_script(title, &script)))
                .collect(),
        )
    };
    let mut registry_clients = shell::remove_hosts_lines(cluster, "registry");
    registry_clients.push_str(&target.remove_registry_client_files());
    plan.push(each(
        "clean-registry-clients",
        "remove the registry's client configuration",
        registry_clients,
    ));
    if target.image.has_script(&uninstall) {
        plan.push(each(
            "uninstall-container-runtime",
            &format!("scripts/{uninstall}"),
            shell::when_dir_exists(&format!("{rootfs}/scripts"), &format!("bash {uninstall}")),
        ));
    }
    plan.push(target.hook_stage(Phase::PostCleanHost, hosts));
    let mut hosts_lines = shell::remove_hosts_lines(cluster, "alias");
    hosts_lines.push_str(&shell::remove_hosts_lines(cluster, "apiserver"));
    plan.push(each(
        "clean-hosts-file",
        "remove the cluster's /etc/hosts lines",
        hosts_lines,
    ));
    if prune {
        let dir = quote(&target.cluster_dir());
        let data_root = quote(&target.clusterfile.cluster.data_root.display().to_string());
        plan.push(each(
            "prune",
            "remove the cluster's directory",
            format!("rm -rf {dir}\nrmdir -p {data_root} 2>/dev/null || true\n"),
        ));
    }
}

/// `kubeadm reset`, the image's `clean-kube.sh` and what they leave.
fn reset(target: &Target, hosts: &[&Host]) -> Stage {
    let rootfs = target.rootfs();
    let mut script =
        String::from("if command -v kubeadm >/dev/null 2>&1; then kubeadm reset -f; fi\n");
    if target.image.has_script("clean-kube.sh") {
        script.push_str(&shell::when_dir_exists(
            &format!("{rootfs}/scripts"),
            "bash clean-kube.sh",
        ));
    }
    let before = quote(&format!("{}/host-before", target.cluster_dir()));
    let _ = writeln!(
        script,
        "for path in {}; do\n  if ! grep -qxF \"$path\" {before} 2>/dev/null; then rm -rf \"$path\"; fi\ndone",
        KUBERNETES_LEFTOVERS.join(" ")
    );
    Stage::parallel(
        "reset",
        hosts
            .iter()
            .map(|host| {
                Step::new(
                    "reset",
                    host.ip,
                    host_script("kubeadm reset and clean", &script),
                )
            })
            .collect(),
    )
}

/// Stops the registry on the registry hosts among `hosts`: the image's `clean-registry.sh`
/// next to its `init-registry.sh`, or the built-in registry's service.
fn stop_registry(target: &Target, hosts: &[&Host]) -> Stage {
    let rootfs = target.rootfs();
    let steps = target
        .registry_hosts_among(hosts)
        .into_iter()
        .filter_map(|ip: IpAddr| {
            let action = if target.image.has_script("init-registry.sh") {
                if !target.image.has_script("clean-registry.sh") {
                    return None;
                }
                host_script(
                    "scripts/clean-registry.sh",
                    &shell::when_dir_exists(&format!("{rootfs}/scripts"), "bash clean-registry.sh"),
                )
            } else {
                host_script(
                    "stop the built-in registry",
                    &crate::builtin_registry::stop_script(target),
                )
            };
            Some(Step::new("stop-registry", ip, action))
        })
        .collect();
    Stage::sequential("stop-registry", steps)
}
