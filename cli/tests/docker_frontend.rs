//! The BuildKit frontend against Docker 20.10's embedded BuildKit (`scripts/dockerd`): the
//! examples built by `docker build` (chosen by `# syntax=` or `BUILDKIT_SYNTAX`) equal those the
//! embedded engine builds, errors show their Kubefile line, unchanged builds are cached, fetch
//! steps get credentials from the build secret, RUN works in a run image, and
//! `Dockerfile.frontend` makes a working frontend image.
//!
//! Every test shares one loopback registry, holding the frontend image (built from the static
//! binary `SEALER_TEST_FRONTEND_BIN`), stand-ins for the upstream images the examples name,
//! and the images the tests build on.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

mod examples;
use examples::{KUBE_IMAGES, example, mirror_path};
use testkit::docker::{self, Dockerd};
use testkit::images::{ImageSpec, push_generated, seed_of};
use testkit::registry::Registry;

/// What every test needs: the daemon, the shared registry and the frontend image in it.
struct Setup {
    dockerd: Dockerd,
    registry: Arc<Registry>,
    frontend: String,
}

/// The frontend image pushed to each registry address. The shared registry is a new one once
/// every test has dropped the last, so what was pushed is remembered per address.
static FRONTENDS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
/// The upstream stand-ins pushed, as `ADDRESS/REFERENCE`.
static SEEDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The setup, or `None` when the test is skipped (outside CI, without dockerd).
fn setup() -> Option<Setup> {
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
    fn seed(&self, references: &[&str]) {
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
    fn mirrors(&self) -> String {
        format!("docker.io={0},registry.k8s.io={0}", self.registry.addr())
    }

    /// `docker build` of `context` (its Kubefile) tagged `tag`, with host networking, the
    /// mirrors and `args`; returns the output, successful or not.
    fn docker_build(&self, context: &Path, tag: &str, args: &[&str]) -> std::process::Output {
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
    fn docker_build_ok(&self, context: &Path, tag: &str, args: &[&str]) -> String {
        let output = self.docker_build(context, tag, args);
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "docker build of {} failed:\n{log}",
            context.display()
        );
        log
    }

    /// `sealer-build --root ROOT` with the upstream mirrors.
    fn sealer(&self, root: &Path) -> Command {
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
fn context_with_first_line(source: &Path, first_line: Option<&str>) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("temporary context");
    copy_tree(source, copy.path());
    if let Some(line) = first_line {
        let kubefile = copy.path().join("Kubefile");
        let text = fs::read_to_string(&kubefile).expect("Kubefile");
        fs::write(&kubefile, format!("{line}\n{text}")).expect("write Kubefile");
    }
    copy
}

fn copy_tree(from: &Path, to: &Path) {
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
fn tree(root: &Path) -> BTreeMap<String, String> {
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
fn differences(left: &BTreeMap<String, String>, right: &BTreeMap<String, String>) -> Vec<String> {
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
fn engine_image(root: &Path, tag: &str) -> (tempfile::TempDir, BTreeMap<String, String>) {
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

fn success(command: &mut Command) -> String {
    let output = command.output().expect("run");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_examples_built_by_docker_equal_those_the_engine_builds() {
    let Some(setup) = setup() else { return };
    let root = tempfile::tempdir().expect("store");
    let app_images = success(setup.sealer(root.path()).arg("images").arg(example("app")));
    let app_images: Vec<&str> = app_images.lines().collect();
    setup.seed(&KUBE_IMAGES);
    setup.seed(&app_images);
    let directive = format!("# syntax={}", setup.frontend);

    // The base, then the app on it, as a registry image both builders pull (gzip layers:
    // Docker 20.10's layer store cannot read zstd).
    let base_tag = format!("{}/examples/kubernetes:v1.32.0", setup.registry.addr());
    success(
        setup
            .sealer(root.path())
            .args([
                "build",
                "--platform",
                "linux/amd64",
                "--compression",
                "gzip",
                "-t",
                &base_tag,
            ])
            .arg(example("kubernetes")),
    );
    success(setup.sealer(root.path()).args(["push", &base_tag]));
    let kubernetes = context_with_first_line(&example("kubernetes"), Some(&directive));
    setup.docker_build_ok(kubernetes.path(), "it/kubernetes:1", &[]);
    compare(&setup, root.path(), &base_tag, "it/kubernetes:1");
    // Without the directive, the build argument chooses the frontend.
    let syntax = format!("BUILDKIT_SYNTAX={}", setup.frontend);
    let plain = context_with_first_line(&example("kubernetes"), None);
    setup.docker_build_ok(
        plain.path(),
        "it/kubernetes-arg:1",
        &["--build-arg", &syntax],
    );
    compare(&setup, root.path(), &base_tag, "it/kubernetes-arg:1");

    let app_tag = "examples/app:v1";
    let base_arg = format!("BASE={base_tag}");
    success(
        setup
            .sealer(root.path())
            .args([
                "build",
                "--platform",
                "linux/amd64",
                "-t",
                app_tag,
                "--build-arg",
                &base_arg,
            ])
            .arg(example("app")),
    );
    let app = context_with_first_line(&example("app"), Some(&directive));
    setup.docker_build_ok(app.path(), "it/app:1", &["--build-arg", &base_arg]);
    compare(&setup, root.path(), app_tag, "it/app:1");
    let plain = context_with_first_line(&example("app"), None);
    let args = ["--build-arg", &base_arg, "--build-arg", &syntax];
    setup.docker_build_ok(plain.path(), "it/app-arg:1", &args);
    compare(&setup, root.path(), app_tag, "it/app-arg:1");
}

/// The engine's `engine_tag` and docker's `docker_tag` have the same rootfs and labels.
fn compare(setup: &Setup, root: &Path, engine_tag: &str, docker_tag: &str) {
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

#[test]
fn kubefile_errors_appear_in_the_docker_output_with_their_line() {
    let Some(setup) = setup() else { return };
    let directive = format!("# syntax={}", setup.frontend);
    for (kubefile, expected) in [
        (
            format!("{directive}\nFROM scratch\nFROBNICATE x\n"),
            "Kubefile:3:1",
        ),
        (
            format!("{directive}\nFROM scratch\nCOPY missing.yaml manifests/\n"),
            "Kubefile:3:",
        ),
    ] {
        let context = tempfile::tempdir().expect("context");
        fs::write(context.path().join("Kubefile"), &kubefile).expect("write");
        let output = setup.docker_build(context.path(), "it/errors:1", &[]);
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{kubefile} built");
        assert!(log.contains(expected), "{expected} not in:\n{log}");
    }
}

#[test]
fn an_unchanged_build_is_cached_and_a_chart_change_refetches_only_its_images() {
    let Some(setup) = setup() else { return };
    let images = [
        "docker.io/library/cache-a:1",
        "docker.io/library/cache-b:1",
        "docker.io/library/cache-b:2",
    ];
    setup.seed(&images);

    let context = tempfile::tempdir().expect("context");
    let write = |path: &str, text: &str| {
        let path = context.path().join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    };
    write(
        "Kubefile",
        &format!(
            "# syntax={}\nFROM scratch\nCOPY manifests manifests\nCOPY charts charts\n",
            setup.frontend
        ),
    );
    write(
        "manifests/a.yaml",
        "kind: Pod\nspec:\n  containers:\n  - image: cache-a:1\n",
    );
    write(
        "charts/b/Chart.yaml",
        "apiVersion: v2\nname: b\nversion: 0.1.0\n",
    );
    write("charts/b/values.yaml", "tag: \"1\"\n");
    write(
        "charts/b/templates/pod.yaml",
        "kind: Pod\nspec:\n  containers:\n  - image: cache-b:{{ .Values.tag }}\n",
    );
    let first = setup.docker_build_ok(context.path(), "it/cache:1", &[]);
    assert!(ran(&first, "cache docker.io/library/cache-a:1"), "{first}");
    assert!(ran(&first, "cache docker.io/library/cache-b:1"), "{first}");

    let again = setup.docker_build_ok(context.path(), "it/cache:1", &[]);
    let steps: Vec<&str> = again.lines().filter(|line| is_step(line)).collect();
    assert!(
        steps.len() >= 4,
        "the COPY, fetch and store steps are listed:\n{again}"
    );
    for line in steps {
        let vertex = line.split_whitespace().next().unwrap_or_default();
        assert!(
            again.contains(&format!("{vertex} CACHED")),
            "not cached: {line}\n{again}"
        );
    }

    write("charts/b/values.yaml", "tag: \"2\"\n");
    let changed = setup.docker_build_ok(context.path(), "it/cache:1", &[]);
    assert!(
        !ran(&changed, "cache docker.io/library/cache-a:1"),
        "{changed}"
    );
    assert!(
        ran(&changed, "cache docker.io/library/cache-b:2"),
        "{changed}"
    );
    let rootfs = setup.dockerd.save_rootfs("it/cache:1");
    let tags = rootfs
        .path()
        .join("registry/docker/registry/v2/repositories/library/cache-b/_manifests/tags");
    let mut names: Vec<String> = fs::read_dir(&tags)
        .expect("cache-b tags")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["2"]);
}

/// The first progress line of one of our steps (`#7 [2/3] COPY ...`, `#9 cache ...`,
/// `#10 store ...`).
fn is_step(line: &str) -> bool {
    let text = line.split_once(' ').map_or("", |(_, rest)| rest);
    (text.starts_with('[') && !text.starts_with("[internal]"))
        || text.starts_with("cache ")
        || text.starts_with("store ")
}

/// True when the step named `name` ran, false when it was cached; the step must be in the log.
fn ran(log: &str, name: &str) -> bool {
    let vertex = log
        .lines()
        .find(|line| line.ends_with(name))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("no step `{name}` in:\n{log}"));
    !log.contains(&format!("{vertex} CACHED"))
}

#[test]
fn run_steps_run_in_the_run_image_with_the_rootfs_as_working_directory() {
    let Some(setup) = setup() else { return };
    let busybox = docker::busybox_image(&setup.registry);
    let context = tempfile::tempdir().expect("context");
    fs::create_dir(context.path().join("etc")).expect("mkdir");
    fs::write(context.path().join("etc/version"), "1.0\n").expect("write");
    fs::write(
        context.path().join("Kubefile"),
        format!(
            "# syntax={}\nFROM scratch\nCOPY etc etc\nRUN cat etc/version > copied && echo \"$SEALER_ROOTFS\" > where\n",
            setup.frontend
        ),
    )
    .expect("write");
    let run_image = format!("SEALER_RUN_IMAGE={busybox}");
    setup.docker_build_ok(context.path(), "it/run:1", &["--build-arg", &run_image]);
    let rootfs = setup.dockerd.save_rootfs("it/run:1");
    assert_eq!(
        fs::read_to_string(rootfs.path().join("copied")).expect("copied"),
        "1.0\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.path().join("where")).expect("where"),
        "/sealer/rootfs\n"
    );
    assert!(
        !rootfs.path().join("bin/busybox").exists(),
        "the run image stays out of the rootfs"
    );

    // A failing command is reported at its instruction.
    fs::write(
        context.path().join("Kubefile"),
        format!(
            "# syntax={}\nFROM scratch\nCOPY etc etc\nRUN exit 3\n",
            setup.frontend
        ),
    )
    .expect("write");
    let failed = setup.docker_build(context.path(), "it/run:2", &["--build-arg", &run_image]);
    let log = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{log}");
    assert!(log.contains("Kubefile:4:1: RUN exit 3: "), "{log}");
}

#[test]
fn fetch_steps_get_registry_credentials_from_the_build_secret_only() {
    const USER: &str = "fetch-user";
    const PASSWORD: &str = "Pr1vate-fetch-9d2e";
    let Some(setup) = setup() else { return };
    let private = Registry::builder().htpasswd(USER, PASSWORD).start();
    setup.seed(&["docker.io/library/private-src:1"]);
    let pushed = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--dest-creds",
        ])
        .arg(format!("{USER}:{PASSWORD}"))
        .arg(format!(
            "docker://{}/library/private-src:1",
            setup.registry.addr()
        ))
        .arg(format!("docker://{}/private/app:1", private.addr()))
        .output()
        .expect("run skopeo");
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    let context = tempfile::tempdir().expect("context");
    fs::create_dir(context.path().join("manifests")).expect("mkdir");
    fs::write(
        context.path().join("manifests/imageList"),
        format!("{}/private/app:1\n", private.addr()),
    )
    .expect("write");
    fs::write(
        context.path().join("Kubefile"),
        format!(
            "# syntax={}\nFROM scratch\nCOPY manifests manifests\n",
            setup.frontend
        ),
    )
    .expect("write");
    let config_dir = tempfile::tempdir().expect("docker config");
    let config = config_dir.path().join("config.json");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    fs::write(
        &config,
        serde_json::json!({"auths": {private.addr(): {"auth": auth}}}).to_string(),
    )
    .expect("write config");

    let refused = setup.docker_build(context.path(), "it/private:1", &[]);
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "fetched without credentials:\n{log}"
    );
    assert!(
        log.contains(&format!("{} refused access to private/app", private.addr()))
            && log.contains("--secret id=registry-auth"),
        "{log}"
    );

    let secret = format!("id=registry-auth,src={}", config.display());
    let log = setup.docker_build_ok(context.path(), "it/private:1", &["--secret", &secret]);
    assert!(
        !log.contains(PASSWORD) && !log.contains(&auth),
        "credentials in the output:\n{log}"
    );
    let rootfs = setup.dockerd.save_rootfs("it/private:1");
    let repository = rootfs
        .path()
        .join("registry/docker/registry/v2/repositories/private/app/_manifests/tags/1");
    assert!(
        repository.is_dir(),
        "{} is not in the image",
        repository.display()
    );
}

#[test]
fn the_frontend_image_built_by_dockerfile_frontend_builds_kubefiles() {
    let Some(setup) = setup() else { return };
    let bin = docker::frontend_bin_from_env().expect("checked by setup");
    let stage = tempfile::tempdir().expect("stage");
    fs::copy(&bin, stage.path().join("run")).expect("stage the binary");
    fs::copy(
        docker::CA_CERTIFICATES,
        stage.path().join("ca-certificates.crt"),
    )
    .expect("stage the CA bundle");
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile.frontend");
    let dockerfile = dockerfile.display().to_string();
    let stage_dir = stage.path().display().to_string();
    setup.dockerd.build_success([
        "-f",
        dockerfile.as_str(),
        "--target",
        "local",
        "-t",
        "sealer-frontend-local:test",
        stage_dir.as_str(),
    ]);
    let config = setup.dockerd.inspect_config("sealer-frontend-local:test");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/run"]));
    assert_eq!(
        config["Labels"]["moby.buildkit.frontend.network.none"],
        "true"
    );

    let context = tempfile::tempdir().expect("context");
    fs::create_dir(context.path().join("etc")).expect("mkdir");
    fs::write(context.path().join("etc/a.conf"), "a=1\n").expect("write");
    fs::write(
        context.path().join("Kubefile"),
        "# syntax=sealer-frontend-local:test\nFROM scratch\nCOPY etc etc\n",
    )
    .expect("write");
    setup.docker_build_ok(context.path(), "it/local-frontend:1", &[]);
    let rootfs = setup.dockerd.save_rootfs("it/local-frontend:1");
    assert_eq!(
        fs::read_to_string(rootfs.path().join("etc/a.conf")).expect("copied"),
        "a=1\n"
    );
}

#[test]
fn image_archives_in_the_rootfs_are_stored_as_the_engine_stores_them() {
    let Some(setup) = setup() else { return };
    setup.seed(&["docker.io/library/archived:1"]);
    let context = tempfile::tempdir().expect("context");
    fs::create_dir(context.path().join("images")).expect("mkdir");
    let archive = context.path().join("images/app.tar");
    let saved = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!(
            "docker://{}/library/archived:1",
            setup.registry.addr()
        ))
        .arg(format!(
            "docker-archive:{}:docker.io/library/archived:1",
            archive.display()
        ))
        .output()
        .expect("run skopeo");
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    fs::write(
        context.path().join("Kubefile"),
        format!(
            "# syntax={}\nFROM scratch\nCOPY images images\n",
            setup.frontend
        ),
    )
    .expect("write");

    let root = tempfile::tempdir().expect("store");
    success(
        setup
            .sealer(root.path())
            .args(["build", "--platform", "linux/amd64", "-t", "it/archive:1"])
            .arg(context.path()),
    );
    let log = setup.docker_build_ok(context.path(), "it/archive:1", &[]);
    assert!(ran(&log, "cache images of images/app.tar"), "{log}");
    let (engine_rootfs, _) = engine_image(root.path(), "it/archive:1");
    let docker_rootfs = setup.dockerd.save_rootfs("it/archive:1");
    let (engine_tree, docker_tree) = (tree(engine_rootfs.path()), tree(docker_rootfs.path()));
    assert!(
        engine_tree.contains_key(
            "registry/docker/registry/v2/repositories/library/archived/_manifests/tags/1"
        ),
        "{engine_tree:#?}"
    );
    assert_eq!(
        differences(&engine_tree, &docker_tree),
        Vec::<String>::new()
    );
}
