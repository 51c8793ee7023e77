//! The session's shared key: BuildKit caches each transferred local directory under the
//! local name plus this key, so a stable key per context directory makes rebuilds send only
//! what changed. Like the docker CLI (`cli/command/image/build_session.go`), the key hashes a
//! per-machine random node id with the directory.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::{Result, SessionError};

/// The node id file in the Docker config directory, shared with the docker CLI.
const NODE_ID_FILE: &str = ".buildNodeID";

/// hex(sha256("<node id>:<absolute dir>")), node id = `$DOCKER_CONFIG/.buildNodeID` (else
/// `~/.docker/.buildNodeID`), created like the docker CLI does when missing (see [`node_id`]
/// for a config directory that cannot be written). `dir` is made
/// absolute with symlinks resolved, so it must exist.
pub fn shared_key(dir: &Path) -> Result<String> {
    shared_key_in(&image::registry::auth::docker_config_dir(), dir)
}

/// [`shared_key`] with the node id kept in `config_dir`.
pub fn shared_key_in(config_dir: &Path, dir: &Path) -> Result<String> {
    let node_id = node_id(config_dir);
    let absolute = std::fs::canonicalize(dir).map_err(|source| SessionError::ContextDir {
        path: dir.to_owned(),
        source,
    })?;
    let mut hasher = Sha256::new();
    hasher.update(node_id.as_bytes());
    hasher.update(b":");
    hasher.update(absolute.as_os_str().as_bytes());
    Ok(hex::encode(hasher.finalize()))
}

/// The contents of `config_dir/.buildNodeID`; when missing, creates it (mode 0600, in a
/// directory created 0700) with 32 random bytes in hex, as the docker CLI does. Where the
/// directory cannot be written (a read-only home), the docker CLI uses the directory's path as
/// the id, and so does this: the key then still differs per context directory, and a build
/// never fails over a cache hint.
fn node_id(config_dir: &Path) -> String {
    stored_node_id(config_dir).unwrap_or_else(|_| config_dir.display().to_string())
}

fn stored_node_id(config_dir: &Path) -> std::io::Result<String> {
    let path = config_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) => return Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(config_dir)?;
    let id = hex::encode(rand::random::<[u8; 32]>());
    // Written under a private name, then linked into place: a concurrent build never reads a
    // half-written id, and the first one to link wins.
    let staging = config_dir.join(format!(
        "{NODE_ID_FILE}.{}",
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staging)
        .and_then(|mut file| file.write_all(id.as_bytes()));
    let linked = written.and_then(|()| std::fs::hard_link(&staging, &path));
    let _ = std::fs::remove_file(&staging);
    match linked {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(&path),
        Err(e) => Err(e),
    }
}
