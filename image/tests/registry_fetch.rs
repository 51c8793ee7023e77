//! Resolving and downloading images for the registry storage against a real `docker-registry`,
//! directly and through a registry mirror: the documents come byte for byte, an index gives
//! the manifest of the platform asked for, and errors name the image and the mirror.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use image::distribution::{BlobSource, Document, ImageDocuments, RegistryStorage};
use image::manifest::{Manifest, OCI_INDEX, OCI_MANIFEST};
use image::progress::{NoProgress, Progress};
use image::registry::{
    PullOptions, RegistryClient, RegistryError, RegistryOptions, download_blobs, pull,
    resolve_for_storage,
};
use image::store::Store;
use image::{Digest, Reference};
use kubefile::plan::Platform;
use testkit::images::{GeneratedImage, ImageSpec, write_oci_layout};
use testkit::registry::Registry;
use testkit::skopeo;

/// The blobs of a generated OCI layout.
struct LayoutBlobs(PathBuf);

impl BlobSource for LayoutBlobs {
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(fs::File::open(
            self.0.join("blobs/sha256").join(digest.hex()),
        )?))
    }
}

fn layout_document(image: &GeneratedImage, digest: &str, media_type: &str) -> Document {
    let digest: Digest = digest.parse().unwrap();
    let bytes = fs::read(image.layout.join("blobs/sha256").join(digest.hex())).unwrap();
    Document::new(media_type, bytes)
}

fn reference(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

fn linux(architecture: &str) -> Platform {
    Platform::new("linux", architecture, None)
}

fn client_with_mirror(registry: &str, mirror: &str) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        mirrors: BTreeMap::from([(registry.to_owned(), mirror.to_owned())]),
        attempts: 1,
        backoff: Duration::from_millis(1),
        ..RegistryOptions::default()
    })
}

/// The config and layer digests of a manifest.
fn manifest_blobs(bytes: &[u8]) -> Vec<Digest> {
    let manifest: Manifest = serde_json::from_slice(bytes).unwrap();
    std::iter::once(manifest.config.digest)
        .chain(manifest.layers.into_iter().map(|l| l.digest))
        .collect()
}

/// An upstream registry holding `library/busybox:1` (pushed with skopeo) and the two-platform
/// `library/multi:1` (written into its storage, since skopeo pushes one platform only).
struct Upstream {
    registry: Registry,
    busybox: GeneratedImage,
    multi: GeneratedImage,
    _work: tempfile::TempDir,
}

fn upstream() -> Upstream {
    let work = tempfile::tempdir().unwrap();
    let multi = write_oci_layout(
        &work.path().join("multi"),
        "1",
        &[
            ImageSpec::amd64(&[20_000], 11),
            ImageSpec {
                architecture: "arm64".into(),
                layer_sizes: vec![30_000],
                seed: 12,
            },
        ],
    );
    let storage = work.path().join("storage");
    let documents = ImageDocuments {
        top: layout_document(&multi, &multi.digest, OCI_INDEX),
        children: multi
            .manifests
            .iter()
            .map(|m| layout_document(&multi, m, OCI_MANIFEST))
            .collect(),
    };
    RegistryStorage::new(&storage)
        .add_image(
            &reference("example.com/library/multi:1"),
            &documents,
            &LayoutBlobs(multi.layout.clone()),
        )
        .unwrap();
    let registry = Registry::builder().storage(&storage).start();
    let busybox = write_oci_layout(
        &work.path().join("busybox"),
        "1",
        &[ImageSpec::amd64(&[40_000, 10_000], 13)],
    );
    skopeo::copy(
        &busybox.oci_ref(),
        &format!("docker://{}/library/busybox:1", registry.addr()),
    );
    Upstream {
        registry,
        busybox,
        multi,
        _work: work,
    }
}

fn digest(text: &str) -> Digest {
    text.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_serves_the_images_of_another_registry() {
    let upstream = upstream();
    let client = client_with_mirror("docker.io", upstream.registry.addr());
    let progress: Arc<dyn Progress> = Arc::new(NoProgress);
    let busybox = reference("docker.io/library/busybox:1");

    let resolved = resolve_for_storage(&client, &busybox, &linux("amd64"), progress.as_ref())
        .await
        .unwrap();
    assert_eq!(resolved.reference, busybox, "the name stays docker.io's");
    assert_eq!(
        resolved.documents.top.digest(),
        digest(&upstream.busybox.digest)
    );
    assert_eq!(resolved.documents.top.media_type, OCI_MANIFEST);
    assert!(resolved.documents.children.is_empty());
    let blobs: Vec<Digest> = resolved.blobs.iter().map(|b| b.digest.clone()).collect();
    assert_eq!(blobs, manifest_blobs(&resolved.documents.top.bytes));
    assert_eq!(blobs.len(), 3);

    let pinned = reference(&format!("busybox@{}", upstream.busybox.digest));
    let by_digest = resolve_for_storage(&client, &pinned, &linux("amd64"), progress.as_ref())
        .await
        .unwrap();
    assert_eq!(by_digest.documents, resolved.documents);

    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let requests = || resolved.blobs.iter().map(|blob| (&busybox, blob));
    let downloaded = download_blobs(&client, &store, requests(), Arc::clone(&progress))
        .await
        .unwrap();
    assert_eq!(downloaded, 3);
    for blob in &resolved.blobs {
        let bytes = store.read_blob(&blob.digest).unwrap();
        assert_eq!(Digest::of(&bytes), blob.digest);
    }
    let again = download_blobs(&client, &store, requests(), Arc::clone(&progress))
        .await
        .unwrap();
    assert_eq!(again, 0, "blobs in the store are not downloaded again");

    // `pull` goes through the mirror as well, and names the image as asked.
    let pulled = pull(
        &client,
        &store,
        &busybox,
        &PullOptions {
            platform: linux("amd64"),
        },
        progress,
    )
    .await
    .unwrap();
    assert_eq!(pulled.name, busybox);
    assert_eq!(pulled.descriptor.digest, digest(&upstream.busybox.digest));
    assert_eq!(pulled.downloaded, 0);
    assert!(store.resolve(&busybox).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_resolves_to_the_platform_asked_for() {
    let upstream = upstream();
    let client = RegistryClient::new(RegistryOptions::default());
    let multi = reference(&format!("{}/library/multi:1", upstream.registry.addr()));
    for (architecture, manifest) in [
        ("amd64", &upstream.multi.manifests[0]),
        ("arm64", &upstream.multi.manifests[1]),
    ] {
        let resolved = resolve_for_storage(&client, &multi, &linux(architecture), &NoProgress)
            .await
            .unwrap();
        assert_eq!(
            resolved.documents.top.digest(),
            digest(&upstream.multi.digest)
        );
        assert_eq!(resolved.documents.top.media_type, OCI_INDEX);
        let children: Vec<Digest> = resolved
            .documents
            .children
            .iter()
            .map(Document::digest)
            .collect();
        assert_eq!(children, [digest(manifest)], "{architecture}");
        let blobs: Vec<Digest> = resolved.blobs.iter().map(|b| b.digest.clone()).collect();
        assert_eq!(blobs, manifest_blobs(&resolved.documents.children[0].bytes));
    }
    let error = resolve_for_storage(&client, &multi, &linux("s390x"), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::NoPlatform { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&multi.to_string()), "{message}");
    assert!(message.contains("linux/amd64, linux/arm64"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_image_and_the_mirror() {
    let upstream = upstream();
    let client = client_with_mirror("docker.io", upstream.registry.addr());
    let missing = reference("docker.io/library/busybox:2");
    let error = resolve_for_storage(&client, &missing, &linux("amd64"), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "docker.io/library/busybox:2: not found on {}, the mirror of docker.io (check the name and tag)",
            upstream.registry.addr()
        )
    );

    // Nothing listens on port 1 of the loopback interface.
    let unreachable = client_with_mirror("quay.io", "127.0.0.1:1");
    let image = reference("quay.io/team/app:1");
    let error = resolve_for_storage(&unreachable, &image, &linux("amd64"), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::Transfer { .. }), "{error}");
    let message = error.to_string();
    assert!(message.starts_with("quay.io/team/app:1: "), "{message}");
    assert!(
        message.contains("from 127.0.0.1:1, the mirror of quay.io"),
        "{message}"
    );
}
