//! The built-in registry on the registry hosts, for images that bring no `init-registry.sh`:
//! this program is copied to `<cluster dir>/bin/sealer` and runs `sealer registry serve` on
//! the distributed `registry/` directory, as a systemd service where systemd runs, as a
//! detached process with a pid file otherwise.

use std::fmt::Write as _;
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

use crate::plan::RegistryFiles;
use crate::plan::shell::{self, quote};
use crate::registry_tls::certificate_paths;
use crate::ssh::{Connection, RemoteCommand};
use crate::target::Target;

/// Where the program is copied on a registry host.
pub fn binary_path(target: &Target) -> String {
    format!("{}/bin/sealer", target.cluster_dir())
}

/// The systemd unit's name.
fn unit_name(target: &Target) -> String {
    format!(
        "sealer-registry-{}.service",
        target.clusterfile.cluster.name
    )
}

fn unit_path(target: &Target) -> String {
    format!("/etc/systemd/system/{}", unit_name(target))
}

/// Directory of the pid file and log when no systemd runs.
fn run_dir(target: &Target) -> String {
    format!("{}/registry-run", target.cluster_dir())
}

/// This program, read and hashed once per run however many registry hosts get it.
pub struct SealerBinary {
    path: PathBuf,
    loaded: OnceCell<(Vec<u8>, String)>,
}

impl SealerBinary {
    /// The program at `path` (not read yet).
    pub fn new(path: PathBuf) -> Self {
        SealerBinary {
            path,
            loaded: OnceCell::new(),
        }
    }

    /// Its bytes and their SHA-256, read on first use.
    async fn bytes_and_digest(&self) -> Result<&(Vec<u8>, String), String> {
        self.loaded
            .get_or_try_init(|| async {
                let bytes = tokio::fs::read(&self.path)
                    .await
                    .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
                let digest = hex::encode(Sha256::digest(&bytes));
                Ok((bytes, digest))
            })
            .await
    }
}

/// Copies `binary` to `remote_path` unless the host has the same bytes there.
pub async fn install_binary(
    connection: &Connection,
    binary: &SealerBinary,
    remote_path: &str,
) -> Result<(), String> {
    let (bytes, digest) = binary.bytes_and_digest().await?;
    let path = quote(remote_path);
    let held = connection
        .run(&RemoteCommand::new(format!(
            "if [ -f {path} ]; then sha256sum {path}; fi"
        )))
        .await
        .map_err(|e| e.to_string())?;
    if held.stdout_text().split_whitespace().next() == Some(digest.as_str()) {
        return Ok(());
    }
    let upload = RemoteCommand::new(shell::write_file_from_stdin(remote_path, "0755"));
    let output = connection
        .run_with_input(&upload, bytes.as_slice())
        .await
        .map_err(|e| e.to_string())?;
    if output.success() {
        Ok(())
    } else {
        Err(format!(
            "cannot copy sealer to {remote_path}: {}",
            output.stderr_text()
        ))
    }
}

/// Starts (or restarts) the registry on `port` and waits until it answers; it serves the
/// certificate installed in [`Target::registry_certificate_dir`] and checks clients against
/// [`Target::registry_htpasswd_path`] when `files` has them.
pub fn start_script(target: &Target, port: u16, files: &RegistryFiles) -> String {
    let cluster = &target.clusterfile.cluster.name;
    let binary = quote(&binary_path(target));
    let storage = quote(&format!("{}/registry", target.rootfs()));
    let run = quote(&run_dir(target));
    let mut serve = format!("{binary} registry serve --storage {storage} --addr :{port}");
    if let (Some(_), Some((domain, _))) =
        (&files.certificate_sha256, target.local_registry_address())
    {
        let (cert, key) = certificate_paths(&target.registry_certificate_dir(), &domain);
        let _ = write!(
            serve,
            " --tls-cert {} --tls-key {}",
            quote(&cert),
            quote(&key)
        );
    }
    if files.htpasswd_sha256.is_some() {
        let _ = write!(
            serve,
            " --htpasswd {}",
            quote(&target.registry_htpasswd_path())
        );
    }
    let unit = format!(
        "[Unit]\nDescription=sealer built-in registry of cluster {cluster}\nAfter=network-online.target\n\n[Service]\nExecStart={serve}\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n"
    );
    let name = unit_name(target);
    format!(
        "{stop}mkdir -p {run}\nif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then\n{write_unit}systemctl daemon-reload && systemctl enable {name} && systemctl restart {name}\nelse\nsetsid {serve} >{run}/log 2>&1 </dev/null &\necho $! >{run}/pid\nfi\nfor _ in $(seq 100); do\n  if (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; then exit 0; fi\n  sleep 0.1\ndone\necho \"the built-in registry does not answer on port {port}\" >&2\ncat {run}/log >&2 2>/dev/null\nexit 1\n",
        stop = stop_process(target),
        write_unit = shell::write_owned_file(cluster, &unit_path(target), &unit),
    )
}

/// Stops the registry and removes its service and run directory.
pub fn stop_script(target: &Target) -> String {
    let cluster = &target.clusterfile.cluster.name;
    let name = unit_name(target);
    let unit = unit_path(target);
    format!(
        "{stop}if [ -f {unit_q} ] && command -v systemctl >/dev/null 2>&1; then systemctl disable --now {name} || true; fi\n{remove}rm -rf {run}\n",
        stop = stop_process(target),
        unit_q = quote(&unit),
        remove = shell::remove_owned_file(cluster, &unit, "/etc/systemd"),
        run = quote(&run_dir(target)),
    )
}

/// Stops the detached process a previous start left, waiting for it to exit.
fn stop_process(target: &Target) -> String {
    let pid_file = quote(&format!("{}/pid", run_dir(target)));
    format!(
        "if [ -f {pid_file} ]; then pid=$(cat {pid_file}); if kill \"$pid\" 2>/dev/null; then for _ in $(seq 50); do kill -0 \"$pid\" 2>/dev/null || break; sleep 0.1; done; fi; rm -f {pid_file}; fi\n"
    )
}
