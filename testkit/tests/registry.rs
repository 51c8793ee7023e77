//! The test registry and the skopeo helpers against the real binaries.

use std::fs;
use std::net::TcpStream;
use std::path::Path;

use sha2::{Digest as _, Sha256};
use testkit::registry::Registry;
use testkit::skopeo::{self, Skopeo};

/// `sha256:<hex>` of some bytes.
fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Writes a one-layer OCI image in skopeo's `dir:` layout and returns its config digest.
fn write_dir_image(dir: &Path) -> String {
    fs::create_dir_all(dir).unwrap();
    // An empty tar archive: two zero blocks.
    let layer = vec![0_u8; 1024];
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        sha256(&layer)
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        sha256(config.as_bytes()),
        config.len(),
        sha256(&layer),
        layer.len()
    );
    for blob in [layer.as_slice(), config.as_bytes()] {
        let name = sha256(blob);
        fs::write(dir.join(name.trim_start_matches("sha256:")), blob).unwrap();
    }
    fs::write(dir.join("manifest.json"), &manifest).unwrap();
    fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    sha256(config.as_bytes())
}

#[test]
fn registry_answers_and_dies_on_drop() {
    let registry = Registry::start();
    let addr = registry.addr().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let response = registry.get("/v2/").unwrap();
    assert_eq!(response.status, 200, "{}", registry.log());
    assert_eq!(response.body, b"{}");
    assert!(registry.storage_dir().is_dir());
    assert!(registry.log().contains(&format!("listening on {addr}")));
    drop(registry);
    assert!(
        TcpStream::connect(&addr).is_err(),
        "{addr} still accepts connections after the registry was dropped"
    );
}

#[test]
fn htpasswd_registry_requires_credentials() {
    let registry = Registry::builder().htpasswd("tester", "s3cret").start();
    assert_eq!(registry.get("/v2/").unwrap().status, 401);
    assert_eq!(registry.get_authenticated("/v2/").unwrap().status, 200);
    assert_eq!(registry.creds().as_deref(), Some("tester:s3cret"));
}

#[test]
fn skopeo_pushes_inspects_and_pulls_through_a_given_storage() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("storage");
    let config_digest = write_dir_image(&work.path().join("image"));
    let source = format!("dir:{}", work.path().join("image").display());

    let registry = Registry::builder().storage(&storage).start();
    assert_eq!(registry.storage_dir(), storage);
    let tag = format!("docker://{}/testkit/tiny:1", registry.addr());
    skopeo::copy(&source, &tag);
    assert!(
        storage
            .join("docker/registry/v2/repositories/testkit/tiny/_manifests/tags/1/current/link")
            .is_file()
    );
    // Skopeo compresses the uncompressed layer on the way, so the pushed manifest differs from
    // the source one but keeps its config.
    let pushed = skopeo::inspect_raw(&tag);
    assert!(pushed.contains(&config_digest), "{pushed}");
    let tags = Skopeo::new().list_tags(&format!("docker://{}/testkit/tiny", registry.addr()));
    assert_eq!(tags, ["1"]);
    drop(registry);

    // The same storage behind credentials: refused without them, served with them.
    let registry = Registry::builder()
        .storage(&storage)
        .htpasswd("tester", "s3cret")
        .start();
    let tag = format!("docker://{}/testkit/tiny:1", registry.addr());
    let refused = Skopeo::new().try_inspect_raw(&tag).unwrap_err();
    assert!(refused.contains("unauthorized"), "{refused}");
    let with_creds = Skopeo::new().creds(&registry.creds().unwrap());
    assert_eq!(with_creds.inspect_raw(&tag), pushed);
    let layout = work.path().join("layout");
    with_creds.copy(&tag, &format!("oci:{}:1", layout.display()));
    let summary = skopeo::inspect(&format!("oci:{}:1", layout.display()));
    assert_eq!(summary["Digest"], sha256(pushed.as_bytes()));
    assert_eq!(summary["Architecture"], "amd64");
}

#[test]
#[should_panic(expected = "skopeo inspect --tls-verify=false --raw")]
fn failing_skopeo_panics_with_its_error() {
    let registry = Registry::start();
    skopeo::inspect_raw(&format!("docker://{}/missing/image:1", registry.addr()));
}
