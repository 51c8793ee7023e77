//! The build's session: the gRPC server BuildKit calls back into during a Solve. It answers
//! health checks, registry credentials (Auth), the `registry-auth` secret (Secrets) and
//! whatever other services are added (FileSync for the context, FileSend for outputs).
//!
//! BuildKit is the HTTP/2 *client* of a session and we are the server, either on a
//! connection dockerd hands over after `POST /session` ([`Session::serve`]) or inside a
//! `Control.Session` stream whose messages carry the raw HTTP/2 bytes
//! ([`Session::serve_tunnel`]). Facts: BuildKit v0.8 `session/session.go`, `manager.go`,
//! `grpc.go`, `grpchijack/dial.go`.

mod auth;
mod health;
mod key;
mod secrets;
mod tunnel;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bollard_buildkit_proto::health::health_server::HealthServer;
use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_server::SecretsServer;
use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use bollard_buildkit_proto::moby::filesync::v1::auth_server::AuthServer;
use futures::StreamExt as _;
use image::registry::auth::CredentialStore;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Server};

pub use key::{shared_key, shared_key_in};
pub use secrets::REGISTRY_AUTH_SECRET;

/// Header (and, lower-cased, gRPC metadata key) carrying the session id.
pub const HEADER_SESSION_ID: &str = "X-Docker-Expose-Session-Uuid";
/// Header carrying the session name (the context directory's base name).
pub const HEADER_SESSION_NAME: &str = "X-Docker-Expose-Session-Name";
/// Header carrying the shared key (see [`shared_key`]).
pub const HEADER_SESSION_SHARED_KEY: &str = "X-Docker-Expose-Session-Sharedkey";
/// Header repeated once per gRPC method the session serves.
pub const HEADER_SESSION_METHOD: &str = "X-Docker-Expose-Session-Grpc-Method";

/// Methods of the services every session serves, as advertised (Go's health server of that
/// era has Check and Watch; BuildKit's Auth has four methods).
const BUILTIN_METHODS: [&str; 7] = [
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.filesync.v1.Auth/FetchToken",
    "/moby.filesync.v1.Auth/GetTokenAuthority",
    "/moby.filesync.v1.Auth/VerifyTokenAuthority",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
];

/// HTTP/2 flow-control windows of the session server: large, so that context files and
/// outputs stream without waiting for window updates on every few frames.
const STREAM_WINDOW: u32 = 16 << 20;
const CONNECTION_WINDOW: u32 = 64 << 20;

/// The largest request head the session accepts: room for a `.dockerignore` of thousands of
/// patterns.
const MAX_HEADER_LIST: u32 = 16 << 20;

/// How long [`RunningSession::close`] lets the session's tasks report before it drops the
/// connection. Short: when the Solve has returned, BuildKit needs nothing more from the
/// session (outputs are complete), and it may keep the connection open, which a graceful
/// shutdown would wait for. Go's client stops its server at once.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(250);

/// Errors of the session. None of them carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The context directory could not be resolved to an absolute path.
    #[error("cannot resolve the context directory {path}: {source}")]
    ContextDir {
        /// The directory as given.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The session's gRPC server failed.
    #[error("the build session's gRPC server failed: {0}")]
    Serve(String),
    /// BuildKit refused or broke the `Control.Session` stream the session runs in.
    #[error("BuildKit's session stream (Control.Session) failed: {0}")]
    Tunnel(String),
    /// A header of the session cannot be sent as gRPC metadata.
    #[error("the session header {name} cannot be sent as gRPC metadata: {reason}")]
    Header {
        /// The header name.
        name: String,
        /// Why not.
        reason: String,
    },
    /// A task of the session panicked or was cancelled.
    #[error("a task of the build session stopped unexpectedly: {0}")]
    Task(String),
}

/// Results of this module.
pub type Result<T> = std::result::Result<T, SessionError>;

/// A build session before it runs: its identity, the services it will serve and the methods
/// it advertises.
pub struct Session {
    id: String,
    name: String,
    shared_key: String,
    credentials: CredentialStore,
    extra_routes: Routes,
    extra_methods: Vec<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("shared_key", &self.shared_key)
            .field("credentials", &self.credentials)
            .field("methods", &self.methods())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// `name`: basename of the context dir; `shared_key`: see [`shared_key`]. Registers
    /// Health, Auth and Secrets, with credentials from the environment's Docker config
    /// (`$DOCKER_CONFIG`, else `~/.docker`).
    pub fn new(name: &str, shared_key: &str) -> Session {
        Session {
            id: new_id(),
            name: header_safe(name),
            shared_key: header_safe(shared_key),
            credentials: CredentialStore::from_env(),
            extra_routes: Routes::default(),
            extra_methods: Vec::new(),
        }
    }

    /// Answers Auth and Secrets from this credential store instead of the environment's.
    #[must_use]
    pub fn with_credential_store(mut self, credentials: CredentialStore) -> Session {
        self.credentials = credentials;
        self
    }

    /// Adds another service (tonic generated `XxxServer<T>`) and the full method paths it
    /// answers, which are advertised in the `X-Docker-Expose-Session-Grpc-Method` headers.
    pub fn add_service<S>(&mut self, service: S, methods: &[&str])
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let routes = std::mem::take(&mut self.extra_routes);
        self.extra_routes = routes.add_service(service);
        self.extra_methods
            .extend(methods.iter().map(|method| (*method).to_owned()));
    }

    /// The session id: 25 random `[a-z0-9]`, what `SolveRequest.session` names.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Every method this session serves, as advertised.
    pub fn methods(&self) -> Vec<String> {
        BUILTIN_METHODS
            .iter()
            .map(|method| (*method).to_owned())
            .chain(self.extra_methods.iter().cloned())
            .collect()
    }

    /// The headers announcing this session: id, name, shared key, then one
    /// `X-Docker-Expose-Session-Grpc-Method` per served method.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![
            (HEADER_SESSION_ID.to_owned(), self.id.clone()),
            (HEADER_SESSION_NAME.to_owned(), self.name.clone()),
            (
                HEADER_SESSION_SHARED_KEY.to_owned(),
                self.shared_key.clone(),
            ),
        ];
        headers.extend(
            self.methods()
                .into_iter()
                .map(|method| (HEADER_SESSION_METHOD.to_owned(), method)),
        );
        headers
    }

    /// Serves on a connection whose peer (BuildKit) is the HTTP/2 client, e.g. the one dockerd
    /// hands over after `POST /session`, until [`RunningSession::close`] or the peer ends.
    /// Must be called inside a Tokio runtime.
    pub fn serve<IO>(self, io: IO) -> RunningSession
    where
        IO: AsyncRead + AsyncWrite + Connected + Send + Unpin + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        let server = tokio::spawn(self.run_server(io, stopped));
        RunningSession {
            stop: Some(stop),
            closing: Arc::new(AtomicBool::new(false)),
            tasks: vec![server],
        }
    }

    /// Opens `Control.Session` on this client (the headers as lower-cased gRPC metadata) and
    /// serves inside that stream, whose messages carry the raw HTTP/2 bytes both ways. Errors
    /// opening the stream are reported by [`RunningSession::close`]. Must be called inside a
    /// Tokio runtime.
    pub fn serve_tunnel(self, client: ControlClient<Channel>) -> RunningSession {
        tunnel::serve(self, client)
    }

    /// The gRPC services of this session.
    fn into_routes(self) -> Routes {
        let mut service_names: Vec<&str> = BUILTIN_METHODS
            .iter()
            .copied()
            .chain(self.extra_methods.iter().map(String::as_str))
            .filter_map(|method| method.trim_start_matches('/').split_once('/'))
            .map(|(service, _)| service)
            .collect();
        service_names.sort_unstable();
        service_names.dedup();
        let health = health::HealthService::new(service_names.iter().map(|s| (*s).to_owned()));
        self.extra_routes
            .add_service(HealthServer::new(health))
            .add_service(AuthServer::new(auth::AuthService::new(
                self.credentials.clone(),
            )))
            .add_service(SecretsServer::new(secrets::SecretsService::new(
                self.credentials,
            )))
    }

    /// Runs the gRPC server on `io` until `stop` fires (or its sender is dropped) or the
    /// connection ends.
    async fn run_server<IO>(self, io: IO, stop: oneshot::Receiver<()>) -> Result<()>
    where
        IO: AsyncRead + AsyncWrite + Connected + Send + Unpin + 'static,
    {
        let (ended, connection_ended) = oneshot::channel::<()>();
        let io = WatchedIo {
            inner: io,
            _ended: ended,
        };
        // The incoming stream must stay open after its one connection: tonic stops serving
        // when it ends.
        let incoming = futures::stream::once(async { Ok::<_, Infallible>(io) })
            .chain(futures::stream::pending());
        let shutdown = async {
            tokio::select! {
                _ = stop => {}
                _ = connection_ended => {}
            }
        };
        Server::builder()
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            // The daemon sends each include, exclude and follow pattern as its own metadata
            // entry; grpc-go refuses to send more than the peer's limit (16 KiB by default).
            .http2_max_header_list_size(MAX_HEADER_LIST)
            .add_routes(self.into_routes())
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(|error| SessionError::Serve(error.to_string()))
    }
}

/// A session being served. Dropping it stops the server too, without waiting.
#[derive(Debug)]
pub struct RunningSession {
    stop: Option<oneshot::Sender<()>>,
    closing: Arc<AtomicBool>,
    /// The gRPC server first, then the tunnel's pumps if any.
    tasks: Vec<JoinHandle<Result<()>>>,
}

impl RunningSession {
    /// Stops serving, gives the session's tasks a moment to end, then drops the connection.
    /// Returns the first error the session met while it ran.
    pub async fn close(mut self) -> Result<()> {
        self.closing.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            // The server may already have stopped because the peer ended the connection.
            let _ = stop.send(());
        }
        let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
        let mut first_error = None;
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => {
                    first_error.get_or_insert(error);
                }
                Ok(Err(join_error)) => {
                    first_error.get_or_insert(SessionError::Task(join_error.to_string()));
                }
                // The build is over; a peer that keeps calls open does not make it fail.
                Err(_elapsed) => abort.abort(),
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A connection that reports when the server lets go of it (the HTTP/2 connection ended).
struct WatchedIo<IO> {
    inner: IO,
    _ended: oneshot::Sender<()>,
}

impl<IO: Connected> Connected for WatchedIo<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for WatchedIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WatchedIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// 25 random characters of `[a-z0-9]`, like BuildKit's `identity.NewID`: the form of
/// session and build (Solve ref) ids.
pub fn new_id() -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..25)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

/// `value` with every character that cannot travel in an HTTP header or gRPC metadata value
/// (anything but visible ASCII and space) replaced by `_`; the session name is informational.
fn header_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{header_safe, new_id};

    #[test]
    fn session_ids_are_25_lowercase_alphanumerics_and_differ() {
        let first = new_id();
        assert_eq!(first.len(), 25);
        assert!(
            first
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_ne!(first, new_id());
    }

    #[test]
    fn header_values_keep_visible_ascii_only() {
        assert_eq!(header_safe("my app-1.0"), "my app-1.0");
        assert_eq!(header_safe("café\tx"), "caf__x");
    }
}
