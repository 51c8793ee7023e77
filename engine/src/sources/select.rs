//! Finding what a source path names inside its root: symlinks on the way resolved like
//! BuildKit's `fs.RootPath` (an absolute target is taken from the root; `..` never goes above
//! it), wildcards expanded one segment at a time over what the build can see, and directory
//! trees walked with `.dockerignore` applied as Docker applies it. Nothing outside the root is
//! ever read.

use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use image::layer::{EntryKind, FileSource};
use kubefile::context::join;

use crate::dockerignore::{DirState, DockerIgnore};

/// BuildKit's limit on the symlinks followed while resolving one path.
const MAX_LINKS: usize = 255;

/// A root that sources are read from.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    /// The root directory.
    pub dir: PathBuf,
    /// The context's ignore patterns; `None` for an image root or an empty ignore file.
    pub ignore: Option<DockerIgnore>,
    /// True for the build context: a symlink leading above the root is an error. An image
    /// root is a whole file system, where `/..` is `/`.
    pub confined: bool,
}

/// What a source path resolved to.
#[derive(Debug)]
pub(super) struct Resolved {
    /// The path inside the root, symlinks resolved (`""` is the root).
    pub real: String,
    /// Its metadata (never a symlink's).
    pub metadata: Metadata,
    /// True when `.dockerignore` excludes it (a directory that may still hold re-included
    /// files).
    pub excluded: bool,
}

/// One entry found by a walk.
#[derive(Debug)]
pub(super) struct Found {
    /// Path relative to the walked directory.
    pub path: String,
    /// What it is (files point at their path on disk).
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Device and inode of a file with several links, to keep hard links.
    pub inode: Option<(u64, u64)>,
}

/// Why a source cannot be read.
#[derive(Debug)]
pub(super) enum SelectError {
    /// Nothing the build can see is there; `detail` says why when it is not obvious.
    NotFound { detail: Option<String> },
    /// A symlink of the context leads above its root.
    Escapes { link: String, target: String },
    /// More than [`MAX_LINKS`] symlinks.
    TooManyLinks,
    /// Reading the file system failed.
    Io { path: PathBuf, source: io::Error },
    /// Something a layer cannot hold or this builder cannot name.
    Unsupported { path: String, what: &'static str },
}

impl Tree {
    fn full(&self, real: &str) -> PathBuf {
        if real.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(real)
        }
    }

    fn io_error(&self, real: &str, source: io::Error) -> SelectError {
        SelectError::Io {
            path: self.full(real),
            source,
        }
    }

    /// True when the ignore file hides `real` outright: excluded, and not a directory that
    /// an exception could reach into.
    fn hides(&self, real: &str, metadata: &Metadata) -> bool {
        self.ignore.as_ref().is_some_and(|ignore| {
            ignore.is_excluded(real) && !(metadata.is_dir() && ignore.may_include_below(real))
        })
    }

    /// The ignore state of the directory `real`.
    fn dir_state(&self, real: &str) -> Option<DirState> {
        let ignore = self.ignore.as_ref()?;
        let mut state = ignore.root_state();
        let mut end = 0;
        for part in real.split('/').filter(|p| !p.is_empty()) {
            end += part.len();
            state = ignore.dir_state(&state, &real[..end]);
            end += 1;
        }
        Some(state)
    }
}

/// Resolves `logical` (a clean relative path) inside the root, following every symlink on
/// the way and at the end.
pub(super) fn resolve(tree: &Tree, logical: &str) -> Result<Resolved, SelectError> {
    let mut parts: Vec<String> = logical
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_owned)
        .collect();
    let mut links = 0;
    let mut last_link: Option<(String, String)> = None;
    let not_found = |detail: Option<String>, last_link: &Option<(String, String)>, real: &str| {
        let detail = detail.or_else(|| {
            last_link.as_ref().map(|(link, target)| {
                format!(
                    "the symlink `{link}` points to `{target}`, which is `{real}` inside the root"
                )
            })
        });
        SelectError::NotFound { detail }
    };
    let mut at = 0;
    while at < parts.len() {
        let real = parts[..=at].join("/");
        let metadata = match fs::symlink_metadata(tree.full(&real)) {
            Ok(metadata) => metadata,
            Err(e) if is_missing(&e) => return Err(not_found(None, &last_link, &real)),
            Err(e) => return Err(tree.io_error(&real, e)),
        };
        if tree.hides(&real, &metadata) {
            let detail = format!("`{real}` is excluded by .dockerignore");
            return Err(not_found(Some(detail), &last_link, &real));
        }
        if metadata.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(SelectError::TooManyLinks);
            }
            let target = fs::read_link(tree.full(&real)).map_err(|e| tree.io_error(&real, e))?;
            let target = target
                .to_str()
                .ok_or(SelectError::Unsupported {
                    path: real.clone(),
                    what: "a symlink whose target is not UTF-8",
                })?
                .to_owned();
            let mut joined: Vec<&str> = if target.starts_with('/') {
                Vec::new()
            } else {
                parts[..at].iter().map(String::as_str).collect()
            };
            joined.extend(target.split('/'));
            joined.extend(parts[at + 1..].iter().map(String::as_str));
            parts = match clean_within_root(&joined) {
                Some(cleaned) => cleaned,
                None if tree.confined => {
                    return Err(SelectError::Escapes { link: real, target });
                }
                None => clamp_to_root(&joined),
            };
            last_link = Some((real, target));
            at = 0;
            continue;
        }
        if at + 1 < parts.len() && !metadata.is_dir() {
            let detail = format!("`{real}` is not a directory");
            return Err(not_found(Some(detail), &last_link, &real));
        }
        at += 1;
    }
    let real = parts.join("/");
    let metadata = fs::metadata(tree.full(&real)).map_err(|e| tree.io_error(&real, e))?;
    let excluded = tree
        .ignore
        .as_ref()
        .is_some_and(|ignore| ignore.is_excluded(&real));
    Ok(Resolved {
        real,
        metadata,
        excluded,
    })
}

fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Resolves `.` and `..` lexically; `None` when a `..` would go above the root.
fn clean_within_root(parts: &[&str]) -> Option<Vec<String>> {
    let mut cleaned: Vec<String> = Vec::new();
    for part in parts {
        match *part {
            "" | "." => {}
            ".." => {
                cleaned.pop()?;
            }
            name => cleaned.push(name.to_owned()),
        }
    }
    Some(cleaned)
}

/// Resolves `.` and `..` lexically, a `..` at the root staying at the root.
fn clamp_to_root(parts: &[&str]) -> Vec<String> {
    let mut cleaned: Vec<String> = Vec::new();
    for part in parts {
        match *part {
            "" | "." => {}
            ".." => {
                cleaned.pop();
            }
            name => cleaned.push(name.to_owned()),
        }
    }
    cleaned
}

/// The paths a wildcard pattern matches among what the build can see, segment by segment
/// (Go's `filepath.Match` rules, as Docker's COPY uses them), in order. Literal segments are
/// kept as they are: the caller drops the candidates that do not exist.
pub(super) fn expand(tree: &Tree, pattern: &str) -> Result<Vec<String>, SelectError> {
    let mut matches = vec![String::new()];
    for segment in pattern.split('/').filter(|s| !s.is_empty()) {
        let mut next = Vec::new();
        for logical in &matches {
            if !kubefile::plan::has_wildcard(segment) {
                next.push(join(logical, segment));
                continue;
            }
            let dir = match resolve(tree, logical) {
                Ok(dir) if dir.metadata.is_dir() => dir,
                Ok(_) | Err(SelectError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            for name in visible_names(tree, &dir.real)? {
                if kubefile::plan::wildcard_match(segment, &name) {
                    next.push(join(logical, &name));
                }
            }
        }
        matches = next;
    }
    Ok(matches)
}

/// The names in the directory `real` that the build can see, sorted.
fn visible_names(tree: &Tree, real: &str) -> Result<Vec<String>, SelectError> {
    let mut names = Vec::new();
    for (name, full) in read_dir_sorted(tree, real)? {
        let child = join(real, &name);
        if let Some(ignore) = &tree.ignore
            && ignore.is_excluded(&child)
        {
            let metadata = fs::symlink_metadata(&full).map_err(|e| tree.io_error(&child, e))?;
            if !metadata.is_dir()
                || !ignore.may_include_below(&child)
                || walk(tree, &child)?.is_empty()
            {
                continue;
            }
        }
        names.push(name);
    }
    Ok(names)
}

fn read_dir_sorted(tree: &Tree, real: &str) -> Result<BTreeMap<String, PathBuf>, SelectError> {
    let full = tree.full(real);
    let mut children = BTreeMap::new();
    for child in fs::read_dir(&full).map_err(|e| tree.io_error(real, e))? {
        let child = child.map_err(|e| tree.io_error(real, e))?;
        let name = child.file_name();
        let Some(name) = name.to_str() else {
            return Err(SelectError::Unsupported {
                path: join(real, &name.to_string_lossy()),
                what: "a file whose name is not UTF-8",
            });
        };
        children.insert(name.to_owned(), child.path());
    }
    Ok(children)
}

/// Every entry under the directory `real` (not the directory itself) that the build can see,
/// parents before their children, paths relative to `real`. Symlinks are kept as symlinks.
/// Excluded directories are skipped whole unless an exception may reach into them; then they
/// appear only when something in them is re-included.
pub(super) fn walk(tree: &Tree, real: &str) -> Result<Vec<Found>, SelectError> {
    let state = tree.dir_state(real);
    let mut found = Vec::new();
    walk_into(tree, real, "", state.as_ref(), &mut found)?;
    Ok(found)
}

fn walk_into(
    tree: &Tree,
    real: &str,
    prefix: &str,
    state: Option<&DirState>,
    found: &mut Vec<Found>,
) -> Result<(), SelectError> {
    for (name, full) in read_dir_sorted(tree, &join(real, prefix))? {
        let relative = join(prefix, &name);
        let child = join(real, &relative);
        let metadata = fs::symlink_metadata(&full).map_err(|e| tree.io_error(&child, e))?;
        let excluded = match (&tree.ignore, state) {
            (Some(ignore), Some(state)) => ignore.is_excluded_in(state, &child),
            _ => false,
        };
        if !metadata.is_dir() {
            if !excluded {
                found.push(entry(relative, &child, full, &metadata)?);
            }
            continue;
        }
        let child_state = match (&tree.ignore, state) {
            (Some(ignore), Some(state)) => Some(ignore.dir_state(state, &child)),
            _ => None,
        };
        if excluded {
            let may_include = tree
                .ignore
                .as_ref()
                .is_some_and(|ignore| ignore.may_include_below(&child));
            if !may_include {
                continue;
            }
            let mut inside = Vec::new();
            walk_into(tree, real, &relative, child_state.as_ref(), &mut inside)?;
            if !inside.is_empty() {
                found.push(entry(relative, &child, full, &metadata)?);
                found.append(&mut inside);
            }
        } else {
            found.push(entry(relative.clone(), &child, full, &metadata)?);
            walk_into(tree, real, &relative, child_state.as_ref(), found)?;
        }
    }
    Ok(())
}

/// The entry for one file system object, not following symlinks.
pub(super) fn entry(
    path: String,
    shown: &str,
    full: PathBuf,
    metadata: &Metadata,
) -> Result<Found, SelectError> {
    let file_type = metadata.file_type();
    let unsupported = |what| SelectError::Unsupported {
        path: shown.to_owned(),
        what,
    };
    let mut inode = None;
    let kind = if file_type.is_dir() {
        EntryKind::Dir
    } else if file_type.is_symlink() {
        let target = fs::read_link(&full).map_err(|source| SelectError::Io {
            path: full.clone(),
            source,
        })?;
        let target = target
            .to_str()
            .ok_or_else(|| unsupported("a symlink whose target is not UTF-8"))?;
        EntryKind::Symlink(target.to_owned())
    } else if file_type.is_file() {
        if metadata.nlink() > 1 {
            inode = Some((metadata.dev(), metadata.ino()));
        }
        EntryKind::File(FileSource::Path(full))
    } else if file_type.is_fifo() {
        EntryKind::Fifo
    } else if file_type.is_socket() {
        return Err(unsupported("a socket"));
    } else {
        return Err(unsupported("a device file"));
    };
    Ok(Found {
        path,
        kind,
        mode: metadata.mode() & 0o7777,
        inode,
    })
}

/// Every entry under the directory `dir` (an unpacked archive), with no ignore file.
pub(super) fn walk_plain(dir: &Path) -> Result<Vec<Found>, SelectError> {
    let tree = Tree {
        dir: dir.to_path_buf(),
        ignore: None,
        confined: true,
    };
    walk(&tree, "")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn tree(dir: &Path, ignore: &str) -> Tree {
        Tree {
            dir: dir.to_path_buf(),
            ignore: Some(DockerIgnore::parse(ignore).unwrap()),
            confined: true,
        }
    }

    fn paths(found: &[Found]) -> Vec<&str> {
        found.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("real/sub")).unwrap();
        fs::write(root.join("real/sub/file"), "x").unwrap();
        symlink("real", root.join("rel")).unwrap();
        symlink("/real/sub", root.join("abs")).unwrap();
        symlink("../real/sub/file", root.join("real/up")).unwrap();
        let tree = tree(root, "");
        assert_eq!(
            resolve(&tree, "rel/sub/file").unwrap().real,
            "real/sub/file"
        );
        assert_eq!(resolve(&tree, "abs/file").unwrap().real, "real/sub/file");
        assert_eq!(resolve(&tree, "real/up").unwrap().real, "real/sub/file");
        assert_eq!(resolve(&tree, "").unwrap().real, "");
        assert!(matches!(
            resolve(&tree, "real/sub/file/x"),
            Err(SelectError::NotFound { detail: Some(d) }) if d.contains("not a directory")
        ));
    }

    #[test]
    fn image_roots_clamp_and_contexts_refuse_climbing_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        fs::write(root.join("lib64"), "x").unwrap();
        symlink("../../../lib64", root.join("usr/lib/up")).unwrap();
        let image = Tree {
            dir: root.to_path_buf(),
            ignore: None,
            confined: false,
        };
        assert_eq!(resolve(&image, "usr/lib/up").unwrap().real, "lib64");
        let context = tree(root, "");
        assert!(matches!(
            resolve(&context, "usr/lib/up"),
            Err(SelectError::Escapes { link, target }) if link == "usr/lib/up" && target == "../../../lib64"
        ));
    }

    #[test]
    fn link_loops_stop() {
        let dir = tempfile::tempdir().unwrap();
        symlink("b", dir.path().join("a")).unwrap();
        symlink("a", dir.path().join("b")).unwrap();
        assert!(matches!(
            resolve(&tree(dir.path(), ""), "a"),
            Err(SelectError::TooManyLinks)
        ));
    }

    #[test]
    fn walks_apply_the_ignore_file_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "app/a.yaml",
            "app/build/out.bin",
            "app/build/keep/k.txt",
            "app/logs/x.log",
            "app/logs/deep/keep",
            "app/notes.md",
            "app/README.md",
        ] {
            fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            fs::write(root.join(file), file).unwrap();
        }
        let tree = tree(
            root,
            "app/build\n!app/build/keep\napp/logs\n!**/keep\n*/*.md\n!app/README.md\n",
        );
        let found = walk(&tree, "app").unwrap();
        assert_eq!(
            paths(&found),
            [
                "README.md",
                "a.yaml",
                "build",
                "build/keep",
                "build/keep/k.txt"
            ]
        );
        assert!(tree.hides("app/logs", &fs::metadata(root.join("app/logs")).unwrap()));
        assert_eq!(
            visible_names(&tree, "app").unwrap(),
            ["README.md", "a.yaml", "build"]
        );
    }
}
