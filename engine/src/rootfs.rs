//! An image's root filesystem on disk: materializing it from layer blobs, and turning what a
//! command changed in it into a layer.
//!
//! Changes are found by comparing two [`Snapshot`]s of the tree's metadata, never its
//! contents: a regular file counts as changed when its type, mode, owner, size, mtime, ctime,
//! inode or link count moved. The kernel sets ctime on every write or metadata change and no
//! user can set it back, so only a write that keeps the size and restores the mtime within the
//! same clock tick as the snapshot could go unseen (the same limit git's index and rsync have).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use image::layer::{
    EntryKind, FileSource, LayerEntry, UnpackError, UnpackOptions, WHITEOUT_PREFIX, unpack_layer,
};

/// Why an image's root filesystem could not be materialized.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A layer blob cannot be opened.
    #[error("cannot open layer {}: {source}", layer.display())]
    Open {
        /// The layer blob.
        layer: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// A layer blob cannot be applied.
    #[error("cannot apply layer {} onto {}: {source}", layer.display(), target.display())]
    Apply {
        /// The layer blob.
        layer: PathBuf,
        /// The directory it was applied onto.
        target: PathBuf,
        /// What failed.
        source: UnpackError,
    },
}

/// Applies the layer blobs in `layers` (tar, plain or gzip or zstd, lowest layer first) onto
/// `target`, which is created if needed; whiteouts of a layer remove what the layers below put
/// there. Running as root, files get the owners the layers record; otherwise they belong to
/// the current user.
pub fn materialize(layers: &[PathBuf], target: &Path) -> Result<(), RootfsError> {
    materialize_subtrees(layers, target, Vec::new())
}

/// [`materialize`], limited to the subtrees `only_under` (relative paths; empty for all).
pub fn materialize_subtrees(
    layers: &[PathBuf],
    target: &Path,
    only_under: Vec<String>,
) -> Result<(), RootfsError> {
    let options = UnpackOptions {
        preserve_owner: rustix::process::geteuid().is_root(),
        only_under,
    };
    for layer in layers {
        let blob = File::open(layer).map_err(|source| RootfsError::Open {
            layer: layer.clone(),
            source,
        })?;
        unpack_layer(io::BufReader::new(blob), target, &options).map_err(|source| {
            RootfsError::Apply {
                layer: layer.clone(),
                target: target.to_path_buf(),
                source,
            }
        })?;
    }
    Ok(())
}

/// The state of every path under a root directory (the root itself excluded), identified by
/// metadata only. Sockets are left out: a layer cannot hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Relative, `/`-separated paths (as bytes, which need not be UTF-8) to their state.
    nodes: BTreeMap<Vec<u8>, Node>,
}

/// What identifies the state of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: NodeKind,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    device: u64,
    inode: u64,
    links: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeKind {
    File,
    Dir,
    Symlink(Vec<u8>),
    Fifo,
    CharDevice { rdev: u64 },
    BlockDevice { rdev: u64 },
}

impl Node {
    /// Whether a layer must carry this path again when it was `before` in the lower layers.
    /// A directory is only described by its type, mode and owner: its times, size and link
    /// count move whenever its children do, and the children are compared on their own.
    fn changed_since(&self, before: &Node) -> bool {
        if self.kind == NodeKind::Dir && before.kind == NodeKind::Dir {
            (self.mode, self.uid, self.gid) != (before.mode, before.uid, before.gid)
        } else {
            self != before
        }
    }
}

/// Records the state of every path under `root` without following symlinks or reading
/// contents.
pub fn snapshot(root: &Path) -> io::Result<Snapshot> {
    let mut nodes = BTreeMap::new();
    let mut pending = vec![(root.to_path_buf(), Vec::new())];
    while let Some((directory, relative_dir)) = pending.pop() {
        for child in fs::read_dir(&directory).map_err(|e| with_path(&e, &directory))? {
            let child = child.map_err(|e| with_path(&e, &directory))?;
            let full = child.path();
            let metadata = fs::symlink_metadata(&full).map_err(|e| with_path(&e, &full))?;
            let mut relative = relative_dir.clone();
            if !relative.is_empty() {
                relative.push(b'/');
            }
            relative.extend_from_slice(child.file_name().as_bytes());
            let file_type = metadata.file_type();
            let kind = if file_type.is_dir() {
                pending.push((full, relative.clone()));
                NodeKind::Dir
            } else if file_type.is_file() {
                NodeKind::File
            } else if file_type.is_symlink() {
                let target = fs::read_link(&full).map_err(|e| with_path(&e, &full))?;
                NodeKind::Symlink(target.into_os_string().into_vec())
            } else if file_type.is_fifo() {
                NodeKind::Fifo
            } else if file_type.is_char_device() {
                NodeKind::CharDevice {
                    rdev: metadata.rdev(),
                }
            } else if file_type.is_block_device() {
                NodeKind::BlockDevice {
                    rdev: metadata.rdev(),
                }
            } else {
                continue;
            };
            let node = Node {
                kind,
                mode: metadata.mode() & 0o7777,
                uid: metadata.uid(),
                gid: metadata.gid(),
                size: metadata.size(),
                mtime: (metadata.mtime(), metadata.mtime_nsec()),
                ctime: (metadata.ctime(), metadata.ctime_nsec()),
                device: metadata.dev(),
                inode: metadata.ino(),
                links: metadata.nlink(),
            };
            nodes.insert(relative, node);
        }
    }
    Ok(Snapshot { nodes })
}

/// The layer that turns the tree `before` describes into the tree now under `root`, sorted by
/// path:
///
/// - new and changed files, directories, symlinks, fifos and devices, with their mode and
///   owner; file contents are read from `root` when the layer is written. A directory whose
///   children changed but whose own mode and owner did not gets no entry.
/// - files sharing an inode: the first of their paths in the layer is the file, the others
///   are hard links to it.
/// - a path that no longer exists: a whiteout `<dir>/.wh.<name>` (an empty regular file with
///   mode 0 and owner 0:0, as Docker and containerd write them), only for the top-most
///   deleted path: below a deleted directory nothing else is needed.
/// - a path whose type changed: just its new entry. A non-directory entry replaces whatever
///   the lower layers had there, and a directory entry replaces a non-directory; a directory
///   over a directory keeps the lower children, which is right because every child that is
///   gone now gets its own whiteout (the trees are compared path by path), so a directory that
///   was deleted and made again needs no opaque marker.
///
/// Paths that are not UTF-8, and new or changed names starting with `.wh.` (which a layer
/// cannot carry as files), are errors.
pub fn changes(root: &Path, before: &Snapshot) -> io::Result<Vec<LayerEntry>> {
    let after = snapshot(root)?;
    let mut found = Vec::new();
    for (relative, node) in &after.nodes {
        if before
            .nodes
            .get(relative)
            .is_some_and(|old| !node.changed_since(old))
        {
            continue;
        }
        let path = utf8(relative, root)?;
        if path
            .rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with(WHITEOUT_PREFIX))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: names starting with `{WHITEOUT_PREFIX}` mark deletions in image layers and cannot be stored as files; rename it",
                    root.join(path).display()
                ),
            ));
        }
        let kind = match &node.kind {
            NodeKind::File => EntryKind::File(FileSource::Path(root.join(path))),
            NodeKind::Dir => EntryKind::Dir,
            NodeKind::Symlink(target) => {
                EntryKind::Symlink(utf8(target, &root.join(path))?.to_owned())
            }
            NodeKind::Fifo => EntryKind::Fifo,
            NodeKind::CharDevice { rdev } => {
                let (major, minor) = device_numbers(*rdev);
                EntryKind::CharDevice { major, minor }
            }
            NodeKind::BlockDevice { rdev } => {
                let (major, minor) = device_numbers(*rdev);
                EntryKind::BlockDevice { major, minor }
            }
        };
        let inode =
            (node.kind == NodeKind::File && node.links > 1).then_some((node.device, node.inode));
        let entry = LayerEntry {
            path: path.to_owned(),
            kind,
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
        };
        found.push((entry, inode));
    }

    for relative in before.nodes.keys() {
        if after.nodes.contains_key(relative) {
            continue;
        }
        let (parent, name) = match relative.iter().rposition(|&b| b == b'/') {
            Some(slash) => (&relative[..slash], &relative[slash + 1..]),
            None => (&[][..], &relative[..]),
        };
        let parent_is_directory = parent.is_empty()
            || after
                .nodes
                .get(parent)
                .is_some_and(|node| node.kind == NodeKind::Dir);
        if !parent_is_directory {
            continue;
        }
        let mut whiteout = parent.to_vec();
        if !whiteout.is_empty() {
            whiteout.push(b'/');
        }
        whiteout.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
        whiteout.extend_from_slice(name);
        let entry = LayerEntry {
            path: utf8(&whiteout, root)?.to_owned(),
            kind: EntryKind::File(FileSource::Bytes(Vec::new())),
            mode: 0,
            uid: 0,
            gid: 0,
        };
        found.push((entry, None));
    }

    Ok(image::layer::link_shared_inodes(found))
}

/// `bytes` as UTF-8, which layer paths and link targets must be; `path` names the file in the
/// error.
fn utf8<'a>(bytes: &'a [u8], path: &Path) -> io::Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: `{}` is not UTF-8, which layer paths and link targets must be",
                path.display(),
                OsStr::from_bytes(bytes).display()
            ),
        )
    })
}

/// Major and minor numbers of a Linux `dev_t`.
fn device_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    (
        u32::try_from(major).unwrap_or(u32::MAX),
        u32::try_from(minor).unwrap_or(u32::MAX),
    )
}

fn with_path(error: &io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use image::layer::{Compression, LayerOptions, entries_from_dir, write_layer};

    use super::*;

    /// A file, directory or symlink of a test layer, owned by root.
    pub(crate) fn entry(path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
        LayerEntry {
            path: path.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
        }
    }

    pub(crate) fn file(path: &str, contents: &str) -> LayerEntry {
        entry(
            path,
            EntryKind::File(FileSource::Bytes(contents.as_bytes().to_vec())),
            0o644,
        )
    }

    pub(crate) fn dir(path: &str) -> LayerEntry {
        entry(path, EntryKind::Dir, 0o755)
    }

    /// Writes `entries` as a layer blob at `path`.
    pub(crate) fn layer_file(
        path: &Path,
        entries: Vec<LayerEntry>,
        compression: Compression,
    ) -> PathBuf {
        let options = LayerOptions {
            compression,
            mtime: 1_600_000_000,
            owner: None,
            gzip_level: 6,
            zstd_level: 3,
        };
        write_layer(entries, &options, File::create(path).unwrap()).unwrap();
        path.to_path_buf()
    }

    /// What a tree holds, for comparing two trees: every path with its type (file contents,
    /// symlink target, hard link to the first path of its inode), mode and owner.
    pub(crate) fn tree(root: &Path) -> BTreeMap<String, (String, u32, u32, u32)> {
        entries_from_dir(root)
            .unwrap()
            .into_iter()
            .map(|entry| {
                let kind = match &entry.kind {
                    EntryKind::File(FileSource::Path(path)) => {
                        format!("file {:?}", fs::read_to_string(path).unwrap())
                    }
                    other => format!("{other:?}"),
                };
                (entry.path, (kind, entry.mode, entry.uid, entry.gid))
            })
            .collect()
    }

    /// The owner the files this process creates get (and materialized files get when it is
    /// not root); root's when it is.
    pub(crate) fn own_ids() -> (u32, u32) {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    }

    /// Entries as the differ reports them for a tree under `root` created by this process.
    pub(crate) fn changed(root: &Path, path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
        let (uid, gid) = own_ids();
        let kind = match kind {
            EntryKind::File(FileSource::Path(_)) => {
                EntryKind::File(FileSource::Path(root.join(path)))
            }
            other => other,
        };
        LayerEntry {
            path: path.to_owned(),
            kind,
            mode,
            uid,
            gid,
        }
    }

    pub(crate) fn on_disk() -> EntryKind {
        EntryKind::File(FileSource::Path(PathBuf::new()))
    }

    pub(crate) fn whiteout(path: &str) -> LayerEntry {
        entry(path, EntryKind::File(FileSource::Bytes(Vec::new())), 0)
    }

    /// The tree both the differ tests and the RUN tests start from.
    pub(crate) fn base_layers(work: &Path) -> Vec<PathBuf> {
        let lower = layer_file(
            &work.join("lower.tar.gz"),
            vec![
                dir("bin"),
                dir("etc"),
                file("etc/config", "a=1\n"),
                file("etc/mode-only", "x"),
                file("etc/same", "same"),
                file("etc/replaced-later", "lower"),
                file("old.txt", "old"),
                dir("olddir"),
                dir("olddir/inner"),
                file("olddir/inner/file", "deep"),
                dir("kind"),
                file("kind/child", "child"),
                file("swap", "a file"),
                dir("recreated"),
                file("recreated/gone", "gone"),
                file("recreated/kept", "kept"),
                dir("data"),
                file("data/blob", "blob"),
                entry("link-old", EntryKind::Symlink("etc/config".into()), 0o777),
            ],
            Compression::Gzip,
        );
        let upper = layer_file(
            &work.join("upper.tar.zst"),
            vec![
                whiteout("etc/.wh.replaced-later"),
                file("etc/from-upper", "upper"),
            ],
            Compression::Zstd,
        );
        vec![lower, upper]
    }

    #[test]
    fn materialize_applies_layers_lowest_first() {
        let work = tempfile::tempdir().unwrap();
        let layers = base_layers(work.path());
        let plain = layer_file(
            &work.path().join("plain.tar"),
            vec![file("etc/same", "from the plain layer")],
            Compression::None,
        );
        let target = work.path().join("rootfs");
        materialize(&[layers[0].clone(), layers[1].clone(), plain], &target).unwrap();
        let found = tree(&target);
        assert!(!found.contains_key("etc/replaced-later"));
        assert_eq!(found["etc/from-upper"].0, r#"file "upper""#);
        assert_eq!(found["etc/same"].0, r#"file "from the plain layer""#);
        assert_eq!(found["olddir/inner/file"].0, r#"file "deep""#);
        assert_eq!(found["etc/config"].1, 0o644);
        assert_eq!(found["bin"].1, 0o755);
    }

    #[test]
    fn materialize_errors_name_the_layer() {
        let work = tempfile::tempdir().unwrap();
        let missing = work.path().join("missing.tar");
        let error =
            materialize(std::slice::from_ref(&missing), &work.path().join("a")).unwrap_err();
        assert!(matches!(&error, RootfsError::Open { layer, .. } if *layer == missing));
        assert!(error.to_string().contains("missing.tar"), "{error}");

        let escaping = work.path().join("escaping.tar");
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..6].copy_from_slice(b"../out");
        header.set_size(0);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, io::empty()).unwrap();
        fs::write(&escaping, builder.into_inner().unwrap()).unwrap();
        let error =
            materialize(std::slice::from_ref(&escaping), &work.path().join("b")).unwrap_err();
        assert!(matches!(&error, RootfsError::Apply { layer, .. } if *layer == escaping));
        let message = error.to_string();
        assert!(
            message.contains("escaping.tar") && message.contains("../out"),
            "{message}"
        );
    }

    #[test]
    fn an_untouched_tree_has_no_changes() {
        let work = tempfile::tempdir().unwrap();
        let root = work.path().join("rootfs");
        materialize(&base_layers(work.path()), &root).unwrap();
        let before = snapshot(&root).unwrap();
        assert_eq!(snapshot(&root).unwrap(), before);
        assert_eq!(changes(&root, &before).unwrap(), []);
    }

    #[test]
    fn changes_describe_every_kind_of_change() {
        let work = tempfile::tempdir().unwrap();
        let root = work.path().join("rootfs");
        let layers = base_layers(work.path());
        materialize(&layers, &root).unwrap();
        let before = snapshot(&root).unwrap();
        let at = |path: &str| root.join(path);

        fs::write(at("new.txt"), "new").unwrap();
        fs::write(at("etc/config"), "a=2\n").unwrap();
        fs::set_permissions(at("etc/mode-only"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::remove_file(at("old.txt")).unwrap();
        fs::remove_dir_all(at("olddir")).unwrap();
        fs::remove_dir_all(at("kind")).unwrap();
        fs::write(at("kind"), "now a file").unwrap();
        fs::remove_file(at("swap")).unwrap();
        fs::create_dir(at("swap")).unwrap();
        fs::set_permissions(at("swap"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(at("swap/inside"), "inside").unwrap();
        fs::remove_dir_all(at("recreated")).unwrap();
        fs::create_dir(at("recreated")).unwrap();
        fs::set_permissions(at("recreated"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(at("recreated/kept"), "kept again").unwrap();
        fs::hard_link(at("data/blob"), at("data/blob2")).unwrap();
        symlink("etc/config", at("new-link")).unwrap();
        fs::remove_file(at("link-old")).unwrap();
        symlink("etc/same", at("link-old")).unwrap();
        fs::set_permissions(at("bin"), fs::Permissions::from_mode(0o700)).unwrap();
        for path in [
            "new.txt",
            "etc/config",
            "swap/inside",
            "recreated/kept",
            "kind",
        ] {
            fs::set_permissions(at(path), fs::Permissions::from_mode(0o644)).unwrap();
        }

        let found = changes(&root, &before).unwrap();
        let mut expected = vec![
            whiteout(".wh.old.txt"),
            whiteout(".wh.olddir"),
            changed(&root, "bin", EntryKind::Dir, 0o700),
            changed(&root, "data/blob", on_disk(), 0o644),
            changed(
                &root,
                "data/blob2",
                EntryKind::Hardlink("data/blob".into()),
                0o644,
            ),
            changed(&root, "etc/config", on_disk(), 0o644),
            changed(&root, "etc/mode-only", on_disk(), 0o600),
            changed(&root, "kind", on_disk(), 0o644),
            changed(
                &root,
                "link-old",
                EntryKind::Symlink("etc/same".into()),
                0o777,
            ),
            changed(
                &root,
                "new-link",
                EntryKind::Symlink("etc/config".into()),
                0o777,
            ),
            changed(&root, "new.txt", on_disk(), 0o644),
            whiteout("recreated/.wh.gone"),
            changed(&root, "recreated/kept", on_disk(), 0o644),
            changed(&root, "swap", EntryKind::Dir, 0o750),
            changed(&root, "swap/inside", on_disk(), 0o644),
        ];
        expected.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(found, expected);

        assert_layer_reproduces(&layers, found, &root, work.path());
    }

    /// Writes `entries` as a layer, applies it onto a fresh copy of `layers`, and checks the
    /// result is the tree under `expected_root`.
    pub(crate) fn assert_layer_reproduces(
        layers: &[PathBuf],
        entries: Vec<LayerEntry>,
        expected_root: &Path,
        work: &Path,
    ) {
        let change = layer_file(&work.join("change.tar.gz"), entries, Compression::Gzip);
        let copy = work.join("copy");
        materialize(layers, &copy).unwrap();
        materialize(&[change], &copy).unwrap();
        assert_eq!(tree(&copy), tree(expected_root));
    }

    #[test]
    fn whiteout_names_cannot_be_stored() {
        let work = tempfile::tempdir().unwrap();
        let root = work.path().join("rootfs");
        fs::create_dir(&root).unwrap();
        let before = snapshot(&root).unwrap();
        fs::write(root.join(".wh.sneaky"), "").unwrap();
        let error = changes(&root, &before).unwrap_err();
        assert!(error.to_string().contains(".wh.sneaky"), "{error}");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn sockets_are_left_out() {
        let work = tempfile::tempdir().unwrap();
        let root = work.path().join("rootfs");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("was-a-file"), "x").unwrap();
        let before = snapshot(&root).unwrap();
        fs::remove_file(root.join("was-a-file")).unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(root.join("was-a-file")).unwrap();
        let _other = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();
        assert_eq!(
            changes(&root, &before).unwrap(),
            [whiteout(".wh.was-a-file")]
        );
    }

    #[test]
    fn device_numbers_decode_linux_dev_t() {
        // glibc's makedev: the inverse of the decoding.
        let makedev = |major: u64, minor: u64| {
            ((major & 0xffff_f000) << 32)
                | ((major & 0xfff) << 8)
                | ((minor & 0xffff_ff00) << 12)
                | (minor & 0xff)
        };
        for (major, minor) in [(8, 1), (0x1_2345, 0x6_789a), (0xffff_ffff, 0xffff_ffff)] {
            assert_eq!(
                device_numbers(makedev(major.into(), minor.into())),
                (major, minor)
            );
        }
    }
}
