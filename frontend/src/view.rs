//! A [`ContextView`] of a solved gateway ref, so the Kubefile planner and the image scanner
//! can read files BuildKit holds (the build context, an intermediate rootfs).
//!
//! `ContextView` is synchronous; every method here blocks on the async gateway with
//! [`Handle::block_on`]. Use the view from a blocking thread of a multi-thread runtime
//! (inside `tokio::task::spawn_blocking`): calling it on a runtime worker thread panics.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};

use kubefile::context::{ContextView, EntryKind, basename};
use tokio::runtime::Handle;

use crate::gateway::{Gateway, GatewayError, READ_CHUNK, RefId};

/// Go's `os.ModeDir` bit in fsutil `Stat.mode`.
pub const GO_MODE_DIR: u32 = 1 << 31;
/// Go's `os.ModeSymlink` bit in fsutil `Stat.mode`.
pub const GO_MODE_SYMLINK: u32 = 1 << 27;

/// The kind of an entry from its Go `os.FileMode` bits (anything but a directory or a
/// symlink counts as a file).
pub fn entry_kind(go_mode: u32) -> EntryKind {
    if go_mode & GO_MODE_DIR != 0 {
        EntryKind::Dir
    } else if go_mode & GO_MODE_SYMLINK != 0 {
        EntryKind::Symlink
    } else {
        EntryKind::File
    }
}

type Listing = Arc<BTreeMap<String, EntryKind>>;

/// The files of one solved ref. Directory listings are cached (BuildKit's `ReadDir` mounts
/// the ref on every call and is not recursive, so each directory costs one call, once), and
/// an entry's kind comes from its parent's listing.
#[derive(Debug)]
pub struct GatewayView {
    gateway: Gateway,
    reference: RefId,
    runtime: Handle,
    listings: Mutex<HashMap<String, Listing>>,
    failure: Mutex<Option<GatewayError>>,
}

impl GatewayView {
    /// A view of `reference`, calling the gateway on `runtime`.
    pub fn new(gateway: Gateway, reference: RefId, runtime: Handle) -> Self {
        GatewayView {
            gateway,
            reference,
            runtime,
            listings: Mutex::new(HashMap::new()),
            failure: Mutex::new(None),
        }
    }

    /// The ref this view reads.
    pub fn reference(&self) -> &RefId {
        &self.reference
    }

    /// The first gateway failure that [`ContextView::kind`] or [`ContextView::list`] had to
    /// hide (they cannot return errors, so a failed listing reads as empty). Check it after
    /// planning or scanning, so a broken connection is not taken for a missing file.
    pub fn take_failure(&self) -> Option<GatewayError> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn listing(&self, dir: &str) -> Listing {
        let cached = self
            .listings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(dir)
            .cloned();
        if let Some(listing) = cached {
            return listing;
        }
        let listing = match self
            .runtime
            .block_on(self.gateway.read_dir(&self.reference, &gateway_path(dir)))
        {
            Ok(entries) => Arc::new(
                entries
                    .iter()
                    .map(|stat| (basename(&stat.path).to_owned(), entry_kind(stat.mode)))
                    .collect(),
            ),
            Err(error) if error.is_not_found() => Arc::default(),
            Err(error) => {
                self.failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(error);
                return Arc::default();
            }
        };
        self.listings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(dir.to_owned(), Arc::clone(&listing));
        listing
    }

    fn read_chunk(&self, path: &str, offset: u64) -> io::Result<Vec<u8>> {
        self.runtime
            .block_on(self.gateway.read_file_range(
                &self.reference,
                &gateway_path(path),
                offset,
                READ_CHUNK,
            ))
            .map_err(io_error)
    }
}

impl ContextView for GatewayView {
    fn kind(&self, path: &str) -> Option<EntryKind> {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Some(EntryKind::Dir);
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        self.listing(parent).get(name).copied()
    }

    fn list(&self, path: &str) -> Vec<String> {
        self.listing(path.trim_matches('/'))
            .keys()
            .cloned()
            .collect()
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.runtime
            .block_on(
                self.gateway
                    .read_file(&self.reference, &gateway_path(path.trim_matches('/'))),
            )
            .map_err(io_error)
    }

    fn open(&self, path: &str) -> io::Result<Box<dyn Read + '_>> {
        let path = path.trim_matches('/').to_owned();
        // The first chunk is read now, so a missing file fails here rather than on read.
        let chunk = self.read_chunk(&path, 0)?;
        Ok(Box::new(ChunkReader {
            view: self,
            finished: chunk.len() < READ_CHUNK,
            offset: chunk.len() as u64,
            chunk,
            position: 0,
            path,
        }))
    }
}

/// Reads a file one `ReadFile` chunk at a time, so large files (image archives) are never
/// held in memory whole.
struct ChunkReader<'a> {
    view: &'a GatewayView,
    path: String,
    chunk: Vec<u8>,
    position: usize,
    offset: u64,
    finished: bool,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let available = &self.chunk[self.position..];
            if !available.is_empty() || buf.is_empty() {
                let count = available.len().min(buf.len());
                buf[..count].copy_from_slice(&available[..count]);
                self.position += count;
                return Ok(count);
            }
            if self.finished {
                return Ok(0);
            }
            self.chunk = self.view.read_chunk(&self.path, self.offset)?;
            self.position = 0;
            self.offset += self.chunk.len() as u64;
            self.finished = self.chunk.len() < READ_CHUNK;
        }
    }
}

/// Gateway paths are resolved inside the ref's root; `/` is the root itself.
fn gateway_path(path: &str) -> String {
    format!("/{path}")
}

fn io_error(error: GatewayError) -> io::Error {
    let kind = if error.is_not_found() {
        io::ErrorKind::NotFound
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_file_modes_map_to_kinds() {
        assert_eq!(entry_kind(GO_MODE_DIR | 0o755), EntryKind::Dir);
        assert_eq!(entry_kind(GO_MODE_SYMLINK | 0o777), EntryKind::Symlink);
        assert_eq!(entry_kind(0o644), EntryKind::File);
        // A named pipe (Go's ModeNamedPipe) is neither.
        assert_eq!(entry_kind((1 << 25) | 0o600), EntryKind::File);
        assert_eq!(gateway_path(""), "/");
        assert_eq!(gateway_path("a/b"), "/a/b");
    }
}
