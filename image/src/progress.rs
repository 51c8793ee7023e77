//! Progress reports of transfers, so the CLI can draw bars on a terminal and print plain
//! lines elsewhere while the library stays free of terminal concerns.

use crate::digest::Digest;

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Downloaded into the store.
    Downloaded,
    /// Uploaded to the registry.
    Uploaded,
    /// Linked from another repository of the same registry (cross-repository mount).
    Mounted,
    /// Already there; nothing transferred.
    Skipped,
    /// Written into the local store (a layer made from files; its progress counts the bytes
    /// of file contents that went in, and it is named by its build cache key).
    Written,
}

/// Receives transfer events. Implementations must be cheap: they are called per chunk.
pub trait Progress: Send + Sync {
    /// A blob transfer starts; `done` bytes are already there (a resumed download).
    fn blob_started(&self, digest: &Digest, size: u64, done: u64);
    /// `bytes` more bytes moved.
    fn blob_advanced(&self, digest: &Digest, bytes: u64);
    /// The blob is done.
    fn blob_finished(&self, digest: &Digest, outcome: BlobOutcome);
    /// A line of information (resolved digest, retries, ...).
    fn message(&self, text: &str);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn blob_started(&self, _: &Digest, _: u64, _: u64) {}
    fn blob_advanced(&self, _: &Digest, _: u64) {}
    fn blob_finished(&self, _: &Digest, _: BlobOutcome) {}
    fn message(&self, _: &str) {}
}
