//! A fake BuildKit gateway (`LLBBridge` server) for tests, served over a pair of OS pipes
//! exactly as BuildKit serves a frontend. It holds an in-memory file tree per ref, answers
//! the file RPCs the way BuildKit v0.8 does (ReadDir is not recursive, missing paths are
//! `Unknown` errors saying "no such file or directory"), and records what it was asked.
#![allow(
    dead_code,
    reason = "each test binary uses the part of the fake it needs"
)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use bollard_buildkit_proto::fsutil::types::Stat;
use bollard_buildkit_proto::moby::buildkit::v1::apicaps::ApiCap;
use bollard_buildkit_proto::moby::buildkit::v1::frontend::{
    self as gw, PingRequest, PongResponse, ReadDirRequest, ReadFileRequest,
    ResolveImageConfigRequest, ResolveImageConfigResponse, ReturnRequest, SolveRequest,
    SolveResponse, StatFileRequest, llb_bridge_server::LlbBridge,
    llb_bridge_server::LlbBridgeServer, result,
};
use bollard_buildkit_proto::moby::buildkit::v1::types::WorkerRecord;
use frontend::gateway::Gateway;
use frontend::stdio::{PipeStream, channel_over};
use frontend::view::{GO_MODE_DIR, GO_MODE_SYMLINK};
use llb::pb;
use tonic::{Request, Response, Status};

/// One entry of a fake filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeEntry {
    /// A regular file.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symlink to this target (relative to its directory, or absolute in the ref).
    Symlink(String),
}

/// One RPC the fake answered: its name, the ref and the path (empty when not applicable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `ReadFile`, `ReadDir`, `StatFile`, …
    pub rpc: &'static str,
    /// The ref id.
    pub reference: String,
    /// The path as sent.
    pub path: String,
}

/// Everything the fake knows and has seen.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Files per ref id: normalized path (no leading `/`) to entry; parents are added.
    pub refs: HashMap<String, BTreeMap<String, FakeEntry>>,
    /// Image configs by reference: (digest, config).
    pub images: HashMap<String, (String, Vec<u8>)>,
    /// The LLB caps Ping reports.
    pub llb_caps: Vec<ApiCap>,
    /// The gateway caps Ping reports.
    pub gateway_caps: Vec<ApiCap>,
    /// The workers Ping reports.
    pub workers: Vec<WorkerRecord>,
    /// The ref ids the next Solves answer, in order.
    pub solve_results: VecDeque<String>,
    /// Every Solve request.
    pub solves: Vec<SolveRequest>,
    /// Every ResolveImageConfig request.
    pub image_requests: Vec<ResolveImageConfigRequest>,
    /// Every ReadFile request.
    pub reads: Vec<ReadFileRequest>,
    /// The accepted Return (only one is accepted, as in BuildKit).
    pub returned: Option<ReturnRequest>,
    /// The file RPCs answered, in order.
    pub calls: Vec<Call>,
}

/// The fake gateway. Clones share the state.
#[derive(Debug, Clone, Default)]
pub struct FakeGateway {
    state: Arc<Mutex<FakeState>>,
}

/// An enabled cap with this id.
pub fn cap(id: &str) -> ApiCap {
    ApiCap {
        id: id.to_owned(),
        enabled: true,
        ..ApiCap::default()
    }
}

/// `os/arch` as a proto platform.
pub fn platform(os: &str, architecture: &str) -> pb::Platform {
    pb::Platform {
        os: os.to_owned(),
        architecture: architecture.to_owned(),
        ..pb::Platform::default()
    }
}

impl FakeGateway {
    /// A fake with no refs, caps or workers.
    pub fn new() -> Self {
        FakeGateway::default()
    }

    /// Adds `entry` at `path` in `reference` (creating the ref and the parent directories).
    #[must_use]
    pub fn with_entry(self, reference: &str, path: &str, entry: FakeEntry) -> Self {
        {
            let mut state = self.state();
            let tree = state.refs.entry(reference.to_owned()).or_default();
            let path = normalize(path);
            let mut parent = path.as_str();
            while let Some((dir, _)) = parent.rsplit_once('/') {
                tree.insert(dir.to_owned(), FakeEntry::Dir);
                parent = dir;
            }
            if !path.is_empty() {
                tree.insert(path, entry);
            }
        }
        self
    }

    /// Adds a file.
    #[must_use]
    pub fn with_file(self, reference: &str, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.with_entry(reference, path, FakeEntry::File(contents.into()))
    }

    /// Adds an (empty) ref: a root directory with nothing in it.
    #[must_use]
    pub fn with_ref(self, reference: &str) -> Self {
        self.with_entry(reference, "", FakeEntry::Dir)
    }

    /// Adds an image config for ResolveImageConfig.
    #[must_use]
    pub fn with_image(self, reference: &str, digest: &str, config: &[u8]) -> Self {
        self.state()
            .images
            .insert(reference.to_owned(), (digest.to_owned(), config.to_vec()));
        self
    }

    /// Sets the caps Ping reports.
    #[must_use]
    pub fn with_caps(self, llb_caps: Vec<ApiCap>, gateway_caps: Vec<ApiCap>) -> Self {
        {
            let mut state = self.state();
            state.llb_caps = llb_caps;
            state.gateway_caps = gateway_caps;
        }
        self
    }

    /// Adds a worker with these platforms.
    #[must_use]
    pub fn with_worker(self, id: &str, platforms: Vec<pb::Platform>) -> Self {
        self.state().workers.push(WorkerRecord {
            id: id.to_owned(),
            platforms,
            ..WorkerRecord::default()
        });
        self
    }

    /// Queues the ref id the next Solve answers.
    #[must_use]
    pub fn with_solve_result(self, reference: &str) -> Self {
        self.state().solve_results.push_back(reference.to_owned());
        self
    }

    /// The state, to inspect what was asked.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many times `rpc` was answered.
    pub fn count(&self, rpc: &str) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|call| call.rpc == rpc)
            .count()
    }

    /// Serves the fake over a fresh pipe pair on the current runtime and returns a client
    /// connected to it through the frontend's own transport.
    pub async fn start(&self) -> Gateway {
        let (to_server_read, to_server_write) = std::io::pipe().expect("pipe");
        let (to_client_read, to_client_write) = std::io::pipe().expect("pipe");
        let server_io =
            PipeStream::new(to_server_read.into(), to_client_write.into()).expect("server pipes");
        let client_io =
            PipeStream::new(to_client_read.into(), to_server_write.into()).expect("client pipes");
        // The incoming stream must stay open: tonic stops serving when it ends.
        let incoming = tokio_stream::StreamExt::chain(
            tokio_stream::iter([Ok::<_, std::io::Error>(server_io)]),
            tokio_stream::pending(),
        );
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(LlbBridgeServer::new(self.clone()))
                .serve_with_incoming(incoming),
        );
        Gateway::new(channel_over(client_io).await.expect("channel"))
    }

    fn record(&self, rpc: &'static str, reference: &str, path: &str) {
        self.state().calls.push(Call {
            rpc,
            reference: reference.to_owned(),
            path: path.to_owned(),
        });
    }

    /// The entry at `path` in `reference` with symlinks followed (as BuildKit's scoped path
    /// resolution does), and its normalized path.
    fn resolve(&self, reference: &str, path: &str) -> Result<(String, FakeEntry), Status> {
        let state = self.state();
        let tree = state
            .refs
            .get(reference)
            .ok_or_else(|| Status::unknown(format!("no such ref: {reference}")))?;
        let mut current = normalize(path);
        for _ in 0..16 {
            let entry = if current.is_empty() {
                FakeEntry::Dir
            } else {
                tree.get(&current).cloned().ok_or_else(|| {
                    Status::unknown(format!(
                        "lstat /var/lib/buildkit/ref/{current}: no such file or directory"
                    ))
                })?
            };
            match entry {
                FakeEntry::Symlink(target) => {
                    current = if target.starts_with('/') {
                        normalize(&target)
                    } else {
                        let parent = current.rsplit_once('/').map_or("", |(dir, _)| dir);
                        normalize(&format!("{parent}/{target}"))
                    };
                }
                other => return Ok((current, other)),
            }
        }
        Err(Status::unknown(format!(
            "{path}: too many levels of symbolic links"
        )))
    }
}

/// A path relative to the ref root, `/`-separated, without `.` parts or a leading `/`.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn stat_of(path: &str, entry: &FakeEntry) -> Stat {
    let (mode, size, linkname) = match entry {
        FakeEntry::File(bytes) => (0o644, i64::try_from(bytes.len()).unwrap_or(i64::MAX), ""),
        FakeEntry::Dir => (GO_MODE_DIR | 0o755, 0, ""),
        FakeEntry::Symlink(target) => (GO_MODE_SYMLINK | 0o777, 0, target.as_str()),
    };
    Stat {
        path: path.to_owned(),
        mode,
        size,
        linkname: linkname.to_owned(),
        ..Stat::default()
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl LlbBridge for FakeGateway {
    async fn resolve_image_config(
        &self,
        request: Request<ResolveImageConfigRequest>,
    ) -> Answer<ResolveImageConfigResponse> {
        let request = request.into_inner();
        let mut state = self.state();
        state.image_requests.push(request.clone());
        let (digest, config) = state
            .images
            .get(&request.r#ref)
            .cloned()
            .ok_or_else(|| Status::unknown(format!("{}: not found", request.r#ref)))?;
        Ok(Response::new(ResolveImageConfigResponse {
            digest,
            config,
            ..ResolveImageConfigResponse::default()
        }))
    }

    async fn resolve_source_meta(
        &self,
        _: Request<gw::ResolveSourceMetaRequest>,
    ) -> Answer<gw::ResolveSourceMetaResponse> {
        Err(Status::unimplemented("not in BuildKit v0.8"))
    }

    async fn solve(&self, request: Request<SolveRequest>) -> Answer<SolveResponse> {
        let mut state = self.state();
        state.solves.push(request.into_inner());
        let id = state
            .solve_results
            .pop_front()
            .ok_or_else(|| Status::unknown("fake gateway: no solve result queued"))?;
        Ok(Response::new(SolveResponse {
            result: Some(gw::Result {
                result: Some(result::Result::Ref(gw::Ref { id, def: None })),
                ..gw::Result::default()
            }),
            ..SolveResponse::default()
        }))
    }

    async fn read_file(&self, request: Request<ReadFileRequest>) -> Answer<gw::ReadFileResponse> {
        let request = request.into_inner();
        self.record("ReadFile", &request.r#ref, &request.file_path);
        self.state().reads.push(request.clone());
        let (_, entry) = self.resolve(&request.r#ref, &request.file_path)?;
        let FakeEntry::File(bytes) = entry else {
            return Err(Status::unknown(format!(
                "read {}: is a directory",
                request.file_path
            )));
        };
        let data = match request.range {
            None => bytes,
            Some(range) => {
                let start = usize::try_from(range.offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start
                    .saturating_add(usize::try_from(range.length).unwrap_or(0))
                    .min(bytes.len());
                bytes[start..end].to_vec()
            }
        };
        Ok(Response::new(gw::ReadFileResponse { data }))
    }

    async fn read_dir(&self, request: Request<ReadDirRequest>) -> Answer<gw::ReadDirResponse> {
        let request = request.into_inner();
        self.record("ReadDir", &request.r#ref, &request.dir_path);
        let (dir, entry) = self.resolve(&request.r#ref, &request.dir_path)?;
        if entry != FakeEntry::Dir {
            // BuildKit walks a file root without reporting anything.
            return Ok(Response::new(gw::ReadDirResponse::default()));
        }
        let state = self.state();
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let entries = state.refs[&request.r#ref]
            .iter()
            .filter_map(|(path, entry)| {
                let name = path.strip_prefix(&prefix)?;
                (!name.is_empty() && !name.contains('/')).then(|| stat_of(name, entry))
            })
            .collect();
        Ok(Response::new(gw::ReadDirResponse { entries }))
    }

    async fn stat_file(&self, request: Request<StatFileRequest>) -> Answer<gw::StatFileResponse> {
        let request = request.into_inner();
        self.record("StatFile", &request.r#ref, &request.path);
        let (path, entry) = self.resolve(&request.r#ref, &request.path)?;
        Ok(Response::new(gw::StatFileResponse {
            stat: Some(stat_of(&path, &entry)),
        }))
    }

    async fn evaluate(&self, _: Request<gw::EvaluateRequest>) -> Answer<gw::EvaluateResponse> {
        Err(Status::unimplemented("not in BuildKit v0.8"))
    }

    async fn ping(&self, _: Request<PingRequest>) -> Answer<PongResponse> {
        let state = self.state();
        Ok(Response::new(PongResponse {
            frontend_api_caps: state.gateway_caps.clone(),
            llb_caps: state.llb_caps.clone(),
            workers: state.workers.clone(),
        }))
    }

    async fn r#return(&self, request: Request<ReturnRequest>) -> Answer<gw::ReturnResponse> {
        let mut state = self.state();
        if state.returned.is_some() {
            return Err(Status::unknown("result is already set"));
        }
        state.returned = Some(request.into_inner());
        Ok(Response::new(gw::ReturnResponse {}))
    }

    async fn inputs(&self, _: Request<gw::InputsRequest>) -> Answer<gw::InputsResponse> {
        Ok(Response::new(gw::InputsResponse::default()))
    }

    async fn new_container(
        &self,
        _: Request<gw::NewContainerRequest>,
    ) -> Answer<gw::NewContainerResponse> {
        Err(Status::unimplemented("the fake runs no containers"))
    }

    async fn release_container(
        &self,
        _: Request<gw::ReleaseContainerRequest>,
    ) -> Answer<gw::ReleaseContainerResponse> {
        Err(Status::unimplemented("the fake runs no containers"))
    }

    type ExecProcessStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<gw::ExecMessage, Status>> + Send + 'static>>;

    async fn exec_process(
        &self,
        _: Request<tonic::Streaming<gw::ExecMessage>>,
    ) -> Answer<Self::ExecProcessStream> {
        Err(Status::unimplemented("the fake runs no containers"))
    }

    async fn read_file_container(
        &self,
        _: Request<ReadFileRequest>,
    ) -> Answer<gw::ReadFileResponse> {
        Err(Status::unimplemented("not in BuildKit v0.8"))
    }

    async fn read_dir_container(&self, _: Request<ReadDirRequest>) -> Answer<gw::ReadDirResponse> {
        Err(Status::unimplemented("not in BuildKit v0.8"))
    }

    async fn stat_file_container(
        &self,
        _: Request<StatFileRequest>,
    ) -> Answer<gw::StatFileResponse> {
        Err(Status::unimplemented("not in BuildKit v0.8"))
    }

    async fn warn(&self, _: Request<gw::WarnRequest>) -> Answer<gw::WarnResponse> {
        Err(Status::unimplemented("not in BuildKit v0.8"))
    }
}
