//! The embedded build against its floors, in one run, on generated data: a context whose rootfs
//! is binary-like random files, and an upstream `docker-registry` holding random-layer images
//! that the Kubefile's image list names.
//!
//! - (a) cold build with image caching, against the floor of reading and hashing the same bytes
//!   once, and against `skopeo copy` of the images into a registry plus a `tar` of the rootfs;
//! - (b) rebuild with nothing changed (goal: under 1 second);
//! - (c) rebuild and push after one upstream image changed: bytes the target registry received
//!   over the changed image's size (goal: at most 1.2).
//!
//! Full mode: 300 MiB of rootfs files and 20 images of 50 MiB; `--quick`: 8 MiB and 3 images
//! of 1 MiB (a smoke run for CI).

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bench::{BuildFixture, FixtureSizes, MIB, measure, ratio, sibling_binary};
use sha2::{Digest as _, Sha256};
use testkit::images::{ImageSpec, push_generated};
use testkit::registry::Registry;

/// Reads and hashes every file under `dir` once; returns the bytes read.
fn hash_tree(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    let mut buf = vec![0u8; 1 << 20];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                let mut file = fs::File::open(&path).unwrap();
                let mut hasher = Sha256::new();
                loop {
                    let n = file.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    total += n as u64;
                }
                std::hint::black_box(hasher.finalize());
            }
        }
    }
    total
}

fn skopeo_copy(src: &str, dest: &str) -> Command {
    let mut command = Command::new("skopeo");
    command
        .args([
            "--insecure-policy",
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args([src, dest]);
    command
}

fn main() -> io::Result<()> {
    let sizes = FixtureSizes::from_mode();
    let fixture = BuildFixture::generate(&sizes)?;
    let (work, context, upstream) = (fixture.work.path(), &fixture.context, &fixture.upstream);
    let rootfs = fixture.rootfs();
    let sealer_build = sibling_binary("sealer-build");
    let mirror = fixture.mirror();
    let build = |root: &Path, tag: &str, extra: &[&str]| {
        let mut command = Command::new(&sealer_build);
        command
            .arg("--root")
            .arg(root)
            .args(["--registry-mirror", &mirror, "-q", "build"])
            .args(["--platform", "linux/amd64", "-t", tag])
            .args(extra)
            .arg(context);
        command
    };

    // (a) cold build, against the floor and the skopeo pipeline.
    let floor_start = Instant::now();
    let floor_bytes = hash_tree(&rootfs) + hash_tree(upstream.storage_dir());
    let floor = floor_start.elapsed();
    let store = work.join("store");
    let (cold, _) = measure(&mut build(&store, "bench/cluster:1", &[]));
    let pipeline_target = Registry::start();
    let pipeline_start = Instant::now();
    for n in 0..sizes.images {
        measure(&mut skopeo_copy(
            &format!("docker://{}/bench/image-{n:02}:1", upstream.addr()),
            &format!("docker://{}/bench/image-{n:02}:1", pipeline_target.addr()),
        ));
    }
    let tar = work.join("rootfs.tar");
    measure(
        Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(context)
            .arg("rootfs"),
    );
    let pipeline = pipeline_start.elapsed();
    println!(
        "build-bench (a) cold build: {:.2} s for {} MiB; floor (read+sha256 once) {:.2} s: ratio {:.2} (goal <= 2); skopeo copy + tar {:.2} s: ratio {:.2} (goal < 1)",
        cold.as_secs_f64(),
        floor_bytes / MIB as u64,
        floor.as_secs_f64(),
        ratio(cold, floor),
        pipeline.as_secs_f64(),
        ratio(cold, pipeline),
    );

    // (b) rebuild, nothing changed.
    let (rebuild, _) = measure(&mut build(&store, "bench/cluster:1", &[]));
    println!(
        "build-bench (b) rebuild unchanged: {:.3} s (goal < 1 s); {:.3} of the cold build",
        rebuild.as_secs_f64(),
        ratio(rebuild, cold)
    );

    // (c) push, change one image upstream, rebuild and push again.
    let target = Registry::start();
    let pushed = format!("{}/bench/cluster:1", target.addr());
    measure(&mut build(&store, &pushed, &["--push"]));
    let before = testkit::registry::stored_blob_sizes(target.storage_dir());
    let changed = push_generated(
        upstream.addr(),
        "bench/image-00:1",
        &[ImageSpec::amd64(&sizes.image_layers, 99_999)],
    );
    let (repush, _) = measure(&mut build(&store, &pushed, &["--push", "--pull", "always"]));
    let uploaded: u64 = testkit::registry::stored_blob_sizes(target.storage_dir())
        .iter()
        .filter(|(blob, _)| !before.contains_key(*blob))
        .map(|(_, size)| size)
        .sum();
    println!(
        "build-bench (c) rebuild + push after one image changed: {uploaded} bytes uploaded for a {} byte image: ratio {:.3} (goal <= 1.2), {:.2} s",
        changed.bytes,
        ratio(
            Duration::from_nanos(uploaded),
            Duration::from_nanos(changed.bytes)
        ),
        repush.as_secs_f64()
    );
    Ok(())
}
