//! [`SessionIo`]: a boxed byte stream that first replays the bytes read past an HTTP
//! upgrade's response head.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A bidirectional byte stream (socket, TLS stream, duplex pipe).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Any bidirectional byte stream tonic can serve on (implements `tonic::transport::server::Connected`).
///
/// After an HTTP upgrade the peer may already have sent bytes of the next protocol in the same
/// packet as the `101` head; they are kept and read first.
pub struct SessionIo {
    leftover: Vec<u8>,
    offset: usize,
    inner: Box<dyn Stream>,
}

impl SessionIo {
    /// Wraps a stream that has nothing buffered.
    pub fn new<T>(stream: T) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Self::with_leftover(Vec::new(), stream)
    }

    /// Wraps a stream whose first bytes were already read into `leftover`; reads return them
    /// before reading `stream`.
    pub fn with_leftover<T>(leftover: Vec<u8>, stream: T) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Self {
            leftover,
            offset: 0,
            inner: Box::new(stream),
        }
    }

    pub(crate) fn from_boxed(leftover: Vec<u8>, inner: Box<dyn Stream>) -> Self {
        Self {
            leftover,
            offset: 0,
            inner,
        }
    }
}

impl fmt::Debug for SessionIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionIo")
            .field("leftover_bytes", &(self.leftover.len() - self.offset))
            .finish_non_exhaustive()
    }
}

impl AsyncRead for SessionIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.offset < this.leftover.len() {
            let available = &this.leftover[this.offset..];
            let count = available.len().min(buf.remaining());
            buf.put_slice(&available[..count]);
            this.offset += count;
            if this.offset == this.leftover.len() {
                this.leftover = Vec::new();
                this.offset = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut *this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SessionIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for SessionIo {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn leftover_bytes_come_before_the_stream() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut io = SessionIo::with_leftover(b"early".to_vec(), ours);
        theirs.write_all(b" late").await.unwrap();
        drop(theirs);
        let mut text = String::new();
        io.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "early late");
    }

    #[tokio::test]
    async fn small_reads_take_the_leftover_piece_by_piece() {
        let (ours, theirs) = tokio::io::duplex(64);
        let mut io = SessionIo::with_leftover(b"abc".to_vec(), ours);
        let mut one = [0_u8; 2];
        io.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"ab");
        let mut two = [0_u8; 1];
        io.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"c");
        drop(theirs);
        assert_eq!(io.read(&mut one).await.unwrap(), 0);
    }
}
