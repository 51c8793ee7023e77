//! The exec-step contract of image caching in a BuildKit build, against a real registry and
//! real archives: the output directory holds verified blobs and documents, and the layer a
//! reader lays out from it names the same files as the engine's own plan for the image.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use engine::cache_images::{
    ImageLayerPlan, REGISTRY_DIR, Resolution, plan_archive_layers, plan_image_layers,
};
use engine::fetch_to_dir::{
    DOCUMENTS_FILE, FetchedImage, FetchedImages, blob_path, fetch_archive_to_dir,
    fetch_image_to_dir,
};
use image::distribution::StorageIndex;
use image::layer::{EntryKind, FileSource, LayerEntry};
use image::manifest::{OCI_INDEX, OCI_MANIFEST};
use image::progress::NoProgress;
use image::registry::{RegistryClient, RegistryOptions};
use image::store::Store;
use image::{Digest, Reference};
use kubefile::plan::Platform;
use testkit::images::{ImageSpec, push_generated, write_oci_layout};
use testkit::registry::Registry;
use testkit::skopeo;

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

fn digest(text: &str) -> Digest {
    text.parse().unwrap()
}

fn client(mirrors: BTreeMap<String, String>) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        attempts: 1,
        backoff: Duration::from_millis(1),
        mirrors,
        ..RegistryOptions::default()
    })
}

fn arm64(layer_sizes: &[usize], seed: u64) -> ImageSpec {
    ImageSpec {
        architecture: "arm64".into(),
        ..ImageSpec::amd64(layer_sizes, seed)
    }
}

/// `documents.json` of `out`, and a check that every blob file hashes to its name.
fn read_output(out: &Path) -> (FetchedImages, BTreeSet<Digest>) {
    let names: BTreeSet<String> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["blobs".to_owned(), DOCUMENTS_FILE.to_owned()]),
        "nothing else stays in the output"
    );
    let index: FetchedImages =
        serde_json::from_slice(&fs::read(out.join(DOCUMENTS_FILE)).unwrap()).unwrap();
    let mut blobs = BTreeSet::new();
    for entry in fs::read_dir(out.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let named = Digest::from_hex(&entry.file_name().to_string_lossy()).unwrap();
        assert_eq!(Digest::of(&fs::read(entry.path()).unwrap()), named);
        blobs.insert(named);
    }
    (index, blobs)
}

/// The entries of a layer with each blob file named by its file name only (the engine's
/// point into its store, the reader's into the output directory).
fn comparable(entries: &[LayerEntry]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|entry| {
            let what = match &entry.kind {
                EntryKind::File(FileSource::Path(path)) => {
                    format!("blob {}", path.file_name().unwrap().to_string_lossy())
                }
                EntryKind::File(FileSource::Bytes(bytes)) => {
                    format!("bytes {}", Digest::of(bytes))
                }
                other => format!("{other:?} {:o}", entry.mode),
            };
            (entry.path.clone(), what)
        })
        .collect()
}

/// Lays out the images of `out` over `index` as the frontend does (reading the documents
/// back from the blobs, with the blob sources at `/blobs/sha256/<hex>`), checking each
/// against the engine's plan of the same image.
fn check_against_plans(out: &Path, images: &[FetchedImage], plans: &[ImageLayerPlan]) {
    assert_eq!(images.len(), plans.len());
    let mut index = StorageIndex::new(REGISTRY_DIR);
    for (image, plan) in images.iter().zip(plans) {
        let reference = Reference::parse(&image.reference).unwrap();
        assert_eq!(reference, plan.reference);
        let documents = image
            .documents(|digest| fs::read(blob_path(out, digest)))
            .unwrap();
        assert_eq!(documents, plan.documents);
        let files = index
            .image_layer_entries(&reference, &documents, &|d| {
                Some(PathBuf::from(format!("/blobs/sha256/{}", d.hex())))
            })
            .unwrap();
        assert_eq!(comparable(&files.entries), comparable(&plan.entries));
        assert_eq!(files.new_blobs, plan.new_blobs);
        for entry in &files.entries {
            if let EntryKind::File(FileSource::Path(path)) = &entry.kind {
                let in_out = out.join(path.strip_prefix("/").unwrap());
                assert!(in_out.is_file(), "{}", in_out.display());
            }
        }
        index.observe_entries(&files.entries).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_image_is_fetched_through_the_mirror_as_the_engine_plans_it() {
    let registry = Registry::start();
    let generated = push_generated(
        registry.addr(),
        "team/multi:1",
        &[ImageSpec::amd64(&[20_000, 10_000], 3), arm64(&[15_000], 4)],
    );
    // The image is named after a registry that does not exist; only its mirror answers.
    let reference = Reference::parse("registry.invalid/team/multi:1").unwrap();
    let client = client(BTreeMap::from([(
        "registry.invalid".to_owned(),
        registry.addr().to_owned(),
    )]));
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let fetched = fetch_image_to_dir(&client, &reference, &amd64(), &out, Arc::new(NoProgress))
        .await
        .unwrap();

    let (index, blobs) = read_output(&out);
    assert_eq!(index.images, std::slice::from_ref(&fetched));
    assert_eq!(fetched.reference, "registry.invalid/team/multi:1");
    assert_eq!(fetched.top.digest, digest(&generated.digest));
    assert_eq!(fetched.top.media_type, OCI_INDEX);
    assert_eq!(fetched.children.len(), 1, "the amd64 manifest only");
    assert_eq!(fetched.children[0].digest, digest(&generated.manifests[0]));
    assert_eq!(fetched.children[0].media_type, OCI_MANIFEST);
    let amd64_manifest: image::manifest::Manifest =
        serde_json::from_slice(&fs::read(blob_path(&out, &fetched.children[0].digest)).unwrap())
            .unwrap();
    let mut expected: BTreeSet<Digest> = [&generated.digest, &generated.manifests[0]]
        .into_iter()
        .chain(&generated.layers[..2])
        .map(|d| digest(d))
        .collect();
    expected.insert(amd64_manifest.config.digest.clone());
    assert_eq!(blobs, expected, "the arm64 blobs are left out");

    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let plans = plan_image_layers(
        &client,
        &store,
        std::slice::from_ref(&reference),
        &amd64(),
        &mut StorageIndex::new(REGISTRY_DIR),
        &Resolution::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    check_against_plans(&out, &index.images, &plans);

    // A failure names the image.
    let missing = Reference::parse("registry.invalid/team/missing:1").unwrap();
    let error = fetch_image_to_dir(
        &client,
        &missing,
        &amd64(),
        &work.path().join("missing"),
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("registry.invalid/team/missing:1"), "{error}");
}

/// Tars a directory (an OCI layout) into an archive.
fn tar_dir(dir: &Path, archive: &Path) {
    let mut builder = tar::Builder::new(fs::File::create(archive).unwrap());
    builder.append_dir_all(".", dir).unwrap();
    builder.finish().unwrap();
}

#[test]
fn every_image_of_an_archive_is_fetched_as_the_engine_plans_it() {
    let work = tempfile::tempdir().unwrap();
    // An OCI archive with two named images, one of them multi-platform, sharing a layer.
    let layout = work.path().join("layout");
    let single = write_oci_layout(&layout, "a", &[ImageSpec::amd64(&[12_000, 5_000], 9)]);
    let multi = write_oci_layout(
        &layout,
        "b",
        &[ImageSpec::amd64(&[12_000], 9), arm64(&[6_000], 10)],
    );
    let entry = |digest: &str, media_type: &str, name: &str| {
        let size = fs::metadata(layout.join("blobs/sha256").join(&digest[7..]))
            .unwrap()
            .len();
        serde_json::json!({"mediaType": media_type, "digest": digest, "size": size,
            "annotations": {"io.containerd.image.name": name}})
    };
    let layout_index = serde_json::json!({"schemaVersion": 2, "manifests": [
        entry(&single.digest, OCI_MANIFEST, "example.com/apps/a:1"),
        entry(&multi.digest, OCI_INDEX, "docker.io/library/b:2"),
    ]});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&layout_index).unwrap(),
    )
    .unwrap();
    let oci_archive = work.path().join("two.tar");
    tar_dir(&layout, &oci_archive);

    let out = work.path().join("out");
    let fetched = fetch_archive_to_dir(&oci_archive, &out).unwrap();
    let (index, blobs) = read_output(&out);
    assert_eq!(index.images, fetched);
    let references: Vec<&str> = fetched.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(
        references,
        ["docker.io/library/b:2", "example.com/apps/a:1"],
        "sorted by reference"
    );
    assert_eq!(fetched[0].top.digest, digest(&multi.digest));
    assert_eq!(
        fetched[0].children.len(),
        2,
        "an archive keeps every platform"
    );
    for layer in single.layers.iter().chain(&multi.layers) {
        assert!(blobs.contains(&digest(layer)), "{layer}");
    }

    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let plans = plan_archive_layers(
        &store,
        std::slice::from_ref(&oci_archive),
        &mut StorageIndex::new(REGISTRY_DIR),
    )
    .unwrap();
    check_against_plans(&out, &fetched, &plans);

    // A `docker save` archive, whose OCI manifest is made from its manifest.json.
    let saved_layout = write_oci_layout(
        &work.path().join("saved-layout"),
        "s",
        &[ImageSpec::amd64(&[7_000], 11)],
    );
    let saved = work.path().join("saved.tar");
    skopeo::copy(
        &saved_layout.oci_ref(),
        &format!("docker-archive:{}:quay.io/team/saved:3", saved.display()),
    );
    let saved_out = work.path().join("saved-out");
    let fetched = fetch_archive_to_dir(&saved, &saved_out).unwrap();
    let (index, _) = read_output(&saved_out);
    assert_eq!(index.images, fetched);
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].reference, "quay.io/team/saved:3");
    let plans = plan_archive_layers(
        &store,
        std::slice::from_ref(&saved),
        &mut StorageIndex::new(REGISTRY_DIR),
    )
    .unwrap();
    check_against_plans(&saved_out, &fetched, &plans);
}
