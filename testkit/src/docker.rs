//! A Docker daemon (Debian's docker.io 20.10, whose embedded BuildKit v0.8 runs our frontend)
//! for the tests that build with `docker build`, and the images those builds need, pushed to a
//! loopback test registry.
//!
//! `scripts/test` starts a private dockerd (`scripts/dockerd`) and builds the static frontend
//! binary; it passes both on as `SEALER_TEST_DOCKER_HOST` and `SEALER_TEST_FRONTEND_BIN`.
//! Without them, a test says it is skipped, except under `CI=true`, where it fails.
//!
//! ```no_run
//! use testkit::docker::{self, Dockerd};
//! let Some(dockerd) = Dockerd::from_env() else { return };
//! let registry = testkit::registry::shared_registry();
//! let base = docker::busybox_image(&registry);
//! // ... write a Dockerfile `FROM {base}` into a context, then:
//! let log = dockerd.build_success(["-t", "it/demo:1", "/path/to/context"]);
//! let rootfs = dockerd.save_rootfs("it/demo:1");
//! ```

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::layer::{
    Compression, EntryKind, FileSource, LayerEntry, LayerOptions, UnpackOptions, unpack_layer,
};
use image::manifest::{
    Descriptor, ImageConfig, Manifest, OCI_CONFIG, OCI_MANIFEST, RootFs, RuntimeConfig,
};
use image::store::Store;
use image::{Reference, archive};
use kubefile::plan::Platform;
use tempfile::TempDir;

use crate::registry::Registry;
use crate::skopeo::Skopeo;

/// The Docker 20.10 CLI of docker.io. The `docker` on PATH may be another version (the
/// machine's is 28.2 without buildx, which refuses BuildKit builds).
pub const DOCKER_CLI: &str = "/usr/bin/docker";
/// The variable naming the daemon to use: `unix:///path/docker.sock`.
pub const DOCKER_HOST_ENV: &str = "SEALER_TEST_DOCKER_HOST";
/// The variable naming the statically linked frontend binary.
pub const FRONTEND_BIN_ENV: &str = "SEALER_TEST_FRONTEND_BIN";
/// The host's CA bundle, copied into the frontend image.
pub const CA_CERTIFICATES: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Where the frontend binary sits in its image: BuildKit runs `/run` when an image has no
/// entrypoint, and ours names it too.
pub const FRONTEND_ENTRYPOINT: &str = "/run";
/// The image label telling BuildKit to run the frontend without network.
pub const NETWORK_NONE_LABEL: &str = "moby.buildkit.frontend.network.none";
/// The image label listing the capabilities a frontend claims.
pub const FRONTEND_CAPS_LABEL: &str = "moby.buildkit.frontend.caps";
/// The capability our frontend claims: it accepts frontend inputs.
pub const FRONTEND_CAPS: &str = "moby.buildkit.frontend.inputs";
/// Where Debian's busybox-static installs busybox (`/bin` is a link to `/usr/bin` on merged-/usr
/// systems).
const BUSYBOX_PATHS: [&str; 2] = ["/usr/bin/busybox", "/bin/busybox"];
/// The applets of the busybox image, each a symlink to `/bin/busybox`.
const BUSYBOX_APPLETS: [&str; 13] = [
    "sh", "ls", "cat", "echo", "mkdir", "touch", "rm", "cp", "sleep", "env", "test", "true", "wget",
];
/// The PATH of the busybox image.
const BUSYBOX_PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// True when the environment says this is a CI run (`CI=true` or `CI=1`), where tests that lack
/// their components must fail instead of being skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

/// The value of a variable that `scripts/test` sets; `None` after printing why the calling test
/// is skipped; a panic under CI.
fn required_env(name: &str, what: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            assert!(
                !in_ci(),
                "{name} is not set ({what}), and CI=true says this test must run: run the tests through scripts/test, which sets it"
            );
            println!("skipped: {name} is not set ({what}); scripts/test sets it");
            None
        }
    }
}

/// The statically linked frontend binary from `SEALER_TEST_FRONTEND_BIN`; `None` after
/// printing why the calling test is skipped; a panic under CI or when the file is missing.
pub fn frontend_bin_from_env() -> Option<PathBuf> {
    let path = PathBuf::from(required_env(
        FRONTEND_BIN_ENV,
        "the static frontend binary, built with crt-static for x86_64-unknown-linux-gnu",
    )?);
    assert!(
        path.is_file(),
        "{FRONTEND_BIN_ENV}={} is not a file: build it with `RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build -p frontend --target x86_64-unknown-linux-gnu`",
        path.display()
    );
    Some(path)
}

/// A running Docker daemon reached through `SEALER_TEST_DOCKER_HOST`, and a private client
/// configuration directory, so the user's `~/.docker` is never read or written.
pub struct Dockerd {
    host: String,
    client_config: TempDir,
}

impl Dockerd {
    /// The daemon named by `SEALER_TEST_DOCKER_HOST`; `None` after printing why the calling
    /// test is skipped; a panic under CI.
    pub fn from_env() -> Option<Dockerd> {
        let host = required_env(
            DOCKER_HOST_ENV,
            "a dockerd 20.10 socket, see scripts/dockerd",
        )?;
        let client_config = tempfile::Builder::new()
            .prefix("testkit-docker-config-")
            .tempdir()
            .expect("create the docker client's configuration directory");
        Some(Dockerd {
            host,
            client_config,
        })
    }

    /// The daemon's address, as `DOCKER_HOST` takes it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `/usr/bin/docker` talking to this daemon with BuildKit on and the private client
    /// configuration; variables that would pick another daemon or platform are removed.
    pub fn docker(&self) -> Command {
        let mut command = Command::new(DOCKER_CLI);
        command
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_BUILDKIT", "1")
            .env("DOCKER_CONFIG", self.client_config.path());
        for inherited in [
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_DEFAULT_PLATFORM",
            "BUILDKIT_PROGRESS",
        ] {
            command.env_remove(inherited);
        }
        command
    }

    /// Runs `docker build --progress=plain ARGS` and returns what it did; the progress log
    /// (with vertex digests and `CACHED` marks) is on standard error.
    pub fn build<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.docker()
            .args(["build", "--progress=plain"])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {DOCKER_CLI} (package docker.io): {e}"))
    }

    /// [`Dockerd::build`] that must succeed; returns the progress log, or panics with it.
    pub fn build_success<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let output = self.build(&args);
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "docker build {:?} failed ({}):\nstdout: {}\nstderr: {log}",
            args.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
        log
    }

    /// Runs a docker command that must succeed; returns its standard output.
    fn run_success(&self, args: &[&OsStr]) -> String {
        let output = self
            .docker()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {DOCKER_CLI} (package docker.io): {e}"));
        assert!(
            output.status.success(),
            "docker {:?} failed ({}): {}",
            args,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Writes the image `name` as a `docker save` archive to `dest`.
    pub fn save_image(&self, name: &str, dest: &Path) {
        self.run_success(&[
            OsStr::new("save"),
            OsStr::new("-o"),
            dest.as_os_str(),
            OsStr::new(name),
        ]);
    }

    /// The file tree of the image `name`: saved with `docker save`, read with
    /// [`image::archive::load`], and its layers applied in order onto a new directory.
    pub fn save_rootfs(&self, name: &str) -> TempDir {
        let work = tempfile::Builder::new()
            .prefix("testkit-docker-save-")
            .tempdir()
            .expect("create a directory for docker save");
        let archive_path = work.path().join("image.tar");
        self.save_image(name, &archive_path);
        let store = Store::open(work.path().join("store"))
            .unwrap_or_else(|e| panic!("open a store for the saved {name}: {e}"));
        let loaded = archive::load(&store, &archive_path)
            .unwrap_or_else(|e| panic!("read the docker save archive of {name}: {e}"));
        let [reference] = loaded.as_slice() else {
            panic!(
                "docker save {name} gave {} named images: {loaded:?}",
                loaded.len()
            );
        };
        let stored = store
            .resolve(reference)
            .unwrap_or_else(|e| panic!("find {reference} in the loaded archive: {e}"));
        let manifest = store
            .read_manifest(&stored.descriptor.digest)
            .unwrap_or_else(|e| panic!("read the manifest of the saved {name}: {e}"));
        let rootfs = tempfile::Builder::new()
            .prefix("testkit-rootfs-")
            .tempdir()
            .expect("create a directory for the rootfs");
        for layer in &manifest.layers {
            let blob = store
                .open_blob(&layer.digest)
                .unwrap_or_else(|e| panic!("open layer {} of {name}: {e}", layer.digest));
            unpack_layer(blob, rootfs.path(), &UnpackOptions::default())
                .unwrap_or_else(|e| panic!("apply layer {} of {name}: {e}", layer.digest));
        }
        rootfs
    }

    /// The runtime config of the image `name` (`docker image inspect`'s `Config`: `Env`,
    /// `Entrypoint`, `Labels`, ...).
    pub fn inspect_config(&self, name: &str) -> serde_json::Value {
        let json = self.run_success(&[
            OsStr::new("image"),
            OsStr::new("inspect"),
            OsStr::new("--format"),
            OsStr::new("{{json .Config}}"),
            OsStr::new(name),
        ]);
        serde_json::from_str(json.trim())
            .unwrap_or_else(|e| panic!("the config of {name} is not JSON ({e}): {json}"))
    }

    /// The labels of the image `name`, empty when it has none.
    pub fn inspect_labels(&self, name: &str) -> BTreeMap<String, String> {
        let config = self.inspect_config(name);
        match &config["Labels"] {
            serde_json::Value::Null => BTreeMap::new(),
            labels => serde_json::from_value(labels.clone()).unwrap_or_else(|e| {
                panic!("the labels of {name} are not a map of strings ({e}): {labels}")
            }),
        }
    }

    /// Removes the image `name` from the daemon (`docker image rm`); it must exist.
    pub fn remove_image(&self, name: &str) {
        self.run_success(&[OsStr::new("image"), OsStr::new("rm"), OsStr::new(name)]);
    }
}

/// A frontend image for `# syntax=`: ONE layer holding `bin` as `/run` (mode 0755) and the
/// host's CA bundle (when it has one), entrypoint `/run`, `SSL_CERT_FILE` pointing at the
/// bundle, and the labels BuildKit reads from a frontend image (no network for the frontend
/// itself; frontend inputs accepted). Pushed to `registry` as `name` (`sealer-frontend:test`);
/// returns `127.0.0.1:PORT/NAME`, which BuildKit v0.8 pulls over plain HTTP.
pub fn frontend_image(bin: &Path, registry: &Registry, name: &str) -> String {
    let mut entries = vec![file_entry(FRONTEND_ENTRYPOINT, bin, 0o755)];
    let mut runtime = RuntimeConfig::default();
    if Path::new(CA_CERTIFICATES).is_file() {
        entries.extend(parent_dirs(CA_CERTIFICATES));
        entries.push(file_entry(
            CA_CERTIFICATES,
            Path::new(CA_CERTIFICATES),
            0o644,
        ));
        runtime.env.push(format!("SSL_CERT_FILE={CA_CERTIFICATES}"));
    }
    runtime
        .labels
        .insert(NETWORK_NONE_LABEL.to_owned(), "true".to_owned());
    runtime
        .labels
        .insert(FRONTEND_CAPS_LABEL.to_owned(), FRONTEND_CAPS.to_owned());
    runtime.rest.insert(
        "Entrypoint".to_owned(),
        serde_json::json!([FRONTEND_ENTRYPOINT]),
    );
    push_one_layer_image(registry, name, entries, runtime)
}

/// A base image for RUN steps: Debian's static busybox as `/bin/busybox`, with `/bin/sh` and a
/// few more applets (`ls`, `cat`, `echo`, `mkdir`, `touch`, `rm`, `cp`, `sleep`, `env`, `test`,
/// `true`, `wget`) as symlinks to it, and a PATH. Pushed to `registry`; returns
/// `127.0.0.1:PORT/busybox:test`.
pub fn busybox_image(registry: &Registry) -> String {
    let busybox = BUSYBOX_PATHS
        .iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("no busybox at {BUSYBOX_PATHS:?}: install Debian's busybox-static")
        });
    let mut entries = vec![dir_entry("bin"), file_entry("/bin/busybox", busybox, 0o755)];
    entries.extend(BUSYBOX_APPLETS.iter().map(|applet| LayerEntry {
        path: format!("bin/{applet}"),
        kind: EntryKind::Symlink("busybox".to_owned()),
        mode: 0o777,
        uid: 0,
        gid: 0,
    }));
    let runtime = RuntimeConfig {
        env: vec![BUSYBOX_PATH_ENV.to_owned()],
        ..RuntimeConfig::default()
    };
    push_one_layer_image(registry, "busybox:test", entries, runtime)
}

/// A regular file of the layer at `path` (absolute in the image) with the contents of `source`.
fn file_entry(path: &str, source: &Path, mode: u32) -> LayerEntry {
    LayerEntry {
        path: path.trim_start_matches('/').to_owned(),
        kind: EntryKind::File(FileSource::Path(source.to_owned())),
        mode,
        uid: 0,
        gid: 0,
    }
}

/// A directory of the layer, mode 0755, owned by root.
fn dir_entry(path: &str) -> LayerEntry {
    LayerEntry {
        path: path.trim_start_matches('/').to_owned(),
        kind: EntryKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
    }
}

/// The directories above an absolute path (`/etc`, `/etc/ssl`, ... for `/etc/ssl/x`).
fn parent_dirs(path: &str) -> Vec<LayerEntry> {
    Path::new(path)
        .ancestors()
        .skip(1)
        .filter_map(Path::to_str)
        .filter(|dir| *dir != "/")
        .map(dir_entry)
        .collect()
}

/// Writes a one-layer image of this machine's platform into a temporary store (the layer
/// gzipped at level 1 with mtime 0, so the same inputs give the same digests) and pushes it
/// with skopeo to `registry` as `name`; returns `ADDR/NAME`.
fn push_one_layer_image(
    registry: &Registry,
    name: &str,
    entries: Vec<LayerEntry>,
    runtime: RuntimeConfig,
) -> String {
    let target = format!("{}/{name}", registry.addr());
    let reference =
        Reference::parse(&target).unwrap_or_else(|e| panic!("{target} is no image name: {e}"));
    let work = tempfile::Builder::new()
        .prefix("testkit-docker-image-")
        .tempdir()
        .expect("create a temporary image store");
    let store = Store::open(work.path()).unwrap_or_else(|e| panic!("open a temporary store: {e}"));
    let lock = store
        .lock_shared()
        .unwrap_or_else(|e| panic!("lock the temporary store: {e}"));
    let options = LayerOptions {
        compression: Compression::Gzip,
        mtime: 0,
        owner: Some((0, 0)),
        gzip_level: 1,
        zstd_level: 3,
    };
    let layer = store
        .write_layer(entries, &options, &mut |_| {})
        .unwrap_or_else(|e| panic!("write the layer of {target}: {e}"));
    let platform = Platform::host();
    let config = ImageConfig {
        architecture: platform.architecture,
        os: platform.os,
        variant: platform.variant,
        config: runtime,
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: vec![layer.diff_id.clone()],
        },
        ..ImageConfig::default()
    };
    let config_bytes = serde_json::to_vec(&config).expect("serialize an image config");
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        config: Descriptor::of(OCI_CONFIG, &config_bytes),
        layers: vec![Descriptor {
            media_type: layer.media_type.to_owned(),
            digest: layer.digest,
            size: layer.size,
            platform: None,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
        }],
        annotations: BTreeMap::new(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).expect("serialize an image manifest");
    for blob in [&config_bytes, &manifest_bytes] {
        store
            .write_blob(blob)
            .unwrap_or_else(|e| panic!("store a blob of {target}: {e}"));
    }
    drop(lock);
    store
        .tag(
            &reference,
            &Descriptor::of(OCI_MANIFEST, &manifest_bytes),
            None,
        )
        .unwrap_or_else(|e| panic!("name the image {target} in the temporary store: {e}"));
    Skopeo::new().copy(
        &format!("oci:{}:{reference}", store.layout_dir().display()),
        &format!("docker://{target}"),
    );
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_dirs_lists_every_directory_above_the_file() {
        let paths: Vec<String> = parent_dirs("/etc/ssl/certs/ca-certificates.crt")
            .into_iter()
            .map(|entry| entry.path)
            .collect();
        assert_eq!(paths, ["etc/ssl/certs", "etc/ssl", "etc"]);
    }

    #[test]
    fn docker_commands_use_the_given_daemon_and_a_private_configuration() {
        let dockerd = Dockerd {
            host: "unix:///tmp/testkit.sock".to_owned(),
            client_config: tempfile::tempdir().unwrap(),
        };
        let command = dockerd.docker();
        let env: BTreeMap<&OsStr, Option<&OsStr>> = command.get_envs().collect();
        assert_eq!(command.get_program(), DOCKER_CLI);
        assert_eq!(
            env[OsStr::new("DOCKER_HOST")],
            Some(OsStr::new("unix:///tmp/testkit.sock"))
        );
        assert_eq!(env[OsStr::new("DOCKER_BUILDKIT")], Some(OsStr::new("1")));
        assert_eq!(
            env[OsStr::new("DOCKER_CONFIG")],
            Some(dockerd.client_config.path().as_os_str())
        );
        assert_eq!(env[OsStr::new("DOCKER_CONTEXT")], None);
    }
}
