//! `sealer-build build --buildkit docker` against `docker build` with the same frontend, in
//! one run, on the cold-build fixture of `build-bench` (random rootfs files and an upstream
//! registry of random-layer images named by the image list).
//!
//! - cold builds (build cache pruned and images removed before each), alternating which
//!   client goes first: our total over docker's (goal: at most 1.1, the client is not the
//!   bottleneck);
//! - the context transfer rate for the cold builds (goal: at least 200 MiB/s for the 300 MiB
//!   of the full fixture), as the daemon reports it (its `transferring context: … Ns done`
//!   line) for both clients, so the two are compared on the same clock;
//! - the rate of our sender alone: the same context through `SyncService` to an in-process
//!   receiver that requests every file and discards it, over gRPC on a Unix socket pair (what
//!   the client can do when the daemon is not the limit).
//!
//! Needs a dockerd 20.10 (`SEALER_TEST_DOCKER_HOST`) and the static frontend binary
//! (`SEALER_TEST_FRONTEND_BIN`), as `scripts/test` provides them; prints why it is skipped
//! without them (fails under CI=true). Full mode: 2 rounds; `--quick`: 1 round on the small
//! fixture (a smoke run for CI).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench::{BuildFixture, FixtureSizes, MIB, quick_mode, ratio, sibling_binary};
use bkclient::filesync::{SyncService, SyncedDir, can_request_data};
use bollard_buildkit_proto::fsutil::types::Packet;
use bollard_buildkit_proto::fsutil::types::packet::PacketType;
use bollard_buildkit_proto::moby::filesync::packet::file_sync_client::FileSyncClient;
use bollard_buildkit_proto::moby::filesync::packet::file_sync_server::FileSyncServer;
use hyper_util::rt::TokioIo;
use testkit::docker::{self, DOCKER_CLI, Dockerd};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Endpoint, Server};

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

/// What one cold build took: wall time, and the context transfer as the daemon timed it.
struct ColdBuild {
    elapsed: Duration,
    transfer_seconds: f64,
}

/// The seconds of the `transferring context: 314.65MB 4.4s done` lines BuildKit's plain
/// progress shows (the daemon's clock, the same for both clients), summed: the context
/// directory is asked for twice, once for `.dockerignore` and once for the files.
fn daemon_transfer_seconds(progress: &str) -> f64 {
    let seconds: Vec<f64> = progress
        .lines()
        .filter(|line| line.contains("transferring context:"))
        .filter_map(|line| {
            let seconds = line.strip_suffix(" done")?.rsplit(' ').next()?;
            seconds.strip_suffix('s')?.parse::<f64>().ok()
        })
        .collect();
    assert!(
        !seconds.is_empty(),
        "no timed `transferring context: … done` line in:\n{progress}"
    );
    seconds.iter().sum()
}

/// Our build, with BuildKit's plain progress on standard error.
fn ours(
    dockerd: &Dockerd,
    fixture: &BuildFixture,
    frontend: &str,
    docker_config: &Path,
) -> ColdBuild {
    let start = Instant::now();
    let output = checked(
        Command::new(sibling_binary("sealer-build"))
            .env("DOCKER_HOST", dockerd.host())
            .env("DOCKER_CONFIG", docker_config)
            .args(["--registry-mirror", &fixture.mirror(), "build"])
            .args(["--buildkit", "docker", "--frontend-image", frontend])
            .args(["--network", "host", "--progress", "plain", "-t", OURS])
            .arg(&fixture.context),
    );
    ColdBuild {
        elapsed: start.elapsed(),
        transfer_seconds: daemon_transfer_seconds(&String::from_utf8_lossy(&output.stderr)),
    }
}

/// `docker build` with the frontend chosen by build argument.
fn dockers(dockerd: &Dockerd, fixture: &BuildFixture, frontend: &str) -> ColdBuild {
    let start = Instant::now();
    let output = checked(
        dockerd
            .docker()
            .env("DOCKER_BUILDKIT", "1")
            .args([
                "build",
                "--progress",
                "plain",
                "--network",
                "host",
                "-t",
                DOCKERS,
            ])
            .arg("--build-arg")
            .arg(format!("BUILDKIT_SYNTAX={frontend}"))
            .arg("--build-arg")
            .arg(format!("SEALER_REGISTRY_MIRRORS={}", fixture.mirror()))
            .arg("-f")
            .arg(fixture.context.join("Kubefile"))
            .arg(&fixture.context),
    );
    ColdBuild {
        elapsed: start.elapsed(),
        transfer_seconds: daemon_transfer_seconds(&String::from_utf8_lossy(&output.stderr)),
    }
}

/// Sends `context` through our `SyncService` to a receiver that asks for every file at once
/// and discards the data, over gRPC on a Unix socket pair; returns the bytes and seconds.
fn sender_alone(context: &Path) -> io::Result<(u64, f64)> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let dirs = BTreeMap::from([(
            "context".to_owned(),
            SyncedDir {
                root: context.to_path_buf(),
                excludes: None,
            },
        )]);
        let service = SyncService::new(dirs);
        let (client_io, server_io) = tokio::net::UnixStream::pair()?;
        let server = Server::builder().add_service(FileSyncServer::new(service.clone()));
        tokio::spawn(
            server.serve_with_incoming(futures::stream::iter([Ok::<_, io::Error>(server_io)])),
        );
        let slot = Arc::new(Mutex::new(Some(client_io)));
        let channel = Endpoint::from_static("http://sender.bench")
            .connect_with_connector(tower::service_fn(move |_| {
                let io = slot.lock().ok().and_then(|mut slot| slot.take());
                async move {
                    io.map(TokioIo::new)
                        .ok_or_else(|| io::Error::other("the socket pair was already used"))
                }
            }))
            .await
            .map_err(io::Error::other)?;

        let start = Instant::now();
        let (requests, outgoing) = mpsc::unbounded_channel();
        let mut request = tonic::Request::new(UnboundedReceiverStream::new(outgoing));
        request.metadata_mut().insert(
            "dir-name",
            tonic::metadata::MetadataValue::from_static("context"),
        );
        let mut incoming = FileSyncClient::new(channel)
            .diff_copy(request)
            .await
            .map_err(io::Error::other)?
            .into_inner();
        let (mut listed, mut open, mut bytes) = (0u32, 0usize, 0u64);
        let mut listing_done = false;
        while !listing_done || open > 0 {
            let Some(packet) = incoming.message().await.map_err(io::Error::other)? else {
                break;
            };
            match PacketType::try_from(packet.r#type) {
                Ok(PacketType::PacketStat) => match packet.stat {
                    Some(stat) => {
                        if can_request_data(stat.mode) {
                            open += 1;
                            let _ = requests.send(Packet {
                                r#type: PacketType::PacketReq.into(),
                                id: listed,
                                ..Packet::default()
                            });
                        }
                        listed += 1;
                    }
                    None => listing_done = true,
                },
                Ok(PacketType::PacketData) if packet.data.is_empty() => open -= 1,
                Ok(PacketType::PacketData) => bytes += packet.data.len() as u64,
                _ => return Err(io::Error::other(format!("unexpected packet {packet:?}"))),
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let _ = requests.send(Packet {
            r#type: PacketType::PacketFin.into(),
            ..Packet::default()
        });
        Ok((bytes, seconds))
    })
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

    let mut our_builds = Vec::new();
    let mut docker_builds = Vec::new();
    for round in 0..rounds {
        let mut run_ours = || {
            make_cold(&dockerd);
            our_builds.push(ours(&dockerd, &fixture, &frontend, &docker_config));
        };
        if round % 2 == 0 {
            run_ours();
            make_cold(&dockerd);
            docker_builds.push(dockers(&dockerd, &fixture, &frontend));
        } else {
            make_cold(&dockerd);
            docker_builds.push(dockers(&dockerd, &fixture, &frontend));
            run_ours();
        }
    }
    let total = |builds: &[ColdBuild]| builds.iter().map(|b| b.elapsed).sum::<Duration>();
    let transfer = |builds: &[ColdBuild]| builds.iter().map(|b| b.transfer_seconds).sum::<f64>();
    println!(
        "buildkit-bench cold build through --buildkit docker: {:.2} s against docker build {:.2} s over {rounds} round(s): ratio {:.3} (goal <= 1.1)",
        total(&our_builds).as_secs_f64(),
        total(&docker_builds).as_secs_f64(),
        ratio(total(&our_builds), total(&docker_builds)),
    );
    let context_bytes = fixture.context_bytes()? * rounds;
    println!(
        "buildkit-bench context transfer as dockerd timed it: ours {:.0} MiB/s, docker CLI's {:.0} MiB/s ({} MiB per build; goal >= 200)",
        mib_per_second(context_bytes, transfer(&our_builds)),
        mib_per_second(context_bytes, transfer(&docker_builds)),
        context_bytes / rounds / MIB as u64,
    );
    let (bytes, seconds) = sender_alone(&fixture.context)?;
    println!(
        "buildkit-bench our sender alone (to a discarding receiver): {} MiB in {seconds:.2} s: {:.0} MiB/s",
        bytes / MIB as u64,
        mib_per_second(bytes, seconds),
    );
    Ok(())
}
