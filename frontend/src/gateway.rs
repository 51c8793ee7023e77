//! A typed wrapper around BuildKit's `LLBBridge` gateway API (as BuildKit v0.8 serves it):
//! ping, solve, file access on solved refs, image config resolution and the final `Return`.

use std::fmt;

use bollard_buildkit_proto::fsutil::types::Stat;
use bollard_buildkit_proto::google::rpc::Status as RpcStatus;
use bollard_buildkit_proto::moby::buildkit::v1::frontend::{
    self as gw, FileRange, PingRequest, ReadDirRequest, ReadFileRequest, ResolveImageConfigRequest,
    ReturnRequest, SolveRequest, StatFileRequest, llb_bridge_client::LlbBridgeClient, result,
};
use llb::caps::Caps;
use llb::pb;
use llb::source::ResolveMode;
use prost::Message as _;
use tonic::Code;
use tonic::transport::Channel;

use crate::stdio::{PipeStream, channel_over};

/// The largest response we accept (tonic's default is 4 MiB; solve results echo definitions).
pub const MAX_RESPONSE_SIZE: usize = 64 << 20;

/// The largest request BuildKit's gateway server accepts (grpc-go's default receive limit).
pub const MAX_REQUEST_SIZE: usize = 4 << 20;

/// How many bytes one `ReadFile` call asks for; larger files are read in several calls.
pub const READ_CHUNK: usize = 4 << 20;

/// The `google.rpc.Code` BuildKit reports for a frontend's error (`Unknown`).
const RETURN_ERROR_CODE: i32 = 2;

/// A result the gateway solved, named by its id. The empty id is BuildKit's empty
/// filesystem (a `scratch` result): it has no files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefId(String);

impl RefId {
    /// The ref with this id.
    pub fn new(id: impl Into<String>) -> Self {
        RefId(id.into())
    }

    /// The id as BuildKit knows it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the empty filesystem.
    pub fn is_scratch(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for RefId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_scratch() {
            f.write_str("<scratch>")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// What the daemon supports, from `Ping`.
#[derive(Debug, Clone, Default)]
pub struct Pong {
    /// LLB caps (which ops and op fields the solver understands).
    pub llb_caps: Caps,
    /// Gateway API caps (which RPCs and request fields the gateway understands).
    pub gateway_caps: Caps,
    /// The platforms of every worker, in the daemon's order; the first is the default.
    pub worker_platforms: Vec<pb::Platform>,
}

/// An image's config as the daemon resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The manifest digest (`sha256:…`), or empty when the daemon resolved the reference
    /// from its local store without one.
    pub digest: String,
    /// The image config JSON.
    pub config: Vec<u8>,
}

/// The gateway cap for solves that do their work at once ([`Gateway::solve_now`]).
pub const EVALUATE_CAP: &str = "gateway.solve.evaluate";

/// A failed gateway call.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Stdin/stdout could not be used as the gateway connection.
    #[error(
        "cannot use stdin/stdout as the BuildKit gateway connection: {0}; this mode only works when BuildKit starts the frontend (stdin and stdout must be pipes)"
    )]
    Stdio(#[source] std::io::Error),
    /// The HTTP/2 connection could not be set up.
    #[error("cannot open the gRPC connection to the BuildKit gateway: {0}")]
    Connect(#[source] tonic::transport::Error),
    /// An RPC failed.
    #[error(
        "BuildKit gateway {rpc}{} failed: {}",
        spaced(subject),
        describe(status)
    )]
    Rpc {
        /// The RPC name (`ReadFile`, `Solve`, …).
        rpc: &'static str,
        /// What it was about (path and ref, image reference).
        subject: String,
        /// The status the gateway answered.
        status: tonic::Status,
    },
    /// A request is larger than the gateway accepts.
    #[error(
        "BuildKit gateway {rpc} request is {size} bytes, more than the {MAX_REQUEST_SIZE} bytes BuildKit accepts; {hint}"
    )]
    TooLarge {
        /// The RPC name.
        rpc: &'static str,
        /// The encoded request size.
        size: usize,
        /// What usually makes it large.
        hint: &'static str,
    },
    /// Solve answered something other than one ref.
    #[error(
        "BuildKit gateway Solve returned {found} instead of a single result; the frontend solves one platform at a time"
    )]
    UnexpectedResult {
        /// What came back.
        found: &'static str,
    },
}

impl GatewayError {
    /// Whether the call failed because the path does not exist. BuildKit v0.8 sends
    /// missing files as `Unknown` with the OS error text, so the message is checked too.
    pub fn is_not_found(&self) -> bool {
        match self {
            GatewayError::Rpc { status, .. } => {
                status.code() == Code::NotFound
                    || status.message().contains("no such file or directory")
            }
            _ => false,
        }
    }
}

fn spaced(subject: &str) -> String {
    if subject.is_empty() {
        String::new()
    } else {
        format!(" {subject}")
    }
}

fn describe(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{} ({:?})", status.message(), status.code())
    }
}

/// A client of the gateway. Cloning is cheap and clones share the connection.
#[derive(Debug, Clone)]
pub struct Gateway {
    client: LlbBridgeClient<Channel>,
}

impl Gateway {
    /// A gateway over an established channel.
    pub fn new(channel: Channel) -> Self {
        Gateway {
            client: LlbBridgeClient::new(channel).max_decoding_message_size(MAX_RESPONSE_SIZE),
        }
    }

    /// The gateway BuildKit serves on this process's stdin/stdout. Must run inside a tokio
    /// runtime with I/O enabled.
    pub async fn connect_stdio() -> Result<Self, GatewayError> {
        let stream = PipeStream::stdio().map_err(GatewayError::Stdio)?;
        let channel = channel_over(stream).await.map_err(GatewayError::Connect)?;
        Ok(Gateway::new(channel))
    }

    /// Asks the daemon what it supports.
    pub async fn ping(&self) -> Result<Pong, GatewayError> {
        let pong = self
            .client
            .clone()
            .ping(PingRequest {})
            .await
            .map_err(|status| rpc_error("Ping", String::new(), status))?
            .into_inner();
        Ok(Pong {
            llb_caps: Caps::from_pong(&pong.llb_caps),
            gateway_caps: Caps::from_pong(&pong.frontend_api_caps),
            worker_platforms: pong
                .workers
                .into_iter()
                .flat_map(|worker| worker.platforms)
                .collect(),
        })
    }

    /// Solves `definition` and returns its (single) result. Solving is lazy: the work happens
    /// when the result is read or exported.
    pub async fn solve(&self, definition: pb::Definition) -> Result<RefId, GatewayError> {
        self.solve_request(definition, false).await
    }

    /// [`Gateway::solve`], doing the work before answering, so that its errors come back
    /// here (the daemon needs the gateway cap [`EVALUATE_CAP`]).
    pub async fn solve_now(&self, definition: pb::Definition) -> Result<RefId, GatewayError> {
        self.solve_request(definition, true).await
    }

    async fn solve_request(
        &self,
        definition: pb::Definition,
        evaluate: bool,
    ) -> Result<RefId, GatewayError> {
        let request = SolveRequest {
            definition: Some(definition),
            allow_result_return: true,
            allow_result_array_ref: true,
            evaluate,
            ..SolveRequest::default()
        };
        check_size(
            "Solve",
            request.encoded_len(),
            "inline file contents in the Kubefile make the build definition large; COPY large files from the context instead",
        )?;
        let response = self
            .client
            .clone()
            .solve(request)
            .await
            .map_err(|status| rpc_error("Solve", String::new(), status))?
            .into_inner();
        match response.result.and_then(|found| found.result) {
            Some(result::Result::Ref(found)) => Ok(RefId(found.id)),
            Some(result::Result::RefDeprecated(id)) => Ok(RefId(id)),
            Some(result::Result::Refs(_) | result::Result::RefsDeprecated(_)) => {
                Err(GatewayError::UnexpectedResult {
                    found: "a map of results",
                })
            }
            None => Ok(RefId(response.r#ref)),
        }
    }

    /// The whole file at `path` in `reference`, read in chunks of [`READ_CHUNK`] bytes.
    pub async fn read_file(&self, reference: &RefId, path: &str) -> Result<Vec<u8>, GatewayError> {
        let mut contents = Vec::new();
        loop {
            let chunk = self
                .read_file_range(reference, path, contents.len() as u64, READ_CHUNK)
                .await?;
            let short = chunk.len() < READ_CHUNK;
            contents.extend_from_slice(&chunk);
            if short {
                return Ok(contents);
            }
        }
    }

    /// Up to `length` bytes of the file at `path` from `offset`; fewer only at the end of
    /// the file.
    pub async fn read_file_range(
        &self,
        reference: &RefId,
        path: &str,
        offset: u64,
        length: usize,
    ) -> Result<Vec<u8>, GatewayError> {
        if reference.is_scratch() {
            return Err(scratch_error("ReadFile", path));
        }
        let request = ReadFileRequest {
            r#ref: reference.0.clone(),
            file_path: path.to_owned(),
            range: Some(FileRange {
                offset: i64::try_from(offset).unwrap_or(i64::MAX),
                length: i64::try_from(length).unwrap_or(i64::MAX),
            }),
            ..ReadFileRequest::default()
        };
        Ok(self
            .client
            .clone()
            .read_file(request)
            .await
            .map_err(|status| rpc_error("ReadFile", file_subject(reference, path), status))?
            .into_inner()
            .data)
    }

    /// The entries directly inside the directory at `path` (BuildKit does not recurse),
    /// with Go `os.FileMode` bits as their modes.
    pub async fn read_dir(&self, reference: &RefId, path: &str) -> Result<Vec<Stat>, GatewayError> {
        if reference.is_scratch() {
            return Err(scratch_error("ReadDir", path));
        }
        let request = ReadDirRequest {
            r#ref: reference.0.clone(),
            dir_path: path.to_owned(),
            ..ReadDirRequest::default()
        };
        Ok(self
            .client
            .clone()
            .read_dir(request)
            .await
            .map_err(|status| rpc_error("ReadDir", file_subject(reference, path), status))?
            .into_inner()
            .entries)
    }

    /// The entry at `path` (symlinks followed by the daemon), or `None` when there is none.
    pub async fn stat(&self, reference: &RefId, path: &str) -> Result<Option<Stat>, GatewayError> {
        if reference.is_scratch() {
            return Ok(None);
        }
        let request = StatFileRequest {
            r#ref: reference.0.clone(),
            path: path.to_owned(),
            ..StatFileRequest::default()
        };
        match self.client.clone().stat_file(request).await {
            Ok(response) => Ok(response.into_inner().stat),
            Err(status) => {
                let error = rpc_error("StatFile", file_subject(reference, path), status);
                if error.is_not_found() {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// Resolves `reference` (normalized, such as `docker.io/library/busybox:latest`) to its
    /// manifest digest and config for `platform` (the daemon's default when `None`).
    pub async fn resolve_image_config(
        &self,
        reference: &str,
        platform: Option<&pb::Platform>,
        resolve_mode: ResolveMode,
    ) -> Result<ResolvedImage, GatewayError> {
        let request = ResolveImageConfigRequest {
            r#ref: reference.to_owned(),
            platform: platform.cloned(),
            resolve_mode: resolve_mode.attr().unwrap_or("default").to_owned(),
            log_name: format!("[internal] load metadata for {reference}"),
            ..ResolveImageConfigRequest::default()
        };
        let response = self
            .client
            .clone()
            .resolve_image_config(request)
            .await
            .map_err(|status| rpc_error("ResolveImageConfig", format!("of {reference}"), status))?
            .into_inner();
        Ok(ResolvedImage {
            digest: response.digest,
            config: response.config,
        })
    }

    /// Hands the build result to BuildKit: `reference` with its exporter `metadata` (such as
    /// `containerimage.config`). Only one `Return` per run is accepted.
    pub async fn return_result(
        &self,
        reference: &RefId,
        metadata: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<(), GatewayError> {
        let request = ReturnRequest {
            result: Some(gw::Result {
                metadata: metadata.into_iter().collect(),
                result: Some(result::Result::Ref(gw::Ref {
                    id: reference.0.clone(),
                    def: None,
                })),
                ..gw::Result::default()
            }),
            error: None,
        };
        check_size(
            "Return",
            request.encoded_len(),
            "the image config (labels, environment) is too large",
        )?;
        self.send_return(request).await
    }

    /// Fails the build with `message`, which BuildKit shows the user as
    /// `rpc error: code = Unknown desc = <message>`. Only one `Return` per run is accepted.
    pub async fn return_error(&self, message: &str) -> Result<(), GatewayError> {
        // Keep the request under the gateway's limit whatever the message.
        let limit = MAX_REQUEST_SIZE / 2;
        let mut end = message.len().min(limit);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let request = ReturnRequest {
            result: None,
            error: Some(RpcStatus {
                code: RETURN_ERROR_CODE,
                message: message[..end].to_owned(),
                details: Vec::new(),
            }),
        };
        self.send_return(request).await
    }

    async fn send_return(&self, request: ReturnRequest) -> Result<(), GatewayError> {
        self.client
            .clone()
            .r#return(request)
            .await
            .map_err(|status| rpc_error("Return", String::new(), status))?;
        Ok(())
    }
}

fn rpc_error(rpc: &'static str, subject: String, status: tonic::Status) -> GatewayError {
    GatewayError::Rpc {
        rpc,
        subject,
        status,
    }
}

fn file_subject(reference: &RefId, path: &str) -> String {
    format!("of `{path}` in result {reference}")
}

fn scratch_error(rpc: &'static str, path: &str) -> GatewayError {
    rpc_error(
        rpc,
        file_subject(&RefId::new(""), path),
        tonic::Status::not_found(format!(
            "{path}: no such file or directory (the result is empty)"
        )),
    )
}

fn check_size(rpc: &'static str, size: usize, hint: &'static str) -> Result<(), GatewayError> {
    if size > MAX_REQUEST_SIZE {
        Err(GatewayError::TooLarge { rpc, size, hint })
    } else {
        Ok(())
    }
}
