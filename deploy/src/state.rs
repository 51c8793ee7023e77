//! What apply did, recorded on this machine per cluster: the last operation that completed
//! (its Clusterfile and image facts, so re-running changes nothing and delete works without
//! the image), and the operation under way with the steps it finished (so a failed run
//! resumes where it stopped).
//!
//! `<home>/clusters/<name>/state.json`, written whole to a temporary file and renamed; mode
//! 0600, as it holds the Clusterfile (SSH passwords) and the join token.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::kubeadm::JoinInfo;
use crate::plan::Operation;
use crate::prepare::ImageFacts;

/// Why the state cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The state file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The file is not what apply writes.
    #[error(
        "{}: {source}; it is not a state file this version wrote (move it away to start afresh)",
        path.display()
    )]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What failed to parse.
        source: serde_json::Error,
    },
}

/// A cluster as an operation left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The Clusterfile's text.
    pub clusterfile: String,
    /// The image's facts.
    pub image: ImageFacts,
}

/// An operation that started and has not completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// What it does.
    pub operation: Operation,
    /// The cluster it moves to.
    pub target: Snapshot,
    /// Fingerprints of the steps it finished.
    pub done: BTreeSet<String>,
    /// What `kubeadm init` printed for the joins.
    pub join: Option<JoinInfo>,
    /// The error it stopped with.
    pub failure: Option<String>,
}

/// The recorded state of one cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// The cluster as the last completed operation left it.
    pub applied: Option<Snapshot>,
    /// The operation under way.
    pub pending: Option<Pending>,
    /// What `kubeadm init` printed, kept for later joins (scale up).
    pub join: Option<JoinInfo>,
}

/// The state file of one cluster.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file of cluster `name` under `home` (e.g. `~/.sealer`).
    pub fn new(home: &Path, name: &str) -> Self {
        StateFile {
            path: home.join("clusters").join(name).join("state.json"),
        }
    }

    /// The directory holding the cluster's files on this machine.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The recorded state; empty when nothing was recorded.
    pub fn load(&self) -> Result<ClusterState, StateError> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ClusterState::default()),
            Err(source) => Err(StateError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Records `state` (atomically).
    pub fn save(&self, state: &ClusterState) -> Result<(), StateError> {
        let io_error = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        fs::create_dir_all(self.dir()).map_err(io_error)?;
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| io_error(io::Error::other(e)))?;
        write_atomically(&self.path, &bytes, 0o600).map_err(io_error)
    }

    /// Forgets the cluster (after a delete).
    pub fn remove(&self) -> Result<(), StateError> {
        match fs::remove_dir_all(self.dir()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io {
                path: self.dir().to_path_buf(),
                source,
            }),
        }
    }
}

/// Writes `bytes` to `path` (whose directory exists) through a temporary file beside it,
/// created with `mode`, synced and renamed: a run killed halfway leaves the old file or the
/// new one, and a private file is never readable by others, even briefly.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temporary = path.with_file_name(name);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_missing_file_is_an_empty_state_and_saving_round_trips_privately() {
        let home = tempfile::tempdir().unwrap();
        let file = StateFile::new(home.path(), "c1");
        assert_eq!(file.load().unwrap(), ClusterState::default());
        let state = ClusterState {
            join: crate::kubeadm::join_info(
                "kubeadm join x --token t.1 --discovery-token-ca-cert-hash sha256:1",
            ),
            ..ClusterState::default()
        };
        file.save(&state).unwrap();
        assert_eq!(file.load().unwrap(), state);
        let mode = fs::metadata(home.path().join("clusters/c1/state.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        file.remove().unwrap();
        assert!(!home.path().join("clusters/c1").exists());
    }

    #[test]
    fn a_corrupt_file_says_what_to_do() {
        let home = tempfile::tempdir().unwrap();
        let file = StateFile::new(home.path(), "c1");
        fs::create_dir_all(file.dir()).unwrap();
        fs::write(home.path().join("clusters/c1/state.json"), "{").unwrap();
        let error = file.load().unwrap_err().to_string();
        assert!(error.contains("move it away"), "{error}");
    }
}
