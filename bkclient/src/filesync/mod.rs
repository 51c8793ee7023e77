//! File transfers of a session, speaking fsutil's DiffCopy protocol as BuildKit v0.8 and the
//! docker CLI do (moby v20.10.24 `vendor/github.com/tonistiigi/fsutil`).
//!
//! - [`SyncService`] serves `FileSync/DiffCopy`: the daemon asks for a local directory (the
//!   build context, the Kubefile's directory, ...) by name and we are the fsutil sender. We
//!   walk the directory with the request's include, exclude and follow patterns, send one
//!   `STAT` per entry (Go file modes, owners reset to 0, nanosecond mtimes, link names,
//!   hardlinks, devices, xattrs) and an empty `STAT`, then answer each `REQ` with `DATA`
//!   chunks and an empty `DATA`, and the daemon's `FIN` with a `FIN`.
//! - [`DirTarget`] serves `FileSend/DiffCopy` for a `local` output: the daemon is the sender
//!   and we write its files into a directory.
//! - [`FileTarget`] serves the raw-bytes `FileSend/DiffCopy` of `tar` (and `oci`) outputs.
//!
//! Both `FileSend` services answer the same route, so a session registers at most one.

use std::collections::BTreeMap;
use std::path::PathBuf;

mod glob;
mod gomode;
mod receive;
mod send;
mod sink;
mod validate;
mod walk;

pub use gomode::can_request_data;
pub use receive::DirTarget;
pub use send::SyncService;
pub use sink::FileTarget;

/// The method a session advertises for [`SyncService`].
pub const FILE_SYNC_METHOD: &str = "/moby.filesync.v1.FileSync/DiffCopy";
/// The method a session advertises for [`DirTarget`] or [`FileTarget`].
pub const FILE_SEND_METHOD: &str = "/moby.filesync.v1.FileSend/DiffCopy";

/// A local directory the daemon may ask for by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedDir {
    /// The directory.
    pub root: PathBuf,
    /// Exclude patterns that replace the request's ones (unless the request says
    /// `override-excludes: true`); `None` or an empty list uses the request's.
    pub excludes: Option<Vec<String>>,
}

/// What [`SyncService`] sent, summed over DiffCopy calls.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TransferStats {
    /// Entries listed (one `STAT` each: files, directories, links).
    pub files: u64,
    /// File content bytes sent.
    pub bytes: u64,
    /// Non-empty `DATA` packets sent; 0 when the daemon had every file cached.
    pub data_packets: u64,
    /// Time from the request to the end of the transfer.
    pub seconds: f64,
}

impl TransferStats {
    /// Adds another transfer's counts to these.
    pub fn add(&mut self, other: &TransferStats) {
        self.files += other.files;
        self.bytes += other.bytes;
        self.data_packets += other.data_packets;
        self.seconds += other.seconds;
    }
}

/// Stats of all transfers so far, in total and per directory name.
#[derive(Debug, Default)]
struct StatsBook {
    total: TransferStats,
    by_dir: BTreeMap<String, TransferStats>,
}

impl StatsBook {
    fn record(&mut self, dir_name: &str, stats: &TransferStats) {
        self.total.add(stats);
        self.by_dir
            .entry(dir_name.to_owned())
            .or_default()
            .add(stats);
    }
}
