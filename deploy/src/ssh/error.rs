//! What can go wrong talking to a host; every message names the host (`user@ip:port`).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::command::ExitStatus;

/// An SSH failure, naming the host, the step and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The TCP connection could not be made.
    #[error(
        "{host}: cannot connect: {source}; check that the host is up and that sshd listens on this port"
    )]
    Connect {
        /// `user@ip:port`.
        host: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// Connecting, the key exchange and authentication did not finish in time.
    #[error(
        "{host}: no SSH session within {after:?} (connect, key exchange, authentication); check the address and the network"
    )]
    Timeout {
        /// `user@ip:port`.
        host: String,
        /// The connect timeout.
        after: Duration,
    },
    /// The SSH protocol failed before authentication (version, key exchange).
    #[error("{host}: SSH handshake failed: {source}")]
    Handshake {
        /// `user@ip:port`.
        host: String,
        /// russh's error.
        #[source]
        source: Box<russh::Error>,
    },
    /// The host's key is not in `known_hosts` and the policy is strict.
    #[error(
        "{host}: unknown host key {fingerprint}: it is not in {known_hosts}; verify it and add it there (ssh-keyscan), or pass --insecure-accept-new-host-keys to record it on first contact"
    )]
    UnknownHostKey {
        /// `user@ip:port`.
        host: String,
        /// `SHA256:…` of the key the host presented.
        fingerprint: String,
        /// The file searched.
        known_hosts: PathBuf,
    },
    /// The host's key differs from the one recorded: always refused.
    #[error(
        "{host}: HOST KEY CHANGED: the host presents {fingerprint}, which differs from line {line} of {known_hosts}; someone may be intercepting the connection. If the host was reinstalled, remove that line and connect again"
    )]
    ChangedHostKey {
        /// `user@ip:port`.
        host: String,
        /// `SHA256:…` of the key the host presented.
        fingerprint: String,
        /// The file holding the recorded key.
        known_hosts: PathBuf,
        /// The line of the recorded key (1-based).
        line: usize,
    },
    /// The `known_hosts` file could not be read or written.
    #[error("{host}: cannot use the known hosts file {known_hosts}: {reason}")]
    KnownHosts {
        /// `user@ip:port`.
        host: String,
        /// The file.
        known_hosts: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The private key file could not be loaded.
    #[error(
        "{host}: cannot load the private key {path}: {reason}; check the path and the passphrase"
    )]
    KeyFile {
        /// `user@ip:port`.
        host: String,
        /// The key file.
        path: PathBuf,
        /// What failed (never the passphrase).
        reason: String,
    },
    /// The SSH agent could not be used.
    #[error("{host}: ssh-agent: {reason}; check SSH_AUTH_SOCK and `ssh-add -l`")]
    Agent {
        /// `user@ip:port`.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The server refused the credentials.
    #[error("{host}: authentication refused ({method}); check the user and the credentials")]
    AuthRefused {
        /// `user@ip:port`.
        host: String,
        /// Which method was tried (never the secret).
        method: String,
    },
    /// An environment variable name that a shell cannot export.
    #[error(
        "{host}: invalid environment variable name {name:?} for `{command}`: use letters, digits and `_`, not starting with a digit"
    )]
    InvalidEnvName {
        /// `user@ip:port`.
        host: String,
        /// The name.
        name: String,
        /// The command's summary.
        command: String,
    },
    /// A channel request failed (open, exec).
    #[error("{host}: {step} for `{command}` failed: {source}")]
    Channel {
        /// `user@ip:port`.
        host: String,
        /// What was being done.
        step: &'static str,
        /// The command's summary.
        command: String,
        /// russh's error.
        #[source]
        source: Box<russh::Error>,
    },
    /// The connection ended before the command reported its exit status.
    #[error(
        "{host}: connection lost while running `{command}` ({stdin_bytes} bytes of input sent); check the host and the network, then run again"
    )]
    ConnectionLost {
        /// `user@ip:port`.
        host: String,
        /// The command's summary.
        command: String,
        /// How much input had been sent.
        stdin_bytes: u64,
    },
    /// Reading the local input for a command failed.
    #[error("{host}: reading the input for `{command}` failed: {source}")]
    Input {
        /// `user@ip:port`.
        host: String,
        /// The command's summary.
        command: String,
        /// The read error.
        #[source]
        source: io::Error,
    },
    /// The command ran and exited unsuccessfully.
    #[error("{host}: `{command}` exited with {status}; its stderr ends with:\n{stderr_tail}")]
    CommandFailed {
        /// `user@ip:port`.
        host: String,
        /// The command's summary.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// The last lines of its stderr.
        stderr_tail: String,
    },
}

impl SshError {
    /// The host the error is about (`user@ip:port`).
    pub fn host(&self) -> &str {
        match self {
            Self::Connect { host, .. }
            | Self::Timeout { host, .. }
            | Self::Handshake { host, .. }
            | Self::UnknownHostKey { host, .. }
            | Self::ChangedHostKey { host, .. }
            | Self::KnownHosts { host, .. }
            | Self::KeyFile { host, .. }
            | Self::Agent { host, .. }
            | Self::AuthRefused { host, .. }
            | Self::InvalidEnvName { host, .. }
            | Self::Channel { host, .. }
            | Self::ConnectionLost { host, .. }
            | Self::Input { host, .. }
            | Self::CommandFailed { host, .. } => host,
        }
    }
}
