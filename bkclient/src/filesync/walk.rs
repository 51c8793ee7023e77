//! The sender's walk, as fsutil's `Walk` does it for a FileSync request: depth-first,
//! pre-order, names sorted bytewise in each directory, the root itself left out; include
//! patterns (plus follow paths resolved through symlinks) and exclude patterns applied on the
//! way; one fsutil `Stat` per entry that passes, with Go file modes.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use bollard_buildkit_proto::fsutil::types::Stat;
use engine::dockerignore::{DirState, DockerIgnore, clean};

use super::glob::{contains_wildcards, go_match};
use super::gomode;

/// Why a walk stopped.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// A file system call failed on a path.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The daemon's exclude patterns cannot be compiled.
    #[error("invalid exclude patterns from the daemon: {0}")]
    Patterns(#[from] engine::dockerignore::IgnoreError),
    /// A name the protocol cannot carry (its strings are UTF-8).
    #[error("{}: the name is not UTF-8, which a BuildKit transfer cannot carry; rename it or exclude it in .dockerignore", path.display())]
    NotUtf8 {
        /// The entry.
        path: PathBuf,
    },
    /// The visitor asked to stop (the transfer ended).
    #[error("the transfer was cancelled")]
    Cancelled,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WalkError {
    let path = path.to_path_buf();
    move |source| WalkError::Io {
        action,
        path,
        source,
    }
}

/// The filters of one request, prepared as fsutil's `Walk` prepares them.
#[derive(Debug, Default)]
pub struct Filters {
    /// Cleaned include patterns plus resolved follow paths; `None` = everything.
    includes: Option<Vec<String>>,
    /// Exclude patterns; `None` = nothing excluded.
    excludes: Option<DockerIgnore>,
}

impl Filters {
    /// The filters for a walk of `root` with the request's lists (`None` = the header was
    /// absent, which is not the same as an empty include list).
    pub fn new(
        root: &Path,
        includes: Option<&[String]>,
        excludes: Option<&[String]>,
        follow_paths: Option<&[String]>,
    ) -> Result<Filters, WalkError> {
        let excludes = match excludes {
            Some(patterns) => Some(DockerIgnore::from_patterns(patterns)?),
            None => None,
        }
        .filter(|ignore| !ignore.is_empty());
        let mut includes: Option<Vec<String>> =
            includes.map(|patterns| patterns.iter().map(|p| clean(p)).collect());
        if let Some(follow_paths) = follow_paths
            && let Some(targets) = follow_links(root, follow_paths)?
        {
            let mut all = includes.unwrap_or_default();
            all.extend(targets);
            includes = dedupe_paths(&all);
        }
        Ok(Filters { includes, excludes })
    }
}

/// Walks `root` (symlinks in its own path resolved) and gives each entry's stat to `visit`,
/// in the order the receiver's validator requires.
pub fn walk(
    root: &Path,
    filters: &Filters,
    visit: &mut dyn FnMut(Stat) -> Result<(), WalkError>,
) -> Result<(), WalkError> {
    let resolved = fs::canonicalize(root).map_err(io_error("cannot resolve", root))?;
    let metadata = fs::metadata(&resolved).map_err(io_error("cannot stat", &resolved))?;
    if !metadata.is_dir() {
        return Err(WalkError::Io {
            action: "cannot walk",
            path: resolved,
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let mut walker = Walker {
        filters,
        last_included_dir: None,
        seen_inodes: HashMap::new(),
        visit,
    };
    let root_state = filters.excludes.as_ref().map(DockerIgnore::root_state);
    walker.walk_dir(&resolved, "", root_state.as_ref())
}

struct Walker<'a> {
    filters: &'a Filters,
    last_included_dir: Option<String>,
    /// First path of every multiply-linked inode seen, for hardlinks.
    seen_inodes: HashMap<(u64, u64), String>,
    visit: &'a mut dyn FnMut(Stat) -> Result<(), WalkError>,
}

impl Walker<'_> {
    fn walk_dir(
        &mut self,
        dir: &Path,
        dir_rel: &str,
        ignore_state: Option<&DirState>,
    ) -> Result<(), WalkError> {
        let mut names = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            // Gone since it was listed: fsutil skips it.
            Err(e) if is_not_exist(&e) => return Ok(()),
            Err(e) => return Err(io_error("cannot read directory", dir)(e)),
        };
        for entry in entries {
            names.push(
                entry
                    .map_err(io_error("cannot read directory", dir))?
                    .file_name(),
            );
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = dir.join(&name);
            let name_text = name.to_string_lossy();
            let rel = if dir_rel.is_empty() {
                name_text.into_owned()
            } else {
                format!("{dir_rel}/{name_text}")
            };
            let metadata = match fs::symlink_metadata(&path) {
                Ok(metadata) => metadata,
                Err(e) if is_not_exist(&e) => continue,
                Err(e) => return Err(io_error("cannot stat", &path)(e)),
            };
            let is_dir = metadata.is_dir();
            if !self.included(&rel, is_dir) {
                continue;
            }
            let mut child_state = None;
            if let (Some(ignore), Some(state)) = (&self.filters.excludes, ignore_state) {
                if ignore.is_excluded_in(state, &rel) && !(is_dir && ignore.may_include_below(&rel))
                {
                    continue;
                }
                if is_dir {
                    child_state = Some(ignore.dir_state(state, &rel));
                }
            }
            if name.to_str().is_none() {
                return Err(WalkError::NotUtf8 { path });
            }
            if let Some(stat) = self.stat(&path, rel.clone(), &metadata)? {
                (self.visit)(stat)?;
            }
            if is_dir {
                self.walk_dir(&path, &rel, child_state.as_ref())?;
            }
        }
        Ok(())
    }

    /// fsutil's include check, which remembers the last directory a pattern fully matched so
    /// that everything below it is included without matching.
    fn included(&mut self, rel: &str, is_dir: bool) -> bool {
        let Some(includes) = &self.filters.includes else {
            return true;
        };
        if let Some(dir) = &self.last_included_dir
            && rel
                .strip_prefix(dir.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        {
            return true;
        }
        let mut matched = false;
        let mut partial = true;
        for pattern in includes {
            let (matches, is_partial) = match_prefix(pattern, rel);
            if matches {
                matched = true;
                if !is_partial {
                    partial = false;
                    break;
                }
            }
        }
        if matched && !partial && is_dir {
            self.last_included_dir = Some(rel.to_owned());
        }
        matched
    }

    /// fsutil's `mkstat` for one entry, with uid and gid reset to 0 as the docker CLI does;
    /// `None` for a socket.
    fn stat(
        &mut self,
        path: &Path,
        rel: String,
        metadata: &Metadata,
    ) -> Result<Option<Stat>, WalkError> {
        let st_mode = metadata.mode();
        let Some(mode) = gomode::from_unix(st_mode) else {
            return Ok(None);
        };
        let mut stat = Stat {
            mode,
            mod_time: metadata
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(metadata.mtime_nsec()),
            ..Stat::default()
        };
        if !metadata.is_dir() {
            if gomode::records_device(st_mode) {
                stat.devmajor = gomode::major(metadata.rdev());
                stat.devminor = gomode::minor(metadata.rdev());
            }
            if metadata.nlink() > 1 {
                let inode = (metadata.dev(), metadata.ino());
                match self.seen_inodes.get(&inode) {
                    Some(first) => stat.linkname.clone_from(first),
                    None => {
                        self.seen_inodes.insert(inode, rel.clone());
                    }
                }
            }
            // As in fsutil, the size is set after the hardlink check, so a hardlink keeps it.
            stat.size = i64::try_from(metadata.size()).unwrap_or(i64::MAX);
            if metadata.file_type().is_symlink() {
                let target = fs::read_link(path).map_err(io_error("cannot read link", path))?;
                stat.linkname =
                    target
                        .into_os_string()
                        .into_string()
                        .map_err(|_| WalkError::NotUtf8 {
                            path: path.to_path_buf(),
                        })?;
            }
        }
        stat.xattrs = xattrs(path)?;
        stat.path = rel;
        Ok(Some(stat))
    }
}

/// The extended attributes of `path` (not following a symlink); none when the file system has
/// no xattr support.
fn xattrs(path: &Path) -> Result<HashMap<String, Vec<u8>>, WalkError> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error()) => {
            return Ok(HashMap::new());
        }
        Err(e) if is_not_exist(&e) => return Ok(HashMap::new()),
        Err(e) => return Err(io_error("cannot list the extended attributes of", path)(e)),
    };
    let mut values = HashMap::new();
    for name in names {
        if let Ok(Some(value)) = xattr::get(path, &name) {
            values.insert(name.to_string_lossy().into_owned(), value);
        }
    }
    Ok(values)
}

fn is_not_exist(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// fsutil's `matchPrefix`: a pattern deeper than `name` is cut to `name`'s depth and then
/// only matches partially (the entry is a parent of what the pattern names).
fn match_prefix(pattern: &str, name: &str) -> (bool, bool) {
    let depth = name.matches('/').count();
    let mut pattern = pattern;
    let mut partial = false;
    if pattern.matches('/').count() > depth
        && let Some((cut, _)) = pattern.match_indices('/').nth(depth)
    {
        pattern = &pattern[..cut];
        partial = true;
    }
    (go_match(pattern, name), partial)
}

/// fsutil's `dedupePaths`: drops paths under the path kept before them (the input is expected
/// sorted); `None` when one of them is `.`, which means no filter at all.
fn dedupe_paths(paths: &[String]) -> Option<Vec<String>> {
    let mut kept = Vec::with_capacity(paths.len());
    let mut last = String::new();
    for path in paths {
        if path == "." {
            return None;
        }
        if path.starts_with(&format!("{last}/")) {
            continue;
        }
        kept.push(path.clone());
        last.clone_from(path);
    }
    Some(kept)
}

/// Go's `filepath.Join` for two elements.
fn join(base: &str, rest: &str) -> String {
    match (base.is_empty(), rest.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean(rest),
        (false, true) => clean(base),
        (false, false) => clean(&format!("{base}/{rest}")),
    }
}

/// Go's `filepath.Dir`.
fn go_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(at) => clean(&path[..=at]),
        None => ".".to_owned(),
    }
}

/// Go's `filepath.Base` for a cleaned path.
fn go_base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// fsutil's `FollowLinks`: each path resolved component by component through the symlinks
/// of `root` (targets made relative to the root, wildcards in a component expanded against
/// the directory); every path and every link on the way becomes an include pattern. `None`
/// when one of them is the root itself (no filter).
fn follow_links(root: &Path, paths: &[String]) -> Result<Option<Vec<String>>, WalkError> {
    let mut resolver = SymlinkResolver {
        root,
        resolved: BTreeSet::new(),
    };
    for path in paths {
        resolver.append(path)?;
    }
    let sorted: Vec<String> = resolver.resolved.into_iter().collect();
    Ok(dedupe_paths(&sorted))
}

struct SymlinkResolver<'a> {
    root: &'a Path,
    resolved: BTreeSet<String>,
}

impl SymlinkResolver<'_> {
    fn append(&mut self, path: &str) -> Result<(), WalkError> {
        let mut rest = join(".", path);
        let mut current = ".".to_owned();
        loop {
            let (first, remainder) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
            current = join(&current, first);
            let remainder = remainder.to_owned();
            let targets = self.read_symlink(&current, true)?;
            if (remainder.is_empty() || !targets.is_empty()) && self.resolved.contains(&current) {
                return Ok(());
            }
            if !targets.is_empty() {
                self.resolved.insert(current);
                for target in targets {
                    self.append(&join(&target, &remainder))?;
                }
                return Ok(());
            }
            if remainder.is_empty() {
                self.resolved.insert(current);
                return Ok(());
            }
            rest = remainder;
        }
    }

    /// The targets of `path` (relative to the root) when it is a symlink, or of every symlink
    /// its wildcard basename matches; empty otherwise.
    fn read_symlink(&self, path: &str, allow_wildcard: bool) -> Result<Vec<String>, WalkError> {
        let real = self.root.join(path);
        let base = go_base(path);
        if allow_wildcard && contains_wildcards(base) {
            let dir = real.parent().unwrap_or(self.root);
            let entries = match fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if is_not_exist(&e) => return Ok(Vec::new()),
                Err(e) => return Err(io_error("cannot read directory", dir)(e)),
            };
            let mut names = Vec::new();
            for entry in entries {
                let name = entry
                    .map_err(io_error("cannot read directory", dir))?
                    .file_name();
                if let Ok(name) = name.into_string() {
                    names.push(name);
                }
            }
            names.sort();
            let mut targets = Vec::new();
            for name in names {
                if go_match(base, &name) {
                    targets.extend(self.read_symlink(&join(&go_dir(path), &name), false)?);
                }
            }
            return Ok(targets);
        }
        let metadata = match fs::symlink_metadata(&real) {
            Ok(metadata) => metadata,
            Err(e) if is_not_exist(&e) => return Ok(Vec::new()),
            Err(e) => return Err(io_error("cannot stat", &real)(e)),
        };
        if !metadata.file_type().is_symlink() {
            return Ok(Vec::new());
        }
        let link = fs::read_link(&real).map_err(io_error("cannot read link", &real))?;
        let link = clean(&link.to_string_lossy());
        if link.starts_with('/') {
            return Ok(vec![link]);
        }
        Ok(vec![join("/", &join(&go_dir(path), &link))])
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt as _, symlink};

    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    fn walked(root: &Path, filters: &Filters) -> Vec<Stat> {
        let mut stats = Vec::new();
        walk(root, filters, &mut |stat| {
            stats.push(stat);
            Ok(())
        })
        .unwrap();
        stats
    }

    fn paths(root: &Path, filters: &Filters) -> Vec<String> {
        walked(root, filters).into_iter().map(|s| s.path).collect()
    }

    fn write(root: &Path, rel: &str, content: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn filters(
        root: &Path,
        includes: Option<&[&str]>,
        excludes: Option<&[&str]>,
        follow: Option<&[&str]>,
    ) -> Filters {
        Filters::new(
            root,
            includes.map(strings).as_deref(),
            excludes.map(strings).as_deref(),
            follow.map(strings).as_deref(),
        )
        .unwrap()
    }

    #[test]
    fn order_is_pre_order_with_bytewise_names() {
        let dir = tempfile::tempdir().unwrap();
        for rel in ["a.txt", "a/x", "a/B", "B", "a-b", "c/d/e"] {
            write(dir.path(), rel, rel);
        }
        assert_eq!(
            paths(dir.path(), &Filters::default()),
            ["B", "a", "a/B", "a/x", "a-b", "a.txt", "c", "c/d", "c/d/e"]
        );
    }

    #[test]
    fn stats_carry_go_modes_times_links_and_zero_owners() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "run.sh", "#!/bin/sh\n");
        fs::set_permissions(
            dir.path().join("run.sh"),
            fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::set_permissions(dir.path().join("d"), fs::Permissions::from_mode(0o1750)).unwrap();
        symlink("run.sh", dir.path().join("link")).unwrap();
        filetime::set_file_mtime(
            dir.path().join("run.sh"),
            filetime::FileTime::from_unix_time(1_600_000_000, 123_456_789),
        )
        .unwrap();

        let stats = walked(dir.path(), &Filters::default());
        let by_path: HashMap<&str, &Stat> = stats.iter().map(|s| (s.path.as_str(), s)).collect();
        let dir_stat = by_path["d"];
        assert_eq!(
            dir_stat.mode,
            gomode::MODE_DIR | gomode::MODE_STICKY | 0o750
        );
        assert_eq!(dir_stat.size, 0);
        let link = by_path["link"];
        assert_eq!(link.mode, gomode::MODE_SYMLINK | 0o777);
        assert_eq!(link.linkname, "run.sh");
        assert_eq!(link.size, 6);
        let script = by_path["run.sh"];
        assert_eq!(script.mode, gomode::MODE_SETUID | 0o755);
        assert_eq!(script.size, 10);
        assert_eq!(script.mod_time, 1_600_000_000_123_456_789);
        assert!(script.linkname.is_empty());
        assert!(stats.iter().all(|s| s.uid == 0 && s.gid == 0));
        // A second walk of the unchanged tree gives the same stats.
        assert_eq!(walked(dir.path(), &Filters::default()), stats);
    }

    #[test]
    fn fifos_are_sent_and_sockets_left_out() {
        let dir = tempfile::tempdir().unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            dir.path().join("pipe"),
            rustix::fs::Mode::from_raw_mode(0o640),
        )
        .unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
        let stats = walked(dir.path(), &Filters::default());
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].path, "pipe");
        assert_eq!(stats[0].mode, gomode::MODE_NAMED_PIPE | 0o640);
    }

    #[test]
    fn hardlinks_name_the_first_path() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b/first", "shared");
        fs::hard_link(dir.path().join("b/first"), dir.path().join("a")).unwrap();
        fs::hard_link(dir.path().join("b/first"), dir.path().join("c")).unwrap();
        let stats = walked(dir.path(), &Filters::default());
        let view: Vec<(&str, &str, i64)> = stats
            .iter()
            .map(|s| (s.path.as_str(), s.linkname.as_str(), s.size))
            .collect();
        assert_eq!(
            view,
            [
                ("a", "", 6),
                ("b", "", 0),
                ("b/first", "a", 6),
                ("c", "a", 6)
            ]
        );
    }

    #[test]
    fn includes_select_paths_and_their_parents() {
        let dir = tempfile::tempdir().unwrap();
        for rel in [
            "Kubefile",
            "charts/app/values.yaml",
            "charts/app/x/y",
            "other/file",
            "z",
        ] {
            write(dir.path(), rel, "x");
        }
        let only =
            |patterns: &[&str]| paths(dir.path(), &filters(dir.path(), Some(patterns), None, None));
        assert_eq!(only(&["Kubefile"]), ["Kubefile"]);
        assert_eq!(
            only(&["charts/app"]),
            [
                "charts",
                "charts/app",
                "charts/app/values.yaml",
                "charts/app/x",
                "charts/app/x/y"
            ]
        );
        assert_eq!(
            only(&["charts/*/values.yaml", "./z/"]),
            ["charts", "charts/app", "charts/app/values.yaml", "z"]
        );
        assert!(only(&[]).is_empty());
    }

    #[test]
    fn follow_paths_resolve_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "real/Kubefile", "FROM scratch");
        write(dir.path(), "real/other", "x");
        write(dir.path(), "unrelated", "x");
        write(dir.path(), "abs-target/file", "x");
        symlink("real/Kubefile", dir.path().join("Kubefile")).unwrap();
        symlink("/abs-target", dir.path().join("abs")).unwrap();
        let followed =
            |follow: &[&str]| paths(dir.path(), &filters(dir.path(), None, None, Some(follow)));
        assert_eq!(
            followed(&["Kubefile"]),
            ["Kubefile", "real", "real/Kubefile"]
        );
        // An absolute link target is taken relative to the root.
        assert_eq!(
            followed(&["abs/file"]),
            ["abs", "abs-target", "abs-target/file"]
        );
        assert_eq!(followed(&["K*"]), ["Kubefile", "real", "real/Kubefile"]);
        assert_eq!(followed(&["missing"]), Vec::<String>::new());
        // The root itself: no filter at all.
        assert_eq!(followed(&["."]).len(), 8);
        // Follow paths add to the include patterns.
        assert_eq!(
            paths(
                dir.path(),
                &filters(dir.path(), Some(&["unrelated"]), None, Some(&["Kubefile"]))
            ),
            ["Kubefile", "real", "real/Kubefile", "unrelated"]
        );
    }

    #[test]
    fn excludes_skip_paths_and_enter_dirs_only_for_exceptions() {
        let dir = tempfile::tempdir().unwrap();
        for rel in [
            "a.secret",
            "keep.txt",
            "logs/keep",
            "logs/old.log",
            "build/out/bin",
            "deep/x.secret",
        ] {
            write(dir.path(), rel, "x");
        }
        let excluded =
            |patterns: &[&str]| paths(dir.path(), &filters(dir.path(), None, Some(patterns), None));
        assert_eq!(
            excluded(&["**/*.secret", "logs", "!logs/keep", "build"]),
            ["deep", "keep.txt", "logs", "logs/keep"]
        );
        // A wildcard exception does not make the walk enter an excluded directory.
        assert_eq!(
            excluded(&["logs", "!**/keep"]),
            [
                "a.secret",
                "build",
                "build/out",
                "build/out/bin",
                "deep",
                "deep/x.secret",
                "keep.txt"
            ]
        );
        assert_eq!(excluded(&[]).len(), 10);
        assert!(
            Filters::new(dir.path(), None, Some(&strings(&["[x"])), None).is_err(),
            "a malformed pattern is an error"
        );
    }

    #[test]
    fn prefix_matching_and_dedupe_follow_fsutil() {
        assert_eq!(match_prefix("a/b/c", "a"), (true, true));
        assert_eq!(match_prefix("a/b/c", "a/b"), (true, true));
        assert_eq!(match_prefix("a/b/c", "a/b/c"), (true, false));
        assert_eq!(match_prefix("a/*", "a/x"), (true, false));
        assert_eq!(match_prefix("a/b", "x"), (false, true));
        assert_eq!(
            dedupe_paths(&strings(&["a", "a/b", "ab", "c/d"])),
            Some(strings(&["a", "ab", "c/d"]))
        );
        assert_eq!(dedupe_paths(&strings(&["a", "."])), None);
    }

    #[test]
    fn a_missing_root_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = walk(&missing, &Filters::default(), &mut |_| Ok(())).unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
    }
}
