//! The prepared rootfs sent to a host as one tar stream over its SSH connection.
//!
//! The host unpacks into `<cluster dir>/.rootfs.incoming`; only when the whole stream arrived
//! and `tar` succeeded does a second command move it to `<cluster dir>/rootfs` and write the
//! content key to `<cluster dir>/rootfs.key`. A host whose key already matches is skipped; a
//! cut connection leaves the incoming directory, never a half-written `rootfs`, and the next
//! run starts it again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use image::layer::{Compression, LayerOptions, entries_from_dir, write_layer};
use tokio_util::io::SyncIoBridge;

use crate::plan::shell::quote;
use crate::ssh::{Connection, RemoteCommand, SshError};

/// Bytes in flight between the tar writer and the SSH channel.
const PIPE_BUFFER: usize = 4 * 1024 * 1024;

/// Why a rootfs could not be distributed.
#[derive(Debug, thiserror::Error)]
pub enum DistributeError {
    /// The local rootfs cannot be read.
    #[error("cannot read the prepared rootfs {}: {source}", dir.display())]
    Read {
        /// The rootfs directory.
        dir: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The SSH command failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The host's `tar` or a file command failed.
    #[error("{what} failed on {host} (exit status {status}): {output}")]
    Remote {
        /// The host.
        host: String,
        /// Which command.
        what: &'static str,
        /// Its exit status.
        status: String,
        /// The end of its output.
        output: String,
    },
}

/// What a distribution did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Distributed {
    /// Bytes of tar stream sent (0 when skipped).
    pub bytes: u64,
    /// Whether the host already held the content key.
    pub skipped: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// Sends `rootfs` to `cluster_dir/rootfs` on the host unless it holds `content_key`
/// already; `with_registry` decides whether `registry/` goes too.
pub async fn distribute(
    connection: &Connection,
    rootfs: &Path,
    cluster_dir: &str,
    content_key: &str,
    with_registry: bool,
) -> Result<Distributed, DistributeError> {
    let started = Instant::now();
    let key = if with_registry {
        format!("{content_key}+registry")
    } else {
        content_key.to_owned()
    };
    let dir = quote(cluster_dir);
    let check = RemoteCommand::new(format!(
        "if [ -d {dir}/rootfs ] && [ -f {dir}/rootfs.key ]; then cat {dir}/rootfs.key; fi"
    ));
    let held = connection.run(&check).await?;
    if held.success() && held.stdout_text().trim() == key {
        return Ok(Distributed {
            bytes: 0,
            skipped: true,
            elapsed: started.elapsed(),
        });
    }

    let receive = RemoteCommand::new(format!(
        "set -e\nrm -rf {dir}/.rootfs.incoming\nmkdir -p {dir}/.rootfs.incoming\ntar -x -f - -C {dir}/.rootfs.incoming\n"
    ));
    let (reader, writer) = tokio::io::duplex(PIPE_BUFFER);
    let source = rootfs.to_path_buf();
    let producer = tokio::task::spawn_blocking(move || {
        write_tar(&source, with_registry, SyncIoBridge::new(writer))
    });
    let received = connection.run_with_input(&receive, reader).await;
    let produced = producer.await.map_err(|e| DistributeError::Read {
        dir: rootfs.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    let received = received?;
    // A failed `tar` stops reading, which breaks the local writer: its error says more.
    if !received.success() {
        return Err(remote_failure(
            connection,
            "unpacking the rootfs",
            &received,
        ));
    }
    let bytes = produced.map_err(|source| DistributeError::Read {
        dir: rootfs.to_path_buf(),
        source,
    })?;
    if received.stdin_bytes != bytes {
        return Err(DistributeError::Remote {
            host: connection.host().to_owned(),
            what: "sending the rootfs",
            status: "incomplete".to_owned(),
            output: format!("{} of {bytes} bytes reached the host", received.stdin_bytes),
        });
    }

    let commit = RemoteCommand::new(format!(
        "set -e\nrm -f {dir}/rootfs.key\nif [ -d {dir}/rootfs ]; then rm -rf {dir}/.rootfs.old; mv {dir}/rootfs {dir}/.rootfs.old; fi\nmv {dir}/.rootfs.incoming {dir}/rootfs\necho {} >{dir}/rootfs.key.tmp\nmv {dir}/rootfs.key.tmp {dir}/rootfs.key\nrm -rf {dir}/.rootfs.old\n",
        quote(&key)
    ));
    let committed = connection.run(&commit).await?;
    if !committed.success() {
        return Err(remote_failure(
            connection,
            "moving the rootfs in place",
            &committed,
        ));
    }
    Ok(Distributed {
        bytes,
        skipped: false,
        elapsed: started.elapsed(),
    })
}

/// Writes `rootfs` as an uncompressed tar (hosts are near and CPUs are the limit), leaving out
/// `registry/` unless `with_registry`; returns the bytes written.
fn write_tar(rootfs: &Path, with_registry: bool, out: impl std::io::Write) -> std::io::Result<u64> {
    let entries = entries_from_dir(rootfs)?.into_iter().filter(|entry| {
        with_registry || !(entry.path == "registry" || entry.path.starts_with("registry/"))
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let options = LayerOptions {
        compression: Compression::None,
        mtime: now,
        ..LayerOptions::default()
    };
    Ok(write_layer(entries, &options, out)?.size)
}

fn remote_failure(
    connection: &Connection,
    what: &'static str,
    output: &crate::ssh::CommandOutput,
) -> DistributeError {
    DistributeError::Remote {
        host: connection.host().to_owned(),
        what,
        status: output.status.to_string(),
        output: output.stderr_tail(10),
    }
}
