//! One authenticated SSH connection per host, shared by every command to that host.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::auth::{SshTarget, authenticate};
use super::command::{CommandOutput, ExitStatus, RemoteCommand};
use super::error::SshError;
use super::known_hosts::{HostKeyCheck, HostKeyPolicy, default_known_hosts_path};

/// Bytes read from a command's input per channel write: large, so a tar stream moves in few
/// big writes while the channel window still applies backpressure.
const INPUT_BUFFER: usize = 1 << 20;
/// The channel window russh advertises for data coming back from the host.
const WINDOW_SIZE: u32 = 8 << 20;
/// Lines of stderr a [`SshError::CommandFailed`] shows.
const STDERR_TAIL_LINES: usize = 20;

/// How to connect: host key policy and file, and the timeouts that turn a dead host or network
/// into an error instead of a hang.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// What to do with unknown host keys.
    pub host_key_policy: HostKeyPolicy,
    /// The `known_hosts` file checked (and appended to under `AcceptNew`).
    pub known_hosts: PathBuf,
    /// Limit for connecting, the key exchange and authentication.
    pub connect_timeout: Duration,
    /// A keepalive is sent after this long without data from the host.
    pub keepalive_interval: Duration,
    /// The connection is dropped after this many unanswered keepalives.
    pub keepalive_max: usize,
}

impl Default for ConnectOptions {
    /// Strict host keys in `~/.ssh/known_hosts`, 30 s to connect, a keepalive every 10 s and
    /// 3 unanswered ones end the connection.
    fn default() -> Self {
        Self {
            host_key_policy: HostKeyPolicy::Strict,
            known_hosts: default_known_hosts_path(),
            connect_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(10),
            keepalive_max: 3,
        }
    }
}

/// An authenticated connection to one host; clones share it. Each command opens a channel
/// on it, so commands to one host may run concurrently over one TCP connection.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    handle: Handle<ClientHandler>,
    target: SshTarget,
    label: String,
}

/// russh's callbacks: the host key check.
pub(crate) struct ClientHandler {
    check: HostKeyCheck,
}

/// The handler's error: russh's, or the host key check's refusal.
#[derive(Debug)]
pub(crate) enum HandlerError {
    Ssh(russh::Error),
    HostKey(Box<SshError>),
}

impl From<russh::Error> for HandlerError {
    fn from(error: russh::Error) -> Self {
        Self::Ssh(error)
    }
}

impl client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(certificate) => {
                PublicKey::new(certificate.public_key().clone(), "")
            }
        };
        self.check
            .check(&key)
            .map(|()| true)
            .map_err(|e| HandlerError::HostKey(Box::new(e)))
    }
}

impl Connection {
    /// Connects, checks the host key and authenticates, all within
    /// [`ConnectOptions::connect_timeout`].
    pub async fn connect(target: &SshTarget, options: &ConnectOptions) -> Result<Self, SshError> {
        let label = target.label();
        let started = Instant::now();
        let handle = tokio::time::timeout(options.connect_timeout, open(target, options))
            .await
            .map_err(|_| SshError::Timeout {
                host: label.clone(),
                after: options.connect_timeout,
            })??;
        tracing::info!(
            target: "deploy::ssh",
            host = %label,
            duration_ms = duration_ms(started.elapsed()),
            "connected"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                handle,
                target: target.clone(),
                label,
            }),
        })
    }

    /// The host this connection reaches.
    pub fn target(&self) -> &SshTarget {
        &self.inner.target
    }

    /// `user@ip:port`.
    pub fn host(&self) -> &str {
        &self.inner.label
    }

    /// Whether the connection has ended (the host closed it, or keepalives went unanswered).
    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// Runs the command with an empty stdin; a non-zero exit is not an error here (see
    /// [`Self::run_checked`]).
    pub async fn run(&self, command: &RemoteCommand) -> Result<CommandOutput, SshError> {
        self.execute(command, None::<tokio::io::Empty>).await
    }

    /// Runs the command and turns a non-zero exit into [`SshError::CommandFailed`].
    pub async fn run_checked(&self, command: &RemoteCommand) -> Result<CommandOutput, SshError> {
        let output = self.run(command).await?;
        self.checked(command, output)
    }

    /// Runs the command with `input` streamed to its stdin (in 1 MiB writes, held back by
    /// the channel window while the host is slower), then end-of-file.
    pub async fn run_with_input<R: AsyncRead + Unpin + Send>(
        &self,
        command: &RemoteCommand,
        input: R,
    ) -> Result<CommandOutput, SshError> {
        self.execute(command, Some(input)).await
    }

    /// [`Self::run_with_input`], with a non-zero exit turned into [`SshError::CommandFailed`].
    pub async fn run_with_input_checked<R: AsyncRead + Unpin + Send>(
        &self,
        command: &RemoteCommand,
        input: R,
    ) -> Result<CommandOutput, SshError> {
        let output = self.run_with_input(command, input).await?;
        self.checked(command, output)
    }

    /// Ends the connection politely.
    pub async fn close(&self) {
        let _ = self
            .inner
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    fn checked(
        &self,
        command: &RemoteCommand,
        output: CommandOutput,
    ) -> Result<CommandOutput, SshError> {
        if output.success() {
            Ok(output)
        } else {
            Err(SshError::CommandFailed {
                host: self.inner.label.clone(),
                command: command.summary(),
                stderr_tail: output.stderr_tail(STDERR_TAIL_LINES),
                status: output.status,
            })
        }
    }

    async fn execute<R: AsyncRead + Unpin + Send>(
        &self,
        command: &RemoteCommand,
        input: Option<R>,
    ) -> Result<CommandOutput, SshError> {
        let host = &self.inner.label;
        let summary = command.summary();
        let line = command
            .command_line(!self.inner.target.is_root())
            .map_err(|name| SshError::InvalidEnvName {
                host: host.clone(),
                name,
                command: summary.clone(),
            })?;
        tracing::debug!(target: "deploy::ssh", host = %host, command = %command.redacted(), "running");
        let started = Instant::now();
        let channel_error = |step, source| SshError::Channel {
            host: host.clone(),
            step,
            command: summary.clone(),
            source: Box::new(source),
        };
        let channel = self
            .inner
            .handle
            .channel_open_session()
            .await
            .map_err(|e| channel_error("opening a session channel", e))?;
        channel
            .exec(true, line)
            .await
            .map_err(|e| channel_error("starting the command", e))?;
        let (mut reader, writer) = channel.split();
        let sent = AtomicU64::new(0);

        let send = async {
            if let Some(input) = input {
                let mut input = BufReader::with_capacity(INPUT_BUFFER, input);
                let mut channel_input = writer.make_writer();
                loop {
                    let chunk = input.fill_buf().await.map_err(SendFailure::Input)?;
                    if chunk.is_empty() {
                        break;
                    }
                    let length = chunk.len();
                    channel_input
                        .write_all(chunk)
                        .await
                        .map_err(|_| SendFailure::Channel)?;
                    input.consume(length);
                    sent.fetch_add(length as u64, Ordering::Relaxed);
                }
                channel_input
                    .flush()
                    .await
                    .map_err(|_| SendFailure::Channel)?;
            }
            writer.eof().await.map_err(|_| SendFailure::Channel)
        };
        let receive = async {
            let mut status = None;
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            while let Some(message) = reader.wait().await {
                match message {
                    ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => {
                        status = Some(ExitStatus::Code(exit_status));
                    }
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        status = Some(ExitStatus::Signal(format!("{signal_name:?}")));
                    }
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            (status, stdout, stderr)
        };
        tokio::pin!(send);
        tokio::pin!(receive);
        let mut send_result = None;
        let (status, stdout, stderr) = loop {
            tokio::select! {
                result = &mut send, if send_result.is_none() => send_result = Some(result),
                received = &mut receive => break received,
            }
        };
        let stdin_bytes = sent.load(Ordering::Relaxed);
        let duration = started.elapsed();
        if let Some(Err(SendFailure::Input(source))) = send_result {
            return Err(SshError::Input {
                host: host.clone(),
                command: summary,
                source,
            });
        }
        let Some(status) = status else {
            tracing::warn!(
                target: "deploy::ssh",
                host = %host,
                command = %summary,
                duration_ms = duration_ms(duration),
                stdin_bytes,
                "connection lost"
            );
            return Err(SshError::ConnectionLost {
                host: host.clone(),
                command: summary,
                stdin_bytes,
            });
        };
        tracing::info!(
            target: "deploy::ssh",
            host = %host,
            command = %summary,
            status = %status,
            duration_ms = duration_ms(duration),
            stdin_bytes,
            "ran"
        );
        Ok(CommandOutput {
            status,
            stdout,
            stderr,
            duration,
            stdin_bytes,
        })
    }
}

/// Why streaming a command's input stopped early.
enum SendFailure {
    /// Reading the local input failed: the command must not count as successful.
    Input(std::io::Error),
    /// The channel closed: the receiving side tells what happened.
    Channel,
}

/// TCP, key exchange with the host key check, and authentication.
async fn open(
    target: &SshTarget,
    options: &ConnectOptions,
) -> Result<Handle<ClientHandler>, SshError> {
    let label = target.label();
    let stream = TcpStream::connect((target.addr, target.port))
        .await
        .map_err(|source| SshError::Connect {
            host: label.clone(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let config = client::Config {
        window_size: WINDOW_SIZE,
        keepalive_interval: Some(options.keepalive_interval),
        keepalive_max: options.keepalive_max,
        // Bounds a write to a host that stopped reading (its network is gone): keepalives
        // cannot be sent while the session waits on that write.
        inactivity_timeout: Some(
            options.keepalive_interval
                * u32::try_from(options.keepalive_max + 1).unwrap_or(u32::MAX),
        ),
        nodelay: true,
        ..client::Config::default()
    };
    let handler = ClientHandler {
        check: HostKeyCheck {
            policy: options.host_key_policy,
            known_hosts: options.known_hosts.clone(),
            host: target.addr.to_string(),
            port: target.port,
            label: label.clone(),
        },
    };
    let mut handle = client::connect_stream(Arc::new(config), stream, handler)
        .await
        .map_err(|e| match e {
            HandlerError::HostKey(error) => *error,
            HandlerError::Ssh(source) => SshError::Handshake {
                host: label.clone(),
                source: Box::new(source),
            },
        })?;
    authenticate(&mut handle, target).await?;
    Ok(handle)
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
