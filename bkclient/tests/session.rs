//! The build session seen from BuildKit's side: the tests act as the daemon, calling the
//! session's services over an in-memory connection (as after dockerd's `/session` upgrade)
//! and through a fake `Control.Session` stream (as with a standalone buildkitd).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bkclient::session::{
    HEADER_SESSION_ID, HEADER_SESSION_METHOD, HEADER_SESSION_NAME, HEADER_SESSION_SHARED_KEY,
    REGISTRY_AUTH_SECRET, Session, shared_key_in,
};
use bollard_buildkit_proto::health::health_check_response::ServingStatus;
use bollard_buildkit_proto::health::health_client::HealthClient;
use bollard_buildkit_proto::health::{HealthCheckRequest, HealthListRequest};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::GetSecretRequest;
use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_client::SecretsClient;
use bollard_buildkit_proto::moby::buildkit::v1 as control;
use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use bollard_buildkit_proto::moby::buildkit::v1::control_server::{Control, ControlServer};
use bollard_buildkit_proto::moby::filesync::v1::auth_client::AuthClient;
use bollard_buildkit_proto::moby::filesync::v1::file_send_client::FileSendClient;
use bollard_buildkit_proto::moby::filesync::v1::file_send_server::{FileSend, FileSendServer};
use bollard_buildkit_proto::moby::filesync::v1::{
    BytesMessage, CredentialsRequest, CredentialsResponse, FetchTokenRequest,
    GetTokenAuthorityRequest, VerifyTokenAuthorityRequest,
};
use futures::StreamExt as _;
use hyper_util::rt::TokioIo;
use image::registry::auth::CredentialStore;
use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, DuplexStream};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint, Server, Uri};
use tonic::{Code, Request, Response, Status, Streaming};

const FILE_SEND_METHOD: &str = "/moby.filesync.v1.FileSend/DiffCopy";

/// A gRPC channel whose one connection is `io` (the daemon's side of a session connection).
async fn channel_over<IO>(io: IO) -> Channel
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let slot = Arc::new(Mutex::new(Some(io)));
    Endpoint::from_static("http://session.test")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let io = slot.lock().unwrap().take();
            async move {
                io.map(TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("the test connection was used already"))
            }
        }))
        .await
        .unwrap()
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A Docker config in `dir` with credentials for a private registry and for Docker Hub; no
/// credential helper can be found.
fn credential_store(dir: &Path) -> CredentialStore {
    std::fs::write(
        dir.join("config.json"),
        json!({"auths": {
            "registry.example:5000": {"auth": b64("builder:s3cret-pass")},
            "https://index.docker.io/v1/": {"username": "hubber", "password": "hub-pass"},
        }})
        .to_string(),
    )
    .unwrap();
    CredentialStore::new(dir).with_helper_search_path("/nonexistent")
}

/// Echoes every message back: an extra service to add to the session.
#[derive(Clone)]
struct Echo;

#[tonic::async_trait]
impl FileSend for Echo {
    type DiffCopyStream = ReceiverStream<Result<BytesMessage, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let mut incoming = request.into_inner();
        let (replies, stream) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(message) = incoming.next().await {
                if replies.send(message).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }
}

async fn credentials(auth: &mut AuthClient<Channel>, host: &str) -> CredentialsResponse {
    auth.credentials(CredentialsRequest {
        host: host.to_owned(),
    })
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test]
async fn serves_health_auth_and_secrets_on_an_upgraded_connection() {
    let config = tempfile::tempdir().unwrap();
    let session = Session::new("app", "key").with_credential_store(credential_store(config.path()));
    let (session_end, daemon_end) = tokio::io::duplex(1 << 16);
    let running = session.serve(session_end);
    let channel = channel_over(daemon_end).await;

    let mut health = HealthClient::new(channel.clone());
    let checked = health
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.status, i32::from(ServingStatus::Serving));
    let for_auth = health
        .check(HealthCheckRequest {
            service: "moby.filesync.v1.Auth".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(for_auth.status, i32::from(ServingStatus::Serving));
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let watch = health
        .watch(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::Unimplemented);
    let list = health.list(HealthListRequest {}).await.unwrap_err();
    assert_eq!(list.code(), Code::Unimplemented);

    let mut auth = AuthClient::new(channel.clone());
    let private = credentials(&mut auth, "registry.example:5000").await;
    assert_eq!(
        (private.username.as_str(), private.secret.as_str()),
        ("builder", "s3cret-pass")
    );
    // BuildKit asks for Docker Hub by its registry host name.
    let hub = credentials(&mut auth, "registry-1.docker.io").await;
    assert_eq!(
        (hub.username.as_str(), hub.secret.as_str()),
        ("hubber", "hub-pass")
    );
    let anonymous = credentials(&mut auth, "other.example").await;
    assert_eq!(anonymous, CredentialsResponse::default());
    let authority = auth
        .get_token_authority(GetTokenAuthorityRequest {
            host: "registry.example:5000".to_owned(),
            salt: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(authority.code(), Code::Unimplemented);
    let verify = auth
        .verify_token_authority(VerifyTokenAuthorityRequest::default())
        .await
        .unwrap_err();
    assert_eq!(verify.code(), Code::Unimplemented);
    let token = auth
        .fetch_token(FetchTokenRequest::default())
        .await
        .unwrap_err();
    assert_eq!(token.code(), Code::Unimplemented);

    let mut secrets = SecretsClient::new(channel.clone());
    let registry_auth = secrets
        .get_secret(GetSecretRequest {
            id: REGISTRY_AUTH_SECRET.to_owned(),
            annotations: HashMap::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let generated: Value = serde_json::from_slice(&registry_auth.data).unwrap();
    assert_eq!(
        generated,
        json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("hubber:hub-pass")},
            "registry.example:5000": {"auth": b64("builder:s3cret-pass")},
        }})
    );
    let missing = secrets
        .get_secret(GetSecretRequest {
            id: "ssh-key".to_owned(),
            annotations: HashMap::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("ssh-key"), "{missing:?}");

    drop((health, auth, secrets, channel));
    running.close().await.unwrap();
}

#[tokio::test]
async fn headers_announce_identity_and_every_method_including_added_services() {
    let mut session = Session::new("my app", "0123abcd");
    session.add_service(FileSendServer::new(Echo), &[FILE_SEND_METHOD]);

    let headers = session.headers();
    assert_eq!(
        headers[..3],
        [
            (HEADER_SESSION_ID.to_owned(), session.id().to_owned()),
            (HEADER_SESSION_NAME.to_owned(), "my app".to_owned()),
            (HEADER_SESSION_SHARED_KEY.to_owned(), "0123abcd".to_owned()),
        ]
    );
    let methods: Vec<&str> = headers[3..]
        .iter()
        .map(|(name, value)| {
            assert_eq!(name, HEADER_SESSION_METHOD);
            value.as_str()
        })
        .collect();
    assert_eq!(
        methods,
        [
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/moby.filesync.v1.Auth/Credentials",
            "/moby.filesync.v1.Auth/FetchToken",
            "/moby.filesync.v1.Auth/GetTokenAuthority",
            "/moby.filesync.v1.Auth/VerifyTokenAuthority",
            "/moby.buildkit.secrets.v1.Secrets/GetSecret",
            FILE_SEND_METHOD,
        ]
    );
    assert_eq!(session.id().len(), 25);
    assert_ne!(session.id(), Session::new("my app", "0123abcd").id());

    // The added service answers on the session connection.
    let (session_end, daemon_end) = tokio::io::duplex(1 << 16);
    let running = session.serve(session_end);
    let channel = channel_over(daemon_end).await;
    let mut file_send = FileSendClient::new(channel.clone());
    let sent = vec![
        BytesMessage {
            data: b"first".to_vec(),
        },
        BytesMessage {
            data: b"second".to_vec(),
        },
    ];
    let replies: Vec<BytesMessage> = file_send
        .diff_copy(futures::stream::iter(sent.clone()))
        .await
        .unwrap()
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(replies, sent);
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "moby.filesync.v1.FileSend".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, i32::from(ServingStatus::Serving));

    drop((file_send, channel));
    running.close().await.unwrap();
}

#[tokio::test]
async fn secrets_never_show_in_debug_output_or_errors() {
    let config = tempfile::tempdir().unwrap();
    let bad_entry = b64("user-without-colon-hunter2");
    std::fs::write(
        config.path().join("config.json"),
        json!({"auths": {
            "good.example": {"auth": b64("user:hunter2")},
            "bad.example": {"auth": bad_entry},
        }})
        .to_string(),
    )
    .unwrap();
    let store = CredentialStore::new(config.path()).with_helper_search_path("/nonexistent");
    let session = Session::new("app", "key").with_credential_store(store);
    let session_debug = format!("{session:?}");
    assert!(session_debug.contains(session.id()), "{session_debug}");

    let (session_end, daemon_end) = tokio::io::duplex(1 << 16);
    let running = session.serve(session_end);
    let channel = channel_over(daemon_end).await;

    let good = credentials(&mut AuthClient::new(channel.clone()), "good.example").await;
    assert_eq!(good.secret, "hunter2");
    let bad = AuthClient::new(channel.clone())
        .credentials(CredentialsRequest {
            host: "bad.example".to_owned(),
        })
        .await
        .unwrap_err();
    let secret = SecretsClient::new(channel.clone())
        .get_secret(GetSecretRequest {
            id: REGISTRY_AUTH_SECRET.to_owned(),
            annotations: HashMap::new(),
        })
        .await
        .unwrap_err();
    for status in [&bad, &secret] {
        assert_eq!(status.code(), Code::Internal);
        let shown = format!("{status} {status:?}");
        assert!(shown.contains("bad.example"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains(&bad_entry), "{shown}");
    }
    let running_debug = format!("{running:?}");
    assert!(!running_debug.contains("hunter2"), "{running_debug}");

    drop(channel);
    running.close().await.unwrap();
}

#[test]
fn shared_key_hashes_the_node_id_with_the_absolute_context_dir() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("docker-config");
    let context = root.path().join("context");
    let other = root.path().join("other");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::create_dir_all(&other).unwrap();

    let key = shared_key_in(&config, &context).unwrap();
    let node_id = std::fs::read_to_string(config.join(".buildNodeID")).unwrap();
    assert_eq!(node_id.len(), 64);
    assert!(node_id.bytes().all(|b| b.is_ascii_hexdigit()));
    let mode = std::fs::metadata(config.join(".buildNodeID"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let absolute = std::fs::canonicalize(&context).unwrap();
    let expected = hex::encode(sha2::Sha256::digest(format!(
        "{node_id}:{}",
        absolute.display()
    )));
    assert_eq!(key, expected);

    // Stable across calls and spellings of the same directory; another directory differs.
    assert_eq!(shared_key_in(&config, &context.join(".")).unwrap(), key);
    assert_ne!(shared_key_in(&config, &other).unwrap(), key);
    // An existing node id (e.g. the docker CLI's) is used as it is.
    std::fs::write(config.join(".buildNodeID"), "fixed-node").unwrap();
    let fixed = hex::encode(sha2::Sha256::digest(format!(
        "fixed-node:{}",
        absolute.display()
    )));
    assert_eq!(shared_key_in(&config, &context).unwrap(), fixed);
}

#[test]
fn shared_key_falls_back_to_the_config_path_where_the_node_id_cannot_be_written() {
    let root = tempfile::tempdir().unwrap();
    // A config "directory" that is a file: nothing can be created under it, whoever runs this.
    let config = root.path().join("not-a-dir");
    std::fs::write(&config, "").unwrap();
    let context = root.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    let absolute = std::fs::canonicalize(&context).unwrap();
    let expected = hex::encode(sha2::Sha256::digest(format!(
        "{}:{}",
        config.display(),
        absolute.display()
    )));
    assert_eq!(shared_key_in(&config, &context).unwrap(), expected);
}

#[test]
fn shared_key_errors_name_the_missing_directory() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("no-such-context");
    let message = shared_key_in(&root.path().join("config"), &missing)
        .unwrap_err()
        .to_string();
    assert!(message.contains("no-such-context"), "{message}");
}

/// What the fake daemon saw of one `Control.Session` call.
struct TunnelSeen {
    metadata: tonic::metadata::MetadataMap,
    /// The daemon's end of the session connection (it is the HTTP/2 client on it).
    connection: DuplexStream,
    /// Resolves when our request stream ended: `Ok` for a clean end (CloseSend).
    request_end: oneshot::Receiver<Result<(), Status>>,
}

/// A Control server that only implements `Session`, bridging its message streams to an
/// in-memory connection handed to the test.
struct FakeControl {
    calls: mpsc::Sender<TunnelSeen>,
    largest_message: Arc<AtomicUsize>,
}

fn not_served<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("the fake daemon serves Session only"))
}

#[tonic::async_trait]
impl Control for FakeControl {
    async fn disk_usage(
        &self,
        _: Request<control::DiskUsageRequest>,
    ) -> Result<Response<control::DiskUsageResponse>, Status> {
        not_served()
    }

    type PruneStream = futures::stream::Empty<Result<control::UsageRecord, Status>>;

    async fn prune(
        &self,
        _: Request<control::PruneRequest>,
    ) -> Result<Response<Self::PruneStream>, Status> {
        not_served()
    }

    async fn solve(
        &self,
        _: Request<control::SolveRequest>,
    ) -> Result<Response<control::SolveResponse>, Status> {
        not_served()
    }

    type StatusStream = futures::stream::Empty<Result<control::StatusResponse, Status>>;

    async fn status(
        &self,
        _: Request<control::StatusRequest>,
    ) -> Result<Response<Self::StatusStream>, Status> {
        not_served()
    }

    type SessionStream = ReceiverStream<Result<control::BytesMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<control::BytesMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let metadata = request.metadata().clone();
        let mut incoming = request.into_inner();
        let (fake_end, daemon_end) = tokio::io::duplex(1 << 20);
        let (mut from_daemon, mut to_daemon) = tokio::io::split(fake_end);
        let (request_ended, request_end) = oneshot::channel();
        let largest = Arc::clone(&self.largest_message);
        tokio::spawn(async move {
            // Like BuildKit, read until the client ends the stream even when the daemon's
            // side of the connection is gone.
            let mut daemon_side_open = true;
            let end = loop {
                match incoming.message().await {
                    Ok(Some(message)) => {
                        largest.fetch_max(message.data.len(), Ordering::SeqCst);
                        if daemon_side_open {
                            daemon_side_open = to_daemon.write_all(&message.data).await.is_ok();
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(status) => break Err(status),
                }
            };
            let _ = to_daemon.shutdown().await;
            let _ = request_ended.send(end);
        });
        let (replies, stream) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut buffer = vec![0; 32 << 10];
            loop {
                match from_daemon.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        let message = control::BytesMessage {
                            data: buffer[..read].to_vec(),
                        };
                        if replies.send(Ok(message)).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        self.calls
            .send(TunnelSeen {
                metadata,
                connection: daemon_end,
                request_end,
            })
            .await
            .map_err(|_| Status::internal("the test stopped listening"))?;
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn list_workers(
        &self,
        _: Request<control::ListWorkersRequest>,
    ) -> Result<Response<control::ListWorkersResponse>, Status> {
        not_served()
    }

    async fn info(
        &self,
        _: Request<control::InfoRequest>,
    ) -> Result<Response<control::InfoResponse>, Status> {
        not_served()
    }

    type ListenBuildHistoryStream =
        futures::stream::Empty<Result<control::BuildHistoryEvent, Status>>;

    async fn listen_build_history(
        &self,
        _: Request<control::BuildHistoryRequest>,
    ) -> Result<Response<Self::ListenBuildHistoryStream>, Status> {
        not_served()
    }

    async fn update_build_history(
        &self,
        _: Request<control::UpdateBuildHistoryRequest>,
    ) -> Result<Response<control::UpdateBuildHistoryResponse>, Status> {
        not_served()
    }
}

#[tokio::test]
async fn serves_inside_the_control_session_stream() {
    let (calls, mut seen_calls) = mpsc::channel(1);
    let largest_message = Arc::new(AtomicUsize::new(0));
    let control = FakeControl {
        calls,
        largest_message: Arc::clone(&largest_message),
    };
    let (control_server_end, control_client_end) = tokio::io::duplex(1 << 20);
    tokio::spawn(
        Server::builder()
            .add_service(ControlServer::new(control))
            .serve_with_incoming(
                futures::stream::once(async { Ok::<_, std::io::Error>(control_server_end) })
                    .chain(futures::stream::pending()),
            ),
    );
    let control_client = ControlClient::new(channel_over(control_client_end).await);

    let config = tempfile::tempdir().unwrap();
    let mut session =
        Session::new("ctx", "shared").with_credential_store(credential_store(config.path()));
    session.add_service(FileSendServer::new(Echo), &[FILE_SEND_METHOD]);
    let id = session.id().to_owned();
    let methods = session.methods();
    let running = session.serve_tunnel(control_client);

    let TunnelSeen {
        metadata,
        connection,
        request_end,
    } = seen_calls.recv().await.unwrap();
    let single = |key: &str| metadata.get(key).unwrap().to_str().unwrap().to_owned();
    assert_eq!(single("x-docker-expose-session-uuid"), id);
    assert_eq!(single("x-docker-expose-session-name"), "ctx");
    assert_eq!(single("x-docker-expose-session-sharedkey"), "shared");
    let advertised: Vec<String> = metadata
        .get_all("x-docker-expose-session-grpc-method")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(advertised, methods);
    assert!(advertised.iter().any(|method| method == FILE_SEND_METHOD));

    // The daemon is the HTTP/2 client inside the tunnel.
    let channel = channel_over(connection).await;
    let checked = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.status, i32::from(ServingStatus::Serving));
    let private = credentials(
        &mut AuthClient::new(channel.clone()),
        "registry.example:5000",
    )
    .await;
    assert_eq!(private.secret, "s3cret-pass");

    // A reply larger than one tunnel message arrives whole, split into bounded messages.
    let big: Vec<u8> = (0..(1_usize << 20) + 123)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    let echoed: Vec<BytesMessage> = FileSendClient::new(channel.clone())
        .diff_copy(futures::stream::iter([BytesMessage { data: big.clone() }]))
        .await
        .unwrap()
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(echoed, [BytesMessage { data: big }]);
    let largest = largest_message.load(Ordering::SeqCst);
    assert!(largest > 64 << 10, "largest tunnel message: {largest}");
    assert!(largest <= 256 << 10, "largest tunnel message: {largest}");

    running.close().await.unwrap();
    // Closing the session half-closes the stream the way Go's CloseSend does.
    request_end.await.unwrap().unwrap();
    drop(channel);
}

#[tokio::test]
async fn a_refused_tunnel_is_reported_when_closing() {
    let (server_end, client_end) = tokio::io::duplex(1 << 16);
    // A gRPC server without the Control service: Control.Session is Unimplemented there.
    tokio::spawn(
        Server::builder()
            .add_service(FileSendServer::new(Echo))
            .serve_with_incoming(
                futures::stream::once(async { Ok::<_, std::io::Error>(server_end) })
                    .chain(futures::stream::pending()),
            ),
    );
    let client = ControlClient::new(channel_over(client_end).await);
    let running = Session::new("ctx", "shared").serve_tunnel(client);
    let message = running.close().await.unwrap_err().to_string();
    assert!(message.contains("Control.Session"), "{message}");
    assert!(
        message.to_lowercase().contains("unimplemented"),
        "{message}"
    );
}
