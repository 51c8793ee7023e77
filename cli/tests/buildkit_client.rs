//! `sealer-build build --buildkit docker` against a real dockerd 20.10 (its embedded BuildKit
//! v0.8) and Debian's docker-registry: the CLI is the BuildKit client (no docker binary in
//! the build), serving the context, credentials and outputs through its own session.
//!
//! Needs what `docker_frontend.rs` needs (`scripts/test` provides it); skipped outside CI
//! when it is missing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;

mod examples;
use examples::example;
mod docker_support;
use docker_support::{
    APP_TAG, EngineExamples, Setup, differences, engine_image, is_step, ran, setup, success, tree,
};
use testkit::registry::Registry;

impl Setup {
    /// `sealer-build --root ROOT build --buildkit docker` with the test frontend, host
    /// networking, the upstream mirrors and plain progress, with `DOCKER_HOST` set to the
    /// test daemon and a private docker config dir.
    fn buildkit(&self, root: &Path, docker_config: &Path) -> Command {
        self.buildkit_with_frontend(root, docker_config, &self.frontend)
    }

    /// [`Setup::buildkit`] with another frontend image.
    fn buildkit_with_frontend(&self, root: &Path, docker_config: &Path, frontend: &str) -> Command {
        let mut command = self.sealer(root);
        command
            .env("DOCKER_HOST", self.dockerd.host())
            .env("DOCKER_CONFIG", docker_config)
            .env_remove("BUILDKIT_HOST")
            .args(["build", "--buildkit", "docker", "--frontend-image"])
            .arg(frontend)
            .args(["--network", "host", "--progress", "plain"]);
        command
    }
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run sealer-build")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A store, a docker config dir and a context whose Kubefile has one COPY step.
fn one_step_build() -> (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("store");
    let config = tempfile::tempdir().expect("docker config");
    let context = tempfile::tempdir().expect("context");
    fs::write(
        context.path().join("Kubefile"),
        "FROM scratch\nCOPY Kubefile .\n",
    )
    .expect("write");
    (root, config, context)
}

/// Standard error then standard output, to search for what must not be printed anywhere.
fn both_streams(output: &Output) -> String {
    format!(
        "{}{}",
        stderr(output),
        String::from_utf8_lossy(&output.stdout)
    )
}

/// The JSON summary of a successful build.
fn summary(command: &mut Command) -> serde_json::Value {
    let stdout = success(command.args(["--format", "json"]));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("summary {stdout}: {e}"))
}

#[test]
fn examples_built_through_buildkit_are_pushed_and_equal_the_engine_builds() {
    let Some(setup) = setup() else { return };
    let root = tempfile::tempdir().expect("store");
    let config = tempfile::tempdir().expect("docker config");
    let EngineExamples { base_tag, base_arg } = setup.engine_examples(root.path());
    let app_tag = APP_TAG;

    let pushed_kubernetes = format!("{}/it/bk-kubernetes:1", setup.registry.addr());
    let built = summary(
        setup
            .buildkit(root.path(), config.path())
            .args(["-t", &pushed_kubernetes, "--push"])
            .arg(example("kubernetes")),
    );
    assert!(
        built["image_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("sha256:")),
        "{built}"
    );
    let pushed_app = format!("{}/it/bk-app:1", setup.registry.addr());
    let local = tempfile::tempdir().expect("local output");
    let tar = tempfile::tempdir().expect("tar output");
    let tar_file = tar.path().join("rootfs.tar");
    success(
        setup
            .buildkit(root.path(), config.path())
            .args([
                "-t",
                &pushed_app,
                "--push",
                "--build-arg",
                &base_arg,
                "--output",
            ])
            .arg(format!("type=local,dest={}", local.path().display()))
            .arg("--output")
            .arg(format!("type=tar,dest={}", tar_file.display()))
            .arg(example("app")),
    );

    // skopeo reads what was pushed; pulled into a store, its rootfs and labels are the engine's.
    for (pushed, engine_tag) in [
        (&pushed_kubernetes, base_tag.as_str()),
        (&pushed_app, app_tag),
    ] {
        success(
            Command::new("skopeo")
                .args(["inspect", "--tls-verify=false"])
                .arg(format!("docker://{pushed}")),
        );
        let pulled = tempfile::tempdir().expect("pull store");
        success(setup.sealer(pulled.path()).args(["pull", pushed]));
        let (engine_rootfs, engine_labels) = engine_image(root.path(), engine_tag);
        let (pulled_rootfs, pulled_labels) = engine_image(pulled.path(), pushed);
        let differences = differences(&tree(engine_rootfs.path()), &tree(pulled_rootfs.path()));
        assert!(
            differences.is_empty(),
            "{pushed}:\n{}",
            differences.join("\n")
        );
        assert_eq!(engine_labels, pulled_labels, "{pushed}");
    }

    // The local and tar outputs hold the same rootfs.
    let (engine_rootfs, _) = engine_image(root.path(), app_tag);
    let engine_tree = tree(engine_rootfs.path());
    let local_differences = differences(&engine_tree, &tree(local.path()));
    assert!(
        local_differences.is_empty(),
        "local output:\n{}",
        local_differences.join("\n")
    );
    let unpacked = tempfile::tempdir().expect("unpacked tar");
    success(
        Command::new("tar")
            .arg("-xf")
            .arg(&tar_file)
            .arg("-C")
            .arg(unpacked.path()),
    );
    let tar_differences = differences(&engine_tree, &tree(unpacked.path()));
    assert!(
        tar_differences.is_empty(),
        "tar output:\n{}",
        tar_differences.join("\n")
    );
}

/// A context exercising the sender: ignored files, an exception, links.
fn linked_context() -> tempfile::TempDir {
    let context = tempfile::tempdir().expect("context");
    let write = |path: &str, text: &str| {
        let path = context.path().join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    };
    write("Kubefile", "FROM scratch\nCOPY . files\n");
    write(
        ".dockerignore",
        "*.secret\nlogs/\n!logs/keep\nKubefile\n.dockerignore\n",
    );
    write("a.txt", "a\n");
    write("token.secret", "do not send\n");
    write("logs/debug.log", "noise\n");
    write("logs/keep", "kept\n");
    write("bin/tool", "#!/bin/sh\n");
    fs::set_permissions(
        context.path().join("bin/tool"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    std::os::unix::fs::symlink("a.txt", context.path().join("link")).expect("symlink");
    std::os::unix::fs::symlink("missing", context.path().join("dangling")).expect("symlink");
    // Big enough to need several data packets.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(context.path().join("big.bin"), big).expect("write");
    context
}

#[test]
fn the_context_is_sent_filtered_with_links_and_not_again_when_unchanged() {
    let Some(setup) = setup() else { return };
    let root = tempfile::tempdir().expect("store");
    let config = tempfile::tempdir().expect("docker config");
    let context = linked_context();
    let out = tempfile::tempdir().expect("local output");
    let output = format!("type=local,dest={}", out.path().display());

    let first = summary(
        setup
            .buildkit(root.path(), config.path())
            .args(["--output", &output])
            .arg(context.path()),
    );
    let files = out.path().join("files");
    assert_eq!(
        fs::read_to_string(files.join("a.txt")).expect("a.txt"),
        "a\n"
    );
    assert_eq!(
        fs::read_to_string(files.join("logs/keep")).expect("logs/keep"),
        "kept\n"
    );
    assert!(
        !files.join("token.secret").exists(),
        "an ignored file was sent"
    );
    assert!(
        !files.join("logs/debug.log").exists(),
        "an ignored file was sent"
    );
    assert_eq!(
        fs::read_link(files.join("link")).expect("link"),
        Path::new("a.txt")
    );
    assert_eq!(
        fs::read_link(files.join("dangling")).expect("dangling"),
        Path::new("missing")
    );
    let mode = fs::metadata(files.join("bin/tool"))
        .expect("tool")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert!(
        first["transfers"]["context"]["data_packets"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{first}"
    );

    // Unchanged: nothing is transferred and every step is cached, also with the session
    // inside the Control service's stream.
    for transport in ["http", "grpc"] {
        let out = tempfile::tempdir().expect("local output");
        let output = format!("type=local,dest={}", out.path().display());
        let log = run(setup
            .buildkit(root.path(), config.path())
            .args([
                "--buildkit-session",
                transport,
                "--format",
                "json",
                "--output",
                &output,
            ])
            .arg(context.path()));
        let text = stderr(&log);
        assert!(log.status.success(), "{transport}:\n{text}");
        let again: serde_json::Value = serde_json::from_slice(&log.stdout).expect("summary");
        assert_eq!(
            again["transfers"]["context"]["data_packets"], 0,
            "{transport}: {again}"
        );
        let steps: Vec<&str> = text.lines().filter(|line| is_step(line)).collect();
        assert!(!steps.is_empty(), "{text}");
        for line in steps {
            let vertex = line.split_whitespace().next().unwrap_or_default();
            assert!(
                text.contains(&format!("{vertex} CACHED")),
                "{transport}: not cached: {line}\n{text}"
            );
        }
        assert_eq!(
            fs::read_to_string(out.path().join("files/a.txt")).expect("a.txt"),
            "a\n"
        );
    }
    fs::write(context.path().join("a.txt"), "changed\n").expect("write");
    let changed = summary(
        setup
            .buildkit(root.path(), config.path())
            .args(["--output", &output])
            .arg(context.path()),
    );
    assert_eq!(
        changed["transfers"]["context"]["data_packets"], 1,
        "{changed}"
    );
    assert_eq!(
        fs::read_to_string(files.join("a.txt")).expect("a.txt"),
        "changed\n"
    );

    // A tar on standard output: the summary moves to standard error.
    let piped = run(setup
        .buildkit(root.path(), config.path())
        .args(["--output", "type=tar,dest=-"])
        .arg(context.path()));
    assert!(piped.status.success(), "{}", stderr(&piped));
    let mut archive = tar::Archive::new(piped.stdout.as_slice());
    let mut names: Vec<String> = archive
        .entries()
        .expect("a tar on stdout")
        .map(|entry| {
            let entry = entry.expect("tar entry");
            entry.path().expect("path").display().to_string()
        })
        .collect();
    names.sort();
    assert!(names.iter().any(|name| name == "files/a.txt"), "{names:?}");
    assert!(
        stderr(&piped).contains("wrote tar archive to standard output ("),
        "{}",
        stderr(&piped)
    );

    // Docker 20.10's BuildKit has no OCI exporter: one message says what to use instead.
    let oci = out.path().join("image.oci");
    let refused = run(setup
        .buildkit(root.path(), config.path())
        .arg("--output")
        .arg(format!("type=oci,dest={}", oci.display()))
        .arg(context.path()));
    let log = stderr(&refused);
    assert!(!refused.status.success());
    assert!(
        log.contains("no `oci` exporter") && log.contains("type=tar"),
        "{log}"
    );
    assert!(!oci.exists());
}

#[test]
fn credentials_of_the_docker_config_reach_base_pulls_and_fetch_steps() {
    const USER: &str = "bk-user";
    const PASSWORD: &str = "Pr1vate-bk-51c7";
    let Some(setup) = setup() else { return };
    let private = Registry::builder().htpasswd(USER, PASSWORD).start();
    let root = tempfile::tempdir().expect("store");
    setup.seed(&["docker.io/library/private-src:1"]);
    // The base and a cached image live in the private registry only.
    for (from, to) in [
        ("library/private-src:1", "private/app:1"),
        ("library/private-src:1", "private/base:1"),
    ] {
        success(
            Command::new("skopeo")
                .args([
                    "copy",
                    "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                    "--dest-creds",
                ])
                .arg(format!("{USER}:{PASSWORD}"))
                .arg(format!("docker://{}/{from}", setup.registry.addr()))
                .arg(format!("docker://{}/{to}", private.addr())),
        );
    }
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
            "FROM {}/private/base:1\nCOPY manifests manifests\n",
            private.addr()
        ),
    )
    .expect("write");

    let anonymous = tempfile::tempdir().expect("docker config");
    let refused = run(setup
        .buildkit(root.path(), anonymous.path())
        .args(["-t", "it/bk-private:1"])
        .arg(context.path()));
    let log = stderr(&refused);
    assert!(
        !refused.status.success(),
        "built without credentials:\n{log}"
    );
    assert!(log.contains(private.addr()), "{log}");

    let config = tempfile::tempdir().expect("docker config");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    fs::write(
        config.path().join("config.json"),
        serde_json::json!({"auths": {private.addr(): {"auth": auth}}}).to_string(),
    )
    .expect("write config");
    let built = run(setup
        .buildkit(root.path(), config.path())
        .args(["-t", "it/bk-private:1"])
        .arg(context.path()));
    let log = both_streams(&built);
    assert!(built.status.success(), "{log}");
    assert!(
        !log.contains(PASSWORD) && !log.contains(&auth),
        "credentials in the output:\n{log}"
    );
    let rootfs = setup.dockerd.save_rootfs("it/bk-private:1");
    let tag = rootfs
        .path()
        .join("registry/docker/registry/v2/repositories/private/app/_manifests/tags/1");
    assert!(tag.is_dir(), "{} is not in the image", tag.display());

    // The same credentials from a credential helper (`credHelpers`), run by the CLI when
    // BuildKit asks the session; nothing cached, so both the base and the fetch need them.
    let helper_config = tempfile::tempdir().expect("docker config");
    let helpers = tempfile::tempdir().expect("helper dir");
    let asked = helpers.path().join("asked");
    let helper = helpers.path().join("docker-credential-sealertest");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> {asked}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            asked = asked.display()
        ),
    )
    .expect("write helper");
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::write(
        helper_config.path().join("config.json"),
        serde_json::json!({"credHelpers": {private.addr(): "sealertest"}}).to_string(),
    )
    .expect("write config");
    let path = format!(
        "{}:{}",
        helpers.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let built = run(setup
        .buildkit(root.path(), helper_config.path())
        .env("PATH", path)
        .args(["--no-cache", "-t", "it/bk-private:2"])
        .arg(context.path()));
    let log = both_streams(&built);
    assert!(built.status.success(), "{log}");
    assert!(!log.contains(PASSWORD), "credentials in the output:\n{log}");
    let asked = fs::read_to_string(&asked).expect("the helper was never run");
    assert!(asked.contains(private.addr()), "helper asked for {asked}");
}

#[test]
fn progress_on_a_terminal_shows_the_steps_under_a_spinner() {
    let Some(setup) = setup() else { return };
    let (root, config, context) = one_step_build();
    // `script` gives the build a pseudo-terminal; its own output is what the terminal got.
    let command = format!(
        "{} --root {} build --buildkit docker --frontend-image {} --progress tty --no-cache -t it/bk-tty:1 {}",
        env!("CARGO_BIN_EXE_sealer-build"),
        root.path().display(),
        setup.frontend,
        context.path().display()
    );
    let output = run(Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("DOCKER_HOST", setup.dockerd.host())
        .env("DOCKER_CONFIG", config.path())
        .env_remove("BUILDKIT_HOST"));
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{terminal}");
    assert!(
        terminal.contains("\x1b[2K"),
        "no line redrawn on the terminal:\n{terminal}"
    );
    assert!(terminal.contains("[1/1] COPY Kubefile ."), "{terminal}");
    assert!(terminal.contains("it/bk-tty:1 sha256:"), "{terminal}");
}

#[test]
fn scan_flags_reach_the_frontend() {
    let Some(setup) = setup() else { return };
    setup.seed(&[
        "docker.io/library/scan-a:1",
        "docker.io/library/scan-b:2",
        "docker.io/library/scan-c:1",
    ]);
    let root = tempfile::tempdir().expect("store");
    let config = tempfile::tempdir().expect("docker config");
    let context = tempfile::tempdir().expect("context");
    let write = |path: &Path, text: &str| {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    };
    write(
        &context.path().join("Kubefile"),
        "FROM scratch\nCOPY charts charts\n",
    );
    write(
        &context.path().join("charts/b/Chart.yaml"),
        "apiVersion: v2\nname: b\nversion: 0.1.0\n",
    );
    write(
        &context.path().join("charts/b/values.yaml"),
        "tag: \"1\"\nname: scan-b\n",
    );
    write(
        &context.path().join("charts/b/templates/pod.yaml"),
        "kind: Pod\nspec:\n  containers:\n  - image: {{ .Values.name }}:{{ .Values.tag }}\n",
    );
    let inputs = tempfile::tempdir().expect("inputs");
    let values = inputs.path().join("values.yaml");
    write(&values, "name: scan-a\n");
    let list = inputs.path().join("list.txt");
    write(&list, "scan-c:1\n");
    let log = run(setup
        .buildkit(root.path(), config.path())
        .args(["-t", "it/bk-scan:1", "--values"])
        .arg(format!("b={}", values.display()))
        .args(["--set", "b.tag=1", "--image-list"])
        .arg(&list)
        .arg(context.path()));
    let text = stderr(&log);
    assert!(log.status.success(), "{text}");
    assert!(ran(&text, "cache docker.io/library/scan-a:1"), "{text}");
    assert!(ran(&text, "cache docker.io/library/scan-c:1"), "{text}");
    assert!(!text.contains("scan-b"), "{text}");
}

#[test]
fn failures_give_one_clear_message_each() {
    let Some(setup) = setup() else { return };
    let (root, config, context) = one_step_build();

    let mut unreachable = setup.buildkit(root.path(), config.path());
    unreachable
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["-t", "x:1"])
        .arg(context.path());
    let failed = run(&mut unreachable);
    let log = stderr(&failed);
    assert!(!failed.status.success());
    assert!(
        log.contains("cannot reach BuildKit") && log.contains("/nonexistent/docker.sock"),
        "{log}"
    );

    let failed = run(setup
        .sealer(root.path())
        .args(["build", "--buildkit", "tcp://127.0.0.1:1", "-t", "x:1"])
        .arg(context.path()));
    let log = stderr(&failed);
    assert!(!failed.status.success());
    assert!(
        log.contains("cannot reach BuildKit") && log.contains("127.0.0.1:1"),
        "{log}"
    );

    let missing = format!("{}/it/no-such-frontend:1", setup.registry.addr());
    let failed = run(setup
        .buildkit_with_frontend(root.path(), config.path(), &missing)
        .args(["-t", "x:1"])
        .arg(context.path()));
    let log = stderr(&failed);
    assert!(!failed.status.success());
    assert!(
        log.contains(&missing) && log.contains("--frontend-image"),
        "{log}"
    );

    fs::write(
        context.path().join("Kubefile"),
        "FROM scratch\nCOPY Kubefile .\nBOGUS x\n",
    )
    .expect("write");
    let failed = run(setup
        .buildkit(root.path(), config.path())
        .args(["-t", "x:1"])
        .arg(context.path()));
    let log = stderr(&failed);
    assert!(!failed.status.success());
    assert!(log.contains("Kubefile:3:1"), "{log}");

    let busybox = testkit::docker::busybox_image(&setup.registry);
    fs::write(
        context.path().join("Kubefile"),
        "FROM scratch\nCOPY Kubefile .\nRUN echo first-line && echo last-words && exit 3\n",
    )
    .expect("write");
    let run_image = format!("SEALER_RUN_IMAGE={busybox}");
    let failed = run(setup
        .buildkit(root.path(), config.path())
        .args([
            "-t",
            "x:1",
            "--build-arg",
            &run_image,
            "--progress",
            "quiet",
        ])
        .arg(context.path()));
    let log = stderr(&failed);
    assert!(!failed.status.success());
    assert!(
        log.contains("Kubefile:3:1") && log.contains("last-words"),
        "{log}"
    );
}
