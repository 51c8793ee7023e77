//! Registry credentials the way Docker keeps them: `~/.docker/config.json` (or
//! `$DOCKER_CONFIG/config.json`) `auths` entries, `credHelpers` and `credsStore` helpers
//! (`docker-credential-<name>`); and `login`/`logout`, which write and remove
//! Docker-compatible entries. Secrets are never logged or put in error messages.

use std::io::Write;
use std::path::PathBuf;
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

fn config_path() -> PathBuf {
    docker_config_dir().join("config.json")
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

fn read_config() -> Result<Map<String, Value>, RegistryError> {
    let path = config_path();
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

fn write_config(config: &Map<String, Value>) -> Result<(), RegistryError> {
    let path = config_path();
    let dir = docker_config_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| RegistryError::Config(format!("cannot create {}: {e}", dir.display())))?;
    let bytes = serde_json::to_vec_pretty(&Value::Object(config.clone()))
        .map_err(|e| RegistryError::Config(e.to_string()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .map_err(|e| RegistryError::Config(format!("cannot write in {}: {e}", dir.display())))?;
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

fn run_helper(helper: &str, action: &str, input: &str) -> Result<String, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
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
    let output = child
        .wait_with_output()
        .map_err(|e| RegistryError::Config(format!("credential helper {program} failed: {e}")))?;
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
pub fn credentials_for(registry: &str) -> Result<Credentials, RegistryError> {
    let config = read_config()?;
    let key = config_key(registry);
    if let Some(helper) = helper_for(&config, &key, registry) {
        let output = run_helper(&helper, "get", &key);
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
                    config_path().display()
                ))
            })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            RegistryError::Config(format!(
                "the `auth` entry for {registry} has no `:` between user and password"
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

/// Stores credentials for a registry: through the configured helper, else in `auths`.
pub fn store_credentials(
    registry: &str,
    username: &str,
    password: &str,
) -> Result<(), RegistryError> {
    let mut config = read_config()?;
    let key = config_key(registry);
    if let Some(helper) = helper_for(&config, &key, registry) {
        let input = serde_json::json!({"ServerURL": key, "Username": username, "Secret": password});
        run_helper(&helper, "store", &input.to_string())?;
        return Ok(());
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    if let Some(map) = auths.as_object_mut() {
        map.insert(key, serde_json::json!({ "auth": auth }));
    }
    write_config(&config)
}

/// Removes stored credentials; returns false when there were none.
pub fn remove_credentials(registry: &str) -> Result<bool, RegistryError> {
    let mut config = read_config()?;
    let key = config_key(registry);
    if let Some(helper) = helper_for(&config, &key, registry) {
        run_helper(&helper, "erase", &key)?;
        return Ok(true);
    }
    let removed = config
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .is_some_and(|auths| auths.remove(&key).is_some() | auths.remove(registry).is_some());
    if removed {
        write_config(&config)?;
    }
    Ok(removed)
}
