//! ExecOp builder with the mount order, input sharing, output numbering and caps of Go's
//! `client/llb/exec.go`: mounts sorted by destination, writable bind mounts numbered 0, 1, …
//! in that order, secret mounts appended last.

use crate::graph::{OpMetadata, Output, Vertex};
use crate::pb;

/// Sharing mode of a cache mount.
pub use pb::CacheSharingOpt as CacheSharing;
/// Network mode of an exec.
pub use pb::NetMode;

/// The process to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    /// argv.
    pub args: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// User (`name`, `uid`, `uid:gid`); empty means root.
    pub user: String,
    /// Extra `/etc/hosts` entries: host name and IP address.
    pub extra_hosts: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
enum MountKind {
    Bind {
        source: Option<Output>,
        readonly: bool,
        selector: String,
        output: bool,
    },
    Cache {
        id: String,
        sharing: CacheSharing,
    },
}

/// A secret the daemon fetches from the client's session and mounts as a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// The secret's id (`--secret id=…`).
    pub id: String,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    /// A missing secret is not an error.
    pub optional: bool,
}

/// Builds one ExecOp; add mounts, then [`ExecBuilder::build`].
#[derive(Debug, Clone)]
pub struct ExecBuilder {
    process: Process,
    platform: pb::Platform,
    network: NetMode,
    mounts: Vec<(String, MountKind)>,
    secrets: Vec<(String, Secret)>,
}

impl ExecBuilder {
    /// An exec of `process` on `platform`, sandboxed network, no mounts yet.
    pub fn new(process: Process, platform: &pb::Platform) -> Self {
        ExecBuilder {
            process,
            platform: platform.clone(),
            network: NetMode::Unset,
            mounts: Vec::new(),
            secrets: Vec::new(),
        }
    }

    /// Sets the network mode (`Unset` is the sandbox).
    #[must_use]
    pub fn network(mut self, network: NetMode) -> Self {
        self.network = network;
        self
    }

    /// Mounts `source` (or scratch when `None`) at `dest`. `selector` mounts only that path
    /// of the source (empty = all). A writable mount with `output` produces a result.
    #[must_use]
    pub fn bind(
        mut self,
        dest: impl Into<String>,
        source: Option<&Output>,
        readonly: bool,
        selector: impl Into<String>,
        output: bool,
    ) -> Self {
        let kind = MountKind::Bind {
            source: source.cloned(),
            readonly,
            selector: selector.into(),
            output,
        };
        self.mounts.push((dest.into(), kind));
        self
    }

    /// A persistent cache directory at `dest`, shared between builds by `id`.
    #[must_use]
    pub fn cache(
        mut self,
        dest: impl Into<String>,
        id: impl Into<String>,
        sharing: CacheSharing,
    ) -> Self {
        self.mounts.push((
            dest.into(),
            MountKind::Cache {
                id: id.into(),
                sharing,
            },
        ));
        self
    }

    /// A secret file at `dest`.
    #[must_use]
    pub fn secret(mut self, dest: impl Into<String>, secret: Secret) -> Self {
        self.secrets.push((dest.into(), secret));
        self
    }

    /// The ExecOp and, for each writable output mount, its destination and output index.
    pub fn build(mut self) -> (Vertex, Vec<(String, i64)>) {
        let mut caps = vec!["exec.meta.base"];
        if !self
            .process
            .env
            .iter()
            .any(|entry| entry.starts_with("PATH="))
        {
            caps.push("exec.meta.setsdefaultpath");
        }
        if self.network != NetMode::Unset {
            caps.push("exec.meta.network");
        }
        self.mounts.sort_by(|left, right| left.0.cmp(&right.0));

        let mut inputs: Vec<Output> = Vec::new();
        let mut mounts = Vec::new();
        let mut outputs = Vec::new();
        let mut next_output = 0;
        for (dest, kind) in self.mounts {
            let mut mount = pb::Mount {
                dest: dest.clone(),
                input: -1,
                output: -1,
                ..pb::Mount::default()
            };
            match kind {
                MountKind::Bind {
                    source,
                    readonly,
                    selector,
                    output,
                } => {
                    if let Some(source) = source {
                        caps.push("exec.mount.bind");
                        let position = inputs
                            .iter()
                            .position(|known| *known == source)
                            .unwrap_or_else(|| {
                                inputs.push(source);
                                inputs.len() - 1
                            });
                        mount.input = i64::try_from(position).unwrap_or(i64::MAX);
                    }
                    if !selector.is_empty() {
                        caps.push("exec.mount.selector");
                    }
                    if output && !readonly {
                        mount.output = next_output;
                        outputs.push((dest, next_output));
                        next_output += 1;
                    }
                    mount.readonly = readonly;
                    mount.selector = selector;
                }
                MountKind::Cache { id, sharing } => {
                    caps.extend(["exec.mount.cache", "exec.mount.cache.sharing"]);
                    mount.mount_type = pb::MountType::Cache.into();
                    mount.cache_opt = Some(pb::CacheOpt {
                        id,
                        sharing: sharing.into(),
                    });
                }
            }
            mounts.push(mount);
        }
        if !self.secrets.is_empty() {
            caps.push("exec.mount.secret");
        }
        // Go leaves input and output of secret mounts at their zero values.
        mounts.extend(self.secrets.into_iter().map(|(dest, secret)| pb::Mount {
            dest,
            mount_type: pb::MountType::Secret.into(),
            secret_opt: Some(pb::SecretOpt {
                id: secret.id,
                uid: secret.uid,
                gid: secret.gid,
                mode: secret.mode,
                optional: secret.optional,
            }),
            ..pb::Mount::default()
        }));

        let exec = pb::ExecOp {
            meta: Some(pb::Meta {
                args: self.process.args,
                env: self.process.env,
                cwd: self.process.cwd,
                user: self.process.user,
                extra_hosts: self
                    .process
                    .extra_hosts
                    .into_iter()
                    .map(|(host, ip)| pb::HostIp { host, ip })
                    .collect(),
                ..pb::Meta::default()
            }),
            mounts,
            network: self.network.into(),
            ..pb::ExecOp::default()
        };
        let vertex = Vertex {
            op: pb::Op {
                inputs: inputs.iter().map(Output::input).collect(),
                platform: Some(self.platform),
                constraints: Some(pb::WorkerConstraints::default()),
                op: Some(pb::op::Op::Exec(exec)),
            },
            metadata: OpMetadata::with_caps(caps),
        };
        (vertex, outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Graph;
    use crate::source::{LocalOpts, ResolveMode, image, local};
    use crate::test_support::amd64;

    fn exec_op(vertex: &Vertex) -> &pb::ExecOp {
        match &vertex.op.op {
            Some(pb::op::Op::Exec(exec)) => exec,
            other => panic!("expected an exec op, got {other:?}"),
        }
    }

    fn process() -> Process {
        Process {
            args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            cwd: "/".into(),
            ..Process::default()
        }
    }

    #[test]
    fn mounts_are_sorted_and_writable_outputs_numbered_in_that_order() {
        let mut graph = Graph::new();
        let root = graph.add_vertex(image(
            "docker.io/library/busybox:latest",
            &amd64(),
            ResolveMode::Default,
        ));
        let rootfs = graph.add_vertex(local("context", &LocalOpts::default()));
        let (vertex, outputs) = ExecBuilder::new(process(), &amd64())
            .network(NetMode::Host)
            .bind("/sealer/rootfs", Some(&rootfs), false, "", true)
            .bind("/out", None, false, "", true)
            .bind("/in", Some(&rootfs), true, "images/x.tar", false)
            .bind("/", Some(&root), true, "", false)
            .secret(
                "/run/secret",
                Secret {
                    id: "auth".into(),
                    uid: 0,
                    gid: 0,
                    mode: 0o400,
                    optional: true,
                },
            )
            .cache("/cache", "c", CacheSharing::Locked)
            .build();
        let exec = exec_op(&vertex);
        let rows: Vec<(&str, i64, i64, bool)> = exec
            .mounts
            .iter()
            .map(|m| (m.dest.as_str(), m.input, m.output, m.readonly))
            .collect();
        assert_eq!(
            rows,
            [
                ("/", 0, -1, true),
                ("/cache", -1, -1, false),
                ("/in", 1, -1, true),
                ("/out", -1, 0, false),
                ("/sealer/rootfs", 1, 1, false),
                ("/run/secret", 0, 0, false),
            ]
        );
        assert_eq!(vertex.op.inputs, [root.input(), rootfs.input()]);
        assert_eq!(
            outputs,
            [("/out".to_owned(), 0), ("/sealer/rootfs".to_owned(), 1)]
        );
        assert_eq!(exec.mounts[2].selector, "images/x.tar");
        assert_eq!(exec.mounts[1].mount_type, i32::from(pb::MountType::Cache));
        assert_eq!(exec.mounts[5].mount_type, i32::from(pb::MountType::Secret));
        assert_eq!(exec.network, i32::from(NetMode::Host));
        assert_eq!(vertex.op.platform, Some(amd64()));
        assert_eq!(
            vertex
                .metadata
                .caps
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            [
                "exec.meta.base",
                "exec.meta.network",
                "exec.meta.setsdefaultpath",
                "exec.mount.bind",
                "exec.mount.cache",
                "exec.mount.cache.sharing",
                "exec.mount.secret",
                "exec.mount.selector",
            ]
        );
    }

    #[test]
    fn sandboxed_exec_with_path_needs_only_the_base_caps() {
        let mut graph = Graph::new();
        let root = graph.add_vertex(local("context", &LocalOpts::default()));
        let mut with_path = process();
        with_path.env = vec!["PATH=/bin".into()];
        with_path.user = "1000".into();
        let (vertex, outputs) = ExecBuilder::new(with_path, &amd64())
            .bind("/", Some(&root), false, "", true)
            .build();
        let meta = exec_op(&vertex).meta.clone().expect("meta is set");
        assert_eq!((meta.cwd.as_str(), meta.user.as_str()), ("/", "1000"));
        assert_eq!(exec_op(&vertex).network, i32::from(NetMode::Unset));
        assert_eq!(outputs, [("/".to_owned(), 0)]);
        assert_eq!(
            vertex
                .metadata
                .caps
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["exec.meta.base", "exec.mount.bind"]
        );
    }
}
