//! htpasswd basic authentication for clients, as distribution's `htpasswd` access controller
//! does it: `user:hash` lines with bcrypt hashes (what `htpasswd -B` writes), checked on
//! every request.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use image::Digest;

/// How many verified credentials are remembered, so that bcrypt (slow by design) runs once
/// per client rather than once per request.
const VERIFIED_CACHE_SIZE: usize = 1024;

/// The users of an htpasswd file and the realm of the challenge; cheap to clone.
#[derive(Debug, Clone)]
pub struct Htpasswd {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    users: HashMap<String, String>,
    realm: String,
    /// Digests of `user\0password` pairs that verified.
    verified: Mutex<HashSet<Digest>>,
}

/// Why an htpasswd file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    /// The file cannot be read.
    #[error("cannot read the htpasswd file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line is not `user:bcrypt-hash`.
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl Htpasswd {
    /// Reads an htpasswd file.
    pub fn load(path: &Path, realm: &str) -> Result<Self, HtpasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Read {
            path: path.to_owned(),
            source,
        })?;
        Htpasswd::parse(&text, path, realm)
    }

    /// Parses htpasswd text (`path` names it in errors). Blank lines and `#` comments are
    /// skipped; every entry must have a bcrypt hash (`$2a$`, `$2b$`, `$2y$`), the only kind
    /// distribution accepts.
    pub fn parse(text: &str, path: &Path, realm: &str) -> Result<Self, HtpasswdError> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |reason: String| HtpasswdError::Line {
                path: path.to_owned(),
                line: index + 1,
                reason,
            };
            let Some((user, hash)) = line.split_once(':') else {
                return Err(error("expected `user:hash`".to_owned()));
            };
            if !["$2a$", "$2b$", "$2y$"]
                .iter()
                .any(|prefix| hash.starts_with(prefix))
            {
                return Err(error(format!(
                    "the entry of `{user}` is not a bcrypt hash; create it with `htpasswd -B`"
                )));
            }
            users.insert(user.to_owned(), hash.to_owned());
        }
        Ok(Htpasswd {
            inner: Arc::new(Inner {
                users,
                realm: realm.to_owned(),
                verified: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The `WWW-Authenticate` challenge.
    pub fn challenge(&self) -> String {
        format!(
            "Basic realm=\"{}\"",
            self.inner.realm.replace(['"', '\\'], "")
        )
    }

    /// True when an `Authorization` header value holds basic credentials of a user of the
    /// file. Runs bcrypt for credentials not verified before: call it off the async threads.
    pub fn authorizes(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let Some(hash) = self.inner.users.get(&user) else {
            return false;
        };
        let key = Digest::of(format!("{user}\0{password}\0{hash}").as_bytes());
        let mut verified = self
            .inner
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if verified.contains(&key) {
            return true;
        }
        drop(verified);
        if !bcrypt::verify(password.as_bytes(), hash).unwrap_or(false) {
            return false;
        }
        verified = self
            .inner
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_CACHE_SIZE {
            verified.clear();
        }
        verified.insert(key);
        true
    }
}

/// The user and password of a `Basic` authorization value.
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
        .into_bytes()
    }

    #[test]
    fn verifies_bcrypt_entries() {
        let hash = bcrypt::hash("secret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let text = format!("# users\n\nalice:{hash}\n");
        let htpasswd = Htpasswd::parse(&text, Path::new("htpasswd"), "test realm").unwrap();
        assert!(htpasswd.authorizes(Some(&basic("alice:secret"))));
        // Again, from the cache.
        assert!(htpasswd.authorizes(Some(&basic("alice:secret"))));
        assert!(!htpasswd.authorizes(Some(&basic("alice:wrong"))));
        assert!(!htpasswd.authorizes(Some(&basic("bob:secret"))));
        assert!(!htpasswd.authorizes(Some(b"Bearer abc")));
        assert!(!htpasswd.authorizes(Some(b"Basic !!!")));
        assert!(!htpasswd.authorizes(None));
        assert_eq!(htpasswd.challenge(), "Basic realm=\"test realm\"");
    }

    #[test]
    fn rejects_entries_distribution_cannot_check() {
        let error = Htpasswd::parse("a:$2y$05$x\nb:{SHA}abc\n", Path::new("/etc/htp"), "r")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("/etc/htp:2: "), "{error}");
        assert!(error.contains("htpasswd -B"), "{error}");
        let error = Htpasswd::parse("no-colon\n", Path::new("f"), "r").unwrap_err();
        assert!(error.to_string().starts_with("f:1: expected"), "{error}");
    }
}
