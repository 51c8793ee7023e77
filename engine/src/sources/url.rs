//! ADD's URL sources: downloaded into a temporary file, hashed while they stream, checked
//! against `--checksum`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use image::Digest;
use image::digest::Hasher;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

/// A downloaded file.
#[derive(Debug)]
pub(super) struct Downloaded {
    /// Holds the file; removed when dropped.
    pub dir: TempDir,
    /// The file.
    pub path: PathBuf,
    /// The name it gets in a destination directory.
    pub file_name: String,
}

/// Why a download failed.
#[derive(Debug)]
pub(super) enum DownloadError {
    /// `--checksum` is not a sha256 digest.
    BadChecksum(String),
    /// The request failed before an answer.
    Request(String),
    /// The server answered with an error status.
    Status(String),
    /// The body did not match `--checksum`.
    Mismatch { expected: Digest, actual: Digest },
    /// The file could not be written.
    Write(PathBuf, std::io::Error),
}

/// Downloads `url` into a new temporary directory under `scratch`. The file has mode 0o600,
/// as Docker gives downloads.
pub(super) async fn download(
    url: &str,
    checksum: Option<&str>,
    scratch: &Path,
) -> Result<Downloaded, DownloadError> {
    let expected = checksum
        .map(|text| {
            text.parse::<Digest>()
                .map_err(|e| DownloadError::BadChecksum(e.to_string()))
        })
        .transpose()?;
    let file_name = kubefile::plan::url_file_name(url);
    let dir = tempfile::Builder::new()
        .prefix("download-")
        .tempdir_in(scratch)
        .map_err(|e| DownloadError::Write(scratch.to_path_buf(), e))?;
    let path = dir.path().join("file");

    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| DownloadError::Request(image::registry::error_chain(&e)))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| DownloadError::Request(image::registry::error_chain(&e.without_url())))?;
    let status = response.status();
    if !status.is_success() {
        return Err(DownloadError::Status(status.to_string()));
    }

    let write_error = |e| DownloadError::Write(path.clone(), e);
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .await
        .map_err(write_error)?;
    let mut hasher = Hasher::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| DownloadError::Request(image::registry::error_chain(&e.without_url())))?
    {
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(write_error)?;
    }
    file.flush().await.map_err(write_error)?;
    drop(file);

    let actual = hasher.finish();
    if let Some(expected) = expected
        && expected != actual
    {
        return Err(DownloadError::Mismatch { expected, actual });
    }
    Ok(Downloaded {
        dir,
        path,
        file_name,
    })
}
