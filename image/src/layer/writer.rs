//! Reproducible layer tarballs. Entries are sorted by path and written with fixed metadata
//! (one mtime, no access or change times, no user or group names) in ustar headers, with PAX
//! records for what ustar cannot hold, so the same entries give the same bytes and digests on
//! any machine. The uncompressed and compressed digests are computed while the layer streams
//! out.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use tar::{Builder, EntryType, Header};

use super::Compression;
use crate::digest::{Digest, HashingWriter};

/// The largest name a ustar header holds without a prefix.
const USTAR_NAME_LEN: usize = 100;
/// The largest directory prefix a ustar header holds.
const USTAR_PREFIX_LEN: usize = 155;
/// The largest link target a ustar header holds.
const USTAR_LINK_LEN: usize = 100;
/// The largest value of the 8-byte octal fields (uid, gid, device numbers).
const USTAR_MAX_ID: u64 = 0o7_777_777;
/// The largest value of the 12-byte octal fields (size, mtime): 8 GiB - 1.
const USTAR_MAX_NUMBER: u64 = 0o77_777_777_777;

const OUTPUT_BUFFER: usize = 64 * 1024;

/// One file system object of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// Path inside the layer: relative, `/`-separated, without a leading `/`.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits; anything above `0o7777` is ignored.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
}

/// What a layer entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File(FileSource),
    /// A directory.
    Dir,
    /// A symbolic link to the given target, stored as is.
    Symlink(String),
    /// A hard link to another path of the layer (or of a lower layer).
    Hardlink(String),
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice {
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
}

/// Where the contents of a file entry come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A file on disk, streamed when the layer is written.
    Path(PathBuf),
    /// Bytes in memory.
    Bytes(Vec<u8>),
}

/// How a layer is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerOptions {
    /// The compression of the output.
    pub compression: Compression,
    /// The modification time of every entry, in seconds since the Unix epoch.
    pub mtime: u64,
    /// When set, the `(uid, gid)` of every entry, replacing the entries' own.
    pub owner: Option<(u32, u32)>,
    /// gzip level, 0 to 9.
    pub gzip_level: u32,
    /// zstd level.
    pub zstd_level: i32,
}

impl Default for LayerOptions {
    /// gzip at the usual levels, entries' own owners, and the mtime from `SOURCE_DATE_EPOCH`
    /// when it holds a valid timestamp, else 0.
    fn default() -> Self {
        LayerOptions {
            compression: Compression::Gzip,
            mtime: source_date_epoch(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())
                .unwrap_or(0),
            owner: None,
            gzip_level: 6,
            zstd_level: 3,
        }
    }
}

/// The timestamp a `SOURCE_DATE_EPOCH` value holds: decimal seconds, nothing else.
pub fn source_date_epoch(value: Option<&str>) -> Option<u64> {
    let value = value?;
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// What `write_layer` produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenLayer {
    /// Digest of the bytes written (the compressed blob).
    pub digest: Digest,
    /// Digest of the uncompressed tar, for the image config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// Number of bytes written.
    pub size: u64,
    /// The OCI media type of the blob.
    pub media_type: &'static str,
}

/// Writes `entries` as a layer to `out`, in path order whatever order they come in. Entries
/// given twice must be identical; a hard link must point to a path that sorts before it when
/// that path is part of the layer.
pub fn write_layer<W: Write>(
    entries: impl IntoIterator<Item = LayerEntry>,
    options: &LayerOptions,
    out: W,
) -> io::Result<WrittenLayer> {
    write_layer_reporting(entries, options, out, &mut |_| {})
}

/// [`write_layer`], telling `written` how many bytes of file contents each file added, as
/// the files go in (for a progress bar; [`content_size`] is the total).
pub fn write_layer_reporting<W: Write>(
    entries: impl IntoIterator<Item = LayerEntry>,
    options: &LayerOptions,
    out: W,
    written: &mut dyn FnMut(u64),
) -> io::Result<WrittenLayer> {
    let entries = sorted_entries(entries)?;
    if options.compression == Compression::None {
        // The blob is the tar: one hash gives both digests.
        let mut tar = Builder::new(HashingWriter::new(BufWriter::with_capacity(
            OUTPUT_BUFFER,
            out,
        )));
        for entry in &entries {
            written(append_entry(&mut tar, entry, options)?);
        }
        let (buffered, digest, size) = tar.into_inner()?.finish();
        buffered
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .flush()?;
        return Ok(WrittenLayer {
            diff_id: digest.clone(),
            digest,
            size,
            media_type: options.compression.media_type(),
        });
    }
    let compressed = HashingWriter::new(BufWriter::with_capacity(OUTPUT_BUFFER, out));
    let compressor = Compressor::new(options, compressed)?;
    let mut tar = Builder::new(HashingWriter::new(compressor));
    for entry in &entries {
        written(append_entry(&mut tar, entry, options)?);
    }
    let (compressor, diff_id, _) = tar.into_inner()?.finish();
    let (buffered, digest, size) = compressor.finish()?.finish();
    buffered
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .flush()?;
    Ok(WrittenLayer {
        digest,
        diff_id,
        size,
        media_type: options.compression.media_type(),
    })
}

/// The entries of the tree under `dir` (not `dir` itself), without following symlinks. Files
/// that share an inode become hard links to the first of their paths in layer order. Mode
/// bits and owners are kept. Sockets, and devices on systems other than Linux, are refused.
pub fn entries_from_dir(dir: &Path) -> io::Result<Vec<LayerEntry>> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((directory, layer_dir)) = pending.pop() {
        for child in fs::read_dir(&directory).map_err(|e| with_path(&e, &directory))? {
            let child = child.map_err(|e| with_path(&e, &directory))?;
            let full = child.path();
            let metadata = fs::symlink_metadata(&full).map_err(|e| with_path(&e, &full))?;
            let name = utf8(&child.file_name(), &full)?;
            let path = if layer_dir.is_empty() {
                name
            } else {
                format!("{layer_dir}/{name}")
            };
            let file_type = metadata.file_type();
            let inode = (file_type.is_file() && metadata.nlink() > 1)
                .then(|| (metadata.dev(), metadata.ino()));
            let kind = if file_type.is_dir() {
                pending.push((full, path.clone()));
                EntryKind::Dir
            } else if file_type.is_symlink() {
                let target = fs::read_link(&full).map_err(|e| with_path(&e, &full))?;
                EntryKind::Symlink(utf8(target.as_os_str(), &full)?)
            } else if file_type.is_file() {
                EntryKind::File(FileSource::Path(full))
            } else if file_type.is_fifo() {
                EntryKind::Fifo
            } else if file_type.is_char_device() {
                let (major, minor) = device_numbers(metadata.rdev(), &full)?;
                EntryKind::CharDevice { major, minor }
            } else if file_type.is_block_device() {
                let (major, minor) = device_numbers(metadata.rdev(), &full)?;
                EntryKind::BlockDevice { major, minor }
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("{}: a layer cannot hold a socket", full.display()),
                ));
            };
            let entry = LayerEntry {
                path,
                kind,
                mode: metadata.mode() & 0o7777,
                uid: metadata.uid(),
                gid: metadata.gid(),
            };
            found.push((entry, inode));
        }
    }
    Ok(link_shared_inodes(found))
}

/// The entries in path order, where a file sharing its inode (device and inode numbers) with
/// an earlier one becomes a hard link to it, with that one's owner (an inode has one owner).
/// Entries without an inode are kept as they are.
pub fn link_shared_inodes(mut found: Vec<(LayerEntry, Option<(u64, u64)>)>) -> Vec<LayerEntry> {
    found.sort_by(|(a, _), (b, _)| a.path.cmp(&b.path));
    let mut first_paths: HashMap<(u64, u64), (String, u32, u32)> = HashMap::new();
    found
        .into_iter()
        .map(|(mut entry, inode)| {
            if let (Some(inode), EntryKind::File(_)) = (inode, &entry.kind) {
                match first_paths.entry(inode) {
                    MapEntry::Occupied(first) => {
                        let (path, uid, gid) = first.get();
                        entry.kind = EntryKind::Hardlink(path.clone());
                        (entry.uid, entry.gid) = (*uid, *gid);
                    }
                    MapEntry::Vacant(slot) => {
                        slot.insert((entry.path.clone(), entry.uid, entry.gid));
                    }
                }
            }
            entry
        })
        .collect()
}

fn utf8(text: &std::ffi::OsStr, path: &Path) -> io::Result<String> {
    text.to_str().map(str::to_owned).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: layer paths and link targets must be UTF-8",
                path.display()
            ),
        )
    })
}

/// Major and minor numbers of a Linux `dev_t`.
#[cfg(target_os = "linux")]
#[allow(clippy::unnecessary_wraps)]
fn device_numbers(rdev: u64, _path: &Path) -> io::Result<(u32, u32)> {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    Ok((
        u32::try_from(major).unwrap_or(u32::MAX),
        u32::try_from(minor).unwrap_or(u32::MAX),
    ))
}

/// Device numbers are only decoded on Linux.
#[cfg(not(target_os = "linux"))]
fn device_numbers(_rdev: u64, path: &Path) -> io::Result<(u32, u32)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{}: device files are only read on Linux", path.display()),
    ))
}

fn with_path(error: &io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Checks and normalizes the entries, sorts them by path and drops exact duplicates.
fn sorted_entries(entries: impl IntoIterator<Item = LayerEntry>) -> io::Result<Vec<LayerEntry>> {
    let mut entries = entries
        .into_iter()
        .map(|mut entry| {
            entry.path = layer_path(&entry.path)?;
            match &mut entry.kind {
                EntryKind::Hardlink(target) => *target = layer_path(target)?,
                EntryKind::Symlink(target) if target.is_empty() || target.contains('\0') => {
                    return Err(invalid_input(format!(
                        "layer entry `{}`: a symlink target must be non-empty and free of NUL",
                        entry.path
                    )));
                }
                _ => {}
            }
            Ok(entry)
        })
        .collect::<io::Result<Vec<_>>>()?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));

    let mut unique: Vec<LayerEntry> = Vec::with_capacity(entries.len());
    for entry in entries {
        match unique.last() {
            Some(previous) if previous.path == entry.path => {
                if *previous != entry {
                    return Err(invalid_input(format!(
                        "layer entry `{}` is given twice, differently",
                        entry.path
                    )));
                }
            }
            _ => unique.push(entry),
        }
    }

    let positions: HashMap<&str, usize> = unique
        .iter()
        .enumerate()
        .map(|(position, entry)| (entry.path.as_str(), position))
        .collect();
    for (position, entry) in unique.iter().enumerate() {
        if let Some((parent, _)) = entry.path.rsplit_once('/')
            && positions
                .get(parent)
                .is_some_and(|&p| unique[p].kind != EntryKind::Dir)
        {
            return Err(invalid_input(format!(
                "layer entry `{}`: its parent `{parent}` is not a directory of the layer",
                entry.path
            )));
        }
        if let EntryKind::Hardlink(target) = &entry.kind
            && let Some(&target_position) = positions.get(target.as_str())
            && (target_position >= position || unique[target_position].kind == EntryKind::Dir)
        {
            return Err(invalid_input(format!(
                "layer entry `{}`: a hard link must point to a file that comes before it, and `{target}` does not",
                entry.path
            )));
        }
    }
    Ok(unique)
}

/// `path` without a trailing `/`, if it is a relative path without empty, `.` or `..`
/// components.
fn layer_path(path: &str) -> io::Result<String> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let valid = !trimmed.is_empty()
        && !trimmed.contains('\0')
        && trimmed
            .split('/')
            .all(|part| !matches!(part, "" | "." | ".."));
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(invalid_input(format!(
            "layer path `{path}` must be relative and `/`-separated, without `.`, `..` or empty components"
        )))
    }
}

/// The bytes of file contents `entries` hold (files on disk as they are now).
pub fn content_size(entries: &[LayerEntry]) -> u64 {
    entries
        .iter()
        .map(|entry| match &entry.kind {
            EntryKind::File(FileSource::Bytes(bytes)) => bytes.len() as u64,
            EntryKind::File(FileSource::Path(path)) => fs::metadata(path).map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Appends an entry; returns the bytes of file contents it added.
fn append_entry<W: Write>(
    tar: &mut Builder<W>,
    entry: &LayerEntry,
    options: &LayerOptions,
) -> io::Result<u64> {
    match &entry.kind {
        EntryKind::File(FileSource::Bytes(bytes)) => {
            append(tar, entry, options, bytes.len() as u64, bytes.as_slice())?;
            Ok(bytes.len() as u64)
        }
        EntryKind::File(FileSource::Path(path)) => {
            let file = File::open(path).map_err(|e| with_path(&e, path))?;
            let metadata = file.metadata().map_err(|e| with_path(&e, path))?;
            if !metadata.is_file() {
                return Err(invalid_input(format!(
                    "layer entry `{}`: {} is not a regular file",
                    entry.path,
                    path.display()
                )));
            }
            let contents = ExactLength {
                file,
                remaining: metadata.len(),
                path,
            };
            append(tar, entry, options, metadata.len(), contents)?;
            Ok(metadata.len())
        }
        _ => append(tar, entry, options, 0, io::empty()).map(|()| 0),
    }
}

fn append<W: Write>(
    tar: &mut Builder<W>,
    entry: &LayerEntry,
    options: &LayerOptions,
    size: u64,
    contents: impl Read,
) -> io::Result<()> {
    let (header, pax) = entry_header(entry, size, options)?;
    if !pax.is_empty() {
        tar.append_pax_extensions(pax.iter().map(|(key, value)| (*key, value.as_bytes())))?;
    }
    tar.append(&header, contents)
}

/// The ustar header of an entry, and the PAX records for the values it cannot hold.
fn entry_header(
    entry: &LayerEntry,
    size: u64,
    options: &LayerOptions,
) -> io::Result<(Header, Vec<(&'static str, String)>)> {
    let mut pax = Vec::new();
    let mut header = Header::new_ustar();
    let name = if entry.kind == EntryKind::Dir {
        format!("{}/", entry.path)
    } else {
        entry.path.clone()
    };
    let ustar = header
        .as_ustar_mut()
        .expect("Header::new_ustar makes a ustar header");
    if let Some((prefix, rest)) = split_ustar_path(name.as_bytes()) {
        ustar.prefix[..prefix.len()].copy_from_slice(prefix);
        ustar.name[..rest.len()].copy_from_slice(rest);
    } else {
        let shortened = &name.as_bytes()[..USTAR_NAME_LEN];
        ustar.name.copy_from_slice(shortened);
        pax.push(("path", name.clone()));
    }

    let (entry_type, link, device) = match &entry.kind {
        EntryKind::File(_) => (EntryType::Regular, None, None),
        EntryKind::Dir => (EntryType::Directory, None, None),
        EntryKind::Symlink(target) => (EntryType::Symlink, Some(target), None),
        EntryKind::Hardlink(target) => (EntryType::Link, Some(target), None),
        EntryKind::Fifo => (EntryType::Fifo, None, None),
        EntryKind::CharDevice { major, minor } => (EntryType::Char, None, Some((major, minor))),
        EntryKind::BlockDevice { major, minor } => (EntryType::Block, None, Some((major, minor))),
    };
    header.set_entry_type(entry_type);
    if let Some(link) = link {
        let bytes = link.as_bytes();
        header.set_link_name_literal(&bytes[..bytes.len().min(USTAR_LINK_LEN)])?;
        if bytes.len() > USTAR_LINK_LEN {
            pax.push(("linkpath", link.clone()));
        }
    }
    if let Some((&major, &minor)) = device {
        if u64::from(major.max(minor)) > USTAR_MAX_ID {
            return Err(invalid_input(format!(
                "layer entry `{}`: device {major}:{minor} does not fit a tar header",
                entry.path
            )));
        }
        header.set_device_major(major)?;
        header.set_device_minor(minor)?;
    }

    let (uid, gid) = options.owner.unwrap_or((entry.uid, entry.gid));
    header.set_size(fit_or_pax(size, USTAR_MAX_NUMBER, "size", &mut pax));
    header.set_uid(fit_or_pax(uid.into(), USTAR_MAX_ID, "uid", &mut pax));
    header.set_gid(fit_or_pax(gid.into(), USTAR_MAX_ID, "gid", &mut pax));
    header.set_mtime(fit_or_pax(
        options.mtime,
        USTAR_MAX_NUMBER,
        "mtime",
        &mut pax,
    ));
    header.set_mode(entry.mode & 0o7777);
    header.set_cksum();
    Ok((header, pax))
}

/// `value` when a ustar field holds it; otherwise records it for PAX and returns 0.
fn fit_or_pax(
    value: u64,
    max: u64,
    key: &'static str,
    pax: &mut Vec<(&'static str, String)>,
) -> u64 {
    if value <= max {
        value
    } else {
        pax.push((key, value.to_string()));
        0
    }
}

/// Splits a path into a ustar `(prefix, name)` pair at a `/`, or `None` when it does not fit.
fn split_ustar_path(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= USTAR_NAME_LEN {
        return Some((&[], path));
    }
    path.iter()
        .enumerate()
        .rev()
        .filter(|&(at, &byte)| byte == b'/' && at <= USTAR_PREFIX_LEN)
        .map(|(at, _)| (&path[..at], &path[at + 1..]))
        .find(|(_, name)| !name.is_empty() && name.len() <= USTAR_NAME_LEN)
}

/// Reads exactly the size a file had when its header was written, failing if it shrinks.
struct ExactLength<'a> {
    file: File,
    remaining: u64,
    path: &'a Path,
}

impl Read for ExactLength<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let limit = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let read = self.file.read(&mut buf[..limit])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: the file shrank while the layer was written",
                    self.path.display()
                ),
            ));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}

/// The compression stage of the output.
enum Compressor<W: Write> {
    Plain(W),
    Gzip(GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    fn new(options: &LayerOptions, out: W) -> io::Result<Self> {
        Ok(match options.compression {
            Compression::None => Compressor::Plain(out),
            Compression::Gzip => {
                if options.gzip_level > 9 {
                    return Err(invalid_input(format!(
                        "gzip level {} is not between 0 and 9",
                        options.gzip_level
                    )));
                }
                Compressor::Gzip(GzEncoder::new(
                    out,
                    flate2::Compression::new(options.gzip_level),
                ))
            }
            Compression::Zstd => {
                Compressor::Zstd(zstd::stream::write::Encoder::new(out, options.zstd_level)?)
            }
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Plain(out) => Ok(out),
            Compressor::Gzip(encoder) => encoder.finish(),
            Compressor::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Plain(out) => out.write(buf),
            Compressor::Gzip(encoder) => encoder.write(buf),
            Compressor::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Plain(out) => out.flush(),
            Compressor::Gzip(encoder) => encoder.flush(),
            Compressor::Zstd(encoder) => encoder.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;
    use crate::layer::{UnpackOptions, unpack_layer};

    const MTIME: u64 = 1_700_000_000;
    const CHILD_EXPECTED_MTIME: &str = "IMAGE_LAYER_TEST_EXPECTED_MTIME";

    fn entry(path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
        LayerEntry {
            path: path.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
        }
    }

    fn file(path: &str, contents: &[u8]) -> LayerEntry {
        entry(
            path,
            EntryKind::File(FileSource::Bytes(contents.to_vec())),
            0o644,
        )
    }

    fn sample() -> Vec<LayerEntry> {
        vec![
            entry("etc", EntryKind::Dir, 0o755),
            file("etc/hosts", b"127.0.0.1 localhost\n"),
            entry(
                "etc/localtime",
                EntryKind::Symlink("/usr/share/zoneinfo/UTC".into()),
                0o777,
            ),
            entry("bin", EntryKind::Dir, 0o755),
            entry(
                "bin/tool",
                EntryKind::File(FileSource::Bytes(b"#!/bin/sh\n".to_vec())),
                0o755,
            ),
            entry("bin/tool2", EntryKind::Hardlink("bin/tool".into()), 0o755),
            file("bin-notes", b"sorts between bin and bin/"),
            entry("opt/", EntryKind::Dir, 0o700),
        ]
    }

    fn options(compression: Compression) -> LayerOptions {
        LayerOptions {
            compression,
            mtime: MTIME,
            owner: None,
            gzip_level: 6,
            zstd_level: 3,
        }
    }

    fn decompress(compression: Compression, bytes: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        match compression {
            Compression::None => plain.extend_from_slice(bytes),
            Compression::Gzip => {
                flate2::read::GzDecoder::new(bytes)
                    .read_to_end(&mut plain)
                    .unwrap();
            }
            Compression::Zstd => plain = zstd::decode_all(bytes).unwrap(),
        }
        plain
    }

    fn write(entries: Vec<LayerEntry>, options: &LayerOptions) -> (Vec<u8>, WrittenLayer) {
        let mut bytes = Vec::new();
        let written = write_layer(entries, options, &mut bytes).unwrap();
        (bytes, written)
    }

    /// Type, path and link target of every raw record of a tar, extension headers included.
    fn raw_records(tar: &[u8]) -> Vec<(EntryType, String)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .raw(true)
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                assert!(header.as_ustar().is_some(), "every header is ustar");
                (
                    header.entry_type(),
                    String::from_utf8_lossy(&header.path_bytes()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn progress_counts_every_byte_of_file_contents() {
        let dir = tempfile::tempdir().unwrap();
        let on_disk = dir.path().join("big");
        fs::write(&on_disk, vec![7u8; 100_000]).unwrap();
        let entries = vec![
            file("a", b"12345"),
            entry("b", EntryKind::File(FileSource::Path(on_disk)), 0o644),
            entry("c", EntryKind::Dir, 0o755),
        ];
        assert_eq!(content_size(&entries), 100_005);
        for compression in [Compression::None, Compression::Zstd] {
            let mut reported = Vec::new();
            let options = LayerOptions {
                compression,
                ..LayerOptions::default()
            };
            write_layer_reporting(entries.clone(), &options, io::sink(), &mut |n| {
                reported.push(n);
            })
            .unwrap();
            assert_eq!(reported, [5, 100_000, 0]);
        }
    }

    #[test]
    fn any_order_gives_the_same_bytes_and_digests() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let options = options(compression);
            let (forward, first) = write(sample(), &options);
            let (backward, second) = write(sample().into_iter().rev().collect(), &options);
            let mut rotated_entries = sample();
            rotated_entries.rotate_left(3);
            rotated_entries.extend(sample());
            let (rotated, third) = write(rotated_entries, &options);

            assert_eq!(forward, backward, "{compression:?}");
            assert_eq!(forward, rotated, "{compression:?}");
            assert_eq!((&first, &first), (&second, &third));
            assert_eq!(first.digest, Digest::of(&forward));
            assert_eq!(first.size, forward.len() as u64);
            assert_eq!(
                first.diff_id,
                Digest::of(&decompress(compression, &forward))
            );
            assert_eq!(first.media_type, compression.media_type());
        }
    }

    #[test]
    fn headers_hold_only_fixed_metadata() {
        let mut options = options(Compression::None);
        options.owner = Some((1000, 1001));
        let (tar, _) = write(sample(), &options);
        assert!(tar.ends_with(&[0; 1024]));

        let mut archive = tar::Archive::new(tar.as_slice());
        let mut listing = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert!(header.as_ustar().is_some());
            assert_eq!(header.mtime().unwrap(), MTIME);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (1000, 1001));
            assert_eq!(header.username_bytes(), Some(&b""[..]));
            assert_eq!(header.groupname_bytes(), Some(&b""[..]));
            listing.push(format!(
                "{} {:o}",
                String::from_utf8_lossy(&entry.path_bytes()),
                header.mode().unwrap()
            ));
        }
        assert_eq!(
            listing,
            [
                "bin/ 755",
                "bin-notes 644",
                "bin/tool 755",
                "bin/tool2 755",
                "etc/ 755",
                "etc/hosts 644",
                "etc/localtime 777",
                "opt/ 700",
            ]
        );
    }

    #[test]
    fn long_names_use_pax_records_not_gnu_ones() {
        let split = format!("{}/{}", "p".repeat(80), "n".repeat(60));
        let long_file = format!("{}/{}/{}", "d".repeat(120), "e".repeat(120), "f".repeat(60));
        let long_dir = "x".repeat(100);
        let long_target = "t".repeat(200);
        let entries = vec![
            entry(&"d".repeat(120), EntryKind::Dir, 0o755),
            entry(
                &format!("{}/{}", "d".repeat(120), "e".repeat(120)),
                EntryKind::Dir,
                0o755,
            ),
            file(&long_file, b"long"),
            entry(&"p".repeat(80), EntryKind::Dir, 0o755),
            file(&split, b"split"),
            entry(&long_dir, EntryKind::Dir, 0o755),
            entry("s", EntryKind::Symlink(long_target.clone()), 0o777),
        ];
        let (tar, _) = write(entries, &options(Compression::None));

        let records = raw_records(&tar);
        let types: Vec<_> = records.iter().map(|(t, _)| *t).collect();
        assert!(
            !types
                .iter()
                .any(|t| t.is_gnu_longname() || t.is_gnu_longlink())
        );
        let extensions = types.iter().filter(|t| t.is_pax_local_extensions()).count();
        assert_eq!(extensions, 5, "{records:?}");
        assert!(records.iter().any(|(_, path)| *path == split));

        let mut archive = tar::Archive::new(tar.as_slice());
        let mut found = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let link = entry.link_name_bytes().map(std::borrow::Cow::into_owned);
            found.insert(entry.path_bytes().into_owned(), link);
        }
        assert!(found.contains_key(long_file.as_bytes()));
        assert!(found.contains_key(format!("{long_dir}/").as_bytes()));
        assert_eq!(found[&b"s"[..]], Some(long_target.into_bytes()));
    }

    #[test]
    fn values_beyond_ustar_go_to_pax_records() {
        let options = options(Compression::None);
        let big = file("big", b"");
        let (header, pax) = entry_header(&big, 8 << 30, &options).unwrap();
        assert_eq!(pax, [("size", "8589934592".to_owned())]);
        assert_eq!(header.entry_size().unwrap(), 0);
        let (header, pax) = entry_header(&big, (8 << 30) - 1, &options).unwrap();
        assert!(pax.is_empty());
        assert_eq!(header.entry_size().unwrap(), (8 << 30) - 1);

        let mut owned = big.clone();
        owned.uid = 3_000_000;
        let (header, pax) = entry_header(&owned, 1, &options).unwrap();
        assert_eq!(pax, [("uid", "3000000".to_owned())]);
        assert_eq!(header.uid().unwrap(), 0);
    }

    #[test]
    fn source_date_epoch_must_be_whole_seconds() {
        assert_eq!(source_date_epoch(Some("1700000000")), Some(1_700_000_000));
        for invalid in [
            "",
            " 1",
            "-1",
            "+1",
            "1.5",
            "soon",
            "99999999999999999999999",
        ] {
            assert_eq!(source_date_epoch(Some(invalid)), None, "{invalid:?}");
        }
        assert_eq!(source_date_epoch(None), None);
    }

    /// Runs only inside `default_options_read_source_date_epoch`, which sets the environment
    /// of a child test process (tests cannot set their own environment safely).
    #[test]
    fn default_mtime_in_child_process() {
        let Ok(expected) = std::env::var(CHILD_EXPECTED_MTIME) else {
            return;
        };
        let options = LayerOptions {
            compression: Compression::None,
            ..LayerOptions::default()
        };
        assert_eq!(options.mtime.to_string(), expected);
        let (tar, _) = write(vec![file("f", b"")], &options);
        let header = tar::Header::from_byte_slice(&tar[..512]);
        assert_eq!(header.mtime().unwrap().to_string(), expected);
    }

    #[test]
    fn default_options_read_source_date_epoch() {
        for (value, expected) in [("1234567890", "1234567890"), ("yesterday", "0")] {
            let output = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "layer::writer::tests::default_mtime_in_child_process",
                ])
                .env("SOURCE_DATE_EPOCH", value)
                .env(CHILD_EXPECTED_MTIME, expected)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{stdout}");
            assert!(stdout.contains("1 passed"), "{stdout}");
        }
    }

    #[test]
    fn invalid_entries_are_refused() {
        let options = options(Compression::None);
        let refused = |entries: Vec<LayerEntry>| {
            write_layer(entries, &options, io::sink())
                .unwrap_err()
                .to_string()
        };
        for path in ["", "/abs", "a/../b", "a//b", "./a", "..", "a/."] {
            assert!(
                refused(vec![file(path, b"")]).contains("must be relative"),
                "{path:?}"
            );
        }
        assert_eq!(
            refused(vec![file("a", b"1"), file("a", b"2")]),
            "layer entry `a` is given twice, differently"
        );
        assert!(
            refused(vec![file("a", b""), entry("a/b", EntryKind::Dir, 0o755)])
                .contains("its parent `a` is not a directory")
        );
        assert!(
            refused(vec![
                entry("a", EntryKind::Hardlink("b".into()), 0o644),
                file("b", b""),
            ])
            .contains("a hard link must point to a file that comes before it")
        );
        assert!(
            refused(vec![entry("s", EntryKind::Symlink(String::new()), 0o777)])
                .contains("symlink target")
        );
        let mut level = options.clone();
        level.compression = Compression::Gzip;
        level.gzip_level = 10;
        assert!(write_layer(vec![file("a", b"")], &level, io::sink()).is_err());
    }

    /// Path, type, mode, contents or link target of everything under `root`, and which paths
    /// share an inode.
    fn describe(root: &Path) -> Vec<String> {
        let mut lines = Vec::new();
        let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for child in fs::read_dir(&dir).unwrap() {
                let path = child.unwrap().path();
                let name = path.strip_prefix(root).unwrap().display().to_string();
                let metadata = fs::symlink_metadata(&path).unwrap();
                let mode = metadata.mode() & 0o7777;
                let what = if metadata.is_symlink() {
                    format!("symlink -> {}", fs::read_link(&path).unwrap().display())
                } else if metadata.is_dir() {
                    pending.push(path.clone());
                    format!("dir {mode:o}")
                } else {
                    inodes.entry(metadata.ino()).or_default().push(name.clone());
                    format!("file {mode:o} {:?}", fs::read_to_string(&path).unwrap())
                };
                lines.push(format!("{name}: {what}"));
            }
        }
        lines.extend(
            inodes
                .into_values()
                .filter(|names| names.len() > 1)
                .map(|mut names| {
                    names.sort();
                    format!("linked: {}", names.join(" "))
                }),
        );
        lines.sort();
        lines
    }

    #[test]
    fn directory_trees_round_trip() {
        let source = tempfile::tempdir().unwrap();
        let root = source.path();
        fs::create_dir(root.join("bin")).unwrap();
        fs::create_dir(root.join("empty")).unwrap();
        fs::write(root.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("readme"), b"hello").unwrap();
        fs::set_permissions(root.join("readme"), fs::Permissions::from_mode(0o640)).unwrap();
        symlink("readme", root.join("link")).unwrap();
        fs::hard_link(root.join("readme"), root.join("a-hard")).unwrap();

        let entries = entries_from_dir(root).unwrap();
        let listing: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            listing,
            ["a-hard", "bin", "bin/tool", "empty", "link", "readme"]
        );
        assert!(matches!(
            entries[0].kind,
            EntryKind::File(FileSource::Path(_))
        ));
        assert_eq!(entries[5].kind, EntryKind::Hardlink("a-hard".into()));
        assert_eq!(entries[4].kind, EntryKind::Symlink("readme".into()));
        assert_eq!(
            entries[1].mode,
            fs::metadata(root.join("bin")).unwrap().mode() & 0o7777
        );

        let (layer, _) = write(entries, &options(Compression::Gzip));
        let unpacked = tempfile::tempdir().unwrap();
        unpack_layer(layer.as_slice(), unpacked.path(), &UnpackOptions::default()).unwrap();
        assert_eq!(describe(unpacked.path()), describe(root));
        assert!(describe(root).contains(&"linked: a-hard readme".to_owned()));
        for path in ["bin", "bin/tool", "empty", "readme"] {
            let modified = fs::metadata(unpacked.path().join(path))
                .unwrap()
                .modified()
                .unwrap();
            assert_eq!(
                modified,
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(MTIME)
            );
        }
    }

    #[test]
    fn sockets_are_refused_and_fifos_kept() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let error = entries_from_dir(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("control.sock") && error.contains("socket"),
            "{error}"
        );

        let fifos = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(fifos.path().join("pipe"))
            .status();
        if !made.is_ok_and(|status| status.success()) {
            return;
        }
        let entries = entries_from_dir(fifos.path()).unwrap();
        assert_eq!(entries[0].kind, EntryKind::Fifo);
        let (tar, _) = write(entries, &options(Compression::None));
        assert_eq!(raw_records(&tar), [(EntryType::Fifo, "pipe".to_owned())]);
    }

    /// A reproducible stream of bytes that do not compress to nothing.
    struct Generated(u64);

    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            for chunk in buf.chunks_mut(8) {
                self.0 = self
                    .0
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
            }
            Ok(buf.len())
        }
    }

    fn same_contents(a: &Path, b: &Path) -> bool {
        let (mut a, mut b) = (File::open(a).unwrap(), File::open(b).unwrap());
        let (mut chunk_a, mut chunk_b) = (vec![0; 1 << 16], vec![0; 1 << 16]);
        loop {
            let read = read_full(&mut a, &mut chunk_a);
            if read != read_full(&mut b, &mut chunk_b) || chunk_a[..read] != chunk_b[..read] {
                return false;
            }
            if read == 0 {
                return true;
            }
        }
    }

    fn read_full(file: &mut File, buf: &mut [u8]) -> usize {
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(&mut buf[filled..]).unwrap() {
                0 => break,
                read => filled += read,
            }
        }
        filled
    }

    fn peak_memory_kib() -> Option<u64> {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    #[test]
    fn large_files_stream_through() {
        const SIZE: u64 = 64 << 20;
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("big");
        io::copy(
            &mut Generated(7).take(SIZE),
            &mut File::create(&source).unwrap(),
        )
        .unwrap();
        let peak_before = peak_memory_kib();

        let layer_path = dir.path().join("layer.tar");
        let big = entry(
            "data/big",
            EntryKind::File(FileSource::Path(source.clone())),
            0o600,
        );
        let written = write_layer(
            vec![big],
            &options(Compression::None),
            File::create(&layer_path).unwrap(),
        )
        .unwrap();
        assert_eq!(written.size, 512 + SIZE + 1024);
        assert_eq!(written.digest, written.diff_id);

        let target = dir.path().join("unpacked");
        let stats = unpack_layer(
            File::open(&layer_path).unwrap(),
            &target,
            &UnpackOptions::default(),
        )
        .unwrap();
        assert_eq!(stats.bytes, SIZE);
        assert!(same_contents(&source, &target.join("data/big")));

        if let (Some(before), Some(after)) = (peak_before, peak_memory_kib()) {
            assert!(
                after - before < 24 * 1024,
                "peak memory grew by {} KiB",
                after - before
            );
        }
    }
}
