//! Support shared by the image integration tests (`images.rs`, `faults.rs`): `sealer-build` on
//! a store of its own, a loopback registry shared by the tests that run at the same time, large
//! test images streamed to disk, OCI archives of test layouts, and SHA-256 of files.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use testkit::images::{GeneratedImage, Random};

/// `sealer-build --root ROOT`, with a Docker config directory of its own under the root, so
/// that the credentials of whoever runs the tests never take part.
pub fn sealer(root: &Path) -> Command {
    let mut command = Command::cargo_bin("sealer-build").unwrap();
    command
        .arg("--root")
        .arg(root)
        .env("DOCKER_CONFIG", root.join("docker-config"))
        .env_remove("SEALER_ROOT");
    command
}

/// Runs a command that must succeed; returns its standard output and standard error.
pub fn success(command: &mut Command) -> (String, String) {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    (stdout, stderr)
}

/// Runs a command that must fail with exit code 1; returns its standard output and error.
pub fn failure(command: &mut Command) -> (String, String) {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{command:?} should have failed with exit code 1:\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

pub use testkit::registry::shared_registry;

/// `skopeo copy --preserve-digests [EXTRA] SRC DEST` into a loopback registry: unlike
/// `testkit::skopeo::copy`, it fails rather than compress an uncompressed layer (which would
/// change the digests), and `extra` can add `--all` for an index.
pub fn skopeo_copy(extra: &[&str], src: &str, dest: &str) {
    let output = StdCommand::new(testkit::skopeo::SKOPEO)
        .args([
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .args(extra)
        .args([src, dest])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo copy {extra:?} {src} {dest}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `sha256:<hex>` of a file, read in chunks.
pub fn sha256_file(path: &Path) -> String {
    let mut file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// The blob files of a store (`<root>/images/blobs/sha256/*`), sorted.
pub fn blob_files(root: &Path) -> Vec<PathBuf> {
    let dir = root.join("images/blobs/sha256");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

/// `len` bytes of seeded pseudo-random data, produced as they are read.
struct RandomReader {
    random: Random,
    left: u64,
}

impl Read for RandomReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.random.fill(&mut buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// A file writer that hashes what goes through it.
struct HashingFile {
    file: BufWriter<File>,
    hasher: Sha256,
    len: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Stores a small blob in an OCI layout; returns its digest.
pub fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    fs::write(layout.join("blobs/sha256").join(&digest[7..]), bytes).unwrap();
    digest
}

/// Writes at `layout` an OCI layout holding, under `tag`, one amd64 image whose only layer is
/// an uncompressed tar of one `size`-byte random file. The layer is streamed to disk in small
/// chunks, so memory use does not grow with `size`.
pub fn write_large_layout(layout: &Path, tag: &str, size: u64, seed: u64) -> GeneratedImage {
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let partial = layout.join("layer.partial");
    let mut writer = HashingFile {
        file: BufWriter::with_capacity(1 << 20, File::create(&partial).unwrap()),
        hasher: Sha256::new(),
        len: 0,
    };
    let mut tar = tar::Builder::new(&mut writer);
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    let data = RandomReader {
        random: Random::new(seed),
        left: size,
    };
    tar.append_data(&mut header, format!("data/large-{seed}"), data)
        .unwrap();
    tar.into_inner().unwrap().flush().unwrap();
    let layer = format!("sha256:{}", hex::encode(writer.hasher.finalize()));
    let layer_size = writer.len;
    fs::rename(&partial, layout.join("blobs/sha256").join(&layer[7..])).unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer]}}))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put_blob(layout, &config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer, "size": layer_size}]}))
    .unwrap();
    let digest = put_blob(layout, &manifest);
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    GeneratedImage {
        layout: layout.to_owned(),
        tag: tag.to_owned(),
        digest: digest.clone(),
        manifests: vec![digest],
        layers: vec![layer],
        bytes: layer_size + (config.len() + manifest.len()) as u64,
    }
}

/// Writes an OCI layout holding one image as an OCI archive in which that image is named
/// `name` (a full reference with a tag), annotated the way `docker save` (Docker 25 and later)
/// does it.
pub fn write_oci_archive(layout: &Path, name: &str, archive: &Path) {
    let mut index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap())
        .expect("the layout's index.json is JSON");
    let (_, tag) = name.rsplit_once(':').expect("the name has a tag");
    index["manifests"][0]["annotations"] = json!({
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": tag,
    });
    let mut tar = tar::Builder::new(BufWriter::new(File::create(archive).unwrap()));
    tar.append_path_with_name(layout.join("oci-layout"), "oci-layout")
        .unwrap();
    for entry in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let name = format!("blobs/sha256/{}", entry.file_name().to_string_lossy());
        tar.append_path_with_name(entry.path(), name).unwrap();
    }
    let index = serde_json::to_vec(&index).unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_size(index.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, "index.json", index.as_slice())
        .unwrap();
    tar.into_inner().unwrap().flush().unwrap();
}
