//! The store-wide lock: shared for writers of blobs and images, exclusive for `index.json`
//! updates and `prune`.

use std::fs::{File, OpenOptions};
use std::path::Path;

use super::{StoreError, io_error};

/// A held lock on the store; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    fn open(path: &Path) -> Result<File, StoreError> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_error("cannot open the lock file", path))
    }

    /// Waits for and takes a shared lock.
    pub(crate) fn shared(path: &Path) -> Result<Self, StoreError> {
        let file = Self::open(path)?;
        file.lock_shared().map_err(io_error("cannot lock", path))?;
        Ok(StoreLock { _file: file })
    }

    /// Waits for and takes an exclusive lock.
    pub(crate) fn exclusive(path: &Path) -> Result<Self, StoreError> {
        let file = Self::open(path)?;
        file.lock().map_err(io_error("cannot lock", path))?;
        Ok(StoreLock { _file: file })
    }
}
