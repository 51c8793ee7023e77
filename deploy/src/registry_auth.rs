//! The credentials of the cluster's registry (`localRegistry.username` and `password`): the
//! htpasswd file its server checks and the Docker config (`auths`) its clients log in with,
//! and the `Authorization` header containerd sends to it as a mirror.
//!
//! The htpasswd line (bcrypt, salted) is kept in `<cluster state dir>/registry-htpasswd`
//! (0600) and made again only when the user or password no longer match it, so that runs
//! that change nothing write the same file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::secret::Secret;
use crate::state::write_atomically;

/// bcrypt's cost for the htpasswd line: verified once per client credential by the server,
/// which remembers it.
const BCRYPT_COST: u32 = 10;

/// Why the credentials cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The stored htpasswd cannot be read or written.
    #[error("registry credentials: {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The password cannot be hashed.
    #[error("registry credentials: cannot hash the password: {0}")]
    Hash(String),
}

/// The registry's credentials, in the forms servers and clients read.
#[derive(Debug, Clone)]
pub struct RegistryAuth {
    /// The htpasswd line (`user:bcrypt hash`), newline-terminated.
    pub htpasswd: Secret,
    /// A Docker config (`{"auths": {"<registry>": {"auth": …}}}`) for the registry.
    pub docker_config: Secret,
    /// The `Authorization` header value of the credentials (`Basic <base64>`).
    pub authorization: Secret,
}

impl RegistryAuth {
    /// The credentials of `username` and `password` for `registry` (`domain:port`), the
    /// htpasswd line read from `state_dir` when it still matches them, else made (and stored
    /// unless `persist` is false: a dry run or a recorded cluster).
    pub fn ensure(
        state_dir: &Path,
        registry: &str,
        username: &str,
        password: &Secret,
        persist: bool,
    ) -> Result<Self, AuthError> {
        let path = state_dir.join("registry-htpasswd");
        let file_error = |source| AuthError::File {
            path: path.clone(),
            source,
        };
        let stored = match fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(file_error(e)),
        };
        let matching = stored.filter(|line| {
            line.trim_end().split_once(':').is_some_and(|(user, hash)| {
                user == username
                    && bcrypt::verify(password.expose().as_bytes(), hash).unwrap_or(false)
            })
        });
        let htpasswd = if let Some(line) = matching {
            line
        } else {
            let hash = bcrypt::hash(password.expose().as_bytes(), BCRYPT_COST)
                .map_err(|e| AuthError::Hash(e.to_string()))?;
            let line = format!("{username}:{hash}\n");
            if persist {
                fs::create_dir_all(state_dir)
                    .and_then(|()| write_atomically(&path, line.as_bytes(), 0o600))
                    .map_err(file_error)?;
            }
            line
        };
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{username}:{}", password.expose()));
        let docker_config = serde_json::json!({ "auths": { registry: { "auth": token } } });
        Ok(RegistryAuth {
            htpasswd: Secret::new(htpasswd),
            docker_config: Secret::new(format!("{docker_config}\n")),
            authorization: Secret::new(format!("Basic {token}")),
        })
    }

    /// SHA-256 of the htpasswd line (salted): steps that install the credentials change when
    /// they do, and the digest tells nothing about the password.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.htpasswd.expose().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// The credentials of user `admin` with `password` for `sea.hub:5000`.
    fn admin(state: &Path, password: &str, persist: bool) -> RegistryAuth {
        RegistryAuth::ensure(
            state,
            "sea.hub:5000",
            "admin",
            &Secret::new(password.to_owned()),
            persist,
        )
        .unwrap()
    }

    #[test]
    fn the_htpasswd_line_is_kept_while_the_credentials_match() {
        let state = tempfile::tempdir().unwrap();
        let first = admin(state.path(), "pw", true);
        let line = first.htpasswd.expose();
        let (user, hash) = line.trim_end().split_once(':').unwrap();
        assert_eq!(user, "admin");
        assert!(bcrypt::verify("pw", hash).unwrap());
        let stored = state.path().join("registry-htpasswd");
        assert_eq!(
            fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = admin(state.path(), "pw", true);
        assert_eq!(again.digest(), first.digest());
        let changed = admin(state.path(), "new", true);
        assert_ne!(changed.digest(), first.digest());
    }

    #[test]
    fn clients_get_a_docker_config_for_the_registry() {
        let state = tempfile::tempdir().unwrap();
        let auth = admin(state.path(), "pw", false);
        assert_eq!(
            auth.docker_config.expose(),
            "{\"auths\":{\"sea.hub:5000\":{\"auth\":\"YWRtaW46cHc=\"}}}\n"
        );
        assert!(
            !state.path().join("registry-htpasswd").exists(),
            "not stored"
        );
        assert_eq!(auth.authorization.expose(), "Basic YWRtaW46cHc=");
        assert_eq!(format!("{auth:?}").matches("***").count(), 3, "{auth:?}");
    }
}
