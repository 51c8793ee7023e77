//! The pull-through cache's upstreams against real registries: two stock `docker-registry`
//! instances on loopback ports (one with htpasswd) standing in for two registry domains, and
//! small fake HTTP servers for what a stock registry cannot do (token auth, corrupt content,
//! hanging).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use image::Digest;
use registry::upstream::{ProxyConfig, Selected, UpstreamError, Upstreams};
use testkit::images::{ImageSpec, push_generated, seed_of};
use testkit::pki::{TestCa, Usage};
use testkit::registry::Registry;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

fn proxy_config(dir: &Path, yaml: &str) -> ProxyConfig {
    let documents = kyaml::parse_documents(yaml, &kyaml::Limits::default()).unwrap();
    let proxy = documents[0].root.get("proxy").expect("a proxy section");
    ProxyConfig::from_node(proxy, &dir.join("config.yml")).unwrap()
}

fn upstreams(dir: &Path, yaml: &str) -> Upstreams {
    Upstreams::new(&proxy_config(dir, yaml)).unwrap()
}

fn select(upstreams: &Upstreams, repository: &str, ns: Option<&str>) -> Selected {
    upstreams
        .select(repository, ns)
        .unwrap_or_else(|| panic!("no upstream for {repository} (ns {ns:?})"))
}

/// The error of fetching `reference` of `repository` from the upstream `ns` selects.
async fn manifest_error(
    upstreams: &Upstreams,
    repository: &str,
    ns: &str,
    reference: &str,
) -> UpstreamError {
    select(upstreams, repository, Some(ns))
        .manifest(reference)
        .await
        .unwrap_err()
}

fn digest(text: &str) -> Digest {
    text.parse().unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A registry with htpasswd credentials holding `image` at `path`: pushed while it had no
/// authentication (skopeo pushes anonymously here), then restarted over the same storage.
fn authenticated_registry_with(
    storage: &Path,
    path: &str,
    specs: &[ImageSpec],
) -> (Registry, testkit::images::GeneratedImage) {
    let open = Registry::builder().storage(storage).start();
    let image = push_generated(open.addr(), path, specs);
    drop(open);
    let registry = Registry::builder()
        .storage(storage)
        .htpasswd("robot", "s3cret-pw")
        .start();
    (registry, image)
}

#[tokio::test]
async fn ns_selects_the_upstream_and_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let one = Registry::start();
    let alpha = push_generated(
        one.addr(),
        "library/alpha:1",
        &[ImageSpec::amd64(&[20_000], seed_of("alpha"))],
    );
    let (two, beta) = authenticated_registry_with(
        &dir.path().join("two"),
        "team/beta:2",
        &[ImageSpec::amd64(&[30_000, 5_000], seed_of("beta"))],
    );
    std::fs::write(dir.path().join("two.password"), "s3cret-pw\n").unwrap();
    let configured = upstreams(
        dir.path(),
        &format!(
            "proxy:
  upstreams:
    - name: one.test
      url: http://{}
    - name: two.test
      url: http://{}
      username: robot
      password_file: two.password
",
            one.addr(),
            two.addr()
        ),
    );

    let from_one = select(&configured, "library/alpha", Some("one.test"));
    assert_eq!(from_one.upstream_name(), "one.test");
    let manifest = from_one.manifest("1").await.unwrap();
    assert_eq!(manifest.digest.to_string(), alpha.digest);
    assert_eq!(manifest.media_type, image::manifest::OCI_MANIFEST);
    let by_digest = from_one.manifest(&alpha.digest).await.unwrap();
    assert_eq!(by_digest, manifest);

    let from_two = select(&configured, "team/beta", Some("TWO.test"));
    let manifest = from_two.manifest("2").await.unwrap();
    assert_eq!(manifest.digest.to_string(), beta.digest);
    let temp = tempfile::tempdir().unwrap();
    for layer in &beta.layers {
        let blob = from_two.blob(&digest(layer), temp.path()).await.unwrap();
        let bytes = std::fs::read(blob.file.path()).unwrap();
        assert_eq!(Digest::of(&bytes).to_string(), *layer);
        assert_eq!(blob.size, bytes.len() as u64);
        assert!(blob.file.path().starts_with(temp.path()));
    }

    // Each upstream has only its own images.
    let missing = manifest_error(&configured, "team/beta", "one.test", "2").await;
    assert!(missing.is_not_found(), "{missing}");
    let missing = from_one
        .blob(&digest(&beta.layers[0]), temp.path())
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");

    // The default prefix `<name>/` selects without `ns` and is not sent upstream.
    let by_prefix = select(&configured, "two.test/team/beta", None);
    assert_eq!(by_prefix.repository(), "team/beta");
    assert_eq!(
        by_prefix.manifest("2").await.unwrap().digest.to_string(),
        beta.digest
    );
    assert!(configured.select("team/beta", None).is_none());
    assert!(configured.select("team/beta", Some("three.test")).is_none());
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_unauthorized_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (two, _beta) = authenticated_registry_with(
        &dir.path().join("two"),
        "team/beta:2",
        &[ImageSpec::amd64(&[1_000], seed_of("gamma"))],
    );
    let wrong = upstreams(
        dir.path(),
        &format!(
            "proxy:\n  upstreams:\n    - name: two.test\n      url: http://{}\n      username: robot\n      password: wrong-Pa55word\n",
            two.addr()
        ),
    );
    let error = manifest_error(&wrong, "team/beta", "two.test", "2").await;
    assert!(
        matches!(error, UpstreamError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("refused the user name and password"),
        "{error}"
    );
    for text in [
        error.to_string(),
        format!("{error:?}"),
        format!("{wrong:?}"),
    ] {
        assert!(!text.contains("wrong-Pa55word"), "{text}");
    }

    let anonymous = upstreams(
        dir.path(),
        &format!(
            "proxy:\n  upstreams:\n    - name: two.test\n      url: http://{}\n",
            two.addr()
        ),
    );
    let error = manifest_error(&anonymous, "team/beta", "two.test", "2").await;
    assert!(
        matches!(error, UpstreamError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("none are configured"), "{error}");
}

/// Access-log lines of `registry` for `GET path`.
fn logged_gets(registry: &Registry, path: &str) -> usize {
    registry
        .log()
        .matches(&format!("\"GET {path} HTTP/1.1\""))
        .count()
}

#[tokio::test]
async fn concurrent_blob_requests_fetch_once_from_a_real_registry() {
    let one = Registry::start();
    let image = push_generated(
        one.addr(),
        "library/shared:1",
        &[ImageSpec::amd64(&[1 << 20], seed_of("shared"))],
    );
    let dir = tempfile::tempdir().unwrap();
    let configured = upstreams(
        dir.path(),
        &format!(
            "proxy:\n  upstreams:\n    - name: one.test\n      url: http://{}\n",
            one.addr()
        ),
    );
    let layer = digest(&image.layers[0]);
    let storage = dir.path().join("storage");
    std::fs::create_dir(&storage).unwrap();
    let commits = Arc::new(AtomicUsize::new(0));
    let requests = (0..8).map(|_| {
        let selected = select(&configured, "library/shared", Some("one.test"));
        let target = storage.join(layer.hex());
        let commits = Arc::clone(&commits);
        let layer = layer.clone();
        let temp = dir.path().to_owned();
        async move {
            selected
                .blob_once(&layer, &temp, move |blob| {
                    commits.fetch_add(1, Ordering::SeqCst);
                    blob.file.persist(target).map(drop).map_err(|e| e.error)
                })
                .await
        }
    });
    // On this single-threaded runtime all eight requests join before the fetch can start.
    let results = futures::future::join_all(requests).await;
    let stored = std::fs::read(storage.join(layer.hex())).unwrap();
    assert_eq!(Digest::of(&stored), layer);
    let mut fetched_here = 0;
    for result in results {
        let blob = result.unwrap();
        assert_eq!((&blob.digest, blob.size), (&layer, stored.len() as u64));
        fetched_here += usize::from(blob.fetched_here);
    }
    assert_eq!(fetched_here, 1);
    assert_eq!(commits.load(Ordering::SeqCst), 1);
    let path = format!("/v2/library/shared/blobs/{layer}");
    // The access log line follows the response: wait for it, then there must be only one.
    while logged_gets(&one, &path) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(logged_gets(&one, &path), 1, "{}", one.log());
    // No temporary file is left beside the storage.
    assert_eq!(files_in(dir.path()), ["storage"]);
}

// ---- A small fake upstream ------------------------------------------------------------

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HashMap<String, String>,
}

/// What the fake server does with a request.
enum Reply {
    /// Answers with a status, headers and body.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Sends the headers and the first bytes of the body, then nothing more.
    Stall {
        headers: Vec<(String, String)>,
        length: usize,
        sent: Vec<u8>,
    },
    /// Reads the request and never answers.
    Hang,
}

fn ok(content_type: &str, body: &[u8]) -> Reply {
    Reply::Full {
        status: 200,
        headers: vec![("Content-Type".into(), content_type.into())],
        body: body.to_vec(),
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// An HTTP/1.1 server on 127.0.0.1 answering every request with its handler (one request per
/// connection), recording what it was asked.
struct FakeUpstream {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    scheme: &'static str,
}

impl FakeUpstream {
    async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> FakeUpstream {
        FakeUpstream::start_with(None, handler).await
    }

    /// Over TLS with this server configuration when given.
    async fn start_with(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let recorded = Arc::clone(&seen);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = Arc::clone(&handler);
                let recorded = Arc::clone(&recorded);
                match &acceptor {
                    None => drop(tokio::spawn(serve(stream, handler, recorded))),
                    Some(acceptor) => {
                        let handshake = acceptor.accept(stream);
                        tokio::spawn(async move {
                            // A client that does not trust the certificate ends here.
                            if let Ok(stream) = handshake.await {
                                serve(stream, handler, recorded).await;
                            }
                        });
                    }
                }
            }
        });
        FakeUpstream { addr, seen, scheme }
    }

    fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    fn count(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|seen| seen.path == path)
            .count()
    }
}

async fn serve<S>(mut stream: S, handler: Handler, recorded: Arc<Mutex<Vec<Seen>>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request).into_owned();
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("")
        .to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let seen = Seen { path, headers };
    recorded.lock().unwrap().push(seen.clone());
    let head = |status: u16, headers: &[(String, String)], length: usize| {
        let mut head =
            format!("HTTP/1.1 {status} Fake\r\nContent-Length: {length}\r\nConnection: close\r\n");
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    };
    match handler(&seen) {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let _ = stream.write_all(&head(status, &headers, body.len())).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.shutdown().await;
        }
        Reply::Stall {
            headers,
            length,
            sent,
        } => {
            let _ = stream.write_all(&head(200, &headers, length)).await;
            let _ = stream.write_all(&sent).await;
            let _ = stream.flush().await;
            std::future::pending::<()>().await;
        }
        Reply::Hang => std::future::pending::<()>().await,
    }
}

fn fake_upstreams(dir: &Path, fake: &FakeUpstream, extra: &str) -> Upstreams {
    upstreams(
        dir,
        &format!(
            "proxy:\n  upstreams:\n    - name: fake.test\n      url: {}\n{extra}",
            fake.url()
        ),
    )
}

#[tokio::test]
async fn a_corrupt_blob_is_a_digest_mismatch_and_leaves_no_file() {
    let promised = Digest::of(b"the real content");
    let fake = FakeUpstream::start(|_| ok("application/octet-stream", b"tampered content")).await;
    let dir = tempfile::tempdir().unwrap();
    let configured = fake_upstreams(dir.path(), &fake, "");
    let temp = tempfile::tempdir().unwrap();
    let selected = select(&configured, "library/x", Some("fake.test"));
    let error = selected.blob(&promised, temp.path()).await.unwrap_err();
    match &error {
        UpstreamError::DigestMismatch {
            expected, actual, ..
        } => assert_eq!(
            (expected, actual),
            (&promised, &Digest::of(b"tampered content"))
        ),
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(
        files_in(temp.path()).is_empty(),
        "{:?}",
        files_in(temp.path())
    );

    let error = selected
        .blob_once(&promised, temp.path(), |_| {
            panic!("a corrupt blob is never committed")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(error, UpstreamError::DigestMismatch { .. }),
        "{error:?}"
    );
    assert!(files_in(temp.path()).is_empty());
}

#[tokio::test]
async fn manifests_are_checked_against_both_digests_and_the_size_cap() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;
    let real = Digest::of(manifest);
    let wrong = Digest::of(b"other");
    let announced_wrong = wrong.to_string();
    let fake = FakeUpstream::start(move |seen| match seen.path.as_str() {
        "/v2/x/manifests/lying" => Reply::Full {
            status: 200,
            headers: vec![
                ("Content-Type".into(), image::manifest::OCI_MANIFEST.into()),
                ("Docker-Content-Digest".into(), announced_wrong.clone()),
            ],
            body: manifest.to_vec(),
        },
        "/v2/x/manifests/huge" => ok(image::manifest::OCI_MANIFEST, &vec![b' '; 5 << 20]),
        "/v2/x/manifests/schema1" => ok(
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            br#"{"schemaVersion":1,"fsLayers":[]}"#,
        ),
        _ => ok("application/json", manifest),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let configured = fake_upstreams(dir.path(), &fake, "");
    let selected = select(&configured, "x", Some("fake.test"));

    let fetched = selected.manifest("good").await.unwrap();
    assert_eq!(fetched.digest, real);
    assert_eq!(
        fetched.media_type,
        image::manifest::OCI_MANIFEST,
        "from the body's mediaType"
    );
    let accept = fake.seen.lock().unwrap()[0].headers["accept"].clone();
    for media_type in image::manifest::MANIFEST_MEDIA_TYPES {
        assert!(accept.contains(media_type), "{accept}");
    }

    let error = selected.manifest("lying").await.unwrap_err();
    assert!(
        matches!(&error, UpstreamError::DigestMismatch { expected, .. } if *expected == wrong),
        "{error:?}"
    );
    let error = selected.manifest(&wrong.to_string()).await.unwrap_err();
    assert!(
        matches!(&error, UpstreamError::DigestMismatch { expected, actual, .. } if *expected == wrong && *actual == real),
        "{error:?}"
    );
    let error = selected.manifest("huge").await.unwrap_err();
    assert!(error.to_string().contains("larger than"), "{error}");
    let error = selected.manifest("schema1").await.unwrap_err();
    assert!(error.to_string().contains("schema 1"), "{error}");
    let error = selected.manifest("../../etc").await.unwrap_err();
    assert!(
        matches!(error, UpstreamError::BadRequest { .. }),
        "{error:?}"
    );
}

/// An upstream that never answers manifest requests and stalls after 10 bytes of its one
/// blob; returns it and the blob's digest.
async fn hanging_upstream() -> (FakeUpstream, Digest) {
    let blob = vec![7u8; 1000];
    let blob_digest = Digest::of(&blob);
    let fake = FakeUpstream::start(move |seen| {
        if seen.path.contains("/blobs/") {
            Reply::Stall {
                headers: vec![],
                length: blob.len(),
                sent: blob[..10].to_vec(),
            }
        } else {
            Reply::Hang
        }
    })
    .await;
    (fake, blob_digest)
}

#[tokio::test]
async fn a_hanging_upstream_times_out_and_leaves_no_file() {
    let (fake, blob_digest) = hanging_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let configured = fake_upstreams(dir.path(), &fake, "      timeout: 500ms\n");
    let selected = select(&configured, "x", Some("fake.test"));

    let error = selected.manifest("1").await.unwrap_err();
    assert!(matches!(error, UpstreamError::Timeout { .. }), "{error:?}");
    assert!(error.to_string().contains("no progress"), "{error}");

    let temp = tempfile::tempdir().unwrap();
    let error = selected.blob(&blob_digest, temp.path()).await.unwrap_err();
    assert!(matches!(error, UpstreamError::Timeout { .. }), "{error:?}");
    assert!(
        files_in(temp.path()).is_empty(),
        "{:?}",
        files_in(temp.path())
    );

    // A listener that accepts and never reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_configured = upstreams(
        dir.path(),
        &format!(
            "proxy:\n  upstreams:\n    - name: silent.test\n      url: http://{}\n      timeout: 500ms\n",
            silent.local_addr().unwrap()
        ),
    );
    let error = manifest_error(&silent_configured, "x", "silent.test", "1").await;
    assert!(matches!(error, UpstreamError::Timeout { .. }), "{error:?}");
}

/// `robot:pa55` in base64.
const ROBOT_BASIC: &str = "Basic cm9ib3Q6cGE1NQ==";
const TOKEN: &str = "tok-3f9a8c";

#[tokio::test]
async fn bearer_tokens_come_from_the_realm_and_are_cached_per_scope() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#.to_vec();
    let realm_addr = Arc::new(Mutex::new(String::new()));
    let realm = Arc::clone(&realm_addr);
    let fake = FakeUpstream::start(move |seen| {
        let authorization = seen.headers.get("authorization").map(String::as_str);
        if seen.path.starts_with("/token?") {
            return if authorization == Some(ROBOT_BASIC) {
                ok("application/json", format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#).as_bytes())
            } else {
                Reply::Full {
                    status: 401,
                    headers: vec![],
                    body: Vec::new(),
                }
            };
        }
        if authorization == Some(&format!("Bearer {TOKEN}")) && !seen.path.contains("/rejected/") {
            return ok(image::manifest::OCI_MANIFEST, &manifest);
        }
        let repository = seen.path.trim_start_matches("/v2/").split("/manifests/").next().unwrap_or("");
        Reply::Full {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!(
                    r#"Bearer realm="http://{}/token",service="fake.test",scope="repository:{repository}:pull""#,
                    realm.lock().unwrap()
                ),
            )],
            body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
        }
    })
    .await;
    *realm_addr.lock().unwrap() = fake.addr.clone();
    let dir = tempfile::tempdir().unwrap();
    let configured = fake_upstreams(
        dir.path(),
        &fake,
        "      username: robot\n      password: pa55\n",
    );
    let selected = select(&configured, "team/app", Some("fake.test"));
    selected.manifest("1").await.unwrap();
    selected.manifest("2").await.unwrap();
    let token_requests: Vec<Seen> = fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|seen| seen.path.starts_with("/token?"))
        .cloned()
        .collect();
    assert_eq!(
        token_requests.len(),
        1,
        "the token is reused for the same scope"
    );
    assert!(
        token_requests[0]
            .path
            .contains("scope=repository%3Ateam%2Fapp%3Apull"),
        "{}",
        token_requests[0].path
    );
    assert!(token_requests[0].path.contains("service=fake.test"));
    assert_eq!(
        fake.count("/v2/team/app/manifests/1"),
        2,
        "anonymous, then with the token"
    );
    assert_eq!(
        fake.count("/v2/team/app/manifests/2"),
        1,
        "with the cached token at once"
    );

    // Another repository is another scope: another token.
    select(&configured, "team/other", Some("fake.test"))
        .manifest("1")
        .await
        .unwrap();
    assert_eq!(
        fake.count("/token?service=fake.test&scope=repository%3Ateam%2Fother%3Apull&account=robot"),
        1
    );

    // A token the registry refuses, and credentials the token service refuses: the errors
    // hold neither the token nor the password.
    let error = manifest_error(&configured, "team/rejected", "fake.test", "1").await;
    assert!(error.to_string().contains("refused the token"), "{error}");
    let wrong = fake_upstreams(
        dir.path(),
        &fake,
        "      username: robot\n      password: not-pa55\n",
    );
    let refused = manifest_error(&wrong, "team/app", "fake.test", "1").await;
    assert!(
        matches!(refused, UpstreamError::Unauthorized { .. }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("token service answered 401"),
        "{refused}"
    );
    for text in [
        error.to_string(),
        format!("{error:?}"),
        refused.to_string(),
        format!("{refused:?}"),
    ] {
        assert!(!text.contains(TOKEN) && !text.contains("pa55"), "{text}");
    }
}

#[tokio::test]
async fn concurrent_fetches_from_a_fake_upstream_are_counted_once() {
    let blob = vec![42u8; 300_000];
    let blob_digest = Digest::of(&blob);
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec();
    let manifest_digest = Digest::of(&manifest);
    let fake = FakeUpstream::start(move |seen| {
        if seen.path.contains("/blobs/") {
            ok("application/octet-stream", &blob)
        } else {
            ok(image::manifest::OCI_INDEX, &manifest)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let configured = fake_upstreams(dir.path(), &fake, "");
    let selected = select(&configured, "x", Some("fake.test"));
    let temp = dir.path().to_owned();
    let blobs = (0..6).map(|_| {
        let target = temp.join("stored");
        selected.blob_once(&blob_digest, &temp, move |fetched| {
            fetched.file.persist(target).map(drop).map_err(|e| e.error)
        })
    });
    let reference = manifest_digest.to_string();
    let manifests = (0..6).map(|_| selected.manifest(&reference));
    let (blobs, manifests) = tokio::join!(
        futures::future::join_all(blobs),
        futures::future::join_all(manifests)
    );
    assert!(
        blobs
            .iter()
            .all(|r| r.as_ref().is_ok_and(|s| s.size == 300_000))
    );
    assert!(
        manifests
            .iter()
            .all(|r| r.as_ref().is_ok_and(|m| m.digest == manifest_digest))
    );
    assert_eq!(fake.count(&format!("/v2/x/blobs/{blob_digest}")), 1);
    assert_eq!(fake.count(&format!("/v2/x/manifests/{manifest_digest}")), 1);
    assert_eq!(
        std::fs::read(dir.path().join("stored")).unwrap().len(),
        300_000
    );

    // Once finished, a new request fetches again (the cache is the caller's storage).
    selected
        .manifest(&manifest_digest.to_string())
        .await
        .unwrap();
    assert_eq!(fake.count(&format!("/v2/x/manifests/{manifest_digest}")), 2);
}

/// A CA (written to `ca.pem` in `dir`) and a TLS server configuration with a certificate for
/// 127.0.0.1 signed by it.
fn test_pki(dir: &Path) -> Arc<rustls::ServerConfig> {
    let ca = TestCa::new("upstream test CA");
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let server = ca.issue(&["127.0.0.1", "localhost"], Usage::Server);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server.cert_der.into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server.key_der.into()),
        )
        .unwrap();
    Arc::new(config)
}

#[tokio::test]
async fn tls_upstreams_are_trusted_through_their_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let fake = FakeUpstream::start_with(Some(test_pki(dir.path())), |_| {
        ok(image::manifest::OCI_INDEX, manifest)
    })
    .await;
    let with_ca = fake_upstreams(dir.path(), &fake, "      ca_file: ca.pem\n");
    let fetched = select(&with_ca, "x", Some("fake.test"))
        .manifest("1")
        .await
        .unwrap();
    assert_eq!(fetched.digest, Digest::of(manifest));

    let without_ca = fake_upstreams(dir.path(), &fake, "");
    let error = manifest_error(&without_ca, "x", "fake.test", "1").await;
    assert!(
        matches!(error, UpstreamError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("certificate"), "{error}");

    let skipping = fake_upstreams(dir.path(), &fake, "      insecure_skip_verify: true\n");
    select(&skipping, "x", Some("fake.test"))
        .manifest("1")
        .await
        .unwrap();
    assert_eq!(
        fake.count("/v2/x/manifests/1"),
        2,
        "the untrusted handshake sent no request"
    );
}

/// The value of one counter in the server's `/metrics` text.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_pulls_through_by_ns_and_prefix_and_serves_repeats_from_storage() {
    let dir = tempfile::tempdir().unwrap();
    let one = Registry::start();
    let alpha = push_generated(
        one.addr(),
        "library/alpha:1",
        &[ImageSpec::amd64(&[40_000, 3_000], seed_of("through-alpha"))],
    );
    let (two, beta) = authenticated_registry_with(
        &dir.path().join("two"),
        "team/beta:2",
        &[ImageSpec::amd64(&[30_000], seed_of("through-beta"))],
    );
    std::fs::write(dir.path().join("two.password"), "s3cret-pw\n").unwrap();
    let proxy = format!(
        "proxy:
  upstreams:
    - name: one.test
      url: http://{}
    - name: two.test
      url: http://{}
      username: robot
      password_file: {}
",
        one.addr(),
        two.addr(),
        dir.path().join("two.password").display(),
    );
    let ours = ProxyServer::start(dir.path(), &proxy).await;
    let metrics = ours.metrics.clone();

    // skopeo through the default prefix `two.test/`: the upstream's credentials are ours.
    let pull_beta = {
        let ours = ours.addr.clone();
        move |dest: &Path| {
            testkit::skopeo::copy(
                &format!("docker://{ours}/two.test/team/beta:2"),
                &format!("dir:{}", dest.display()),
            );
        }
    };
    let first = tempfile::tempdir().unwrap();
    tokio::task::spawn_blocking({
        let pull_beta = pull_beta.clone();
        let dest = first.path().to_owned();
        move || pull_beta(&dest)
    })
    .await
    .unwrap();
    for layer in &beta.layers {
        let hex = layer.trim_start_matches("sha256:");
        assert!(first.path().join(hex).is_file(), "layer {layer} not pulled");
    }

    // containerd's way: the original name's repository with `ns=`.
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("http://{}{path}", ours.addr);
        async move {
            let response = client
                .get(&url)
                .header(
                    "accept",
                    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
                )
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let digest = response
                .headers()
                .get("docker-content-digest")
                .map(|value| value.to_str().unwrap().to_owned());
            (status, digest, response.bytes().await.unwrap())
        }
    };
    let pull_alpha = || async {
        let (status, digest, _) = get("/v2/library/alpha/manifests/1?ns=one.test".into()).await;
        assert_eq!(status, 200);
        assert_eq!(digest.as_deref(), Some(alpha.digest.as_str()));
        for layer in &alpha.layers {
            let (status, _, body) =
                get(format!("/v2/library/alpha/blobs/{layer}?ns=one.test")).await;
            assert_eq!(status, 200, "{layer}");
            assert_eq!(Digest::of(&body).to_string(), *layer);
        }
    };
    pull_alpha().await;
    // Not in storage and not upstream: the registry's own 404.
    let (status, _, body) = get("/v2/library/absent/manifests/1?ns=one.test".into()).await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("MANIFEST_UNKNOWN"));

    let upstream_gets = |registry: &Registry| registry.log().matches("\"GET /v2/").count();
    let (one_before, two_before) = (upstream_gets(&one), upstream_gets(&two));
    let misses = counter(&metrics.render(), "sealer_registry_cache_misses_total");
    assert!(misses >= 6, "{}", metrics.render());

    // The second pull of each image is served from storage: no upstream request.
    pull_alpha().await;
    let second = tempfile::tempdir().unwrap();
    let dest = second.path().to_owned();
    tokio::task::spawn_blocking(move || pull_beta(&dest))
        .await
        .unwrap();
    assert_eq!(upstream_gets(&one), one_before, "{}", one.log());
    assert_eq!(upstream_gets(&two), two_before, "{}", two.log());
    let text = metrics.render();
    assert_eq!(counter(&text, "sealer_registry_cache_misses_total"), misses);
    assert!(
        counter(&text, "sealer_registry_cache_hits_total") >= 6,
        "{text}"
    );
    assert!(
        counter(&text, "sealer_registry_upstream_bytes_total") > 70_000,
        "{text}"
    );

    // What was cached is plain distribution storage: the stock registry serves it.
    let stock = Registry::builder()
        .storage(dir.path().join("storage"))
        .start();
    let pulled =
        testkit::skopeo::inspect_raw(&format!("docker://{}/library/alpha:1", stock.addr()));
    assert_eq!(Digest::of(pulled.as_bytes()).to_string(), alpha.digest);

    ours.stop().await;
}

/// Our registry serving `<dir>/storage` with the given `proxy:` section, in this process.
struct ProxyServer {
    addr: String,
    metrics: registry::server::Metrics,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<Result<(), registry::server::ServeError>>,
}

impl ProxyServer {
    async fn start(dir: &Path, proxy: &str) -> ProxyServer {
        use registry::config::{ServeConfig, ServeFlags};
        use registry::server::{Server, ServerOptions};
        let config_file = dir.join("config.yml");
        std::fs::write(
            &config_file,
            format!(
                "storage:\n  filesystem:\n    rootdirectory: {}\n{proxy}",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let config = ServeConfig::resolve(&ServeFlags {
            config: Some(config_file),
            ..ServeFlags::default()
        })
        .unwrap();
        let options = ServerOptions::from_config(&config).unwrap();
        let server = Server::bind("127.0.0.1:0", options).await.unwrap();
        let addr = server.local_addr().to_string();
        let metrics = server.metrics();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        ProxyServer {
            addr,
            metrics,
            stop,
            running,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.running.await.unwrap().unwrap();
    }
}

/// A private containerd (its own root, state and socket under `dir`), killed on drop.
struct Containerd {
    child: std::process::Child,
    socket: std::path::PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("containerd.sock");
        let config = dir.join("containerd.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{}\"\n",
                dir.join("root").display(),
                dir.join("state").display(),
                socket.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new(CONTAINERD)
            .arg("--config")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("containerd.log")).unwrap())
            .spawn()
            .unwrap();
        let containerd = Containerd { child, socket };
        for _ in 0..200 {
            if containerd.ctr(&["version"]).status.success() {
                return containerd;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "containerd did not start:\n{}",
            std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
        );
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(CTR)
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CONTAINERD: &str = "/usr/bin/containerd";
const CTR: &str = "/usr/bin/ctr";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_resolves_original_names_through_the_cache_with_hosts_toml() {
    if !Path::new(CONTAINERD).is_file() || !Path::new(CTR).is_file() {
        assert!(
            !testkit::docker::in_ci(),
            "{CONTAINERD} or {CTR} is missing (Debian's containerd, which docker.io pulls in)"
        );
        eprintln!("skipped: {CONTAINERD} or {CTR} is missing (Debian's containerd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let upstream = Registry::start();
    let image = push_generated(
        upstream.addr(),
        "library/hello:1",
        &[ImageSpec::amd64(
            &[25_000, 4_000],
            seed_of("containerd-hello"),
        )],
    );
    // Our registry serves TLS with a certificate of the cluster's CA, as apply starts it.
    let ca = TestCa::new("registry CA");
    let server = ca.issue(&["127.0.0.1"], Usage::Server);
    let (ca_file, cert_file, key_file) = (
        dir.path().join("ca.crt"),
        dir.path().join("registry.crt"),
        dir.path().join("registry.key"),
    );
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, &server.cert_pem).unwrap();
    std::fs::write(&key_file, &server.key_pem).unwrap();
    // It requires credentials, which containerd sends as the header apply configures.
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("puller:{}\n", bcrypt::hash("s3cret", 4).unwrap()),
    )
    .unwrap();
    let ours = ProxyServer::start(
        dir.path(),
        &format!(
            "http:\n  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\nproxy:\n  upstreams:\n    - name: docker.io\n      url: http://{}\n",
            cert_file.display(),
            key_file.display(),
            htpasswd.display(),
            upstream.addr()
        ),
    )
    .await;
    // containerd's mirror configuration for docker.io, as apply writes it on every node.
    let hosts = dir.path().join("certs.d");
    std::fs::create_dir_all(hosts.join("docker.io")).unwrap();
    std::fs::write(
        hosts.join("docker.io/hosts.toml"),
        format!(
            "server = \"https://registry-1.docker.io\"\n\n[host.\"https://{addr}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{}\"\n  [host.\"https://{addr}\".header]\n    Authorization = [\"Basic cHVsbGVyOnMzY3JldA==\"]\n",
            ca_file.display(),
            addr = ours.addr,
        ),
    )
    .unwrap();
    let containerd = Containerd::start(&dir.path().join("containerd"));
    let fetched = tokio::task::spawn_blocking(move || {
        let hosts = hosts.display().to_string();
        let output = containerd.ctr(&[
            "content",
            "fetch",
            "--hosts-dir",
            &hosts,
            "docker.io/library/hello:1",
        ]);
        let listed = containerd.ctr(&["content", "ls", "-q"]);
        (output, listed)
    })
    .await
    .unwrap();
    let (output, listed) = fetched;
    assert!(
        output.status.success(),
        "ctr content fetch failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(&image.digest), "{listed}");
    for layer in &image.layers {
        assert!(
            listed.contains(layer.as_str()),
            "{layer} not fetched:\n{listed}"
        );
    }
    // Every request came to us with containerd's `ns=docker.io` and went on to the upstream.
    let text = ours.metrics.render();
    assert!(
        counter(&text, "sealer_registry_cache_misses_total") >= 4,
        "{text}"
    );
    assert!(
        upstream.log().contains("GET /v2/library/hello/manifests/1"),
        "{}",
        upstream.log()
    );
    ours.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_server_a_hanging_upstream_fails_its_request_and_blocks_nothing() {
    let (fake, blob_digest) = hanging_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let server = ProxyServer::start(
        dir.path(),
        &format!(
            "proxy:\n  upstreams:\n    - name: fake.test\n      url: {}\n      timeout: 500ms\n",
            fake.url()
        ),
    )
    .await;
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("http://{}{path}", server.addr);
        async move {
            let response = client.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let (manifest, blob_response, health) = tokio::join!(
        get("/v2/x/manifests/1?ns=fake.test".to_owned()),
        get(format!("/v2/x/blobs/{blob_digest}?ns=fake.test")),
        get("/v2/".to_owned()),
    );
    assert_eq!(health.0, 200, "other requests are answered meanwhile");
    for (status, body) in [manifest, blob_response] {
        assert_eq!(status, 500, "{body}");
        assert!(body.contains("fake.test"), "names the upstream: {body}");
        assert!(body.contains("no progress"), "says it timed out: {body}");
    }
    let stored = files_in(&dir.path().join("storage"));
    assert!(
        stored.iter().all(|file| !file.ends_with("/data")),
        "nothing stored: {stored:?}"
    );
    server.stop().await;
}
