//! Read-only views of a build context, so the build plan can check sources and detect app
//! types without knowing where the files live (a directory on disk, files sent by BuildKit,
//! or an in-memory tree in tests).

use std::collections::BTreeMap;
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

/// An in-memory context: a set of paths and their kinds (parents are implied directories).
#[derive(Debug, Clone, Default)]
pub struct MemoryContext {
    entries: BTreeMap<String, EntryKind>,
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
    fn dir_context_reads_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("x/y")).unwrap();
        std::fs::write(dir.path().join("x/y/f.sh"), "").unwrap();
        let ctx = DirContext::new(dir.path());
        assert_eq!(ctx.kind("x"), Some(EntryKind::Dir));
        assert_eq!(ctx.walk_files("x"), vec!["y/f.sh"]);
        assert_eq!(ctx.kind("missing"), None);
    }
}
