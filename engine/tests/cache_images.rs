//! Images into the registry storage as one layer per image, against real registries: the
//! layers hold only what the layers below lack, merged they are a storage directory that a
//! stock `docker-registry` serves with the upstream digests, the same inputs give the same
//! bytes, stored images are skipped, archives' images become layers too, and failures name
//! the image.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::cache_images::{
    CacheImagesError, ImageLayerPlan, REGISTRY_DIR, Resolution, fetch_image_layers,
    image_layer_entries, plan_archive_layers, plan_image_layers,
};
use image::distribution::StorageIndex;
use image::layer::{Compression, LayerOptions, UnpackOptions, unpack_layer, write_layer};
use image::progress::{BlobOutcome, NoProgress, Progress};
use image::registry::{RegistryClient, RegistryOptions};
use image::store::Store;
use image::{Digest, Reference};
use kubefile::plan::Platform;
use testkit::images::{GeneratedImage, ImageSpec, write_oci_layout};
use testkit::registry::Registry;
use testkit::skopeo::{self, Skopeo};

/// Keeps the messages it receives.
#[derive(Default)]
struct Messages(Mutex<Vec<String>>);

impl Progress for Messages {
    fn blob_started(&self, _: &Digest, _: u64, _: u64) {}
    fn blob_advanced(&self, _: &Digest, _: u64) {}
    fn blob_finished(&self, _: &Digest, _: BlobOutcome) {}
    fn message(&self, text: &str) {
        self.0.lock().unwrap().push(text.to_owned());
    }
}

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

fn reference(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

fn digest(text: &str) -> Digest {
    text.parse().unwrap()
}

fn client() -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        attempts: 1,
        backoff: Duration::from_millis(1),
        ..RegistryOptions::default()
    })
}

/// An upstream registry with `team/a:1` and `team/b:1`, which share their first layer, and
/// the layouts they were generated from.
struct Upstream {
    registry: Registry,
    a: GeneratedImage,
    b: GeneratedImage,
    work: tempfile::TempDir,
}

impl Upstream {
    fn start() -> Self {
        let work = tempfile::tempdir().unwrap();
        let registry = Registry::start();
        let a = write_oci_layout(
            &work.path().join("a"),
            "1",
            &[ImageSpec::amd64(&[30_000, 20_000], 7)],
        );
        let b = write_oci_layout(
            &work.path().join("b"),
            "1",
            &[ImageSpec::amd64(&[30_000, 25_000], 7)],
        );
        assert_eq!(a.layers[0], b.layers[0], "the fixture shares a layer");
        assert_ne!(a.layers[1], b.layers[1]);
        for (image, name) in [(&a, "team/a:1"), (&b, "team/b:1")] {
            skopeo::copy(
                &image.oci_ref(),
                &format!("docker://{}/{name}", registry.addr()),
            );
        }
        Upstream {
            registry,
            a,
            b,
            work,
        }
    }

    fn image(&self, name: &str) -> Reference {
        reference(&format!("{}/{name}", self.registry.addr()))
    }
}

/// Writes each plan's layer as an uncompressed tar into `dir`; returns the files and digests.
fn write_layers(store: &Store, plans: &[ImageLayerPlan], dir: &Path) -> Vec<(PathBuf, Digest)> {
    fs::create_dir_all(dir).unwrap();
    let options = LayerOptions {
        compression: Compression::None,
        mtime: 0,
        ..LayerOptions::default()
    };
    plans
        .iter()
        .enumerate()
        .map(|(n, plan)| {
            let path = dir.join(format!("{n}.tar"));
            let entries = image_layer_entries(store, plan).unwrap();
            let written = write_layer(entries, &options, File::create(&path).unwrap()).unwrap();
            (path, written.digest)
        })
        .collect()
}

/// The paths of a layer tar.
fn layer_paths(layer: &Path) -> BTreeSet<String> {
    let mut archive = tar::Archive::new(File::open(layer).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// An index read from layer tars the way an engine reads a base image: headers, and the
/// content of tag files only.
fn index_from_layers(layers: &[(PathBuf, Digest)]) -> StorageIndex {
    let mut index = StorageIndex::new(REGISTRY_DIR);
    for (layer, _) in layers {
        let mut archive = tar::Archive::new(File::open(layer).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry.path().unwrap().display().to_string();
            let mut content = Vec::new();
            if index.needs_content(&path) {
                entry.read_to_end(&mut content).unwrap();
            }
            let content = index.needs_content(&path).then_some(content.as_slice());
            index.observe_path(&path, content).unwrap();
        }
    }
    index
}

fn data_path(blob: &str) -> String {
    format!(
        "registry/docker/registry/v2/blobs/sha256/{}/{}/data",
        &blob[7..9],
        &blob[7..]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_become_layers_that_a_stock_registry_serves() {
    let upstream = Upstream::start();
    let client = client();
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let (a, b) = (upstream.image("team/a:1"), upstream.image("team/b:1"));

    // An archive image as `docker save` writes it, sharing nothing with a and b.
    let archived = write_oci_layout(
        &upstream.work.path().join("c"),
        "1",
        &[ImageSpec::amd64(&[15_000], 8)],
    );
    let archive = upstream.work.path().join("c.tar");
    skopeo::copy(
        &archived.oci_ref(),
        &format!("docker-archive:{}:example.com/apps/c:1", archive.display()),
    );

    let mut index = StorageIndex::new(REGISTRY_DIR);
    let messages = Messages::default();
    let mut plans = plan_image_layers(
        &client,
        &store,
        &[b.clone(), a.clone(), b.clone()],
        &amd64(),
        &mut index,
        &Resolution::default(),
        &messages,
    )
    .await
    .unwrap();
    let from_archive =
        plan_archive_layers(&store, std::slice::from_ref(&archive), &mut index).unwrap();
    assert!(messages.0.lock().unwrap().is_empty());
    assert_eq!(plans.len(), 2, "b is asked for twice, planned once");
    assert_eq!(from_archive.len(), 1);
    assert_eq!((&plans[0].reference, &plans[1].reference), (&a, &b));
    assert_eq!(plans[0].digest, digest(&upstream.a.digest));
    assert_eq!(plans[1].digest, digest(&upstream.b.digest));
    let shared = digest(&upstream.a.layers[0]);
    assert!(plans[0].new_blobs.iter().any(|blob| blob.digest == shared));
    assert!(plans[1].new_blobs.iter().all(|blob| blob.digest != shared));
    assert_eq!(plans[1].new_blobs.len(), 2, "b's config and own layer");
    assert_eq!(from_archive[0].reference, reference("example.com/apps/c:1"));
    plans.extend(from_archive);

    let downloaded = fetch_image_layers(&client, &store, &plans, Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(
        downloaded, 5,
        "a's config and two layers, b's config and layer"
    );

    let layers = write_layers(&store, &plans, &upstream.work.path().join("layers"));
    let a_paths = layer_paths(&layers[0].0);
    let b_paths = layer_paths(&layers[1].0);
    assert!(a_paths.contains(&data_path(&upstream.a.layers[0])));
    assert!(!b_paths.contains(&data_path(&upstream.a.layers[0])));
    assert!(b_paths.contains(&data_path(&upstream.b.layers[1])));

    let merged = upstream.work.path().join("rootfs");
    for (layer, _) in &layers {
        unpack_layer(
            File::open(layer).unwrap(),
            &merged,
            &UnpackOptions::default(),
        )
        .unwrap();
    }
    let served = Registry::builder().storage(merged.join("registry")).start();
    let raw = |name: &str| {
        let raw = Skopeo::new().inspect_raw(&format!("docker://{}/{name}", served.addr()));
        Digest::of(raw.as_bytes())
    };
    let upstream_name = upstream.registry.addr().replace(':', "_");
    for (image, name) in [(&upstream.a, "team/a"), (&upstream.b, "team/b")] {
        for repository in [name.to_owned(), format!("{upstream_name}/{name}")] {
            assert_eq!(raw(&format!("{repository}:1")), digest(&image.digest));
            assert_eq!(
                raw(&format!("{repository}@{}", image.digest)),
                digest(&image.digest)
            );
        }
        // Every blob is served: skopeo verifies each one it copies.
        let copied = upstream.work.path().join(format!("copied-{}", &name[5..]));
        skopeo::copy(
            &format!("docker://{}/{name}:1", served.addr()),
            &format!("dir:{}", copied.display()),
        );
        for layer in &image.layers {
            assert!(copied.join(&layer[7..]).is_file(), "{name}: {layer}");
        }
    }
    for repository in ["apps/c", "example.com/apps/c"] {
        assert_eq!(raw(&format!("{repository}:1")), plans[2].digest);
    }

    // The same inputs over the same lower layers give the same layers, byte for byte.
    let mut again_index = StorageIndex::new(REGISTRY_DIR);
    let mut again = plan_image_layers(
        &client,
        &store,
        &[a.clone(), b.clone()],
        &amd64(),
        &mut again_index,
        &Resolution::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    again.extend(
        plan_archive_layers(&store, std::slice::from_ref(&archive), &mut again_index).unwrap(),
    );
    assert_eq!(again, plans);
    let again_layers = write_layers(&store, &again, &upstream.work.path().join("again"));
    let digests = |layers: &[(PathBuf, Digest)]| -> Vec<Digest> {
        layers.iter().map(|(_, digest)| digest.clone()).collect()
    };
    assert_eq!(digests(&again_layers), digests(&layers));
    assert_eq!(again_index, index);

    // Read back from the layer tars, the index knows every image: nothing is planned again.
    let mut from_layers = index_from_layers(&layers);
    assert_eq!(from_layers, index);
    let pinned = reference(&format!(
        "{}/team/a@{}",
        upstream.registry.addr(),
        upstream.a.digest
    ));
    let none = plan_image_layers(
        &client,
        &store,
        &[a.clone(), b.clone(), pinned.clone()],
        &amd64(),
        &mut from_layers,
        &Resolution::default(),
        &messages,
    )
    .await
    .unwrap();
    assert!(none.is_empty());
    assert!(
        plan_archive_layers(&store, &[archive], &mut from_layers)
            .unwrap()
            .is_empty()
    );
    let reported = messages.0.lock().unwrap().clone();
    assert_eq!(reported.len(), 3, "{reported:?}");
    for image in [&a, &b, &pinned] {
        assert!(
            reported
                .iter()
                .any(|m| m.starts_with(&format!("{image}: already in the registry storage"))),
            "{reported:?}"
        );
    }

    // An image changed upstream gets a new layer; the other layers stay as they were.
    let moved = write_oci_layout(
        &upstream.work.path().join("b2"),
        "1",
        &[ImageSpec::amd64(&[30_000, 26_000], 7)],
    );
    skopeo::copy(
        &moved.oci_ref(),
        &format!("docker://{}/team/b:1", upstream.registry.addr()),
    );
    let mut rebuilt_index = StorageIndex::new(REGISTRY_DIR);
    let rebuilt = plan_image_layers(
        &client,
        &store,
        &[a.clone(), b.clone()],
        &amd64(),
        &mut rebuilt_index,
        &Resolution::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(rebuilt[0], plans[0]);
    assert_ne!(rebuilt[1].key, plans[1].key);
    assert_eq!(rebuilt[1].digest, digest(&moved.digest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_name_every_image() {
    let upstream = Upstream::start();
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let missing = upstream.image("team/missing:1");
    // Nothing listens on port 1 of the loopback interface.
    let unreachable = reference("127.0.0.1:1/team/x:1");
    let mut index = StorageIndex::new(REGISTRY_DIR);
    let error = plan_image_layers(
        &client(),
        &store,
        &[
            upstream.image("team/a:1"),
            missing.clone(),
            unreachable.clone(),
        ],
        &amd64(),
        &mut index,
        &Resolution::default(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, CacheImagesError::Resolve(ref f) if f.len() == 2),
        "{error}"
    );
    let message = error.to_string();
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines[0], "2 images could not be fetched:", "{message}");
    assert!(
        lines[1].starts_with(&format!("  {unreachable}: ")),
        "{message}"
    );
    assert!(
        lines[2].starts_with(&format!("  {missing}: not found on ")),
        "{message}"
    );
    assert_eq!(
        index,
        StorageIndex::new(REGISTRY_DIR),
        "nothing was recorded"
    );

    let error = plan_image_layers(
        &client(),
        &store,
        &[upstream.image("team/a:1")],
        &Platform::new("linux", "s390x", None),
        &mut index,
        &Resolution::default(),
        &NoProgress,
    )
    .await;
    // A single-platform image has no index to pick from: it is taken as it is.
    assert_eq!(error.unwrap().len(), 1);

    // An OCI archive whose image carries only a tag names no image.
    let unnamed = upstream.work.path().join("unnamed.tar");
    skopeo::copy(
        &upstream.a.oci_ref(),
        &format!("oci-archive:{}:1", unnamed.display()),
    );
    let error =
        plan_archive_layers(&store, std::slice::from_ref(&unnamed), &mut index).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(&unnamed.display().to_string()),
        "{message}"
    );
    assert!(message.contains("has no name"), "{message}");
}
