//! Host key checking against an OpenSSH `known_hosts` file.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use russh::keys::known_hosts::check_known_hosts_path;
use russh::keys::{HashAlg, PublicKey, PublicKeyBase64};

use super::error::SshError;

/// Serializes recording of new keys, so parallel connections never interleave lines.
static LEARN_LOCK: Mutex<()> = Mutex::new(());

/// What to do with a host key that is not in `known_hosts`. A key that differs from the
/// recorded one is refused under every policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse unknown keys (the default).
    #[default]
    Strict,
    /// Record unknown keys in `known_hosts` and log them (`--insecure-accept-new-host-keys`).
    AcceptNew,
}

/// `~/.ssh/known_hosts` of the user running the command (`$HOME`, else `/root`).
pub fn default_known_hosts_path() -> PathBuf {
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".ssh").join("known_hosts")
}

/// The check of one host's key: the host's name as `known_hosts` spells it and the policy.
#[derive(Debug, Clone)]
pub(crate) struct HostKeyCheck {
    pub(crate) policy: HostKeyPolicy,
    pub(crate) known_hosts: PathBuf,
    /// The address as written in `known_hosts` (the port is added when it is not 22).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `user@ip:port`, for messages.
    pub(crate) label: String,
}

impl HostKeyCheck {
    /// Accepts a known key, records a new one under [`HostKeyPolicy::AcceptNew`], refuses
    /// everything else.
    pub(crate) fn check(&self, key: &PublicKey) -> Result<(), SshError> {
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if self.is_known(key, &fingerprint)? {
            return Ok(());
        }
        match self.policy {
            HostKeyPolicy::Strict => Err(SshError::UnknownHostKey {
                host: self.label.clone(),
                fingerprint,
                known_hosts: self.known_hosts.clone(),
            }),
            HostKeyPolicy::AcceptNew => {
                let _guard = LEARN_LOCK
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // Another connection to the same host may have recorded it meanwhile.
                if self.is_known(key, &fingerprint)? {
                    return Ok(());
                }
                self.record(key)
                    .map_err(|e| self.file_error(&self.known_hosts, &e.to_string()))?;
                tracing::warn!(
                    target: "deploy::ssh",
                    host = %self.label,
                    %fingerprint,
                    known_hosts = %self.known_hosts.display(),
                    "recorded the new host key (--insecure-accept-new-host-keys)"
                );
                Ok(())
            }
        }
    }

    fn is_known(&self, key: &PublicKey, fingerprint: &str) -> Result<bool, SshError> {
        match check_known_hosts_path(&self.host, self.port, key, &self.known_hosts) {
            Ok(known) => Ok(known),
            Err(russh::keys::Error::KeyChanged { line }) => Err(SshError::ChangedHostKey {
                host: self.label.clone(),
                fingerprint: fingerprint.to_owned(),
                known_hosts: self.known_hosts.clone(),
                line,
            }),
            Err(e) => Err(self.file_error(&self.known_hosts, &e.to_string())),
        }
    }

    /// Appends `host algorithm base64` (`[host]:port` off port 22), as OpenSSH writes it.
    fn record(&self, key: &PublicKey) -> io::Result<()> {
        if let Some(parent) = self.known_hosts.parent()
            && !parent.as_os_str().is_empty()
        {
            fs::create_dir_all(parent)?;
        }
        let existing = fs::read(&self.known_hosts).unwrap_or_default();
        let separator = if existing.is_empty() || existing.ends_with(b"\n") {
            ""
        } else {
            "\n"
        };
        let host = if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        };
        let line = format!(
            "{separator}{host} {} {}\n",
            key.algorithm().as_str(),
            key.public_key_base64()
        );
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.known_hosts)?;
        file.write_all(line.as_bytes())
    }

    fn file_error(&self, path: &Path, reason: &str) -> SshError {
        SshError::KnownHosts {
            host: self.label.clone(),
            known_hosts: path.to_path_buf(),
            reason: reason.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::parse_public_key_base64;

    const FIRST_KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAICmvk0XUjG7Sl57ELG5VJhftJERw7x9y0n7a0rKEoAr9";
    const SECOND_KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOdFh2B5DG5JXEmTowuh0V6CHQ0tBWOcec6ScjQgZXTF";

    fn key(base64: &str) -> PublicKey {
        parse_public_key_base64(base64).unwrap()
    }

    fn check(dir: &Path, policy: HostKeyPolicy) -> HostKeyCheck {
        HostKeyCheck {
            policy,
            known_hosts: dir.join("known_hosts"),
            host: "10.0.0.2".to_owned(),
            port: 22,
            label: "root@10.0.0.2:22".to_owned(),
        }
    }

    #[test]
    fn strict_refuses_unknown_keys_and_names_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let error = check(dir.path(), HostKeyPolicy::Strict)
            .check(&key(FIRST_KEY))
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("root@10.0.0.2:22"), "{message}");
        assert!(
            message.contains("--insecure-accept-new-host-keys"),
            "{message}"
        );
        assert!(!dir.path().join("known_hosts").exists());
    }

    #[test]
    fn accept_new_records_once_then_refuses_a_changed_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = key(FIRST_KEY);
        let accept = check(dir.path(), HostKeyPolicy::AcceptNew);
        accept.check(&first).unwrap();
        accept.check(&first).unwrap();
        check(dir.path(), HostKeyPolicy::Strict)
            .check(&first)
            .unwrap();
        let recorded = std::fs::read_to_string(dir.path().join("known_hosts")).unwrap();
        assert_eq!(recorded.lines().count(), 1, "{recorded}");
        assert!(recorded.starts_with("10.0.0.2 ssh-ed25519 "), "{recorded}");
        let error = accept.check(&key(SECOND_KEY)).unwrap_err();
        assert!(
            matches!(error, SshError::ChangedHostKey { line: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn the_default_file_is_in_the_home_directory() {
        assert!(default_known_hosts_path().ends_with(".ssh/known_hosts"));
    }
}
