//! `FileSend/DiffCopy` for a `local` output: the daemon is fsutil's sender and we receive
//! (receive.go, diskwriter.go, diffcopy.go `syncTargetDiffCopy`). Files are merged into the
//! destination (what is already there stays unless the daemon sends the same path), owned by
//! us. Every `STAT` is validated; directories, links, pipes and devices are made at once;
//! each regular file is requested with a `REQ` (through an unbounded channel, so reading the
//! daemon's packets never waits on sending ours), written to a temporary file beside its
//! place and renamed there when its empty `DATA` arrives. Directory modes and times are set
//! last, deepest first; then we send `FIN` and wait for the daemon's.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _, lchown};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bollard_buildkit_proto::fsutil::types::packet::PacketType;
use bollard_buildkit_proto::fsutil::types::{Packet, Stat};
use bollard_buildkit_proto::moby::filesync::packet::file_send_server::FileSend;
use filetime::FileTime;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::gomode::{self, Kind};
use super::validate::{HardlinkValidator, InvalidStat, OrderValidator};

/// The `FileSend` service of a session with a `local` output: writes the build result into a
/// directory.
#[derive(Clone, Debug)]
pub struct DirTarget {
    dest: Arc<PathBuf>,
}

impl DirTarget {
    /// A target writing into `dest` (created when missing).
    pub fn new(dest: PathBuf) -> Self {
        DirTarget {
            dest: Arc::new(dest),
        }
    }
}

type Outgoing = mpsc::UnboundedSender<Result<Packet, Status>>;

#[tonic::async_trait]
impl FileSend for DirTarget {
    type DiffCopyStream = UnboundedReceiverStream<Result<Packet, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let dest = self.dest.as_ref().clone();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dest)
            .map_err(|e| {
                Status::internal(format!(
                    "cannot create the output directory {}: {e}",
                    dest.display()
                ))
            })?;
        let (outgoing, packets) = mpsc::unbounded_channel();
        let incoming = request.into_inner();
        tokio::spawn(async move {
            let mut receiver = Receiver::new(dest, outgoing.clone());
            if let Err(error) = receiver.run(incoming).await {
                receiver.discard_partial_files();
                let message = format!(
                    "cannot write the output into {}: {error}",
                    receiver.dest.display()
                );
                let _ = outgoing.send(Ok(Packet {
                    r#type: PacketType::PacketErr.into(),
                    data: message.clone().into_bytes(),
                    ..Packet::default()
                }));
                let _ = outgoing.send(Err(Status::unknown(message)));
            }
        });
        Ok(Response::new(UnboundedReceiverStream::new(packets)))
    }
}

/// Why receiving stopped.
#[derive(Debug, thiserror::Error)]
enum ReceiveError {
    #[error(transparent)]
    Invalid(#[from] InvalidStat),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("error from the daemon: {0}")]
    Sender(String),
    #[error("{0}")]
    Protocol(String),
    #[error("the transfer failed: {0}")]
    Stream(#[from] Status),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ReceiveError {
    let path = path.to_path_buf();
    move |source| ReceiveError::Io {
        action,
        path,
        source,
    }
}

/// A requested file whose data is arriving.
struct PendingFile {
    stat: Stat,
    target: PathBuf,
    partial: PathBuf,
    file: Option<File>,
}

/// Gives every receiver its own temporary names.
static RECEIVERS: AtomicU64 = AtomicU64::new(0);

struct Receiver {
    dest: PathBuf,
    outgoing: Outgoing,
    uid: u32,
    gid: u32,
    tag: String,
    order: OrderValidator,
    links: HardlinkValidator,
    next_id: u32,
    pending: HashMap<u32, PendingFile>,
    pending_ids: HashMap<String, u32>,
    /// Hardlinks waiting for the file they link to, by that file's id.
    deferred_links: HashMap<u32, Vec<PathBuf>>,
    dirs: Vec<(PathBuf, Stat)>,
}

impl Receiver {
    fn new(dest: PathBuf, outgoing: Outgoing) -> Self {
        Receiver {
            dest,
            outgoing,
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            tag: format!(
                "{}-{}",
                std::process::id(),
                RECEIVERS.fetch_add(1, Ordering::Relaxed)
            ),
            order: OrderValidator::default(),
            links: HardlinkValidator::default(),
            next_id: 0,
            pending: HashMap::new(),
            pending_ids: HashMap::new(),
            deferred_links: HashMap::new(),
            dirs: Vec::new(),
        }
    }

    async fn run(&mut self, mut incoming: Streaming<Packet>) -> Result<(), ReceiveError> {
        let mut listed = false;
        while !(listed && self.pending.is_empty()) {
            let packet = incoming.message().await?.ok_or_else(|| {
                ReceiveError::Protocol(
                    "the daemon ended the transfer before sending every file".into(),
                )
            })?;
            match PacketType::try_from(packet.r#type) {
                Ok(PacketType::PacketStat) => match packet.stat {
                    Some(_) if listed => {
                        return Err(ReceiveError::Protocol(
                            "the daemon listed a file after the end of its listing".into(),
                        ));
                    }
                    Some(stat) => self.entry(stat)?,
                    None => listed = true,
                },
                Ok(PacketType::PacketData) => self.data(packet.id, &packet.data)?,
                Ok(PacketType::PacketErr) => {
                    return Err(ReceiveError::Sender(
                        String::from_utf8_lossy(&packet.data).into_owned(),
                    ));
                }
                Ok(PacketType::PacketFin) => {
                    return Err(ReceiveError::Protocol(
                        "the daemon finished the transfer before sending every file".into(),
                    ));
                }
                // fsutil's receiver ignores anything else.
                _ => {}
            }
        }
        self.finish_dirs()?;
        self.send(Packet {
            r#type: PacketType::PacketFin.into(),
            ..Packet::default()
        })?;
        // Our stream stays open until the daemon answers FIN: closing it first would make
        // the daemon's answer fail.
        while let Ok(Some(packet)) = incoming.message().await {
            if packet.r#type == i32::from(PacketType::PacketFin) {
                break;
            }
        }
        Ok(())
    }

    fn send(&self, packet: Packet) -> Result<(), ReceiveError> {
        self.outgoing
            .send(Ok(packet))
            .map_err(|_| ReceiveError::Protocol("the daemon stopped the transfer".into()))
    }

    /// One listed entry.
    fn entry(&mut self, stat: Stat) -> Result<(), ReceiveError> {
        let kind = gomode::kind(stat.mode);
        self.order.check(&stat.path, kind == Kind::Dir)?;
        if !matches!(kind, Kind::Dir | Kind::Symlink) {
            self.links.check(&stat.path, &stat.linkname)?;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let target = self.dest.join(&stat.path);
        match kind {
            Kind::Dir => {
                match fs::symlink_metadata(&target) {
                    Ok(existing) if existing.is_dir() => {}
                    Ok(_) => {
                        clear(&target)?;
                        create_dir(&target)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => create_dir(&target)?,
                    Err(e) => return Err(io_error("inspect", &target)(e)),
                }
                self.own(&target, &stat)?;
                self.dirs.push((target, stat));
            }
            Kind::Symlink => {
                clear(&target)?;
                std::os::unix::fs::symlink(&stat.linkname, &target)
                    .map_err(io_error("create the symlink", &target))?;
                self.own(&target, &stat)?;
                let time = file_time(stat.mod_time);
                filetime::set_symlink_file_times(&target, time, time)
                    .map_err(io_error("set the time of", &target))?;
            }
            Kind::Fifo | Kind::CharDevice | Kind::BlockDevice => {
                clear(&target)?;
                let file_type = match kind {
                    Kind::Fifo => rustix::fs::FileType::Fifo,
                    Kind::CharDevice => rustix::fs::FileType::CharacterDevice,
                    _ => rustix::fs::FileType::BlockDevice,
                };
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &target,
                    file_type,
                    rustix::fs::Mode::from_raw_mode(0o600),
                    gomode::make_dev(stat.devmajor, stat.devminor),
                )
                .map_err(|e| io_error("create (devices need root)", &target)(io::Error::from(e)))?;
                self.own(&target, &stat)?;
                set_mode(&target, stat.mode)?;
                let time = file_time(stat.mod_time);
                filetime::set_symlink_file_times(&target, time, time)
                    .map_err(io_error("set the time of", &target))?;
            }
            Kind::File if !stat.linkname.is_empty() => match self.pending_ids.get(&stat.linkname) {
                Some(source_id) => self
                    .deferred_links
                    .entry(*source_id)
                    .or_default()
                    .push(target),
                None => self.link(&stat.linkname, &target)?,
            },
            Kind::File => {
                let partial = target.with_file_name(format!(".filesync-{}-{id}.partial", self.tag));
                self.pending_ids.insert(stat.path.clone(), id);
                self.pending.insert(
                    id,
                    PendingFile {
                        stat,
                        target,
                        partial,
                        file: None,
                    },
                );
                self.send(Packet {
                    r#type: PacketType::PacketReq.into(),
                    id,
                    ..Packet::default()
                })?;
            }
            // A socket or an irregular file: nothing to create.
            Kind::Other => {}
        }
        Ok(())
    }

    /// A `DATA` packet: a chunk of a requested file, or its end when empty.
    fn data(&mut self, id: u32, data: &[u8]) -> Result<(), ReceiveError> {
        let Some(pending) = self.pending.get_mut(&id) else {
            return Err(ReceiveError::Protocol(format!(
                "the daemon sent data for file id {id}, which was not requested"
            )));
        };
        if !data.is_empty() {
            let PendingFile { partial, file, .. } = pending;
            return open_partial(partial, file)?
                .write_all(data)
                .map_err(io_error("write", partial));
        }
        let Some(mut pending) = self.pending.remove(&id) else {
            return Ok(());
        };
        self.pending_ids.remove(&pending.stat.path);
        let time = file_time(pending.stat.mod_time);
        let file = open_partial(&pending.partial, &mut pending.file)?;
        filetime::set_file_handle_times(file, Some(time), Some(time))
            .map_err(io_error("set the time of", &pending.partial))?;
        pending.file = None;
        self.own(&pending.partial, &pending.stat)?;
        set_mode(&pending.partial, pending.stat.mode)?;
        if fs::symlink_metadata(&pending.target).is_ok_and(|m| m.is_dir()) {
            clear(&pending.target)?;
        }
        fs::rename(&pending.partial, &pending.target)
            .map_err(io_error("move into place", &pending.target))?;
        for link in self.deferred_links.remove(&id).unwrap_or_default() {
            self.link(&pending.stat.path, &link)?;
        }
        Ok(())
    }

    fn link(&self, source: &str, target: &Path) -> Result<(), ReceiveError> {
        clear(target)?;
        fs::hard_link(self.dest.join(source), target)
            .map_err(io_error("create the hardlink", target))
    }

    /// Owner (us, as the docker CLI does for outputs) and extended attributes; the attributes
    /// are best effort, as in fsutil.
    fn own(&self, path: &Path, stat: &Stat) -> Result<(), ReceiveError> {
        for (name, value) in &stat.xattrs {
            let _ = xattr::set(path, name, value);
        }
        lchown(path, Some(self.uid), Some(self.gid)).map_err(io_error("change the owner of", path))
    }

    /// Directory modes and times, deepest first, once nothing more is written into them.
    fn finish_dirs(&mut self) -> Result<(), ReceiveError> {
        self.dirs
            .sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
        for (path, stat) in &self.dirs {
            set_mode(path, stat.mode)?;
            let time = file_time(stat.mod_time);
            filetime::set_symlink_file_times(path, time, time)
                .map_err(io_error("set the time of", path))?;
        }
        Ok(())
    }

    /// Removes the temporary files of a failed transfer.
    fn discard_partial_files(&mut self) {
        for (_, pending) in self.pending.drain() {
            drop(pending.file);
            let _ = fs::remove_file(&pending.partial);
        }
    }
}

fn open_partial<'a>(
    partial: &Path,
    file: &'a mut Option<File>,
) -> Result<&'a mut File, ReceiveError> {
    let opened = match file.take() {
        Some(opened) => opened,
        None => OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(partial)
            .map_err(io_error("create", partial))?,
    };
    Ok(file.insert(opened))
}

fn create_dir(path: &Path) -> Result<(), ReceiveError> {
    // Owner-writable until the end, when the directory gets its own mode.
    DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(io_error("create the directory", path))
}

/// Removes whatever is at `path` (not following a symlink).
fn clear(path: &Path) -> Result<(), ReceiveError> {
    match fs::symlink_metadata(path) {
        Ok(existing) if existing.is_dir() => {
            fs::remove_dir_all(path).map_err(io_error("replace", path))
        }
        Ok(_) => fs::remove_file(path).map_err(io_error("replace", path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("inspect", path)(e)),
    }
}

fn set_mode(path: &Path, go_mode: u32) -> Result<(), ReceiveError> {
    fs::set_permissions(
        path,
        fs::Permissions::from_mode(gomode::unix_permissions(go_mode)),
    )
    .map_err(io_error("set the mode of", path))
}

/// A time from nanoseconds since the epoch, for `filetime::set_symlink_file_times`, which
/// sets it without following a symlink and, unlike `set_file_times`, without opening the
/// file (opening a named pipe would wait for a writer).
fn file_time(nanos: i64) -> FileTime {
    let seconds = nanos.div_euclid(1_000_000_000);
    let rest = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or_default();
    FileTime::from_unix_time(seconds, rest)
}
