//! Adding hosts to an installed cluster (the original's `join` / `scale-up`).

use crate::clusterfile::{Host, Phase};
use crate::target::Target;

use super::install::{
    container_runtime, distribute, host_aliases, inventory, join_masters, join_workers, labels,
    registry_clients, registry_servers, save,
};
use super::{Action, Operation, Plan, Stage, Step};

/// Joins `added` (IP addresses of the target's hosts that the installed cluster lacks).
pub fn scale_up_plan(target: &Target, added: &[std::net::IpAddr]) -> Plan {
    let cluster = &target.clusterfile.cluster;
    let new: Vec<&Host> = cluster
        .hosts
        .iter()
        .filter(|host| added.contains(&host.ip))
        .collect();
    let new_masters: Vec<&Host> = cluster
        .masters()
        .filter(|host| added.contains(&host.ip))
        .collect();
    let new_workers: Vec<&Host> = cluster
        .workers()
        .filter(|host| added.contains(&host.ip))
        .collect();
    let mut plan = Plan {
        operation: Operation::ScaleUp,
        cluster: cluster.name.clone(),
        stages: Vec::new(),
    };
    plan.push(inventory(target, &new));
    plan.push(host_aliases(target, &new));
    plan.push(distribute(target, &new));
    plan.push(target.hook_stage(Phase::PreScaleUp, &new));
    plan.push(target.hook_stage(Phase::PreInitHost, &new));
    plan.push(container_runtime(target, &new));
    // New masters of a highly available registry serve it too (they resolve its domain to
    // themselves).
    plan.push(registry_servers(target, &new));
    plan.push(registry_clients(target, &new));
    if !new.is_empty() {
        plan.push(Stage::sequential(
            "join-token",
            vec![Step::new(
                "kubeadm-token",
                cluster.master0().ip,
                Action::KubeadmRefreshJoin,
            )],
        ));
    }
    plan.push(join_masters(target, &new_masters));
    plan.push(join_workers(target, &new_workers));
    plan.push(target.hook_stage(Phase::PostInitHost, &new));
    plan.push(labels(target, &new));
    plan.push(target.hook_stage(Phase::PostScaleUp, &new));
    plan.push(save(target));
    plan
}
