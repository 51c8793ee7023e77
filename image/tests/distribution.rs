//! The registry storage writer against the real `docker-registry` and `skopeo`: images written
//! with `RegistryStorage` are served unchanged, under both repository names, by tag and by
//! digest.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use flate2::Compression;
use flate2::write::GzEncoder;
use image::distribution::{
    BlobSource, Document, ImageDocuments, RegistryStorage, StorageError, StoredTag,
};
use image::manifest::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, Manifest, OCI_CONFIG, OCI_INDEX,
    OCI_LAYER_GZIP, OCI_MANIFEST,
};
use image::{Digest, Reference};
use serde_json::json;
use testkit::registry::Registry;
use testkit::skopeo::Skopeo;

const V2: &str = "docker/registry/v2";

/// Blobs kept in memory; records which ones were opened.
#[derive(Default)]
struct MemoryBlobs {
    blobs: HashMap<Digest, Vec<u8>>,
    opened: Mutex<Vec<Digest>>,
}

impl MemoryBlobs {
    fn add(&mut self, bytes: Vec<u8>) -> Digest {
        let digest = Digest::of(&bytes);
        self.blobs.insert(digest.clone(), bytes);
        digest
    }

    fn opened(&self) -> Vec<Digest> {
        self.opened.lock().unwrap().clone()
    }
}

impl BlobSource for MemoryBlobs {
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + '_>> {
        self.opened.lock().unwrap().push(digest.clone());
        let bytes = self
            .blobs
            .get(digest)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no blob {digest}")))?;
        Ok(Box::new(bytes.as_slice()))
    }
}

/// A blob source that answers with other bytes than the digest asked for.
struct CorruptBlobs<'a> {
    inner: &'a MemoryBlobs,
    corrupt: Digest,
}

impl BlobSource for CorruptBlobs<'_> {
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + '_>> {
        if *digest == self.corrupt {
            Ok(Box::new(
                &b"these are not the bytes you are looking for"[..],
            ))
        } else {
            self.inner.open(digest)
        }
    }
}

/// Incompressible bytes from a seed (xorshift).
fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

/// A tar+gzip layer with one file of random bytes, and its diff ID.
fn layer(seed: u64) -> (Vec<u8>, Digest) {
    let content = pseudo_random_bytes(seed, 48 * 1024);
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    tar.append_data(&mut header, format!("data/file-{seed}"), content.as_slice())
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(&tar).unwrap();
    (gzip.finish().unwrap(), Digest::of(&tar))
}

/// Whether an image uses OCI or Docker schema 2 media types.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Oci,
    Docker,
}

/// A single-platform image with `layers` random layers; its blobs go to `blobs`.
fn image_manifest(
    seed: u64,
    arch: &str,
    layers: u64,
    style: Style,
    blobs: &mut MemoryBlobs,
) -> Document {
    let (config_type, layer_type, manifest_type) = match style {
        Style::Oci => (OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST),
        Style::Docker => (DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST),
    };
    let mut diff_ids = Vec::new();
    let mut layer_descriptors = Vec::new();
    for n in 0..layers {
        let (compressed, diff_id) = layer(seed * 100 + n);
        diff_ids.push(diff_id.to_string());
        let size = compressed.len();
        let digest = blobs.add(compressed);
        layer_descriptors.push(json!({"mediaType": layer_type, "digest": digest, "size": size}));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Env": [format!("SEED={seed}")]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_size = config.len();
    let config_digest = blobs.add(config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": config_digest, "size": config_size},
        "layers": layer_descriptors,
    });
    Document::new(manifest_type, serde_json::to_vec_pretty(&manifest).unwrap())
}

/// An OCI index over single-platform manifests.
fn oci_index(children: &[(&Document, &str)]) -> Document {
    let manifests: Vec<_> = children
        .iter()
        .map(|(child, arch)| {
            json!({
                "mediaType": child.media_type,
                "digest": child.digest(),
                "size": child.bytes.len(),
                "platform": {"architecture": arch, "os": "linux"},
            })
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    Document::new(OCI_INDEX, serde_json::to_vec(&index).unwrap())
}

fn single(top: &Document) -> ImageDocuments {
    ImageDocuments {
        top: top.clone(),
        children: Vec::new(),
    }
}

fn reference(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

/// The test images: two different `nginx:1.25` from two registries, and a two-platform
/// `pause` of which only amd64 is kept.
struct Fixture {
    blobs: MemoryBlobs,
    nginx_docker_io: Document,
    nginx_quay_io: Document,
    pause_index: Document,
    pause_amd64: Document,
    pause_arm64: Document,
}

impl Fixture {
    fn new() -> Self {
        let mut blobs = MemoryBlobs::default();
        let nginx_docker_io = image_manifest(1, "amd64", 2, Style::Oci, &mut blobs);
        let nginx_quay_io = image_manifest(2, "amd64", 1, Style::Docker, &mut blobs);
        let pause_amd64 = image_manifest(3, "amd64", 1, Style::Oci, &mut blobs);
        let pause_arm64 = image_manifest(4, "arm64", 1, Style::Oci, &mut blobs);
        let pause_index = oci_index(&[(&pause_amd64, "amd64"), (&pause_arm64, "arm64")]);
        Fixture {
            blobs,
            nginx_docker_io,
            nginx_quay_io,
            pause_index,
            pause_amd64,
            pause_arm64,
        }
    }

    fn pause(&self) -> ImageDocuments {
        ImageDocuments {
            top: self.pause_index.clone(),
            children: vec![self.pause_amd64.clone()],
        }
    }
}

/// The config and layer digests of a manifest.
fn blob_digests(manifest: &Document) -> Vec<Digest> {
    let manifest: Manifest = serde_json::from_slice(&manifest.bytes).unwrap();
    std::iter::once(manifest.config.digest)
        .chain(manifest.layers.into_iter().map(|l| l.digest))
        .collect()
}

fn blob_data(root: &Path, digest: &Digest) -> PathBuf {
    root.join(V2)
        .join("blobs/sha256")
        .join(&digest.hex()[..2])
        .join(digest.hex())
        .join("data")
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(files_under(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// The digest of a file's bytes.
fn file_digest(path: &Path) -> Digest {
    Digest::of(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Pulls `source` (the amd64 image) with skopeo into a `dir:` and an `oci:` directory and
/// checks that the manifest and every blob have the digests that were written.
fn assert_pulls(source: &str, expected: &Document, work: &Path) {
    let skopeo = Skopeo::new().override_arch("amd64");
    let pulled = work.join(format!("pull-{}", Digest::of(source.as_bytes()).hex()));
    fs::create_dir_all(&pulled).unwrap();
    let blobs = blob_digests(expected);

    // dir: keeps the manifest bytes as served.
    let dir = pulled.join("dir");
    skopeo.copy(source, &format!("dir:{}", dir.display()));
    assert_eq!(
        file_digest(&dir.join("manifest.json")),
        expected.digest(),
        "{source}"
    );
    for blob in &blobs {
        assert_eq!(file_digest(&dir.join(blob.hex())), *blob, "{source}");
    }

    // oci: converts a Docker schema 2 manifest and its config to OCI, but keeps the layers.
    let layout = pulled.join("oci");
    skopeo.copy(source, &format!("oci:{}:pulled", layout.display()));
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest: Digest =
        serde_json::from_value(index["manifests"][0]["digest"].clone()).unwrap();
    let oci_blobs = blob_digests(&Document::new(
        OCI_MANIFEST,
        fs::read(layout.join("blobs/sha256").join(manifest_digest.hex())).unwrap(),
    ));
    let kept = if expected.media_type == OCI_MANIFEST {
        assert_eq!(manifest_digest, expected.digest(), "{source}");
        &blobs[..]
    } else {
        &blobs[1..]
    };
    assert_eq!(&oci_blobs[oci_blobs.len() - kept.len()..], kept, "{source}");
    for blob in &oci_blobs {
        let path = layout.join("blobs/sha256").join(blob.hex());
        assert_eq!(file_digest(&path), *blob, "{source}");
    }
}

/// The digest of what the registry serves for `source`, byte for byte.
fn served_digest(source: &str) -> Digest {
    Digest::of(Skopeo::new().inspect_raw(source).as_bytes())
}

fn stored(repository: &str, tag: &str, digest: &Digest) -> StoredTag {
    StoredTag {
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        digest: digest.clone(),
    }
}

#[test]
fn stock_registry_serves_written_images_under_both_names() {
    let fixture = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("registry");
    let storage = RegistryStorage::new(&root);

    let nginx = fixture.nginx_docker_io.digest();
    let quay = fixture.nginx_quay_io.digest();
    let pause = fixture.pause_index.digest();
    let pause_amd64 = fixture.pause_amd64.digest();

    let added = storage
        .add_image(
            &reference("nginx:1.25"),
            &single(&fixture.nginx_docker_io),
            &fixture.blobs,
        )
        .unwrap();
    assert_eq!(added.digest, nginx);
    assert_eq!(
        added.repositories,
        ["library/nginx", "docker.io/library/nginx"]
    );
    assert_eq!(added.blobs_written, 4, "config, two layers, manifest");
    assert!(added.collisions.is_empty());

    let added = storage
        .add_image(
            &reference("quay.io/library/nginx:1.25"),
            &single(&fixture.nginx_quay_io),
            &fixture.blobs,
        )
        .unwrap();
    assert_eq!(
        added.repositories,
        ["library/nginx", "quay.io/library/nginx"]
    );
    assert_eq!(added.collisions.len(), 1, "{:?}", added.collisions);
    let collision = &added.collisions[0];
    assert_eq!(
        (collision.repository.as_str(), collision.tag.as_str()),
        ("library/nginx", "1.25")
    );
    assert_eq!(collision.existing, nginx);
    assert_eq!(
        collision.existing_source.as_deref(),
        Some("docker.io/library/nginx:1.25")
    );
    assert_eq!(collision.rejected, quay);

    let added = storage
        .add_image(
            &reference("registry.k8s.io/pause:3.9"),
            &fixture.pause(),
            &fixture.blobs,
        )
        .unwrap();
    assert_eq!(added.digest, pause);
    assert_eq!(added.repositories, ["pause", "registry.k8s.io/pause"]);
    assert_eq!(
        added.blobs_written, 4,
        "config, layer, child manifest, index"
    );

    // Pinned by digest only: revisions, no tag; every blob is shared with nginx.
    let pinned = reference(&format!("ghcr.io/acme/pinned@{nginx}"));
    let added = storage
        .add_image(&pinned, &single(&fixture.nginx_docker_io), &fixture.blobs)
        .unwrap();
    assert_eq!((added.blobs_written, added.bytes_written), (0, 0));

    let mut expected_tags = vec![
        stored("docker.io/library/nginx", "1.25", &nginx),
        stored("library/nginx", "1.25", &nginx),
        stored("pause", "3.9", &pause),
        stored("quay.io/library/nginx", "1.25", &quay),
        stored("registry.k8s.io/pause", "3.9", &pause),
    ];
    expected_tags.sort();
    assert_eq!(storage.list_images().unwrap(), expected_tags);

    // The layout itself: link files without newline, the marker, the absent arm64 child.
    let repositories = root.join(V2).join("repositories");
    let tag_dir = repositories.join("pause/_manifests/tags/3.9");
    assert_eq!(
        fs::read_to_string(tag_dir.join("current/link")).unwrap(),
        pause.to_string()
    );
    assert!(
        tag_dir
            .join(format!("index/sha256/{}/link", pause.hex()))
            .is_file()
    );
    assert_eq!(
        fs::read_to_string(tag_dir.join("source")).unwrap(),
        "registry.k8s.io/pause:3.9"
    );
    let pause_repo = repositories.join("pause");
    for digest in [&pause, &pause_amd64] {
        assert!(
            pause_repo
                .join(format!("_manifests/revisions/sha256/{}/link", digest.hex()))
                .is_file()
        );
    }
    assert!(!storage.has_blob(&fixture.pause_arm64.digest()));
    for blob in blob_digests(&fixture.pause_arm64) {
        assert!(!storage.has_blob(&blob));
        assert!(!fixture.blobs.opened().contains(&blob));
    }
    assert!(!repositories.join("acme/pinned/_manifests/tags").exists());

    let registry = Registry::builder().storage(&root).start();
    let at = |name: &str| format!("docker://{}/{name}", registry.addr());

    // nginx from docker.io: both names, by tag and by digest.
    for name in ["library/nginx", "docker.io/library/nginx"] {
        for source in [at(&format!("{name}:1.25")), at(&format!("{name}@{nginx}"))] {
            assert_eq!(served_digest(&source), nginx, "{source}");
            assert_pulls(&source, &fixture.nginx_docker_io, work.path());
        }
    }
    // nginx from quay.io: its full name by tag and digest; its short name by digest only.
    for source in [
        at("quay.io/library/nginx:1.25"),
        at(&format!("quay.io/library/nginx@{quay}")),
        at(&format!("library/nginx@{quay}")),
    ] {
        assert_eq!(served_digest(&source), quay, "{source}");
        assert_pulls(&source, &fixture.nginx_quay_io, work.path());
    }
    // pause: the index by tag and digest, the amd64 child when pulled; arm64 is absent.
    for name in ["pause", "registry.k8s.io/pause"] {
        for source in [at(&format!("{name}:3.9")), at(&format!("{name}@{pause}"))] {
            assert_eq!(served_digest(&source), pause, "{source}");
            assert_pulls(&source, &fixture.pause_amd64, work.path());
        }
        let arm64 = at(&format!("{name}@{}", fixture.pause_arm64.digest()));
        let refused = Skopeo::new().try_inspect_raw(&arm64).unwrap_err();
        assert!(refused.contains("manifest unknown"), "{refused}");
    }
    // The digest-only image resolves by digest under both names.
    for name in ["acme/pinned", "ghcr.io/acme/pinned"] {
        let source = at(&format!("{name}@{nginx}"));
        assert_eq!(served_digest(&source), nginx, "{source}");
        assert_pulls(&source, &fixture.nginx_docker_io, work.path());
    }

    // The `source` markers are invisible to the registry's tag listing; the catalog has every
    // repository name.
    let skopeo = Skopeo::new();
    assert_eq!(skopeo.list_tags(&at("library/nginx")), ["1.25"]);
    assert_eq!(skopeo.list_tags(&at("registry.k8s.io/pause")), ["3.9"]);
    // Like a push by digest only, a repository without tags is unknown to the tag listing.
    let tags = registry.get("/v2/acme/pinned/tags/list").unwrap();
    assert_eq!(tags.status, 404);
    let catalog = registry.get("/v2/_catalog").unwrap();
    assert_eq!(catalog.status, 200);
    let catalog: serde_json::Value = serde_json::from_slice(&catalog.body).unwrap();
    assert_eq!(
        catalog["repositories"],
        json!([
            "acme/pinned",
            "docker.io/library/nginx",
            "ghcr.io/acme/pinned",
            "library/nginx",
            "pause",
            "quay.io/library/nginx",
            "registry.k8s.io/pause"
        ])
    );
}

#[test]
fn rewriting_an_image_writes_no_blob() {
    let fixture = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let storage = RegistryStorage::new(work.path());
    let nginx = reference("nginx:1.25");
    let pause = reference("registry.k8s.io/pause:3.9");
    storage
        .add_image(&nginx, &single(&fixture.nginx_docker_io), &fixture.blobs)
        .unwrap();
    storage
        .add_image(&pause, &fixture.pause(), &fixture.blobs)
        .unwrap();
    let snapshot = |files: &[PathBuf]| -> Vec<(PathBuf, u64, i64, i64)> {
        files
            .iter()
            .map(|f| {
                let m = fs::metadata(f).unwrap();
                (f.clone(), m.ino(), m.mtime(), m.mtime_nsec())
            })
            .collect()
    };
    let before = snapshot(&files_under(work.path()));
    let opened_before = fixture.blobs.opened().len();
    let tags_before = storage.list_images().unwrap();

    for (reference, documents) in [
        (&nginx, single(&fixture.nginx_docker_io)),
        (&pause, fixture.pause()),
    ] {
        let again = storage
            .add_image(reference, &documents, &fixture.blobs)
            .unwrap();
        assert_eq!((again.blobs_written, again.bytes_written), (0, 0));
        assert!(again.collisions.is_empty());
    }
    assert_eq!(
        fixture.blobs.opened().len(),
        opened_before,
        "no blob read again"
    );
    assert_eq!(
        snapshot(&files_under(work.path())),
        before,
        "no file rewritten"
    );
    assert_eq!(storage.list_images().unwrap(), tags_before);
}

#[test]
fn corrupt_blob_source_leaves_no_blob_visible() {
    let fixture = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let storage = RegistryStorage::new(work.path());
    let corrupt = blob_digests(&fixture.nginx_docker_io)[2].clone();
    let source = CorruptBlobs {
        inner: &fixture.blobs,
        corrupt: corrupt.clone(),
    };
    let error = storage
        .add_image(
            &reference("nginx:1.25"),
            &single(&fixture.nginx_docker_io),
            &source,
        )
        .unwrap_err();
    assert!(matches!(error, StorageError::Blob(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&corrupt.to_string()), "{message}");
    assert!(message.contains("does not match"), "{message}");

    assert!(!storage.has_blob(&corrupt));
    assert!(!blob_data(work.path(), &corrupt).exists());
    let leftovers: Vec<_> = files_under(work.path())
        .into_iter()
        .filter(|f| !f.ends_with("data"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!work.path().join(V2).join("repositories").exists());
    assert!(storage.list_images().unwrap().is_empty());
    assert!(
        storage
            .write_blob(&corrupt, &b"wrong"[..])
            .unwrap_err()
            .to_string()
            .contains(&corrupt.to_string())
    );

    // The right bytes complete the image.
    let added = storage
        .add_image(
            &reference("nginx:1.25"),
            &single(&fixture.nginx_docker_io),
            &fixture.blobs,
        )
        .unwrap();
    assert!(storage.has_blob(&corrupt));
    assert_eq!(added.digest, fixture.nginx_docker_io.digest());
}

#[test]
fn tags_move_for_the_same_source_only() {
    let fixture = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let storage = RegistryStorage::new(work.path());
    let nginx = reference("nginx:1.25");
    storage
        .add_image(&nginx, &single(&fixture.nginx_docker_io), &fixture.blobs)
        .unwrap();

    // The same reference now names another image (a moved upstream tag): both names follow.
    let moved = storage
        .add_image(&nginx, &single(&fixture.nginx_quay_io), &fixture.blobs)
        .unwrap();
    assert!(moved.collisions.is_empty());
    let quay = fixture.nginx_quay_io.digest();
    assert_eq!(
        storage.list_images().unwrap(),
        [
            stored("docker.io/library/nginx", "1.25", &quay),
            stored("library/nginx", "1.25", &quay),
        ]
    );

    // Another registry's same path and tag keeps the short tag where it is.
    let other = storage
        .add_image(
            &reference("mirror.gcr.io/library/nginx:1.25"),
            &single(&fixture.nginx_docker_io),
            &fixture.blobs,
        )
        .unwrap();
    assert_eq!(other.collisions.len(), 1);
    assert!(
        other.collisions[0]
            .to_string()
            .contains("from docker.io/library/nginx:1.25"),
        "{}",
        other.collisions[0]
    );
    // A tag written by another tool (no marker) is not taken over either.
    let tag_dir = work
        .path()
        .join(V2)
        .join("repositories/library/nginx/_manifests/tags/1.25");
    fs::remove_file(tag_dir.join("source")).unwrap();
    let unknown = storage
        .add_image(&nginx, &single(&fixture.nginx_docker_io), &fixture.blobs)
        .unwrap();
    assert_eq!(unknown.collisions.len(), 1);
    assert_eq!(unknown.collisions[0].existing_source, None);
    assert!(
        unknown.collisions[0]
            .to_string()
            .contains("an unknown source")
    );
}

#[test]
fn inconsistent_documents_are_rejected() {
    let fixture = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let storage = RegistryStorage::new(work.path());
    let nginx = fixture.nginx_docker_io.digest();

    let pinned_elsewhere = reference(&format!("ghcr.io/acme/x@{nginx}"));
    let error = storage
        .add_image(
            &pinned_elsewhere,
            &single(&fixture.nginx_quay_io),
            &fixture.blobs,
        )
        .unwrap_err();
    assert!(
        matches!(error, StorageError::PinnedDigestMismatch { .. }),
        "{error}"
    );

    let stranger = ImageDocuments {
        top: fixture.pause_index.clone(),
        children: vec![fixture.nginx_docker_io.clone()],
    };
    let error = storage
        .add_image(&reference("pause:1"), &stranger, &fixture.blobs)
        .unwrap_err();
    assert!(
        matches!(error, StorageError::ChildNotInIndex { .. }),
        "{error}"
    );

    let mislabelled = single(&Document::new(
        DOCKER_MANIFEST,
        fixture.nginx_docker_io.bytes.clone(),
    ));
    let error = storage
        .add_image(&reference("x:1"), &mislabelled, &fixture.blobs)
        .unwrap_err();
    assert!(
        error.to_string().contains("mediaType field says"),
        "{error}"
    );

    let index_alone = single(&fixture.pause_index);
    let error = storage
        .add_image(&reference("pause:1"), &index_alone, &fixture.blobs)
        .unwrap_err();
    assert!(
        matches!(error, StorageError::IndexWithoutChildren { .. }),
        "{error}"
    );
    assert!(files_under(work.path()).is_empty(), "nothing was written");
}
