//! The HTTP server: distribution's v2 API over a [`Storage`] with hyper 1 (HTTP/1.1 with
//! keep-alive), optionally over TLS, with htpasswd authentication, `/healthz`, `/metrics`,
//! access logs and graceful shutdown.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use registry::server::{Server, ServerOptions, shutdown_signal};
//! use registry::storage::Storage;
//! let shutdown = shutdown_signal()?;
//! let server = Server::bind("127.0.0.1:5000", ServerOptions::new(Storage::new("/var/lib/registry"))).await?;
//! println!("listening on {}", server.url());
//! server.run(shutdown).await?;
//! # Ok(())
//! # }
//! ```

mod auth;
mod body;
mod errors;
mod handlers;
mod metrics;
mod range;
mod routes;
mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::ServeConfig;
use crate::storage::Storage;
use crate::upstream::{ConfigError, ProxyConfig, UpstreamError, Upstreams};
pub use auth::{Htpasswd, HtpasswdError};
pub use errors::{ApiError, ErrorCode};
pub use metrics::Metrics;
pub use tls::{TlsError, server_config as tls_server_config};

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// `errno` of a process out of file descriptors.
const EMFILE: i32 = 24;
/// `errno` of a system out of file descriptors.
const ENFILE: i32 = 23;
/// How long shutdown waits for requests in flight before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What the server serves and how.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The storage served.
    pub storage: Storage,
    /// Accept uploads and manifest pushes (off: they answer 405 `UNSUPPORTED`).
    pub push: bool,
    /// Client authentication.
    pub htpasswd: Option<Htpasswd>,
    /// TLS: a rustls configuration (see [`tls_server_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Write an access log line per request to standard error.
    pub access_log: bool,
    /// The counters served at `/metrics`.
    pub metrics: Metrics,
    /// The upstreams of the pull-through cache: what storage lacks is fetched from them,
    /// stored, and served.
    pub upstreams: Option<Upstreams>,
}

impl ServerOptions {
    /// Serves `storage` read-only over plain HTTP, without authentication or access log.
    pub fn new(storage: Storage) -> Self {
        ServerOptions {
            storage,
            push: false,
            htpasswd: None,
            tls: None,
            access_log: false,
            metrics: Metrics::new(),
            upstreams: None,
        }
    }

    /// The options a configuration asks for: loads the htpasswd file, the TLS certificate
    /// and key, and the `proxy` section's upstreams; the access log is on.
    pub fn from_config(config: &ServeConfig) -> Result<Self, ServeError> {
        let htpasswd = config
            .htpasswd
            .as_ref()
            .map(|htpasswd| Htpasswd::load(&htpasswd.path, &htpasswd.realm))
            .transpose()?;
        let tls = config
            .tls
            .as_ref()
            .map(|tls| tls_server_config(&tls.certificate, &tls.key))
            .transpose()?;
        let upstreams = match &config.proxy_section {
            Some(section) => {
                let file = config
                    .source
                    .clone()
                    .unwrap_or_else(|| std::path::PathBuf::from("the configuration"));
                let proxy = ProxyConfig::from_node(section, &file)?;
                (!proxy.is_empty())
                    .then(|| Upstreams::new(&proxy))
                    .transpose()?
            }
            None => None,
        };
        Ok(ServerOptions {
            storage: Storage::new(&config.storage_root),
            push: config.push,
            htpasswd,
            tls,
            access_log: true,
            metrics: Metrics::new(),
            upstreams,
        })
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The error.
        source: io::Error,
    },
    /// The listener failed.
    #[error("accepting connections on {addr} failed: {source}")]
    Accept {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// The htpasswd file cannot be used.
    #[error(transparent)]
    Htpasswd(#[from] HtpasswdError),
    /// The TLS certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The `proxy` section is wrong.
    #[error(transparent)]
    ProxyConfig(#[from] ConfigError),
    /// An upstream cannot be set up (its TLS settings).
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// A server bound to its address, ready to run.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    app: Arc<handlers::App>,
    tls: Option<TlsAcceptor>,
}

impl Server {
    /// Listens on `addr` (`host:port`; port 0 picks a free one).
    pub async fn bind(addr: &str, options: ServerOptions) -> Result<Server, ServeError> {
        let bind_error = |source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let app = handlers::App {
            storage: options.storage,
            htpasswd: options.htpasswd,
            push: options.push,
            metrics: options.metrics,
            access_log: options.access_log,
            tls: options.tls.is_some(),
            upstreams: options.upstreams,
        };
        Ok(Server {
            listener,
            local_addr,
            app: Arc::new(app),
            tls: options.tls.map(TlsAcceptor::from),
        })
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The counters the server keeps (shared with whoever holds a clone).
    pub fn metrics(&self) -> Metrics {
        self.app.metrics.clone()
    }

    /// Serves until `shutdown` completes; then stops accepting, lets requests in flight
    /// finish (up to 30 seconds) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, client) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    // Per-connection failures (such as a client resetting during accept)
                    // do not stop the server; out of file descriptors, it waits a moment
                    // for connections to close.
                    Err(error) if is_transient(&error) => {
                        if error.raw_os_error().is_some_and(|code| code == EMFILE || code == ENFILE) {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        continue;
                    }
                    Err(source) => return Err(ServeError::Accept { addr: self.local_addr, source }),
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let app = Arc::clone(&self.app);
            let service = service_fn(move |request| {
                let app = Arc::clone(&app);
                async move { Ok::<_, std::convert::Infallible>(app.handle(request, client).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .keep_alive(true)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let watcher = graceful.watcher();
            match &self.tls {
                None => {
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::spawn(watcher.watch(connection));
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let handshake =
                            tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                                .await;
                        // A failed handshake (an untrusting client, a port scan) only ends
                        // this connection.
                        if let Ok(Ok(tls_stream)) = handshake {
                            let connection =
                                builder.serve_connection(TokioIo::new(tls_stream), service);
                            let _ = watcher.watch(connection).await;
                        }
                    });
                }
            }
        }
        drop(self.listener);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
        Ok(())
    }
}

/// Errors of `accept` that concern one connection only.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || error
        .raw_os_error()
        .is_some_and(|code| code == EMFILE || code == ENFILE)
}

/// A future completing on SIGINT or SIGTERM. The handlers are installed by this call, not
/// when the future is first polled, so a signal sent as soon as the server announces itself
/// is a clean shutdown rather than the default kill.
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
