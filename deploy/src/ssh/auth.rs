//! Who to log in as and how: password, private key file (optionally encrypted), or agent.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use russh::client::{AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKeyWithHashAlg, load_secret_key};

use super::error::SshError;
use super::session::ClientHandler;
use crate::secret::Secret;

/// One host to reach: its address, SSH port, login user and credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct SshTarget {
    /// The host's address.
    pub addr: IpAddr,
    /// The SSH port (22 by default).
    pub port: u16,
    /// The login user; commands run through `sudo` when it is not `root`.
    pub user: String,
    /// How to authenticate.
    pub auth: SshAuth,
}

/// How to authenticate to a host.
#[derive(Debug, Clone, PartialEq)]
pub enum SshAuth {
    /// A password (sshd must allow `PasswordAuthentication`).
    Password(Secret),
    /// An OpenSSH private key file, with its passphrase when it is encrypted.
    KeyFile {
        /// The private key file.
        path: PathBuf,
        /// The passphrase of an encrypted key.
        passphrase: Option<Secret>,
    },
    /// The keys of a running ssh-agent, tried in its order.
    Agent {
        /// The agent's socket; `None` means `$SSH_AUTH_SOCK`.
        socket: Option<PathBuf>,
    },
}

impl SshTarget {
    /// A target on port 22.
    pub fn new(addr: IpAddr, user: impl Into<String>, auth: SshAuth) -> Self {
        Self {
            addr,
            port: 22,
            user: user.into(),
            auth,
        }
    }

    /// The same target on another port.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Whether commands run as root directly (else through `sudo`).
    pub fn is_root(&self) -> bool {
        self.user == "root"
    }

    /// `user@ip:port` (`user@[v6]:port`), the name used in logs and errors.
    pub fn label(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(addr) => write!(f, "{}@{addr}:{}", self.user, self.port),
            IpAddr::V6(addr) => write!(f, "{}@[{addr}]:{}", self.user, self.port),
        }
    }
}

impl SshAuth {
    /// The method's name for messages (never the secret).
    fn describe(&self) -> String {
        match self {
            Self::Password(_) => "password".to_owned(),
            Self::KeyFile { path, .. } => format!("key file {}", path.display()),
            Self::Agent {
                socket: Some(socket),
            } => format!("ssh-agent at {}", socket.display()),
            Self::Agent { socket: None } => "ssh-agent ($SSH_AUTH_SOCK)".to_owned(),
        }
    }
}

/// Authenticates an established session as the target's user.
pub(crate) async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    target: &SshTarget,
) -> Result<(), SshError> {
    let host = target.label();
    let handshake = |source| SshError::Handshake {
        host: host.clone(),
        source: Box::new(source),
    };
    let accepted = match &target.auth {
        SshAuth::Password(password) => handle
            .authenticate_password(&target.user, password.expose())
            .await
            .map_err(handshake)?
            .success(),
        SshAuth::KeyFile { path, passphrase } => {
            let key =
                load_secret_key(path, passphrase.as_ref().map(Secret::expose)).map_err(|e| {
                    SshError::KeyFile {
                        host: host.clone(),
                        path: path.clone(),
                        reason: e.to_string(),
                    }
                })?;
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(handshake)?
                .flatten();
            handle
                .authenticate_publickey(
                    &target.user,
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(handshake)?
                .success()
        }
        SshAuth::Agent { socket } => {
            authenticate_with_agent(handle, target, socket.as_ref()).await?
        }
    };
    if accepted {
        Ok(())
    } else {
        Err(SshError::AuthRefused {
            host,
            method: target.auth.describe(),
        })
    }
}

async fn authenticate_with_agent(
    handle: &mut Handle<ClientHandler>,
    target: &SshTarget,
    socket: Option<&PathBuf>,
) -> Result<bool, SshError> {
    let agent_error = |reason: String| SshError::Agent {
        host: target.label(),
        reason,
    };
    let mut agent = match socket {
        Some(socket) => AgentClient::connect_uds(socket).await,
        None => AgentClient::connect_env().await,
    }
    .map_err(|e| agent_error(format!("cannot connect: {e}")))?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| agent_error(format!("cannot list its keys: {e}")))?;
    if identities.is_empty() {
        return Err(agent_error("the agent holds no keys".to_owned()));
    }
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(|source| SshError::Handshake {
            host: target.label(),
            source: Box::new(source),
        })?
        .flatten();
    for identity in identities {
        let key = identity.public_key().into_owned();
        let result = handle
            .authenticate_publickey_with(&target.user, key, hash, &mut agent)
            .await
            .map_err(|e| agent_error(format!("signing failed: {e}")))?;
        if let AuthResult::Success = result {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_user_address_and_port() {
        let auth = SshAuth::Password(Secret::new("pw".to_owned()));
        let v4 = SshTarget::new("10.0.0.2".parse().unwrap(), "root", auth.clone());
        assert_eq!(v4.label(), "root@10.0.0.2:22");
        assert!(v4.is_root());
        let v6 = SshTarget::new("fd00::2".parse().unwrap(), "admin", auth).with_port(2222);
        assert_eq!(v6.label(), "admin@[fd00::2]:2222");
        assert!(!v6.is_root());
        assert!(!format!("{v6:?}").contains("pw"));
    }
}
