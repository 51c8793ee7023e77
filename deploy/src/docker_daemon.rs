//! docker's `/etc/docker/daemon.json` on docker hosts: the registry merged into whatever the
//! host (or the image's `docker.sh`) has there, as a mirror (and as an insecure registry when
//! it serves plain HTTP), every other setting kept; delete puts the file back as it was.
//!
//! The first merge into a file apply did not write keeps the original beside it as
//! `daemon.json.sealer-backup`; a file apply created carries the `.sealer-owner` marker.

use serde_json::Value;

use crate::plan::shell::{self, quote};
use crate::ssh::{Connection, RemoteCommand};

/// docker's configuration file.
pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// What the registry adds to `daemon.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryEntries {
    /// The registry's URL, added to `registry-mirrors`.
    pub mirror: String,
    /// `domain:port`, added to `insecure-registries` (plain HTTP).
    pub insecure: Option<String>,
}

/// `existing` (the file's text; `None` when there is none) with `entries` added to its lists
/// once each, other settings kept. Entries for the same registry that `entries` replace (the
/// other scheme after TLS was turned on or off, the insecure entry under TLS) are dropped.
pub fn merge(existing: Option<&str>, entries: &RegistryEntries) -> Result<String, String> {
    let mut config = match existing.map(str::trim) {
        None | Some("") => Value::Object(serde_json::Map::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| format!("{DAEMON_JSON} is not valid JSON ({e}): fix or remove it"))?,
    };
    let Value::Object(settings) = &mut config else {
        return Err(format!("{DAEMON_JSON} does not hold a JSON object"));
    };
    let registry = entries
        .mirror
        .split_once("://")
        .map_or(entries.mirror.as_str(), |(_, rest)| rest);
    let mut update = |key: &str, keep: &dyn Fn(&str) -> bool, item: Option<&str>| {
        if item.is_none() && !settings.contains_key(key) {
            return Ok(());
        }
        let list = settings
            .entry(key)
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(items) = list else {
            return Err(format!("{DAEMON_JSON}: `{key}` is not a list"));
        };
        let before = items.len();
        items.retain(|known| known.as_str().is_none_or(keep));
        if let Some(item) = item
            && !items.iter().any(|known| known.as_str() == Some(item))
        {
            items.push(Value::String(item.to_owned()));
        }
        // A list that held only the dropped entries goes with them.
        if items.is_empty() && before > 0 {
            settings.remove(key);
        }
        Ok(())
    };
    let other_scheme = |mirror: &str| {
        mirror == entries.mirror || mirror.split_once("://").map(|(_, rest)| rest) != Some(registry)
    };
    update("registry-mirrors", &other_scheme, Some(&entries.mirror))?;
    let insecure = entries.insecure.as_deref();
    update(
        "insecure-registries",
        &|known| known != registry || insecure.is_some(),
        insecure,
    )?;
    serde_json::to_string_pretty(&config)
        .map(|text| format!("{text}\n"))
        .map_err(|e| e.to_string())
}

/// Merges `entries` into the host's `daemon.json` for `cluster`, and has a running
/// systemd-managed docker reload it.
pub async fn configure(
    connection: &Connection,
    cluster: &str,
    entries: &RegistryEntries,
) -> Result<(), String> {
    let path = quote(DAEMON_JSON);
    let read = connection
        .run_checked(&RemoteCommand::new(format!(
            "if [ -e {path} ]; then echo present; cat {path}; else echo absent; fi"
        )))
        .await
        .map_err(|e| e.to_string())?
        .stdout_text();
    let existing = read.strip_prefix("present\n").map(str::to_owned);
    let merged = merge(existing.as_deref(), entries)?;
    if existing.as_deref() == Some(merged.as_str()) {
        return Ok(());
    }
    let backup = quote(&backup_path());
    let owner = quote(&format!("{DAEMON_JSON}.sealer-owner"));
    let cluster = quote(cluster);
    let script = format!(
        "set -e\nif [ -e {path} ] && [ ! -e {backup} ] && [ \"$(cat {owner} 2>/dev/null)\" != {cluster} ]; then cp -p {path} {backup}; fi\nif [ ! -e {path} ]; then mkdir -p \"$(dirname {path})\" && echo {cluster} >{owner}; fi\n{write}if [ -d /run/systemd/system ] && systemctl is-active --quiet docker 2>/dev/null; then systemctl reload docker || true; fi\n",
        write = shell::write_file(DAEMON_JSON, merged.as_bytes(), "0644"),
    );
    connection
        .run_checked(&RemoteCommand::new(script))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Puts `daemon.json` back as it was before `cluster` merged into it: the kept original, or
/// no file when apply created it.
pub fn restore_script(cluster: &str) -> String {
    let path = quote(DAEMON_JSON);
    let backup = quote(&backup_path());
    format!(
        "if [ -e {backup} ]; then mv -f {backup} {path}; else\n{}fi\n",
        shell::remove_owned_file(cluster, DAEMON_JSON, "/etc")
    )
}

fn backup_path() -> String {
    format!("{DAEMON_JSON}.sealer-backup")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(insecure: bool) -> RegistryEntries {
        RegistryEntries {
            mirror: "https://sea.hub:5000".to_owned(),
            insecure: insecure.then(|| "sea.hub:5000".to_owned()),
        }
    }

    #[test]
    fn the_registry_joins_the_hosts_settings_once() {
        let existing =
            "{\"log-driver\": \"json-file\", \"registry-mirrors\": [\"https://mirror.example\"]}";
        let merged = merge(Some(existing), &entries(true)).unwrap();
        let value: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "log-driver": "json-file",
                "registry-mirrors": ["https://mirror.example", "https://sea.hub:5000"],
                "insecure-registries": ["sea.hub:5000"],
            })
        );
        assert_eq!(merge(Some(&merged), &entries(true)).unwrap(), merged);
        // TLS turned on: the plain-HTTP entries of the same registry go, others stay.
        let tls = RegistryEntries {
            mirror: "https://sea.hub:5000".to_owned(),
            insecure: None,
        };
        let mut http = entries(true);
        http.mirror = "http://sea.hub:5000".to_owned();
        let with_http = merge(Some(existing), &http).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&merge(Some(&with_http), &tls).unwrap()).unwrap(),
            serde_json::json!({
                "log-driver": "json-file",
                "registry-mirrors": ["https://mirror.example", "https://sea.hub:5000"],
            })
        );
        assert_eq!(
            serde_json::from_str::<Value>(&merge(None, &entries(false)).unwrap()).unwrap(),
            serde_json::json!({ "registry-mirrors": ["https://sea.hub:5000"] })
        );
    }

    #[test]
    fn a_file_docker_could_not_read_either_is_reported() {
        let error = merge(Some("{ not json"), &entries(false)).unwrap_err();
        assert!(
            error.starts_with("/etc/docker/daemon.json is not valid JSON"),
            "{error}"
        );
        let error = merge(Some("{\"registry-mirrors\": \"x\"}"), &entries(false)).unwrap_err();
        assert!(
            error.contains("`registry-mirrors` is not a list"),
            "{error}"
        );
        assert!(merge(Some("[]"), &entries(false)).is_err());
    }
}
