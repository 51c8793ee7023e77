//! The built-in registry serving blobs from storage, against the stock `docker-registry`
//! serving the same directory, in the same run: the build fixture's images (full mode: 20
//! images of 50 MiB; `--quick`: 3 of 1 MiB) pulled by 8 concurrent `skopeo copy` processes
//! from each server in turn (two rounds, the order alternating). Prints each server's
//! throughput and the ratio ours / stock (goal: at least 1).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bench::{BuildFixture, FixtureSizes, quick_mode, sibling_binary};
use testkit::registry::Registry;

/// Concurrent pulls.
const CLIENTS: usize = 8;

/// The built-in registry over `storage`, started as `sealer registry serve`.
struct Ours {
    child: Child,
    addr: String,
}

impl Ours {
    fn start(storage: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(sibling_binary("sealer"))
            .args(["registry", "serve", "--addr", &addr, "--storage"])
            .arg(storage)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sealer registry serve (build the cli crate first)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "sealer registry serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ours { child, addr }
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pulls every image from `addr` with [`CLIENTS`] concurrent skopeo processes, each taking
/// every CLIENTS-th image; returns the wall time.
fn pull_all(addr: &str, images: &[String], work: &Path) -> Duration {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).expect("a directory for the pulled images");
    let started = Instant::now();
    let workers: Vec<Child> = (0..CLIENTS)
        .filter_map(|client| {
            let mine: Vec<&String> = images.iter().skip(client).step_by(CLIENTS).collect();
            if mine.is_empty() {
                return None;
            }
            let script = mine
                .iter()
                .map(|image| {
                    let destination = work.join(image.replace(['/', ':'], "_"));
                    format!(
                        "skopeo copy -q --insecure-policy --src-tls-verify=false docker://{addr}/{image} dir:{} || exit 1",
                        destination.display()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Some(
                Command::new("sh")
                    .arg("-c")
                    .arg(script)
                    .spawn()
                    .expect("start skopeo"),
            )
        })
        .collect();
    for mut worker in workers {
        let status = worker.wait().expect("wait for skopeo");
        assert!(status.success(), "a skopeo pull from {addr} failed");
    }
    started.elapsed()
}

fn main() {
    let sizes = FixtureSizes::from_mode();
    let fixture = BuildFixture::generate(&sizes).expect("generate the fixture");
    let storage = fixture.upstream.storage_dir().to_path_buf();
    let images: Vec<String> = (0..sizes.images)
        .map(|n| format!("bench/image-{n:02}:1"))
        .collect();
    let bytes: usize = sizes.images * sizes.image_layers.iter().sum::<usize>();
    let stock = Registry::builder().storage(&storage).start();
    let ours = Ours::start(&storage);
    let work = fixture.work_path("pulled");
    let rounds = if quick_mode() { 1 } else { 2 };
    let (mut ours_best, mut stock_best) = (Duration::MAX, Duration::MAX);
    for round in 0..rounds {
        if round % 2 == 0 {
            ours_best = ours_best.min(pull_all(&ours.addr, &images, &work));
            stock_best = stock_best.min(pull_all(stock.addr(), &images, &work));
        } else {
            stock_best = stock_best.min(pull_all(stock.addr(), &images, &work));
            ours_best = ours_best.min(pull_all(&ours.addr, &images, &work));
        }
    }
    let mib = f64::from(u32::try_from(bytes / 1024).unwrap_or(u32::MAX)) / 1024.0;
    let rate = |time: Duration| mib / time.as_secs_f64();
    println!(
        "{} images, {} MiB, {CLIENTS} concurrent skopeo pulls, best of {rounds}:",
        sizes.images,
        bytes / (1024 * 1024)
    );
    println!(
        "ours {:>7.3} s ({:>6.1} MiB/s)  docker-registry {:>7.3} s ({:>6.1} MiB/s)  throughput ours / stock {:.2} (goal >= 1)",
        ours_best.as_secs_f64(),
        rate(ours_best),
        stock_best.as_secs_f64(),
        rate(stock_best),
        rate(ours_best) / rate(stock_best)
    );
}
