//! `sealer registry serve`: it prints where it listens, serves the storage given by flags or
//! by a distribution config file, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

use testkit::images::{ImageSpec, push_generated, seed_of};
use testkit::registry::Registry;

/// Starts `sealer registry serve` with `args`; returns the child and its output's lines.
fn spawn_serve(args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealer"))
        .arg("registry")
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    (child, BufReader::new(stdout).lines())
}

/// Starts `sealer registry serve` with `args`; returns the child and the URL it printed.
fn serve(args: &[&str]) -> (Child, String) {
    let (child, mut lines) = spawn_serve(args);
    let line = lines.next().unwrap().unwrap();
    let url = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    (child, url)
}

fn terminate(mut child: Child) {
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "sealer registry serve exited with {status}"
    );
}

fn manifest_status(url: &str, path: &str) -> u16 {
    let addr = url.strip_prefix("http://").unwrap();
    testkit::http::get(addr, path, None).unwrap().status
}

#[test]
fn serves_a_storage_from_flags_or_a_config_file() {
    let writer = Registry::start();
    push_generated(
        writer.addr(),
        "served/app:1",
        &[ImageSpec::amd64(&[1000], seed_of("served"))],
    );
    let storage = writer.storage_dir().display().to_string();

    let (child, url) = serve(&["--addr", "127.0.0.1:0", "--storage", &storage]);
    assert_eq!(manifest_status(&url, "/v2/"), 200);
    assert_eq!(manifest_status(&url, "/v2/served/app/tags/list"), 200);
    assert_eq!(manifest_status(&url, "/v2/served/other/tags/list"), 404);
    terminate(child);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry_config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {storage:?}\nhttp:\n  addr: 127.0.0.1:0\n"
        ),
    )
    .unwrap();
    let (child, url) = serve(&["--config", config.to_str().unwrap()]);
    assert_eq!(manifest_status(&url, "/v2/served/app/tags/list"), 200);
    terminate(child);
}

#[test]
fn the_originals_remote_registries_become_pull_through_upstreams() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry_config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {:?}\nhttp:\n  addr: 127.0.0.1:0\nproxy:\n  on: true\n  remoteregistries:\n    - url: https://quay.io\n      username: robot\n      password: not-printed-9\n",
            dir.path().join("storage").display().to_string()
        ),
    )
    .unwrap();
    let (child, mut lines) = spawn_serve(&["--config", config.to_str().unwrap()]);
    let listening = lines.next().unwrap().unwrap();
    assert!(
        listening.starts_with("listening on http://127.0.0.1:"),
        "{listening}"
    );
    let upstream = lines.next().unwrap().unwrap();
    assert_eq!(
        upstream,
        "pull-through cache of quay.io at https://quay.io/"
    );
    assert!(!listening.contains("not-printed-9"));
    terminate(child);
}

/// Writes `text` to `config`, runs `sealer registry serve --config` on it, expects exit 1 and
/// returns its standard error.
fn refused_config(config: &std::path::Path, text: &str) -> String {
    std::fs::write(config, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sealer"))
        .args(["registry", "serve", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_bad_config_fails_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry_config.yml");
    let stderr = refused_config(&config, "http:\n  addr: 5000\n");
    assert!(
        stderr.contains(&format!("{}:2:9: http.addr", config.display())),
        "{stderr}"
    );
    let stderr = refused_config(
        &config,
        "storage:\n  filesystem:\n    rootdirectory: /tmp\nproxy:\n  upstreams:\n    - name: a.test\n      url: ftp://a.test\n",
    );
    assert!(
        stderr.contains(&format!("{}:7:", config.display())) && stderr.contains("ftp"),
        "{stderr}"
    );
    let missing = Command::new(env!("CARGO_BIN_EXE_sealer"))
        .args(["registry", "serve", "--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--storage"));
}

/// Sends `head` (a request line and headers, without the blank line) and `body` on a new
/// connection; returns the response's status line and headers.
fn raw_request(addr: &str, head: &str, body: &[u8]) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// Starts a blob upload to `killed/blob`; returns its path and the separator its query takes.
fn start_upload(addr: &str, url: &str) -> (String, char) {
    let started = raw_request(
        addr,
        "POST /v2/killed/blob/blobs/uploads/ HTTP/1.1\r\nContent-Length: 0",
        b"",
    );
    assert!(started.starts_with("HTTP/1.1 202"), "{started}");
    let location = started
        .lines()
        .find_map(|line| {
            line.strip_prefix("location: ")
                .or_else(|| line.strip_prefix("Location: "))
        })
        .unwrap()
        .trim()
        .to_owned();
    let path = location.strip_prefix(url).unwrap_or(&location).to_owned();
    let separator = if path.contains('?') { '&' } else { '?' };
    (path, separator)
}

#[test]
fn a_server_killed_mid_upload_leaves_no_blob_and_serves_after_restart() {
    use sha2::Digest as _;
    use std::io::Write as _;
    let storage = tempfile::tempdir().unwrap();
    let storage_arg = storage.path().display().to_string();
    let args = [
        "--addr",
        "127.0.0.1:0",
        "--storage",
        storage_arg.as_str(),
        "--enable-push",
    ];
    let (mut child, url) = serve(&args);
    let addr = url.strip_prefix("http://").unwrap().to_owned();
    let data = vec![7u8; 8 * 1024 * 1024];
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&data)));

    let (path, separator) = start_upload(&addr, &url);
    // Half the blob arrives, then the server is killed.
    let mut upload = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        upload,
        "PUT {path}{separator}digest={digest} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .unwrap();
    upload.write_all(&data[..data.len() / 2]).unwrap();
    upload.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(upload);

    let (child, url) = serve(&args);
    let blob = format!("/v2/killed/blob/blobs/{digest}");
    assert_eq!(
        manifest_status(&url, &blob),
        404,
        "no partial blob is visible"
    );
    let data_file = storage.path().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &digest[7..9],
        &digest[7..]
    ));
    assert!(!data_file.exists(), "no blob file was committed");
    // The same upload, whole, succeeds on the restarted server.
    let addr = url.strip_prefix("http://").unwrap().to_owned();
    let (path, separator) = start_upload(&addr, &url);
    let done = raw_request(
        &addr,
        &format!(
            "PUT {path}{separator}digest={digest} HTTP/1.1\r\nContent-Length: {}",
            data.len()
        ),
        &data,
    );
    assert!(done.starts_with("HTTP/1.1 201"), "{done}");
    assert_eq!(manifest_status(&url, &blob), 200);
    terminate(child);
}
