//! Registry credentials the way Docker keeps them: `~/.docker/config.json` (or
//! `$DOCKER_CONFIG/config.json`) `auths` entries, `credHelpers` and `credsStore` helpers
//! (`docker-credential-<name>`); and `login`/`logout`, which write and remove
//! Docker-compatible entries. Secrets are never logged or put in error messages.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::RegistryError;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials.
    Anonymous,
    /// A user name and password (or token used as a password).
    Basic {
        /// User name.
        username: String,
        /// Password; never printed.
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

/// The directory of Docker's client config: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    home.join(".docker")
}

/// The key Docker uses for a registry in `auths` (`https://index.docker.io/v1/` for Docker Hub).
pub fn config_key(registry: &str) -> String {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    }
}

/// Where Docker's client config lives and where its credential helpers are found: the
/// process environment ([`CredentialStore::from_env`]) or an explicit directory (tests, and
/// callers that pick a config directory themselves).
#[derive(Clone, Debug)]
pub struct CredentialStore {
    config_dir: PathBuf,
    helper_search_path: Option<OsString>,
}

impl CredentialStore {
    /// `$DOCKER_CONFIG` (else `~/.docker`), helpers looked up in `$PATH`.
    pub fn from_env() -> Self {
        Self::new(docker_config_dir())
    }

    /// The config in `config_dir` (`config_dir/config.json`), helpers looked up in `$PATH`.
    pub fn new(config_dir: impl Into<PathBuf>) -> Self {
        CredentialStore {
            config_dir: config_dir.into(),
            helper_search_path: None,
        }
    }

    /// Looks up `docker-credential-<name>` helpers in `search_path` (a `PATH`-style list of
    /// directories) instead of `$PATH`; the helpers run with that `PATH`.
    #[must_use]
    pub fn with_helper_search_path(mut self, search_path: impl Into<OsString>) -> Self {
        self.helper_search_path = Some(search_path.into());
        self
    }

    /// The directory holding `config.json`.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    fn config_path(&self) -> PathBuf {
        self.config_dir.join("config.json")
    }

    fn read_config(&self) -> Result<Map<String, Value>, RegistryError> {
        let path = self.config_path();
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(RegistryError::Config(format!(
                    "{} is not a JSON object",
                    path.display()
                ))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(RegistryError::Config(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    fn write_config(&self, config: &Map<String, Value>) -> Result<(), RegistryError> {
        let path = self.config_path();
        let dir = &self.config_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| RegistryError::Config(format!("cannot create {}: {e}", dir.display())))?;
        let bytes = serde_json::to_vec_pretty(&Value::Object(config.clone()))
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
            RegistryError::Config(format!("cannot write in {}: {e}", dir.display()))
        })?;
        let set_private = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600))
        };
        set_private
            .and_then(|()| tmp.write_all(&bytes))
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| RegistryError::Config(format!("cannot write {}: {e}", path.display())))?;
        tmp.persist(&path).map_err(|e| {
            RegistryError::Config(format!("cannot write {}: {}", path.display(), e.error))
        })?;
        Ok(())
    }

    /// Runs `docker-credential-<helper> <action>` with `input` on stdin; returns its stdout.
    fn run_helper(&self, helper: &str, action: &str, input: &str) -> Result<String, RegistryError> {
        let program = format!("docker-credential-{helper}");
        let mut command = Command::new(&program);
        if let Some(search_path) = &self.helper_search_path {
            command.env("PATH", search_path);
        }
        let mut child = command
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                RegistryError::Config(format!("cannot run the credential helper {program}: {e}"))
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        let output = child.wait_with_output().map_err(|e| {
            RegistryError::Config(format!("credential helper {program} failed: {e}"))
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(RegistryError::Config(format!(
                "credential helper {program} {action} failed: {}",
                stdout.trim()
            )))
        }
    }

    /// The credentials stored for a registry, or `Anonymous`.
    pub fn credentials_for(&self, registry: &str) -> Result<Credentials, RegistryError> {
        let config = self.read_config()?;
        let key = config_key(registry);
        if let Some(helper) = helper_for(&config, &key, registry) {
            let output = self.run_helper(&helper, "get", &key);
            return Ok(match output {
                Ok(text) => {
                    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    match (value["Username"].as_str(), value["Secret"].as_str()) {
                        (Some(username), Some(password)) if !password.is_empty() => {
                            Credentials::Basic {
                                username: username.to_owned(),
                                password: password.to_owned(),
                            }
                        }
                        _ => Credentials::Anonymous,
                    }
                }
                Err(_) => Credentials::Anonymous,
            });
        }
        let auths = config.get("auths").and_then(Value::as_object);
        let entry = auths.and_then(|a| {
            a.get(&key)
                .or_else(|| a.get(registry))
                .or_else(|| a.get(&format!("https://{registry}")))
        });
        let Some(entry) = entry else {
            return Ok(Credentials::Anonymous);
        };
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    RegistryError::Config(format!(
                        "the `auth` entry for {registry} in {} is not valid base64 of user:password",
                        self.config_path().display()
                    ))
                })?;
            let (username, password) = decoded.split_once(':').ok_or_else(|| {
                RegistryError::Config(format!(
                    "the `auth` entry for {registry} in {} has no `:` between user and password",
                    self.config_path().display()
                ))
            })?;
            return Ok(Credentials::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            });
        }
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) => Ok(Credentials::Basic {
                username: u.to_owned(),
                password: p.to_owned(),
            }),
            _ => Ok(Credentials::Anonymous),
        }
    }

    /// Every registry this config knows credentials for, sorted by key: the `auths` keys, the
    /// `credHelpers` keys and what `docker-credential-<credsStore> list` reports, each
    /// resolved like [`CredentialStore::credentials_for`]; registries without credentials are
    /// left out. Keys are kept as written (`https://index.docker.io/v1/` for Docker Hub).
    pub fn all_credentials(&self) -> Result<Vec<(String, Credentials)>, RegistryError> {
        let config = self.read_config()?;
        let mut keys = BTreeSet::new();
        for section in ["auths", "credHelpers"] {
            if let Some(entries) = config.get(section).and_then(Value::as_object) {
                keys.extend(entries.keys().cloned());
            }
        }
        if let Some(store) = config
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            let listing = self.run_helper(store, "list", "")?;
            let Ok(Value::Object(listed)) = serde_json::from_str::<Value>(&listing) else {
                return Err(RegistryError::Config(format!(
                    "the credential helper docker-credential-{store} (credsStore in {}) \
                     answered `list` with something other than a JSON object",
                    self.config_path().display()
                )));
            };
            keys.extend(listed.into_iter().map(|(key, _)| key));
        }
        let mut all = Vec::new();
        for key in keys {
            match self.credentials_for(&key)? {
                Credentials::Anonymous => {}
                credentials @ Credentials::Basic { .. } => all.push((key, credentials)),
            }
        }
        Ok(all)
    }

    /// A Docker `config.json` with a plain `auths` entry (`{"auth": base64(user:password)}`)
    /// for every registry of [`CredentialStore::all_credentials`]: what a build step that has
    /// no credential helpers needs to reach the same registries.
    pub fn registry_auth_config(&self) -> Result<Vec<u8>, RegistryError> {
        let mut auths = Map::new();
        for (key, credentials) in self.all_credentials()? {
            if let Credentials::Basic { username, password } = credentials {
                let auth = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                auths.insert(key, serde_json::json!({ "auth": auth }));
            }
        }
        serde_json::to_vec(&serde_json::json!({ "auths": auths }))
            .map_err(|e| RegistryError::Config(format!("cannot encode the registry config: {e}")))
    }

    /// Stores credentials for a registry: through the configured helper, else in `auths`.
    pub fn store_credentials(
        &self,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<(), RegistryError> {
        let mut config = self.read_config()?;
        let key = config_key(registry);
        if let Some(helper) = helper_for(&config, &key, registry) {
            let input =
                serde_json::json!({"ServerURL": key, "Username": username, "Secret": password});
            self.run_helper(&helper, "store", &input.to_string())?;
            return Ok(());
        }
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Some(map) = auths.as_object_mut() {
            map.insert(key, serde_json::json!({ "auth": auth }));
        }
        self.write_config(&config)
    }

    /// Removes stored credentials; returns false when there were none.
    pub fn remove_credentials(&self, registry: &str) -> Result<bool, RegistryError> {
        let mut config = self.read_config()?;
        let key = config_key(registry);
        if let Some(helper) = helper_for(&config, &key, registry) {
            self.run_helper(&helper, "erase", &key)?;
            return Ok(true);
        }
        let removed = config
            .get_mut("auths")
            .and_then(Value::as_object_mut)
            .is_some_and(|auths| auths.remove(&key).is_some() | auths.remove(registry).is_some());
        if removed {
            self.write_config(&config)?;
        }
        Ok(removed)
    }
}

/// The credential helper configured for a registry (`credHelpers`, else `credsStore`).
fn helper_for(config: &Map<String, Value>, key: &str, registry: &str) -> Option<String> {
    let helpers = config.get("credHelpers").and_then(Value::as_object);
    helpers
        .and_then(|h| h.get(key).or_else(|| h.get(registry)))
        .or_else(|| config.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

/// The credentials stored for a registry in the environment's Docker config, or `Anonymous`.
pub fn credentials_for(registry: &str) -> Result<Credentials, RegistryError> {
    CredentialStore::from_env().credentials_for(registry)
}

/// Every registry the environment's Docker config has credentials for
/// (see [`CredentialStore::all_credentials`]).
pub fn all_credentials() -> Result<Vec<(String, Credentials)>, RegistryError> {
    CredentialStore::from_env().all_credentials()
}

/// The environment's credentials as a helper-free Docker `config.json`
/// (see [`CredentialStore::registry_auth_config`]).
pub fn registry_auth_config() -> Result<Vec<u8>, RegistryError> {
    CredentialStore::from_env().registry_auth_config()
}

/// Stores credentials for a registry in the environment's Docker config: through the
/// configured helper, else in `auths`.
pub fn store_credentials(
    registry: &str,
    username: &str,
    password: &str,
) -> Result<(), RegistryError> {
    CredentialStore::from_env().store_credentials(registry, username, password)
}

/// Removes stored credentials from the environment's Docker config; returns false when there
/// were none.
pub fn remove_credentials(registry: &str) -> Result<bool, RegistryError> {
    CredentialStore::from_env().remove_credentials(registry)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use base64::Engine as _;
    use serde_json::{Value, json};

    use super::{CredentialStore, Credentials};

    fn basic(username: &str, password: &str) -> Credentials {
        Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn write_config(dir: &Path, config: &Value) {
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    }

    /// Installs an executable `docker-credential-<name>` shell script into `bin`. A separate
    /// `install` process writes it, so no file descriptor of this (multi-threaded) test
    /// process is open for writing on it when it runs (which would fail with ETXTBSY).
    fn install_helper(bin: &Path, name: &str, script: &str) {
        let source = bin.join(format!("{name}.script"));
        std::fs::write(&source, script).unwrap();
        let status = std::process::Command::new("install")
            .arg("-m")
            .arg("755")
            .arg(&source)
            .arg(bin.join(format!("docker-credential-{name}")))
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A store in `dir/config` whose helpers come only from `dir/bin` (plus /bin for `sh`).
    fn store_in(dir: &Path) -> CredentialStore {
        let config = dir.join("config");
        let bin = dir.join("bin");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        CredentialStore::new(config)
            .with_helper_search_path(format!("{}:/usr/bin:/bin", bin.display()))
    }

    const STORE_HELPER: &str = r#"#!/bin/sh
key=$(cat)
case "$1" in
  list) echo '{"https://index.docker.io/v1/":"hubuser","store.example":"storeuser"}' ;;
  get)
    case "$key" in
      https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"hubuser","Secret":"hub-secret"}' ;;
      store.example) echo '{"ServerURL":"store.example","Username":"storeuser","Secret":"store-secret"}' ;;
      *) echo "credentials not found in native keychain"; exit 1 ;;
    esac ;;
  *) exit 1 ;;
esac
"#;

    const PER_HOST_HELPER: &str = r#"#!/bin/sh
key=$(cat)
if [ "$1" = get ] && [ "$key" = helper.example ]; then
  echo '{"ServerURL":"helper.example","Username":"helperuser","Secret":"helper-secret"}'
else
  echo "credentials not found in native keychain"; exit 1
fi
"#;

    #[test]
    fn all_credentials_collects_auths_and_cred_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        install_helper(&dir.path().join("bin"), "perhost", PER_HOST_HELPER);
        write_config(
            store.config_dir(),
            &json!({
                "auths": {
                    "https://index.docker.io/v1/": {"auth": b64("hub:hub-pass")},
                    "plain.example:5000": {"username": "plainuser", "password": "plain-pass"},
                    "empty.example": {},
                },
                "credHelpers": {"helper.example": "perhost"},
            }),
        );
        assert_eq!(
            store.all_credentials().unwrap(),
            vec![
                (
                    "helper.example".to_owned(),
                    basic("helperuser", "helper-secret")
                ),
                (
                    "https://index.docker.io/v1/".to_owned(),
                    basic("hub", "hub-pass")
                ),
                (
                    "plain.example:5000".to_owned(),
                    basic("plainuser", "plain-pass")
                ),
            ]
        );
    }

    #[test]
    fn all_credentials_lists_the_creds_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        install_helper(&dir.path().join("bin"), "teststore", STORE_HELPER);
        write_config(
            store.config_dir(),
            &json!({
                "auths": {"unknown.example": {}},
                "credsStore": "teststore",
            }),
        );
        assert_eq!(
            store.all_credentials().unwrap(),
            vec![
                (
                    "https://index.docker.io/v1/".to_owned(),
                    basic("hubuser", "hub-secret")
                ),
                (
                    "store.example".to_owned(),
                    basic("storeuser", "store-secret")
                ),
            ]
        );
        assert_eq!(
            store.credentials_for("registry-1.docker.io").unwrap(),
            basic("hubuser", "hub-secret")
        );
    }

    #[test]
    fn registry_auth_config_is_readable_without_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        install_helper(&dir.path().join("bin"), "teststore", STORE_HELPER);
        write_config(store.config_dir(), &json!({"credsStore": "teststore"}));

        let generated = store.registry_auth_config().unwrap();
        let value: Value = serde_json::from_slice(&generated).unwrap();
        assert_eq!(
            value,
            json!({"auths": {
                "https://index.docker.io/v1/": {"auth": b64("hubuser:hub-secret")},
                "store.example": {"auth": b64("storeuser:store-secret")},
            }})
        );

        // What a build step does with it: read it with no helper available.
        let step_dir = dir.path().join("step");
        std::fs::create_dir_all(&step_dir).unwrap();
        std::fs::write(step_dir.join("config.json"), &generated).unwrap();
        let step_store = CredentialStore::new(&step_dir).with_helper_search_path("/nonexistent");
        assert_eq!(
            step_store.credentials_for("docker.io").unwrap(),
            basic("hubuser", "hub-secret")
        );
        assert_eq!(
            step_store.credentials_for("store.example").unwrap(),
            basic("storeuser", "store-secret")
        );
        assert_eq!(
            step_store.credentials_for("other.example").unwrap(),
            Credentials::Anonymous
        );
    }

    #[test]
    fn registry_auth_config_without_credentials_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let value: Value = serde_json::from_slice(&store.registry_auth_config().unwrap()).unwrap();
        assert_eq!(value, json!({"auths": {}}));
    }

    #[test]
    fn a_failing_creds_store_list_is_an_error_naming_the_helper() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        install_helper(
            &dir.path().join("bin"),
            "broken",
            "#!/bin/sh\necho 'keychain locked'\nexit 1\n",
        );
        write_config(
            store.config_dir(),
            &json!({"credsStore": "broken", "auths": {"a.example": {"auth": b64("u:very-secret")}}}),
        );
        let message = store.all_credentials().unwrap_err().to_string();
        assert!(
            message.contains("docker-credential-broken list"),
            "{message}"
        );
        assert!(message.contains("keychain locked"), "{message}");
        assert!(!message.contains("very-secret"), "{message}");
    }

    #[test]
    fn a_bad_auth_entry_is_an_error_without_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let entry = b64("no-colon-secret-value");
        write_config(
            store.config_dir(),
            &json!({"auths": {"bad.example": {"auth": entry}}}),
        );
        let message = store.registry_auth_config().unwrap_err().to_string();
        assert!(message.contains("bad.example"), "{message}");
        assert!(message.contains("config.json"), "{message}");
        assert!(!message.contains("no-colon-secret-value"), "{message}");
        assert!(!message.contains(&entry), "{message}");
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        write_config(
            store.config_dir(),
            &json!({"auths": {"a.example": {"auth": b64("user:top-secret")}}}),
        );
        let all = store.all_credentials().unwrap();
        assert_eq!(
            all,
            vec![("a.example".to_owned(), basic("user", "top-secret"))]
        );
        let debug = format!("{all:?} {store:?}");
        assert!(debug.contains("user"), "{debug}");
        assert!(!debug.contains("top-secret"), "{debug}");
    }

    #[test]
    fn store_and_remove_keep_working_on_an_explicit_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        store
            .store_credentials("docker.io", "hubuser", "hub-pass")
            .unwrap();
        assert_eq!(
            store.all_credentials().unwrap(),
            vec![(
                "https://index.docker.io/v1/".to_owned(),
                basic("hubuser", "hub-pass")
            )]
        );
        assert!(store.remove_credentials("docker.io").unwrap());
        assert!(store.all_credentials().unwrap().is_empty());
    }
}
