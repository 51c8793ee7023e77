//! Registry transfers against `skopeo copy`, in the same run, on generated images (random data)
//! served by a local `docker-registry`:
//!
//! - pull: every image into the local store, against `skopeo copy docker://… oci:DIR`;
//! - push: every image to an empty registry, against `skopeo copy oci:DIR docker://…`;
//! - re-push: the same again, when the registry has everything.
//!
//! Each line prints both times, the ratio (ours / skopeo; below 1 is faster) and the peak RSS
//! of each process. Full mode: 10 images of 5 x 20 MiB layers; `--quick`: 2 images of 2 x 1 MiB.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bench::{measure, quick_mode, ratio, sibling_binary};
use testkit::images::{ImageSpec, write_oci_layout};
use testkit::registry::Registry;

fn skopeo(src: &str, dest: &str) -> Command {
    let mut c = Command::new("skopeo");
    c.args([
        "copy",
        "--insecure-policy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "-q",
    ])
    .args([src, dest]);
    c
}

struct Totals {
    ours: Duration,
    theirs: Duration,
    ours_rss: u64,
    theirs_rss: u64,
}

impl Totals {
    fn new() -> Self {
        Totals {
            ours: Duration::ZERO,
            theirs: Duration::ZERO,
            ours_rss: 0,
            theirs_rss: 0,
        }
    }

    fn add(&mut self, ours: (Duration, u64), theirs: (Duration, u64)) {
        self.ours += ours.0;
        self.theirs += theirs.0;
        self.ours_rss = self.ours_rss.max(ours.1);
        self.theirs_rss = self.theirs_rss.max(theirs.1);
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<8} sealer-build {:>8.3} s  skopeo {:>8.3} s  ratio {:>5.2}  peak RSS {:>4} MiB vs {:>4} MiB",
            self.ours.as_secs_f64(),
            self.theirs.as_secs_f64(),
            ratio(self.ours, self.theirs),
            self.ours_rss / 1024,
            self.theirs_rss / 1024
        );
    }
}

fn main() {
    let quick = quick_mode();
    let (images, layers, layer_size) = if quick {
        (2, 2, 1 << 20)
    } else {
        (10, 5, 20 << 20)
    };
    let work = tempfile::tempdir().unwrap();
    let dir = |name: &str| -> PathBuf { work.path().join(name) };
    let upstream = Registry::start();
    let sealer = sibling_binary("sealer-build");
    println!(
        "registry transfer benchmark ({} mode): {images} images of {layers} x {} MiB",
        if quick { "quick" } else { "full" },
        layer_size >> 20
    );
    let names: Vec<String> = (0..images).map(|i| format!("bench/image-{i}:v1")).collect();
    for (i, name) in names.iter().enumerate() {
        let layout = dir(&format!("fixture-{i}"));
        let image = write_oci_layout(
            &layout,
            "v1",
            &[ImageSpec::amd64(&vec![layer_size; layers], i as u64 + 1)],
        );
        measure(&mut skopeo(
            &image.oci_ref(),
            &format!("docker://{}/{name}", upstream.addr()),
        ));
        std::fs::remove_dir_all(&layout).unwrap();
    }
    let store = dir("store");
    let ours = |args: &[&str]| {
        let mut c = Command::new(&sealer);
        c.arg("--root").arg(&store).arg("-q").args(args);
        c
    };

    let mut pull = Totals::new();
    for (i, name) in names.iter().enumerate() {
        let src = format!("{}/{name}", upstream.addr());
        let a = measure(&mut ours(&["pull", &src]));
        let b = measure(&mut skopeo(
            &format!("docker://{src}"),
            &format!("oci:{}:v1", dir(&format!("skopeo-{i}")).display()),
        ));
        pull.add(a, b);
    }
    pull.print("pull");

    let ours_target = Registry::start();
    let skopeo_target = Registry::start();
    for pass in ["push", "re-push"] {
        let mut totals = Totals::new();
        for (i, name) in names.iter().enumerate() {
            let src = format!("{}/{name}", upstream.addr());
            let a = measure(&mut ours(&[
                "push",
                &src,
                &format!("{}/{name}", ours_target.addr()),
            ]));
            let b = measure(&mut skopeo(
                &format!("oci:{}:v1", dir(&format!("skopeo-{i}")).display()),
                &format!("docker://{}/{name}", skopeo_target.addr()),
            ));
            totals.add(a, b);
        }
        totals.print(pass);
        if pass == "re-push" {
            println!(
                "re-push  per image: sealer-build {:.3} s, skopeo {:.3} s",
                totals.ours.as_secs_f64() / f64::from(images),
                totals.theirs.as_secs_f64() / f64::from(images)
            );
        }
    }
}
