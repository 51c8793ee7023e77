//! The dockerd test setup against the real daemon that `scripts/test` starts: a Dockerfile
//! build through BuildKit's builtin frontend, from a base image that BuildKit pulls from the
//! loopback test registry, and the result read back with `docker save`; and the frontend image
//! as the daemon sees it.

use std::fs;

use testkit::docker::{self, Dockerd};

#[test]
fn dockerfile_build_from_the_test_registry_runs_and_saves() {
    let Some(dockerd) = Dockerd::from_env() else {
        return;
    };
    let registry = testkit::registry::shared_registry();
    let base = docker::busybox_image(&registry);
    assert_eq!(base, format!("{}/busybox:test", registry.addr()));

    let context = tempfile::tempdir().unwrap();
    fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo hi > /x && ls /bin/sh\nLABEL testkit.dockerd=built\n"),
    )
    .unwrap();
    let tag = "testkit-dockerd/busybox-run:1";
    let log = dockerd.build_success(["--no-cache", "-t", tag, context.path().to_str().unwrap()]);
    assert!(
        log.contains(&format!("FROM {base}")) || log.contains(&base),
        "the progress log names the base image:\n{log}"
    );
    assert!(
        registry.log().contains("/v2/busybox/manifests/test"),
        "BuildKit pulled the base from the test registry:\n{}",
        registry.log()
    );

    let labels = dockerd.inspect_labels(tag);
    assert_eq!(
        labels.get("testkit.dockerd").map(String::as_str),
        Some("built")
    );
    let rootfs = dockerd.save_rootfs(tag);
    assert_eq!(fs::read_to_string(rootfs.path().join("x")).unwrap(), "hi\n");
    assert_eq!(
        fs::read_link(rootfs.path().join("bin/sh")).unwrap(),
        std::path::Path::new("busybox")
    );
    dockerd.remove_image(tag);
    let after = dockerd
        .docker()
        .args(["image", "inspect", tag])
        .output()
        .unwrap();
    assert!(!after.status.success(), "{tag} is still in the daemon");
}

#[test]
fn frontend_image_carries_the_binary_certificates_and_frontend_labels() {
    use std::os::unix::fs::PermissionsExt as _;

    let Some(dockerd) = Dockerd::from_env() else {
        return;
    };
    let registry = testkit::registry::shared_registry();
    let work = tempfile::tempdir().unwrap();
    // A stand-in for the frontend binary: only its bytes and mode are checked here.
    let bin = work.path().join("frontend");
    fs::write(&bin, b"\x7fELF stand-in for the frontend binary").unwrap();
    let image = docker::frontend_image(&bin, &registry, "testkit-dockerd/frontend:test");
    assert_eq!(
        image,
        format!("{}/testkit-dockerd/frontend:test", registry.addr())
    );

    let pull = dockerd.docker().args(["pull", &image]).output().unwrap();
    assert!(
        pull.status.success(),
        "docker pull {image}: {}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let config = dockerd.inspect_config(&image);
    assert_eq!(config["Entrypoint"], serde_json::json!(["/run"]));
    let labels = dockerd.inspect_labels(&image);
    assert_eq!(
        labels.get(docker::NETWORK_NONE_LABEL).map(String::as_str),
        Some("true")
    );
    assert_eq!(
        labels.get(docker::FRONTEND_CAPS_LABEL).map(String::as_str),
        Some(docker::FRONTEND_CAPS)
    );

    let rootfs = dockerd.save_rootfs(&image);
    let run = rootfs.path().join("run");
    assert_eq!(fs::read(&run).unwrap(), fs::read(&bin).unwrap());
    assert_eq!(
        fs::metadata(&run).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    let host_certificates = std::path::Path::new(docker::CA_CERTIFICATES);
    if host_certificates.is_file() {
        assert_eq!(
            fs::read(
                rootfs
                    .path()
                    .join(docker::CA_CERTIFICATES.trim_start_matches('/'))
            )
            .unwrap(),
            fs::read(host_certificates).unwrap()
        );
        let env = config["Env"].as_array().cloned().unwrap_or_default();
        assert!(
            env.contains(&serde_json::json!(format!(
                "SSL_CERT_FILE={}",
                docker::CA_CERTIFICATES
            ))),
            "{env:?}"
        );
    }
    dockerd.remove_image(&image);
}
