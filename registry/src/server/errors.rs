//! Errors in distribution's JSON format, `{"errors":[{"code":…,"message":…,"detail":…}]}`,
//! with the status codes distribution gives each code.

use http::StatusCode;
use serde_json::{Value, json};

use crate::storage::{ManifestReference, StorageError};

/// The error codes of the distribution API that this registry answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A blob the repository does not have.
    BlobUnknown,
    /// An upload whose request went wrong (its body was cut off).
    BlobUploadInvalid,
    /// An upload the registry does not know.
    BlobUploadUnknown,
    /// A digest that is malformed or does not match the content.
    DigestInvalid,
    /// A pushed manifest references a blob the repository lacks.
    ManifestBlobUnknown,
    /// A pushed manifest is invalid, or a manifest cannot be served in a form the client
    /// accepts.
    ManifestInvalid,
    /// A manifest the repository does not have.
    ManifestUnknown,
    /// A repository name outside distribution's grammar.
    NameInvalid,
    /// A repository the registry does not know.
    NameUnknown,
    /// A length that does not match the content.
    SizeInvalid,
    /// A tag outside distribution's grammar in a push.
    TagInvalid,
    /// A chunk that does not continue the upload where it stands.
    RangeInvalid,
    /// Credentials are missing or wrong.
    Unauthorized,
    /// The operation is not offered (pushes when they are off, deletes).
    Unsupported,
    /// Anything else: a failure of the registry itself.
    Unknown,
}

impl ErrorCode {
    /// The code, message and status distribution uses.
    fn parts(self) -> (&'static str, &'static str, StatusCode) {
        match self {
            ErrorCode::BlobUnknown => (
                "BLOB_UNKNOWN",
                "blob unknown to registry",
                StatusCode::NOT_FOUND,
            ),
            ErrorCode::BlobUploadInvalid => (
                "BLOB_UPLOAD_INVALID",
                "blob upload invalid",
                StatusCode::NOT_FOUND,
            ),
            ErrorCode::BlobUploadUnknown => (
                "BLOB_UPLOAD_UNKNOWN",
                "blob upload unknown to registry",
                StatusCode::NOT_FOUND,
            ),
            ErrorCode::DigestInvalid => (
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
                StatusCode::BAD_REQUEST,
            ),
            ErrorCode::ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                "blob unknown to registry",
                StatusCode::BAD_REQUEST,
            ),
            ErrorCode::ManifestInvalid => (
                "MANIFEST_INVALID",
                "manifest invalid",
                StatusCode::BAD_REQUEST,
            ),
            ErrorCode::ManifestUnknown => (
                "MANIFEST_UNKNOWN",
                "manifest unknown",
                StatusCode::NOT_FOUND,
            ),
            ErrorCode::NameInvalid => (
                "NAME_INVALID",
                "invalid repository name",
                StatusCode::BAD_REQUEST,
            ),
            ErrorCode::NameUnknown => (
                "NAME_UNKNOWN",
                "repository name not known to registry",
                StatusCode::NOT_FOUND,
            ),
            ErrorCode::SizeInvalid => (
                "SIZE_INVALID",
                "provided length did not match content length",
                StatusCode::BAD_REQUEST,
            ),
            ErrorCode::TagInvalid => (
                "TAG_INVALID",
                "manifest tag did not match URI",
                StatusCode::BAD_REQUEST,
            ),
            ErrorCode::RangeInvalid => (
                "RANGE_INVALID",
                "invalid content range",
                StatusCode::RANGE_NOT_SATISFIABLE,
            ),
            ErrorCode::Unauthorized => (
                "UNAUTHORIZED",
                "authentication required",
                StatusCode::UNAUTHORIZED,
            ),
            ErrorCode::Unsupported => (
                "UNSUPPORTED",
                "The operation is unsupported.",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            ErrorCode::Unknown => (
                "UNKNOWN",
                "unknown error",
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        }
    }

    /// The HTTP status of this code.
    pub fn status(self) -> StatusCode {
        self.parts().2
    }
}

/// One error of the API: a code, optionally another message, and a detail (omitted when
/// `None`, as distribution omits an absent detail).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// A message other than the code's own.
    pub message: Option<String>,
    /// The detail.
    pub detail: Option<Value>,
    /// The `WWW-Authenticate` challenge of an `UNAUTHORIZED` error.
    pub challenge: Option<String>,
}

impl ApiError {
    /// An error with the code's message and no detail.
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            message: None,
            detail: None,
            challenge: None,
        }
    }

    /// The same error with a detail.
    #[must_use]
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The same error with another message.
    #[must_use]
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// The same error with a `WWW-Authenticate` challenge.
    #[must_use]
    pub fn with_challenge(mut self, challenge: String) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The JSON body, with a trailing newline as distribution's encoder writes it.
    pub fn body(&self) -> Vec<u8> {
        /// The body: one error.
        #[derive(serde::Serialize)]
        struct Body<'a> {
            errors: [Entry<'a>; 1],
        }
        /// An error, with its fields in distribution's order.
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            detail: Option<&'a Value>,
        }
        let (code, message, _) = self.code.parts();
        let body = Body {
            errors: [Entry {
                code,
                message: self.message.as_deref().unwrap_or(message),
                detail: self.detail.as_ref(),
            }],
        };
        let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

impl From<&StorageError> for ApiError {
    fn from(error: &StorageError) -> Self {
        match error {
            StorageError::NameUnknown { repository } => {
                ApiError::new(ErrorCode::NameUnknown).detail(json!({ "name": repository.as_str() }))
            }
            StorageError::ManifestUnknown {
                reference: ManifestReference::Tag(tag),
                ..
            } => ApiError::new(ErrorCode::ManifestUnknown).detail(json!({ "Tag": tag })),
            StorageError::ManifestUnknown {
                repository,
                reference: ManifestReference::Digest(digest),
            } => ApiError::new(ErrorCode::ManifestUnknown).detail(json!({
                "Name": repository.as_str(),
                "Revision": digest.to_string(),
            })),
            StorageError::BlobUnknown { digest, .. } => {
                ApiError::new(ErrorCode::BlobUnknown).detail(json!(digest.to_string()))
            }
            StorageError::UploadUnknown { .. } => ApiError::new(ErrorCode::BlobUploadUnknown),
            StorageError::DigestInvalid { .. } | StorageError::DigestMismatch { .. } => {
                ApiError::new(ErrorCode::DigestInvalid).detail(json!(error.to_string()))
            }
            StorageError::TagInvalid { .. } => {
                ApiError::new(ErrorCode::TagInvalid).detail(json!(error.to_string()))
            }
            StorageError::ManifestInvalid { .. } => {
                ApiError::new(ErrorCode::ManifestInvalid).detail(json!(error.to_string()))
            }
            StorageError::ManifestBlobUnknown { digest, .. } => {
                ApiError::new(ErrorCode::ManifestBlobUnknown).detail(json!(digest.to_string()))
            }
            StorageError::Io { .. } => ApiError::new(ErrorCode::Unknown).detail(json!(
                "the registry could not read or write its storage; its log says why"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RepositoryName;

    #[test]
    fn bodies_match_distribution() {
        let unknown = StorageError::ManifestUnknown {
            repository: RepositoryName::parse("a/b").unwrap(),
            reference: ManifestReference::Tag("nope".into()),
        };
        let error = ApiError::from(&unknown);
        assert_eq!(error.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            String::from_utf8(error.body()).unwrap(),
            "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{\"Tag\":\"nope\"}}]}\n"
        );
        assert_eq!(
            String::from_utf8(ApiError::new(ErrorCode::Unsupported).body()).unwrap(),
            "{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"The operation is unsupported.\"}]}\n"
        );
        let unauthorized = ApiError::new(ErrorCode::Unauthorized).detail(Value::Null);
        assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
        assert!(
            String::from_utf8(unauthorized.body())
                .unwrap()
                .contains("\"detail\":null")
        );
    }
}
