//! `sealer-build` when things go wrong: a registry that sends corrupted bytes, a pull killed
//! half way, a registry nobody listens for, and a layer that tries to write outside the export
//! directory. After each, the store must be consistent and nothing unverified or unsafe kept.

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::images::{ImageSpec, write_oci_layout};
use testkit::skopeo;

use common::{
    blob_files, failure, put_blob, sealer, sha256, sha256_file, shared_registry, skopeo_copy,
    success, write_large_layout, write_oci_archive,
};

/// What a [`Proxy`] does to the traffic besides forwarding it.
#[derive(Debug, Clone, Default)]
struct Behaviour {
    /// Bytes per second sent back to clients (no limit when `None`).
    rate: Option<u64>,
    /// A path (`/v2/<repo>/blobs/<digest>`): one byte of the body of the first response to a
    /// `GET` of it is flipped.
    corrupt: Option<String>,
}

/// What the connections of a [`Proxy`] share.
#[derive(Debug, Default)]
struct Counters {
    /// Bytes sent back to clients.
    served: AtomicU64,
    /// Whether a byte was flipped.
    corrupted: AtomicBool,
}

/// A TCP proxy on 127.0.0.1 in front of a registry, one thread pair per connection; it stops
/// accepting connections when dropped.
struct Proxy {
    addr: String,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `upstream`.
    fn start(upstream: &str, behaviour: Behaviour) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_owned();
        let (shared, stopping) = (Arc::clone(&counters), Arc::clone(&stop));
        thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (upstream, behaviour, shared) =
                    (upstream.clone(), behaviour.clone(), Arc::clone(&shared));
                thread::spawn(move || relay(&client, &upstream, &behaviour, &shared));
            }
        });
        Proxy {
            addr,
            counters,
            stop,
        }
    }

    /// Bytes sent back to clients so far.
    fn served(&self) -> u64 {
        self.counters.served.load(Ordering::SeqCst)
    }

    /// Whether a response byte was flipped.
    fn corrupted(&self) -> bool {
        self.counters.corrupted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// Forwards one client connection to the upstream and back.
fn relay(client: &TcpStream, upstream: &str, behaviour: &Behaviour, counters: &Counters) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let armed = Arc::new(AtomicBool::new(false));
    let requests = {
        let (from, to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let pattern = behaviour
            .corrupt
            .as_ref()
            .map(|path| format!("GET {path} HTTP/").into_bytes());
        let armed = Arc::clone(&armed);
        thread::spawn(move || forward_requests(from, to, pattern.as_deref(), &armed))
    };
    forward_responses(&server, client, behaviour.rate, &armed, counters);
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = requests.join();
}

/// Client to server: sets `armed` before forwarding a request that matches `pattern`.
fn forward_requests(
    mut from: TcpStream,
    mut to: TcpStream,
    pattern: Option<&[u8]>,
    armed: &AtomicBool,
) {
    let mut window = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(pattern) = pattern {
            window.extend_from_slice(&buf[..n]);
            if window.windows(pattern.len()).any(|w| w == pattern) {
                armed.store(true, Ordering::SeqCst);
                window.clear();
            } else {
                let keep = window.len().min(pattern.len());
                window.drain(..window.len() - keep);
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Server to client, at `rate` bytes per second if given. While `armed` and nothing was
/// corrupted yet, holds the response back until its headers and first body byte arrived, then
/// flips that byte.
fn forward_responses(
    mut from: &TcpStream,
    mut to: &TcpStream,
    rate: Option<u64>,
    armed: &AtomicBool,
    counters: &Counters,
) {
    let started = Instant::now();
    let mut sent = 0u64;
    let mut held = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        if armed.load(Ordering::SeqCst) && !counters.corrupted.load(Ordering::SeqCst) {
            held.extend_from_slice(chunk);
            let Some(end) = held.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            if held.len() <= end + 4 {
                continue;
            }
            held[end + 4] ^= 0xff;
            counters.corrupted.store(true, Ordering::SeqCst);
            armed.store(false, Ordering::SeqCst);
            chunk = &held;
        }
        for piece in chunk.chunks(16 * 1024) {
            if to.write_all(piece).is_err() {
                return;
            }
            sent += piece.len() as u64;
            counters
                .served
                .fetch_add(piece.len() as u64, Ordering::SeqCst);
            if let Some(rate) = rate {
                let due = Duration::from_micros(sent * 1_000_000 / rate);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    thread::sleep(wait);
                }
            }
        }
        held.clear();
    }
}

/// The names `index.json` of a store gives, after checking it parses.
fn stored_names(root: &Path) -> Vec<String> {
    let index: Value = serde_json::from_slice(&fs::read(root.join("images/index.json")).unwrap())
        .expect("index.json is JSON");
    index["manifests"]
        .as_array()
        .expect("index.json has a manifests array")
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_owned)
        .collect()
}

/// Checks that every blob file of a store hashes to its name.
fn assert_blobs_verified(root: &Path) {
    for file in blob_files(root) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            sha256_file(&file),
            format!("sha256:{name}"),
            "blob file {name} does not hash to its name"
        );
    }
}

#[test]
fn a_corrupted_blob_is_refused_and_not_stored() {
    let registry = shared_registry();
    let work = tempfile::tempdir().unwrap();
    let image = write_oci_layout(
        &work.path().join("layout"),
        "1",
        &[ImageSpec::amd64(&[400_000, 50_000], 91)],
    );
    let repo = "it/corrupted";
    skopeo::copy(
        &image.oci_ref(),
        &format!("docker://{}/{repo}:1", registry.addr()),
    );
    let chosen = &image.layers[0];
    let proxy = Proxy::start(
        registry.addr(),
        Behaviour {
            corrupt: Some(format!("/v2/{repo}/blobs/{chosen}")),
            ..Behaviour::default()
        },
    );
    let root = tempfile::tempdir().unwrap();
    let through_proxy = format!("{}/{repo}:1", proxy.addr);
    let (stdout, stderr) = failure(sealer(root.path()).args(["pull", &through_proxy]));
    assert!(proxy.corrupted(), "the proxy flipped no byte");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(&format!("blob {chosen} failed verification")),
        "{stderr}"
    );
    assert!(
        !root
            .path()
            .join("images/blobs/sha256")
            .join(&chosen[7..])
            .exists()
    );
    assert!(
        !root
            .path()
            .join("tmp")
            .join(format!("{}.partial", &chosen[7..]))
            .exists()
    );
    assert_eq!(stored_names(root.path()), Vec::<String>::new());
    assert_blobs_verified(root.path());

    let direct = format!("{}/{repo}:1", registry.addr());
    let (stdout, _) = success(sealer(root.path()).args(["pull", "-q", &direct]));
    assert_eq!(stdout.trim(), image.digest);
    assert_eq!(stored_names(root.path()), [direct]);
    assert_eq!(
        sha256_file(&root.path().join("images/blobs/sha256").join(&chosen[7..])),
        *chosen
    );
}

#[test]
fn a_killed_pull_leaves_a_consistent_store_and_resumes() {
    const SIZE: u64 = 200 << 20;
    const KILL_AT: u64 = 20 << 20;
    let registry = shared_registry();
    let work = tempfile::tempdir().unwrap();
    let image = write_large_layout(&work.path().join("layout"), "1", SIZE, 92);
    let repo = "it/killed";
    skopeo_copy(
        &[],
        &image.oci_ref(),
        &format!("docker://{}/{repo}:1", registry.addr()),
    );
    let layer = &image.layers[0];
    let layer_size = fs::metadata(image.layout.join("blobs/sha256").join(&layer[7..]))
        .unwrap()
        .len();

    let slow = Proxy::start(
        registry.addr(),
        Behaviour {
            rate: Some(8 << 20),
            ..Behaviour::default()
        },
    );
    let root = tempfile::tempdir().unwrap();
    let partial = root
        .path()
        .join("tmp")
        .join(format!("{}.partial", &layer[7..]));
    let mut child = StdCommand::new(env!("CARGO_BIN_EXE_sealer-build"))
        .arg("--root")
        .arg(root.path())
        .args(["pull", "-q", &format!("{}/{repo}:1", slow.addr)])
        .env("DOCKER_CONFIG", root.path().join("docker-config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fs::metadata(&partial).map_or(0, |m| m.len()) <= KILL_AT {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended before it was killed"
        );
        assert!(Instant::now() < deadline, "the partial file did not grow");
        thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(slow);

    let kept = fs::metadata(&partial).unwrap().len();
    eprintln!("the killed pull left {kept} of {layer_size} bytes");
    assert!(kept > KILL_AT && kept < layer_size, "{kept}");
    assert_eq!(stored_names(root.path()), Vec::<String>::new());
    assert_blobs_verified(root.path());
    assert!(
        !root
            .path()
            .join("images/blobs/sha256")
            .join(&layer[7..])
            .exists()
    );

    let counting = Proxy::start(registry.addr(), Behaviour::default());
    let name = format!("{}/{repo}:1", counting.addr);
    let (stdout, _) = success(sealer(root.path()).args(["pull", "-q", &name]));
    assert_eq!(stdout.trim(), image.digest);
    assert_eq!(stored_names(root.path()), [name]);
    let served = counting.served();
    eprintln!("the second pull was served {served} bytes");
    assert!(
        served >= layer_size - kept && served < layer_size - kept + (1 << 20),
        "the second pull was served {served} bytes; {} were missing",
        layer_size - kept
    );
    assert!(!partial.exists());
    assert_eq!(
        sha256_file(&root.path().join("images/blobs/sha256").join(&layer[7..])),
        *layer
    );
}

#[test]
fn an_unreachable_registry_fails_quickly_and_clearly() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let name = format!("{closed}/it/nowhere:1");
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let image = write_oci_layout(
        &work.path().join("layout"),
        "1",
        &[ImageSpec::amd64(&[1000], 93)],
    );
    let archive = work.path().join("image.tar");
    write_oci_archive(&image.layout, &name, &archive);
    success(sealer(root.path()).arg("load").arg("-i").arg(&archive));

    for (args, action) in [
        (vec!["pull", name.as_str()], "fetching the manifest failed"),
        (vec!["push", name.as_str()], "checking a blob failed"),
        (
            vec!["login", closed.as_str(), "-u", "u", "-p", "p"],
            "logging in failed",
        ),
    ] {
        let started = Instant::now();
        let (_, stderr) = failure(
            sealer(root.path())
                .args(&args)
                .timeout(Duration::from_secs(60)),
        );
        let took = started.elapsed();
        eprintln!("{} against a closed port took {took:?}", args[0]);
        assert!(took < Duration::from_secs(30), "{args:?} took {took:?}");
        assert!(
            stderr.contains(&closed) && stderr.contains(action),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("Connection refused"), "{args:?}: {stderr}");
    }
}

/// An uncompressed layer with `inside.txt` and an entry named `../escape`.
fn escaping_layer() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, "inside.txt", &b"fine\n"[..])
        .unwrap();
    // The tar crate refuses `..` in paths it is given, so the name goes into the header as is.
    let mut header = tar::Header::new_ustar();
    header.as_ustar_mut().unwrap().name[..9].copy_from_slice(b"../escape");
    header.set_size(8);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append(&header, &b"escaped\n"[..]).unwrap();
    tar.into_inner().unwrap()
}

#[test]
fn export_refuses_a_layer_entry_that_climbs_out() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let layer = escaping_layer();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}}))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put_blob(&layout, &config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": put_blob(&layout, &layer), "size": layer.len()}]}))
    .unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": put_blob(&layout, &manifest), "size": manifest.len()}]});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let name = "127.0.0.1:5000/it/escape:1";
    let archive = work.path().join("escape.tar");
    write_oci_archive(&layout, name, &archive);

    let root = tempfile::tempdir().unwrap();
    let (stdout, _) = success(sealer(root.path()).arg("load").arg("-i").arg(&archive));
    assert_eq!(stdout, format!("Loaded image: {name}\n"));
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("rootfs");
    let (_, stderr) = failure(sealer(root.path()).args(["export", name]).arg(&target));
    assert!(
        stderr.contains("layer entry `../escape`: paths may not contain `..`"),
        "{stderr}"
    );
    let outside: Vec<String> = fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        outside,
        ["rootfs"],
        "something was written next to the target"
    );
    match fs::symlink_metadata(parent.path().join("escape")) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        other => panic!("../escape was written: {other:?}"),
    }
}
