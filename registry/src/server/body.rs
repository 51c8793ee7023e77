//! Response bodies: bytes, nothing, or a file range streamed from disk; and the wrapper that
//! counts what was sent and writes the access log line when the response is done.

use std::io::{self, SeekFrom};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio_util::io::ReaderStream;

use super::metrics::Metrics;

/// The body of every response.
pub type ResponseBody = UnsyncBoxBody<Bytes, io::Error>;

/// Size of the reads that stream a blob.
const FILE_CHUNK: usize = 512 * 1024;

/// A body of these bytes.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> ResponseBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body streaming `length` bytes of the file from `start`.
pub async fn file_range(path: &Path, start: u64, length: u64) -> io::Result<ResponseBody> {
    let mut file = tokio::fs::File::open(path).await?;
    if start > 0 {
        file.seek(SeekFrom::Start(start)).await?;
    }
    let stream = ReaderStream::with_capacity(file.take(length), FILE_CHUNK);
    Ok(StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync())
}

/// What the access log says of a request, besides what the response tells.
#[derive(Debug, Clone)]
pub struct RequestSummary {
    /// The client's address.
    pub client: SocketAddr,
    /// The method.
    pub method: String,
    /// The path and query.
    pub target: String,
    /// The status answered.
    pub status: u16,
    /// When the request arrived.
    pub started: Instant,
}

/// A body that counts the bytes it yields; when dropped (sent in full, or the client went
/// away) it adds them to the metrics and, when asked, writes the access log line.
pub struct LoggedBody {
    inner: ResponseBody,
    sent: u64,
    summary: RequestSummary,
    metrics: Metrics,
    access_log: bool,
}

impl LoggedBody {
    /// Wraps a response body.
    pub fn new(
        inner: ResponseBody,
        summary: RequestSummary,
        metrics: Metrics,
        access_log: bool,
    ) -> Self {
        LoggedBody {
            inner,
            sent: 0,
            summary,
            metrics,
            access_log,
        }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sent += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.metrics.add_bytes_served(self.sent);
        if self.access_log {
            let summary = &self.summary;
            eprintln!(
                "{} \"{} {}\" {} {} {:.3}ms",
                summary.client,
                summary.method,
                summary.target,
                summary.status,
                self.sent,
                summary.started.elapsed().as_secs_f64() * 1000.0
            );
        }
    }
}
