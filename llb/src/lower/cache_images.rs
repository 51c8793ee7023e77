//! Image caching in BuildKit: an exec step per image runs the frontend image's own binary
//! (`/run cache-images`), which fetches the image into [`FETCH_OUT`] (its documents and
//! blobs), so BuildKit caches every image separately; then a FileOp adds the image to the
//! rootfs's registry storage with the files the embedded engine's layer would hold.

use image::layer::{EntryKind, FileSource, LayerEntry};

use crate::exec::{ExecBuilder, NetMode, Process, Secret};
use crate::file::{FileBuilder, FileCopy};
use crate::graph::{Graph, Output};
use crate::pb;

/// The frontend binary's subcommand that fetches images.
pub const SUBCOMMAND: &str = "cache-images";
/// Where a fetch step writes the images it fetched (its output mount).
pub const FETCH_OUT: &str = "/out";
/// Where a fetch step sees the image archive it reads (the one file of the rootfs it mounts).
pub const ARCHIVE_IN: &str = "/in";
/// The BuildKit secret holding a docker `config.json` with registry credentials.
pub const REGISTRY_AUTH_SECRET: &str = "registry-auth";
/// Where the credentials secret is mounted; `DOCKER_CONFIG` names its directory.
const DOCKER_CONFIG_DIR: &str = "/sealer/docker";
/// The CA bundle of the frontend image.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How fetch steps run.
pub struct FetchInputs<'a> {
    /// The frontend image's root filesystem (the image the build runs as its frontend).
    pub frontend: &'a Output,
    /// The platform the fetch steps run on (the worker's: the frontend binary's).
    pub platform: &'a pb::Platform,
    /// The platform the images are fetched for (the image being built).
    pub image_platform: &'a pb::Platform,
    /// `SOURCE=MIRROR` registry mirrors passed to the fetcher.
    pub mirrors: &'a [String],
    /// The client allowed host networking (`force-network-mode=host`): registries on the
    /// host's loopback are reachable then.
    pub network_host: bool,
    /// Fetch again even when BuildKit has the step cached (`--no-cache`).
    pub ignore_cache: bool,
    /// Extra `/etc/hosts` entries (`--add-host`), so registries can be named by them.
    pub extra_hosts: &'a [(String, String)],
}

/// What a fetch step fetches.
#[derive(Debug, Clone, Copy)]
pub enum FetchSource<'a> {
    /// An image from its registry.
    Registry(&'a str),
    /// The images of an archive in the rootfs, at this rootfs-relative path.
    Archive {
        /// The rootfs.
        rootfs: &'a Output,
        /// The archive's path in it.
        path: &'a str,
    },
}

/// Adds the exec step fetching `source`; returns its [`FETCH_OUT`] output.
pub fn fetch_step(graph: &mut Graph, source: FetchSource<'_>, inputs: &FetchInputs<'_>) -> Output {
    let mut args = vec![
        "/run".to_owned(),
        SUBCOMMAND.to_owned(),
        "--platform".to_owned(),
        platform_text(inputs.image_platform),
        "--out".to_owned(),
        FETCH_OUT.to_owned(),
    ];
    for mirror in inputs.mirrors {
        args.extend(["--registry-mirror".to_owned(), mirror.clone()]);
    }
    let name = match source {
        FetchSource::Registry(reference) => {
            args.push(reference.to_owned());
            format!("cache {reference}")
        }
        FetchSource::Archive { path, .. } => {
            // The mount's selector puts the archive file itself at ARCHIVE_IN.
            args.extend(["--archive".to_owned(), ARCHIVE_IN.to_owned()]);
            format!("cache images of {path}")
        }
    };
    let process = Process {
        args,
        env: vec![
            format!("DOCKER_CONFIG={DOCKER_CONFIG_DIR}"),
            format!("SSL_CERT_FILE={CA_BUNDLE}"),
            "PATH=/".to_owned(),
        ],
        cwd: "/".to_owned(),
        user: String::new(),
        extra_hosts: inputs.extra_hosts.to_vec(),
    };
    let network = if inputs.network_host {
        NetMode::Host
    } else {
        NetMode::Unset
    };
    let mut exec = ExecBuilder::new(process, inputs.platform)
        .network(network)
        .bind("/", Some(inputs.frontend), true, "", false)
        .bind(FETCH_OUT, None, false, "", true)
        .secret(
            format!("{DOCKER_CONFIG_DIR}/config.json"),
            Secret {
                id: REGISTRY_AUTH_SECRET.to_owned(),
                uid: 0,
                gid: 0,
                mode: 0o400,
                optional: true,
            },
        );
    if let FetchSource::Archive { rootfs, path } = source {
        exec = exec.bind(
            ARCHIVE_IN,
            Some(rootfs),
            true,
            path.trim_start_matches('/'),
            false,
        );
    }
    let (mut vertex, outputs) = exec.build();
    vertex.metadata = vertex
        .metadata
        .named(name)
        .ignoring_cache(inputs.ignore_cache);
    let index = outputs
        .iter()
        .find(|(dest, _)| dest == FETCH_OUT)
        .map_or(0, |(_, index)| *index);
    graph.add_vertex(vertex).at(index)
}

/// Adds the FileOp writing one fetched image's storage files (`entries`, as
/// `image::distribution::StorageIndex::image_layer_entries` lists them with blob paths in
/// `fetched`) onto `rootfs`; returns the new rootfs, or `rootfs` when there is nothing to add.
/// Storage entries are directories and files only; other kinds are skipped.
pub fn storage_step(
    graph: &mut Graph,
    rootfs: Option<&Output>,
    fetched: &Output,
    entries: &[LayerEntry],
    platform: &pb::Platform,
    name: &str,
) -> Option<Output> {
    let file = entries
        .iter()
        .fold(FileBuilder::new(rootfs, platform), |file, entry| {
            let path = format!("/{}", entry.path.trim_start_matches('/'));
            let mode = i32::try_from(entry.mode).unwrap_or(0o644);
            match &entry.kind {
                EntryKind::Dir => file.mkdir(path, mode, true, None, Some(0)),
                EntryKind::File(FileSource::Bytes(bytes)) => {
                    file.mkfile(path, mode, bytes.clone(), None, Some(0))
                }
                EntryKind::File(FileSource::Path(blob)) => {
                    let copy = FileCopy {
                        mode: Some(mode),
                        timestamp: Some(0),
                        ..FileCopy::new(blob.to_string_lossy(), path)
                    };
                    file.copy(fetched, copy)
                }
                _ => file,
            }
        });
    match file.build() {
        Some(mut vertex) => {
            vertex.metadata = vertex.metadata.named(name);
            Some(graph.add_vertex(vertex))
        }
        None => rootfs.cloned(),
    }
}

/// `os/arch[/variant]`.
fn platform_text(platform: &pb::Platform) -> String {
    let mut text = format!("{}/{}", platform.os, platform.architecture);
    if !platform.variant.is_empty() {
        text.push('/');
        text.push_str(&platform.variant);
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use pb::file_action::Action as A;

    fn ops(graph: &Graph, output: &Output) -> Vec<pb::Op> {
        graph
            .definition(output)
            .def
            .iter()
            .map(|bytes| <pb::Op as prost::Message>::decode(bytes.as_slice()).expect("op"))
            .collect()
    }

    fn exec_of(graph: &Graph, output: &Output) -> pb::ExecOp {
        ops(graph, output)
            .into_iter()
            .find_map(|op| match op.op {
                Some(pb::op::Op::Exec(exec)) => Some(exec),
                _ => None,
            })
            .expect("an exec op")
    }

    fn frontend(graph: &mut Graph, platform: &pb::Platform) -> Output {
        graph.add_vertex(crate::source::image(
            "127.0.0.1:5000/sealer-frontend:test",
            platform,
            crate::source::ResolveMode::Default,
        ))
    }

    #[test]
    fn a_registry_fetch_runs_the_frontend_binary_with_credentials_and_host_network() {
        let mut graph = Graph::new();
        let platform = pb::Platform {
            architecture: "arm".into(),
            os: "linux".into(),
            variant: "v7".into(),
            ..pb::Platform::default()
        };
        let frontend = frontend(&mut graph, &platform);
        let mirrors = ["registry.k8s.io=127.0.0.1:5000".to_owned()];
        let inputs = FetchInputs {
            frontend: &frontend,
            platform: &pb::Platform::default(),
            image_platform: &platform,
            mirrors: &mirrors,
            network_host: true,
            ignore_cache: true,
            extra_hosts: &[("registry.test".to_owned(), "127.0.0.1".to_owned())],
        };
        let out = fetch_step(
            &mut graph,
            FetchSource::Registry("registry.k8s.io/pause:3.10"),
            &inputs,
        );
        assert_eq!(out.index, 0);
        let exec = exec_of(&graph, &out);
        let meta = exec.meta.expect("meta");
        assert_eq!(
            meta.args,
            [
                "/run",
                "cache-images",
                "--platform",
                "linux/arm/v7",
                "--out",
                "/out",
                "--registry-mirror",
                "registry.k8s.io=127.0.0.1:5000",
                "registry.k8s.io/pause:3.10"
            ]
        );
        assert_eq!(exec.network, i32::from(NetMode::Host));
        assert_eq!(meta.extra_hosts[0].host, "registry.test");
        let secret = exec
            .mounts
            .iter()
            .find_map(|mount| mount.secret_opt.clone())
            .expect("a secret mount");
        assert_eq!(
            (secret.id.as_str(), secret.optional),
            (REGISTRY_AUTH_SECRET, true)
        );
        let metadata = graph.metadata(&out.digest).expect("metadata");
        assert!(metadata.ignore_cache);
        assert_eq!(
            metadata.custom_name.as_deref(),
            Some("cache registry.k8s.io/pause:3.10")
        );
    }

    #[test]
    fn an_archive_fetch_mounts_only_that_file_of_the_rootfs() {
        let mut graph = Graph::new();
        let platform = pb::Platform::default();
        let frontend = frontend(&mut graph, &platform);
        let rootfs = graph.add_vertex(crate::source::local(
            "context",
            &crate::source::LocalOpts::default(),
        ));
        let inputs = FetchInputs {
            frontend: &frontend,
            platform: &platform,
            image_platform: &platform,
            mirrors: &[],
            network_host: false,
            ignore_cache: false,
            extra_hosts: &[],
        };
        let source = FetchSource::Archive {
            rootfs: &rootfs,
            path: "images/app.tar",
        };
        let out = fetch_step(&mut graph, source, &inputs);
        let exec = exec_of(&graph, &out);
        let archive = exec
            .mounts
            .iter()
            .find(|mount| mount.dest == ARCHIVE_IN)
            .expect("archive mount");
        assert_eq!(
            (archive.selector.as_str(), archive.readonly),
            ("images/app.tar", true)
        );
        assert!(
            exec.meta
                .expect("meta")
                .args
                .ends_with(&["--archive".into(), ARCHIVE_IN.into()])
        );
        assert_eq!(exec.network, i32::from(NetMode::Unset));
    }

    #[test]
    fn storage_entries_become_mkdirs_mkfiles_and_blob_copies() {
        let mut graph = Graph::new();
        let platform = pb::Platform::default();
        let fetched = graph.add_vertex(crate::source::local(
            "fetched",
            &crate::source::LocalOpts::default(),
        ));
        let entries = [
            LayerEntry {
                path: "registry".into(),
                kind: EntryKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
            LayerEntry {
                path: "registry/link".into(),
                kind: EntryKind::File(FileSource::Bytes(b"sha256:ab".to_vec())),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
            LayerEntry {
                path: "registry/blob/data".into(),
                kind: EntryKind::File(FileSource::Path(PathBuf::from("/blobs/sha256/ab"))),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
        ];
        let out = storage_step(&mut graph, None, &fetched, &entries, &platform, "store")
            .expect("a layer");
        let actions: Vec<pb::file_action::Action> = ops(&graph, &out)
            .into_iter()
            .filter_map(|op| match op.op {
                Some(pb::op::Op::File(file)) => Some(file.actions),
                _ => None,
            })
            .flatten()
            .filter_map(|action| action.action)
            .collect();
        assert!(
            matches!(&actions[0], A::Mkdir(dir) if dir.path == "/registry" && dir.timestamp == 0)
        );
        assert!(
            matches!(&actions[1], A::Mkfile(file) if file.path == "/registry/link" && file.data == b"sha256:ab")
        );
        assert!(
            matches!(&actions[2], A::Copy(copy) if copy.src == "/blobs/sha256/ab" && copy.dest == "/registry/blob/data" && copy.mode == 0o644)
        );
        assert!(
            storage_step(&mut graph, Some(&out), &fetched, &[], &platform, "none") == Some(out)
        );
    }
}
