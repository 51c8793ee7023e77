//! The frontend's errors.

use crate::gateway::GatewayError;
use crate::opts::OptionsError;

/// Why a frontend run failed; the message is what the user sees in `docker build`.
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    /// A gateway call failed.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// An option BuildKit passed is invalid.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The daemon lacks a feature the build needs.
    #[error(transparent)]
    MissingCap(#[from] llb::caps::MissingCap),
    /// The client did not send the build file.
    #[error(
        "the build file `{name}` was not found in the `{local}` directory the client sent; pass it with `-f` or name it Kubefile"
    )]
    BuildFileMissing {
        /// The file name (`filename` option).
        name: String,
        /// The local it was looked up in.
        local: String,
    },
    /// A text file is not UTF-8.
    #[error("`{name}` is not UTF-8 text")]
    NotUtf8 {
        /// The file name.
        name: String,
    },
    /// The Kubefile cannot be built; the message names the file, line and column.
    #[error("{0}")]
    Kubefile(String),
    /// The build failed; the message says where and why.
    #[error("{0}")]
    Build(String),
}
