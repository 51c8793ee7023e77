//! The gateway connection: BuildKit starts the frontend with stdin/stdout as pipes carrying
//! one HTTP/2 (prior knowledge) connection, on which the frontend is the gRPC client.
//!
//! The pipes are wrapped in tokio's epoll-driven pipe types rather than `tokio::io::stdin`,
//! whose blocking read thread cannot be cancelled and keeps the process from exiting after
//! `Return` (which hangs the whole build).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;
use tonic::transport::{Channel, Endpoint, Uri};

/// A byte stream over two pipes: one to read from, one to write to.
#[derive(Debug)]
pub struct PipeStream {
    reader: pipe::Receiver,
    writer: pipe::Sender,
}

impl PipeStream {
    /// A stream reading `read` and writing `write`. Both must be pipes (FIFOs), and this must
    /// run inside a tokio runtime with I/O enabled.
    pub fn new(read: OwnedFd, write: OwnedFd) -> io::Result<Self> {
        Ok(PipeStream {
            reader: pipe::Receiver::from_owned_fd(read)?,
            writer: pipe::Sender::from_owned_fd(write)?,
        })
    }

    /// The process's stdin and stdout (duplicated, so closing the stream leaves fds 0 and 1
    /// alone).
    pub fn stdio() -> io::Result<Self> {
        PipeStream::new(
            io::stdin().as_fd().try_clone_to_owned()?,
            io::stdout().as_fd().try_clone_to_owned()?,
        )
    }
}

impl AsyncRead for PipeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for PipeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_shutdown(cx)
    }
}

/// Lets a tonic server accept a `PipeStream` as a connection (used by tests that serve a
/// fake gateway over pipes).
impl tonic::transport::server::Connected for PipeStream {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

/// A tonic channel speaking HTTP/2 over `stream`. The stream is handed out once: if the
/// connection breaks, the channel cannot reconnect and its calls fail.
pub async fn channel_over<S>(stream: S) -> Result<Channel, tonic::transport::Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let slot = Arc::new(Mutex::new(Some(stream)));
    // `http://` makes tonic speak h2c with prior knowledge; the authority is never resolved.
    Endpoint::from_static("http://buildkit-gateway")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let taken = slot.lock().ok().and_then(|mut stream| stream.take());
            async move {
                taken.map(TokioIo::new).ok_or_else(|| {
                    io::Error::other(
                        "the gateway connection broke and cannot be reopened: it is a single pipe pair",
                    )
                })
            }
        }))
        .await
}
