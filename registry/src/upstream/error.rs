//! Why fetching from an upstream failed. No variant ever holds a password or a token: the
//! URLs are the configured ones (which may not carry credentials) and the messages are the
//! network's or the upstream's error texts.

use std::time::Duration;

use image::Digest;

/// A failed fetch from an upstream registry. Cloneable, so that every request waiting on one
/// shared fetch gets the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream does not have it (serve 404 `MANIFEST_UNKNOWN` / `BLOB_UNKNOWN`).
    #[error("upstream {upstream} has no {what} (GET {url} answered 404)")]
    NotFound {
        /// The upstream's name.
        upstream: String,
        /// `manifest library/nginx:1.25` or `blob sha256:…`.
        what: String,
        /// The URL asked.
        url: String,
    },
    /// The upstream refused our credentials, or asked for some and none are configured.
    #[error(
        "upstream {upstream} refused access to {url}: {detail}; check `username` and `password_file` of upstream `{upstream}` in the registry configuration"
    )]
    Unauthorized {
        /// The upstream's name.
        upstream: String,
        /// The URL asked (the API's or the token service's).
        url: String,
        /// What the upstream said, or what was missing.
        detail: String,
    },
    /// The content does not hash to the digest it was asked by or announced with; nothing
    /// was kept.
    #[error(
        "upstream {upstream} sent a {what} for {expected} from {url} that hashes to {actual}; it was discarded"
    )]
    DigestMismatch {
        /// The upstream's name.
        upstream: String,
        /// `blob` or `manifest`.
        what: &'static str,
        /// The URL asked.
        url: String,
        /// The digest asked for (or announced in `Docker-Content-Digest`).
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
    },
    /// Nothing arrived for the upstream's `timeout`.
    #[error(
        "upstream {upstream}: no progress from {url} for {}s; it hangs or is overloaded (raise `timeout` of upstream `{upstream}` if it is only slow)",
        timeout.as_secs_f64()
    )]
    Timeout {
        /// The upstream's name.
        upstream: String,
        /// The URL asked.
        url: String,
        /// The configured time without progress.
        timeout: Duration,
    },
    /// The connection failed (refused, reset, DNS, TLS).
    #[error("cannot reach upstream {upstream} at {url}: {message}")]
    Unreachable {
        /// The upstream's name.
        upstream: String,
        /// The URL asked.
        url: String,
        /// The network's or TLS library's message.
        message: String,
    },
    /// The upstream answered, but not with what the distribution API promises (an
    /// unexpected status, an oversized or unsupported manifest, a bad token answer).
    #[error("upstream {upstream}: {url}: {message}")]
    BadResponse {
        /// The upstream's name.
        upstream: String,
        /// The URL asked.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The request cannot be made: the reference is not a tag or digest.
    #[error("{message}")]
    BadRequest {
        /// What is wrong with the request.
        message: String,
    },
    /// The temporary file could not be written, or the caller's commit failed.
    #[error("upstream {upstream}: {action} {path}: {message}")]
    Storage {
        /// The upstream's name.
        upstream: String,
        /// What was being done (`writing`, `storing`).
        action: &'static str,
        /// The file or directory.
        path: String,
        /// The system's message.
        message: String,
    },
    /// The shared fetch this request waited for ended without a result (its task panicked).
    #[error(
        "the shared upstream fetch this request waited for stopped without a result; retry the request"
    )]
    Stopped,
    /// The HTTP client for an upstream could not be built (its TLS settings).
    #[error("upstream {upstream} (configured at {location}): {message}")]
    Client {
        /// The upstream's name.
        upstream: String,
        /// Where it is configured.
        location: String,
        /// What failed.
        message: String,
    },
}

impl UpstreamError {
    /// True when the upstream does not have the content (a 404 for the client too).
    pub fn is_not_found(&self) -> bool {
        matches!(self, UpstreamError::NotFound { .. })
    }
}

/// The message of an error and of every error it wraps, joined by `: `.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
