//! The built-in registry against the stock `docker-registry` (distribution 2.8) and `skopeo`:
//! the same storage directory served by both must answer the same, skopeo must pull every
//! image by tag and digest from ours, pushes into ours must be served by the stock registry,
//! and bad input must be refused without touching the storage.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use image::Digest;
use registry::server::{Htpasswd, Server, ServerOptions};
use registry::storage::Storage;
use testkit::images::{ImageSpec, push_generated, seed_of, write_oci_layout};
use testkit::pki::{TestCa, Usage};
use testkit::registry::Registry;
use testkit::skopeo::{SKOPEO, Skopeo};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Our registry, running in-process on `127.0.0.1:<free port>` until dropped.
struct Ours {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), registry::server::ServeError>>>,
    metrics: registry::server::Metrics,
}

impl Ours {
    fn start(options: ServerOptions) -> Ours {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime
            .block_on(Server::bind("127.0.0.1:0", options))
            .unwrap();
        let addr = server.local_addr();
        let metrics = server.metrics();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(server.run(async {
            let _ = stopped.await;
        }));
        Ours {
            runtime,
            addr,
            stop: Some(stop),
            task: Some(task),
            metrics,
        }
    }

    fn serving(storage: &Path) -> Ours {
        Ours::start(ServerOptions::new(Storage::new(storage)))
    }

    fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Sends a request with reqwest on the server's runtime.
    fn request(&self, request: &Req) -> Snapshot {
        send(&self.runtime, &self.addr(), request)
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = self.runtime.block_on(task);
            if !std::thread::panicking() {
                result.unwrap().unwrap();
            }
        }
    }
}

/// A request to send to a registry.
#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Req {
    fn get(path: impl Into<String>) -> Req {
        Req {
            method: "GET",
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn head(path: impl Into<String>) -> Req {
        Req {
            method: "HEAD",
            ..Req::get(path)
        }
    }

    fn method(method: &'static str, path: impl Into<String>) -> Req {
        Req {
            method,
            ..Req::get(path)
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Req {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self
    }
}

/// What a response had: status, headers (lower-case names), body.
#[derive(Debug, Clone)]
struct Snapshot {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Snapshot {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn send_with(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    base: &str,
    request: &Req,
) -> Snapshot {
    runtime.block_on(async {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
        let mut builder = client.request(method, format!("{base}{}", request.path));
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let response = builder
            .body(request.body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {base}{}: {e}", request.method, request.path));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        // distribution's 416 declares the blob's length but sends a short text: its body
        // cannot be read whole.
        let body = match response.bytes().await {
            Ok(bytes) => bytes.to_vec(),
            Err(_) if status == 416 => Vec::new(),
            Err(error) => panic!("{} {base}{}: {error}", request.method, request.path),
        };
        Snapshot {
            status,
            headers,
            body,
        }
    })
}

fn send(runtime: &tokio::runtime::Runtime, addr: &str, request: &Req) -> Snapshot {
    send_with(runtime, &client(), &format!("http://{addr}"), request)
}

/// Sends raw request bytes and returns the status line's code and the body, so that paths
/// reach the server exactly as written (HTTP clients normalize `..`).
fn raw_request(addr: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// An image in the storage, with what a client may ask of it.
struct Pushed {
    repository: String,
    tag: String,
    digest: String,
    /// Manifest digests besides the top one (children of an index).
    children: Vec<String>,
    blobs: Vec<String>,
}

/// Copies an OCI layout with skopeo, converting to Docker schema 2.
fn push_as_docker(layout: &Path, tag: &str, destination: &str) {
    let output = Command::new(SKOPEO)
        .args([
            "--insecure-policy",
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
        ])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(destination)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo copy --format v2s2 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The blobs (config and layers) a manifest lists.
fn manifest_blobs(bytes: &[u8]) -> Vec<String> {
    let manifest: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().unwrap())
        .map(|descriptor| descriptor["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Fills a stock registry with: an OCI image under two tags, an OCI index of two platforms,
/// a Docker schema 2 image and a Docker manifest list. Returns what each holds.
fn fill(stock: &Registry, runtime: &tokio::runtime::Runtime) -> Vec<Pushed> {
    let addr = stock.addr();
    let mut pushed = Vec::new();
    let single = push_generated(
        addr,
        "library/alpine:3.19",
        &[ImageSpec::amd64(&[3000, 70_000], seed_of("alpine"))],
    );
    Skopeo::new().copy(
        &format!("docker://{addr}/library/alpine:3.19"),
        &format!("docker://{addr}/library/alpine:latest"),
    );
    let multi = push_generated(
        addr,
        "team/multi:v1",
        &[
            ImageSpec::amd64(&[5000], seed_of("multi-amd64")),
            ImageSpec {
                architecture: "arm64".into(),
                layer_sizes: vec![6000],
                seed: seed_of("multi-arm64"),
            },
        ],
    );
    for (repository, tag, generated) in [
        ("library/alpine", "3.19", &single),
        ("library/alpine", "latest", &single),
        ("team/multi", "v1", &multi),
    ] {
        pushed.push(Pushed {
            repository: repository.into(),
            tag: tag.into(),
            digest: generated.digest.clone(),
            children: if generated.manifests.len() > 1 {
                generated.manifests.clone()
            } else {
                Vec::new()
            },
            blobs: Vec::new(),
        });
    }
    let layouts = tempfile::tempdir().unwrap();
    let docker_single = layouts.path().join("docker-single");
    write_oci_layout(
        &docker_single,
        "t",
        &[ImageSpec::amd64(&[4000, 9000], seed_of("docker"))],
    );
    push_as_docker(
        &docker_single,
        "t",
        &format!("docker://{addr}/docker/app:v2"),
    );
    let docker_list = layouts.path().join("docker-list");
    write_oci_layout(
        &docker_list,
        "t",
        &[
            ImageSpec::amd64(&[4500], seed_of("list-amd64")),
            ImageSpec {
                architecture: "arm64".into(),
                layer_sizes: vec![4600],
                seed: seed_of("list-arm64"),
            },
        ],
    );
    push_as_docker(
        &docker_list,
        "t",
        &format!("docker://{addr}/docker/list:v3"),
    );
    // The converted documents have new digests: read them from the registry.
    for (repository, tag) in [("docker/app", "v2"), ("docker/list", "v3")] {
        let head = send(
            runtime,
            addr,
            &Req::head(format!("/v2/{repository}/manifests/{tag}")).header("accept", ALL_TYPES),
        );
        assert_eq!(head.status, 200, "{repository}:{tag}");
        pushed.push(Pushed {
            repository: repository.into(),
            tag: tag.into(),
            digest: head.header("docker-content-digest").unwrap().to_owned(),
            children: Vec::new(),
            blobs: Vec::new(),
        });
    }
    // The children of lists and the blobs of every manifest, as the registry serves them.
    for image in &mut pushed {
        let top = send(
            runtime,
            addr,
            &Req::get(format!(
                "/v2/{}/manifests/{}",
                image.repository, image.digest
            ))
            .header("accept", ALL_TYPES),
        );
        let document = top.json();
        let manifests: Vec<String> = match document["manifests"].as_array() {
            Some(entries) => entries
                .iter()
                .map(|entry| entry["digest"].as_str().unwrap().to_owned())
                .collect(),
            None => vec![image.digest.clone()],
        };
        if document["manifests"].is_array() {
            image.children.clone_from(&manifests);
        }
        for manifest in manifests {
            let child = send(
                runtime,
                addr,
                &Req::get(format!("/v2/{}/manifests/{manifest}", image.repository))
                    .header("accept", ALL_TYPES),
            );
            image.blobs.extend(manifest_blobs(&child.body));
        }
    }
    pushed
}

const ALL_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The requests whose answers must agree, for every image.
fn comparison_requests(images: &[Pushed]) -> Vec<Req> {
    let unknown_digest = format!("sha256:{}", "0".repeat(64));
    let accepts = [
        Some(ALL_TYPES),
        Some(OCI_MANIFEST),
        Some(OCI_INDEX),
        Some(DOCKER_MANIFEST),
        Some(DOCKER_LIST),
        Some(
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json;q=0.5",
        ),
        Some("*/*"),
        None,
    ];
    let mut requests = vec![
        Req::get("/v2/"),
        Req::get("/v2/_catalog"),
        Req::get("/v2/_catalog?n=1"),
        Req::get("/v2/_catalog?n=2&last=docker%2Fapp"),
        Req::get("/v2/_catalog?n=0"),
        Req::get("/v2/nothere/tags/list"),
        Req::get("/v2/nothere/manifests/latest").header("accept", ALL_TYPES),
        Req::get(format!("/v2/library/alpine/manifests/{unknown_digest}"))
            .header("accept", ALL_TYPES),
        Req::get(format!("/v2/library/alpine/blobs/{unknown_digest}")),
        Req::head(format!("/v2/library/alpine/blobs/{unknown_digest}")),
        Req::get("/v2/library/alpine/blobs/sha256:zz"),
        Req::get("/v2/library/alpine/manifests/nope").header("accept", ALL_TYPES),
    ];
    for image in images {
        let base = format!("/v2/{}", image.repository);
        requests.push(Req::get(format!("{base}/tags/list")));
        let references = std::iter::once(image.tag.clone())
            .chain(std::iter::once(image.digest.clone()))
            .chain(image.children.iter().cloned());
        for reference in references {
            for accept in accepts {
                for method in ["GET", "HEAD"] {
                    let mut request = Req::method(method, format!("{base}/manifests/{reference}"));
                    if let Some(accept) = accept {
                        request = request.header("accept", accept);
                    }
                    requests.push(request);
                }
            }
        }
        // A manifest is not a blob of the repository.
        requests.push(Req::get(format!("{base}/blobs/{}", image.digest)));
        for blob in &image.blobs {
            let path = format!("{base}/blobs/{blob}");
            requests.push(Req::get(&path));
            requests.push(Req::head(&path));
            requests.push(Req::get(&path).header("range", "bytes=10-99"));
            requests.push(Req::get(&path).header("range", "bytes=-7"));
            requests.push(Req::get(&path).header("range", "bytes=100-"));
            requests.push(Req::head(&path).header("range", "bytes=0-0"));
            requests.push(Req::get(&path).header("range", "bytes=99999999-"));
            requests.push(Req::get(&path).header("if-none-match", format!("\"{blob}\"")));
        }
    }
    requests
}

/// Checks that two answers agree in what matters to clients.
fn assert_same(request: &Req, ours: &Snapshot, stock: &Snapshot) {
    let context = || {
        format!(
            "{} {} {:?}\n ours: {} {:?} {}\nstock: {} {:?} {}",
            request.method,
            request.path,
            request.headers,
            ours.status,
            ours.headers,
            String::from_utf8_lossy(&ours.body),
            stock.status,
            stock.headers,
            String::from_utf8_lossy(&stock.body)
        )
    };
    assert_eq!(ours.status, stock.status, "{}", context());
    let mut names = vec![
        "docker-content-digest",
        "docker-distribution-api-version",
        "etag",
        "link",
        "content-range",
    ];
    if ours.status < 400 {
        names.extend([
            "content-type",
            "content-length",
            "accept-ranges",
            "cache-control",
        ]);
    } else if ours.status != 416 {
        names.push("content-type");
    }
    for name in names {
        assert_eq!(
            ours.header(name),
            stock.header(name),
            "header {name}: {}",
            context()
        );
    }
    if ours.status >= 400 && ours.status != 416 && request.method != "HEAD" {
        let (ours_json, stock_json) = (ours.json(), stock.json());
        let ours_error = &ours_json["errors"][0];
        let stock_error = &stock_json["errors"][0];
        assert_eq!(ours_error["code"], stock_error["code"], "{}", context());
        assert_eq!(
            ours_error["message"],
            stock_error["message"],
            "{}",
            context()
        );
        // Our details of invalid input say more than distribution's empty objects.
        if !matches!(
            stock_error["code"].as_str(),
            Some("MANIFEST_INVALID" | "DIGEST_INVALID")
        ) {
            assert_eq!(ours_error["detail"], stock_error["detail"], "{}", context());
        }
    } else if request.path.ends_with("/tags/list") && ours.status == 200 {
        let sorted = |snapshot: &Snapshot| {
            let mut json = snapshot.json();
            if let Some(tags) = json["tags"].as_array_mut() {
                tags.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            json
        };
        assert_eq!(sorted(ours), sorted(stock), "{}", context());
    } else if ours.status != 416 {
        assert_eq!(ours.body, stock.body, "body: {}", context());
    }
}

/// The digest of what skopeo wrote as the manifest of a `dir:` copy.
fn copied_manifest_digest(dir: &Path) -> String {
    Digest::of(&std::fs::read(dir.join("manifest.json")).unwrap()).to_string()
}

#[test]
fn serves_a_storage_directory_as_docker_registry_does() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let writer = Registry::start();
    let images = fill(&writer, &runtime);
    let storage = writer.storage_dir().to_owned();
    let stock = Registry::builder().storage(&storage).start();
    let ours = Ours::serving(&storage);

    let requests = comparison_requests(&images);
    let stock_client = client();
    for request in &requests {
        let theirs = send_with(
            &runtime,
            &stock_client,
            &format!("http://{}", stock.addr()),
            request,
        );
        let mine = ours.request(request);
        assert_same(request, &mine, &theirs);
    }

    // skopeo pulls every image from ours by tag and by digest, all platforms included.
    let copies = tempfile::tempdir().unwrap();
    for (n, image) in images.iter().enumerate() {
        for reference in [format!(":{}", image.tag), format!("@{}", image.digest)] {
            let source = format!("docker://{}/{}{reference}", ours.addr(), image.repository);
            let all = copies.path().join(format!("{n}-all{}", reference.len()));
            Skopeo::new().copy_all(&source, &format!("dir:{}", all.display()));
            assert_eq!(copied_manifest_digest(&all), image.digest, "{source}");
            let host = copies.path().join(format!("{n}-host{}", reference.len()));
            Skopeo::new()
                .override_arch("amd64")
                .copy(&source, &format!("dir:{}", host.display()));
            let expected = image.children.first().unwrap_or(&image.digest);
            assert_eq!(&copied_manifest_digest(&host), expected, "{source}");
        }
    }
    assert!(ours.metrics.requests(200) > 0);
    assert!(ours.metrics.bytes_served() > 0);
}

#[test]
fn containerd_namespaces_find_full_names_first() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let writer = Registry::start();
    // What the build writes for docker.io/library/app:1 and quay.io/library/app:1: the full
    // names, and the short name taken by the first.
    let docker = push_generated(
        writer.addr(),
        "docker.io/library/app:1",
        &[ImageSpec::amd64(&[1000], seed_of("docker.io app"))],
    );
    Skopeo::new().copy(
        &format!("docker://{}/docker.io/library/app:1", writer.addr()),
        &format!("docker://{}/library/app:1", writer.addr()),
    );
    let quay = push_generated(
        writer.addr(),
        "quay.io/library/app:1",
        &[ImageSpec::amd64(&[1000], seed_of("quay.io app"))],
    );
    let ours = Ours::serving(writer.storage_dir());
    let digest_for = |query: &str| {
        let answer = ours.request(
            &Req::head(format!("/v2/library/app/manifests/1{query}")).header("accept", ALL_TYPES),
        );
        assert_eq!(answer.status, 200, "{query}");
        answer.header("docker-content-digest").unwrap().to_owned()
    };
    assert_eq!(digest_for(""), docker.digest);
    assert_eq!(digest_for("?ns=docker.io"), docker.digest);
    assert_eq!(digest_for("?ns=quay.io"), quay.digest);
    // A registry the storage does not know falls back to the short name.
    assert_eq!(digest_for("?ns=ghcr.io"), docker.digest);
    let quay_layer = &quay.layers[0];
    let blob = ours.request(&Req::head(format!(
        "/v2/library/app/blobs/{quay_layer}?ns=quay.io"
    )));
    assert_eq!(blob.status, 200);
    let blob = ours.request(&Req::head(format!("/v2/library/app/blobs/{quay_layer}")));
    assert_eq!(blob.status, 404);
    let tags = ours.request(&Req::get("/v2/library/app/tags/list?ns=quay.io"));
    assert_eq!(
        tags.json(),
        serde_json::json!({"name": "library/app", "tags": ["1"]})
    );
    drop(runtime);
}

/// Pushes a blob through a monolithic POST.
fn post_blob(ours: &Ours, repository: &str, bytes: &[u8]) -> Snapshot {
    ours.request(
        &Req::method(
            "POST",
            format!(
                "/v2/{repository}/blobs/uploads/?digest={}",
                Digest::of(bytes)
            ),
        )
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec()),
    )
}

/// The path and query of an absolute or relative `Location`.
fn location_path(snapshot: &Snapshot) -> String {
    let location = snapshot.header("location").expect("a Location header");
    match location.find("://") {
        Some(scheme_end) => {
            let after = &location[scheme_end + 3..];
            after[after.find('/').unwrap_or(after.len())..].to_owned()
        }
        None => location.to_owned(),
    }
}

/// Every file of the storage that distribution would not take for content: nothing but
/// `data`, `link` and upload `startedat` files may be there after pushes complete.
fn stray_files(storage: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if !matches!(
                path.file_name().and_then(|name| name.to_str()),
                Some("data" | "link")
            ) {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(storage, &mut found);
    found
}

#[test]
fn pushes_are_stored_for_docker_registry_to_serve() {
    let storage = tempfile::tempdir().unwrap();
    let mut options = ServerOptions::new(Storage::new(storage.path()));
    options.push = true;
    let ours = Ours::start(options);

    // skopeo pushes (POST, then PATCH with the whole blob, then PUT ?digest=).
    let pushed = push_generated(
        &ours.addr(),
        "team/app:v1",
        &[ImageSpec::amd64(&[20_000, 300_000], seed_of("pushed"))],
    );
    let index = push_generated(
        &ours.addr(),
        "team/multi:v1",
        &[
            ImageSpec::amd64(&[3000], seed_of("pushed-amd64")),
            ImageSpec {
                architecture: "arm64".into(),
                layer_sizes: vec![3000],
                seed: seed_of("pushed-arm64"),
            },
        ],
    );

    // Monolithic, chunked with Content-Range, and mounted blobs, and a manifest over them.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let created = post_blob(&ours, "raw/app", config);
    assert_eq!(created.status, 201, "{:?}", created.headers);
    assert_eq!(
        created.header("docker-content-digest"),
        Some(Digest::of(config).to_string().as_str())
    );
    let layer: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let started = ours.request(&Req::method("POST", "/v2/raw/app/blobs/uploads/"));
    assert_eq!(started.status, 202);
    assert_eq!(started.header("range"), Some("0-0"));
    let id = started.header("docker-upload-uuid").unwrap().to_owned();
    let mut location = location_path(&started);
    assert!(location.ends_with(&id), "{location}");
    for (start, chunk) in [(0usize, &layer[..60_000]), (60_000, &layer[60_000..])] {
        let end = start + chunk.len() - 1;
        let patched = ours.request(
            &Req::method("PATCH", &location)
                .header("content-range", format!("{start}-{end}"))
                .header("content-type", "application/octet-stream")
                .body(chunk.to_vec()),
        );
        assert_eq!(patched.status, 202);
        assert_eq!(patched.header("range"), Some(format!("0-{end}").as_str()));
        location = location_path(&patched);
    }
    let status = ours.request(&Req::get(&location));
    assert_eq!(status.status, 204);
    assert_eq!(status.header("range"), Some("0-99999"));
    let out_of_order = ours.request(
        &Req::method("PATCH", &location)
            .header("content-range", "5-9")
            .body(b"12345".to_vec()),
    );
    assert_eq!(out_of_order.status, 416);
    assert_eq!(out_of_order.error_code(), "RANGE_INVALID");
    let layer_digest = Digest::of(&layer);
    let finished = ours.request(&Req::method(
        "PUT",
        format!("{location}?digest={layer_digest}"),
    ));
    assert_eq!(finished.status, 201);
    assert_eq!(
        location_path(&finished),
        format!("/v2/raw/app/blobs/{layer_digest}")
    );
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let put = ours.request(
        &Req::method("PUT", "/v2/raw/app/manifests/v1")
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone()),
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(
        put.header("docker-content-digest"),
        Some(Digest::of(&manifest).to_string().as_str())
    );
    for blob in [Digest::of(config), layer_digest.clone()] {
        let mounted = ours.request(&Req::method(
            "POST",
            format!("/v2/raw/copy/blobs/uploads/?mount={blob}&from=raw/app"),
        ));
        assert_eq!(mounted.status, 201);
    }
    let not_mounted = ours.request(&Req::method(
        "POST",
        format!(
            "/v2/raw/copy/blobs/uploads/?mount={}&from=nothere",
            Digest::of(b"x")
        ),
    ));
    assert_eq!(not_mounted.status, 202, "a failed mount starts an upload");
    let cancelled = ours.request(&Req::method("DELETE", location_path(&not_mounted)));
    assert_eq!(cancelled.status, 204);
    let put = ours.request(
        &Req::method(
            "PUT",
            format!("/v2/raw/copy/manifests/{}", Digest::of(&manifest)),
        )
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone()),
    );
    assert_eq!(put.status, 201);
    // A manifest whose blobs the repository lacks is refused.
    let refused = ours.request(
        &Req::method("PUT", "/v2/raw/other/manifests/v1")
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone()),
    );
    assert_eq!(refused.status, 400);
    assert_eq!(refused.error_code(), "MANIFEST_BLOB_UNKNOWN");
    drop(ours);

    assert_eq!(stray_files(storage.path()), Vec::<PathBuf>::new());

    // The stock registry serves what we wrote, and skopeo reads it back intact.
    let stock = Registry::builder().storage(storage.path()).start();
    let copies = tempfile::tempdir().unwrap();
    for (reference, expected) in [
        ("team/app:v1".to_owned(), pushed.digest.clone()),
        (format!("team/app@{}", pushed.digest), pushed.digest.clone()),
        ("team/multi:v1".to_owned(), index.digest.clone()),
        ("raw/app:v1".to_owned(), Digest::of(&manifest).to_string()),
        (
            format!("raw/copy@{}", Digest::of(&manifest)),
            Digest::of(&manifest).to_string(),
        ),
    ] {
        let dir = copies.path().join(reference.replace(['/', ':', '@'], "_"));
        Skopeo::new().copy_all(
            &format!("docker://{}/{reference}", stock.addr()),
            &format!("dir:{}", dir.display()),
        );
        assert_eq!(copied_manifest_digest(&dir), expected, "{reference}");
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let catalog = send(&runtime, stock.addr(), &Req::get("/v2/_catalog"));
    assert_eq!(
        catalog.json(),
        serde_json::json!({"repositories": ["raw/app", "raw/copy", "team/app", "team/multi"]})
    );
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let storage = tempfile::tempdir().unwrap();
    let mut options = ServerOptions::new(Storage::new(storage.path()));
    options.push = true;
    let ours = Ours::start(options);
    push_generated(
        &ours.addr(),
        "x:1",
        &[ImageSpec::amd64(&[1000], seed_of("x"))],
    );

    // Path traversal, as written and percent-encoded, never reaches the file system.
    for path in [
        "/v2/../x/manifests/1",
        "/v2/x/../x/manifests/1",
        "/v2/%2e%2e/x/manifests/1",
        "/v2/..%2f..%2fetc/manifests/1",
        "/v2/x/./y/tags/list",
        "/v2//x/tags/list",
        "/v2/X/tags/list",
        "/v2/_uploads/tags/list",
        "/v2/x/_manifests/tags/list",
    ] {
        let (status, body) = raw_request(
            &ours.addr(),
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("NAME_INVALID"), "{path}: {body}");
    }
    let (status, body) = raw_request(
        &ours.addr(),
        "GET /v2/x/blobs/uploads/..%2f..%2f..%2fx HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("BLOB_UPLOAD_UNKNOWN"), "{body}");
    let traversal_tag = ours.request(&Req::get("/v2/x/manifests/..%2f..%2f1"));
    assert_eq!(traversal_tag.status, 404);
    assert_eq!(traversal_tag.error_code(), "MANIFEST_UNKNOWN");

    // A corrupt upload (the content does not have the digest named) is refused and leaves
    // no blob under either digest, and no upload behind.
    let claimed = Digest::of(b"the real content");
    let started = ours.request(&Req::method("POST", "/v2/x/blobs/uploads/"));
    let location = location_path(&started);
    ours.request(&Req::method("PATCH", &location).body(b"corrupted content".to_vec()));
    let finished = ours.request(&Req::method("PUT", format!("{location}?digest={claimed}")));
    assert_eq!(finished.status, 400);
    assert_eq!(finished.error_code(), "DIGEST_INVALID");
    let monolithic = ours.request(
        &Req::method("POST", format!("/v2/x/blobs/uploads/?digest={claimed}"))
            .body(b"corrupted content".to_vec()),
    );
    assert_eq!(monolithic.status, 400);
    assert_eq!(monolithic.error_code(), "DIGEST_INVALID");
    for digest in [claimed.clone(), Digest::of(b"corrupted content")] {
        let head = ours.request(&Req::head(format!("/v2/x/blobs/{digest}")));
        assert_eq!(head.status, 404);
        let data = storage
            .path()
            .join(image::distribution::blob_data_path(&digest));
        assert!(!data.exists(), "{}", data.display());
    }
    assert_eq!(
        ours.request(&Req::get(&location)).error_code(),
        "BLOB_UPLOAD_UNKNOWN"
    );
    let bad_digest = ours.request(&Req::method(
        "PUT",
        "/v2/x/blobs/uploads/00000000-0000-4000-8000-000000000000?digest=sha256:zz",
    ));
    assert_eq!(bad_digest.status, 404);
    assert_eq!(stray_files(storage.path()), Vec::<PathBuf>::new());

    // Deletes are not offered.
    let digest = ours
        .request(&Req::head("/v2/x/manifests/1").header("accept", ALL_TYPES))
        .header("docker-content-digest")
        .unwrap()
        .to_owned();
    let delete = ours.request(&Req::method("DELETE", format!("/v2/x/manifests/{digest}")));
    assert_eq!(delete.status, 405);
    assert_eq!(delete.error_code(), "UNSUPPORTED");
    drop(ours);

    // Without push, uploads and manifest pushes answer as a read-only distribution.
    let read_only = Ours::serving(storage.path());
    for request in [
        Req::method("POST", "/v2/x/blobs/uploads/"),
        Req::method("PUT", "/v2/x/manifests/2").body(b"{}".to_vec()),
        Req::method(
            "PATCH",
            "/v2/x/blobs/uploads/00000000-0000-4000-8000-000000000000",
        ),
    ] {
        let answer = read_only.request(&request);
        assert_eq!(answer.status, 405, "{request:?}");
        assert_eq!(answer.error_code(), "UNSUPPORTED");
    }
    assert_eq!(
        read_only
            .request(&Req::get("/v2/x/manifests/1").header("accept", ALL_TYPES))
            .status,
        200
    );
}

/// An htpasswd file for `user:password`, made by Apache's `htpasswd -B`.
fn htpasswd_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let output = Command::new(testkit::registry::HTPASSWD)
        .args(["-Bbn", user, password])
        .output()
        .unwrap();
    assert!(output.status.success());
    let path = dir.join("htpasswd");
    std::fs::write(&path, output.stdout).unwrap();
    path
}

#[test]
fn htpasswd_guards_everything_but_health_and_metrics() {
    let writer = Registry::start();
    push_generated(
        writer.addr(),
        "guarded:1",
        &[ImageSpec::amd64(&[1000], seed_of("guarded"))],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = htpasswd_file(dir.path(), "alice", "s3cret");
    let mut options = ServerOptions::new(Storage::new(writer.storage_dir()));
    options.htpasswd = Some(Htpasswd::load(&file, "sealer test").unwrap());
    options.access_log = true;
    let ours = Ours::start(options);
    let stock = Registry::builder()
        .storage(writer.storage_dir())
        .htpasswd("alice", "s3cret")
        .start();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    for path in ["/v2/", "/v2/guarded/tags/list", "/v2/_catalog"] {
        let mine = ours.request(&Req::get(path));
        let theirs = send(&runtime, stock.addr(), &Req::get(path));
        assert_eq!(mine.status, 401, "{path}");
        assert_eq!(
            mine.header("www-authenticate"),
            Some("Basic realm=\"sealer test\"")
        );
        assert_eq!(mine.error_code(), "UNAUTHORIZED");
        assert_eq!(
            mine.json()["errors"][0]["detail"],
            theirs.json()["errors"][0]["detail"],
            "{path}"
        );
        let wrong = ours.request(&Req::get(path).header("authorization", basic("alice:wrong")));
        assert_eq!(wrong.status, 401);
        let right = ours.request(&Req::get(path).header("authorization", basic("alice:s3cret")));
        assert_eq!(right.status, 200, "{path}");
    }
    assert_eq!(ours.request(&Req::get("/healthz")).status, 200);
    assert_eq!(ours.request(&Req::get("/metrics")).status, 200);

    let copy = tempfile::tempdir().unwrap();
    Skopeo::new().creds("alice:s3cret").copy(
        &format!("docker://{}/guarded:1", ours.addr()),
        &format!("dir:{}", copy.path().join("image").display()),
    );
    let refused = Skopeo::new().try_inspect_raw(&format!("docker://{}/guarded:1", ours.addr()));
    assert!(
        refused.is_err(),
        "skopeo without credentials got {refused:?}"
    );
}

fn basic(credentials: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// A CA and a server certificate for `127.0.0.1` and `localhost` signed by it, as PEM files
/// in `dir`: `ca.crt`, `server.crt`, `server.key`.
fn make_pki(dir: &Path) {
    let ca = TestCa::new("registry-ca");
    let server = ca.issue(&["127.0.0.1", "localhost"], Usage::Server);
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), server.cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), server.key_pem).unwrap();
}

#[test]
fn tls_with_a_generated_certificate() {
    let writer = Registry::start();
    let generated = push_generated(
        writer.addr(),
        "secure/app:1",
        &[ImageSpec::amd64(&[2000], seed_of("secure"))],
    );
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let mut options = ServerOptions::new(Storage::new(writer.storage_dir()));
    options.tls = Some(
        registry::server::tls_server_config(
            &pki.path().join("server.crt"),
            &pki.path().join("server.key"),
        )
        .unwrap(),
    );
    let ours = Ours::start(options);

    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(pki.path().join("ca.crt")).unwrap()).unwrap();
    let trusting = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let base = format!("https://{}", ours.addr());
    let answer = send_with(&ours.runtime, &trusting, &base, &Req::get("/v2/"));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"{}");
    // Plain HTTP on the TLS port gets no answer.
    let plain = ours
        .runtime
        .block_on(client().get(format!("http://{}/v2/", ours.addr())).send());
    assert!(plain.is_err());

    // skopeo verifies the certificate against the CA in --src-cert-dir.
    let certs = tempfile::tempdir().unwrap();
    std::fs::copy(pki.path().join("ca.crt"), certs.path().join("ca.crt")).unwrap();
    let copy = tempfile::tempdir().unwrap();
    let destination = copy.path().join("image");
    let output = Command::new(SKOPEO)
        .arg("--insecure-policy")
        .arg("copy")
        .arg("--src-cert-dir")
        .arg(certs.path())
        .arg(format!("docker://{}/secure/app:1", ours.addr()))
        .arg(format!("dir:{}", destination.display()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo over TLS failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(copied_manifest_digest(&destination), generated.digest);
    // Without the CA, skopeo refuses the certificate.
    let untrusted = Command::new(SKOPEO)
        .args(["--insecure-policy", "inspect", "--raw"])
        .arg(format!("docker://{}/secure/app:1", ours.addr()))
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
}

#[test]
fn health_and_metrics() {
    let storage = tempfile::tempdir().unwrap();
    let root = storage.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let ours = Ours::serving(&root);
    let health = ours.request(&Req::get("/healthz"));
    assert_eq!(health.status, 200);
    let missing = ours.request(&Req::get("/v2/nothing/tags/list"));
    assert_eq!(missing.status, 404);
    let metrics = ours.request(&Req::get("/metrics"));
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains("sealer_registry_http_requests_total{code=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sealer_registry_http_requests_total{code=\"404\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sealer_registry_cache_hits_total 0"),
        "{text}"
    );
    std::fs::remove_dir(&root).unwrap();
    let unhealthy = ours.request(&Req::get("/healthz"));
    assert_eq!(unhealthy.status, 503);
    assert!(String::from_utf8_lossy(&unhealthy.body).contains("root"));
}
