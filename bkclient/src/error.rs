//! The errors of the BuildKit client: each one is a single sentence that names the address,
//! file or image it is about.

use std::path::PathBuf;

/// Everything that can go wrong while reaching BuildKit, serving a session or running a Solve.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The `--buildkit` value (or `BUILDKIT_HOST`/`DOCKER_HOST`) is not an address we can use.
    #[error("invalid BuildKit address `{value}`: {reason}")]
    InvalidAddress {
        /// The value as given.
        value: String,
        /// Why it is not usable, including what is supported.
        reason: String,
    },
    /// Dialing the address (or the TLS handshake, or the HTTP exchange before the upgrade) failed.
    #[error("cannot reach BuildKit at {address}: {cause}")]
    Connect {
        /// The address as shown to the user (see `Address`'s Display).
        address: String,
        /// What the operating system or the peer said.
        cause: String,
    },
    /// dockerd answered `/grpc` with 404 or 400.
    #[error(
        "this Docker daemon ({address}) has no BuildKit API (is it older than 18.09 or started without BuildKit?)"
    )]
    NoBuildkitApi {
        /// The Docker host.
        address: String,
    },
    /// dockerd refused the HTTP upgrade of `path` with an HTTP error.
    #[error("the Docker daemon at {address} refused `POST {path}` (HTTP {status}): {message}")]
    UpgradeRefused {
        /// The Docker host.
        address: String,
        /// The endpoint, `/grpc` or `/session`.
        path: String,
        /// The HTTP status code.
        status: u16,
        /// dockerd's JSON `message`, or the body text.
        message: String,
    },
    /// A TLS file could not be read or used.
    #[error("cannot use the TLS file {path} for {address}: {reason}")]
    TlsFile {
        /// The address the TLS settings are for.
        address: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS settings are incomplete or contradictory.
    #[error("invalid TLS settings for {address}: {reason}")]
    TlsConfig {
        /// The address the TLS settings are for.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// The Solve failed; the text is BuildKit's error with the gRPC wrapping removed.
    #[error("{message}")]
    Solve {
        /// The cleaned error text.
        message: String,
    },
    /// A gRPC call other than Solve failed.
    #[error("{context}: {message} (gRPC status {code:?})")]
    Rpc {
        /// What was being done, e.g. "opening the session tunnel to unix:///run/buildkit/buildkitd.sock".
        context: String,
        /// The gRPC code.
        code: tonic::Code,
        /// The gRPC message.
        message: String,
    },
    /// An I/O operation on a file or connection failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file or address.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Pushing an image through the Docker API failed.
    #[error("pushing {image} through the Docker daemon at {address} failed: {message}")]
    Push {
        /// The image reference.
        image: String,
        /// The Docker host.
        address: String,
        /// What dockerd or the registry said.
        message: String,
    },
    /// The session protocol went wrong (the peer broke a protocol rule or the session ended early).
    #[error("{0}")]
    Session(String),
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, ClientError>;

impl ClientError {
    /// An [`ClientError::Io`] with the given context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// An [`ClientError::Rpc`] from a gRPC status.
    pub fn rpc(context: impl Into<String>, status: &tonic::Status) -> Self {
        Self::Rpc {
            context: context.into(),
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}
