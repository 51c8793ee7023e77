//! Where BuildKit is: the `--buildkit` value, `BUILDKIT_HOST` and `DOCKER_HOST` parsed into an
//! [`Address`].
//!
//! Supported forms: `docker` and `docker://` (the Docker daemon named by `DOCKER_HOST`),
//! `docker://unix:///PATH` and `docker://tcp://HOST:PORT` (that Docker daemon), `unix:///PATH`
//! and `tcp://HOST:PORT` (a standalone buildkitd, TLS on TCP when TLS files are given).

use std::fmt;
use std::path::PathBuf;

use crate::error::{ClientError, Result};

/// The Docker socket used when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

const SUPPORTED: &str = "supported are `docker`, `docker://unix:///PATH`, `docker://tcp://HOST:PORT`, \
`unix:///PATH` and `tcp://HOST:PORT`";

/// A BuildKit endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// The BuildKit embedded in a Docker daemon, reached through its `/grpc` and `/session` endpoints.
    Docker(DockerHost),
    /// A standalone buildkitd on a unix socket (HTTP/2 without TLS).
    Unix(PathBuf),
    /// A standalone buildkitd on TCP, with TLS when `tls` is set.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// TLS settings; `None` = plain HTTP/2.
        tls: Option<TlsFiles>,
    },
}

/// A Docker daemon's API endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DockerHost {
    /// The API on a unix socket.
    Unix(PathBuf),
    /// The API on TCP, with TLS when `tls` is set.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// TLS settings; `None` = plain HTTP.
        tls: Option<TlsFiles>,
    },
}

/// TLS files and options; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file with the CA certificates that sign the server's certificate (default: the
    /// system's roots).
    pub ca: Option<PathBuf>,
    /// PEM client certificate (needs `key`).
    pub cert: Option<PathBuf>,
    /// PEM private key of the client certificate (needs `cert`).
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the host).
    pub server_name: Option<String>,
}

impl TlsFiles {
    /// True when no TLS option is set.
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none() && self.server_name.is_none()
    }
}

impl Address {
    /// `value`: the --buildkit value (None = flag given without value). `env`: lookup of
    /// BUILDKIT_HOST, DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH (injected for tests).
    ///
    /// `tls` (the `--buildkit-tls-*` options) applies to `tcp://` addresses only; a Docker
    /// daemon on TCP takes its TLS settings from `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`.
    pub fn parse(
        value: Option<&str>,
        tls: TlsFiles,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Address> {
        let value = match value {
            Some(value) => value.trim().to_owned(),
            None => env("BUILDKIT_HOST")
                .map(|host| host.trim().to_owned())
                .filter(|host| !host.is_empty())
                .unwrap_or_else(|| "docker".to_owned()),
        };
        let tls = (!tls.is_empty()).then_some(tls);
        let invalid = |reason: String| ClientError::InvalidAddress {
            value: value.clone(),
            reason,
        };
        let address = if value == "docker" || value == "docker://" {
            Address::Docker(DockerHost::from_env(env)?)
        } else if let Some(host) = value.strip_prefix("docker://") {
            Address::Docker(DockerHost::parse(host, env).map_err(&invalid)?)
        } else if let Some(path) = value.strip_prefix("unix://") {
            Address::Unix(parse_unix_path(path).map_err(&invalid)?)
        } else if let Some(rest) = value.strip_prefix("tcp://") {
            let (host, port) = parse_host_port(rest, None).map_err(&invalid)?;
            return Ok(Address::Tcp { host, port, tls });
        } else if value.starts_with("ssh://") {
            return Err(invalid(format!(
                "ssh:// addresses are not supported; {SUPPORTED}"
            )));
        } else if let Some((scheme, _)) = value.split_once("://") {
            return Err(invalid(format!(
                "unknown scheme `{scheme}://`; {SUPPORTED}"
            )));
        } else {
            return Err(invalid(format!("not an address; {SUPPORTED}")));
        };
        if tls.is_some() {
            return Err(invalid(
                "the --buildkit-tls-* options apply only to tcp:// addresses (a Docker daemon on TCP uses \
                 DOCKER_TLS_VERIFY and DOCKER_CERT_PATH)"
                    .to_owned(),
            ));
        }
        Ok(address)
    }
}

impl DockerHost {
    /// The Docker daemon named by `DOCKER_HOST` (default `unix:///var/run/docker.sock`), with TLS
    /// when `DOCKER_TLS_VERIFY` is set (files `ca.pem`, `cert.pem`, `key.pem` in
    /// `DOCKER_CERT_PATH`, default `$DOCKER_CONFIG` or `~/.docker`).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<DockerHost> {
        let value = env("DOCKER_HOST")
            .map(|host| host.trim().to_owned())
            .filter(|host| !host.is_empty());
        match value {
            None => Ok(DockerHost::Unix(PathBuf::from(DEFAULT_DOCKER_SOCKET))),
            Some(value) => {
                DockerHost::parse(&value, env).map_err(|reason| ClientError::InvalidAddress {
                    value: format!("DOCKER_HOST={value}"),
                    reason,
                })
            }
        }
    }

    fn parse(
        value: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::result::Result<DockerHost, String> {
        const DOCKER_SUPPORTED: &str = "a Docker host must be `unix:///PATH` or `tcp://HOST:PORT`";
        if let Some(path) = value.strip_prefix("unix://") {
            return Ok(DockerHost::Unix(parse_unix_path(path)?));
        }
        if let Some(rest) = value.strip_prefix("tcp://") {
            let tls = docker_tls(env);
            let default_port = if tls.is_some() { 2376 } else { 2375 };
            let (host, port) = parse_host_port(rest, Some(default_port))?;
            return Ok(DockerHost::Tcp { host, port, tls });
        }
        if value.starts_with("ssh://") {
            return Err(format!(
                "Docker hosts reached over ssh:// are not supported; {DOCKER_SUPPORTED}"
            ));
        }
        match value.split_once("://") {
            Some((scheme, _)) => Err(format!("unknown scheme `{scheme}://`; {DOCKER_SUPPORTED}")),
            None => Err(format!("not an address; {DOCKER_SUPPORTED}")),
        }
    }
}

/// TLS files for a Docker daemon on TCP, as the docker CLI finds them.
fn docker_tls(env: &dyn Fn(&str) -> Option<String>) -> Option<TlsFiles> {
    env("DOCKER_TLS_VERIFY").filter(|verify| !verify.is_empty())?;
    let dir = env("DOCKER_CERT_PATH")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env("DOCKER_CONFIG")
                .filter(|path| !path.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".docker")))
        .unwrap_or_else(|| PathBuf::from(".docker"));
    Some(TlsFiles {
        ca: Some(dir.join("ca.pem")),
        cert: Some(dir.join("cert.pem")),
        key: Some(dir.join("key.pem")),
        server_name: None,
    })
}

fn parse_unix_path(path: &str) -> std::result::Result<PathBuf, String> {
    if path.is_empty() {
        return Err(
            "a unix address needs a socket path, e.g. `unix:///run/buildkit/buildkitd.sock`"
                .to_owned(),
        );
    }
    if !path.starts_with('/') {
        return Err(format!(
            "the socket path `{path}` is not absolute; write `unix:///absolute/path` (three slashes)"
        ));
    }
    Ok(PathBuf::from(path))
}

/// `HOST:PORT`, `[IPV6]:PORT`, optionally followed by `/`; `default_port` applies when the port
/// is missing.
fn parse_host_port(
    rest: &str,
    default_port: Option<u16>,
) -> std::result::Result<(String, u16), String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err("a tcp address takes no path: write `tcp://HOST:PORT`".to_owned());
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| "an IPv6 host needs a closing `]`".to_owned())?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("expected `:PORT` after `[{host}]`"))?,
            ),
        };
        (host, port)
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err("the host is missing: write `tcp://HOST:PORT`".to_owned());
    }
    let port = match (port, default_port) {
        (Some(port), _) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("`{port}` is not a TCP port (1-65535)"))?,
        (None, Some(port)) => port,
        (None, None) => return Err("the port is missing: write `tcp://HOST:PORT`".to_owned()),
    };
    Ok((host.to_owned(), port))
}

fn write_host_port(f: &mut fmt::Formatter<'_>, host: &str, port: u16) -> fmt::Result {
    if host.contains(':') {
        write!(f, "tcp://[{host}]:{port}")
    } else {
        write!(f, "tcp://{host}:{port}")
    }
}

impl fmt::Display for DockerHost {
    /// `unix:///var/run/docker.sock`, `tcp://host:2376 (TLS)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerHost::Unix(path) => write!(f, "unix://{}", path.display()),
            DockerHost::Tcp { host, port, tls } => {
                write_host_port(f, host, *port)?;
                if tls.is_some() {
                    f.write_str(" (TLS)")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Address {
    /// What errors show: "docker (unix:///var/run/docker.sock)", "unix:///run/buildkit/buildkitd.sock",
    /// "tcp://host:1234 (TLS)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Docker(host) => write!(f, "docker ({host})"),
            Address::Unix(path) => write!(f, "unix://{}", path.display()),
            Address::Tcp { host, port, tls } => {
                write_host_port(f, host, *port)?;
                if tls.is_some() {
                    f.write_str(" (TLS)")?;
                }
                Ok(())
            }
        }
    }
}
