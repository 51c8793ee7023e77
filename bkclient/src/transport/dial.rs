//! Opening byte streams: unix sockets, TCP, TCP + TLS.

use std::path::Path;
use std::time::Duration;

use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

use super::io::Stream;
use super::tls;
use crate::addr::{Address, DockerHost, TlsFiles};
use crate::error::{ClientError, Result};

/// How long a TCP connect may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A freshly dialed stream (TLS already negotiated when configured).
pub(crate) type Dialed = Box<dyn Stream>;

fn unreachable(address: &str, cause: impl std::fmt::Display) -> ClientError {
    ClientError::Connect {
        address: address.to_owned(),
        cause: cause.to_string(),
    }
}

async fn dial_unix(path: &Path, address: &str) -> Result<Dialed> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|error| unreachable(address, error))?;
    Ok(Box::new(stream))
}

async fn dial_tcp(
    host: &str,
    port: u16,
    tls_files: Option<&TlsFiles>,
    alpn: &[u8],
    address: &str,
) -> Result<Dialed> {
    // Reading the TLS files first reports a missing file even when the host is down.
    let tls_setup = match tls_files {
        Some(files) => Some((
            tls::client_config(files, alpn, address)?,
            tls::server_name(files, host, address)?,
        )),
        None => None,
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| {
            unreachable(
                address,
                format!("no answer within {} seconds", CONNECT_TIMEOUT.as_secs()),
            )
        })?
        .map_err(|error| unreachable(address, error))?;
    stream
        .set_nodelay(true)
        .map_err(|error| unreachable(address, error))?;
    match tls_setup {
        None => Ok(Box::new(stream)),
        Some((config, server_name)) => {
            let stream = TlsConnector::from(config)
                .connect(server_name, stream)
                .await
                .map_err(|error| unreachable(address, format!("TLS handshake failed: {error}")))?;
            Ok(Box::new(stream))
        }
    }
}

impl DockerHost {
    /// The Docker host as errors show it: "docker (unix:///var/run/docker.sock)".
    pub(crate) fn label(&self) -> String {
        format!("docker ({self})")
    }

    /// Opens a connection to the Docker API (HTTP/1.1, TLS when configured).
    pub(crate) async fn dial(&self) -> Result<Dialed> {
        let address = self.label();
        match self {
            DockerHost::Unix(path) => dial_unix(path, &address).await,
            DockerHost::Tcp { host, port, tls } => {
                dial_tcp(host, *port, tls.as_ref(), tls::ALPN_HTTP1, &address).await
            }
        }
    }
}

impl Address {
    /// Opens a connection to a standalone buildkitd (HTTP/2, TLS when configured); a Docker
    /// address is dialed as its Docker API.
    pub(crate) async fn dial(&self) -> Result<Dialed> {
        let address = self.to_string();
        match self {
            Address::Docker(host) => host.dial().await,
            Address::Unix(path) => dial_unix(path, &address).await,
            Address::Tcp { host, port, tls } => {
                dial_tcp(host, *port, tls.as_ref(), tls::ALPN_H2, &address).await
            }
        }
    }
}
