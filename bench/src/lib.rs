//! Shared pieces of the benchmark drivers: timing with repetitions, and report lines.
//!
//! Machines here are noisy, so a driver never reports an absolute time alone: each scenario is
//! measured against a baseline run in the same process, and the ratio is what counts.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::images::{ImageSpec, Random, push_generated};
use testkit::registry::Registry;

/// Runs `work` `runs` times and returns the fastest run (the least disturbed by noise).
pub fn best_of<T>(runs: usize, mut work: impl FnMut() -> T) -> Duration {
    (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(work());
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Milliseconds with three decimals, for report lines.
pub fn millis(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1000.0)
}

/// `a / b` as a float.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// True when `--quick` was given: smoke mode for CI (small inputs, one run).
pub fn quick_mode() -> bool {
    std::env::args().any(|a| a == "--quick")
}

/// Runs a command to completion; returns its wall time and peak RSS (KiB), panicking on failure.
pub fn measure(command: &mut Command) -> (Duration, u64) {
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Some(hwm) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        }) {
            peak = peak.max(hwm);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (start.elapsed(), peak)
}

/// A binary built next to this one (`sealer-build`), with the same profile.
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it with the same profile first (cargo build --release -p cli)",
        path.display()
    );
    path
}

/// One MiB.
pub const MIB: usize = 1024 * 1024;

/// The sizes of a [`BuildFixture`].
pub struct FixtureSizes {
    /// Files in the rootfs (`rootfs/bin/tool-NN`).
    pub rootfs_files: usize,
    /// Bytes of each.
    pub rootfs_file_size: usize,
    /// Images the image list names.
    pub images: usize,
    /// Layer sizes of each image.
    pub image_layers: Vec<usize>,
}

impl FixtureSizes {
    /// Full mode: 300 MiB of rootfs files and 20 images of 50 MiB; `--quick`: 8 MiB and 3
    /// images of 1 MiB (a smoke run for CI).
    pub fn from_mode() -> Self {
        if quick_mode() {
            FixtureSizes {
                rootfs_files: 4,
                rootfs_file_size: 2 * MIB,
                images: 3,
                image_layers: vec![MIB / 2, MIB / 2],
            }
        } else {
            FixtureSizes {
                rootfs_files: 30,
                rootfs_file_size: 10 * MIB,
                images: 20,
                image_layers: vec![20 * MIB, 20 * MIB, 10 * MIB],
            }
        }
    }
}

/// The name the fixture's image list gives its upstream registry; builds mirror it to
/// [`BuildFixture::upstream`].
pub const UPSTREAM_NAME: &str = "bench.local";

/// A build context whose rootfs is binary-like random files, and an upstream
/// `docker-registry` holding random-layer images that the Kubefile's image list names
/// (`bench.local/bench/image-NN:1`).
pub struct BuildFixture {
    /// Holds the context (and whatever the driver puts beside it).
    pub work: tempfile::TempDir,
    /// The build context (`Kubefile`, `rootfs/`, `manifests/imageList`).
    pub context: PathBuf,
    /// The registry the images are in.
    pub upstream: Registry,
}

impl BuildFixture {
    /// Generates the context and pushes the images.
    pub fn generate(sizes: &FixtureSizes) -> io::Result<Self> {
        let work = tempfile::tempdir()?;
        let context = work.path().join("context");
        let rootfs = context.join("rootfs");
        fs::create_dir_all(rootfs.join("bin"))?;
        fs::create_dir_all(context.join("manifests"))?;
        let mut data = vec![0u8; sizes.rootfs_file_size];
        for n in 0..sizes.rootfs_files {
            Random::new(n as u64 + 1).fill(&mut data);
            fs::write(rootfs.join(format!("bin/tool-{n:02}")), &data)?;
        }
        let upstream = Registry::start();
        let mut image_list = String::new();
        for n in 0..sizes.images {
            let path = format!("bench/image-{n:02}:1");
            push_generated(
                upstream.addr(),
                &path,
                &[ImageSpec::amd64(&sizes.image_layers, 1000 + n as u64)],
            );
            image_list.push_str(UPSTREAM_NAME);
            image_list.push('/');
            image_list.push_str(&path);
            image_list.push('\n');
        }
        fs::write(context.join("manifests/imageList"), &image_list)?;
        fs::write(
            context.join("Kubefile"),
            "FROM scratch\nCOPY rootfs .\nCOPY manifests manifests\n",
        )?;
        Ok(BuildFixture {
            work,
            context,
            upstream,
        })
    }

    /// The rootfs files of the context.
    pub fn rootfs(&self) -> PathBuf {
        self.context.join("rootfs")
    }

    /// `bench.local=127.0.0.1:PORT`, as `--registry-mirror` takes it.
    pub fn mirror(&self) -> String {
        format!("{UPSTREAM_NAME}={}", self.upstream.addr())
    }

    /// The bytes of the context's regular files (what a context transfer sends).
    pub fn context_bytes(&self) -> io::Result<u64> {
        fn walk(dir: &Path) -> io::Result<u64> {
            let mut total = 0;
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    total += walk(&entry.path())?;
                } else if kind.is_file() {
                    total += entry.metadata()?.len();
                }
            }
            Ok(total)
        }
        walk(&self.context)
    }

    /// A path in the fixture's work directory.
    pub fn work_path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }
}
