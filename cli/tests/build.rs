//! `sealer-build build` with the embedded engine, as a user runs it: the examples built from
//! an upstream `docker-registry` that the test fills (reached through `--registry-mirror`, so
//! the examples keep their real image names), pushed to a registry, and read back with
//! `skopeo`; reproducibility, the build cache, RUN, several platforms, archives, and bad input.

// The module is shared with the image tests; this binary uses part of it.
#[allow(dead_code)]
mod common;
mod examples;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;
use testkit::images::{GeneratedImage, ImageSpec, push_generated, seed_of};
use testkit::registry::Registry;
use testkit::skopeo;

use common::{failure, sealer, success};
use examples::{KUBE_IMAGES, example, mirror_path};

/// The images the app example needs (its image list, app manifest and chart).
const APP_IMAGES: [&str; 2] = [
    "docker.io/library/busybox:1.36",
    "docker.io/library/nginx:1.27.3",
];
/// The name the app example's Kubefile expects its base under.
const BASE_TAG: &str = "sealer-examples/kubernetes:v1.32.0";

/// An upstream registry holding generated images under the names of real registries.
struct Upstream {
    registry: Registry,
    images: BTreeMap<String, GeneratedImage>,
}

impl Upstream {
    fn start(references: &[&str]) -> Self {
        let registry = Registry::start();
        let mut upstream = Upstream {
            registry,
            images: BTreeMap::new(),
        };
        for reference in references {
            upstream.put(
                reference,
                &[ImageSpec::amd64(&[40_000, 9_000], seed_of(reference))],
            );
        }
        upstream
    }

    /// Pushes a generated image as `reference` (its path below the registry name).
    fn put(&mut self, reference: &str, specs: &[ImageSpec]) {
        let generated = push_generated(self.registry.addr(), mirror_path(reference), specs);
        self.images.insert(reference.to_owned(), generated);
    }

    /// `sealer-build --root ROOT` with this upstream as the mirror of docker.io and
    /// registry.k8s.io.
    fn sealer(&self, root: &Path) -> Command {
        let mut command = sealer(root);
        for registry in ["docker.io", "registry.k8s.io"] {
            command
                .arg("--registry-mirror")
                .arg(format!("{registry}={}", self.registry.addr()));
        }
        command
    }

    /// `build --platform linux/amd64 -t TAG ARGS... CONTEXT`.
    fn build(&self, root: &Path, tag: &str, context: &Path, args: &[&str]) -> Command {
        let mut command = self.sealer(root);
        command
            .args(["build", "--platform", "linux/amd64", "-t", tag])
            .args(args)
            .arg(context);
        command
    }

    /// Requests for manifests and blobs the upstream served so far.
    fn image_requests(&self) -> usize {
        self.registry
            .log()
            .lines()
            .filter(|line| {
                (line.contains("GET /v2/") || line.contains("HEAD /v2/"))
                    && (line.contains("/blobs/") || line.contains("/manifests/"))
            })
            .count()
    }
}

/// Builds the kubernetes example as [`BASE_TAG`] into the store at `root`.
fn build_base(upstream: &Upstream, root: &Path) -> String {
    let (stdout, _) =
        success(&mut upstream.build(root, BASE_TAG, &example("kubernetes"), &["-o", "json"]));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    summary["descriptor"]["digest"].as_str().unwrap().to_owned()
}

/// Copies a pushed image to an OCI layout with skopeo and applies its layers to a directory;
/// returns the root filesystem and the raw manifest.
fn unpack_pushed(reference: &str, work: &Path) -> (PathBuf, Value) {
    let layout = work.join("layout");
    common::skopeo_copy(
        &["--src-tls-verify=false"],
        &format!("docker://{reference}"),
        &format!("oci:{}:x", layout.display()),
    );
    let manifest: Value =
        serde_json::from_str(&skopeo::inspect_raw(&format!("docker://{reference}"))).unwrap();
    let rootfs = work.join("rootfs");
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        let blob = layout.join("blobs/sha256").join(&digest[7..]);
        image::layer::unpack_layer(
            fs::File::open(&blob).unwrap(),
            &rootfs,
            &image::layer::UnpackOptions::default(),
        )
        .unwrap();
    }
    (rootfs, manifest)
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn annotation(manifest: &Value, key: &str) -> Value {
    serde_json::from_str(manifest["annotations"][key].as_str().unwrap_or_else(|| {
        panic!("annotation {key} missing: {manifest}");
    }))
    .unwrap()
}

#[test]
fn the_examples_build_push_and_read_back_with_their_images() {
    let all: Vec<&str> = KUBE_IMAGES.iter().chain(&APP_IMAGES).copied().collect();
    let upstream = Upstream::start(&all);
    let target = common::shared_registry();
    let root = tempfile::tempdir().unwrap();
    build_base(&upstream, root.path());
    let app = format!("{}/examples/app:1", target.addr());
    success(&mut upstream.build(root.path(), &app, &example("app"), &["--push"]));

    let work = tempfile::tempdir().unwrap();
    let (rootfs, manifest) = unpack_pushed(&app, work.path());

    assert_eq!(mode(&rootfs.join("bin/kubeadm")), 0o755);
    assert!(
        fs::read_to_string(rootfs.join("bin/kubeadm"))
            .unwrap()
            .contains("kubeadm v1.32.0")
    );
    assert_eq!(mode(&rootfs.join("scripts/init-kube.sh")), 0o755);
    assert_eq!(mode(&rootfs.join("etc/kubelet.service")), 0o644);
    assert_eq!(
        fs::read_to_string(rootfs.join("manifests/imageList")).unwrap(),
        fs::read_to_string(example("app").join("manifests/imageList")).unwrap(),
        "the app's image list replaces the base's"
    );
    assert_eq!(
        fs::read(rootfs.join("application/apps/hello/hello.yaml")).unwrap(),
        fs::read(example("app").join("apps/hello/hello.yaml")).unwrap()
    );
    assert!(
        rootfs
            .join("charts/web/templates/deployment.yaml")
            .is_file()
    );
    let top: BTreeSet<String> = fs::read_dir(&rootfs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        top,
        [
            "application",
            "bin",
            "charts",
            "etc",
            "manifests",
            "registry",
            "scripts",
            "statics"
        ]
        .map(String::from)
        .into()
    );

    let extension = annotation(&manifest, "sealer.image.extension");
    assert_eq!(extension["schemaVersion"], "v1alpha1");
    assert_eq!(extension["type"], "kube-installer");
    assert_eq!(extension["launch"]["app_names"][0], "hello");
    assert_eq!(extension["applications"][0]["name"], "hello");
    assert_eq!(extension["applications"][0]["env"]["NAMESPACE"], "demo");
    assert_eq!(extension["env"]["NAMESPACE"], "demo");
    let listed = annotation(&manifest, "sealer.image.container.images");
    let listed: BTreeSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            assert_eq!(entry["platform"]["architecture"], "amd64");
            entry["image"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(listed, all.iter().map(|s| (*s).to_owned()).collect());

    let config = skopeo::inspect(&format!("docker://{app}"));
    let labels = &config["Labels"];
    assert_eq!(
        labels["cluster.alpha.sealer.io/cluster-runtime-type"],
        "kubernetes"
    );
    assert_eq!(
        labels["app.alpha.sealer.io/supported-kube-version"],
        "v1.32.0"
    );
    assert_eq!(labels["org.opencontainers.image.title"], "hello app");
    // Docker's exporter drops annotations: the config labels carry the same metadata.
    for key in ["sealer.image.extension", "sealer.image.container.images"] {
        assert_eq!(labels[key], manifest["annotations"][key], "{key}");
    }

    // The image's registry directory, served by a stock registry, gives every image with
    // the upstream's digests, by tag and by digest, under its short name.
    let served = Registry::builder().storage(rootfs.join("registry")).start();
    for reference in &all {
        let path = mirror_path(reference);
        let (repository, tag) = path.rsplit_once(':').unwrap();
        let expected = &upstream.images[*reference].digest;
        let by_tag = skopeo::inspect_raw(&format!("docker://{}/{path}", served.addr()));
        assert_eq!(
            &common::sha256(by_tag.as_bytes()),
            expected,
            "{reference} by tag"
        );
        let by_digest = format!("docker://{}/{repository}@{expected}", served.addr());
        let copied = work
            .path()
            .join(format!("pulled-{}", repository.replace('/', "-")));
        skopeo::copy(&by_digest, &format!("oci:{}:{tag}", copied.display()));
    }
}

/// Copies a directory tree (the copy's files get new times and inodes).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_same_inputs_give_the_same_digests_in_two_stores_from_two_copies() {
    let all: Vec<&str> = KUBE_IMAGES.iter().chain(&APP_IMAGES).copied().collect();
    let upstream = Upstream::start(&all);
    let digests: Vec<(String, String)> = (0..2)
        .map(|n| {
            let copies = tempfile::tempdir().unwrap();
            let (base, app) = (copies.path().join("base"), copies.path().join("app"));
            copy_tree(&example("kubernetes"), &base);
            copy_tree(&example("app"), &app);
            if n == 1 {
                std::thread::sleep(std::time::Duration::from_millis(1100));
                fs::write(
                    app.join("manifests/imageList"),
                    fs::read(app.join("manifests/imageList")).unwrap(),
                )
                .unwrap();
            }
            let root = tempfile::tempdir().unwrap();
            let build = |tag: &str, context: &Path| {
                let (stdout, _) =
                    success(&mut upstream.build(root.path(), tag, context, &["-o", "json"]));
                let summary: Value = serde_json::from_str(&stdout).unwrap();
                summary["descriptor"]["digest"].as_str().unwrap().to_owned()
            };
            (build(BASE_TAG, &base), build("t/app:1", &app))
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn a_rebuild_reuses_every_step_and_fetches_nothing() {
    let upstream = Upstream::start(&KUBE_IMAGES);
    let root = tempfile::tempdir().unwrap();
    let first = build_base(&upstream, root.path());
    let requests = upstream.image_requests();
    let blobs = common::blob_files(root.path());
    let (stdout, _) = success(&mut upstream.build(
        root.path(),
        BASE_TAG,
        &example("kubernetes"),
        &["-o", "json"],
    ));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["descriptor"]["digest"], first.as_str());
    assert_eq!(summary["platforms"][0]["built_steps"], 0, "{summary}");
    assert_eq!(
        upstream.image_requests(),
        requests,
        "nothing asked of the registry again"
    );
    assert_eq!(
        common::blob_files(root.path()),
        blobs,
        "no layer written again"
    );

    let (stdout, _) = success(&mut upstream.build(
        root.path(),
        BASE_TAG,
        &example("kubernetes"),
        &["-o", "json", "--no-cache"],
    ));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["platforms"][0]["cached_steps"], 0, "{summary}");
    assert_eq!(summary["descriptor"]["digest"], first.as_str());
}

#[test]
fn one_changed_upstream_image_uploads_only_its_layer_and_metadata() {
    let mut upstream = Upstream::start(&KUBE_IMAGES);
    let target = Registry::start();
    let root = tempfile::tempdir().unwrap();
    let pushed = format!("{}/k8s/base:1", target.addr());
    success(&mut upstream.build(root.path(), &pushed, &example("kubernetes"), &["--push"]));
    let before = testkit::registry::stored_blob_sizes(target.storage_dir());

    let changed = "registry.k8s.io/pause:3.10";
    // Large enough that the layer's fixed cost (tar headers, link files) stays small beside it.
    upstream.put(changed, &[ImageSpec::amd64(&[900_000, 9_000], 424_242)]);
    // Without --pull always, a rebuild keeps the tags it resolved before (no network).
    let (stdout, _) = success(&mut upstream.build(
        root.path(),
        &pushed,
        &example("kubernetes"),
        &["-o", "json"],
    ));
    assert!(stdout.contains("\"built_steps\": 0"), "{stdout}");
    success(&mut upstream.build(
        root.path(),
        &pushed,
        &example("kubernetes"),
        &["--push", "--pull", "always"],
    ));
    let after = testkit::registry::stored_blob_sizes(target.storage_dir());
    let uploaded: u64 = after
        .iter()
        .filter(|(digest, _)| !before.contains_key(*digest))
        .map(|(_, size)| size)
        .sum();
    let image_bytes = upstream.images[changed].bytes;
    assert!(
        uploaded * 5 <= image_bytes * 6 + 16_384,
        "uploaded {uploaded} bytes after changing an image of {image_bytes} bytes"
    );
    assert!(
        uploaded >= image_bytes,
        "the changed image's layer is uploaded"
    );
}

/// A context of files for a Kubefile.
fn context(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

/// Builds a context with no upstream images (`--build-mode lite` unless the Kubefile needs
/// them) and returns the exit status, stdout and stderr.
fn build_lite(root: &Path, context: &Path, extra: &[&str]) -> Command {
    let mut command = sealer(root);
    command
        .args([
            "build",
            "--platform",
            "linux/amd64",
            "--build-mode",
            "lite",
            "-t",
            "t/x:1",
        ])
        .args(extra)
        .arg(context);
    command
}

fn export(root: &Path, image: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    success(sealer(root).args(["export", image]).arg(&rootfs));
    dir
}

#[test]
fn run_steps_execute_on_the_host_with_the_rootfs_first_on_path() {
    let dir = context(&[
        (
            "Kubefile",
            "FROM scratch\nCOPY bin bin\nENV GREETING=hello\nRUN mkdir -p etc && greet > etc/greeting && rm bin/remove-me\n",
        ),
        (
            "bin/greet",
            "#!/bin/sh\necho \"$GREETING from the rootfs\"\n",
        ),
        ("bin/remove-me", "x"),
    ]);
    fs::set_permissions(
        dir.path().join("bin/greet"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    success(&mut build_lite(root.path(), dir.path(), &[]));
    let exported = export(root.path(), "t/x:1");
    let rootfs = exported.path().join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/greeting")).unwrap(),
        "hello from the rootfs\n"
    );
    assert!(!rootfs.join("bin/remove-me").exists());
    assert!(rootfs.join("bin/greet").is_file());
}

#[test]
fn bad_input_fails_clearly_and_the_next_build_succeeds() {
    let root = tempfile::tempdir().unwrap();
    let cases = [
        ("FROM scratch\nCOPY missing.txt /\n", "Kubefile:2:6"),
        ("FROM scratch\nCOPY escape/ x/\n", "Kubefile:2:"),
        (
            "FROM scratch\nRUN echo about to fail; exit 3\n",
            "about to fail",
        ),
        (
            "FROM 127.0.0.1:9/nothing/here:1\n",
            "127.0.0.1:9/nothing/here:1",
        ),
    ];
    for (kubefile, expected) in cases {
        let dir = context(&[("Kubefile", kubefile)]);
        if kubefile.contains("escape/") {
            std::os::unix::fs::symlink("/etc", dir.path().join("escape")).unwrap();
        }
        let (_, stderr) = failure(&mut build_lite(root.path(), dir.path(), &[]));
        assert!(stderr.contains(expected), "{kubefile}: {stderr}");
    }
    let dir = context(&[("Kubefile", "FROM scratch\nCOPY a a\n"), ("a", "a")]);
    success(&mut build_lite(root.path(), dir.path(), &[]));
}

#[test]
fn a_missing_upstream_image_names_the_image() {
    let upstream = Upstream::start(&[]);
    let dir = context(&[
        ("Kubefile", "FROM scratch\nCOPY manifests manifests\n"),
        ("manifests/imageList", "registry.k8s.io/absent:1\n"),
    ]);
    let root = tempfile::tempdir().unwrap();
    let (_, stderr) = failure(&mut upstream.build(root.path(), "t/x:1", dir.path(), &[]));
    assert!(stderr.contains("registry.k8s.io/absent:1"), "{stderr}");
}

#[test]
fn dockerignore_hides_files_from_copy() {
    let dir = context(&[
        ("Kubefile", "FROM scratch\nCOPY . files/\n"),
        (".dockerignore", "*.log\nsecret/\n!secret/keep\n"),
        ("a.txt", "a"),
        ("debug.log", "noise"),
        ("secret/key", "k"),
        ("secret/keep", "kept"),
    ]);
    let root = tempfile::tempdir().unwrap();
    success(&mut build_lite(root.path(), dir.path(), &[]));
    let exported = export(root.path(), "t/x:1");
    let files = exported.path().join("rootfs/files");
    assert!(files.join("a.txt").is_file());
    assert!(!files.join("debug.log").exists());
    assert!(!files.join("secret/key").exists());
    assert_eq!(
        fs::read_to_string(files.join("secret/keep")).unwrap(),
        "kept"
    );
}

#[test]
fn an_oci_archive_output_is_readable_by_skopeo() {
    let dir = context(&[("Kubefile", "FROM scratch\nCOPY a a\n"), ("a", "a")]);
    let root = tempfile::tempdir().unwrap();
    let archive = root.path().join("x.tar");
    let (stdout, _) = success(&mut build_lite(
        root.path(),
        dir.path(),
        &[
            "--output",
            &format!("type=oci,dest={}", archive.display()),
            "-o",
            "json",
        ],
    ));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    let raw = StdCommand::new(skopeo::SKOPEO)
        .args(["inspect", "--raw"])
        .arg(format!("oci-archive:{}", archive.display()))
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(
        common::sha256(&raw.stdout),
        summary["descriptor"]["digest"].as_str().unwrap()
    );
}

#[test]
fn several_platforms_make_an_index_with_each_platform_s_files_and_images() {
    let mut upstream = Upstream::start(&[]);
    let multi = "docker.io/library/multi:1";
    upstream.put(
        multi,
        &[
            ImageSpec::amd64(&[20_000], 1),
            ImageSpec {
                architecture: "arm64".into(),
                ..ImageSpec::amd64(&[20_000], 2)
            },
        ],
    );
    let dir = context(&[
        (
            "Kubefile",
            "FROM scratch\nCOPY ${ARCH}/bin bin\nCOPY manifests manifests\n",
        ),
        ("amd64/bin/tool", "amd64 tool"),
        ("arm64/bin/tool", "arm64 tool"),
        ("manifests/imageList", &format!("{multi}\n")),
    ]);
    let root = tempfile::tempdir().unwrap();
    let target = common::shared_registry();
    let pushed = format!("{}/multi/cluster:1", target.addr());
    let mut command = upstream.sealer(root.path());
    command
        .args([
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &pushed,
            "--push",
            "-o",
            "json",
        ])
        .arg(dir.path());
    let (stdout, _) = success(&mut command);
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        summary["descriptor"]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let index: Value =
        serde_json::from_str(&skopeo::inspect_raw(&format!("docker://{pushed}"))).unwrap();
    let architectures: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(architectures, ["amd64", "arm64"]);
    for (position, arch) in ["amd64", "arm64"].iter().enumerate() {
        let work = tempfile::tempdir().unwrap();
        let digest = index["manifests"][position]["digest"].as_str().unwrap();
        let (repository, _) = pushed.rsplit_once(':').unwrap();
        let (rootfs, manifest) = unpack_pushed(&format!("{repository}@{digest}"), work.path());
        assert_eq!(
            fs::read_to_string(rootfs.join("bin/tool")).unwrap(),
            format!("{arch} tool")
        );
        let listed = annotation(&manifest, "sealer.image.container.images");
        assert_eq!(listed[0]["platform"]["architecture"], *arch);
        let expected = &upstream.images[multi].manifests[position];
        let link = rootfs.join(format!(
            "registry/docker/registry/v2/repositories/library/multi/_manifests/revisions/sha256/{}/link",
            &expected[7..]
        ));
        assert!(link.is_file(), "{arch}: the {arch} manifest is cached");
    }
}

/// A TCP proxy to `upstream` that forwards at most `bytes_per_second` towards the client, so
/// that a download can be interrupted while it runs.
fn throttled_proxy(upstream: &str, bytes_per_second: usize) -> String {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut client_reader, mut server_writer) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_reader, &mut server_writer);
            });
            let (mut server_reader, mut client_writer) = (server, client);
            std::thread::spawn(move || {
                let chunk = bytes_per_second / 20;
                let mut buf = vec![0; chunk];
                while let Ok(n) = server_reader.read(&mut buf) {
                    if n == 0 || client_writer.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
        }
    });
    addr
}

#[test]
fn ctrl_c_while_fetching_leaves_a_consistent_store_and_the_next_build_continues() {
    let mut upstream = Upstream::start(&[]);
    let big = "docker.io/library/big:1";
    upstream.put(big, &[ImageSpec::amd64(&[6_000_000], 7)]);
    let proxy = throttled_proxy(upstream.registry.addr(), 2_000_000);
    let dir = context(&[
        ("Kubefile", "FROM scratch\nCOPY manifests manifests\n"),
        ("manifests/imageList", &format!("{big}\n")),
    ]);
    let root = tempfile::tempdir().unwrap();
    let child = StdCommand::new(assert_cmd::cargo::cargo_bin("sealer-build"))
        .arg("--root")
        .arg(root.path())
        .args(["--registry-mirror", &format!("docker.io={proxy}")])
        .args(["build", "--platform", "linux/amd64", "-t", "t/big:1"])
        .arg(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tmp = root.path().join("tmp");
    let started = std::time::Instant::now();
    let downloading = || {
        fs::read_dir(&tmp)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                entry.path().extension().is_some_and(|e| e == "partial")
                    && entry.metadata().is_ok_and(|m| m.len() > 100_000)
            })
    };
    while !downloading() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the download never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    // Every visible blob matches its name; the image was not named.
    for blob in common::blob_files(root.path()) {
        let name = blob.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(common::sha256_file(&blob), format!("sha256:{name}"));
    }
    let (images, _) = success(sealer(root.path()).args(["images", "-o", "json"]));
    assert!(!images.contains("t/big"), "{images}");

    success(&mut upstream.build(root.path(), "t/big:1", dir.path(), &[]));
}

#[test]
fn copy_from_another_image_and_archives_under_images_are_cached() {
    let root = tempfile::tempdir().unwrap();
    let first = context(&[
        ("Kubefile", "FROM scratch\nCOPY conf etc/\n"),
        ("conf/app.conf", "setting=1\n"),
    ]);
    success(&mut build_lite(root.path(), first.path(), &[]));

    let layout = tempfile::tempdir().unwrap();
    testkit::images::write_oci_layout(layout.path(), "1", &[ImageSpec::amd64(&[30_000], 3)]);
    let second = context(&[(
        "Kubefile",
        "FROM scratch\nCOPY --from=t/x:1 etc/app.conf etc/\nCOPY images images\n",
    )]);
    fs::create_dir(second.path().join("images")).unwrap();
    let archive_name = "docker.io/library/archived:2";
    common::write_oci_archive(
        layout.path(),
        archive_name,
        &second.path().join("images/archived.tar"),
    );
    let mut command = sealer(root.path());
    command
        .args([
            "build",
            "--platform",
            "linux/amd64",
            "-t",
            "t/y:1",
            "-o",
            "json",
        ])
        .arg(second.path());
    let (stdout, _) = success(&mut command);
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["platforms"][0]["images"][0], archive_name);
    let exported = export(root.path(), "t/y:1");
    let rootfs = exported.path().join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/app.conf")).unwrap(),
        "setting=1\n"
    );
    let served = Registry::builder().storage(rootfs.join("registry")).start();
    let raw = skopeo::inspect_raw(&format!("docker://{}/library/archived:2", served.addr()));
    let index: Value =
        serde_json::from_slice(&fs::read(layout.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(
        common::sha256(raw.as_bytes()),
        index["manifests"][0]["digest"].as_str().unwrap()
    );
}

#[test]
fn ctrl_c_during_run_ends_the_command_and_the_build() {
    use std::io::BufRead;
    let dir = context(&[("Kubefile", "FROM scratch\nRUN echo started; sleep 600\n")]);
    let root = tempfile::tempdir().unwrap();
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("sealer-build"))
        .arg("--root")
        .arg(root.path())
        .args(["build", "--build-mode", "lite", "-t", "t/run:1"])
        .arg(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while !seen.contains("| started") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the build ended: {seen}"
        );
        seen.push_str(&line);
    }
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    // Nothing of the build's work directory is left behind.
    let work = root.path().join("build-cache/work");
    let left: Vec<_> = fs::read_dir(&work)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn add_of_a_url_pinned_by_checksum_is_downloaded_once() {
    let body: &'static [u8] = b"release notes\n";
    let (url, request) = testkit::http::serve_once("200 OK", body);
    let kubefile = format!(
        "FROM scratch\nADD --checksum={} {url}/notes.txt?token=secret docs/\n",
        common::sha256(body)
    );
    let dir = context(&[("Kubefile", &kubefile)]);
    let root = tempfile::tempdir().unwrap();
    let (_, stderr) = success(&mut build_lite(root.path(), dir.path(), &[]));
    assert!(!stderr.contains("token=secret"), "{stderr}");
    assert!(
        request
            .join()
            .unwrap()
            .starts_with("GET /notes.txt?token=secret ")
    );
    // The server is gone: the rebuild must not need it.
    let (stdout, _) = success(&mut build_lite(root.path(), dir.path(), &["-o", "json"]));
    assert!(stdout.contains("\"cached_steps\": 1"), "{stdout}");
    let exported = export(root.path(), "t/x:1");
    assert_eq!(
        fs::read(exported.path().join("rootfs/docs/notes.txt")).unwrap(),
        body
    );
}

#[test]
fn type_labels_and_annotations_reach_the_image() {
    let dir = context(&[("Kubefile", "FROM scratch\nCOPY a a\n"), ("a", "a")]);
    let root = tempfile::tempdir().unwrap();
    success(&mut build_lite(
        root.path(),
        dir.path(),
        &[
            "--type",
            "app-installer",
            "--label",
            "team=platform",
            "--annotation",
            "org.example/ticket=42",
        ],
    ));
    let (stdout, _) = success(sealer(root.path()).args(["inspect", "t/x:1"]));
    let inspected: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(inspected["sealer"]["extension"]["type"], "app-installer");
    assert_eq!(inspected["config"]["config"]["Labels"]["team"], "platform");
    assert_eq!(
        inspected["manifest"]["annotations"]["org.example/ticket"],
        "42"
    );
}

#[test]
fn image_lists_given_to_the_build_feed_the_scan() {
    let upstream = Upstream::start(&["docker.io/library/extra:1", "docker.io/library/listed:1"]);
    let dir = context(&[
        ("Kubefile", "FROM scratch\nCOPY manifests manifests\n"),
        (
            "manifests/imageList",
            "docker.io/library/listed:1\ndocker.io/library/dropped:1\n",
        ),
    ]);
    let lists = tempfile::tempdir().unwrap();
    let extra = lists.path().join("extra");
    let ignored = lists.path().join("ignored");
    fs::write(&extra, "docker.io/library/extra:1\n").unwrap();
    fs::write(&ignored, "docker.io/library/dropped:1\n").unwrap();
    let root = tempfile::tempdir().unwrap();
    let extra_arg = extra.display().to_string();
    let ignored_arg = ignored.display().to_string();
    let (stdout, _) = success(&mut upstream.build(
        root.path(),
        "t/lists:1",
        dir.path(),
        &[
            "--image-list",
            &extra_arg,
            "--ignored-image-list",
            &ignored_arg,
            "-o",
            "json",
        ],
    ));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        summary["platforms"][0]["images"],
        serde_json::json!(["docker.io/library/extra:1", "docker.io/library/listed:1"])
    );
}
