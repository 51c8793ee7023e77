//! `--chown=user[:group]`: numeric ids, or names looked up in the `etc/passwd` and
//! `etc/group` of an image root (BuildKit's rules: a numeric user alone also gives the group;
//! a user name gives its primary group).

use super::select::{self, SelectError, Tree};

/// The `(uid, gid)` that `chown` names. Names are looked up in `etc_root` (an image root);
/// without one only `root` is known.
pub(super) fn resolve(chown: &str, etc_root: Option<&Tree>) -> Result<(u32, u32), String> {
    let (user, group) = match chown.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (chown, None),
    };
    if user.is_empty() || group.is_some_and(str::is_empty) {
        return Err("expected user[:group], such as 1000:1000 or root".into());
    }
    let (uid, primary_gid) = match numeric(user)? {
        Some(uid) => (uid, uid),
        None => lookup(user, "passwd", etc_root)?,
    };
    let gid = match group {
        None => primary_gid,
        Some(group) => match numeric(group)? {
            Some(gid) => gid,
            None => lookup(group, "group", etc_root)?.0,
        },
    };
    Ok((uid, gid))
}

fn numeric(text: &str) -> Result<Option<u32>, String> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("id {text} is too large (the largest is {})", u32::MAX))
}

/// Looks a name up in `etc/<database>` (`passwd`: uid and primary gid; `group`: gid twice).
fn lookup(name: &str, database: &str, etc_root: Option<&Tree>) -> Result<(u32, u32), String> {
    let Some(tree) = etc_root else {
        if name == "root" {
            return Ok((0, 0));
        }
        return Err(format!(
            "the name `{name}` cannot be looked up: files copied from the build context have no \
             etc/{database} to look names up in; use numeric ids, such as --chown=1000:1000"
        ));
    };
    let path = format!("etc/{database}");
    let text = match select::resolve(tree, &path) {
        Ok(resolved) => std::fs::read(tree.dir.join(&resolved.real))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|e| format!("cannot read {path} of the image: {e}"))?,
        Err(SelectError::NotFound { .. }) => String::new(),
        Err(_) => return Err(format!("cannot read {path} of the image")),
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() != Some(&name) {
            continue;
        }
        let id = |index: usize| fields.get(index).and_then(|f| f.trim().parse::<u32>().ok());
        return match database {
            "passwd" => id(2).zip(id(3)),
            _ => id(2).map(|gid| (gid, gid)),
        }
        .ok_or_else(|| format!("the {path} entry of `{name}` is malformed: `{line}`"));
    }
    if name == "root" {
        return Ok((0, 0));
    }
    Err(format!(
        "no {} named `{name}` in the image's {path}; use a name it defines, or numeric ids",
        if database == "passwd" {
            "user"
        } else {
            "group"
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_and_root_need_no_files() {
        assert_eq!(resolve("1000", None), Ok((1000, 1000)));
        assert_eq!(resolve("1000:50", None), Ok((1000, 50)));
        assert_eq!(resolve("root", None), Ok((0, 0)));
        assert_eq!(resolve("root:root", None), Ok((0, 0)));
        assert_eq!(resolve("7:root", None), Ok((7, 0)));
        let error = resolve("app", None).unwrap_err();
        assert!(error.contains("numeric ids"), "{error}");
        assert!(resolve("1000:", None).is_err());
        assert!(resolve(":1", None).is_err());
        assert!(
            resolve("99999999999", None)
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn names_come_from_the_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\nbad:x:y\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
        let tree = Tree {
            dir: dir.path().to_path_buf(),
            ignore: None,
            confined: false,
        };
        assert_eq!(resolve("app", Some(&tree)), Ok((1000, 1001)));
        assert_eq!(resolve("app:staff", Some(&tree)), Ok((1000, 50)));
        assert_eq!(resolve("app:7", Some(&tree)), Ok((1000, 7)));
        assert_eq!(resolve("root", Some(&tree)), Ok((0, 0)));
        assert!(
            resolve("nobody", Some(&tree))
                .unwrap_err()
                .contains("no user named")
        );
        assert!(
            resolve("app:wheel", Some(&tree))
                .unwrap_err()
                .contains("no group named")
        );
        assert!(
            resolve("bad", Some(&tree))
                .unwrap_err()
                .contains("malformed")
        );
    }
}
