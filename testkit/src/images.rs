//! Test images made from seeded random data (so they never compress away), written as an OCI
//! image layout directory that `skopeo copy oci:DIR:TAG docker://...` can push anywhere.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// A small deterministic PRNG (xorshift64*), enough for incompressible test data.
pub struct Random(u64);

impl Random {
    /// A generator for this seed.
    pub fn new(seed: u64) -> Self {
        Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Fills `buf` with pseudo-random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let value = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&value[..chunk.len()]);
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One platform of a generated image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// Sizes of the random file each layer holds (one file per layer).
    pub layer_sizes: Vec<usize>,
    /// Seed of the data.
    pub seed: u64,
}

impl ImageSpec {
    /// An amd64 image with these layer sizes.
    pub fn amd64(layer_sizes: &[usize], seed: u64) -> Self {
        ImageSpec {
            architecture: "amd64".into(),
            layer_sizes: layer_sizes.to_vec(),
            seed,
        }
    }
}

/// What was written: digests to compare against.
#[derive(Debug, Clone)]
pub struct GeneratedImage {
    /// The OCI layout directory.
    pub layout: PathBuf,
    /// The tag inside the layout.
    pub tag: String,
    /// The digest of the top-level document (manifest, or index for several platforms).
    pub digest: String,
    /// Digests of the platform manifests, in the order of the specs.
    pub manifests: Vec<String>,
    /// Digests of every layer of every platform.
    pub layers: Vec<String>,
    /// Total bytes of all blobs.
    pub bytes: u64,
}

impl GeneratedImage {
    /// `oci:DIR:TAG` for skopeo.
    pub fn oci_ref(&self) -> String {
        format!("oci:{}:{}", self.layout.display(), self.tag)
    }
}

fn write_blob(layout: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let path = layout.join("blobs/sha256").join(&digest[7..]);
    fs::write(path, bytes).unwrap();
    digest
}

/// A gzip tar layer holding one random file `data/<seed>-<n>`.
fn layer(size: usize, seed: u64, n: usize) -> (Vec<u8>, String) {
    let mut data = vec![0u8; size];
    Random::new(seed.wrapping_add(n as u64 * 7919)).fill(&mut data);
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, format!("data/{seed}-{n}"), data.as_slice())
        .unwrap();
    let raw = tar.into_inner().unwrap();
    let diff_id = sha256(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// Writes an OCI layout at `layout` holding one image (one spec) or an index (several specs)
/// under `tag`.
pub fn write_oci_layout(layout: &Path, tag: &str, specs: &[ImageSpec]) -> GeneratedImage {
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut manifests = Vec::new();
    let mut layers_all = Vec::new();
    let mut bytes = 0u64;
    let mut entries = Vec::new();
    for spec in specs {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for (n, size) in spec.layer_sizes.iter().enumerate() {
            let (blob, diff_id) = layer(*size, spec.seed, n);
            bytes += blob.len() as u64;
            let digest = write_blob(layout, &blob);
            layers_all.push(digest.clone());
            layers.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest, "size": blob.len()}));
            diff_ids.push(diff_id);
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": spec.architecture, "os": "linux",
            "config": {"Labels": {"seed": spec.seed.to_string()}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}}))
        .unwrap();
        bytes += config.len() as u64;
        let config_digest = write_blob(layout, &config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layers}))
        .unwrap();
        bytes += manifest.len() as u64;
        let digest = write_blob(layout, &manifest);
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
            "size": manifest.len(), "platform": {"architecture": spec.architecture, "os": "linux"}}));
        manifests.push(digest);
    }
    let (top_digest, top_entry) = if specs.len() == 1 {
        let mut entry = entries.remove(0);
        entry.as_object_mut().unwrap().remove("platform");
        (manifests[0].clone(), entry)
    } else {
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries}))
        .unwrap();
        bytes += index.len() as u64;
        let digest = write_blob(layout, &index);
        (
            digest.clone(),
            serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": index.len()}),
        )
    };
    let mut top_entry = top_entry;
    top_entry["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    let layout_index = serde_json::json!({"schemaVersion": 2, "manifests": [top_entry]});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&layout_index).unwrap(),
    )
    .unwrap();
    GeneratedImage {
        layout: layout.to_owned(),
        tag: tag.to_owned(),
        digest: top_digest,
        manifests,
        layers: layers_all,
        bytes,
    }
}

/// Generates an image (one spec, or an index of several) and pushes it with skopeo to
/// `registry_addr` (a loopback registry) as `path` (`library/busybox:1.36`); returns what was
/// generated, whose digests the registry now serves.
pub fn push_generated(registry_addr: &str, path: &str, specs: &[ImageSpec]) -> GeneratedImage {
    let layout = tempfile::Builder::new()
        .prefix("testkit-image-")
        .tempdir()
        .expect("create a temporary OCI layout");
    let generated = write_oci_layout(layout.path(), "generated", specs);
    crate::skopeo::Skopeo::new().copy_all(
        &generated.oci_ref(),
        &format!("docker://{registry_addr}/{path}"),
    );
    generated
}

/// A seed derived from a name, so that each named test image has its own content.
pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
