//! The session inside `Control.Session` (standalone buildkitd, or dockerd's `/grpc`): the
//! stream's `BytesMessage`s carry the raw HTTP/2 bytes of the session connection both ways,
//! without other framing (BuildKit v0.8 `session/grpchijack/dial.go`). The session server runs
//! on one end of an in-memory pipe; two pumps copy between the other end and the stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard_buildkit_proto::moby::buildkit::v1::BytesMessage;
use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use tokio::io::DuplexStream;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::Channel;

use super::{Result, RunningSession, Session, SessionError};

/// Largest message we send: well under the 4 MiB a Go gRPC server accepts by default.
const MAX_CHUNK: usize = 256 << 10;
/// Bytes buffered in the in-memory pipe each way.
const PIPE_BUFFER: usize = 1 << 20;
/// Messages queued towards the stream.
const OUTGOING_QUEUE: usize = 8;

/// Starts the session inside a `Control.Session` stream opened on `client`.
pub(super) fn serve(session: Session, client: ControlClient<Channel>) -> RunningSession {
    let headers = session.headers();
    let (server_end, tunnel_end) = tokio::io::duplex(PIPE_BUFFER);
    let (from_server, to_server) = tokio::io::split(tunnel_end);
    let (outgoing, outgoing_queue) = mpsc::channel(OUTGOING_QUEUE);
    let closing = Arc::new(AtomicBool::new(false));

    let (stop, stopped) = oneshot::channel();
    let server = tokio::spawn(session.run_server(server_end, stopped));
    let upstream = tokio::spawn(pump_to_stream(from_server, outgoing));
    let downstream = tokio::spawn(run_stream(
        client,
        headers,
        ReceiverStream::new(outgoing_queue),
        to_server,
        Arc::clone(&closing),
    ));
    RunningSession {
        stop: Some(stop),
        closing,
        tasks: vec![server, downstream, upstream],
    }
}

/// Copies what the session server writes into `BytesMessage`s of at most [`MAX_CHUNK`]
/// bytes. Ends when the server lets go of the pipe (or the stream no longer takes
/// messages); dropping `outgoing` then half-closes the stream (CloseSend).
async fn pump_to_stream(
    mut from_server: ReadHalf<DuplexStream>,
    outgoing: mpsc::Sender<BytesMessage>,
) -> Result<()> {
    let mut buffer = vec![0; MAX_CHUNK];
    loop {
        let read = from_server
            .read(&mut buffer)
            .await
            .map_err(|error| SessionError::Tunnel(format!("reading the session: {error}")))?;
        if read == 0 {
            return Ok(());
        }
        let message = BytesMessage {
            data: buffer[..read].to_vec(),
        };
        if outgoing.send(message).await.is_err() {
            return Ok(());
        }
    }
}

/// Opens the stream with the session headers as lower-cased metadata and copies every
/// message BuildKit sends to the session server. When the stream ends (or fails) the pipe
/// towards the server is closed, which ends the server's connection and so the session.
async fn run_stream(
    mut client: ControlClient<Channel>,
    headers: Vec<(String, String)>,
    outgoing: ReceiverStream<BytesMessage>,
    mut to_server: WriteHalf<DuplexStream>,
    closing: Arc<AtomicBool>,
) -> Result<()> {
    let result = copy_stream(&mut client, headers, outgoing, &mut to_server, &closing).await;
    // The server may be gone already; then there is nothing left to close.
    let _ = to_server.shutdown().await;
    result
}

async fn copy_stream(
    client: &mut ControlClient<Channel>,
    headers: Vec<(String, String)>,
    outgoing: ReceiverStream<BytesMessage>,
    to_server: &mut WriteHalf<DuplexStream>,
    closing: &AtomicBool,
) -> Result<()> {
    let mut request = tonic::Request::new(outgoing);
    for (name, value) in headers {
        let key = AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(
            |error| SessionError::Header {
                name: name.clone(),
                reason: error.to_string(),
            },
        )?;
        let value =
            AsciiMetadataValue::try_from(value.as_str()).map_err(|error| SessionError::Header {
                name: name.clone(),
                reason: error.to_string(),
            })?;
        request.metadata_mut().append(key, value);
    }
    let mut incoming = client
        .session(request)
        .await
        .map_err(|status| SessionError::Tunnel(describe(&status)))?
        .into_inner();
    loop {
        match incoming.message().await {
            Ok(Some(message)) => {
                if to_server.write_all(&message.data).await.is_err() {
                    // The session server stopped (closed, or its connection ended).
                    return Ok(());
                }
            }
            Ok(None) => return Ok(()),
            // Once we are closing, BuildKit ending the stream abruptly does not matter.
            Err(_) if closing.load(Ordering::SeqCst) => return Ok(()),
            Err(status) => return Err(SessionError::Tunnel(describe(&status))),
        }
    }
}

/// `Unimplemented: message` (or the code's description when BuildKit sent no message).
fn describe(status: &tonic::Status) -> String {
    let code = status.code();
    if status.message().is_empty() {
        format!("{code:?}: {}", code.description())
    } else {
        format!("{code:?}: {}", status.message())
    }
}
