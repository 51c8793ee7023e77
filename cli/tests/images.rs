//! The image commands of `sealer-build` (pull, push, images, inspect, tag, rmi, prune, save,
//! load, export, login, logout) run as a user runs them, against a real `docker-registry`, and
//! checked byte for byte with `skopeo`.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command as StdCommand;

use base64::Engine as _;
use serde_json::Value;
use tempfile::TempDir;
use testkit::images::{GeneratedImage, ImageSpec, Random, write_oci_layout};
use testkit::registry::Registry;
use testkit::skopeo::{self, Skopeo};

use common::{
    blob_files, failure, sealer, sha256, sha256_file, shared_registry, skopeo_copy, success,
    write_large_layout, write_oci_archive,
};

/// Layer sizes of the small test images.
const LAYERS: &[usize] = &[300_000, 70_000];
/// The most a pull or push of the 1 GiB image may keep resident.
const PEAK_RSS_LIMIT_KIB: u64 = 150 * 1024;

/// A generated image pushed into a registry by skopeo.
struct Seeded {
    image: GeneratedImage,
    /// `127.0.0.1:PORT/repo:1`.
    reference: String,
    _layout: TempDir,
}

/// Generates a one-platform image from `seed` and pushes it with skopeo as `repo:1`.
fn seed_image(registry: &Registry, repo: &str, seed: u64) -> Seeded {
    let layout = tempfile::tempdir().unwrap();
    let image = write_oci_layout(
        &layout.path().join("layout"),
        "1",
        &[ImageSpec::amd64(LAYERS, seed)],
    );
    let reference = format!("{}/{repo}:1", registry.addr());
    skopeo::copy(&image.oci_ref(), &docker(&reference));
    Seeded {
        image,
        reference,
        _layout: layout,
    }
}

/// skopeo's name of an image in a registry.
fn docker(reference: &str) -> String {
    format!("docker://{reference}")
}

/// A blob of a generated image's layout.
fn layout_blob(image: &GeneratedImage, digest: &str) -> Vec<u8> {
    fs::read(image.layout.join("blobs/sha256").join(&digest[7..])).unwrap()
}

/// The config digest and the layer digests a manifest names.
fn blobs_of(manifest: &[u8]) -> BTreeSet<String> {
    let manifest: Value = serde_json::from_slice(manifest).unwrap();
    let mut blobs = BTreeSet::from([manifest["config"]["digest"].as_str().unwrap().to_owned()]);
    for layer in manifest["layers"].as_array().unwrap() {
        blobs.insert(layer["digest"].as_str().unwrap().to_owned());
    }
    blobs
}

/// The first 12 hex digits of a digest, as progress lines show it.
fn short(digest: &str) -> &str {
    &digest[7..19]
}

/// `sealer-build images -o json`.
fn images_json(root: &Path) -> Vec<Value> {
    let (stdout, _) = success(sealer(root).args(["images", "-o", "json"]));
    serde_json::from_str::<Value>(&stdout)
        .unwrap_or_else(|e| panic!("images -o json printed no JSON ({e}): {stdout}"))
        .as_array()
        .unwrap()
        .clone()
}

/// The digest `images -o json` shows for a name; panics when the name is not listed.
fn listed_digest(root: &Path, name: &str) -> String {
    let images = images_json(root);
    let entry = images
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not among the images: {images:?}"));
    entry["digest"].as_str().unwrap().to_owned()
}

/// Copies an image out of a registry with `skopeo copy ... dir:` and checks that skopeo got
/// `manifest` byte for byte and exactly the blobs it names, each hashing to its name.
fn assert_registry_serves(reference: &str, manifest: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("copy");
    skopeo::copy(&docker(reference), &format!("dir:{}", target.display()));
    assert_eq!(
        fs::read(target.join("manifest.json")).unwrap(),
        manifest,
        "skopeo's copy of {reference} has another manifest"
    );
    let mut blobs = BTreeSet::new();
    for entry in fs::read_dir(&target).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "manifest.json" || name == "version" {
            continue;
        }
        assert_eq!(
            sha256_file(&entry.path()),
            format!("sha256:{name}"),
            "blob file {name} copied from {reference}"
        );
        blobs.insert(format!("sha256:{name}"));
    }
    assert_eq!(blobs, blobs_of(manifest), "the blobs of {reference}");
}

#[test]
fn pull_then_push_keeps_every_byte() {
    let registry = shared_registry();
    let seeded = seed_image(&registry, "it/roundtrip-src", 11);
    let raw = skopeo::inspect_raw(&docker(&seeded.reference));
    let skopeo_digest = skopeo::inspect(&docker(&seeded.reference))["Digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(skopeo_digest, seeded.image.digest);
    assert_eq!(sha256(raw.as_bytes()), skopeo_digest);

    let root = tempfile::tempdir().unwrap();
    let (stdout, _) = success(sealer(root.path()).args(["pull", &seeded.reference]));
    assert_eq!(stdout.trim(), skopeo_digest);
    assert_eq!(listed_digest(root.path(), &seeded.reference), skopeo_digest);
    let (stdout, _) = success(sealer(root.path()).args(["inspect", &seeded.reference]));
    let inspected: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(inspected["digest"], skopeo_digest.as_str());
    assert_eq!(inspected["name"], seeded.reference.as_str());
    assert_eq!(
        inspected["manifest"],
        serde_json::from_str::<Value>(&raw).unwrap()
    );
    assert_eq!(inspected["config"]["architecture"], "amd64");
    assert_eq!(inspected["config"]["config"]["Labels"]["seed"], "11");

    let destination = format!("{}/it/roundtrip-dst:1", registry.addr());
    let (stdout, _) = success(sealer(root.path()).args(["push", &seeded.reference, &destination]));
    assert_eq!(stdout.trim(), skopeo_digest);
    assert_eq!(skopeo::inspect_raw(&docker(&destination)), raw);
    assert_registry_serves(&destination, raw.as_bytes());
}

#[test]
fn load_then_push_keeps_every_byte() {
    let registry = shared_registry();
    let work = tempfile::tempdir().unwrap();
    let image = write_oci_layout(
        &work.path().join("layout"),
        "1",
        &[ImageSpec::amd64(LAYERS, 12)],
    );
    let name = format!("{}/it/loaded:1", registry.addr());
    let archive = work.path().join("image.tar");
    write_oci_archive(&image.layout, &name, &archive);

    let root = tempfile::tempdir().unwrap();
    let (stdout, _) = success(sealer(root.path()).arg("load").arg("-i").arg(&archive));
    assert_eq!(stdout, format!("Loaded image: {name}\n"));
    assert_eq!(listed_digest(root.path(), &name), image.digest);
    let (stdout, stderr) = success(sealer(root.path()).args(["push", &name]));
    assert_eq!(stdout.trim(), image.digest);
    let manifest = layout_blob(&image, &image.digest);
    for blob in blobs_of(&manifest) {
        assert!(
            stderr.contains(&format!("{}: uploaded", short(&blob))),
            "{blob} was not uploaded: {stderr}"
        );
    }
    assert_eq!(
        skopeo::inspect_raw(&docker(&name)).as_bytes(),
        manifest.as_slice()
    );
    assert_registry_serves(&name, &manifest);
}

#[test]
fn pull_picks_the_platform_of_an_index() {
    let registry = shared_registry();
    let work = tempfile::tempdir().unwrap();
    let arm64 = ImageSpec {
        architecture: "arm64".into(),
        layer_sizes: vec![150_000, 20_000],
        seed: 22,
    };
    let image = write_oci_layout(
        &work.path().join("layout"),
        "1",
        &[ImageSpec::amd64(&[200_000], 21), arm64],
    );
    let reference = format!("{}/it/multi:1", registry.addr());
    skopeo_copy(&["--all"], &image.oci_ref(), &docker(&reference));
    assert_eq!(
        sha256(skopeo::inspect_raw(&docker(&reference)).as_bytes()),
        image.digest,
        "the registry serves the index"
    );

    let root = tempfile::tempdir().unwrap();
    let (stdout, _) =
        success(sealer(root.path()).args(["pull", "--platform", "linux/arm64", &reference]));
    let arm64_manifest = &image.manifests[1];
    assert_eq!(stdout.trim(), arm64_manifest);
    let images = images_json(root.path());
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0]["name"], reference.as_str());
    assert_eq!(images[0]["digest"], arm64_manifest.as_str());
    assert_eq!(images[0]["platform"], "linux/arm64");
    let stored = root
        .path()
        .join("images/blobs/sha256")
        .join(&arm64_manifest[7..]);
    assert_eq!(
        fs::read(stored).unwrap(),
        layout_blob(&image, arm64_manifest)
    );
    for layer in &image.layers[1..] {
        let path = root.path().join("images/blobs/sha256").join(&layer[7..]);
        assert_eq!(&sha256_file(&path), layer);
    }
    assert!(
        !root
            .path()
            .join("images/blobs/sha256")
            .join(&image.layers[0][7..])
            .exists(),
        "the amd64 layer was downloaded too"
    );

    let (_, stderr) =
        failure(sealer(root.path()).args(["pull", "--platform", "linux/s390x", &reference]));
    assert!(
        stderr.contains(&format!(
            "{reference} has no image for platform linux/s390x (it has: linux/amd64, linux/arm64)"
        )),
        "{stderr}"
    );
}

#[test]
fn repush_skips_every_blob_and_another_repository_mounts_them() {
    let registry = shared_registry();
    let seeded = seed_image(&registry, "it/mount-src", 31);
    let root = tempfile::tempdir().unwrap();
    success(sealer(root.path()).args(["pull", "-q", &seeded.reference]));
    let manifest = layout_blob(&seeded.image, &seeded.image.digest);
    let blobs = blobs_of(&manifest);

    let (stdout, stderr) = success(sealer(root.path()).args(["push", &seeded.reference]));
    assert_eq!(stdout.trim(), seeded.image.digest);
    for blob in &blobs {
        assert!(
            stderr.contains(&format!("{}: already there\n", short(blob))),
            "{blob} was not skipped: {stderr}"
        );
    }
    assert!(
        !stderr.contains("uploaded") && !stderr.contains("mounted"),
        "{stderr}"
    );

    let destination = format!("{}/it/mount-dst:1", registry.addr());
    let (stdout, stderr) =
        success(sealer(root.path()).args(["push", &seeded.reference, &destination]));
    assert_eq!(stdout.trim(), seeded.image.digest);
    for blob in &blobs {
        assert!(
            stderr.contains(&format!(
                "{}: mounted from another repository\n",
                short(blob)
            )),
            "{blob} was not mounted: {stderr}"
        );
    }
    assert!(!stderr.contains("uploaded"), "{stderr}");
    assert_eq!(
        skopeo::inspect_raw(&docker(&destination)).as_bytes(),
        manifest.as_slice()
    );
}

/// The blob names (`sha256:<hex>`) of a store.
fn stored_blobs(root: &Path) -> BTreeSet<String> {
    blob_files(root)
        .iter()
        .map(|p| format!("sha256:{}", p.file_name().unwrap().to_string_lossy()))
        .collect()
}

#[test]
fn tag_rmi_and_prune() {
    let registry = shared_registry();
    let kept = seed_image(&registry, "it/prune-kept", 41);
    let removed = seed_image(&registry, "it/prune-removed", 42);
    let root = tempfile::tempdir().unwrap();
    for image in [&kept, &removed] {
        success(sealer(root.path()).args(["pull", "-q", &image.reference]));
    }
    let blobs_of_image = |seeded: &Seeded| {
        let mut blobs = blobs_of(&layout_blob(&seeded.image, &seeded.image.digest));
        blobs.insert(seeded.image.digest.clone());
        blobs
    };
    let all: BTreeSet<String> = blobs_of_image(&kept)
        .union(&blobs_of_image(&removed))
        .cloned()
        .collect();
    assert_eq!(all.len(), 8);
    assert_eq!(stored_blobs(root.path()), all);

    let second = format!("{}/it/prune-removed:2", registry.addr());
    let alias = format!("{}/it/prune-alias:1", registry.addr());
    success(sealer(root.path()).args(["tag", &removed.reference, &second, &alias]));
    for name in [&removed.reference, &second, &alias] {
        assert_eq!(listed_digest(root.path(), name), removed.image.digest);
    }
    assert_eq!(images_json(root.path()).len(), 4);

    let (stdout, _) = success(sealer(root.path()).args(["rmi", &second]));
    assert_eq!(stdout, format!("Untagged: {second}\n"));
    assert_eq!(images_json(root.path()).len(), 3);

    let prefix = &removed.image.digest[7..19];
    let (_, stderr) = failure(sealer(root.path()).args(["rmi", prefix]));
    assert!(
        stderr.contains(&format!(
            "{prefix} has several names ({alias}, {}); remove them by name, or use --force",
            removed.reference
        )),
        "{stderr}"
    );
    assert_eq!(images_json(root.path()).len(), 3);

    let (stdout, _) = success(sealer(root.path()).args(["rmi", "--force", prefix]));
    assert_eq!(
        stdout,
        format!("Untagged: {alias}\nUntagged: {}\n", removed.reference)
    );
    let images = images_json(root.path());
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0]["name"], kept.reference.as_str());
    assert_eq!(stored_blobs(root.path()), all, "rmi deleted blobs");

    let (stdout, _) = success(sealer(root.path()).arg("prune"));
    assert!(stdout.starts_with("Deleted 4 blobs, "), "{stdout}");
    assert_eq!(blob_files(root.path()).len(), 4);
    assert_eq!(stored_blobs(root.path()), blobs_of_image(&kept));
    let (stdout, _) = success(sealer(root.path()).arg("prune"));
    assert!(stdout.starts_with("Deleted 0 blobs, "), "{stdout}");
    success(sealer(root.path()).args(["inspect", &kept.reference]));
}

#[test]
fn save_and_load_keep_digests_in_both_formats() {
    let registry = shared_registry();
    let seeded = seed_image(&registry, "it/saved", 51);
    let root = tempfile::tempdir().unwrap();
    success(sealer(root.path()).args(["pull", "-q", &seeded.reference]));
    let manifest: Value =
        serde_json::from_slice(&layout_blob(&seeded.image, &seeded.image.digest)).unwrap();
    let config: Value = serde_json::from_slice(&layout_blob(
        &seeded.image,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    for format in ["oci", "docker"] {
        let archive = work.path().join(format!("{format}.tar"));
        success(
            sealer(root.path())
                .args(["save", "--format", format, "-o"])
                .arg(&archive)
                .arg(&seeded.reference),
        );
        if format == "oci" {
            let inspected = skopeo::inspect(&format!("oci-archive:{}", archive.display()));
            assert_eq!(inspected["Digest"], seeded.image.digest.as_str());
            assert_eq!(inspected["Layers"], serde_json::json!(seeded.image.layers));
            assert_eq!(inspected["Architecture"], "amd64");
        } else {
            // The docker-archive transport finds the image by the tag `docker load` would
            // give it, and names layers by their uncompressed digests (the diff IDs).
            let inspected = skopeo::inspect(&format!(
                "docker-archive:{}:{}",
                archive.display(),
                seeded.reference
            ));
            assert_eq!(inspected["Layers"], config["rootfs"]["diff_ids"]);
            assert_eq!(inspected["Labels"]["seed"], "51");
            assert_eq!(inspected["Architecture"], "amd64");
        }

        let fresh = tempfile::tempdir().unwrap();
        let (stdout, _) = success(sealer(fresh.path()).arg("load").arg("-i").arg(&archive));
        assert_eq!(stdout, format!("Loaded image: {}\n", seeded.reference));
        assert_eq!(
            listed_digest(fresh.path(), &seeded.reference),
            seeded.image.digest,
            "{format}"
        );
        assert_eq!(stored_blobs(fresh.path()), stored_blobs(root.path()));
        for file in blob_files(fresh.path()) {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(sha256_file(&file), format!("sha256:{name}"));
        }
    }
}

#[test]
fn export_writes_the_generated_files() {
    let registry = shared_registry();
    let seeded = seed_image(&registry, "it/exported", 61);
    let root = tempfile::tempdir().unwrap();
    success(sealer(root.path()).args(["pull", "-q", &seeded.reference]));
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("rootfs");
    success(
        sealer(root.path())
            .args(["export", &seeded.reference])
            .arg(&dir),
    );
    let mut files: Vec<String> = fs::read_dir(dir.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["61-0", "61-1"]);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "only data/");
    for (n, size) in LAYERS.iter().enumerate() {
        let mut expected = vec![0; *size];
        Random::new(61 + n as u64 * 7919).fill(&mut expected);
        let written = fs::read(dir.join(format!("data/61-{n}"))).unwrap();
        assert!(written == expected, "data/61-{n} differs from the layer");
    }
}

#[test]
fn login_stores_docker_credentials_and_logout_removes_them() {
    const USER: &str = "it-user";
    const PASSWORD: &str = "Pa55-quux-7f3a9c";
    let open = shared_registry();
    let seeded = seed_image(&open, "it/private-src", 71);
    let private = Registry::builder().htpasswd(USER, PASSWORD).start();
    let addr = private.addr().to_owned();
    let config = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    let with_config = |root: &Path| {
        let mut command = sealer(root);
        command.env("DOCKER_CONFIG", config.path());
        command
    };

    success(with_config(root.path()).args(["pull", "-q", &seeded.reference]));
    let target = format!("{addr}/it/private:1");

    let (stdout, stderr) = failure(
        with_config(root.path())
            .args(["login", &addr, "-u", USER, "--password-stdin"])
            .write_stdin("wrong-password\n"),
    );
    assert!(
        stderr.contains(&format!(
            "{addr} refused the login: wrong user name or password"
        )),
        "{stderr}"
    );
    assert!(!config.path().join("config.json").exists());
    assert!(!stderr.contains("wrong-password"), "{stderr}");
    outputs.push(stdout + &stderr);

    let (stdout, stderr) = success(
        with_config(root.path())
            .args(["login", &addr, "-u", USER, "--password-stdin"])
            .write_stdin(format!("{PASSWORD}\n")),
    );
    assert!(
        stderr.contains(&format!("Login Succeeded ({addr})")),
        "{stderr}"
    );
    outputs.push(stdout + &stderr);
    let docker_config: Value =
        serde_json::from_slice(&fs::read(config.path().join("config.json")).unwrap()).unwrap();
    let auth = docker_config["auths"][&addr]["auth"]
        .as_str()
        .unwrap_or_else(|| panic!("no auths entry for {addr}: {docker_config}"));
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap(),
        format!("{USER}:{PASSWORD}").into_bytes()
    );

    let (stdout, stderr) =
        success(with_config(root.path()).args(["push", &seeded.reference, &target]));
    assert_eq!(stdout.trim(), seeded.image.digest);
    outputs.push(stdout + &stderr);
    assert_eq!(
        Skopeo::new()
            .creds(&private.creds().unwrap())
            .inspect_raw(&docker(&target))
            .as_bytes(),
        layout_blob(&seeded.image, &seeded.image.digest).as_slice()
    );
    let fresh = tempfile::tempdir().unwrap();
    let (stdout, stderr) = success(with_config(fresh.path()).args(["pull", &target]));
    assert_eq!(stdout.trim(), seeded.image.digest);
    outputs.push(stdout + &stderr);

    let (stdout, stderr) = success(with_config(root.path()).args(["logout", &addr]));
    assert!(
        stderr.contains(&format!("Removed login credentials for {addr}")),
        "{stderr}"
    );
    outputs.push(stdout + &stderr);
    let docker_config: Value =
        serde_json::from_slice(&fs::read(config.path().join("config.json")).unwrap()).unwrap();
    assert!(
        docker_config["auths"].get(&addr).is_none(),
        "{docker_config}"
    );

    let again = tempfile::tempdir().unwrap();
    let (stdout, stderr) = failure(with_config(again.path()).args(["pull", &target]));
    assert!(
        stderr.contains(&format!(
            "{addr} refused access to it/private: check `sealer-build login {addr}` (user name, password, and rights on the repository)"
        )),
        "{stderr}"
    );
    outputs.push(stdout + &stderr);
    for output in &outputs {
        assert!(
            !output.contains(PASSWORD),
            "the password was printed: {output}"
        );
    }
}

#[test]
fn an_anonymous_push_to_a_protected_registry_is_refused_with_advice() {
    let open = shared_registry();
    let seeded = seed_image(&open, "it/anonymous-src", 72);
    let private = Registry::builder().htpasswd("it-user", "secret").start();
    let addr = private.addr();
    let root = tempfile::tempdir().unwrap();
    success(sealer(root.path()).args(["pull", "-q", &seeded.reference]));
    let target = format!("{addr}/it/anonymous:1");
    let (_, stderr) = failure(sealer(root.path()).args(["push", &seeded.reference, &target]));
    assert!(
        stderr.contains(&format!(
            "{addr} refused access to it/anonymous: check `sealer-build login {addr}`"
        )),
        "{stderr}"
    );
}

/// Runs `sealer-build --root ROOT ARGS` under `/usr/bin/time`; returns its peak resident set
/// size in KiB and its standard output.
fn peak_rss_kib(root: &Path, args: &[&str]) -> (u64, String) {
    let report = root.join("time.txt");
    let output = StdCommand::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_sealer-build"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("DOCKER_CONFIG", root.join("docker-config"))
        .env_remove("SEALER_ROOT")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "sealer-build {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let kib = fs::read_to_string(&report).unwrap().trim().parse().unwrap();
    (kib, String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn a_1_gib_layer_is_pulled_and_pushed_in_bounded_memory() {
    const SIZE: u64 = 1 << 30;
    let source = shared_registry();
    let work = tempfile::tempdir().unwrap();
    let image = write_large_layout(&work.path().join("layout"), "1", SIZE, 81);
    let reference = format!("{}/it/large:1", source.addr());
    skopeo_copy(&[], &image.oci_ref(), &docker(&reference));
    let root = tempfile::tempdir().unwrap();

    let (pull_kib, stdout) = peak_rss_kib(root.path(), &["pull", "-q", &reference]);
    eprintln!(
        "peak RSS of `sealer-build pull` of a 1 GiB layer: {pull_kib} KiB ({} MiB)",
        pull_kib / 1024
    );
    assert_eq!(stdout.trim(), image.digest);
    let layer = root
        .path()
        .join("images/blobs/sha256")
        .join(&image.layers[0][7..]);
    assert_eq!(sha256_file(&layer), image.layers[0]);

    let destination_registry = Registry::start();
    let destination = format!("{}/it/large:1", destination_registry.addr());
    let (push_kib, stdout) = peak_rss_kib(root.path(), &["push", "-q", &reference, &destination]);
    eprintln!(
        "peak RSS of `sealer-build push` of a 1 GiB layer: {push_kib} KiB ({} MiB)",
        push_kib / 1024
    );
    assert_eq!(stdout.trim(), image.digest);
    assert_eq!(
        skopeo::inspect_raw(&docker(&destination)).as_bytes(),
        layout_blob(&image, &image.digest).as_slice()
    );
    let uploaded = destination_registry.storage_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &image.layers[0][7..9],
        &image.layers[0][7..]
    ));
    assert_eq!(sha256_file(&uploaded), image.layers[0]);
    assert!(
        pull_kib < PEAK_RSS_LIMIT_KIB && push_kib < PEAK_RSS_LIMIT_KIB,
        "peak RSS: pull {pull_kib} KiB, push {push_kib} KiB; the limit is {PEAK_RSS_LIMIT_KIB} KiB"
    );
}

/// Pushing a multi-platform image (an index loaded from an OCI archive) pushes every platform's
/// image, then the index with its exact bytes.
#[test]
fn an_index_is_pushed_with_every_platform() {
    let registry = shared_registry();
    let work = tempfile::tempdir().unwrap();
    let arm64 = ImageSpec {
        architecture: "arm64".into(),
        layer_sizes: vec![60_000],
        seed: 32,
    };
    let layout = work.path().join("layout");
    let image = write_oci_layout(&layout, "1", &[ImageSpec::amd64(&[50_000], 31), arm64]);
    let name = format!("{}/it/index-src:1", registry.addr());
    let archive = work.path().join("index.tar");
    write_oci_archive(&layout, &name, &archive);
    let root = tempfile::tempdir().unwrap();
    success(sealer(root.path()).args(["load", "-i"]).arg(&archive));
    let target = format!("{}/it/index-pushed:1", registry.addr());
    let (stdout, _) = success(sealer(root.path()).args(["push", &name, &target]));
    assert_eq!(stdout.trim(), image.digest);
    let index = skopeo::inspect_raw(&docker(&target));
    assert_eq!(
        index.as_bytes(),
        layout_blob(&image, &image.digest).as_slice()
    );
    for manifest in &image.manifests {
        let by_digest = format!("{}/it/index-pushed@{manifest}", registry.addr());
        let raw = skopeo::inspect_raw(&docker(&by_digest));
        assert_eq!(&sha256(raw.as_bytes()), manifest);
    }
}

/// Two processes pulling into one store at the same time (the same image and another one)
/// both succeed and leave every blob intact.
#[test]
fn two_processes_share_one_store() {
    let registry = shared_registry();
    let work = tempfile::tempdir().unwrap();
    let mut references = Vec::new();
    for (n, seed) in [(0, 41), (1, 42)] {
        let image = write_oci_layout(
            &work.path().join(format!("layout-{n}")),
            "1",
            &[ImageSpec::amd64(&[3_000_000, 2_000_000], seed)],
        );
        let reference = format!("{}/it/shared-{n}:1", registry.addr());
        skopeo_copy(&[], &image.oci_ref(), &docker(&reference));
        references.push((reference, image.digest));
    }
    let root = tempfile::tempdir().unwrap();
    let spawn = |reference: &str| {
        StdCommand::new(assert_cmd::cargo::cargo_bin("sealer-build"))
            .arg("--root")
            .arg(root.path())
            .args(["-q", "pull", reference])
            .env("DOCKER_CONFIG", root.path().join("docker-config"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children = vec![
        spawn(&references[0].0),
        spawn(&references[0].0),
        spawn(&references[1].0),
    ];
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
    }
    let images = images_json(root.path());
    assert_eq!(images.len(), 2, "{images:?}");
    for (reference, digest) in &references {
        assert!(
            images
                .iter()
                .any(|i| i["name"] == reference.as_str() && i["digest"] == digest.as_str())
        );
    }
    for blob in blob_files(root.path()) {
        let name = blob.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(sha256_file(&blob), format!("sha256:{name}"));
    }
}

/// Credentials through Docker's `credsStore` helper: a stand-in `docker-credential-fake` on
/// PATH answers `get`, records `store` and `erase`.
#[test]
fn credential_helpers_are_used() {
    let private = Registry::builder()
        .htpasswd("helper-user", "helper-secret")
        .start();
    let work = tempfile::tempdir().unwrap();
    let image = write_oci_layout(
        &work.path().join("layout"),
        "1",
        &[ImageSpec::amd64(&[10_000], 51)],
    );
    let reference = format!("{}/it/helper:1", private.addr());
    skopeo_copy(
        &["--dest-creds", "helper-user:helper-secret"],
        &image.oci_ref(),
        &docker(&reference),
    );

    let bin = work.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let record = work.path().join("helper-calls");
    let helper = bin.join("docker-credential-fake");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\ninput=$(cat)\necho \"$1 $input\" >> {}\nif [ \"$1\" = get ]; then echo '{{\"ServerURL\":\"'$input'\",\"Username\":\"helper-user\",\"Secret\":\"helper-secret\"}}'; fi\n",
            record.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let root = tempfile::tempdir().unwrap();
    let config_dir = root.path().join("docker-config");
    fs::create_dir_all(&config_dir).unwrap();
    fs::write(config_dir.join("config.json"), br#"{"credsStore":"fake"}"#).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let (stdout, _) = success(
        sealer(root.path())
            .env("PATH", &path)
            .args(["pull", &reference]),
    );
    assert_eq!(stdout.trim(), image.digest);
    success(
        sealer(root.path())
            .env("PATH", &path)
            .args([
                "login",
                private.addr(),
                "-u",
                "helper-user",
                "--password-stdin",
            ])
            .write_stdin("helper-secret\n"),
    );
    success(
        sealer(root.path())
            .env("PATH", &path)
            .args(["logout", private.addr()]),
    );
    let calls = fs::read_to_string(&record).unwrap();
    assert!(
        calls.starts_with(&format!("get {}", private.addr())),
        "{calls}"
    );
    let stored: Value = calls
        .lines()
        .find_map(|l| l.strip_prefix("store "))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_else(|| panic!("no store call: {calls}"));
    assert_eq!(stored["ServerURL"], private.addr());
    assert_eq!(stored["Username"], "helper-user");
    assert_eq!(stored["Secret"], "helper-secret");
    assert!(
        calls.contains(&format!("erase {}", private.addr())),
        "{calls}"
    );
    let config = fs::read_to_string(config_dir.join("config.json")).unwrap();
    assert!(
        !config.contains("helper-secret"),
        "the secret went to the config file: {config}"
    );
}
