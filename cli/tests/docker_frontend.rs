//! The BuildKit frontend against Docker 20.10's embedded BuildKit (`scripts/dockerd`): the
//! examples built by `docker build` (chosen by `# syntax=` or `BUILDKIT_SYNTAX`) equal those the
//! embedded engine builds, errors show their Kubefile line, unchanged builds are cached, fetch
//! steps get credentials from the build secret, RUN works in a run image, and
//! `Dockerfile.frontend` makes a working frontend image.
//!
//! Every test shares one loopback registry, holding the frontend image (built from the static
//! binary `SEALER_TEST_FRONTEND_BIN`), stand-ins for the upstream images the examples name,
//! and the images the tests build on.

use std::fs;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;

mod docker_support;
mod examples;
use docker_support::{
    APP_TAG, EngineExamples, compare, context_with_first_line, differences, engine_image, is_step,
    ran, setup, success, tree,
};
use examples::example;
use testkit::docker;
use testkit::registry::Registry;

#[test]
fn the_examples_built_by_docker_equal_those_the_engine_builds() {
    let Some(setup) = setup() else { return };
    let root = tempfile::tempdir().expect("store");
    let EngineExamples { base_tag, base_arg } = setup.engine_examples(root.path());
    let directive = format!("# syntax={}", setup.frontend);

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

    let app_tag = APP_TAG;
    let app = context_with_first_line(&example("app"), Some(&directive));
    setup.docker_build_ok(app.path(), "it/app:1", &["--build-arg", &base_arg]);
    compare(&setup, root.path(), app_tag, "it/app:1");
    let plain = context_with_first_line(&example("app"), None);
    let args = ["--build-arg", &base_arg, "--build-arg", &syntax];
    setup.docker_build_ok(plain.path(), "it/app-arg:1", &args);
    compare(&setup, root.path(), app_tag, "it/app-arg:1");
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
