//! Distribution of a rootfs to several SSH hosts (test hosts: `sshd`s in network namespaces,
//! testkit::netns), in the same run:
//!
//! - ours: `deploy::distribute` over one russh connection per host, all hosts at once;
//! - floor: `tar -c | ssh HOST tar -x` per host, all at once (OpenSSH, the fastest plain way);
//! - `scp -r` per host, all at once.
//!
//! Prints each time and the ratios ours / floor (goal: at most 1.2) and ours / scp (goal:
//! below 1). Full mode: 1 GiB in 20,000 files to 5 hosts; `--quick`: 16 MiB in 400 files to
//! 2 hosts. Needs root (network namespaces), `sshd`, `ssh`, `scp`, `tar`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bench::{quick_mode, ratio};
use deploy::distribute::distribute;
use deploy::ssh::{ConnectOptions, Connection, SshAuth, SshTarget};
use testkit::netns::TestHosts;

/// Where each copy lands on the hosts.
const DEST: &str = "/var/lib/deploy-bench";

/// Writes `files` files of seeded random data totalling about `total` bytes, in directories
/// of 100 files, sizes spread from a few KiB to a few hundred KiB like binaries and charts.
fn generate_tree(root: &Path, files: usize, total: u64) -> std::io::Result<()> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let average = total / files as u64;
    for index in 0..files {
        let dir = root.join(format!("d{:03}", index / 100));
        fs::create_dir_all(&dir)?;
        let size = usize::try_from((next() % (2 * average)).max(512)).unwrap_or(512);
        let mut bytes = Vec::with_capacity(size + 8);
        while bytes.len() < size {
            bytes.extend_from_slice(&next().to_le_bytes());
        }
        bytes.truncate(size);
        fs::File::create(dir.join(format!("f{index:05}")))?.write_all(&bytes)?;
    }
    Ok(())
}

fn ssh_options(hosts: &TestHosts) -> Vec<String> {
    vec![
        "-i".to_owned(),
        hosts.user_key_path().display().to_string(),
        "-o".to_owned(),
        format!("UserKnownHostsFile={}", hosts.known_hosts_path().display()),
        "-o".to_owned(),
        "StrictHostKeyChecking=yes".to_owned(),
        "-o".to_owned(),
        "BatchMode=yes".to_owned(),
    ]
}

fn clean(hosts: &TestHosts) {
    for host in hosts.hosts() {
        host.exec(&format!("rm -rf {DEST}"));
    }
}

fn wait_all(children: Vec<Child>, what: &str) {
    for mut child in children {
        let status = child.wait().expect("wait for a copy");
        assert!(status.success(), "{what} failed: {status}");
    }
}

/// `tar -c | ssh tar -x` to every host at once.
fn floor(hosts: &TestHosts, tree: &Path) -> Duration {
    clean(hosts);
    let options = ssh_options(hosts).join(" ");
    let started = Instant::now();
    let children = hosts
        .hosts()
        .iter()
        .map(|host| {
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "tar -C {} -cf - . | ssh {options} root@{} 'mkdir -p {DEST}/rootfs && tar -xf - -C {DEST}/rootfs'",
                    tree.display(),
                    host.ip
                ))
                .stdin(Stdio::null())
                .spawn()
                .expect("start tar | ssh")
        })
        .collect();
    wait_all(children, "tar | ssh");
    started.elapsed()
}

/// `scp -r` to every host at once.
fn scp(hosts: &TestHosts, tree: &Path) -> Duration {
    clean(hosts);
    for host in hosts.hosts() {
        host.exec(&format!("mkdir -p {DEST}"));
    }
    let started = Instant::now();
    let children = hosts
        .hosts()
        .iter()
        .map(|host| {
            Command::new("scp")
                .args(ssh_options(hosts))
                .args(["-q", "-r"])
                .arg(tree)
                .arg(format!("root@{}:{DEST}/rootfs", host.ip))
                .stdin(Stdio::null())
                .spawn()
                .expect("start scp")
        })
        .collect();
    wait_all(children, "scp -r");
    started.elapsed()
}

/// `deploy::distribute` to every host at once, connections included.
fn ours(
    hosts: &TestHosts,
    tree: &Path,
    runtime: &tokio::runtime::Runtime,
    round: usize,
) -> Duration {
    clean(hosts);
    let options = ConnectOptions {
        known_hosts: hosts.known_hosts_path().to_path_buf(),
        ..ConnectOptions::default()
    };
    let started = Instant::now();
    runtime.block_on(async {
        let work = hosts.hosts().iter().map(|host| {
            let target = SshTarget::new(
                IpAddr::V4(host.ip),
                "root",
                SshAuth::KeyFile {
                    path: hosts.user_key_path().to_path_buf(),
                    passphrase: None,
                },
            );
            let options = &options;
            async move {
                let connection = Connection::connect(&target, options)
                    .await
                    .expect("connect");
                distribute(&connection, tree, DEST, &format!("bench-{round}"), false)
                    .await
                    .expect("distribute")
            }
        });
        futures::future::join_all(work).await
    });
    started.elapsed()
}

fn main() {
    let (files, total, host_count, rounds) = if quick_mode() {
        (400, 16 << 20, 2, 1)
    } else {
        (20_000, 1 << 30, 5, 2)
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let tree = work.path().join("rootfs");
    generate_tree(&tree, files, total).expect("generate the rootfs");
    let hosts = TestHosts::start(host_count).expect("start the test hosts (root, sshd, ip needed)");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    println!(
        "distribution of {} MiB in {files} files to {host_count} hosts, {rounds} round(s), best time each:",
        total >> 20
    );
    let mut best: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut keep = |name: &'static str, time: Duration| {
        let entry = best.entry(name).or_insert(time);
        *entry = (*entry).min(time);
    };
    for round in 0..rounds {
        // Alternate the order so that caches favour no one.
        if round % 2 == 0 {
            keep("ours", ours(&hosts, &tree, &runtime, round));
            keep("floor", floor(&hosts, &tree));
            keep("scp", scp(&hosts, &tree));
        } else {
            keep("scp", scp(&hosts, &tree));
            keep("floor", floor(&hosts, &tree));
            keep("ours", ours(&hosts, &tree, &runtime, round));
        }
    }
    clean(&hosts);
    let (ours, floor, scp) = (best["ours"], best["floor"], best["scp"]);
    println!(
        "ours {:>8.3} s  tar|ssh {:>8.3} s  scp -r {:>8.3} s",
        ours.as_secs_f64(),
        floor.as_secs_f64(),
        scp.as_secs_f64()
    );
    println!(
        "ratio ours / tar|ssh floor {:.2} (goal <= 1.2)   ours / scp -r {:.2} (goal < 1)",
        ratio(ours, floor),
        ratio(ours, scp)
    );
}
