//! The checks fsutil's receiver makes on every incoming `STAT` (validator.go,
//! hardlinks.go): clean relative paths that stay inside the destination, each directory's
//! entries in strictly increasing byte order right after the directory itself, and hardlinks
//! only to files already received.

use std::cmp::Ordering;
use std::collections::HashSet;

use engine::dockerignore::clean;

/// Why a `STAT` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStat {
    /// The path is not clean (`a//b`, `a/./b`, a trailing `/`, empty).
    #[error("{0:?}: the path is not clean")]
    Unclean(String),
    /// The path is absolute.
    #[error("{0:?}: the path is absolute")]
    Absolute(String),
    /// The path leaves the destination.
    #[error("{0:?}: the path leaves the destination")]
    Escape(String),
    /// The entry does not follow its predecessor in walk order, or its parent was not sent.
    #[error("changes out of order: {path:?} after {previous:?}")]
    OutOfOrder {
        /// The entry.
        path: String,
        /// The last entry of the directory it was compared with.
        previous: String,
    },
    /// A hardlink names a path that was not received before it.
    #[error("invalid link {path:?} to unknown path {target:?}")]
    UnknownLinkTarget {
        /// The link.
        path: String,
        /// What it links to.
        target: String,
    },
}

#[derive(Debug, Clone)]
struct Parent {
    dir: String,
    last: String,
}

/// fsutil's `Validator`: the stack of open directories and the last name seen in each.
#[derive(Debug)]
pub struct OrderValidator {
    parents: Vec<Parent>,
}

impl Default for OrderValidator {
    fn default() -> Self {
        OrderValidator {
            parents: vec![Parent {
                dir: String::new(),
                last: String::new(),
            }],
        }
    }
}

impl OrderValidator {
    /// Checks the next entry of the stream.
    pub fn check(&mut self, path: &str, is_dir: bool) -> Result<(), InvalidStat> {
        if path != clean(path) || path == "." {
            return Err(InvalidStat::Unclean(path.to_owned()));
        }
        if path.starts_with('/') {
            return Err(InvalidStat::Absolute(path.to_owned()));
        }
        let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
        if dir == ".." || path.starts_with("../") || path == ".." {
            return Err(InvalidStat::Escape(path.to_owned()));
        }
        // The deepest open directory that sorts at or before `dir`; the root always does.
        let index = self
            .parents
            .iter()
            .rposition(|parent| compare_path(&parent.dir, dir) != Ordering::Greater)
            .unwrap_or(0);
        self.parents.truncate(index + 1);
        let parent = &mut self.parents[index];
        if parent.dir != dir || parent.last.as_str() >= base {
            let previous = if parent.dir.is_empty() {
                parent.last.clone()
            } else {
                format!("{}/{}", parent.dir, parent.last)
            };
            return Err(InvalidStat::OutOfOrder {
                path: path.to_owned(),
                previous,
            });
        }
        base.clone_into(&mut parent.last);
        if is_dir {
            self.parents.push(Parent {
                dir: path.to_owned(),
                last: String::new(),
            });
        }
        Ok(())
    }
}

/// fsutil's `ComparePath`: bytewise, but `/` sorts before every other byte.
fn compare_path(left: &str, right: &str) -> Ordering {
    for (&l, &r) in left.as_bytes().iter().zip(right.as_bytes()) {
        if l == r {
            continue;
        }
        return if (r != b'/' && l < r) || l == b'/' {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    left.len().cmp(&right.len())
}

/// fsutil's `Hardlinks` check: a regular entry with a link name must name a regular entry
/// received before it.
#[derive(Debug, Default)]
pub struct HardlinkValidator {
    seen: HashSet<String>,
}

impl HardlinkValidator {
    /// Checks one non-directory, non-symlink entry.
    pub fn check(&mut self, path: &str, linkname: &str) -> Result<(), InvalidStat> {
        if linkname.is_empty() {
            self.seen.insert(path.to_owned());
            return Ok(());
        }
        if self.seen.contains(linkname) {
            Ok(())
        } else {
            Err(InvalidStat::UnknownLinkTarget {
                path: path.to_owned(),
                target: linkname.to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::gomode;
    use super::super::walk::{Filters, walk};
    use super::*;

    fn check_all(entries: &[(&str, bool)]) -> Result<(), InvalidStat> {
        let mut validator = OrderValidator::default();
        for (path, is_dir) in entries {
            validator.check(path, *is_dir)?;
        }
        Ok(())
    }

    #[test]
    fn accepts_walk_order() {
        assert_eq!(
            check_all(&[
                ("a", true),
                ("a/x", false),
                ("a/y", true),
                ("a/y/z", false),
                ("a.txt", false),
                ("b", false),
            ]),
            Ok(())
        );
    }

    #[test]
    fn refuses_disorder_missing_parents_and_bad_paths() {
        for (entries, expected) in [
            (
                vec![("b", false), ("a", false)],
                InvalidStat::OutOfOrder {
                    path: "a".into(),
                    previous: "b".into(),
                },
            ),
            (
                vec![("a.txt", false), ("a", true)],
                InvalidStat::OutOfOrder {
                    path: "a".into(),
                    previous: "a.txt".into(),
                },
            ),
            (
                vec![("x", false), ("x", false)],
                InvalidStat::OutOfOrder {
                    path: "x".into(),
                    previous: "x".into(),
                },
            ),
            (
                vec![("a/b", false)],
                InvalidStat::OutOfOrder {
                    path: "a/b".into(),
                    previous: String::new(),
                },
            ),
            (
                // A symlink is no parent.
                vec![("a", false), ("a/b", false)],
                InvalidStat::OutOfOrder {
                    path: "a/b".into(),
                    previous: "a".into(),
                },
            ),
            (vec![("a//b", false)], InvalidStat::Unclean("a//b".into())),
            (vec![("", false)], InvalidStat::Unclean(String::new())),
            (vec![(".", true)], InvalidStat::Unclean(".".into())),
            (vec![("/etc", true)], InvalidStat::Absolute("/etc".into())),
            (vec![("..", true)], InvalidStat::Escape("..".into())),
            (vec![("../x", false)], InvalidStat::Escape("../x".into())),
        ] {
            assert_eq!(check_all(&entries), Err(expected), "{entries:?}");
        }
    }

    #[test]
    fn hardlinks_need_a_received_target() {
        let mut links = HardlinkValidator::default();
        assert!(links.check("a", "").is_ok());
        assert!(links.check("b", "a").is_ok());
        assert_eq!(
            links.check("c", "z"),
            Err(InvalidStat::UnknownLinkTarget {
                path: "c".into(),
                target: "z".into()
            })
        );
    }

    #[test]
    fn compare_path_puts_slash_first() {
        assert_eq!(compare_path("a/b", "a.b"), Ordering::Less);
        assert_eq!(compare_path("a.b", "a/b"), Ordering::Greater);
        assert_eq!(compare_path("", "a"), Ordering::Less);
        assert_eq!(compare_path("a", "a"), Ordering::Equal);
    }

    /// What our walk sends passes the receiver's checks, on a tree with the tricky orders.
    #[test]
    fn accepts_what_the_walk_sends() {
        let dir = tempfile::tempdir().unwrap();
        for rel in ["a/x", "a/b/c", "a.txt", "a-z/q", "a0", "B", "é/1"] {
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, rel).unwrap();
        }
        fs::hard_link(dir.path().join("a/x"), dir.path().join("z-link")).unwrap();
        let mut order = OrderValidator::default();
        let mut links = HardlinkValidator::default();
        let mut count = 0;
        walk(dir.path(), &Filters::default(), &mut |stat| {
            let is_dir = gomode::kind(stat.mode) == gomode::Kind::Dir;
            order.check(&stat.path, is_dir).unwrap();
            if !is_dir {
                links.check(&stat.path, &stat.linkname).unwrap();
            }
            count += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(count, 12);
    }
}
