//! Reaching BuildKit: dialing unix/TCP/TLS, dockerd's HTTP upgrade of `/grpc` and `/session`,
//! and the tonic [`Channel`] to the Control service.

mod dial;
mod io;
mod tls;
mod upgrade;

use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

pub use io::SessionIo;
pub(crate) use upgrade::error_message;

use crate::addr::{Address, DockerHost};
use crate::error::{ClientError, Result};
use image::registry::error_chain;
use upgrade::UpgradeError;

/// HTTP/2 flow-control window per stream on the Control channel (Solve requests, Status
/// streams and session tunnels move large messages).
const STREAM_WINDOW: u32 = 16 * 1024 * 1024;
/// HTTP/2 flow-control window per connection on the Control channel.
const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;

impl Address {
    /// A gRPC channel to the Control service (Docker: through `/grpc`).
    ///
    /// The first connection is made here, so an unreachable address fails now; when the
    /// connection breaks, the channel dials anew (and upgrades again on Docker).
    pub async fn control_channel(&self) -> Result<Channel> {
        let first = self.dial_control().await?;
        let ready = Arc::new(Mutex::new(Some(first)));
        let address = self.clone();
        let connector = service_fn(move |_: Uri| {
            let ready = Arc::clone(&ready);
            let address = address.clone();
            async move {
                let taken = ready.lock().ok().and_then(|mut slot| slot.take());
                let io = match taken {
                    Some(io) => io,
                    None => address.dial_control().await?,
                };
                Ok::<_, ClientError>(TokioIo::new(io))
            }
        });
        Endpoint::from_static("http://buildkit")
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .connect_with_connector(connector)
            .await
            .map_err(|error| ClientError::Connect {
                address: self.to_string(),
                cause: format!("the HTTP/2 connection failed: {}", error_chain(&error)),
            })
    }

    /// A fresh connection on which the Control service speaks HTTP/2.
    async fn dial_control(&self) -> Result<SessionIo> {
        match self {
            Address::Docker(host) => host.upgrade("/grpc", &[]).await,
            _ => Ok(SessionIo::from_boxed(Vec::new(), self.dial().await?)),
        }
    }
}

impl DockerHost {
    /// Dials and upgrades `POST /session` with these headers; the daemon then speaks HTTP/2 as the client.
    pub async fn upgrade_session(&self, headers: &[(String, String)]) -> Result<SessionIo> {
        self.upgrade("/session", headers).await
    }

    async fn upgrade(&self, path: &str, headers: &[(String, String)]) -> Result<SessionIo> {
        let stream = self.dial().await?;
        upgrade::upgrade(stream, path, headers)
            .await
            .map_err(|error| match error {
                UpgradeError::Refused {
                    status: 404 | 400, ..
                } if path == "/grpc" => ClientError::NoBuildkitApi {
                    address: self.label(),
                },
                UpgradeError::Refused { status, message } => ClientError::UpgradeRefused {
                    address: self.label(),
                    path: path.to_owned(),
                    status,
                    message,
                },
                UpgradeError::BadHeader(reason) => ClientError::Session(format!(
                    "cannot send the session headers to {}: {reason}",
                    self.label()
                )),
                UpgradeError::Transport(cause) => ClientError::Connect {
                    address: self.label(),
                    cause: format!("POST {path}: {cause}"),
                },
            })
    }
}
