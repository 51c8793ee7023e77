//! Applying a layer onto a directory, with OCI/Docker whiteouts. Every entry is checked before
//! anything is written: no absolute paths, no `..`, no hard link leaving the layer, no symlink
//! climbing above the root, and no symlink on the way to any path that is written or deleted,
//! so nothing outside the target directory is ever created, changed or removed.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read};
use std::ops::Bound;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::read::MultiGzDecoder;
use tar::{Archive, Entry, EntryType};

use super::Compression;

/// Name prefix of a whiteout, as bytes.
const WHITEOUT_PREFIX: &[u8] = super::WHITEOUT_PREFIX.as_bytes();
/// Whiteout names that carry metadata of the aufs driver rather than deletions.
const WHITEOUT_METADATA_PREFIX: &[u8] = b".wh..wh.";
/// The opaque marker, as bytes.
const OPAQUE_MARKER: &[u8] = super::OPAQUE_WHITEOUT.as_bytes();

/// How a layer is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Give entries the owners the layer records (needs privileges); otherwise they belong to
    /// the current user.
    pub preserve_owner: bool,
    /// When not empty, only these subtrees (relative `/`-separated paths) are applied: entries
    /// elsewhere, and whiteouts of paths elsewhere, are skipped (so is a hard link whose
    /// target is elsewhere). Directories on the way to a subtree are applied.
    pub only_under: Vec<String>,
}

impl UnpackOptions {
    /// True when the path (or the path a whiteout hides) is to be applied.
    fn wants(&self, relative: &Path) -> bool {
        if self.only_under.is_empty() {
            return true;
        }
        let path = relative.as_os_str().as_bytes();
        self.only_under.iter().any(|subtree| {
            let subtree = subtree.as_bytes();
            let nested = |inner: &[u8], outer: &[u8]| {
                inner.len() > outer.len() && inner.starts_with(outer) && inner[outer.len()] == b'/'
            };
            path.is_empty() || path == subtree || nested(path, subtree) || nested(subtree, path)
        })
    }
}

/// What applying a layer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries applied, whiteouts included.
    pub entries: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
}

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry breaks one of the safety rules; nothing was done for it.
    #[error("layer entry `{entry}`: {refusal}")]
    Refused {
        /// The entry's path as the layer spells it.
        entry: String,
        /// The rule it breaks.
        refusal: Refusal,
    },
    /// Applying an entry failed.
    #[error("layer entry `{entry}`: {source}")]
    Entry {
        /// The entry's path as the layer spells it.
        entry: String,
        /// What failed.
        source: io::Error,
    },
    /// The layer is not a readable (possibly compressed) tar.
    #[error("cannot read the layer: {0}")]
    Read(#[source] io::Error),
    /// The target directory cannot be created.
    #[error("cannot create the target directory: {0}")]
    Target(#[source] io::Error),
}

/// The safety and format rules a layer entry can break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The path starts with `/`.
    #[error("paths must be relative")]
    AbsolutePath,
    /// The path (or a whiteout's name) has a `..` component.
    #[error("paths may not contain `..`")]
    ParentComponent,
    /// A hard link names an absolute path.
    #[error("hardlink target `{0}` is absolute; hard links name paths of the layer")]
    AbsoluteHardlink(String),
    /// A hard link's target resolves above the target directory.
    #[error("hardlink target `{0}` climbs out of the target")]
    HardlinkEscapes(String),
    /// A relative symlink resolves above the root from the link's directory.
    #[error("symlink target `{0}` climbs above the root")]
    SymlinkEscapes(String),
    /// A link without a target, or a hard link to the root.
    #[error("a link needs a target")]
    MissingLinkTarget,
    /// A directory on the way to the path is a symlink.
    #[error("`{0}` is a symlink, and symlinks are never followed while unpacking")]
    ThroughSymlink(String),
    /// A directory on the way to the path is something else.
    #[error("`{0}` is not a directory")]
    NotADirectory(String),
    /// `.wh.` or `.wh..`, which name no file.
    #[error("a whiteout must name a file")]
    EmptyWhiteout,
    /// Fifos, devices and unknown entry types are not created.
    #[error("{0} entries are not supported")]
    UnsupportedType(String),
}

/// Applies the layer read from `reader` (a tar, plain or gzip or zstd compressed, detected from
/// its first bytes) onto `target`, which is created if needed. Whiteouts delete from what
/// `target` held before. The reader is read to its end, so a hashing reader around it sees
/// the whole blob.
pub fn unpack_layer(
    mut reader: impl Read,
    target: &Path,
    options: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    fs::create_dir_all(target).map_err(UnpackError::Target)?;
    let mut magic = [0; 4];
    let magic_len = read_up_to(&mut reader, &mut magic).map_err(UnpackError::Read)?;
    let magic = &magic[..magic_len];
    let stream = magic.chain(reader);
    let tar: Box<dyn Read + '_> = match Compression::from_magic(magic) {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(MultiGzDecoder::new(stream)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(stream).map_err(UnpackError::Read)?)
        }
    };

    let mut archive = Archive::new(tar);
    let mut unpacker = Unpacker {
        target,
        options,
        written: BTreeSet::new(),
        directories: Vec::new(),
        stats: UnpackStats::default(),
    };
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        unpacker
            .apply(&mut entry)
            .map_err(|failure| failure.for_entry(name))?;
    }
    unpacker.finish_directories()?;
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(UnpackError::Read)?;
    Ok(unpacker.stats)
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Why one entry failed, before it is attached to the entry's name.
enum Failure {
    Refused(Refusal),
    Io(io::Error),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Failure::Refused(refusal)
    }
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Io(error)
    }
}

impl Failure {
    fn for_entry(self, entry: String) -> UnpackError {
        match self {
            Failure::Refused(refusal) => UnpackError::Refused { entry, refusal },
            Failure::Io(source) => UnpackError::Entry { entry, source },
        }
    }
}

/// Mode, owner (when it is to be applied) and modification time of an entry.
struct Attributes {
    mode: u32,
    owner: Option<(u32, u32)>,
    mtime: SystemTime,
}

impl Attributes {
    fn of<R: Read>(entry: &mut Entry<'_, R>, with_owner: bool) -> io::Result<Self> {
        let header = entry.header();
        let mode = header.mode()? & 0o7777;
        let id = |value: u64| {
            u32::try_from(value).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "owner id does not fit 32 bits")
            })
        };
        let owner = if with_owner {
            Some((id(header.uid()?)?, id(header.gid()?)?))
        } else {
            None
        };
        let mut seconds = header.mtime()?;
        if let Some(extensions) = entry.pax_extensions()? {
            let pax_mtime = extensions
                .filter_map(Result::ok)
                .filter(|extension| extension.key_bytes() == b"mtime")
                .filter_map(|extension| extension.value().ok()?.split('.').next()?.parse().ok())
                .last();
            seconds = pax_mtime.unwrap_or(seconds);
        }
        let mtime = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(seconds))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "mtime out of range"))?;
        Ok(Attributes { mode, owner, mtime })
    }
}

/// A directory whose mode and mtime are set once everything inside it is written.
struct PendingDirectory {
    relative: PathBuf,
    device: u64,
    inode: u64,
    mode: u32,
    mtime: SystemTime,
}

struct Unpacker<'a> {
    target: &'a Path,
    options: &'a UnpackOptions,
    /// Paths this layer created, which its own whiteouts leave alone.
    written: BTreeSet<PathBuf>,
    directories: Vec<PendingDirectory>,
    stats: UnpackStats,
}

impl Unpacker<'_> {
    fn apply<R: Read>(&mut self, entry: &mut Entry<'_, R>) -> Result<(), Failure> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            return Ok(());
        }
        let relative = relative_path(&entry.path_bytes())?;
        let Some(file_name) = relative.file_name() else {
            return Ok(());
        };
        if let Some(hidden) = file_name.as_bytes().strip_prefix(WHITEOUT_PREFIX) {
            let hidden = hidden.to_vec();
            let hidden_path = if file_name.as_bytes() == OPAQUE_MARKER {
                relative.parent().map(Path::to_path_buf).unwrap_or_default()
            } else {
                relative.with_file_name(OsStr::from_bytes(&hidden))
            };
            if !self.options.wants(&hidden_path) {
                return Ok(());
            }
            self.apply_whiteout(&relative, &hidden)?;
        } else {
            let unwanted_link_target = kind == EntryType::Link
                && link_target_path(entry).is_ok_and(|target| !self.options.wants(&target));
            if !self.options.wants(&relative) || unwanted_link_target {
                return Ok(());
            }
            match kind {
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    self.write_file(&relative, entry)?;
                }
                EntryType::Directory => self.make_directory(&relative, entry)?,
                EntryType::Symlink => self.make_symlink(&relative, entry)?,
                EntryType::Link => self.make_hardlink(&relative, entry)?,
                EntryType::Fifo => return Err(Refusal::UnsupportedType("fifo".into()).into()),
                EntryType::Char | EntryType::Block => {
                    return Err(Refusal::UnsupportedType("device".into()).into());
                }
                other => {
                    let name = format!("type `{}`", char::from(other.as_byte()));
                    return Err(Refusal::UnsupportedType(name).into());
                }
            }
            self.written.insert(relative);
        }
        self.stats.entries += 1;
        Ok(())
    }

    fn write_file<R: Read>(
        &mut self,
        relative: &Path,
        entry: &mut Entry<'_, R>,
    ) -> Result<(), Failure> {
        let attributes = Attributes::of(entry, self.options.preserve_owner)?;
        self.check_parents(relative, true)?;
        let full = self.target.join(relative);
        remove_existing(&full, false)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&full)?;
        self.stats.bytes += io::copy(entry, &mut file)?;
        if let Some((uid, gid)) = attributes.owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
        file.set_permissions(Permissions::from_mode(attributes.mode))?;
        file.set_modified(attributes.mtime)?;
        Ok(())
    }

    fn make_directory<R: Read>(
        &mut self,
        relative: &Path,
        entry: &mut Entry<'_, R>,
    ) -> Result<(), Failure> {
        let attributes = Attributes::of(entry, self.options.preserve_owner)?;
        self.check_parents(relative, true)?;
        let full = self.target.join(relative);
        remove_existing(&full, true)?;
        match DirBuilder::new().mode(0o700).create(&full) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            result => result?,
        }
        if let Some((uid, gid)) = attributes.owner {
            std::os::unix::fs::lchown(&full, Some(uid), Some(gid))?;
        }
        let metadata = fs::symlink_metadata(&full)?;
        self.directories.push(PendingDirectory {
            relative: relative.to_path_buf(),
            device: metadata.dev(),
            inode: metadata.ino(),
            mode: attributes.mode,
            mtime: attributes.mtime,
        });
        Ok(())
    }

    fn make_symlink<R: Read>(
        &mut self,
        relative: &Path,
        entry: &mut Entry<'_, R>,
    ) -> Result<(), Failure> {
        let link_target = link_target(entry)?;
        if !link_target.starts_with(b"/") {
            let mut depth = relative.components().count() - 1;
            for part in link_target.split(|&b| b == b'/') {
                match part {
                    b"" | b"." => {}
                    b".." => {
                        depth = depth.checked_sub(1).ok_or_else(|| {
                            Refusal::SymlinkEscapes(String::from_utf8_lossy(&link_target).into())
                        })?;
                    }
                    _ => depth += 1,
                }
            }
        }
        let attributes = Attributes::of(entry, self.options.preserve_owner)?;
        self.check_parents(relative, true)?;
        let full = self.target.join(relative);
        remove_existing(&full, false)?;
        std::os::unix::fs::symlink(OsStr::from_bytes(&link_target), &full)?;
        if let Some((uid, gid)) = attributes.owner {
            std::os::unix::fs::lchown(&full, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    fn make_hardlink<R: Read>(
        &mut self,
        relative: &Path,
        entry: &mut Entry<'_, R>,
    ) -> Result<(), Failure> {
        let link_target = link_target(entry)?;
        let shown = || String::from_utf8_lossy(&link_target).into_owned();
        if link_target.starts_with(b"/") {
            return Err(Refusal::AbsoluteHardlink(shown()).into());
        }
        let mut source = PathBuf::new();
        for part in link_target.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    if !source.pop() {
                        return Err(Refusal::HardlinkEscapes(shown()).into());
                    }
                }
                _ => source.push(OsStr::from_bytes(part)),
            }
        }
        if source.as_os_str().is_empty() {
            return Err(Refusal::MissingLinkTarget.into());
        }
        if !self.check_parents(&source, false)?
            || fs::symlink_metadata(self.target.join(&source)).is_err()
        {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("hardlink target `{}` does not exist", shown()),
            )
            .into());
        }
        self.check_parents(relative, true)?;
        if source == relative {
            return Ok(());
        }
        let full = self.target.join(relative);
        remove_existing(&full, false)?;
        fs::hard_link(self.target.join(&source), &full)?;
        Ok(())
    }

    /// Applies `.wh.<hidden>` (or the opaque marker) found at `marker`.
    fn apply_whiteout(&mut self, marker: &Path, hidden: &[u8]) -> Result<(), Failure> {
        if !self.check_parents(marker, false)? {
            return Ok(());
        }
        let directory = marker.parent().unwrap_or(Path::new(""));
        let marker_name = marker.file_name().unwrap_or_default().as_bytes();
        if marker_name == OPAQUE_MARKER {
            for child in fs::read_dir(self.target.join(directory))? {
                self.remove_lower(&directory.join(child?.file_name()))?;
            }
            return Ok(());
        }
        if marker_name.starts_with(WHITEOUT_METADATA_PREFIX) {
            return Ok(());
        }
        match hidden {
            b"" | b"." => Err(Refusal::EmptyWhiteout.into()),
            b".." => Err(Refusal::ParentComponent.into()),
            _ => Ok(self.remove_lower(&directory.join(OsStr::from_bytes(hidden)))?),
        }
    }

    /// Removes what the lower layers put at `relative`, keeping what this layer wrote.
    fn remove_lower(&self, relative: &Path) -> io::Result<()> {
        let full = self.target.join(relative);
        let metadata = match fs::symlink_metadata(&full) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            result => result?,
        };
        if !self.written_at_or_below(relative) {
            return if metadata.is_dir() {
                fs::remove_dir_all(&full)
            } else {
                fs::remove_file(&full)
            };
        }
        if metadata.is_dir() {
            for child in fs::read_dir(&full)? {
                self.remove_lower(&relative.join(child?.file_name()))?;
            }
        }
        Ok(())
    }

    fn written_at_or_below(&self, relative: &Path) -> bool {
        self.written
            .range::<Path, _>((Bound::Included(relative), Bound::Unbounded))
            .next()
            .is_some_and(|first| first.starts_with(relative))
    }

    /// Checks that every directory above `relative` is a real directory, never a symlink.
    /// Missing ones are created when `create` is set; otherwise the answer is whether they
    /// all exist.
    fn check_parents(&mut self, relative: &Path, create: bool) -> Result<bool, Failure> {
        let Some(parent) = relative.parent() else {
            return Ok(true);
        };
        let mut current = PathBuf::new();
        for component in parent.components() {
            current.push(component);
            let full = self.target.join(&current);
            match fs::symlink_metadata(&full) {
                Ok(metadata) if metadata.is_symlink() => {
                    return Err(Refusal::ThroughSymlink(current.display().to_string()).into());
                }
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => return Err(Refusal::NotADirectory(current.display().to_string()).into()),
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    DirBuilder::new().mode(0o755).create(&full)?;
                    self.written.insert(current.clone());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    /// Sets the mode and mtime of the directories the layer listed, now that nothing more is
    /// written inside them. A directory that a later entry replaced is left alone.
    fn finish_directories(&mut self) -> Result<(), UnpackError> {
        for pending in std::mem::take(&mut self.directories) {
            self.finish_directory(&pending)
                .map_err(|failure| failure.for_entry(pending.relative.display().to_string()))?;
        }
        Ok(())
    }

    fn finish_directory(&mut self, pending: &PendingDirectory) -> Result<(), Failure> {
        if !matches!(self.check_parents(&pending.relative, false), Ok(true)) {
            return Ok(());
        }
        let full = self.target.join(&pending.relative);
        let same = |metadata: &fs::Metadata| {
            metadata.is_dir() && (metadata.dev(), metadata.ino()) == (pending.device, pending.inode)
        };
        if !fs::symlink_metadata(&full).is_ok_and(|metadata| same(&metadata)) {
            return Ok(());
        }
        let directory = File::open(&full)?;
        if same(&directory.metadata()?) {
            directory.set_permissions(Permissions::from_mode(pending.mode))?;
            directory.set_modified(pending.mtime)?;
        }
        Ok(())
    }
}

/// The path of an entry below the target, without `.` components; empty for the root.
fn relative_path(raw: &[u8]) -> Result<PathBuf, Refusal> {
    if raw.starts_with(b"/") {
        return Err(Refusal::AbsolutePath);
    }
    let mut path = PathBuf::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(Refusal::ParentComponent),
            _ => path.push(OsStr::from_bytes(part)),
        }
    }
    Ok(path)
}

/// A hard link's target as a path below the target directory.
fn link_target_path<R: Read>(entry: &Entry<'_, R>) -> Result<PathBuf, Refusal> {
    relative_path(&link_target(entry)?)
}

fn link_target<R: Read>(entry: &Entry<'_, R>) -> Result<Vec<u8>, Refusal> {
    entry
        .link_name_bytes()
        .filter(|target| !target.is_empty())
        .map(std::borrow::Cow::into_owned)
        .ok_or(Refusal::MissingLinkTarget)
}

/// Clears `full` for a new entry: removes what is there, except a directory when `keep_dir`
/// is set. Symlinks are removed, never followed.
fn remove_existing(full: &Path, keep_dir: bool) -> io::Result<()> {
    match fs::symlink_metadata(full) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(metadata) if metadata.is_dir() => {
            if keep_dir {
                Ok(())
            } else {
                fs::remove_dir_all(full)
            }
        }
        Ok(_) => fs::remove_file(full),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;
    use crate::digest::{Digest, HashingReader};
    use crate::layer::{EntryKind, FileSource, LayerEntry, LayerOptions, write_layer};

    const MTIME: u64 = 1_600_000_000;

    fn entry(path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
        LayerEntry {
            path: path.to_owned(),
            kind,
            mode,
            uid: 1234,
            gid: 5678,
        }
    }

    fn file(path: &str, contents: &str) -> LayerEntry {
        entry(
            path,
            EntryKind::File(FileSource::Bytes(contents.as_bytes().to_vec())),
            0o644,
        )
    }

    fn dir(path: &str) -> LayerEntry {
        entry(path, EntryKind::Dir, 0o755)
    }

    fn layer(entries: Vec<LayerEntry>, compression: Compression) -> Vec<u8> {
        let options = LayerOptions {
            compression,
            mtime: MTIME,
            owner: None,
            gzip_level: 6,
            zstd_level: 3,
        };
        let mut bytes = Vec::new();
        write_layer(entries, &options, &mut bytes).unwrap();
        bytes
    }

    fn unpack(bytes: &[u8], target: &Path) -> Result<UnpackStats, UnpackError> {
        unpack_layer(bytes, target, &UnpackOptions::default())
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    /// Every path under `root`, relative, sorted.
    fn paths(root: &Path) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for child in fs::read_dir(&dir).unwrap() {
                let path = child.unwrap().path();
                if fs::symlink_metadata(&path).unwrap().is_dir() {
                    pending.push(path.clone());
                }
                found.insert(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
        found
    }

    /// Path, type and link target of a hand-made tar entry.
    type RawEntry<'a> = (&'a str, EntryType, &'a str);

    /// A tar written header by header, so it can hold what `write_layer` refuses to write.
    fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for &(name, kind, link) in entries {
            let mut header = tar::Header::new_ustar();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            header.set_entry_type(kind);
            header.set_mode(0o755);
            header.set_uid(0);
            header.set_gid(0);
            let contents: &[u8] = if kind == EntryType::Regular {
                b"payload"
            } else {
                b""
            };
            header.set_size(contents.len() as u64);
            header.set_cksum();
            builder.append(&header, contents).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// A target directory next to a sentinel directory that no layer may touch.
    struct Sandbox {
        root: tempfile::TempDir,
    }

    impl Sandbox {
        fn new() -> Self {
            let root = tempfile::tempdir().unwrap();
            fs::create_dir(root.path().join("target")).unwrap();
            fs::create_dir(root.path().join("sentinel")).unwrap();
            fs::write(root.path().join("sentinel/file"), "original").unwrap();
            Sandbox { root }
        }

        fn target(&self) -> PathBuf {
            self.root.path().join("target")
        }

        fn sentinel(&self) -> PathBuf {
            self.root.path().join("sentinel")
        }

        fn assert_untouched_outside(&self) {
            let around = paths(self.root.path());
            let outside: BTreeSet<_> = around
                .iter()
                .filter(|path| !path.starts_with("target"))
                .map(String::as_str)
                .collect();
            assert_eq!(outside, BTreeSet::from(["sentinel", "sentinel/file"]));
            assert_eq!(read(&self.sentinel().join("file")), "original");
            let metadata = fs::metadata(self.sentinel().join("file")).unwrap();
            assert_eq!(metadata.nlink(), 1);
        }
    }

    #[test]
    fn long_names_round_trip() {
        let long_dir = format!("{}/{}", "d".repeat(120), "e".repeat(120));
        let long_file = format!("{long_dir}/{}", "f".repeat(200));
        let split_file = format!("{}/{}", "p".repeat(90), "n".repeat(90));
        let long_target = format!("/{}", "t".repeat(250));
        let entries = vec![
            file(&long_file, "long"),
            file(&split_file, "split"),
            entry("link", EntryKind::Symlink(long_target.clone()), 0o777),
            entry("hard", EntryKind::Hardlink(long_file.clone()), 0o644),
            dir(&"x".repeat(101)),
        ];
        let sandbox = Sandbox::new();
        let target = sandbox.target();
        let stats = unpack(&layer(entries, Compression::Gzip), &target).unwrap();
        assert_eq!(stats.entries, 5);
        assert_eq!(read(&target.join(&long_file)), "long");
        assert_eq!(read(&target.join(&split_file)), "split");
        assert_eq!(read(&target.join("hard")), "long");
        assert_eq!(
            fs::read_link(target.join("link")).unwrap(),
            Path::new(&long_target)
        );
        assert!(target.join("x".repeat(101)).is_dir());
    }

    #[test]
    fn only_under_applies_the_chosen_subtrees_and_their_whiteouts() {
        let only = UnpackOptions {
            only_under: vec!["charts".into(), "manifests/sub".into()],
            ..UnpackOptions::default()
        };
        let lower = layer(
            vec![
                file("bin/kubectl", "binary"),
                file("charts/a/Chart.yaml", "a"),
                file("charts/b/Chart.yaml", "b"),
                file("manifests/top.yaml", "top"),
                file("manifests/sub/x.yaml", "x"),
            ],
            Compression::Gzip,
        );
        let upper = layer(
            vec![
                file("charts/.wh.b", ""),
                file("bin/.wh.kubectl", ""),
                entry(
                    "charts/hard",
                    EntryKind::Hardlink("bin/kubectl".into()),
                    0o644,
                ),
            ],
            Compression::None,
        );
        let target = tempfile::tempdir().unwrap();
        for blob in [&lower, &upper] {
            unpack_layer(blob.as_slice(), target.path(), &only).unwrap();
        }
        assert_eq!(
            paths(target.path()),
            BTreeSet::from([
                "charts".into(),
                "charts/a".into(),
                "charts/a/Chart.yaml".into(),
                "manifests".into(),
                "manifests/sub".into(),
                "manifests/sub/x.yaml".into(),
            ])
        );
    }

    #[test]
    fn every_compression_gives_the_same_tree_and_reads_the_whole_blob() {
        let entries = || {
            vec![
                dir("etc"),
                file("etc/hosts", "localhost"),
                entry("etc/link", EntryKind::Symlink("hosts".into()), 0o777),
            ]
        };
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let bytes = layer(entries(), compression);
            let target = tempfile::tempdir().unwrap();
            let mut reader = HashingReader::new(bytes.as_slice());
            let stats =
                unpack_layer(&mut reader, target.path(), &UnpackOptions::default()).unwrap();
            assert_eq!(reader.finish(), (Digest::of(&bytes), bytes.len() as u64));
            assert_eq!(
                stats,
                UnpackStats {
                    entries: 3,
                    bytes: 9
                }
            );
            assert_eq!(
                paths(target.path()),
                BTreeSet::from(["etc".into(), "etc/hosts".into(), "etc/link".into()])
            );
        }
    }

    #[test]
    fn modes_mtimes_and_owners_are_applied() {
        let entries = vec![
            entry("ro", EntryKind::Dir, 0o555),
            file("ro/inside", "x"),
            entry(
                "suid",
                EntryKind::File(FileSource::Bytes(Vec::new())),
                0o4750,
            ),
        ];
        let bytes = layer(entries, Compression::None);
        let expected_mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(MTIME);
        let running_as_root = {
            let probe = tempfile::tempdir().unwrap();
            fs::metadata(probe.path()).unwrap().uid() == 0
        };
        for preserve_owner in [false, true] {
            if preserve_owner && !running_as_root {
                continue;
            }
            let target = tempfile::tempdir().unwrap();
            let options = UnpackOptions {
                preserve_owner,
                ..UnpackOptions::default()
            };
            unpack_layer(bytes.as_slice(), target.path(), &options).unwrap();
            for (path, mode) in [("ro", 0o555), ("ro/inside", 0o644), ("suid", 0o4750)] {
                let metadata = fs::symlink_metadata(target.path().join(path)).unwrap();
                assert_eq!(metadata.mode() & 0o7777, mode, "{path}");
                assert_eq!(metadata.modified().unwrap(), expected_mtime, "{path}");
                let owner = (metadata.uid(), metadata.gid());
                if preserve_owner {
                    assert_eq!(owner, (1234, 5678), "{path}");
                } else {
                    assert_ne!(owner, (1234, 5678), "{path}");
                }
            }
            fs::set_permissions(target.path().join("ro"), Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_layers() {
        let lower = layer(
            vec![
                dir("a"),
                file("a/keep", "kept"),
                file("a/gone", "lower"),
                file("b", "lower"),
                dir("c"),
                dir("c/deep"),
                file("c/deep/x", "lower"),
                dir("o"),
                file("o/old", "lower"),
                dir("o/sub"),
                file("o/sub/old", "lower"),
                file("p", "lower"),
            ],
            Compression::Gzip,
        );
        let upper = layer(
            vec![
                file("a/.wh.gone", ""),
                file(".wh.b", ""),
                file(".wh.c", ""),
                dir("o"),
                file("o/-early", "upper, before the marker"),
                file("o/.wh..wh..opq", ""),
                file("o/late", "upper, after the marker"),
                file(".wh.p", ""),
                file("p", "upper"),
                file(".wh.never-existed", ""),
            ],
            Compression::Zstd,
        );
        let sandbox = Sandbox::new();
        let target = sandbox.target();
        unpack(&lower, &target).unwrap();
        let stats = unpack(&upper, &target).unwrap();
        assert_eq!(stats.entries, 10);

        assert_eq!(
            paths(&target),
            BTreeSet::from(["a", "a/keep", "o", "o/-early", "o/late", "p"].map(String::from))
        );
        assert_eq!(read(&target.join("p")), "upper");
        assert_eq!(read(&target.join("o/-early")), "upper, before the marker");
        sandbox.assert_untouched_outside();
    }

    #[test]
    fn an_opaque_marker_after_same_layer_entries_keeps_them() {
        let target = tempfile::tempdir().unwrap();
        unpack(
            &layer(vec![dir("o"), file("o/old", "lower")], Compression::None),
            target.path(),
        )
        .unwrap();
        let upper = raw_tar(&[
            ("o/", EntryType::Directory, ""),
            ("o/zz", EntryType::Regular, ""),
            ("o/.wh..wh..opq", EntryType::Regular, ""),
        ]);
        unpack(&upper, target.path()).unwrap();
        assert_eq!(
            paths(target.path()),
            BTreeSet::from(["o".into(), "o/zz".into()])
        );
    }

    #[test]
    fn entries_replace_other_types() {
        let target = tempfile::tempdir().unwrap();
        let lower = layer(
            vec![
                file("file-to-dir", "x"),
                dir("dir-to-file"),
                file("dir-to-file/child", "x"),
                entry("link-to-file", EntryKind::Symlink("/etc".into()), 0o777),
                file("file-to-link", "x"),
            ],
            Compression::None,
        );
        let upper = layer(
            vec![
                dir("file-to-dir"),
                file("file-to-dir/child", "new"),
                file("dir-to-file", "new"),
                file("link-to-file", "new"),
                entry(
                    "file-to-link",
                    EntryKind::Symlink("dir-to-file".into()),
                    0o777,
                ),
            ],
            Compression::None,
        );
        unpack(&lower, target.path()).unwrap();
        unpack(&upper, target.path()).unwrap();
        let root = target.path();
        assert_eq!(read(&root.join("file-to-dir/child")), "new");
        assert_eq!(read(&root.join("dir-to-file")), "new");
        assert!(
            fs::symlink_metadata(root.join("link-to-file"))
                .unwrap()
                .is_file()
        );
        assert_eq!(read(&root.join("link-to-file")), "new");
        assert_eq!(
            fs::read_link(root.join("file-to-link")).unwrap(),
            Path::new("dir-to-file")
        );
    }

    #[test]
    fn escapes_are_refused_and_touch_nothing_outside() {
        let sandbox = Sandbox::new();
        let sentinel = sandbox.sentinel().display().to_string();
        let sentinel_file = format!("{sentinel}/file");
        let cases: Vec<(Vec<RawEntry<'_>>, String)> = vec![
            (
                vec![("a/../b", EntryType::Regular, "")],
                "layer entry `a/../b`: paths may not contain `..`".into(),
            ),
            (
                vec![("../sentinel/file", EntryType::Regular, "")],
                "layer entry `../sentinel/file`: paths may not contain `..`".into(),
            ),
            (
                vec![(&sentinel_file, EntryType::Regular, "")],
                format!("layer entry `{sentinel_file}`: paths must be relative"),
            ),
            (
                vec![("h", EntryType::Link, &sentinel_file)],
                format!(
                    "layer entry `h`: hardlink target `{sentinel_file}` is absolute; hard links name paths of the layer"
                ),
            ),
            (
                vec![("h", EntryType::Link, "../sentinel/file")],
                "layer entry `h`: hardlink target `../sentinel/file` climbs out of the target"
                    .into(),
            ),
            (
                vec![("s", EntryType::Symlink, "../sentinel")],
                "layer entry `s`: symlink target `../sentinel` climbs above the root".into(),
            ),
            (
                vec![("a/s", EntryType::Symlink, "./../x/../../sentinel")],
                "layer entry `a/s`: symlink target `./../x/../../sentinel` climbs above the root"
                    .into(),
            ),
            (
                vec![
                    ("out", EntryType::Symlink, &sentinel),
                    ("out/pwned", EntryType::Regular, ""),
                ],
                "layer entry `out/pwned`: `out` is a symlink, and symlinks are never followed while unpacking".into(),
            ),
            (
                vec![
                    ("out", EntryType::Symlink, &sentinel),
                    ("out/.wh.file", EntryType::Regular, ""),
                ],
                "layer entry `out/.wh.file`: `out` is a symlink, and symlinks are never followed while unpacking".into(),
            ),
            (
                vec![
                    ("out", EntryType::Symlink, &sentinel),
                    ("out/.wh..wh..opq", EntryType::Regular, ""),
                ],
                "layer entry `out/.wh..wh..opq`: `out` is a symlink, and symlinks are never followed while unpacking".into(),
            ),
            (
                vec![
                    ("out", EntryType::Symlink, &sentinel),
                    ("h", EntryType::Link, "out/file"),
                ],
                "layer entry `h`: `out` is a symlink, and symlinks are never followed while unpacking".into(),
            ),
            (
                vec![
                    ("up", EntryType::Symlink, ".."),
                    ("up/sentinel/", EntryType::Directory, ""),
                ],
                "layer entry `up`: symlink target `..` climbs above the root".into(),
            ),
            (
                vec![("dir/.wh...", EntryType::Regular, "")],
                "layer entry `dir/.wh...`: paths may not contain `..`".into(),
            ),
            (
                vec![("pipe", EntryType::Fifo, "")],
                "layer entry `pipe`: fifo entries are not supported".into(),
            ),
        ];
        for (entries, expected) in cases {
            let target = sandbox.target();
            fs::remove_dir_all(&target).unwrap();
            fs::create_dir(&target).unwrap();
            fs::create_dir(target.join("dir")).unwrap();
            let error = unpack(&raw_tar(&entries), &target).unwrap_err();
            assert!(matches!(error, UnpackError::Refused { .. }), "{error:?}");
            assert_eq!(error.to_string(), expected);
            sandbox.assert_untouched_outside();
        }
    }

    #[test]
    fn symlinks_left_by_lower_layers_are_never_followed() {
        let sandbox = Sandbox::new();
        let target = sandbox.target();
        symlink(sandbox.sentinel(), target.join("lower-link")).unwrap();
        for entries in [
            vec![("lower-link/x", EntryType::Regular, "")],
            vec![("lower-link/sub/", EntryType::Directory, "")],
            vec![("lower-link/.wh.file", EntryType::Regular, "")],
            vec![("lower-link/.wh..wh..opq", EntryType::Regular, "")],
            vec![("h", EntryType::Link, "lower-link/file")],
        ] {
            let error = unpack(&raw_tar(&entries), &target).unwrap_err();
            assert!(
                error.to_string().contains("`lower-link` is a symlink"),
                "{error}"
            );
            sandbox.assert_untouched_outside();
        }

        let allowed = raw_tar(&[
            ("dir/", EntryType::Directory, ""),
            ("dir/up", EntryType::Symlink, "../x"),
            ("dir/absolute", EntryType::Symlink, "/etc/passwd"),
            ("lower-link", EntryType::Regular, ""),
        ]);
        unpack(&allowed, &target).unwrap();
        assert_eq!(read(&target.join("lower-link")), "payload");
        sandbox.assert_untouched_outside();

        symlink(sandbox.sentinel(), target.join("lower-link-2")).unwrap();
        unpack(
            &raw_tar(&[(".wh.lower-link-2", EntryType::Regular, "")]),
            &target,
        )
        .unwrap();
        assert!(fs::symlink_metadata(target.join("lower-link-2")).is_err());
        sandbox.assert_untouched_outside();
    }

    #[test]
    fn broken_input_is_reported() {
        let target = tempfile::tempdir().unwrap();
        let mut truncated = layer(vec![file("a", "contents")], Compression::Gzip);
        truncated.truncate(truncated.len() / 2);
        assert!(unpack(&truncated, target.path()).is_err());

        let error = unpack(
            &raw_tar(&[("h", EntryType::Link, "missing")]),
            target.path(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "layer entry `h`: hardlink target `missing` does not exist"
        );
    }
}
