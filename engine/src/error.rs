//! Build errors. Each names what the user can act on: the Kubefile line and column of the
//! failing instruction, the image, or the file.

use std::io;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Kubefile has errors; the text is the rendered diagnostics.
    #[error("{0}")]
    Kubefile(String),
    /// An instruction failed.
    #[error("{kubefile}:{line}:{column}: {instruction}: {message}")]
    Step {
        /// The Kubefile path as given.
        kubefile: String,
        /// 1-based line of the instruction.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The instruction, as short text (`COPY charts/ charts/`).
        instruction: String,
        /// What went wrong, and what to do.
        message: String,
    },
    /// The base image (or a `COPY --from` image) cannot be had.
    #[error("{}", naming_the_image(image, message))]
    Image {
        /// The reference as written.
        image: String,
        /// What went wrong.
        message: String,
    },
    /// The container images the rootfs needs cannot be cached.
    #[error("caching the container images: {0}")]
    CacheImages(#[from] crate::cache_images::CacheImagesError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] image::store::StoreError),
    /// A file operation of the build failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The build was interrupted (Ctrl-C); what was stored so far is consistent.
    #[error(
        "interrupted; the image store is consistent and the next build continues from the build cache"
    )]
    Interrupted,
}

/// `message`, preceded by the image unless it names it first already.
fn naming_the_image(image: &str, message: &str) -> String {
    if message.starts_with(image) {
        message.to_owned()
    } else {
        format!("image {image}: {message}")
    }
}

impl BuildError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> BuildError {
        let what = what.into();
        move |source| BuildError::Io { what, source }
    }
}
