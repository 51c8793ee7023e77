//! `sealer-build build --buildkit docker` against `docker build` with the same frontend, in
//! one run, on the cold-build fixture of `build-bench` (random rootfs files and an upstream
//! registry of random-layer images named by the image list).
//!
//! - cold builds (build cache pruned and images removed before each), alternating which
//!   client goes first: our total over docker's (goal: at most 1.1, the client is not the
//!   bottleneck);
//! - the context transfer rate our session reports for the cold builds (goal: at least
//!   200 MiB/s for the 300 MiB of the full fixture).
//!
//! Needs a dockerd 20.10 (`SEALER_TEST_DOCKER_HOST`) and the static frontend binary
//! (`SEALER_TEST_FRONTEND_BIN`), as `scripts/test` provides them; prints why it is skipped
//! without them (fails under CI=true). Full mode: 2 rounds; `--quick`: 1 round on the small
//! fixture (a smoke run for CI).

use std::io;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bench::{BuildFixture, FixtureSizes, MIB, quick_mode, ratio, sibling_binary};
use testkit::docker::{self, DOCKER_CLI, Dockerd};

/// The image names each client builds.
const OURS: &str = "bench/buildkit-client:1";
const DOCKERS: &str = "bench/docker-build:1";

fn checked(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Forgets every cached step and both images, so the next build is cold.
fn make_cold(dockerd: &Dockerd) {
    checked(dockerd.docker().args(["builder", "prune", "-af"]));
    // Absent before the first build: the status does not matter.
    let _ = dockerd
        .docker()
        .args(["image", "rm", OURS, DOCKERS])
        .output();
}

/// Our build; returns its time and the bytes and seconds of the context transfer.
fn ours(
    dockerd: &Dockerd,
    fixture: &BuildFixture,
    frontend: &str,
    docker_config: &Path,
) -> (Duration, u64, f64) {
    let start = Instant::now();
    let output = checked(
        Command::new(sibling_binary("sealer-build"))
            .env("DOCKER_HOST", dockerd.host())
            .env("DOCKER_CONFIG", docker_config)
            .args(["--registry-mirror", &fixture.mirror(), "-q", "build"])
            .args(["--buildkit", "docker", "--frontend-image", frontend])
            .args(["--network", "host", "--format", "json", "-t", OURS])
            .arg(&fixture.context),
    );
    let elapsed = start.elapsed();
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the build's JSON summary");
    let context = &summary["transfers"]["context"];
    (
        elapsed,
        context["bytes"].as_u64().unwrap_or(0),
        context["seconds"].as_f64().unwrap_or(0.0),
    )
}

/// `docker build` with the frontend chosen by build argument.
fn dockers(dockerd: &Dockerd, fixture: &BuildFixture, frontend: &str) -> Duration {
    let start = Instant::now();
    checked(
        dockerd
            .docker()
            .env("DOCKER_BUILDKIT", "1")
            .args(["build", "-q", "--network", "host", "-t", DOCKERS])
            .arg("--build-arg")
            .arg(format!("BUILDKIT_SYNTAX={frontend}"))
            .arg("--build-arg")
            .arg(format!("SEALER_REGISTRY_MIRRORS={}", fixture.mirror()))
            .arg("-f")
            .arg(fixture.context.join("Kubefile"))
            .arg(&fixture.context),
    );
    start.elapsed()
}

/// Transfer rate; byte counts here stay far below f64's 2^52 exact range.
#[allow(clippy::cast_precision_loss)]
fn mib_per_second(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / MIB as f64 / seconds.max(1e-9)
}

fn main() -> io::Result<()> {
    let (Some(dockerd), Some(bin)) = (Dockerd::from_env(), docker::frontend_bin_from_env()) else {
        return Ok(());
    };
    assert!(
        Path::new(DOCKER_CLI).is_file(),
        "{DOCKER_CLI} is missing (Debian's docker.io)"
    );
    let sizes = FixtureSizes::from_mode();
    let fixture = BuildFixture::generate(&sizes)?;
    let frontend = docker::frontend_image(&bin, &fixture.upstream, "sealer-frontend:bench");
    let docker_config = fixture.work_path("docker-config");
    std::fs::create_dir_all(&docker_config)?;
    let rounds = if quick_mode() { 1 } else { 2 };

    let (mut our_total, mut docker_total) = (Duration::ZERO, Duration::ZERO);
    let (mut sent_bytes, mut sent_seconds) = (0u64, 0f64);
    for round in 0..rounds {
        let mut run_ours = || {
            make_cold(&dockerd);
            let (elapsed, bytes, seconds) = ours(&dockerd, &fixture, &frontend, &docker_config);
            our_total += elapsed;
            sent_bytes += bytes;
            sent_seconds += seconds;
        };
        if round % 2 == 0 {
            run_ours();
            make_cold(&dockerd);
            docker_total += dockers(&dockerd, &fixture, &frontend);
        } else {
            make_cold(&dockerd);
            docker_total += dockers(&dockerd, &fixture, &frontend);
            run_ours();
        }
    }
    let rate = mib_per_second(sent_bytes, sent_seconds);
    println!(
        "buildkit-bench cold build through --buildkit docker: {:.2} s against docker build {:.2} s over {rounds} round(s): ratio {:.3} (goal <= 1.1)",
        our_total.as_secs_f64(),
        docker_total.as_secs_f64(),
        ratio(our_total, docker_total),
    );
    println!(
        "buildkit-bench context transfer: {} MiB in {sent_seconds:.2} s: {rate:.0} MiB/s (goal >= 200)",
        sent_bytes / MIB as u64,
    );
    Ok(())
}
