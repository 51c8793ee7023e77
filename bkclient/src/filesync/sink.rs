//! The raw-bytes `FileSend/DiffCopy` of `tar` and `oci` outputs (filesync.go
//! `fsSyncTarget`, diffcopy.go `writeTargetFile`): the daemon streams the archive as
//! `BytesMessage`s and closes its side; we answer nothing and end the call once everything is
//! written, which is what the daemon waits for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard_buildkit_proto::moby::filesync::v1::BytesMessage;
use bollard_buildkit_proto::moby::filesync::v1::file_send_server::FileSend;
use tokio::io::{AsyncWrite, AsyncWriteExt as _, BufWriter};
use tonic::{Request, Response, Status, Streaming};

/// Write buffer: the daemon sends 4 KiB messages.
const BUFFER: usize = 256 * 1024;

/// The `FileSend` service of a session with a `tar` or `oci` output: writes the archive into
/// a file, or to standard output for `-`.
#[derive(Clone, Debug)]
pub struct FileTarget {
    dest: Arc<PathBuf>,
}

impl FileTarget {
    /// A target writing `dest` (through `dest.partial`, renamed once complete), or standard
    /// output when `dest` is `-`.
    pub fn new(dest: PathBuf) -> Self {
        FileTarget {
            dest: Arc::new(dest),
        }
    }

    /// The file an output to `dest` is written to until it is complete: removing it is how an
    /// interrupted build leaves nothing behind.
    pub fn partial_path(dest: &Path) -> PathBuf {
        let mut name = dest.as_os_str().to_os_string();
        name.push(".partial");
        PathBuf::from(name)
    }

    fn partial(&self) -> PathBuf {
        Self::partial_path(&self.dest)
    }

    async fn write_file(&self, incoming: Streaming<BytesMessage>) -> Result<(), String> {
        let partial = self.partial();
        let file = tokio::fs::File::create(&partial)
            .await
            .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
        let written = copy_messages(incoming, file).await;
        if let Err(error) = written {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(format!("cannot write {}: {error}", self.dest.display()));
        }
        tokio::fs::rename(&partial, self.dest.as_ref())
            .await
            .map_err(|e| {
                format!(
                    "cannot move {} to {}: {e}",
                    partial.display(),
                    self.dest.display()
                )
            })
    }
}

#[tonic::async_trait]
impl FileSend for FileTarget {
    type DiffCopyStream = futures::stream::Empty<Result<BytesMessage, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let incoming = request.into_inner();
        let result = if self.dest.as_os_str() == "-" {
            copy_messages(incoming, tokio::io::stdout())
                .await
                .map_err(|e| format!("cannot write the output to standard output: {e}"))
        } else {
            self.write_file(incoming).await
        };
        result.map_err(Status::internal)?;
        Ok(Response::new(futures::stream::empty()))
    }
}

/// Appends every message to `out` until the daemon closes its side.
async fn copy_messages(
    mut incoming: Streaming<BytesMessage>,
    out: impl AsyncWrite + Unpin,
) -> Result<(), String> {
    let mut out = BufWriter::with_capacity(BUFFER, out);
    while let Some(message) = incoming
        .message()
        .await
        .map_err(|s| s.message().to_owned())?
    {
        out.write_all(&message.data)
            .await
            .map_err(|e| e.to_string())?;
    }
    out.flush().await.map_err(|e| e.to_string())?;
    let mut inner = out.into_inner();
    inner.shutdown().await.map_err(|e| e.to_string())
}
