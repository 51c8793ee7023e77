//! The file transfer services driven over real gRPC (tonic on in-memory duplex pipes) by a
//! test client playing BuildKit's part: asking for a local directory and requesting files,
//! pumping a directory from `SyncService` into `DirTarget` as the daemon does for a `local`
//! output, and streaming a tar output into `FileTarget`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, symlink};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bkclient::filesync::{
    DirTarget, FILE_SEND_METHOD, FILE_SYNC_METHOD, FileTarget, SyncService, SyncedDir,
    TransferStats,
};
use bollard_buildkit_proto::fsutil::types::packet::PacketType;
use bollard_buildkit_proto::fsutil::types::{Packet, Stat};
use bollard_buildkit_proto::moby::filesync::packet::file_send_client::FileSendClient;
use bollard_buildkit_proto::moby::filesync::packet::file_send_server::FileSendServer;
use bollard_buildkit_proto::moby::filesync::packet::file_sync_client::FileSyncClient;
use bollard_buildkit_proto::moby::filesync::packet::file_sync_server::FileSyncServer;
use bollard_buildkit_proto::moby::filesync::v1 as bytes_api;
use filetime::FileTime;
use futures::StreamExt as _;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::server::Router;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Streaming};

const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_NAMED_PIPE: u32 = 1 << 25;
/// Go's `os.ModeType`.
const MODE_TYPE: u32 =
    MODE_DIR | MODE_SYMLINK | (1 << 26) | MODE_NAMED_PIPE | (1 << 24) | (1 << 21) | (1 << 19);

/// Serves `router` on one end of an in-memory pipe and returns a channel on the other end.
async fn connect(router: Router) -> Channel {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let incoming = futures::stream::iter([Ok::<_, std::io::Error>(server_io)])
            .chain(futures::stream::pending());
        router.serve_with_incoming(incoming).await.unwrap();
    });
    let slot = Arc::new(Mutex::new(Some(client_io)));
    Endpoint::from_static("http://filesync.test")
        .connect_with_connector(tower::service_fn(move |_| {
            let io = slot.lock().unwrap().take();
            async move {
                io.map(TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("the test pipe was already used"))
            }
        }))
        .await
        .unwrap()
}

async fn sync_client(service: &SyncService) -> FileSyncClient<Channel> {
    FileSyncClient::new(
        connect(Server::builder().add_service(FileSyncServer::new(service.clone()))).await,
    )
}

fn packet(kind: PacketType) -> Packet {
    Packet {
        r#type: kind.into(),
        ..Packet::default()
    }
}

fn kind_of(packet: &Packet) -> PacketType {
    PacketType::try_from(packet.r#type).unwrap()
}

/// A FileSync call as the daemon makes it: `metadata` pairs become (repeated) headers.
struct SyncCall {
    requests: mpsc::UnboundedSender<Packet>,
    responses: Streaming<Packet>,
}

impl SyncCall {
    async fn open(
        service: &SyncService,
        metadata: &[(&'static str, &str)],
    ) -> Result<SyncCall, tonic::Status> {
        let (requests, stream) = mpsc::unbounded_channel();
        let mut request = Request::new(UnboundedReceiverStream::new(stream));
        for (key, value) in metadata {
            request.metadata_mut().append(*key, value.parse().unwrap());
        }
        let responses = sync_client(service)
            .await
            .diff_copy(request)
            .await?
            .into_inner();
        Ok(SyncCall {
            requests,
            responses,
        })
    }

    /// Reads the listing up to its end marker.
    async fn stats(&mut self) -> Vec<Stat> {
        let mut stats = Vec::new();
        loop {
            let packet = self.responses.message().await.unwrap().unwrap();
            assert_eq!(kind_of(&packet), PacketType::PacketStat, "{packet:?}");
            match packet.stat {
                Some(stat) => stats.push(stat),
                None => return stats,
            }
        }
    }

    fn send(&self, packet: Packet) {
        self.requests.send(packet).unwrap();
    }

    /// Sends FIN and expects FIN back, then the end of the call.
    async fn finish(mut self) {
        self.send(packet(PacketType::PacketFin));
        let fin = self.responses.message().await.unwrap().unwrap();
        assert_eq!(kind_of(&fin), PacketType::PacketFin);
        assert!(self.responses.message().await.unwrap().is_none());
    }
}

fn context_service(root: &Path) -> SyncService {
    SyncService::new(BTreeMap::from([(
        "context".to_owned(),
        SyncedDir {
            root: root.to_path_buf(),
            excludes: None,
        },
    )]))
}

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn big_content() -> Vec<u8> {
    (0..600 * 1024u32)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect()
}

/// A context with a script, a large file, an empty file, a symlink and a directory.
fn sample_context(root: &Path) {
    write(root, "Kubefile", b"FROM scratch\nCOPY . .\n");
    write(root, "bin/run.sh", b"#!/bin/sh\necho hi\n");
    fs::set_permissions(root.join("bin/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    write(root, "big.bin", &big_content());
    write(root, "empty", b"");
    symlink("Kubefile", root.join("link")).unwrap();
}

#[tokio::test]
async fn files_are_listed_and_sent_on_request() {
    let dir = tempfile::tempdir().unwrap();
    sample_context(dir.path());
    let service = context_service(dir.path());
    let mut call = SyncCall::open(&service, &[("dir-name", "context")])
        .await
        .unwrap();
    let stats = call.stats().await;

    let paths: Vec<&str> = stats.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        ["Kubefile", "big.bin", "bin", "bin/run.sh", "empty", "link"]
    );
    let by_path: HashMap<&str, &Stat> = stats.iter().map(|s| (s.path.as_str(), s)).collect();
    assert_eq!(
        by_path["bin"].mode,
        MODE_DIR | (0o777 & !umask_bits(dir.path()))
    );
    assert_eq!(by_path["bin/run.sh"].mode, 0o755);
    assert_eq!(by_path["link"].mode, MODE_SYMLINK | 0o777);
    assert_eq!(by_path["link"].linkname, "Kubefile");
    assert_eq!(by_path["big.bin"].size, 600 * 1024);
    let mtime = fs::metadata(dir.path().join("Kubefile")).unwrap();
    assert_eq!(
        by_path["Kubefile"].mod_time,
        mtime.mtime() * 1_000_000_000 + mtime.mtime_nsec()
    );
    assert!(stats.iter().all(|s| s.uid == 0 && s.gid == 0));

    // Request every regular file by its position in the listing.
    let mut wanted = HashMap::new();
    for (id, stat) in stats.iter().enumerate() {
        if stat.mode & MODE_TYPE == 0 {
            let id = u32::try_from(id).unwrap();
            call.send(Packet {
                id,
                ..packet(PacketType::PacketReq)
            });
            wanted.insert(id, stat.path.clone());
        }
    }
    let mut contents: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut open = wanted.len();
    let mut data_packets = 0;
    while open > 0 {
        let data = call.responses.message().await.unwrap().unwrap();
        assert_eq!(kind_of(&data), PacketType::PacketData);
        assert!(wanted.contains_key(&data.id), "{}", data.id);
        assert!(data.data.len() <= 256 * 1024);
        if data.data.is_empty() {
            open -= 1;
        } else {
            data_packets += 1;
        }
        contents.entry(data.id).or_default().extend(data.data);
    }
    for (id, path) in &wanted {
        assert_eq!(
            contents[id],
            fs::read(dir.path().join(path)).unwrap(),
            "{path}"
        );
    }
    call.finish().await;

    let expected_bytes: u64 = wanted
        .values()
        .map(|path| fs::metadata(dir.path().join(path)).unwrap().len())
        .sum();
    let sent = service.stats();
    assert_eq!(sent.files, 6);
    assert_eq!(sent.bytes, expected_bytes);
    assert_eq!(sent.data_packets, data_packets);
    // 600 KiB in 256 KiB chunks, plus Kubefile and run.sh; nothing for the empty file.
    assert_eq!(data_packets, 3 + 2);
    assert_eq!(service.stats_by_dir()["context"], sent);
}

/// The process umask as it affects new directories.
fn umask_bits(scratch: &Path) -> u32 {
    let probe = scratch.join(".umask-probe");
    fs::create_dir(&probe).unwrap();
    let mode = fs::metadata(&probe).unwrap().permissions().mode();
    fs::remove_dir(&probe).unwrap();
    0o777 & !mode
}

#[tokio::test]
async fn a_cached_second_pass_sends_the_same_listing_and_no_data() {
    let dir = tempfile::tempdir().unwrap();
    sample_context(dir.path());
    let service = context_service(dir.path());

    let mut first = SyncCall::open(&service, &[("dir-name", "context")])
        .await
        .unwrap();
    let first_stats = first.stats().await;
    first.finish().await;
    let mut second = SyncCall::open(&service, &[("dir-name", "context")])
        .await
        .unwrap();
    let second_stats = second.stats().await;
    second.finish().await;

    assert_eq!(first_stats, second_stats);
    let sent = service.stats_by_dir()["context"].clone();
    assert_eq!(sent.files, 12);
    assert_eq!((sent.bytes, sent.data_packets), (0, 0));
}

#[tokio::test]
async fn request_metadata_filters_the_walk() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "Kubefile",
        "a.secret",
        "logs/keep",
        "logs/old",
        "charts/app/values.yaml",
        "other",
    ] {
        write(dir.path(), rel, b"x");
    }
    symlink("charts/app/values.yaml", dir.path().join("values")).unwrap();
    let service = SyncService::new(BTreeMap::from([
        (
            "context".to_owned(),
            SyncedDir {
                root: dir.path().to_path_buf(),
                excludes: None,
            },
        ),
        (
            "own-excludes".to_owned(),
            SyncedDir {
                root: dir.path().to_path_buf(),
                excludes: Some(vec!["logs".to_owned(), "charts".to_owned()]),
            },
        ),
    ]));
    let list = |metadata: Vec<(&'static str, &'static str)>| {
        let service = service.clone();
        async move {
            let mut call = SyncCall::open(&service, &metadata).await.unwrap();
            let paths: Vec<String> = call.stats().await.into_iter().map(|s| s.path).collect();
            call.finish().await;
            paths
        }
    };

    assert_eq!(
        list(vec![
            ("dir-name", "context"),
            ("exclude-patterns", "*.secret"),
            ("exclude-patterns", "logs"),
            ("exclude-patterns", "!logs/keep"),
            ("exclude-patterns", "charts"),
        ])
        .await,
        ["Kubefile", "logs", "logs/keep", "other", "values"]
    );
    assert_eq!(
        list(vec![
            ("dir-name", "context"),
            ("include-patterns", "Kubefile"),
            ("followpaths", "values"),
        ])
        .await,
        [
            "Kubefile",
            "charts",
            "charts/app",
            "charts/app/values.yaml",
            "values"
        ]
    );
    // The directory's own excludes replace the request's...
    assert_eq!(
        list(vec![
            ("dir-name", "own-excludes"),
            ("exclude-patterns", "other")
        ])
        .await,
        ["Kubefile", "a.secret", "other", "values"]
    );
    // ...unless the request overrides them.
    assert_eq!(
        list(vec![
            ("dir-name", "own-excludes"),
            ("exclude-patterns", "other"),
            ("override-excludes", "true"),
        ])
        .await,
        [
            "Kubefile",
            "a.secret",
            "charts",
            "charts/app",
            "charts/app/values.yaml",
            "logs",
            "logs/keep",
            "logs/old",
            "values"
        ]
    );
}

#[tokio::test]
async fn unknown_dirs_and_tar_streams_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let service = context_service(dir.path());
    let Err(status) = SyncCall::open(&service, &[("dir-name", "secrets")]).await else {
        panic!("an unknown dir was served");
    };
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "no access allowed to dir \"secrets\"");

    let status = sync_client(&service)
        .await
        .tar_stream(futures::stream::empty::<Packet>())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
}

#[tokio::test]
async fn bad_requests_and_receiver_errors_end_the_call() {
    let dir = tempfile::tempdir().unwrap();
    sample_context(dir.path());
    let service = context_service(dir.path());

    // A directory cannot be requested; an unknown id neither.
    let mut call = SyncCall::open(&service, &[("dir-name", "context")])
        .await
        .unwrap();
    let stats = call.stats().await;
    let bin = stats.iter().position(|s| s.path == "bin").unwrap();
    call.send(Packet {
        id: u32::try_from(bin).unwrap(),
        ..packet(PacketType::PacketReq)
    });
    let error = call.responses.message().await.unwrap().unwrap();
    assert_eq!(kind_of(&error), PacketType::PacketErr);
    assert_eq!(error.data, format!("invalid file id {bin}").into_bytes());
    assert!(call.responses.message().await.is_err());

    let mut call = SyncCall::open(&service, &[("dir-name", "context")])
        .await
        .unwrap();
    call.stats().await;
    call.send(Packet {
        data: b"disk full".to_vec(),
        ..packet(PacketType::PacketErr)
    });
    let status = call.responses.message().await.unwrap_err();
    assert!(
        status.message().contains("error from receiver: disk full"),
        "{status}"
    );
}

#[tokio::test]
async fn a_missing_root_is_reported_with_err() {
    let dir = tempfile::tempdir().unwrap();
    let service = context_service(&dir.path().join("gone"));
    let mut call = SyncCall::open(&service, &[("dir-name", "context")])
        .await
        .unwrap();
    let error = call.responses.message().await.unwrap().unwrap();
    assert_eq!(kind_of(&error), PacketType::PacketErr);
    let text = String::from_utf8(error.data).unwrap();
    assert!(
        text.contains("gone") && text.contains("\"context\""),
        "{text}"
    );
    let status = call.responses.message().await.unwrap_err();
    assert_eq!(status.message(), text);
}

/// Plays the daemon between a sender and a receiver: every packet of one goes to the other
/// (STAT/DATA/FIN one way, REQ/FIN the other), until both calls end.
async fn pump(sync: &SyncService, metadata: &[(&'static str, &str)], target: DirTarget) {
    let mut source = SyncCall::open(sync, metadata).await.unwrap();
    let (to_target, target_requests) = mpsc::unbounded_channel();
    let mut target_client = FileSendClient::new(
        connect(Server::builder().add_service(FileSendServer::new(target))).await,
    );
    let mut from_target = target_client
        .diff_copy(UnboundedReceiverStream::new(target_requests))
        .await
        .unwrap()
        .into_inner();
    let mut source_open = true;
    let mut target_open = true;
    while source_open || target_open {
        tokio::select! {
            packet = source.responses.message(), if source_open => match packet.unwrap() {
                Some(packet) => to_target.send(packet).unwrap(),
                None => source_open = false,
            },
            packet = from_target.message(), if target_open => match packet.unwrap() {
                Some(packet) => {
                    assert!(matches!(kind_of(&packet), PacketType::PacketReq | PacketType::PacketFin), "{packet:?}");
                    source.send(packet);
                }
                None => target_open = false,
            },
        }
    }
}

fn set_mtime(path: &Path, seconds: i64, nanos: u32) {
    filetime::set_symlink_file_times(
        path,
        FileTime::from_unix_time(seconds, nanos),
        FileTime::from_unix_time(seconds, nanos),
    )
    .unwrap();
}

fn mtime(path: &Path) -> (i64, i64) {
    let metadata = fs::symlink_metadata(path).unwrap();
    (metadata.mtime(), metadata.mtime_nsec())
}

#[tokio::test]
async fn a_directory_round_trips_from_sync_to_dir_target() {
    let source = tempfile::tempdir().unwrap();
    let root = source.path();
    sample_context(root);
    write(root, "deep/er/file", b"deep");
    fs::set_permissions(root.join("empty"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::hard_link(root.join("bin/run.sh"), root.join("run-link")).unwrap();
    symlink("../../nowhere", root.join("deep/dangling")).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        root.join("pipe"),
        rustix::fs::Mode::from_raw_mode(0o640),
    )
    .unwrap();
    fs::set_permissions(root.join("deep/er"), fs::Permissions::from_mode(0o750)).unwrap();
    for (index, rel) in [
        "Kubefile",
        "big.bin",
        "link",
        "deep/dangling",
        "deep/er/file",
        "deep/er",
        "deep",
        "bin",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(
            &root.join(rel),
            1_500_000_000 + i64::try_from(index).unwrap(),
            250_000_000,
        );
    }

    let output = tempfile::tempdir().unwrap();
    let dest = output.path().join("out");
    fs::create_dir(&dest).unwrap();
    write(&dest, "kept-from-before", b"old");
    write(&dest, "Kubefile", b"stale content to be replaced");
    fs::create_dir(dest.join("empty")).unwrap();

    let sync = context_service(root);
    pump(
        &sync,
        &[("dir-name", "context")],
        DirTarget::new(dest.clone()),
    )
    .await;

    for rel in [
        "Kubefile",
        "big.bin",
        "bin/run.sh",
        "empty",
        "deep/er/file",
        "run-link",
    ] {
        assert_eq!(
            fs::read(dest.join(rel)).unwrap(),
            fs::read(root.join(rel)).unwrap(),
            "{rel}"
        );
    }
    assert_eq!(fs::read(dest.join("kept-from-before")).unwrap(), b"old");
    assert_eq!(
        fs::read_link(dest.join("link")).unwrap(),
        Path::new("Kubefile")
    );
    assert_eq!(
        fs::read_link(dest.join("deep/dangling")).unwrap(),
        Path::new("../../nowhere")
    );
    let mode = |rel: &str| fs::symlink_metadata(dest.join(rel)).unwrap().mode();
    assert_eq!(mode("bin/run.sh") & 0o7777, 0o755);
    assert_eq!(mode("empty") & 0o7777, 0o600);
    assert_eq!(mode("deep/er") & 0o7777, 0o750);
    assert_eq!(mode("pipe") & 0o170_000, 0o010_000);
    assert_eq!(mode("pipe") & 0o777, 0o640);
    assert_eq!(
        fs::metadata(dest.join("run-link")).unwrap().ino(),
        fs::metadata(dest.join("bin/run.sh")).unwrap().ino()
    );
    for rel in [
        "Kubefile",
        "big.bin",
        "link",
        "deep/dangling",
        "deep/er/file",
        "deep/er",
        "deep",
        "bin",
    ] {
        assert_eq!(mtime(&dest.join(rel)), mtime(&root.join(rel)), "{rel}");
    }
    let leftovers: Vec<_> = walk_names(&dest)
        .into_iter()
        .filter(|n| n.contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The daemon requested every regular file once (the hardlink is made, not sent).
    let sent: TransferStats = sync.stats();
    assert_eq!(sent.files, 12);
    let regular = ["Kubefile", "big.bin", "bin/run.sh", "empty", "deep/er/file"];
    let bytes: u64 = regular
        .iter()
        .map(|rel| fs::metadata(root.join(rel)).unwrap().len())
        .sum();
    assert_eq!(sent.bytes, bytes);
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        names.push(entry.file_name().to_string_lossy().into_owned());
        if entry.file_type().unwrap().is_dir() {
            names.extend(walk_names(&entry.path()));
        }
    }
    names
}

/// Sends hand-made packets to a DirTarget and returns what it answered, up to its error.
async fn send_to_target(dest: &Path, packets: Vec<Packet>) -> (Vec<Packet>, tonic::Status) {
    let mut client = FileSendClient::new(
        connect(
            Server::builder().add_service(FileSendServer::new(DirTarget::new(dest.to_path_buf()))),
        )
        .await,
    );
    let (requests, stream) = mpsc::unbounded_channel();
    for packet in packets {
        requests.send(packet).unwrap();
    }
    let mut responses = client
        .diff_copy(UnboundedReceiverStream::new(stream))
        .await
        .unwrap()
        .into_inner();
    let mut answered = Vec::new();
    loop {
        match responses.message().await {
            Ok(Some(packet)) => answered.push(packet),
            Ok(None) => panic!("the target accepted the stream: {answered:?}"),
            Err(status) => return (answered, status),
        }
    }
}

/// A STAT packet; a symlink points to `/etc`.
fn stat_packet(path: &str, mode: u32) -> Packet {
    let linkname = if mode & MODE_SYMLINK == 0 { "" } else { "/etc" };
    Packet {
        stat: Some(Stat {
            path: path.to_owned(),
            mode,
            linkname: linkname.to_owned(),
            ..Stat::default()
        }),
        ..packet(PacketType::PacketStat)
    }
}

#[tokio::test]
async fn dir_target_refuses_paths_outside_and_out_of_order() {
    let output = tempfile::tempdir().unwrap();
    let dest = output.path().join("out");
    for (packets, expected) in [
        (
            vec![stat_packet("../evil", 0o644)],
            "leaves the destination",
        ),
        (vec![stat_packet("/etc/evil", 0o644)], "absolute"),
        (
            vec![stat_packet("b", 0o644), stat_packet("a", 0o644)],
            "out of order",
        ),
        (
            vec![
                stat_packet("a", MODE_SYMLINK | 0o777),
                stat_packet("a/x", 0o644),
            ],
            "out of order",
        ),
        (
            vec![Packet {
                stat: Some(Stat {
                    path: "link".into(),
                    mode: 0o644,
                    linkname: "missing".into(),
                    ..Stat::default()
                }),
                ..packet(PacketType::PacketStat)
            }],
            "unknown path",
        ),
    ] {
        let (answered, status) = send_to_target(&dest, packets).await;
        assert!(status.message().contains(expected), "{status}");
        let last = answered.last().unwrap();
        assert_eq!(kind_of(last), PacketType::PacketErr);
    }
    assert!(!output.path().join("evil").exists());
    // Only the symlink listed before the refused entry was made.
    assert_eq!(walk_names(&dest), ["a"]);
}

#[tokio::test]
async fn dir_target_requests_files_and_reports_unrequested_data() {
    let output = tempfile::tempdir().unwrap();
    let dest = output.path().join("out");
    let (answered, status) = send_to_target(
        &dest,
        vec![
            stat_packet("d", MODE_DIR | 0o755),
            stat_packet("d/f", 0o644),
            Packet {
                id: 0,
                data: b"x".to_vec(),
                ..packet(PacketType::PacketData)
            },
        ],
    )
    .await;
    assert_eq!(answered.len(), 2);
    assert_eq!(kind_of(&answered[0]), PacketType::PacketReq);
    assert_eq!(answered[0].id, 1);
    assert!(status.message().contains("file id 0"), "{status}");
    assert!(walk_names(&dest).iter().all(|n| !n.contains(".partial")));
}

async fn send_bytes(target: FileTarget, chunks: Vec<Vec<u8>>) -> Result<(), tonic::Status> {
    let mut client = bytes_api::file_send_client::FileSendClient::new(
        connect(
            Server::builder().add_service(bytes_api::file_send_server::FileSendServer::new(target)),
        )
        .await,
    );
    let messages = chunks
        .into_iter()
        .map(|data| bytes_api::BytesMessage { data });
    let mut responses = client
        .diff_copy(futures::stream::iter(messages))
        .await?
        .into_inner();
    assert!(responses.message().await?.is_none());
    Ok(())
}

#[tokio::test]
async fn file_target_writes_exactly_the_bytes_sent() {
    let output = tempfile::tempdir().unwrap();
    let dest = output.path().join("image.tar");
    let chunks: Vec<Vec<u8>> = (0..300u32)
        .map(|i| {
            (0..4096u32)
                .map(|j| u8::try_from((i * 7 + j) % 256).unwrap())
                .collect()
        })
        .chain([vec![1, 2, 3], Vec::new(), vec![9; 100_000]])
        .collect();
    let expected: Vec<u8> = chunks.concat();
    send_bytes(FileTarget::new(dest.clone()), chunks)
        .await
        .unwrap();
    assert_eq!(fs::read(&dest).unwrap(), expected);
    assert_eq!(walk_names(output.path()), ["image.tar"]);

    let status = send_bytes(
        FileTarget::new(output.path().join("missing-dir/out.tar")),
        vec![vec![1]],
    )
    .await
    .unwrap_err();
    assert!(
        status.message().contains("missing-dir/out.tar.partial"),
        "{status}"
    );
}

#[test]
fn method_names_match_the_routes() {
    assert_eq!(FILE_SYNC_METHOD, "/moby.filesync.v1.FileSync/DiffCopy");
    assert_eq!(FILE_SEND_METHOD, "/moby.filesync.v1.FileSend/DiffCopy");
}
