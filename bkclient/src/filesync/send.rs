//! `FileSync/DiffCopy`: we are fsutil's sender (send.go). The walk streams `STAT`s while a
//! reader takes the daemon's `REQ`s (which arrive while the walk is still running) into an
//! unbounded queue, so the reader never waits; four workers answer them with `DATA` chunks.
//! Everything we send goes through one bounded channel, which tonic drains.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bollard_buildkit_proto::fsutil::types::packet::PacketType;
use bollard_buildkit_proto::fsutil::types::{Packet, Stat};
use bollard_buildkit_proto::moby::filesync::packet::file_sync_server::FileSync;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use super::gomode::can_request_data;
use super::walk::{Filters, WalkError, walk};
use super::{StatsBook, SyncedDir, TransferStats};

/// Largest `DATA` payload: well below the 4 MiB a grpc-go receiver accepts by default.
const CHUNK_SIZE: usize = 256 * 1024;
/// Files read at the same time, as fsutil's sender does.
const READERS: usize = 4;
/// Packets waiting for tonic to send them.
const OUTGOING_QUEUE: usize = 64;

/// The `FileSync` service of a session: serves the named local directories to the daemon.
#[derive(Clone)]
pub struct SyncService {
    dirs: Arc<BTreeMap<String, SyncedDir>>,
    stats: Arc<Mutex<StatsBook>>,
}

impl std::fmt::Debug for SyncService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncService")
            .field("dirs", &self.dirs)
            .finish_non_exhaustive()
    }
}

impl SyncService {
    /// A service serving `dirs` under their names (`context`, `dockerfile`, ...).
    pub fn new(dirs: BTreeMap<String, SyncedDir>) -> Self {
        SyncService {
            dirs: Arc::new(dirs),
            stats: Arc::default(),
        }
    }

    /// What all DiffCopy calls so far sent, in total.
    pub fn stats(&self) -> TransferStats {
        self.book().total.clone()
    }

    /// What all DiffCopy calls so far sent, per directory name.
    pub fn stats_by_dir(&self) -> BTreeMap<String, TransferStats> {
        self.book().by_dir.clone()
    }

    fn book(&self) -> std::sync::MutexGuard<'_, StatsBook> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type Outgoing = mpsc::Sender<Result<Packet, Status>>;

#[tonic::async_trait]
impl FileSync for SyncService {
    type DiffCopyStream = ReceiverStream<Result<Packet, Status>>;
    type TarStreamStream = ReceiverStream<Result<Packet, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let metadata = request.metadata();
        let dir_name = values(metadata, "dir-name")
            .and_then(|names| names.into_iter().next())
            .unwrap_or_default();
        let Some(dir) = self.dirs.get(&dir_name) else {
            return Err(Status::not_found(format!(
                "no access allowed to dir {dir_name:?}"
            )));
        };
        let override_excludes = values(metadata, "override-excludes")
            .and_then(|values| values.into_iter().next())
            .is_some_and(|value| value == "true");
        let excludes = match &dir.excludes {
            Some(own) if !own.is_empty() && !override_excludes => Some(own.clone()),
            _ => values(metadata, "exclude-patterns"),
        };
        let transfer = Transfer {
            dir_name,
            root: dir.root.clone(),
            includes: values(metadata, "include-patterns"),
            excludes,
            follow_paths: values(metadata, "followpaths"),
            stats: Arc::clone(&self.stats),
        };
        let (outgoing, packets) = mpsc::channel(OUTGOING_QUEUE);
        tokio::spawn(transfer.run(request.into_inner(), outgoing));
        Ok(Response::new(ReceiverStream::new(packets)))
    }

    async fn tar_stream(
        &self,
        _request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented(
            "this client only transfers files with DiffCopy",
        ))
    }
}

/// Every value of a metadata key, in order; `None` when the key is absent (fsutil tells "no
/// include patterns" from "an empty list" that way). Values are UTF-8 bytes.
fn values(metadata: &MetadataMap, key: &str) -> Option<Vec<String>> {
    let values: Vec<String> = metadata
        .get_all(key)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_encoded_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then_some(values)
}

#[derive(Default)]
struct Counters {
    files: AtomicU64,
    bytes: AtomicU64,
    data_packets: AtomicU64,
}

/// One DiffCopy call.
struct Transfer {
    dir_name: String,
    root: PathBuf,
    includes: Option<Vec<String>>,
    excludes: Option<Vec<String>>,
    follow_paths: Option<Vec<String>>,
    stats: Arc<Mutex<StatsBook>>,
}

/// Regular files listed so far that the daemon may request, by file id.
type Requestable = Arc<Mutex<HashMap<u32, String>>>;

impl Transfer {
    async fn run(self, incoming: Streaming<Packet>, outgoing: Outgoing) {
        let started = Instant::now();
        let counters = Arc::new(Counters::default());
        let requestable: Requestable = Arc::default();
        let (requests, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        let root: Arc<Path> = Arc::from(self.root.as_path());

        let walking = {
            let walk_job = WalkJob {
                dir_name: self.dir_name.clone(),
                root: self.root.clone(),
                includes: self.includes,
                excludes: self.excludes,
                follow_paths: self.follow_paths,
            };
            let requestable = Arc::clone(&requestable);
            let outgoing = outgoing.clone();
            let counters = Arc::clone(&counters);
            async move {
                tokio::task::spawn_blocking(move || {
                    walk_job.run(&requestable, &outgoing, &counters)
                })
                .await
                .map_err(|e| Status::internal(format!("the file walk stopped: {e}")))?
            }
        };
        let reading = read_requests(
            incoming,
            Arc::clone(&requestable),
            requests,
            outgoing.clone(),
        );
        let workers = (0..READERS).map(|_| {
            serve_requests(
                Arc::clone(&root),
                Arc::clone(&queue),
                outgoing.clone(),
                Arc::clone(&counters),
            )
        });
        let result = tokio::try_join!(walking, reading, futures::future::try_join_all(workers));

        let stats = TransferStats {
            files: counters.files.load(Ordering::Relaxed),
            bytes: counters.bytes.load(Ordering::Relaxed),
            data_packets: counters.data_packets.load(Ordering::Relaxed),
            seconds: started.elapsed().as_secs_f64(),
        };
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(&self.dir_name, &stats);
        if let Err(status) = result {
            // Ignored when the daemon is gone: nobody is left to tell.
            let _ = outgoing.send(Err(status)).await;
        }
    }
}

/// The walk of one transfer, run on a blocking thread.
struct WalkJob {
    dir_name: String,
    root: PathBuf,
    includes: Option<Vec<String>>,
    excludes: Option<Vec<String>>,
    follow_paths: Option<Vec<String>>,
}

impl WalkJob {
    fn run(
        self,
        requestable: &Mutex<HashMap<u32, String>>,
        outgoing: &Outgoing,
        counters: &Counters,
    ) -> Result<(), Status> {
        let result = self.send_stats(requestable, outgoing, counters);
        match result {
            Ok(()) => Ok(()),
            Err(WalkError::Cancelled) => Err(Status::cancelled("the daemon stopped the transfer")),
            Err(error) => {
                let message = format!(
                    "cannot send local {:?} ({}): {error}",
                    self.dir_name,
                    self.root.display()
                );
                // fsutil tells the receiver why before failing the call.
                let _ = outgoing.blocking_send(Ok(Packet {
                    r#type: PacketType::PacketErr.into(),
                    data: message.clone().into_bytes(),
                    ..Packet::default()
                }));
                Err(Status::unknown(message))
            }
        }
    }

    fn send_stats(
        &self,
        requestable: &Mutex<HashMap<u32, String>>,
        outgoing: &Outgoing,
        counters: &Counters,
    ) -> Result<(), WalkError> {
        let filters = Filters::new(
            &self.root,
            self.includes.as_deref(),
            self.excludes.as_deref(),
            self.follow_paths.as_deref(),
        )?;
        let send = |stat: Option<Stat>| {
            outgoing
                .blocking_send(Ok(Packet {
                    r#type: PacketType::PacketStat.into(),
                    stat,
                    ..Packet::default()
                }))
                .map_err(|_| WalkError::Cancelled)
        };
        let mut next_id: u32 = 0;
        walk(&self.root, &filters, &mut |stat| {
            if can_request_data(stat.mode) {
                requestable
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(next_id, stat.path.clone());
            }
            next_id = next_id.wrapping_add(1);
            counters.files.fetch_add(1, Ordering::Relaxed);
            send(Some(stat))
        })?;
        send(None)
    }
}

/// Reads the daemon's packets: `REQ`s go to the workers' queue, `FIN` is answered and ends the
/// call, `ERR` fails it.
async fn read_requests(
    mut incoming: Streaming<Packet>,
    requestable: Requestable,
    requests: mpsc::UnboundedSender<(u32, String)>,
    outgoing: Outgoing,
) -> Result<(), Status> {
    loop {
        let Some(packet) = incoming.message().await? else {
            return Err(Status::aborted(
                "the daemon closed the file transfer before finishing it",
            ));
        };
        match PacketType::try_from(packet.r#type) {
            Ok(PacketType::PacketReq) => {
                let path = requestable
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&packet.id);
                let Some(path) = path else {
                    let message = format!("invalid file id {}", packet.id);
                    let _ = outgoing
                        .send(Ok(Packet {
                            r#type: PacketType::PacketErr.into(),
                            data: message.clone().into_bytes(),
                            ..Packet::default()
                        }))
                        .await;
                    return Err(Status::invalid_argument(message));
                };
                // The workers only stop early when the call already failed.
                let _ = requests.send((packet.id, path));
            }
            Ok(PacketType::PacketErr) => {
                return Err(Status::unknown(format!(
                    "error from receiver: {}",
                    String::from_utf8_lossy(&packet.data)
                )));
            }
            Ok(PacketType::PacketFin) => {
                outgoing
                    .send(Ok(Packet {
                        r#type: PacketType::PacketFin.into(),
                        ..Packet::default()
                    }))
                    .await
                    .map_err(|_| Status::cancelled("the daemon stopped the transfer"))?;
                return Ok(());
            }
            // fsutil's sender ignores anything else.
            _ => {}
        }
    }
}

/// One worker: takes requested files from the queue until it closes and sends each one.
async fn serve_requests(
    root: Arc<Path>,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(u32, String)>>>,
    outgoing: Outgoing,
    counters: Arc<Counters>,
) -> Result<(), Status> {
    loop {
        let next = queue.lock().await.recv().await;
        let Some((id, rel)) = next else {
            return Ok(());
        };
        let path = root.join(&rel);
        let outgoing = outgoing.clone();
        let counters = Arc::clone(&counters);
        tokio::task::spawn_blocking(move || send_file(&path, id, &outgoing, &counters))
            .await
            .map_err(|e| Status::internal(format!("a file reader stopped: {e}")))??;
    }
}

/// Sends one file as `DATA` chunks and the empty `DATA` that ends it. A file that cannot be
/// opened (gone since the walk) is sent empty, as fsutil does.
fn send_file(path: &Path, id: u32, outgoing: &Outgoing, counters: &Counters) -> Result<(), Status> {
    let data_packet = |data: Vec<u8>| Packet {
        r#type: PacketType::PacketData.into(),
        id,
        data,
        ..Packet::default()
    };
    let cancelled = |_| Status::cancelled("the daemon stopped the transfer");
    // Non-blocking, and only regular files are read: a path replaced by a named pipe since
    // the walk must not hang the transfer.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(nonblocking_flag())
        .open(path)
        .ok()
        .filter(|file| file.metadata().is_ok_and(|m| m.is_file()));
    if let Some(mut file) = opened {
        let mut remaining = file.metadata().map_or(0, |m| m.len());
        loop {
            let capacity = usize::try_from(remaining).map_or(CHUNK_SIZE, |r| r.min(CHUNK_SIZE));
            let mut chunk = Vec::with_capacity(capacity);
            let read = (&mut file)
                .take(CHUNK_SIZE as u64)
                .read_to_end(&mut chunk)
                .map_err(|e| Status::unknown(format!("cannot read {}: {e}", path.display())))?;
            if read == 0 {
                break;
            }
            remaining = remaining.saturating_sub(read as u64);
            counters.bytes.fetch_add(read as u64, Ordering::Relaxed);
            counters.data_packets.fetch_add(1, Ordering::Relaxed);
            outgoing
                .blocking_send(Ok(data_packet(chunk)))
                .map_err(cancelled)?;
            if read < CHUNK_SIZE {
                break;
            }
        }
    }
    outgoing
        .blocking_send(Ok(data_packet(Vec::new())))
        .map_err(cancelled)
}

/// `O_NONBLOCK` for `OpenOptionsExt::custom_flags`.
fn nonblocking_flag() -> i32 {
    i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or_default()
}
