//! Support shared by the tests against Docker's embedded BuildKit (`docker_frontend.rs`,
//! `buildkit_client.rs`): the daemon, the shared loopback registry with the frontend image and
//! upstream stand-ins, builds through `docker build` and `sealer-build`, comparison of the
//! rootfs and labels with the engine's build, and reading BuildKit's plain progress output.
//!
//! The test crate must also declare `mod examples;` (the upstream images' mirror paths).
#![allow(
    dead_code,
    reason = "each test binary uses the part of the support it needs"
)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest as _, Sha256};
use testkit::docker::{self, Dockerd};
use testkit::images::{ImageSpec, push_generated, seed_of};
use testkit::registry::Registry;

use crate::examples::{KUBE_IMAGES, example, mirror_path};

/// What every test needs: the daemon, the shared registry and the frontend image in it.
pub struct Setup {
    /// The daemon (`scripts/dockerd`).
    pub dockerd: Dockerd,
    /// The loopback registry every test shares.
    pub registry: Arc<Registry>,
    /// The frontend image's reference in that registry.
    pub frontend: String,
}

/// The frontend image pushed to each registry address. The shared registry is a new one once
/// every test has dropped the last, so what was pushed is remembered per address.
static FRONTENDS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
/// The upstream stand-ins pushed, as `ADDRESS/REFERENCE`.
static SEEDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The setup, or `None` when the test is skipped (outside CI, without dockerd).
pub fn setup() -> Option<Setup> {
    let dockerd = Dockerd::from_env()?;
    let bin = docker::frontend_bin_from_env()?;
    let registry = testkit::registry::shared_registry();
    let frontend = FRONTENDS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(registry.addr().to_owned())
        .or_insert_with(|| docker::frontend_image(&bin, &registry, "sealer-frontend:test"))
        .clone();
    Some(Setup {
        dockerd,
        registry,
        frontend,
    })
}

impl Setup {
    /// Pushes a generated stand-in for each upstream reference (`registry.k8s.io/pause:3.10`
    /// under `pause:3.10`), once per registry.
    pub fn seed(&self, references: &[&str]) {
        let mut seeded = SEEDED.lock().unwrap_or_else(PoisonError::into_inner);
        for reference in references {
            let key = format!("{}/{reference}", self.registry.addr());
            if !seeded.contains(&key) {
                let spec = ImageSpec::amd64(&[20_000, 3_000], seed_of(reference));
                push_generated(self.registry.addr(), mirror_path(reference), &[spec]);
                seeded.push(key);
            }
        }
    }

    /// The mirrors of docker.io and registry.k8s.io, as the frontend's build arg lists them.
    pub fn mirrors(&self) -> String {
        format!("docker.io={0},registry.k8s.io={0}", self.registry.addr())
    }

    /// `docker build` of `context` (its Kubefile) tagged `tag`, with host networking, the
    /// mirrors and `args`; returns the output, successful or not.
    pub fn docker_build(&self, context: &Path, tag: &str, args: &[&str]) -> std::process::Output {
        let kubefile = context.join("Kubefile");
        let mut all = vec![
            "--network".to_owned(),
            "host".to_owned(),
            "--build-arg".to_owned(),
            format!("SEALER_REGISTRY_MIRRORS={}", self.mirrors()),
            "-f".to_owned(),
            kubefile.display().to_string(),
            "-t".to_owned(),
            tag.to_owned(),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all.push(context.display().to_string());
        self.dockerd.build(all)
    }

    /// [`Setup::docker_build`] that must succeed; returns the progress log.
    pub fn docker_build_ok(&self, context: &Path, tag: &str, args: &[&str]) -> String {
        let output = self.docker_build(context, tag, args);
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "docker build of {} failed:\n{log}",
            context.display()
        );
        log
    }

    /// Seeds the examples' images and builds both with the engine into the store at `root`:
    /// the kubernetes base (gzip layers: Docker 20.10's layer store cannot read zstd), pushed
    /// so that BuildKit can pull it, and the app on it.
    pub fn engine_examples(&self, root: &Path) -> EngineExamples {
        let app_images = success(self.sealer(root).arg("images").arg(example("app")));
        let app_images: Vec<&str> = app_images.lines().collect();
        self.seed(&KUBE_IMAGES);
        self.seed(&app_images);
        let base_tag = format!("{}/examples/kubernetes:v1.32.0", self.registry.addr());
        success(
            self.sealer(root)
                .args([
                    "build",
                    "--platform",
                    "linux/amd64",
                    "--compression",
                    "gzip",
                    "-t",
                ])
                .arg(&base_tag)
                .arg(example("kubernetes")),
        );
        success(self.sealer(root).args(["push", &base_tag]));
        let base_arg = format!("BASE={base_tag}");
        success(
            self.sealer(root)
                .args([
                    "build",
                    "--platform",
                    "linux/amd64",
                    "-t",
                    APP_TAG,
                    "--build-arg",
                ])
                .arg(&base_arg)
                .arg(example("app")),
        );
        EngineExamples { base_tag, base_arg }
    }

    /// `sealer-build --root ROOT` with the upstream mirrors.
    pub fn sealer(&self, root: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sealer-build"));
        command.arg("--root").arg(root);
        for registry in ["docker.io", "registry.k8s.io"] {
            command
                .arg("--registry-mirror")
                .arg(format!("{registry}={}", self.registry.addr()));
        }
        command
    }
}

/// A copy of `source` whose Kubefile starts with `first_line` (a `# syntax=` directive).
pub fn context_with_first_line(source: &Path, first_line: Option<&str>) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("temporary context");
    copy_tree(source, copy.path());
    if let Some(line) = first_line {
        let kubefile = copy.path().join("Kubefile");
        let text = fs::read_to_string(&kubefile).expect("Kubefile");
        fs::write(&kubefile, format!("{line}\n{text}")).expect("write Kubefile");
    }
    copy
}

pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).expect("link"), &target)
                .expect("symlink");
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every entry below `root`: its type, permission bits, owner, and content digest or link
/// target.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = fs::read_dir(dir).expect("read_dir").flatten().collect();
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .expect("below root")
                .display()
                .to_string();
            let metadata = fs::symlink_metadata(&path).expect("metadata");
            let mode = metadata.permissions().mode() & 0o7777;
            let owner = format!("{}:{}", metadata.uid(), metadata.gid());
            let description = if metadata.is_dir() {
                walk(root, &path, out);
                format!("dir {mode:o} {owner}")
            } else if metadata.file_type().is_symlink() {
                format!(
                    "symlink {owner} -> {}",
                    fs::read_link(&path).expect("link").display()
                )
            } else {
                let digest = hex::encode(Sha256::digest(fs::read(&path).expect("read")));
                format!("file {mode:o} {owner} {} {digest}", metadata.size())
            };
            out.insert(relative, description);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Differences between two trees, at most 20, for a readable failure.
pub fn differences(
    left: &BTreeMap<String, String>,
    right: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut keys: Vec<&String> = left.keys().chain(right.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| left.get(*key) != right.get(*key))
        .take(20)
        .map(|key| {
            format!(
                "{key}: engine {:?}, buildkit {:?}",
                left.get(key),
                right.get(key)
            )
        })
        .collect()
}

/// The rootfs and config labels of `tag` in the engine's store at `root`.
pub fn engine_image(root: &Path, tag: &str) -> (tempfile::TempDir, BTreeMap<String, String>) {
    let store = image::store::Store::open(root).expect("store");
    let reference = image::Reference::parse(tag).expect("reference");
    let stored = store.resolve(&reference).expect("built image");
    let manifest = store
        .read_manifest(&stored.descriptor.digest)
        .expect("manifest");
    let config: image::manifest::ImageConfig =
        serde_json::from_slice(&store.read_blob(&manifest.config.digest).expect("config"))
            .expect("config json");
    let rootfs = tempfile::tempdir().expect("rootfs");
    for layer in &manifest.layers {
        let blob = store.open_blob(&layer.digest).expect("layer");
        image::layer::unpack_layer(blob, rootfs.path(), &image::layer::UnpackOptions::default())
            .expect("unpack");
    }
    (rootfs, config.config.labels)
}

pub fn success(command: &mut Command) -> String {
    let output = command.output().expect("run");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The engine's `engine_tag` and docker's `docker_tag` have the same rootfs and labels.
pub fn compare(setup: &Setup, root: &Path, engine_tag: &str, docker_tag: &str) {
    let (engine_rootfs, engine_labels) = engine_image(root, engine_tag);
    let docker_rootfs = setup.dockerd.save_rootfs(docker_tag);
    let (engine_tree, docker_tree) = (tree(engine_rootfs.path()), tree(docker_rootfs.path()));
    let differences = differences(&engine_tree, &docker_tree);
    assert!(
        differences.is_empty(),
        "{engine_tag} (engine) and {docker_tag} (BuildKit) differ:\n{}",
        differences.join("\n")
    );
    assert!(
        engine_tree
            .keys()
            .any(|path| path.starts_with("registry/docker/registry/v2/blobs/")),
        "the images were cached into {engine_tag}"
    );
    assert_eq!(engine_labels, setup.dockerd.inspect_labels(docker_tag));
}

/// The first progress line of one of our steps (`#7 [2/3] COPY ...`, `#9 cache ...`,
/// `#10 store ...`).
pub fn is_step(line: &str) -> bool {
    let text = line.split_once(' ').map_or("", |(_, rest)| rest);
    (text.starts_with('[') && !text.starts_with("[internal]"))
        || text.starts_with("cache ")
        || text.starts_with("store ")
}

/// True when the step named `name` ran, false when it was cached; the step must be in the log.
pub fn ran(log: &str, name: &str) -> bool {
    let vertex = log
        .lines()
        .find(|line| line.ends_with(name))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("no step `{name}` in:\n{log}"));
    !log.contains(&format!("{vertex} CACHED"))
}

/// The engine's tag of the app example [`Setup::engine_examples`] builds.
pub const APP_TAG: &str = "examples/app:v1";

/// What [`Setup::engine_examples`] built.
pub struct EngineExamples {
    /// The kubernetes example, in the shared registry.
    pub base_tag: String,
    /// `BASE=<base_tag>`, the build argument the app example takes.
    pub base_arg: String,
}
