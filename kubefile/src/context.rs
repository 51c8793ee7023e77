//! Read-only views of a build context, so the build plan can check sources and detect app
//! types without knowing where the files live (a directory on disk, files sent by BuildKit,
//! or an in-memory tree in tests).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;

/// What a context path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
}

/// A read-only view of a build context. Paths are relative to the context root, use `/`, and
/// have no leading `/`; `""` is the root.
pub trait ContextView {
    /// The kind of the entry at `path`, or `None` when there is none.
    fn kind(&self, path: &str) -> Option<EntryKind>;

    /// The names of a directory's entries, sorted; empty for anything that is not a directory.
    fn list(&self, path: &str) -> Vec<String>;

    /// Every file and symlink under `path` (itself, if it is one), relative to `path`, sorted.
    fn walk_files(&self, path: &str) -> Vec<String> {
        let mut files = Vec::new();
        match self.kind(path) {
            Some(EntryKind::Dir) => walk_into(self, path, "", &mut files),
            Some(_) => files.push(basename(path).to_owned()),
            None => {}
        }
        files
    }

    /// The contents of the file at `path`. The default reads through [`ContextView::open`];
    /// a view that can do neither answers `Unsupported`.
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(path)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// A reader over the file at `path`, for files too large to hold in memory (image
    /// archives). The default answers `Unsupported`; views override it or [`ContextView::read`].
    fn open(&self, path: &str) -> io::Result<Box<dyn Read + '_>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{path}: this context view cannot read files"),
        ))
    }
}

fn walk_into<V: ContextView + ?Sized>(view: &V, root: &str, prefix: &str, files: &mut Vec<String>) {
    let dir = join(root, prefix);
    for name in view.list(&dir) {
        let relative = join(prefix, &name);
        match view.kind(&join(root, &relative)) {
            Some(EntryKind::Dir) => walk_into(view, root, &relative, files),
            Some(_) => files.push(relative),
            None => {}
        }
    }
}

/// Joins two relative paths with `/`.
pub fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{}/{}", a.trim_end_matches('/'), b),
    }
}

/// The last component of a path.
pub fn basename(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// Normalizes a path relative to a root: `.` and empty components dropped, `..` resolved, a
/// leading `/` ignored. `Err` when the path climbs above the root.
pub fn clean_relative(path: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(path.to_owned());
                }
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// A context directory on disk.
#[derive(Debug, Clone)]
pub struct DirContext {
    root: PathBuf,
}

impl DirContext {
    /// A view of the directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirContext { root: root.into() }
    }

    fn path(&self, relative: &str) -> PathBuf {
        if relative.is_empty() {
            self.root.clone()
        } else {
            self.root.join(relative)
        }
    }
}

impl ContextView for DirContext {
    fn kind(&self, path: &str) -> Option<EntryKind> {
        let meta = std::fs::symlink_metadata(self.path(path)).ok()?;
        let kind = meta.file_type();
        Some(if kind.is_symlink() {
            EntryKind::Symlink
        } else if kind.is_dir() {
            EntryKind::Dir
        } else {
            EntryKind::File
        })
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(path))
    }

    fn open(&self, path: &str) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(std::fs::File::open(self.path(path))?))
    }

    fn list(&self, path: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.path(path)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }
}

/// An in-memory context: a set of paths and their kinds (parents are implied directories),
/// with optional file contents (a file added without contents reads as empty).
#[derive(Debug, Clone, Default)]
pub struct MemoryContext {
    entries: BTreeMap<String, EntryKind>,
    contents: BTreeMap<String, Vec<u8>>,
}

impl MemoryContext {
    /// An empty context.
    pub fn new() -> Self {
        MemoryContext::default()
    }

    /// Adds an entry and its parent directories.
    #[must_use]
    pub fn with(mut self, path: &str, kind: EntryKind) -> Self {
        self.insert(path, kind);
        self
    }

    /// Adds a file and its parent directories.
    #[must_use]
    pub fn with_file(self, path: &str) -> Self {
        self.with(path, EntryKind::File)
    }

    /// Adds a file with its contents, and its parent directories.
    #[must_use]
    pub fn with_content(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.insert(path, EntryKind::File);
        self.contents
            .insert(path.trim_matches('/').to_owned(), bytes.into());
        self
    }

    /// Adds an entry and its parent directories.
    pub fn insert(&mut self, path: &str, kind: EntryKind) {
        let path = path.trim_matches('/');
        let mut parent = path;
        while let Some((dir, _)) = parent.rsplit_once('/') {
            self.entries.insert(dir.to_owned(), EntryKind::Dir);
            parent = dir;
        }
        self.entries.insert(path.to_owned(), kind);
    }
}

impl ContextView for MemoryContext {
    fn kind(&self, path: &str) -> Option<EntryKind> {
        if path.is_empty() {
            return Some(EntryKind::Dir);
        }
        self.entries.get(path).copied()
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        match self.entries.get(path) {
            Some(EntryKind::File) => Ok(self.contents.get(path).cloned().unwrap_or_default()),
            Some(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path}: not a regular file"),
            )),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{path}: no such file in the context"),
            )),
        }
    }

    fn open(&self, path: &str) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(io::Cursor::new(self.read(path)?)))
    }

    fn list(&self, path: &str) -> Vec<String> {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        self.entries
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(clean_relative("./a//b/../c/").unwrap(), "a/c");
        assert_eq!(clean_relative("/etc/x").unwrap(), "etc/x");
        assert_eq!(clean_relative(".").unwrap(), "");
        assert!(clean_relative("a/../../b").is_err());
    }

    #[test]
    fn memory_context_walks_sorted() {
        let ctx = MemoryContext::new()
            .with_file("app/b.yaml")
            .with_file("app/a.yaml")
            .with_file("app/sub/c.yaml");
        assert_eq!(ctx.kind("app"), Some(EntryKind::Dir));
        assert_eq!(
            ctx.walk_files("app"),
            vec!["a.yaml", "b.yaml", "sub/c.yaml"]
        );
        assert_eq!(ctx.walk_files("app/a.yaml"), vec!["a.yaml"]);
        assert_eq!(ctx.list(""), vec!["app"]);
    }

    #[test]
    fn memory_context_reads_contents() {
        let ctx = MemoryContext::new()
            .with_content("a/b.yaml", "x: 1")
            .with_file("a/empty");
        assert_eq!(ctx.read("a/b.yaml").unwrap(), b"x: 1");
        assert!(ctx.read("a/empty").unwrap().is_empty());
        assert!(ctx.read("a").is_err());
        assert!(ctx.read("missing").is_err());
        let mut text = String::new();
        ctx.open("a/b.yaml")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "x: 1");
    }

    #[test]
    fn dir_context_reads_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("x/y")).unwrap();
        std::fs::write(dir.path().join("x/y/f.sh"), "").unwrap();
        let ctx = DirContext::new(dir.path());
        assert_eq!(ctx.kind("x"), Some(EntryKind::Dir));
        assert_eq!(ctx.walk_files("x"), vec!["y/f.sh"]);
        assert_eq!(ctx.kind("missing"), None);
        std::fs::write(dir.path().join("x/y/f.sh"), "echo").unwrap();
        assert_eq!(ctx.read("x/y/f.sh").unwrap(), b"echo");
        assert!(ctx.read("missing").is_err());
    }
}
