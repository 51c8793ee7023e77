//! RUN: an ExecOp whose result is the new rootfs.
//!
//! A ClusterImage rootfs rarely holds a shell, so a run image can be named (the build arg
//! [`RUN_IMAGE_ARG`]): the command then runs in that image with the rootfs mounted at
//! [`ROOTFS_MOUNT`], its working directory, as the embedded engine runs commands in the
//! rootfs directory on the build host. Without one, the rootfs itself is the root.

use kubefile::plan::{RunCommand, RunStep};

use crate::exec::{ExecBuilder, NetMode, Process};
use crate::file::FileBuilder;
use crate::graph::{Graph, Output};
use crate::pb;

/// The build arg naming the image RUN commands run in.
pub const RUN_IMAGE_ARG: &str = "SEALER_RUN_IMAGE";
/// Where the rootfs is mounted in the run image.
pub const ROOTFS_MOUNT: &str = "/sealer/rootfs";
/// The variable holding the rootfs's absolute path, as the embedded engine sets it.
const ROOTFS_VARIABLE: &str = "SEALER_ROOTFS";
/// BuildKit's `PATH` when the image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Rootfs directories searched first, as the embedded engine searches them.
const ROOTFS_BIN_DIRS: [&str; 3] = ["bin", "usr/bin", "usr/local/bin"];
/// `HOME` of RUN commands unless the step sets one.
const HOME: &str = "/root";

/// Where a RUN command runs.
#[derive(Debug, Clone, Copy)]
pub enum RunRoot<'a> {
    /// In the rootfs itself. The paths listed were absent before the command; BuildKit
    /// v0.8 leaves the mount points it made for them (`/dev`, `/etc/hosts`, ...) in the
    /// result, so they are removed again.
    Rootfs {
        /// Mount points to remove from the result.
        absent_mount_points: &'a [String],
    },
    /// In a run image, with the rootfs at [`ROOTFS_MOUNT`].
    Image {
        /// The run image's root filesystem.
        image: &'a Output,
        /// The run image's `PATH`, if its config sets one.
        path: Option<&'a str>,
    },
}

/// The paths BuildKit v0.8 makes in a root mount for an exec and leaves behind.
pub const MOUNT_POINTS: [&str; 5] = ["/dev", "/proc", "/sys", "/etc/hosts", "/etc/resolv.conf"];

/// How the steps of one build run.
pub struct RunInputs<'a> {
    /// The platform of the build.
    pub platform: &'a pb::Platform,
    /// The network of `RUN --network=default`: the client's choice for the whole build
    /// (`force-network-mode`: `Unset` is the sandbox).
    pub default_network: NetMode,
    /// Run the step even when BuildKit has its result cached (`--no-cache`).
    pub ignore_cache: bool,
    /// Extra `/etc/hosts` entries (`--add-host`): host name and IP address.
    pub extra_hosts: &'a [(String, String)],
}

/// Adds the ExecOp of `step` on `state` (`None` = scratch), named `name`; returns the new
/// rootfs.
pub fn run_step(
    graph: &mut Graph,
    state: Option<&Output>,
    step: &RunStep,
    root: RunRoot<'_>,
    inputs: &RunInputs<'_>,
    name: &str,
) -> Output {
    let (rootfs_dir, search_path) = match root {
        RunRoot::Rootfs { .. } => ("/", DEFAULT_PATH),
        RunRoot::Image { path, .. } => (ROOTFS_MOUNT, path.unwrap_or(DEFAULT_PATH)),
    };
    let process = Process {
        args: match &step.command {
            RunCommand::Shell(script) => vec!["/bin/sh".into(), "-c".into(), script.clone()],
            RunCommand::Exec(argv) => argv.clone(),
        },
        env: environment(step, rootfs_dir, search_path),
        cwd: rootfs_dir.to_owned(),
        user: String::new(),
        extra_hosts: inputs.extra_hosts.to_vec(),
    };
    let network = match step.network.as_str() {
        "none" => NetMode::None,
        "host" => NetMode::Host,
        _ => inputs.default_network,
    };
    let exec = ExecBuilder::new(process, inputs.platform).network(network);
    let exec = match root {
        RunRoot::Rootfs { .. } => exec.bind("/", state, false, "", true),
        RunRoot::Image { image, .. } => {
            exec.bind("/", Some(image), true, "", false)
                .bind(ROOTFS_MOUNT, state, false, "", true)
        }
    };
    let (mut vertex, _) = exec.build();
    vertex.metadata = vertex
        .metadata
        .named(name)
        .ignoring_cache(inputs.ignore_cache);
    let result = graph.add_vertex(vertex).at(0);
    let RunRoot::Rootfs {
        absent_mount_points,
    } = root
    else {
        return result;
    };
    let cleanup = absent_mount_points.iter().fold(
        FileBuilder::new(Some(&result), inputs.platform),
        |file, path| file.rm(path.clone(), true, false),
    );
    match cleanup.build() {
        Some(vertex) => graph.add_vertex(vertex),
        None => result,
    }
}

/// The step's variables, then `HOME` and `PATH` unless it sets them (the rootfs's binary
/// directories first), and the rootfs's path.
fn environment(step: &RunStep, rootfs_dir: &str, search_path: &str) -> Vec<String> {
    let sets = |name: &str| step.env.iter().any(|variable| variable.name == name);
    let mut env: Vec<String> = step
        .env
        .iter()
        .filter(|variable| variable.name != ROOTFS_VARIABLE)
        .map(|variable| format!("{}={}", variable.name, variable.value))
        .collect();
    if !sets("HOME") {
        env.push(format!("HOME={HOME}"));
    }
    if !sets("PATH") {
        let rootfs_bins = ROOTFS_BIN_DIRS
            .iter()
            .map(|dir| format!("{}/{dir}", rootfs_dir.trim_end_matches('/')));
        let path: Vec<String> = rootfs_bins
            .chain(search_path.split(':').map(str::to_owned))
            .fold(Vec::new(), |mut unique, dir| {
                if !unique.contains(&dir) {
                    unique.push(dir);
                }
                unique
            });
        env.push(format!("PATH={}", path.join(":")));
    }
    env.push(format!("{ROOTFS_VARIABLE}={rootfs_dir}"));
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubefile::plan::{EnvVar, Location};

    fn step(network: &str) -> RunStep {
        RunStep {
            location: Location { line: 3, column: 1 },
            command: RunCommand::Shell("echo hi > out".into()),
            env: vec![EnvVar {
                name: "A".into(),
                value: "1".into(),
            }],
            network: network.into(),
        }
    }

    fn exec_of(graph: &Graph, output: &Output) -> (pb::Op, pb::ExecOp) {
        graph
            .definition(output)
            .def
            .iter()
            .map(|bytes| <pb::Op as prost::Message>::decode(bytes.as_slice()).expect("op"))
            .find_map(|op| match &op.op {
                Some(pb::op::Op::Exec(exec)) => Some((op.clone(), exec.clone())),
                _ => None,
            })
            .expect("an exec op")
    }

    fn inputs(platform: &pb::Platform, host: bool) -> RunInputs<'_> {
        RunInputs {
            platform,
            default_network: if host { NetMode::Host } else { NetMode::Unset },
            ignore_cache: false,
            extra_hosts: &[],
        }
    }

    #[test]
    fn a_run_image_gets_the_rootfs_mounted_at_its_working_directory() {
        let mut graph = Graph::new();
        let platform = pb::Platform::default();
        let image = graph.add_vertex(crate::source::image(
            "docker.io/library/busybox:latest",
            &platform,
            crate::source::ResolveMode::Default,
        ));
        let root = RunRoot::Image {
            image: &image,
            path: Some("/bin:/usr/bin"),
        };
        let out = run_step(
            &mut graph,
            None,
            &step("default"),
            root,
            &inputs(&platform, true),
            "RUN",
        );
        let (op, exec) = exec_of(&graph, &out);
        assert_eq!(op.inputs.len(), 1);
        let mounts: Vec<(&str, i64, i64, bool)> = exec
            .mounts
            .iter()
            .map(|m| (m.dest.as_str(), m.input, m.output, m.readonly))
            .collect();
        assert_eq!(mounts, [("/", 0, -1, true), (ROOTFS_MOUNT, -1, 0, false)]);
        let meta = exec.meta.expect("meta");
        assert_eq!(meta.cwd, ROOTFS_MOUNT);
        assert_eq!(
            meta.env,
            [
                "A=1",
                "HOME=/root",
                "PATH=/sealer/rootfs/bin:/sealer/rootfs/usr/bin:/sealer/rootfs/usr/local/bin:/bin:/usr/bin",
                "SEALER_ROOTFS=/sealer/rootfs"
            ]
        );
        assert_eq!(exec.network, i32::from(NetMode::Host));
    }

    #[test]
    fn in_the_rootfs_the_absent_mount_points_are_removed_afterwards() {
        let mut graph = Graph::new();
        let platform = pb::Platform::default();
        let absent = vec!["/dev".to_owned(), "/etc/hosts".to_owned()];
        let root = RunRoot::Rootfs {
            absent_mount_points: &absent,
        };
        let out = run_step(
            &mut graph,
            None,
            &step("none"),
            root,
            &inputs(&platform, true),
            "RUN",
        );
        let (_, exec) = exec_of(&graph, &out);
        assert_eq!(exec.network, i32::from(NetMode::None));
        let definition = graph.definition(&out);
        let rm: Vec<String> = definition
            .def
            .iter()
            .map(|bytes| <pb::Op as prost::Message>::decode(bytes.as_slice()).expect("op"))
            .filter_map(|op| match op.op {
                Some(pb::op::Op::File(file)) => Some(file.actions),
                _ => None,
            })
            .flatten()
            .filter_map(|action| match action.action {
                Some(pb::file_action::Action::Rm(rm)) => Some(rm.path),
                _ => None,
            })
            .collect();
        assert_eq!(rm, absent);
    }

    #[test]
    fn the_default_network_is_the_sandbox_unless_the_client_forces_host() {
        let mut graph = Graph::new();
        let platform = pb::Platform::default();
        let root = RunRoot::Rootfs {
            absent_mount_points: &[],
        };
        let out = run_step(
            &mut graph,
            None,
            &step("default"),
            root,
            &inputs(&platform, false),
            "RUN",
        );
        assert_eq!(exec_of(&graph, &out).1.network, i32::from(NetMode::Unset));
    }
}
