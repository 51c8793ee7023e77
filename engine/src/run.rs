//! The RUN step. As the original tool did, the command runs on the build host, with a
//! materialized copy of the image's rootfs as its working directory (a ClusterImage rootfs
//! has no shell of its own), and what it changed there becomes the step's layer.
//!
//! The command's environment is cleared, then holds:
//! - `PATH`: the rootfs's `bin`, `usr/bin` and `usr/local/bin` (as absolute host paths)
//!   before the host's `PATH` (or a standard one when it is unset), so binaries the image
//!   ships win over the host's;
//! - `HOME=/root`;
//! - the step's variables (image ENV and build arguments), in order, a later one winning;
//! - `SEALER_ROOTFS`: the absolute path of the rootfs directory, so scripts can address the
//!   rootfs from anywhere (`cd` elsewhere, then `$SEALER_ROOTFS/etc/...`). It is set last and
//!   cannot be overridden.
//!
//! Standard input is `/dev/null`; standard output and error are merged and handed to the
//! caller line by line as they come.
//!
//! With [`Isolation::Namespace`] the command runs through util-linux `unshare` in new mount
//! and PID namespaces (with a user namespace mapping the builder to root when the builder is
//! not root): mounts it makes vanish with it, it sees and can signal only its own processes,
//! and everything it started dies when it ends. `--network none` adds a network namespace
//! holding only a loopback interface (down). With [`Isolation::None`] the command runs as a
//! plain child process in its own process group, which is killed once the command exits, so
//! background processes cannot go on changing the rootfs while its changes are collected.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::thread;

use image::layer::LayerEntry;
use kubefile::plan::{Location, RunCommand, RunStep};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use tempfile::TempDir;

use crate::rootfs::{self, RootfsError};

/// The shell of the shell form.
const SHELL: &str = "/bin/sh";
/// The `PATH` used after the rootfs's directories when the host has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Rootfs directories searched before the host's `PATH`, in order.
const ROOTFS_BIN_DIRS: [&str; 3] = ["bin", "usr/bin", "usr/local/bin"];
/// Output lines kept for the error of a failed command.
const LOG_TAIL_LINES: usize = 20;
/// Output without a newline is cut into lines of this many bytes.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Characters of the command shown in errors.
const SHOWN_COMMAND_CHARS: usize = 60;

/// How the command is separated from the build host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A plain child process of the builder: it shares the host's mounts, processes and
    /// network.
    None,
    /// New mount and PID namespaces (and a network namespace for `--network none`), through
    /// util-linux `unshare`.
    Namespace,
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isolation::None => "none",
            Isolation::Namespace => "namespace",
        })
    }
}

/// An isolation name other than `none` and `namespace`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown isolation `{0}`: use `none` or `namespace`")]
pub struct ParseIsolationError(pub String);

impl FromStr for Isolation {
    type Err = ParseIsolationError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "none" => Ok(Isolation::None),
            "namespace" => Ok(Isolation::Namespace),
            other => Err(ParseIsolationError(other.to_owned())),
        }
    }
}

/// What [`run_step`] needs.
pub struct RunRequest<'a> {
    /// The step of the build plan.
    pub step: &'a RunStep,
    /// The layer blobs of the image so far, lowest first.
    pub layers: &'a [PathBuf],
    /// How the command is separated from the host.
    pub isolation: Isolation,
    /// A directory for the materialized rootfs; a fresh directory is made inside it.
    pub scratch: &'a Path,
    /// Receives the command's output (stdout and stderr merged), one line at a time, without
    /// the line ending.
    pub log: &'a mut dyn FnMut(&str),
}

/// What a successful RUN changed.
#[derive(Debug)]
pub struct RunOutput {
    /// The layer of the step, sorted by path; file contents point into the rootfs directory,
    /// which lives as long as this value. When the builder is not root, what the builder's
    /// user and group own is recorded as owned by root, as the command saw it.
    pub entries: Vec<LayerEntry>,
    rootfs: TempDir,
}

impl RunOutput {
    /// The rootfs directory the command ran in, as it left it.
    pub fn rootfs(&self) -> &Path {
        self.rootfs.path()
    }
}

/// The RUN instruction an error is about: where it is and how its command starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLabel {
    /// The instruction in the Kubefile.
    pub location: Location,
    /// The command's first line, shortened.
    pub command: String,
}

impl RunLabel {
    fn of(step: &RunStep) -> Self {
        let full = match &step.command {
            RunCommand::Shell(script) => script.clone(),
            RunCommand::Exec(arguments) => arguments.join(" "),
        };
        let first_line = full.trim().lines().next().unwrap_or_default();
        let mut command: String = first_line.chars().take(SHOWN_COMMAND_CHARS).collect();
        if command.len() < full.trim().len() {
            command.push('…');
        }
        RunLabel {
            location: step.location,
            command,
        }
    }
}

impl fmt::Display for RunLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RUN at line {}:{} (`{}`)",
            self.location.line, self.location.column, self.command
        )
    }
}

/// How a command ended, when it did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Termination::Code(code) => write!(f, "exit code {code}"),
            Termination::Signal(signal) => write!(f, "signal {signal}"),
        }
    }
}

/// Why a RUN step failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The command ran and did not succeed.
    #[error("{run} failed with {termination}{}", shown_tail(log_tail))]
    Failed {
        /// The instruction.
        run: RunLabel,
        /// How the command ended.
        termination: Termination,
        /// Its last output lines (at most 20).
        log_tail: Vec<String>,
    },
    /// `--network none` without a namespace to enforce it.
    #[error(
        "{run}: `--network none` needs a network namespace; build with `--isolation namespace`, or drop `--network none` to use the host network"
    )]
    NetworkNeedsNamespace {
        /// The instruction.
        run: RunLabel,
    },
    /// A `--network` value this builder does not know.
    #[error("{run}: unknown network mode `{network}`; use default, none or host")]
    UnknownNetwork {
        /// The instruction.
        run: RunLabel,
        /// The value.
        network: String,
    },
    /// The exec form with an empty list.
    #[error("{run}: the exec form names no program")]
    NoProgram {
        /// The instruction.
        run: RunLabel,
    },
    /// Namespaces cannot be used here.
    #[error(
        "{run}: namespace isolation is not available: {reason}; `--isolation none` runs the command without it"
    )]
    IsolationUnavailable {
        /// The instruction.
        run: RunLabel,
        /// What is missing or refused.
        reason: String,
    },
    /// The command could not be started.
    #[error("{run}: cannot start `{program}`: {source}")]
    Spawn {
        /// The instruction.
        run: RunLabel,
        /// The program.
        program: String,
        /// What failed.
        source: io::Error,
    },
    /// The rootfs could not be materialized.
    #[error("{run}: {source}")]
    Materialize {
        /// The instruction.
        run: RunLabel,
        /// What failed.
        source: Box<RootfsError>,
    },
    /// The command left file systems mounted in the rootfs, which is therefore kept.
    #[error(
        "{run}: the command left file systems mounted at {}; unmount them, then remove {} (it was kept so that nothing is deleted through them; `--isolation namespace` makes such mounts vanish)",
        shown_paths(mounts),
        rootfs.display()
    )]
    MountsLeft {
        /// The instruction.
        run: RunLabel,
        /// The mount points.
        mounts: Vec<PathBuf>,
        /// The rootfs directory.
        rootfs: PathBuf,
    },
    /// Any other I/O failure.
    #[error("{run}: {action}: {source}")]
    Io {
        /// The instruction.
        run: RunLabel,
        /// What was being done.
        action: String,
        /// What failed.
        source: io::Error,
    },
}

fn shown_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return " and printed nothing".to_owned();
    }
    let mut shown = String::from("; its last output lines:");
    for line in lines {
        shown.push_str("\n    ");
        shown.push_str(line);
    }
    shown
}

fn shown_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs a RUN step: materializes `layers` into a fresh directory under `scratch`, runs the
/// command there (see the module documentation for its environment and isolation), and
/// returns what it changed as a layer.
pub fn run_step(request: RunRequest<'_>) -> Result<RunOutput, RunError> {
    run_step_with(request, find_on_host_path("unshare"))
}

/// [`run_step`] with `unshare` at the given place (`None`: not installed).
fn run_step_with(request: RunRequest<'_>, unshare: Option<PathBuf>) -> Result<RunOutput, RunError> {
    let RunRequest {
        step,
        layers,
        isolation,
        scratch,
        log,
    } = request;
    let run = RunLabel::of(step);
    let network_none = match step.network.as_str() {
        "none" => true,
        "default" | "host" => false,
        other => {
            return Err(RunError::UnknownNetwork {
                run,
                network: other.to_owned(),
            });
        }
    };
    let is_root = rustix::process::geteuid().is_root();
    let namespace = match isolation {
        Isolation::None if network_none => return Err(RunError::NetworkNeedsNamespace { run }),
        Isolation::None => None,
        Isolation::Namespace => {
            let Some(unshare) = unshare else {
                return Err(RunError::IsolationUnavailable {
                    run,
                    reason:
                        "util-linux `unshare` is not on the build host's PATH (install util-linux)"
                            .to_owned(),
                });
            };
            let arguments = unshare_arguments(is_root, network_none);
            if let Err(reason) = probe_unshare(&unshare, &arguments) {
                return Err(RunError::IsolationUnavailable { run, reason });
            }
            Some((unshare, arguments))
        }
    };
    let (program_name, arguments) = match &step.command {
        RunCommand::Shell(script) => {
            if !is_executable(Path::new(SHELL)) {
                return Err(RunError::Spawn {
                    run,
                    program: SHELL.to_owned(),
                    source: io::Error::new(
                        io::ErrorKind::NotFound,
                        "the shell form runs its script with the build host's /bin/sh, which is missing; install a POSIX shell or use the exec form",
                    ),
                });
            }
            (SHELL, vec!["-c".to_owned(), script.clone()])
        }
        RunCommand::Exec(words) => {
            let Some((name, arguments)) = words.split_first() else {
                return Err(RunError::NoProgram { run });
            };
            (name.as_str(), arguments.to_vec())
        }
    };

    let io_error = |action: String| {
        let run = run.clone();
        move |source| RunError::Io {
            run,
            action,
            source,
        }
    };
    let directory = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(scratch)
        .map_err(io_error(format!(
            "cannot create a directory under {}",
            scratch.display()
        )))?;
    let rootfs = fs::canonicalize(directory.path()).map_err(io_error(format!(
        "cannot resolve {}",
        directory.path().display()
    )))?;
    rootfs::materialize(layers, &rootfs).map_err(|source| RunError::Materialize {
        run: run.clone(),
        source: Box::new(source),
    })?;
    let before = rootfs::snapshot(&rootfs)
        .map_err(io_error("cannot read the materialized rootfs".to_owned()))?;

    let search_path = command_path(&rootfs);
    let Some(program) = find_program(program_name, &search_path, &rootfs) else {
        return Err(RunError::Spawn {
            run,
            program: program_name.to_owned(),
            source: io::Error::new(
                io::ErrorKind::NotFound,
                "no such executable in the rootfs's bin, usr/bin or usr/local/bin, nor on the host's PATH",
            ),
        });
    };

    let mut command = match &namespace {
        Some((unshare, unshare_arguments)) => {
            let mut command = Command::new(unshare);
            command.args(unshare_arguments).arg(&program);
            command
        }
        None => Command::new(&program),
    };
    command
        .args(&arguments)
        .current_dir(&rootfs)
        .env_clear()
        .env("PATH", &search_path)
        .env("HOME", "/root");
    for variable in &step.env {
        command.env(&variable.name, &variable.value);
    }
    command.env("SEALER_ROOTFS", &rootfs).process_group(0);

    let (output, output_writer) =
        io::pipe().map_err(io_error("cannot create a pipe".to_owned()))?;
    let error_writer = output_writer
        .try_clone()
        .map_err(io_error("cannot create a pipe".to_owned()))?;
    command
        .stdin(Stdio::null())
        .stdout(output_writer)
        .stderr(error_writer);
    let spawned = command.spawn();
    drop(command);
    let child = spawned.map_err(|source| RunError::Spawn {
        run: run.clone(),
        program: program.display().to_string(),
        source,
    })?;

    let mut log_tail = VecDeque::with_capacity(LOG_TAIL_LINES);
    let status = stream_until_exit(child, output, &mut |line| {
        log(line);
        if log_tail.len() == LOG_TAIL_LINES {
            log_tail.pop_front();
        }
        log_tail.push_back(line.to_owned());
    })
    .map_err(io_error("cannot follow the command".to_owned()))?;

    let mounts = match mounts_under(&rootfs) {
        Ok(mounts) => mounts,
        Err(source) => {
            let kept = directory.keep();
            return Err(RunError::Io {
                run,
                action: format!(
                    "cannot read /proc/self/mountinfo to check that no mount is left in {} (kept)",
                    kept.display()
                ),
                source,
            });
        }
    };
    if !mounts.is_empty() {
        return Err(RunError::MountsLeft {
            run,
            mounts,
            rootfs: directory.keep(),
        });
    }
    if !status.success() {
        // A status the child was waited for with is either an exit code or a signal.
        let termination = status.code().map_or_else(
            || Termination::Signal(status.signal().unwrap_or_default()),
            Termination::Code,
        );
        return Err(RunError::Failed {
            run,
            termination,
            log_tail: log_tail.into(),
        });
    }

    let mut entries = rootfs::changes(&rootfs, &before).map_err(io_error(
        "cannot collect what the command changed".to_owned(),
    ))?;
    if !is_root {
        record_builder_as_root(
            &mut entries,
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
    }
    Ok(RunOutput {
        entries,
        rootfs: directory,
    })
}

/// The `unshare` options before the command: a user namespace mapping the builder to root
/// when it is not root already, mount and PID namespaces with their own /proc, the command
/// killed if `unshare` dies, and a network namespace for `--network none`.
fn unshare_arguments(is_root: bool, network_none: bool) -> Vec<&'static str> {
    let mut arguments = Vec::new();
    if !is_root {
        arguments.extend(["--user", "--map-root-user"]);
    }
    arguments.extend(["--mount", "--pid", "--fork", "--mount-proc", "--kill-child"]);
    if network_none {
        arguments.push("--net");
    }
    arguments.push("--");
    arguments
}

/// Runs `true` with the same namespaces, to tell a refusal of the namespaces apart from a
/// failure of the command.
fn probe_unshare(unshare: &Path, arguments: &[&str]) -> Result<(), String> {
    let shown = format!("{} {} true", unshare.display(), arguments.join(" "));
    let output = Command::new(unshare)
        .args(arguments)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|error| format!("`{shown}` cannot start: {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(format!(
        "`{shown}` failed ({}){}",
        output.status,
        if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        }
    ))
}

/// The command's `PATH`: the rootfs's binary directories, then the host's.
fn command_path(rootfs: &Path) -> OsString {
    let mut path = OsString::new();
    for directory in ROOTFS_BIN_DIRS {
        path.push(rootfs.join(directory));
        path.push(":");
    }
    path.push(host_path());
    path
}

fn host_path() -> OsString {
    std::env::var_os("PATH")
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.into())
}

fn find_on_host_path(name: &str) -> Option<PathBuf> {
    find_program(name, &host_path(), Path::new("/"))
}

/// Where `name` is run from: a name with a `/` is taken relative to `directory`, any other is
/// looked up in `search_path`.
fn find_program(name: &str, search_path: &OsStr, directory: &Path) -> Option<PathBuf> {
    if name.contains('/') {
        let path = directory.join(name);
        return is_executable(&path).then_some(path);
    }
    std::env::split_paths(search_path)
        .filter(|candidate| !candidate.as_os_str().is_empty())
        .map(|candidate| candidate.join(name))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// What the stream and waiter threads report.
enum Event {
    Line(String),
    ReadFailed(io::Error),
    Exited(io::Result<ExitStatus>),
}

/// Hands `output`'s lines to `on_line` until the child exited and every process holding the
/// pipe is gone.
fn stream_until_exit(
    child: Child,
    output: impl Read + Send,
    on_line: &mut dyn FnMut(&str),
) -> io::Result<ExitStatus> {
    let (sender, events) = mpsc::channel();
    thread::scope(|scope| {
        let line_sender = sender.clone();
        scope.spawn(move || {
            let read = read_lines(output, &mut |line| {
                // The receiver outlives both senders, so sending cannot fail.
                let _ = line_sender.send(Event::Line(line));
            });
            if let Err(error) = read {
                let _ = line_sender.send(Event::ReadFailed(error));
            }
        });
        scope.spawn(move || {
            let _ = sender.send(Event::Exited(wait_and_end_group(child)));
        });
        let mut status = None;
        let mut read_failure = None;
        for event in events {
            match event {
                Event::Line(line) => on_line(&line),
                Event::ReadFailed(error) => read_failure = Some(error),
                Event::Exited(exited) => status = Some(exited),
            }
        }
        if let Some(error) = read_failure {
            return Err(error);
        }
        status.unwrap_or_else(|| {
            Err(io::Error::other(
                "the waiting thread ended without a status",
            ))
        })
    })
}

/// The process groups of the RUN commands running now, so an interrupted build can end them.
static RUNNING: std::sync::Mutex<Vec<Pid>> = std::sync::Mutex::new(Vec::new());

/// Kills every RUN command this process is running (their whole process groups): what an
/// interrupted build does, since a command in its own group does not get the terminal's
/// Ctrl-C. The interrupted steps fail.
pub fn kill_running() {
    let running = RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for group in running.iter() {
        // Fails with ESRCH when the group is already empty.
        let _ = rustix::process::kill_process_group(*group, Signal::KILL);
    }
}

/// Waits for the child to exit, kills what is left of its process group while its pid is
/// still reserved (so the group id cannot have been reused), then reaps it. The group is
/// listed in [`RUNNING`] meanwhile.
fn wait_and_end_group(mut child: Child) -> io::Result<ExitStatus> {
    let pid = Pid::from_child(&child);
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(pid);
    let status = wait_for_exit(pid);
    // Fails with ESRCH when the group is already empty, which is what it is for.
    let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|running| *running != pid);
    status?;
    child.wait()
}

/// Waits until `pid` exited, leaving it to be reaped.
fn wait_for_exit(pid: Pid) -> io::Result<()> {
    loop {
        match rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Err(error.into()),
            Ok(_) => return Ok(()),
        }
    }
}

/// Reads lines (at most [`MAX_LINE_BYTES`] each, invalid UTF-8 replaced, `\r\n` endings
/// taken off) until the end of `input`.
fn read_lines(input: impl Read, on_line: &mut dyn FnMut(String)) -> io::Result<()> {
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    let mut emit = |line: &mut Vec<u8>| {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        on_line(String::from_utf8_lossy(line).into_owned());
        line.clear();
    };
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            if !line.is_empty() {
                emit(&mut line);
            }
            return Ok(());
        }
        let room = MAX_LINE_BYTES - line.len();
        if let Some(newline) = available.iter().take(room).position(|&b| b == b'\n') {
            line.extend_from_slice(&available[..newline]);
            input.consume(newline + 1);
            emit(&mut line);
        } else {
            let taken = available.len().min(room);
            line.extend_from_slice(&available[..taken]);
            input.consume(taken);
            if line.len() == MAX_LINE_BYTES {
                emit(&mut line);
            }
        }
    }
}

/// Mount points at or below `root`, from `/proc/self/mountinfo`.
fn mounts_under(root: &Path) -> io::Result<Vec<PathBuf>> {
    let table = fs::read("/proc/self/mountinfo")?;
    Ok(table
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape_mount_field(field))))
        .filter(|mount_point| mount_point.starts_with(root))
        .collect())
}

/// A mountinfo field with its `\ooo` octal escapes (space, tab, newline, backslash) decoded.
fn unescape_mount_field(field: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'\\'
            && let Some(digits) = tail.get(..3)
            && let Ok(text) = std::str::from_utf8(digits)
            && let Ok(value) = u8::from_str_radix(text, 8)
        {
            decoded.push(value);
            rest = &tail[3..];
        } else {
            decoded.push(first);
            rest = tail;
        }
    }
    decoded
}

/// Records what the builder's user and group own as owned by root. A builder that is not
/// root materializes the rootfs as its own files and, in a namespace, runs the command as the
/// root its user is mapped to; either way the command's files are root's as far as the image
/// is concerned.
fn record_builder_as_root(entries: &mut [LayerEntry], uid: u32, gid: u32) {
    for entry in entries {
        if entry.uid == uid {
            entry.uid = 0;
        }
        if entry.gid == gid {
            entry.gid = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use image::layer::{Compression, EntryKind};
    use kubefile::plan::EnvVar;

    use super::*;
    use crate::rootfs::tests::{
        assert_layer_reproduces, base_layers, changed, dir, entry, layer_file, on_disk, whiteout,
    };

    /// An entry as a RUN reports it: what the command made is root's, whoever the builder is.
    fn created(root: &Path, path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
        LayerEntry {
            uid: 0,
            gid: 0,
            ..changed(root, path, kind, mode)
        }
    }

    fn shell(script: &str) -> RunStep {
        step(RunCommand::Shell(script.to_owned()))
    }

    fn step(command: RunCommand) -> RunStep {
        RunStep {
            location: Location { line: 7, column: 1 },
            command,
            env: Vec::new(),
            network: "default".to_owned(),
        }
    }

    /// Runs `step` on `layers` in a fresh scratch directory under `work`, returning the
    /// result and the lines logged.
    fn execute(
        step: &RunStep,
        layers: &[PathBuf],
        isolation: Isolation,
        work: &Path,
    ) -> (Result<RunOutput, RunError>, Vec<String>) {
        let scratch = work.join("scratch");
        fs::create_dir_all(&scratch).unwrap();
        let mut lines = Vec::new();
        let result = run_step(RunRequest {
            step,
            layers,
            isolation,
            scratch: &scratch,
            log: &mut |line| lines.push(line.to_owned()),
        });
        (result, lines)
    }

    fn succeeded(result: Result<RunOutput, RunError>) -> RunOutput {
        result.unwrap_or_else(|error| panic!("{error}"))
    }

    /// A layer with executables in the rootfs's binary directories.
    fn tools_layer(work: &Path) -> PathBuf {
        let script = |path: &str, body: &str| {
            entry(
                path,
                EntryKind::File(image::layer::FileSource::Bytes(
                    format!("#!/bin/sh\n{body}\n").into_bytes(),
                )),
                0o755,
            )
        };
        layer_file(
            &work.join("tools.tar"),
            vec![
                dir("bin"),
                script("bin/cat", "echo \"cat from the rootfs's bin\""),
                script("bin/greet", "echo \"hello $*\" > greeting.txt"),
                dir("usr"),
                dir("usr/bin"),
                script("usr/bin/cat", "echo \"cat from the rootfs's usr/bin\""),
                script("usr/bin/uname", "echo \"uname from the rootfs's usr/bin\""),
                dir("usr/local"),
                dir("usr/local/bin"),
                script("usr/local/bin/uname", "echo \"uname from usr/local/bin\""),
            ],
            Compression::None,
        )
    }

    #[test]
    fn a_run_becomes_the_layer_of_its_changes() {
        let work = tempfile::tempdir().unwrap();
        let layers = base_layers(work.path());
        let script = r#"
            set -e
            echo new > new.txt
            echo a=2 > etc/config
            chmod 600 etc/mode-only
            rm old.txt
            rm -r olddir
            rm -r kind && echo "now a file" > kind
            rm swap && mkdir -m 750 swap && echo inside > swap/inside
            rm -r recreated && mkdir -m 755 recreated && echo "kept again" > recreated/kept
            ln data/blob data/blob2
            ln -s etc/config new-link
            ln -sf etc/same link-old
            chmod 700 bin
            echo done
        "#;
        let (result, lines) = execute(&shell(script), &layers, Isolation::None, work.path());
        let output = succeeded(result);
        assert_eq!(lines, ["done"]);
        let root = output.rootfs();
        let mut expected = vec![
            whiteout(".wh.old.txt"),
            whiteout(".wh.olddir"),
            created(root, "bin", EntryKind::Dir, 0o700),
            created(root, "data/blob", on_disk(), 0o644),
            created(
                root,
                "data/blob2",
                EntryKind::Hardlink("data/blob".into()),
                0o644,
            ),
            created(root, "etc/config", on_disk(), 0o644),
            created(root, "etc/mode-only", on_disk(), 0o600),
            created(root, "kind", on_disk(), 0o644),
            created(
                root,
                "link-old",
                EntryKind::Symlink("etc/same".into()),
                0o777,
            ),
            created(
                root,
                "new-link",
                EntryKind::Symlink("etc/config".into()),
                0o777,
            ),
            created(root, "new.txt", on_disk(), 0o644),
            whiteout("recreated/.wh.gone"),
            created(root, "recreated/kept", on_disk(), 0o644),
            created(root, "swap", EntryKind::Dir, 0o750),
            created(root, "swap/inside", on_disk(), 0o644),
        ];
        expected.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(output.entries, expected);
        assert_layer_reproduces(&layers, output.entries.clone(), root, work.path());
    }

    #[test]
    fn the_rootfs_binaries_come_first_on_the_path() {
        let work = tempfile::tempdir().unwrap();
        let layers = [tools_layer(work.path())];
        let (result, lines) = execute(
            &shell("cat; uname; ls -d bin"),
            &layers,
            Isolation::None,
            work.path(),
        );
        succeeded(result);
        assert_eq!(
            lines,
            [
                "cat from the rootfs's bin",
                "uname from the rootfs's usr/bin",
                "bin"
            ]
        );
    }

    #[test]
    fn the_exec_form_runs_a_program_from_the_rootfs() {
        let work = tempfile::tempdir().unwrap();
        let layers = [tools_layer(work.path())];
        let exec = step(RunCommand::Exec(vec![
            "greet".to_owned(),
            "two words".to_owned(),
            "$HOME".to_owned(),
        ]));
        let (result, _) = execute(&exec, &layers, Isolation::None, work.path());
        let output = succeeded(result);
        assert_eq!(
            output.entries,
            [created(output.rootfs(), "greeting.txt", on_disk(), 0o644)]
        );
        assert_eq!(
            fs::read_to_string(output.rootfs().join("greeting.txt")).unwrap(),
            "hello two words $HOME\n"
        );

        let relative = step(RunCommand::Exec(vec![
            "./bin/greet".to_owned(),
            "again".to_owned(),
        ]));
        let (result, _) = execute(&relative, &layers, Isolation::None, work.path());
        let output = succeeded(result);
        assert_eq!(
            fs::read_to_string(output.rootfs().join("greeting.txt")).unwrap(),
            "hello again\n"
        );

        let missing = step(RunCommand::Exec(vec!["no-such-program-here".to_owned()]));
        let (result, _) = execute(&missing, &layers, Isolation::None, work.path());
        let error = result.unwrap_err();
        assert!(
            matches!(&error, RunError::Spawn { program, .. } if program == "no-such-program-here"),
            "{error}"
        );
        assert!(error.to_string().starts_with("RUN at line 7:1"), "{error}");

        let empty = step(RunCommand::Exec(Vec::new()));
        let (result, _) = execute(&empty, &layers, Isolation::None, work.path());
        assert!(matches!(result, Err(RunError::NoProgram { .. })));
    }

    #[test]
    fn the_environment_is_the_steps_only() {
        let work = tempfile::tempdir().unwrap();
        let mut env_step =
            shell("echo \"$A $B $HOME\"; echo \"$PATH\"; echo \"$SEALER_ROOTFS\"; env");
        env_step.env = [
            ("A", "1"),
            ("B", "2"),
            ("A", "3"),
            ("SEALER_ROOTFS", "/elsewhere"),
        ]
        .into_iter()
        .map(|(name, value)| EnvVar {
            name: name.to_owned(),
            value: value.to_owned(),
        })
        .collect();
        let (result, lines) = execute(&env_step, &[], Isolation::None, work.path());
        let output = succeeded(result);
        let rootfs = output.rootfs().to_str().unwrap();
        assert_eq!(lines[0], "3 2 /root");
        assert!(
            lines[1].starts_with(&format!(
                "{rootfs}/bin:{rootfs}/usr/bin:{rootfs}/usr/local/bin:"
            )),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], rootfs);
        let mut names: Vec<&str> = lines[3..]
            .iter()
            .filter_map(|line| line.split_once('=').map(|(name, _)| name))
            .filter(|name| !matches!(*name, "PWD" | "OLDPWD" | "SHLVL" | "_"))
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["A", "B", "HOME", "PATH", "SEALER_ROOTFS"]);
        assert!(lines.contains(&format!("PWD={rootfs}")), "{lines:?}");
    }

    #[test]
    fn a_failing_command_reports_its_status_and_last_lines() {
        let work = tempfile::tempdir().unwrap();
        let failing = shell("for i in $(seq 1 25); do echo line $i; done\necho oops >&2\nexit 3");
        let (result, lines) = execute(&failing, &[], Isolation::None, work.path());
        assert_eq!(lines.len(), 26);
        assert_eq!(lines[25], "oops");
        let error = result.unwrap_err();
        let RunError::Failed {
            run,
            termination,
            log_tail,
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!(*termination, Termination::Code(3));
        assert_eq!(log_tail.len(), 20);
        assert_eq!(log_tail[0], "line 7");
        assert_eq!(log_tail[19], "oops");
        assert_eq!(run.command, "for i in $(seq 1 25); do echo line $i; done…");
        let message = error.to_string();
        assert!(
            message.starts_with(
                "RUN at line 7:1 (`for i in $(seq 1 25); do echo line $i; done…`) failed with exit code 3; its last output lines:\n    line 7\n"
            ),
            "{message}"
        );

        let (result, _) = execute(&shell("kill -9 $$"), &[], Isolation::None, work.path());
        assert!(
            matches!(
                result,
                Err(RunError::Failed {
                    termination: Termination::Signal(9),
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn background_processes_end_with_the_command() {
        let work = tempfile::tempdir().unwrap();
        let (result, lines) = execute(
            &shell("(sleep 300; echo late > late.txt) & echo started"),
            &[],
            Isolation::None,
            work.path(),
        );
        let output = succeeded(result);
        assert_eq!(lines, ["started"]);
        assert_eq!(output.entries, []);
    }

    #[test]
    fn mounts_left_behind_keep_the_rootfs() {
        assert!(
            rustix::process::geteuid().is_root(),
            "this test mounts a tmpfs without isolation and needs root (as CI has)"
        );
        let work = tempfile::tempdir().unwrap();
        let (result, _) = execute(
            &shell("mkdir m && mount -t tmpfs tmpfs m && echo x > m/file"),
            &[],
            Isolation::None,
            work.path(),
        );
        let error = result.unwrap_err();
        let RunError::MountsLeft { mounts, rootfs, .. } = &error else {
            panic!("{error}");
        };
        let mount = rootfs.canonicalize().unwrap().join("m");
        assert_eq!(mounts, std::slice::from_ref(&mount));
        assert!(
            mount.join("file").exists(),
            "the kept rootfs still holds the mount"
        );
        let unmounted = Command::new("umount").arg(&mount).status().unwrap();
        assert!(unmounted.success());
        fs::remove_dir_all(rootfs).unwrap();
    }

    #[test]
    fn a_namespace_keeps_mounts_and_processes_inside() {
        let work = tempfile::tempdir().unwrap();
        let script = format!(
            "mkdir sub && mount -t tmpfs tmpfs sub && echo inside > sub/file\n\
             grep -c \" $SEALER_ROOTFS/sub \" /proc/self/mountinfo\n\
             if kill -0 {} 2>/dev/null; then echo host process visible; else echo host process hidden; fi\n\
             echo \"my pid is $$\"",
            std::process::id()
        );
        let (result, lines) = execute(&shell(&script), &[], Isolation::Namespace, work.path());
        let output = succeeded(result);
        assert_eq!(lines, ["1", "host process hidden", "my pid is 1"]);
        assert_eq!(
            output.entries,
            [created(output.rootfs(), "sub", EntryKind::Dir, 0o755)]
        );
        assert!(!output.rootfs().join("sub/file").exists());
        assert_eq!(
            mounts_under(output.rootfs()).unwrap(),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn network_none_leaves_only_loopback() {
        let work = tempfile::tempdir().unwrap();
        let mut offline = shell("cat /proc/net/dev");
        offline.network = "none".to_owned();
        let (result, lines) = execute(&offline, &[], Isolation::Namespace, work.path());
        succeeded(result);
        let interfaces: Vec<&str> = lines[2..]
            .iter()
            .filter_map(|line| line.split_once(':').map(|(name, _)| name.trim()))
            .collect();
        assert_eq!(interfaces, ["lo"]);

        let (result, _) = execute(&offline, &[], Isolation::None, work.path());
        let error = result.unwrap_err();
        assert!(
            matches!(error, RunError::NetworkNeedsNamespace { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("--isolation namespace"),
            "{error}"
        );

        offline.network = "bridge".to_owned();
        let (result, _) = execute(&offline, &[], Isolation::None, work.path());
        assert!(
            matches!(result, Err(RunError::UnknownNetwork { network, .. }) if network == "bridge")
        );
    }

    #[test]
    fn missing_or_refused_namespaces_point_to_isolation_none() {
        let work = tempfile::tempdir().unwrap();
        let attempt = |unshare: Option<PathBuf>| {
            let error = run_step_with(
                RunRequest {
                    step: &shell("true"),
                    layers: &[],
                    isolation: Isolation::Namespace,
                    scratch: work.path(),
                    log: &mut |_| {},
                },
                unshare,
            )
            .unwrap_err();
            assert!(
                matches!(error, RunError::IsolationUnavailable { .. }),
                "{error}"
            );
            error.to_string()
        };

        let message = attempt(None);
        assert!(
            message.contains("`unshare` is not on the build host's PATH")
                && message.contains("`--isolation none` runs the command without it"),
            "{message}"
        );

        let refusing = work.path().join("unshare");
        fs::write(
            &refusing,
            "#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n",
        )
        .unwrap();
        fs::set_permissions(&refusing, fs::Permissions::from_mode(0o755)).unwrap();
        let message = attempt(Some(refusing));
        assert!(
            message.contains("unshare failed: Operation not permitted")
                && message.contains("`--isolation none` runs the command without it"),
            "{message}"
        );
    }

    #[test]
    fn isolation_names() {
        for isolation in [Isolation::None, Isolation::Namespace] {
            assert_eq!(isolation.to_string().parse::<Isolation>(), Ok(isolation));
        }
        assert_eq!(
            "chroot".parse::<Isolation>().unwrap_err().to_string(),
            "unknown isolation `chroot`: use `none` or `namespace`"
        );
    }

    #[test]
    fn output_is_cut_into_lines() {
        let mut input = b"first\r\nsecond\n\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 3));
        input.extend(b"\nlast without newline \xff");
        let mut lines = Vec::new();
        read_lines(input.as_slice(), &mut |line| lines.push(line)).unwrap();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[..3], ["first", "second", ""]);
        assert_eq!(lines[3].len(), MAX_LINE_BYTES);
        assert_eq!(lines[4], "xxx");
        assert_eq!(lines[5], "last without newline \u{fffd}");
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(
            unescape_mount_field(br"/a\040b\011c\134d\0"),
            b"/a b\tc\\d\\0"
        );
    }

    #[test]
    fn the_builders_files_are_recorded_as_roots() {
        let mut entries = vec![
            entry("mine", EntryKind::Dir, 0o755),
            entry("theirs", EntryKind::Dir, 0o755),
        ];
        entries[0].uid = 1000;
        entries[0].gid = 1000;
        entries[1].uid = 33;
        entries[1].gid = 1000;
        record_builder_as_root(&mut entries, 1000, 1000);
        assert_eq!((entries[0].uid, entries[0].gid), (0, 0));
        assert_eq!((entries[1].uid, entries[1].gid), (33, 0));
    }

    #[test]
    fn the_rootfs_is_removed_with_the_output() {
        let work = tempfile::tempdir().unwrap();
        let (result, _) = execute(&shell("touch made"), &[], Isolation::None, work.path());
        let output = succeeded(result);
        let rootfs = output.rootfs().to_path_buf();
        assert_eq!(fs::metadata(rootfs.join("made")).unwrap().nlink(), 1);
        drop(output);
        assert!(!rootfs.exists());
    }
}
