//! Writing blobs: hashed while written, verified, fsynced and renamed into place; partial
//! downloads kept for the next attempt.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{StoreError, io_error};
use crate::digest::{Digest, Hasher};

/// Writes `bytes` to `dest` atomically: a temporary file in `tmp_dir` (same filesystem),
/// fsynced, renamed, and the directory fsynced.
pub(crate) fn write_atomically(
    tmp_dir: &Path,
    dest: &Path,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir)
        .map_err(io_error("cannot create a file in", tmp_dir))?;
    tmp.write_all(bytes)
        .map_err(io_error("cannot write", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_error("cannot sync", tmp.path()))?;
    tmp.persist(dest).map_err(|e| StoreError::Io {
        action: "cannot rename into",
        path: dest.to_owned(),
        source: e.error,
    })?;
    sync_parent(dest)
}

fn sync_parent(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_error("cannot sync", parent))?;
    }
    Ok(())
}

/// Deletes `*.partial` files no writer holds; returns the bytes freed.
pub(crate) fn remove_stale_partials(tmp_dir: &Path) -> Result<u64, StoreError> {
    let mut freed = 0;
    let entries = fs::read_dir(tmp_dir).map_err(io_error("cannot list", tmp_dir))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "partial") {
            continue;
        }
        let Ok(file) = OpenOptions::new().write(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            freed += file.metadata().map_or(0, |m| m.len());
            fs::remove_file(&path).map_err(io_error("cannot delete", &path))?;
        }
    }
    Ok(freed)
}

/// Writes one blob. Continues a partial file left by an interrupted download; only one
/// writer per blob runs at a time (an exclusive lock on the partial file).
pub struct BlobWriter {
    file: File,
    partial: PathBuf,
    dest: PathBuf,
    expected: Digest,
    hasher: Hasher,
}

/// Opens and locks the partial file at `path`. The lock belongs to the open file, not the
/// path: when the holder renamed the file into the store (or deleted it) while this process
/// waited, the file now locked is no longer the partial file, so it is dropped and the path
/// opened again.
fn lock_partial(path: &Path) -> Result<File, StoreError> {
    use std::os::unix::fs::MetadataExt;
    loop {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_error("cannot open", path))?;
        file.lock().map_err(io_error("cannot lock", path))?;
        let held = file.metadata().map_err(io_error("cannot stat", path))?;
        match fs::metadata(path) {
            Ok(current) if current.dev() == held.dev() && current.ino() == held.ino() => {
                return Ok(file);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("cannot stat", path)(e)),
        }
    }
}

impl BlobWriter {
    pub(crate) fn open(
        tmp_dir: &Path,
        dest: PathBuf,
        expected: Digest,
    ) -> Result<Self, StoreError> {
        let partial = tmp_dir.join(format!("{}.partial", expected.hex()));
        let mut file = lock_partial(&partial)?;
        let mut hasher = Hasher::new();
        file.seek(SeekFrom::Start(0))
            .map_err(io_error("cannot read", &partial))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(io_error("cannot read", &partial))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(BlobWriter {
            file,
            partial,
            dest,
            expected,
            hasher,
        })
    }

    /// True when the blob is already in the store (another writer finished it).
    pub fn is_stored(&self) -> bool {
        self.dest.is_file()
    }

    /// Bytes already written: where a download continues.
    pub fn offset(&self) -> u64 {
        self.hasher.len()
    }

    /// Throws away what was written (when the source cannot continue where it stopped).
    pub fn restart(&mut self) -> Result<(), StoreError> {
        self.file
            .set_len(0)
            .map_err(io_error("cannot truncate", &self.partial))?;
        self.hasher = Hasher::new();
        Ok(())
    }

    /// Verifies the digest and makes the blob visible; returns its size. On a mismatch the
    /// partial file is deleted and nothing becomes visible.
    pub fn commit(mut self) -> Result<u64, StoreError> {
        if self.dest.is_file() {
            let _ = fs::remove_file(&self.partial);
            return Ok(self.hasher.len());
        }
        self.file
            .flush()
            .map_err(io_error("cannot write", &self.partial))?;
        let size = self.hasher.len();
        let actual = std::mem::take(&mut self.hasher).finish();
        if actual != self.expected {
            let _ = fs::remove_file(&self.partial);
            return Err(StoreError::DigestMismatch {
                expected: self.expected.clone(),
                actual,
            });
        }
        self.file
            .sync_all()
            .map_err(io_error("cannot sync", &self.partial))?;
        fs::rename(&self.partial, &self.dest)
            .map_err(io_error("cannot rename into", &self.dest))?;
        sync_parent(&self.dest)?;
        Ok(size)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use crate::digest::Digest;
    use crate::store::Store;
    use std::io::Write;

    /// A writer waiting for the lock while another commits must not get the committed blob's
    /// file: truncating it would corrupt a visible blob.
    #[test]
    fn a_waiting_writer_never_touches_the_committed_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let content = vec![7u8; 1 << 20];
        let digest = Digest::of(&content);
        let mut first = store.blob_writer(&digest).unwrap();
        first.write_all(&content).unwrap();
        let waiting = {
            let store = store.clone();
            let digest = digest.clone();
            std::thread::spawn(move || {
                let mut second = store.blob_writer(&digest).unwrap();
                let stored = second.is_stored();
                let offset = second.offset();
                if !stored {
                    second.restart().unwrap();
                }
                (stored, offset)
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        first.commit().unwrap();
        let (stored, offset) = waiting.join().unwrap();
        assert!(stored);
        assert_eq!(offset, 0, "the second writer opened a fresh partial file");
        assert_eq!(store.read_blob(&digest).unwrap(), content);
    }

    #[test]
    fn a_mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = Digest::of(b"expected");
        let mut writer = store.blob_writer(&digest).unwrap();
        writer.write_all(b"something else").unwrap();
        assert!(writer.commit().is_err());
        assert!(!store.has_blob(&digest));
        assert_eq!(store.blob_writer(&digest).unwrap().offset(), 0);
    }
}
