//! The gateway client, the gateway context view and the gateway-mode flow against a fake
//! BuildKit gateway served over OS pipes.

mod support;

use std::collections::HashMap;
use std::io::Read;

use bollard_buildkit_proto::moby::buildkit::v1::frontend::result;
use frontend::gateway::{READ_CHUNK, RefId};
use frontend::opts::OptionsError;
use frontend::{FrontendOptions, GatewayView};
use kubefile::context::{ContextView, EntryKind};
use llb::pb;
use llb::source::ResolveMode;
use support::{FakeEntry, FakeGateway, cap, platform};

/// Bytes that differ at every position within a chunk, so a misplaced chunk is noticed.
fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect()
}

#[tokio::test]
async fn ping_reports_caps_and_worker_platforms() {
    let mut disabled = cap("exec.mount.ssh");
    disabled.enabled = false;
    let fake = FakeGateway::new()
        .with_caps(
            vec![cap("source.local"), cap("file.base"), disabled],
            vec![cap("readfile"), cap("proto.refarray")],
        )
        .with_worker(
            "moby",
            vec![platform("linux", "amd64"), platform("linux", "386")],
        );
    let gateway = fake.start().await;
    let pong = gateway.ping().await.unwrap();
    assert!(pong.llb_caps.require("file.base").is_ok());
    assert!(pong.llb_caps.require("exec.mount.ssh").is_err());
    assert!(pong.llb_caps.require("source.git").is_err());
    assert!(pong.gateway_caps.require("proto.refarray").is_ok());
    assert!(pong.gateway_caps.require("file.base").is_err());
    assert_eq!(
        pong.worker_platforms,
        [platform("linux", "amd64"), platform("linux", "386")]
    );
}

#[tokio::test]
async fn large_files_are_read_in_chunks() {
    let ten_mib = patterned(10 << 20);
    let eight_mib = patterned(2 * READ_CHUNK);
    let fake = FakeGateway::new()
        .with_file("r", "images/big.tar", ten_mib.clone())
        .with_file("r", "even", eight_mib.clone());
    let gateway = fake.start().await;
    let reference = RefId::new("r");

    assert_eq!(
        gateway
            .read_file(&reference, "images/big.tar")
            .await
            .unwrap(),
        ten_mib
    );
    let ranges: Vec<(i64, i64)> = fake
        .state()
        .reads
        .iter()
        .map(|read| {
            let range = read.range.expect("every read has a range");
            (range.offset, range.length)
        })
        .collect();
    let chunk = i64::try_from(READ_CHUNK).unwrap();
    assert_eq!(ranges, [(0, chunk), (chunk, chunk), (2 * chunk, chunk)]);

    // A size that is a multiple of the chunk ends with an empty read.
    assert_eq!(
        gateway.read_file(&reference, "even").await.unwrap(),
        eight_mib
    );
    assert_eq!(fake.count("ReadFile"), 6);
}

#[tokio::test]
async fn solve_sends_the_definition_and_returns_the_ref() {
    let fake = FakeGateway::new().with_solve_result("ref-1");
    let gateway = fake.start().await;
    let definition = pb::Definition {
        def: vec![vec![1, 2, 3]],
        ..pb::Definition::default()
    };
    let reference = gateway.solve(definition.clone()).await.unwrap();
    assert_eq!(reference, RefId::new("ref-1"));
    let state = fake.state();
    let request = &state.solves[0];
    assert_eq!(request.definition.as_ref(), Some(&definition));
    assert!(request.allow_result_return);
    assert!(request.allow_result_array_ref);
    assert!(request.frontend.is_empty());
    assert!(!request.evaluate);
}

#[tokio::test]
async fn solve_failures_name_the_rpc() {
    let gateway = FakeGateway::new().start().await;
    let error = gateway.solve(pb::Definition::default()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "BuildKit gateway Solve failed: fake gateway: no solve result queued (Unknown)"
    );
}

#[tokio::test]
async fn stat_and_read_report_missing_paths() {
    let fake = FakeGateway::new()
        .with_file("r", "dir/file", "x")
        .with_entry("r", "link", FakeEntry::Symlink("dir/file".to_owned()));
    let gateway = fake.start().await;
    let reference = RefId::new("r");

    let stat = gateway.stat(&reference, "/dir").await.unwrap().unwrap();
    assert_eq!(frontend::view::entry_kind(stat.mode), EntryKind::Dir);
    let followed = gateway.stat(&reference, "link").await.unwrap().unwrap();
    assert_eq!(followed.size, 1);
    assert_eq!(gateway.stat(&reference, "dir/missing").await.unwrap(), None);

    let error = gateway.read_file(&reference, "/nope").await.unwrap_err();
    assert!(error.is_not_found());
    let text = error.to_string();
    assert!(
        text.contains("ReadFile of `/nope` in result r"),
        "the error names the RPC, path and ref: {text}"
    );

    // Other failures are errors, not absent files.
    let unknown = gateway
        .stat(&RefId::new("gone"), "x")
        .await
        .expect_err("unknown ref");
    assert!(!unknown.is_not_found());
    assert!(
        unknown.to_string().contains("no such ref: gone"),
        "{unknown}"
    );
}

#[tokio::test]
async fn the_scratch_ref_is_empty_without_asking() {
    let fake = FakeGateway::new().with_solve_result("");
    let gateway = fake.start().await;
    let reference = gateway.solve(pb::Definition::default()).await.unwrap();
    assert!(reference.is_scratch());
    assert_eq!(gateway.stat(&reference, "x").await.unwrap(), None);
    assert!(
        gateway
            .read_file(&reference, "x")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        gateway
            .read_dir(&reference, "/")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(fake.state().calls.is_empty());
}

#[tokio::test]
async fn resolve_image_config_sends_platform_and_mode() {
    let fake = FakeGateway::new().with_image(
        "docker.io/library/busybox:latest",
        "sha256:abc",
        br#"{"architecture":"amd64"}"#,
    );
    let gateway = fake.start().await;
    let amd64 = platform("linux", "amd64");
    let resolved = gateway
        .resolve_image_config(
            "docker.io/library/busybox:latest",
            Some(&amd64),
            ResolveMode::ForcePull,
        )
        .await
        .unwrap();
    assert_eq!(resolved.digest, "sha256:abc");
    assert_eq!(resolved.config, br#"{"architecture":"amd64"}"#);
    gateway
        .resolve_image_config("docker.io/library/x:1", None, ResolveMode::Default)
        .await
        .expect_err("unknown image");
    let state = fake.state();
    let first = &state.image_requests[0];
    assert_eq!(first.platform.as_ref(), Some(&amd64));
    assert_eq!(first.resolve_mode, "pull");
    assert_eq!(
        first.log_name,
        "[internal] load metadata for docker.io/library/busybox:latest"
    );
    assert_eq!(state.image_requests[1].resolve_mode, "default");
    assert_eq!(state.image_requests[1].platform, None);
}

#[tokio::test]
async fn return_error_carries_the_message() {
    let fake = FakeGateway::new();
    let gateway = fake.start().await;
    gateway
        .return_error("Kubefile:3:1: unknown instruction FORM")
        .await
        .unwrap();
    let returned = fake.state().returned.clone().unwrap();
    assert!(returned.result.is_none());
    let error = returned.error.unwrap();
    assert_eq!(error.code, 2);
    assert_eq!(error.message, "Kubefile:3:1: unknown instruction FORM");

    // BuildKit accepts one Return; a second one fails and says so.
    let again = gateway.return_error("again").await.unwrap_err();
    assert!(
        again.to_string().contains("result is already set"),
        "{again}"
    );
}

#[tokio::test]
async fn return_result_sends_the_ref_and_metadata() {
    let fake = FakeGateway::new();
    let gateway = fake.start().await;
    gateway
        .return_result(
            &RefId::new("final"),
            [("containerimage.config".to_owned(), b"{}".to_vec())],
        )
        .await
        .unwrap();
    let returned = fake.state().returned.clone().unwrap();
    assert!(returned.error.is_none());
    let result = returned.result.unwrap();
    assert_eq!(
        result.metadata,
        HashMap::from([("containerimage.config".to_owned(), b"{}".to_vec())])
    );
    match result.result {
        Some(result::Result::Ref(reference)) => assert_eq!(reference.id, "final"),
        other => panic!("expected a single ref, got {other:?}"),
    }
}

fn context_fake() -> FakeGateway {
    FakeGateway::new()
        .with_file("ctx", "Kubefile", "FROM scratch\n")
        .with_file("ctx", "charts/app/Chart.yaml", "name: app\n")
        .with_file(
            "ctx",
            "charts/app/templates/deploy.yaml",
            "kind: Deployment\n",
        )
        .with_entry("ctx", "empty", FakeEntry::Dir)
        .with_entry("ctx", "charts/latest", FakeEntry::Symlink("app".to_owned()))
        .with_file("ctx", "images/big.tar", patterned(9 << 20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_view_reads_a_tree_with_one_read_dir_per_directory() {
    let fake = context_fake();
    let gateway = fake.start().await;
    let runtime = tokio::runtime::Handle::current();
    let view = GatewayView::new(gateway, RefId::new("ctx"), runtime);
    let view = tokio::task::spawn_blocking(move || {
        assert_eq!(view.kind(""), Some(EntryKind::Dir));
        assert_eq!(view.kind("Kubefile"), Some(EntryKind::File));
        assert_eq!(view.kind("charts/latest"), Some(EntryKind::Symlink));
        assert_eq!(view.kind("charts/app"), Some(EntryKind::Dir));
        assert_eq!(view.kind("missing"), None);
        assert_eq!(view.kind("missing/deeper"), None);
        assert_eq!(view.kind("Kubefile/inside"), None);
        assert_eq!(view.list(""), ["Kubefile", "charts", "empty", "images"]);
        assert!(view.list("empty").is_empty());
        assert_eq!(
            view.walk_files("charts"),
            ["app/Chart.yaml", "app/templates/deploy.yaml", "latest"]
        );
        assert_eq!(view.walk_files("Kubefile"), ["Kubefile"]);
        assert_eq!(view.read("Kubefile").unwrap(), b"FROM scratch\n");
        let missing = view.read("charts/nope.yaml").unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        assert!(
            missing.to_string().contains("charts/nope.yaml"),
            "{missing}"
        );
        assert!(view.take_failure().is_none());
        view
    })
    .await
    .unwrap();

    // Root, charts, charts/app, charts/app/templates, empty, Kubefile (a file: listed once
    // for "Kubefile/inside"), missing: each listed once, however often it was asked about.
    let listed: Vec<String> = fake
        .state()
        .calls
        .iter()
        .filter(|call| call.rpc == "ReadDir")
        .map(|call| call.path.clone())
        .collect();
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        listed.len(),
        unique.len(),
        "a directory was listed twice: {listed:?}"
    );
    let before = listed.len();
    tokio::task::spawn_blocking(move || {
        assert_eq!(view.walk_files("charts").len(), 3);
        assert_eq!(view.kind("charts/app/Chart.yaml"), Some(EntryKind::File));
        assert_eq!(view.list("").len(), 4);
    })
    .await
    .unwrap();
    assert_eq!(
        fake.count("ReadDir"),
        before,
        "walking again used the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_view_streams_large_files() {
    let fake = context_fake();
    let gateway = fake.start().await;
    let view = GatewayView::new(
        gateway,
        RefId::new("ctx"),
        tokio::runtime::Handle::current(),
    );
    let (streamed, missing) = tokio::task::spawn_blocking(move || {
        let mut reader = view.open("images/big.tar").unwrap();
        let mut streamed = Vec::new();
        let mut buffer = vec![0; 1 << 20];
        loop {
            let count = reader.read(&mut buffer).unwrap();
            if count == 0 {
                break;
            }
            streamed.extend_from_slice(&buffer[..count]);
        }
        let missing = view.open("images/none.tar").err().map(|error| error.kind());
        (streamed, missing)
    })
    .await
    .unwrap();
    assert_eq!(streamed, patterned(9 << 20));
    assert_eq!(missing, Some(std::io::ErrorKind::NotFound));
    // 4 + 4 + 1 MiB for the archive, one failed read for the missing file.
    assert_eq!(fake.count("ReadFile"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_view_keeps_hidden_failures() {
    let gateway = FakeGateway::new().start().await;
    let view = GatewayView::new(
        gateway,
        RefId::new("gone"),
        tokio::runtime::Handle::current(),
    );
    let (listing, failure) = tokio::task::spawn_blocking(move || {
        let listing = view.list("");
        (listing, view.take_failure())
    })
    .await
    .unwrap();
    assert!(listing.is_empty());
    let failure = failure.expect("the failed ReadDir is kept");
    assert!(failure.to_string().contains("ReadDir of `/`"), "{failure}");
}

fn build_file_fake() -> FakeGateway {
    FakeGateway::new()
        .with_caps(
            [
                "source.local",
                "source.local.followpaths",
                "source.local.sessionid",
                "source.local.sharedkeyhint",
                "source.local.excludepatterns",
                "file.base",
            ]
            .into_iter()
            .map(cap)
            .collect(),
            vec![cap("readfile")],
        )
        .with_solve_result("df")
        .with_file("df", "Kubefile", "FROM scratch\nCOPY . .\n")
        .with_file("df", "Kubefile.dockerignore", "*.secret\n")
}

#[tokio::test]
async fn gateway_mode_builds_a_kubefile_and_returns_the_rootfs_with_its_config() {
    let fake = build_file_fake()
        .with_solve_result("ctx")
        .with_solve_result("rootfs")
        .with_solve_result("final")
        .with_file("ctx", "manifests/app.yaml", "kind: ConfigMap\n")
        .with_file("rootfs", "manifests/app.yaml", "kind: ConfigMap\n");
    let gateway = fake.start().await;
    let options = FrontendOptions::from_pairs(["filename=Kubefile", "label:team=infra"]).map(
        |mut options| {
            options.session_id = "ses29158".to_owned();
            options
        },
    );
    frontend::serve(&gateway, options).await.unwrap();

    let state = fake.state();
    let definition = state.solves[0].definition.clone().unwrap();
    // The Go dockerfile frontend's own `local://dockerfile` op, byte for byte.
    let source_op = definition.def[0].clone();
    assert_eq!(
        llb::graph::digest_of(&source_op),
        "sha256:8783114a2e420ba58159d4fe03ae58b1f722a758842f65fb4cab108b3dcece57"
    );
    let metadata = definition.metadata.values().next().unwrap();
    assert_eq!(
        metadata.description["llb.customname"],
        "[internal] load build definition from Kubefile"
    );
    let read: Vec<&str> = state
        .reads
        .iter()
        .map(|read| read.file_path.as_str())
        .take(2)
        .collect();
    assert_eq!(read, ["Kubefile", "Kubefile.dockerignore"]);

    // The context is sent without what Kubefile.dockerignore excludes.
    let context = state.solves[1].definition.clone().unwrap();
    let context_op = <pb::Op as prost::Message>::decode(context.def[0].as_slice()).unwrap();
    let Some(pb::op::Op::Source(source)) = context_op.op else {
        panic!("the context is a source op")
    };
    assert_eq!(source.identifier, "local://context");
    assert_eq!(source.attrs["local.excludepatterns"], r#"["*.secret"]"#);

    // The COPY is one FileOp on scratch, named after its Kubefile line.
    let rootfs = state.solves[2].definition.clone().unwrap();
    let copy_names: Vec<&str> = rootfs
        .metadata
        .values()
        .filter_map(|m| m.description.get("llb.customname").map(String::as_str))
        .collect();
    assert!(copy_names.contains(&"[1/1] COPY . ."), "{copy_names:?}");

    let answer = state.returned.clone().unwrap();
    assert!(answer.error.is_none(), "{:?}", answer.error);
    let result = answer.result.unwrap();
    let Some(result::Result::Ref(reference)) = result.result else {
        panic!("one ref")
    };
    assert_eq!(reference.id, "final");
    let config: serde_json::Value =
        serde_json::from_slice(&result.metadata["containerimage.config"]).unwrap();
    assert_eq!(config["config"]["Labels"]["team"], "infra");
    assert!(
        config["config"]["Labels"]["sealer.image.extension"]
            .as_str()
            .unwrap()
            .contains("kube-installer"),
        "{config}"
    );
}

#[tokio::test]
async fn kubefile_errors_return_with_their_line() {
    let fake = build_file_fake()
        .with_file(
            "df",
            "Kubefile",
            "FROM scratch\nCOPY missing.yaml manifests/\n",
        )
        .with_solve_result("ctx")
        .with_ref("ctx");
    let gateway = fake.start().await;
    frontend::serve(&gateway, FrontendOptions::from_pairs(["filename=Kubefile"]))
        .await
        .unwrap();
    let message = fake
        .state()
        .returned
        .clone()
        .unwrap()
        .error
        .unwrap()
        .message;
    assert!(message.contains("Kubefile:2:"), "{message}");
    assert!(message.contains("missing.yaml"), "{message}");
}

#[tokio::test]
async fn gateway_mode_reports_option_and_cap_errors_through_return() {
    let fake = build_file_fake();
    let gateway = fake.start().await;
    let invalid = FrontendOptions::from_pairs(["platform=linux/amd64,linux/arm64"]);
    assert!(matches!(invalid, Err(OptionsError::Invalid { .. })));
    frontend::serve(&gateway, invalid).await.unwrap();
    let message = fake
        .state()
        .returned
        .clone()
        .unwrap()
        .error
        .unwrap()
        .message;
    assert!(message.contains("one platform at a time"), "{message}");
    assert!(fake.state().solves.is_empty());

    // A daemon without session-id locals is refused before anything is solved.
    let old = FakeGateway::new()
        .with_caps(vec![cap("source.local")], Vec::new())
        .with_solve_result("df");
    let gateway = old.start().await;
    let options = FrontendOptions::from_pairs(["filename=Kubefile"]).map(|mut options| {
        options.session_id = "s".to_owned();
        options
    });
    frontend::serve(&gateway, options).await.unwrap();
    let message = old.state().returned.clone().unwrap().error.unwrap().message;
    assert!(message.contains("source.local.followpaths"), "{message}");
    assert!(old.state().solves.is_empty());
}

#[tokio::test]
async fn gateway_mode_names_a_missing_build_file() {
    let fake = build_file_fake();
    let gateway = fake.start().await;
    frontend::serve(
        &gateway,
        FrontendOptions::from_pairs(["filename=Kubefile.prod"]),
    )
    .await
    .unwrap();
    let message = fake
        .state()
        .returned
        .clone()
        .unwrap()
        .error
        .unwrap()
        .message;
    assert_eq!(
        message,
        "the build file `Kubefile.prod` was not found in the `dockerfile` directory the client sent; pass it with `-f` or name it Kubefile"
    );
}

/// The frontend image, pinned so that nothing resolves it.
const PINNED_FRONTEND: &str = "127.0.0.1:5000/sealer-frontend@sha256:0000000000000000000000000000000000000000000000000000000000000001";

/// A build whose rootfs holds a chart `nginx` (library/nginx:1.0 by default) and a manifest
/// naming redis:7; every cap the fetch steps need; `ses1` as session.
fn chart_build_fake() -> FakeGateway {
    let chart = [
        (
            "charts/nginx/Chart.yaml",
            "apiVersion: v2\nname: nginx\nversion: 1.0.0\n",
        ),
        (
            "charts/nginx/values.yaml",
            "image:\n  repository: library/nginx\n  tag: \"1.0\"\n",
        ),
        (
            "charts/nginx/templates/pod.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
        ),
        (
            "manifests/cache.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: cache\nspec:\n  containers:\n  - name: cache\n    image: redis:7\n",
        ),
    ];
    let mut fake = FakeGateway::new()
        .with_caps(
            [
                "source.local",
                "source.local.followpaths",
                "source.local.sessionid",
                "source.local.sharedkeyhint",
                "source.local.excludepatterns",
                "source.image",
                "file.base",
                "exec.meta.base",
                "exec.mount.bind",
                "exec.mount.selector",
                "exec.mount.cache",
                "exec.mount.cache.sharing",
                "exec.mount.tmpfs",
                "exec.mount.secret",
                "exec.meta.network",
                "exec.extrahosts",
                "exec.meta.ignorecache",
                "constraints",
                "platform",
                "meta.description",
            ]
            .into_iter()
            .map(cap)
            .collect(),
            vec![cap("readfile")],
        )
        .with_solve_result("df")
        .with_file("df", "Kubefile", "FROM scratch\nCOPY . .\n")
        .with_file("df", "Kubefile.dockerignore", "");
    for (path, text) in chart {
        fake = fake
            .with_file("ctx", path, text)
            .with_file("rootfs", path, text);
    }
    fake
}

fn session_options(pairs: &[&str]) -> Result<FrontendOptions, OptionsError> {
    FrontendOptions::from_pairs(pairs.iter().copied()).map(|mut options| {
        "ses1".clone_into(&mut options.session_id);
        options
    })
}

/// The `llb.customname` of every vertex the Solves named.
fn solved_names(fake: &FakeGateway) -> Vec<String> {
    let mut names: Vec<String> = fake
        .state()
        .solves
        .iter()
        .filter_map(|solve| solve.definition.as_ref())
        .flat_map(|definition| definition.metadata.values())
        .filter_map(|metadata| metadata.description.get("llb.customname").cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The container images listed in the returned image config.
fn listed_images(fake: &FakeGateway) -> Vec<String> {
    let answer = fake.state().returned.clone().unwrap();
    assert!(answer.error.is_none(), "{:?}", answer.error);
    let config: serde_json::Value =
        serde_json::from_slice(&answer.result.unwrap().metadata["containerimage.config"]).unwrap();
    let listed = config["config"]["Labels"][engine::metadata::CONTAINER_IMAGES_ANNOTATION]
        .as_str()
        .unwrap_or("[]")
        .to_owned();
    let listed: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap();
    listed
        .iter()
        .map(|image| image["image"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn without_scan_inputs_the_chart_defaults_are_cached() {
    let fake = chart_build_fake()
        .with_solve_result("ctx")
        .with_solve_result("rootfs")
        .with_solve_result("fetch-a")
        .with_solve_result("fetch-b")
        .with_solve_result("final")
        .with_file("fetch-a", "documents.json", r#"{"images":[]}"#)
        .with_file("fetch-b", "documents.json", r#"{"images":[]}"#);
    let gateway = fake.start().await;
    let options = session_options(&["filename=Kubefile", &format!("source={PINNED_FRONTEND}")]);
    frontend::serve(&gateway, options).await.unwrap();
    assert_eq!(
        listed_images(&fake),
        ["docker.io/library/nginx:1.0", "docker.io/library/redis:7"]
    );
    let names = solved_names(&fake);
    assert!(
        names.contains(&"cache docker.io/library/nginx:1.0".to_owned()),
        "{names:?}"
    );
    assert!(!names.iter().any(|name| name.contains("scan inputs")));
}

#[tokio::test]
async fn scan_inputs_from_the_session_change_the_cached_images() {
    let scan = r#"sealer.scan={"local":"sealer-inputs","values":[{"chart":"nginx","path":"values/0000.yaml"}],"set":["nginx.image.repository=example/web"],"set_string":[],"image_lists":["lists/0000.txt"],"ignored_image_lists":["ignored/0000.txt"]}"#;
    let fake = chart_build_fake()
        .with_solve_result("ctx")
        .with_solve_result("rootfs")
        .with_solve_result("inputs")
        .with_solve_result("fetch-a")
        .with_solve_result("fetch-b")
        .with_solve_result("final")
        .with_file("inputs", "values/0000.yaml", "image:\n  tag: \"2.0\"\n")
        .with_file("inputs", "lists/0000.txt", "# extra\nbusybox:1.36\n")
        .with_file("inputs", "ignored/0000.txt", "redis:7\n")
        .with_file("fetch-a", "documents.json", r#"{"images":[]}"#)
        .with_file("fetch-b", "documents.json", r#"{"images":[]}"#);
    let gateway = fake.start().await;
    let options = session_options(&[
        "filename=Kubefile",
        &format!("source={PINNED_FRONTEND}"),
        scan,
    ]);
    frontend::serve(&gateway, options).await.unwrap();

    // The values file, then --set, rendered the chart; the list added busybox; the ignore
    // list dropped redis.
    assert_eq!(
        listed_images(&fake),
        [
            "docker.io/example/web:2.0",
            "docker.io/library/busybox:1.36"
        ]
    );
    let names = solved_names(&fake);
    for fetched in [
        "cache docker.io/example/web:2.0",
        "cache docker.io/library/busybox:1.36",
    ] {
        assert!(names.contains(&fetched.to_owned()), "{names:?}");
    }
    assert!(
        !names
            .iter()
            .any(|name| name.contains("nginx:1.0") || name.contains("redis")),
        "{names:?}"
    );

    // Only the listed files of the session's `sealer-inputs` directory were asked for.
    let state = fake.state();
    let definition = state.solves[3].definition.clone().unwrap();
    let op = <pb::Op as prost::Message>::decode(definition.def[0].as_slice()).unwrap();
    let Some(pb::op::Op::Source(source)) = op.op else {
        panic!("the scan inputs are a source op")
    };
    assert_eq!(source.identifier, "local://sealer-inputs");
    assert_eq!(source.attrs["local.session"], "ses1");
    assert_eq!(source.attrs["local.sharedkeyhint"], "sealer-inputs");
    assert_eq!(
        source.attrs["local.followpaths"],
        r#"["values/0000.yaml","lists/0000.txt","ignored/0000.txt"]"#
    );
    let read: Vec<&str> = state
        .reads
        .iter()
        .filter(|read| read.r#ref == "inputs")
        .map(|read| read.file_path.as_str())
        .collect();
    assert_eq!(
        read,
        ["values/0000.yaml", "lists/0000.txt", "ignored/0000.txt"]
    );
}

#[tokio::test]
async fn bad_scan_inputs_fail_the_build_with_a_clear_error() {
    let fake = chart_build_fake();
    let gateway = fake.start().await;
    let options = session_options(&["sealer.scan={\"local\":\"sealer-inputs\",\"values\":"]);
    frontend::serve(&gateway, options).await.unwrap();
    let message = fake
        .state()
        .returned
        .clone()
        .unwrap()
        .error
        .unwrap()
        .message;
    assert!(
        message.starts_with("invalid frontend option `sealer.scan="),
        "{message}"
    );
    assert!(message.contains("not valid scan inputs JSON"), "{message}");
    assert!(fake.state().solves.is_empty());

    // A file the option names but the client did not send.
    let fake = chart_build_fake()
        .with_solve_result("ctx")
        .with_solve_result("rootfs")
        .with_solve_result("inputs")
        .with_ref("inputs");
    let gateway = fake.start().await;
    let options = session_options(&[
        "filename=Kubefile",
        r#"sealer.scan={"local":"sealer-inputs","image_lists":["lists/0000.txt"]}"#,
    ]);
    frontend::serve(&gateway, options).await.unwrap();
    let message = fake
        .state()
        .returned
        .clone()
        .unwrap()
        .error
        .unwrap()
        .message;
    assert_eq!(
        message,
        "the scan input `lists/0000.txt` (option `sealer.scan`) was not found in the `sealer-inputs` directory the client sent; send every file the option names"
    );
}
