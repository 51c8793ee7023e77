//! Solve + Status against fake Control servers: over a unix socket, through a fake dockerd's
//! `/grpc` upgrade, and over TLS with a CA and client certificate made in the test.

use std::collections::HashMap;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use testkit::pki::{TestCa, Usage};

use bkclient::addr::{Address, DockerHost, TlsFiles};
use bkclient::control::{control_client, solve};
use bkclient::status::{StatusModel, StepCounts};
use bkclient::transport::SessionIo;
use bollard_buildkit_proto::google::protobuf::Timestamp;
use bollard_buildkit_proto::moby::buildkit::v1 as control;
use bollard_buildkit_proto::moby::buildkit::v1::control_server::{Control, ControlServer};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Notify, mpsc};
use tonic::transport::Server;
use tonic::{Request, Response, Status};

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A Control service that records Solve and Status requests, streams `updates` on Status and
/// answers Solve with `outcome` once the Status stream was sent.
struct FakeControl {
    solves: Mutex<Vec<control::SolveRequest>>,
    status_refs: Mutex<Vec<String>>,
    updates: Vec<control::StatusResponse>,
    status_error: Option<Status>,
    outcome: Result<HashMap<String, String>, Status>,
    status_sent: Arc<Notify>,
}

impl FakeControl {
    fn new(
        updates: Vec<control::StatusResponse>,
        outcome: Result<HashMap<String, String>, Status>,
    ) -> Self {
        Self {
            solves: Mutex::new(Vec::new()),
            status_refs: Mutex::new(Vec::new()),
            updates,
            status_error: None,
            outcome,
            status_sent: Arc::new(Notify::new()),
        }
    }
}

#[tonic::async_trait]
impl Control for FakeControl {
    async fn disk_usage(
        &self,
        _: Request<control::DiskUsageRequest>,
    ) -> Result<Response<control::DiskUsageResponse>, Status> {
        Err(Status::unimplemented("disk usage"))
    }

    type PruneStream = Boxed<control::UsageRecord>;

    async fn prune(
        &self,
        _: Request<control::PruneRequest>,
    ) -> Result<Response<Self::PruneStream>, Status> {
        Err(Status::unimplemented("prune"))
    }

    async fn solve(
        &self,
        request: Request<control::SolveRequest>,
    ) -> Result<Response<control::SolveResponse>, Status> {
        self.solves.lock().unwrap().push(request.into_inner());
        // Like BuildKit, the Solve ends after the progress it produced.
        self.status_sent.notified().await;
        match &self.outcome {
            Ok(exporter_response) => Ok(Response::new(control::SolveResponse {
                exporter_response: exporter_response.clone(),
            })),
            Err(status) => Err(status.clone()),
        }
    }

    type StatusStream = Boxed<control::StatusResponse>;

    async fn status(
        &self,
        request: Request<control::StatusRequest>,
    ) -> Result<Response<Self::StatusStream>, Status> {
        self.status_refs
            .lock()
            .unwrap()
            .push(request.into_inner().r#ref);
        let sent = Arc::clone(&self.status_sent);
        if let Some(error) = &self.status_error {
            sent.notify_one();
            return Err(error.clone());
        }
        let updates = futures::stream::iter(self.updates.clone().into_iter().map(Ok));
        let end = futures::stream::once(async move {
            sent.notify_one();
            None
        })
        .filter_map(|item: Option<Result<control::StatusResponse, Status>>| async move { item });
        Ok(Response::new(Box::pin(updates.chain(end))))
    }

    type SessionStream = Boxed<control::BytesMessage>;

    async fn session(
        &self,
        _: Request<tonic::Streaming<control::BytesMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        Err(Status::unimplemented("session"))
    }

    async fn list_workers(
        &self,
        _: Request<control::ListWorkersRequest>,
    ) -> Result<Response<control::ListWorkersResponse>, Status> {
        Err(Status::unimplemented("list workers"))
    }

    async fn info(
        &self,
        _: Request<control::InfoRequest>,
    ) -> Result<Response<control::InfoResponse>, Status> {
        Err(Status::unimplemented("info"))
    }

    type ListenBuildHistoryStream = Boxed<control::BuildHistoryEvent>;

    async fn listen_build_history(
        &self,
        _: Request<control::BuildHistoryRequest>,
    ) -> Result<Response<Self::ListenBuildHistoryStream>, Status> {
        Err(Status::unimplemented("build history"))
    }

    async fn update_build_history(
        &self,
        _: Request<control::UpdateBuildHistoryRequest>,
    ) -> Result<Response<control::UpdateBuildHistoryResponse>, Status> {
        Err(Status::unimplemented("build history"))
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

fn vertex(digest: &str, name: &str, started: i64, completed: Option<i64>) -> control::Vertex {
    control::Vertex {
        digest: digest.to_owned(),
        name: name.to_owned(),
        started: Some(at(started)),
        completed: completed.map(at),
        ..control::Vertex::default()
    }
}

fn build_updates() -> Vec<control::StatusResponse> {
    vec![
        control::StatusResponse {
            vertexes: vec![vertex(
                "sha256:a",
                "[internal] load remote build context",
                10,
                None,
            )],
            ..control::StatusResponse::default()
        },
        control::StatusResponse {
            vertexes: vec![vertex(
                "sha256:a",
                "[internal] load remote build context",
                10,
                Some(11),
            )],
            ..control::StatusResponse::default()
        },
        control::StatusResponse {
            vertexes: vec![control::Vertex {
                cached: true,
                ..vertex("sha256:b", "[1/2] COPY etc etc", 12, Some(12))
            }],
            ..control::StatusResponse::default()
        },
        control::StatusResponse {
            vertexes: vec![vertex("sha256:c", "[2/2] RUN make", 13, None)],
            logs: vec![control::VertexLog {
                vertex: "sha256:c".to_owned(),
                timestamp: Some(at(14)),
                stream: 1,
                msg: b"built\n".to_vec(),
            }],
            ..control::StatusResponse::default()
        },
        control::StatusResponse {
            vertexes: vec![vertex("sha256:c", "[2/2] RUN make", 13, Some(15))],
            ..control::StatusResponse::default()
        },
    ]
}

const EXPECTED_LINES: [&str; 9] = [
    "#1 [internal] load remote build context",
    "#1 DONE 1.0s",
    "",
    "#2 [1/2] COPY etc etc",
    "#2 CACHED",
    "",
    "#3 [2/2] RUN make",
    "#3 1.000 built",
    "#3 DONE 2.0s",
];

fn solve_request() -> control::SolveRequest {
    control::SolveRequest {
        r#ref: "build-ref-1".to_owned(),
        frontend: "gateway.v0".to_owned(),
        frontend_attrs: HashMap::from([
            (
                "source".to_owned(),
                "ghcr.io/sealer-rs/frontend:0.1.0".to_owned(),
            ),
            ("filename".to_owned(), "Kubefile".to_owned()),
            (
                "build-arg:BASE".to_owned(),
                "127.0.0.1:5000/base:1".to_owned(),
            ),
        ]),
        session: "sessionid123".to_owned(),
        exporter_deprecated: "moby".to_owned(),
        exporter_attrs_deprecated: HashMap::from([(
            "name".to_owned(),
            "127.0.0.1:5000/it/k:1".to_owned(),
        )]),
        entitlements: vec!["network.host".to_owned()],
        ..control::SolveRequest::default()
    }
}

/// Serves `fake` on a unix socket in `dir`.
fn serve_unix(fake: Arc<FakeControl>, dir: &Path) -> Address {
    let socket = dir.join("buildkitd.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let incoming = futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    });
    tokio::spawn(
        Server::builder()
            .add_service(ControlServer::from_arc(fake))
            .serve_with_incoming(incoming),
    );
    Address::Unix(socket)
}

/// Serves `fake` on upgraded or TLS connections handed over by `connections`.
fn serve_connections(fake: Arc<FakeControl>, connections: mpsc::Receiver<SessionIo>) {
    let incoming = futures::stream::unfold(connections, |mut connections| async move {
        let connection = connections.recv().await?;
        Some((Ok::<_, std::io::Error>(connection), connections))
    });
    tokio::spawn(
        Server::builder()
            .add_service(ControlServer::from_arc(fake))
            .serve_with_incoming(incoming),
    );
}

/// Runs the Solve, folding the Status stream into plain lines.
async fn run(
    address: &Address,
) -> (
    Result<HashMap<String, String>, bkclient::error::ClientError>,
    StatusModel,
    Vec<String>,
) {
    let channel = address.control_channel().await.expect("control channel");
    let mut client = control_client(channel);
    let mut model = StatusModel::new();
    let mut lines = Vec::new();
    let mut on_status = |response: &control::StatusResponse| lines.extend(model.apply(response));
    let outcome = solve(&mut client, solve_request(), &mut on_status).await;
    (outcome, model, lines)
}

fn assert_received(fake: &FakeControl) {
    let solves = fake.solves.lock().unwrap();
    assert_eq!(solves.len(), 1);
    let request = &solves[0];
    assert_eq!(*request, solve_request());
    assert_eq!(request.exporter_deprecated, "moby");
    assert_eq!(
        request.exporter_attrs_deprecated["name"],
        "127.0.0.1:5000/it/k:1"
    );
    assert!(
        request.exporters.is_empty(),
        "the v0.8-incompatible `exporters` field must stay empty"
    );
    assert!(!request.enable_session_exporter);
    assert_eq!(
        request.frontend_attrs["build-arg:BASE"],
        "127.0.0.1:5000/base:1"
    );
    assert_eq!(*fake.status_refs.lock().unwrap(), ["build-ref-1"]);
}

fn success() -> HashMap<String, String> {
    HashMap::from([("containerimage.digest".to_owned(), "sha256:feed".to_owned())])
}

#[tokio::test]
async fn solve_over_a_unix_socket_follows_the_status_stream() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(FakeControl::new(build_updates(), Ok(success())));
    let address = serve_unix(Arc::clone(&fake), dir.path());

    let (outcome, model, lines) = run(&address).await;

    assert_eq!(outcome.unwrap()["containerimage.digest"], "sha256:feed");
    assert_eq!(lines, EXPECTED_LINES);
    assert_eq!(
        model.counts(),
        StepCounts {
            total: 3,
            cached: 1,
            completed: 3
        }
    );
    assert_received(&fake);
}

#[tokio::test]
async fn a_failed_solve_returns_the_frontends_error_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut updates = build_updates();
    updates.truncate(4);
    updates.push(control::StatusResponse {
        vertexes: vec![control::Vertex {
            error: "process \"/bin/sh -c make\" did not complete successfully: exit code: 2"
                .to_owned(),
            ..vertex("sha256:c", "[2/2] RUN make", 13, Some(15))
        }],
        ..control::StatusResponse::default()
    });
    let fake = Arc::new(FakeControl::new(
        updates,
        Err(Status::unknown(
            "failed to solve with frontend gateway.v0: rpc error: code = Unknown desc = Kubefile:2:1: RUN make: exit code: 2",
        )),
    ));
    let address = serve_unix(fake, dir.path());

    let (outcome, model, lines) = run(&address).await;

    assert_eq!(
        outcome.unwrap_err().to_string(),
        "Kubefile:2:1: RUN make: exit code: 2"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("#3 ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2")
    );
    let (name, _, logs) = model.failed_vertex().expect("the failed vertex");
    assert_eq!(name, "[2/2] RUN make");
    assert_eq!(logs, ["built"]);
}

#[tokio::test]
async fn status_failures_do_not_fail_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = FakeControl::new(Vec::new(), Ok(success()));
    fake.status_error = Some(Status::internal("status broke"));
    let address = serve_unix(Arc::new(fake), dir.path());

    let (outcome, _, lines) = run(&address).await;

    assert_eq!(outcome.unwrap()["containerimage.digest"], "sha256:feed");
    assert!(lines.is_empty());
}

#[tokio::test]
async fn solve_through_a_docker_daemons_grpc_upgrade() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (connections, received) = mpsc::channel(4);
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen_heads = Arc::clone(&heads);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0_u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            seen_heads
                .lock()
                .unwrap()
                .push(String::from_utf8(head).unwrap());
            socket
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
                .await
                .unwrap();
            if connections.send(SessionIo::new(socket)).await.is_err() {
                return;
            }
        }
    });
    let fake = Arc::new(FakeControl::new(build_updates(), Ok(success())));
    serve_connections(Arc::clone(&fake), received);
    let address = Address::Docker(DockerHost::Tcp {
        host: "127.0.0.1".to_owned(),
        port,
        tls: None,
    });

    let (outcome, _, lines) = run(&address).await;

    assert_eq!(outcome.unwrap()["containerimage.digest"], "sha256:feed");
    assert_eq!(lines, EXPECTED_LINES);
    assert_received(&fake);
    let heads = heads.lock().unwrap();
    assert!(
        heads[0].starts_with("POST /grpc HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    assert!(heads[0].contains("\r\nUpgrade: h2c\r\n"), "{}", heads[0]);
}

/// A CA, a server certificate for `localhost` signed by it, and a client certificate.
struct TestPki {
    dir: tempfile::TempDir,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
    ca: rustls::pki_types::CertificateDer<'static>,
}

impl TestPki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("bkclient test CA");
        let server = ca.issue(&["localhost"], Usage::Server);
        let client = ca.issue(&["client"], Usage::Client);
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), &client.cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), &client.key_pem).unwrap();
        // A second CA that signed nothing here.
        let other = TestCa::new("bkclient test CA");
        std::fs::write(dir.path().join("other-ca.pem"), other.pem()).unwrap();

        Self {
            server_chain: vec![server.cert_der.into()],
            server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(server.key_der.into()),
            ca: ca.der().into(),
            dir,
        }
    }

    fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A server that requires a client certificate from the CA and offers ALPN `h2`.
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.server_chain.clone(), self.server_key.clone_key())
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    }
}

/// Serves `fake` over TLS on 127.0.0.1; returns the port and the ALPN protocols negotiated.
async fn serve_tls(
    fake: Arc<FakeControl>,
    config: Arc<rustls::ServerConfig>,
) -> (u16, Arc<Mutex<Vec<Option<Vec<u8>>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let negotiated = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&negotiated);
    let (connections, received) = mpsc::channel(4);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            // Failed handshakes (the untrusted-CA case) just drop the connection.
            let Ok(stream) = acceptor.accept(socket).await else {
                continue;
            };
            seen.lock()
                .unwrap()
                .push(stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
            if connections.send(SessionIo::new(stream)).await.is_err() {
                return;
            }
        }
    });
    serve_connections(fake, received);
    (port, negotiated)
}

#[tokio::test]
async fn solve_over_tls_with_a_client_certificate() {
    let pki = TestPki::new();
    let fake = Arc::new(FakeControl::new(build_updates(), Ok(success())));
    let (port, negotiated) = serve_tls(Arc::clone(&fake), pki.server_config()).await;
    let address = Address::Tcp {
        host: "127.0.0.1".to_owned(),
        port,
        tls: Some(TlsFiles {
            ca: Some(pki.file("ca.pem")),
            cert: Some(pki.file("cert.pem")),
            key: Some(pki.file("key.pem")),
            server_name: Some("localhost".to_owned()),
        }),
    };

    let (outcome, _, lines) = run(&address).await;

    assert_eq!(outcome.unwrap()["containerimage.digest"], "sha256:feed");
    assert_eq!(lines, EXPECTED_LINES);
    assert_received(&fake);
    assert_eq!(negotiated.lock().unwrap()[0].as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn tls_errors_name_the_address_or_the_file() {
    let pki = TestPki::new();
    let fake = Arc::new(FakeControl::new(Vec::new(), Ok(success())));
    let (port, _) = serve_tls(fake, pki.server_config()).await;
    let address = |tls: TlsFiles| Address::Tcp {
        host: "127.0.0.1".to_owned(),
        port,
        tls: Some(tls),
    };
    let complete = TlsFiles {
        ca: Some(pki.file("ca.pem")),
        cert: Some(pki.file("cert.pem")),
        key: Some(pki.file("key.pem")),
        server_name: Some("localhost".to_owned()),
    };

    let untrusted = address(TlsFiles {
        ca: Some(pki.file("other-ca.pem")),
        ..complete.clone()
    });
    let error = untrusted.control_channel().await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "cannot reach BuildKit at tcp://127.0.0.1:{port} (TLS): TLS handshake failed: "
        )),
        "{error}"
    );

    let wrong_name = address(TlsFiles {
        server_name: Some("buildkit.example".to_owned()),
        ..complete.clone()
    });
    let error = wrong_name.control_channel().await.unwrap_err().to_string();
    assert!(error.contains("TLS handshake failed"), "{error}");

    let missing_key = address(TlsFiles {
        key: Some(pki.file("missing-key.pem")),
        ..complete.clone()
    });
    let error = missing_key.control_channel().await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "cannot use the TLS file {} for tcp://127.0.0.1:{port} (TLS): ",
            pki.file("missing-key.pem").display()
        )),
        "{error}"
    );

    let key_without_cert = address(TlsFiles {
        cert: None,
        ..complete.clone()
    });
    let error = key_without_cert
        .control_channel()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("needs its certificate"), "{error}");

    let not_pem = address(TlsFiles {
        ca: Some(pki.file("key.pem")),
        ..complete
    });
    let error = not_pem.control_channel().await.unwrap_err().to_string();
    assert!(
        error.contains("holds no PEM `CERTIFICATE` block"),
        "{error}"
    );
}
