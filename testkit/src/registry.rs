//! A real docker-distribution registry (Debian's `docker-registry`, distribution 2.8) for a
//! test: it listens on `127.0.0.1` only, stores into a filesystem directory, may require
//! htpasswd credentials, logs at level info to a file, and is killed when dropped.
//!
//! ```no_run
//! let registry = testkit::registry::Registry::builder()
//!     .htpasswd("user", "secret")
//!     .start();
//! assert_eq!(registry.get("/v2/").unwrap().status, 401);
//! ```

use std::fs::{self, File};
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tempfile::TempDir;

use crate::http;

/// The registry binary of Debian's `docker-registry` package.
pub const DOCKER_REGISTRY: &str = "/usr/bin/docker-registry";
/// The htpasswd tool of Debian's `apache2-utils` package.
pub const HTPASSWD: &str = "/usr/bin/htpasswd";
/// How long a registry may take to answer `GET /v2/` after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How many free ports are tried when another process takes the chosen port first.
const PORT_ATTEMPTS: usize = 5;
/// How many log lines a failure message shows.
const LOG_TAIL_LINES: usize = 40;
/// Pause between two readiness checks.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A running `docker-registry serve` on `127.0.0.1:<free port>`; killed and reaped on drop.
pub struct Registry {
    child: Child,
    addr: String,
    storage_dir: PathBuf,
    log_path: PathBuf,
    credentials: Option<(String, String)>,
    _work_dir: TempDir,
}

/// How to start a [`Registry`]: its storage directory and optional htpasswd credentials.
#[derive(Debug, Clone, Default)]
pub struct RegistryBuilder {
    storage: Option<PathBuf>,
    credentials: Option<(String, String)>,
}

/// Why one start attempt did not give a ready registry.
enum StartFailure {
    /// Another process bound the port between the free-port probe and the registry's start.
    PortTaken,
    /// Anything else, described for the panic message.
    Other(String),
}

impl RegistryBuilder {
    /// Stores into `dir` (the registry's `rootdirectory`) instead of a fresh temporary one.
    #[must_use]
    pub fn storage(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage = Some(dir.into());
        self
    }

    /// Requires HTTP basic authentication with these credentials (htpasswd, bcrypt).
    #[must_use]
    pub fn htpasswd(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Starts the registry and waits until `GET /v2/` answers; panics with the log tail when it
    /// does not within [`READY_TIMEOUT`].
    pub fn start(self) -> Registry {
        let work_dir = tempfile::Builder::new()
            .prefix("testkit-registry-")
            .tempdir()
            .expect("create the registry's temporary directory");
        let storage_dir = self
            .storage
            .unwrap_or_else(|| work_dir.path().join("storage"));
        fs::create_dir_all(&storage_dir).unwrap_or_else(|e| {
            panic!("create the registry storage {}: {e}", storage_dir.display())
        });
        let htpasswd_file = self.credentials.as_ref().map(|(user, password)| {
            let path = work_dir.path().join("htpasswd");
            fs::write(&path, htpasswd_line(user, password)).expect("write the htpasswd file");
            path
        });
        let log_path = work_dir.path().join("registry.log");
        let config_path = work_dir.path().join("config.yml");
        for _ in 0..PORT_ATTEMPTS {
            let addr = format!("127.0.0.1:{}", free_port());
            fs::write(
                &config_path,
                config_yaml(&addr, &storage_dir, htpasswd_file.as_deref()),
            )
            .expect("write the registry configuration");
            let mut child = spawn(&config_path, &log_path);
            match wait_ready(&mut child, &addr, &log_path) {
                Ok(()) => {
                    return Registry {
                        child,
                        addr,
                        storage_dir,
                        log_path,
                        credentials: self.credentials,
                        _work_dir: work_dir,
                    };
                }
                Err(failure) => {
                    stop(&mut child);
                    if let StartFailure::Other(reason) = failure {
                        panic!(
                            "docker-registry on {addr} did not start: {reason}\n--- last lines of {} ---\n{}",
                            log_path.display(),
                            log_tail(&log_path)
                        );
                    }
                }
            }
        }
        panic!(
            "docker-registry found no free port on 127.0.0.1 in {PORT_ATTEMPTS} attempts\n--- last lines of {} ---\n{}",
            log_path.display(),
            log_tail(&log_path)
        );
    }
}

/// The sizes of the blobs a registry storage directory holds, by digest hex.
pub fn stored_blob_sizes(storage: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut blobs = std::collections::BTreeMap::new();
    let Ok(prefixes) = fs::read_dir(storage.join("docker/registry/v2/blobs/sha256")) else {
        return blobs;
    };
    for prefix in prefixes.flatten() {
        let Ok(entries) = fs::read_dir(prefix.path()) else {
            continue;
        };
        for blob in entries.flatten() {
            let size = fs::metadata(blob.path().join("data")).map_or(0, |m| m.len());
            blobs.insert(blob.file_name().to_string_lossy().into_owned(), size);
        }
    }
    blobs
}

impl Registry {
    /// Starts a registry without authentication over a fresh temporary storage directory.
    pub fn start() -> Registry {
        Registry::builder().start()
    }

    /// Options for starting a registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The storage root directory (holds `docker/registry/v2/...`).
    pub fn storage_dir(&self) -> &Path {
        &self.storage_dir
    }

    /// Everything the registry logged so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `user:password` when the registry requires credentials, as skopeo's `--creds` takes them.
    pub fn creds(&self) -> Option<String> {
        self.credentials
            .as_ref()
            .map(|(user, password)| format!("{user}:{password}"))
    }

    /// `GET path` without credentials.
    pub fn get(&self, path: &str) -> io::Result<http::Response> {
        http::get(&self.addr, path, None)
    }

    /// `GET path` with the registry's credentials; panics when it has none.
    pub fn get_authenticated(&self, path: &str) -> io::Result<http::Response> {
        let creds = self
            .creds()
            .expect("this registry was started without htpasswd credentials");
        let basic = base64::engine::general_purpose::STANDARD.encode(creds);
        http::get(&self.addr, path, Some(&format!("Basic {basic}")))
    }
}

impl Drop for Registry {
    /// Stops the registry; when the test is failing, prints the log tail first, so the test's
    /// output shows what the registry saw.
    fn drop(&mut self) {
        stop(&mut self.child);
        if thread::panicking() {
            eprintln!(
                "--- last lines of the docker-registry log {} ---\n{}",
                self.log_path.display(),
                log_tail(&self.log_path)
            );
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago: bound to port 0, read, released.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port on 127.0.0.1")
        .port()
}

/// One htpasswd line with a bcrypt hash, made by `htpasswd -Bbn`.
fn htpasswd_line(user: &str, password: &str) -> Vec<u8> {
    let output = Command::new(HTPASSWD)
        .args(["-Bbn", user, password])
        .output()
        .unwrap_or_else(|e| panic!("run {HTPASSWD} (package apache2-utils): {e}"));
    assert!(
        output.status.success(),
        "{HTPASSWD} -Bbn failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The registry configuration: loopback address, filesystem storage with deletes, info logs,
/// no upload purging (it would scan the storage), optional htpasswd authentication.
fn config_yaml(addr: &str, storage_dir: &Path, htpasswd_file: Option<&Path>) -> String {
    let auth = htpasswd_file
        .map(|file| {
            format!(
                "auth:\n  htpasswd:\n    realm: testkit\n    path: {}\n",
                yaml_string(file)
            )
        })
        .unwrap_or_default();
    format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {addr}\n  secret: testkit-not-a-secret\n{auth}",
        yaml_string(storage_dir)
    )
}

/// A path as a double-quoted YAML scalar (JSON strings are valid YAML).
fn yaml_string(path: &Path) -> String {
    let text = path
        .to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()));
    serde_json::Value::from(text).to_string()
}

/// Starts `docker-registry serve` with both output streams into the log file. `REGISTRY_*`
/// variables would override the configuration, so the child does not inherit them.
fn spawn(config_path: &Path, log_path: &Path) -> Child {
    let log = File::create(log_path).expect("create the registry log");
    let log_for_stderr = log.try_clone().expect("share the registry log");
    let mut command = Command::new(DOCKER_REGISTRY);
    command
        .arg("serve")
        .arg(config_path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_for_stderr);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REGISTRY_") {
            command.env_remove(name);
        }
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("run {DOCKER_REGISTRY} (package docker-registry): {e}"))
}

/// Waits until the registry logged that it listens on `addr` and `GET /v2/` answers 200 or
/// 401. Checking the log first makes sure the answer comes from this registry, not from
/// another process that took the port.
fn wait_ready(child: &mut Child, addr: &str, log_path: &Path) -> Result<(), StartFailure> {
    let listening = format!("listening on {addr}");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| StartFailure::Other(format!("cannot check the registry process: {e}")))?
        {
            let log = fs::read_to_string(log_path).unwrap_or_default();
            return Err(if log.contains("address already in use") {
                StartFailure::PortTaken
            } else {
                StartFailure::Other(format!("it exited with {status}"))
            });
        }
        let log = fs::read_to_string(log_path).unwrap_or_default();
        if log.contains(&listening)
            && http::get(addr, "/v2/", None).is_ok_and(|r| matches!(r.status, 200 | 401))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StartFailure::Other(format!(
                "GET http://{addr}/v2/ did not answer 200 or 401 within {READY_TIMEOUT:?}"
            )));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Kills and reaps the process; it may have exited already.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last [`LOG_TAIL_LINES`] lines of the log.
fn log_tail(log_path: &Path) -> String {
    let log = fs::read_to_string(log_path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// The loopback registry shared by the tests of one binary that run at the same time (each
/// uses repositories of its own). It stops when the last of them drops it: a registry kept in
/// a `static` would never be dropped, and its process would outlive the tests.
pub fn shared_registry() -> std::sync::Arc<Registry> {
    use std::sync::{Arc, Mutex, PoisonError, Weak};
    static SHARED: Mutex<Weak<Registry>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(registry) = shared.upgrade() {
        return registry;
    }
    let registry = Arc::new(Registry::start());
    *shared = Arc::downgrade(&registry);
    registry
}
