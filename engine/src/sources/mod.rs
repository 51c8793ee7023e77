//! The files of one copy step (COPY, ADD, APP, CNI, CSI) as layer entries, with Docker's
//! COPY/ADD semantics:
//!
//! - a directory source copies its contents into the destination; a file goes to
//!   `dest/<name>` when the destination is a directory (it ends with `/`, or there are
//!   several sources or a wildcard), else to `dest` itself;
//! - wildcards match what the build can see, one path segment at a time; files excluded by
//!   `.dockerignore` are invisible, exactly as if absent;
//! - symlinks inside copied directories stay symlinks; symlinks naming a source or on the way
//!   to it are followed inside the root only (nothing outside the root is ever read);
//! - hard links inside the sources stay hard links; modes are kept, `--chmod` replaces them;
//!   owners are 0:0 unless `--chown` (or, for archives ADD unpacks, the owners the archive
//!   records);
//! - ADD unpacks local tar archives (plain, gzip, bzip2, zstd; told by content) and
//!   downloads URLs (never unpacked, mode 0o600, `--checksum` verified);
//! - every parent directory of what is copied is an entry: 0o755, owned by the `--chown`
//!   owner when there is one (BuildKit creates the destination's missing parents with that
//!   owner), else by root. When a directory's contents are copied, the destination directory
//!   takes the source directory's mode; when several sources write one directory, the first
//!   one's metadata stays, as BuildKit leaves an existing directory's metadata alone.

mod archive;
mod owner;
mod select;
mod url;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use image::Digest;
use image::layer::{EntryKind, FileSource, LayerEntry, UnpackError};
use kubefile::context::{basename, join};
use kubefile::plan::{CopyStep, Location, Origin, Source};
use tempfile::TempDir;

use crate::dockerignore::DockerIgnore;
use archive::Sniffed;
use select::{Found, Resolved, SelectError, Tree};
use url::{DownloadError, Downloaded};

/// Where a copy step reads its sources.
#[derive(Debug, Clone, Copy)]
pub enum SourceRoot<'a> {
    /// The build context, with its ignore file.
    Context {
        /// The context directory.
        dir: &'a Path,
        /// Its `.dockerignore` patterns.
        ignore: &'a DockerIgnore,
    },
    /// The materialized root file system of another image (`COPY --from`).
    Image {
        /// The root directory.
        dir: &'a Path,
    },
}

/// The entries of one copy step.
#[derive(Debug)]
pub struct CopiedFiles {
    /// The layer entries, sorted by path; files point at paths on disk.
    pub entries: Vec<LayerEntry>,
    /// Downloads and unpacked archives the entries point into; removed when dropped.
    _temporary: Vec<TempDir>,
}

/// The instruction a copy step comes from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSite {
    /// `COPY`, `ADD`, `APP`, `CNI` or `CSI`.
    pub instruction: String,
    /// Where it starts in the Kubefile.
    pub location: Location,
}

impl fmt::Display for StepSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}:{}",
            self.instruction, self.location.line, self.location.column
        )
    }
}

/// Why a copy step's files cannot be gathered.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source path names nothing the build can see.
    #[error("{site}: `{path}` does not exist in {place}{}; sources are paths relative to {place}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NotFound {
        /// The instruction.
        site: StepSite,
        /// The source as the plan gives it.
        path: String,
        /// The root it was looked for in.
        place: String,
        /// Why, when it is not plain absence (excluded, a symlink leading elsewhere).
        detail: Option<String>,
    },
    /// A wildcard source matches nothing.
    #[error(
        "{site}: no source files were specified: `{pattern}` matches nothing in {place}; check the pattern and .dockerignore"
    )]
    NoMatch {
        /// The instruction.
        site: StepSite,
        /// The pattern.
        pattern: String,
        /// The root it was matched in.
        place: String,
    },
    /// A source leads out of the build context through a symlink.
    #[error(
        "{site}: `{path}` leads out of the build context: the symlink `{link}` points to `{target}`; nothing outside the context can be copied, so copy the files into the context instead"
    )]
    Escapes {
        /// The instruction.
        site: StepSite,
        /// The source as the plan gives it.
        path: String,
        /// The symlink, relative to the context.
        link: String,
        /// Its target.
        target: String,
    },
    /// A source goes through too many symlinks.
    #[error("{site}: resolving `{path}` follows more than 255 symlinks; there is a symlink loop")]
    LinkLoop {
        /// The instruction.
        site: StepSite,
        /// The source.
        path: String,
    },
    /// `--chown` cannot be resolved.
    #[error("{site}: --chown={chown}: {reason}")]
    Owner {
        /// The instruction.
        site: StepSite,
        /// The value given.
        chown: String,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// A file of the sources cannot be read.
    #[error("{site}: cannot read {}: {source}", path.display())]
    Read {
        /// The instruction.
        site: StepSite,
        /// The file on disk.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A source holds something a layer cannot hold.
    #[error(
        "{site}: `{path}` is {what}, which cannot be copied into an image; exclude it in .dockerignore or remove it"
    )]
    Unsupported {
        /// The instruction.
        site: StepSite,
        /// The path, relative to its root.
        path: String,
        /// What it is.
        what: &'static str,
    },
    /// Two sources put a directory and something else at one path.
    #[error(
        "{site}: the sources put both a directory and a file at `{path}` in the image; copy them to different destinations"
    )]
    Conflict {
        /// The instruction.
        site: StepSite,
        /// The destination path.
        path: String,
    },
    /// An archive ADD unpacks is broken or unsafe.
    #[error("{site}: cannot unpack the archive `{path}`: {source}")]
    Archive {
        /// The instruction.
        site: StepSite,
        /// The archive, relative to its root.
        path: String,
        /// What failed.
        source: UnpackError,
    },
    /// An archive is compressed in a format this builder cannot read.
    #[error(
        "{site}: `{path}` is {format}-compressed, which this builder cannot unpack; decompress it (`{format} -d`) before ADD, or COPY it to keep it as it is"
    )]
    Compression {
        /// The instruction.
        site: StepSite,
        /// The archive, relative to its root.
        path: String,
        /// The compression.
        format: &'static str,
    },
    /// `--checksum` is not a sha256 digest.
    #[error("{site}: --checksum for {url}: {reason}; write --checksum=sha256:<64 hex digits>")]
    ChecksumSyntax {
        /// The instruction.
        site: StepSite,
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A download failed before an answer.
    #[error("{site}: cannot download {url}: {reason}; check the URL and the network")]
    Download {
        /// The instruction.
        site: StepSite,
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server refused a download.
    #[error("{site}: downloading {url} failed: the server answered {status}")]
    HttpStatus {
        /// The instruction.
        site: StepSite,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: String,
    },
    /// A download does not have the digest `--checksum` gives.
    #[error(
        "{site}: {url} has digest {actual}, but --checksum expects {expected}; the file changed on the server, or the checksum is wrong"
    )]
    ChecksumMismatch {
        /// The instruction.
        site: StepSite,
        /// The URL.
        url: String,
        /// `--checksum`.
        expected: Digest,
        /// What was downloaded.
        actual: Digest,
    },
    /// A temporary file or directory cannot be made.
    #[error("{site}: cannot write under {}: {source}", path.display())]
    Scratch {
        /// The instruction.
        site: StepSite,
        /// Where.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The copy task stopped before it finished.
    #[error("{site}: the copy stopped unexpectedly: {reason}")]
    Interrupted {
        /// The instruction.
        site: StepSite,
        /// Why.
        reason: String,
    },
}

/// The entries for the files `step` copies from `root`. Downloads and unpacked archives go
/// into temporary directories under `scratch`, which live as long as the result.
pub async fn copy_entries(
    step: &CopyStep,
    root: SourceRoot<'_>,
    scratch: &Path,
) -> Result<CopiedFiles, CopyError> {
    let site = StepSite {
        instruction: step.instruction.clone(),
        location: step.location,
    };
    let prepared = futures::future::try_join_all(step.sources.iter().map(|source| async {
        Ok(match source {
            Source::Path { path } => Prepared::Path(path.clone()),
            Source::Url { url, checksum } => Prepared::Downloaded(
                url::download(url, checksum.as_deref(), scratch)
                    .await
                    .map_err(|e| download_error(&site, url, e))?,
            ),
            Source::Inline { name, content } => Prepared::Inline {
                name: name.clone(),
                content: content.clone().into_bytes(),
            },
        })
    }))
    .await?;

    let (tree, place) = match root {
        SourceRoot::Context { dir, ignore } => (
            Tree {
                dir: dir.to_path_buf(),
                ignore: (!ignore.is_empty()).then(|| ignore.clone()),
                confined: true,
            },
            "the build context".to_owned(),
        ),
        SourceRoot::Image { dir } => (
            Tree {
                dir: dir.to_path_buf(),
                ignore: None,
                confined: false,
            },
            match &step.origin {
                Origin::Image(name) => format!("the root file system of `{name}`"),
                Origin::Context => "the image root file system".to_owned(),
            },
        ),
    };
    let copier = Copier {
        step: step.clone(),
        site: site.clone(),
        tree,
        place,
        scratch: scratch.to_path_buf(),
    };
    tokio::task::spawn_blocking(move || copier.run(prepared))
        .await
        .map_err(|e| CopyError::Interrupted {
            site,
            reason: e.to_string(),
        })?
}

fn download_error(site: &StepSite, url: &str, error: DownloadError) -> CopyError {
    let site = site.clone();
    let url = crate::redact::redact_urls(url);
    match error {
        DownloadError::BadChecksum(reason) => CopyError::ChecksumSyntax { site, url, reason },
        DownloadError::Request(reason) => CopyError::Download {
            site,
            url,
            reason: crate::redact::redact_urls(&reason),
        },
        DownloadError::Status(status) => CopyError::HttpStatus { site, url, status },
        DownloadError::Mismatch { expected, actual } => CopyError::ChecksumMismatch {
            site,
            url,
            expected,
            actual,
        },
        DownloadError::Write(path, source) => CopyError::Scratch { site, path, source },
    }
}

/// A source once its download, if any, is done.
enum Prepared {
    Path(String),
    Downloaded(Downloaded),
    Inline { name: String, content: Vec<u8> },
}

/// The file system part of a copy, run off the async executor.
struct Copier {
    step: CopyStep,
    site: StepSite,
    tree: Tree,
    place: String,
    scratch: PathBuf,
}

impl Copier {
    fn run(self, prepared: Vec<Prepared>) -> Result<CopiedFiles, CopyError> {
        let owner = match &self.step.chown {
            Some(chown) => Some(
                owner::resolve(chown, (!self.tree.confined).then_some(&self.tree)).map_err(
                    |reason| CopyError::Owner {
                        site: self.site.clone(),
                        chown: chown.clone(),
                        reason,
                    },
                )?,
            ),
            None => None,
        };
        let mut layer = Placement {
            entries: BTreeMap::new(),
            owner: owner.unwrap_or((0, 0)),
            chmod: self.step.chmod,
        };
        let mut temporary = Vec::new();
        let into_dir = self.step.dest_is_dir || self.step.sources.len() > 1;
        let dest = self.step.dest.as_str();
        for source in prepared {
            match source {
                Prepared::Path(path) => {
                    self.copy_path(&path, into_dir, &mut layer, &mut temporary)?;
                }
                Prepared::Downloaded(downloaded) => {
                    let target = file_target(dest, into_dir, &downloaded.file_name);
                    let kind = EntryKind::File(FileSource::Path(downloaded.path.clone()));
                    layer
                        .put(&target, kind, 0o600, None, None, true)
                        .map_err(|path| self.conflict(path))?;
                    temporary.push(downloaded.dir);
                }
                Prepared::Inline { name, content } => {
                    let target = file_target(dest, into_dir, &name);
                    let kind = EntryKind::File(FileSource::Bytes(content));
                    layer
                        .put(&target, kind, 0o644, None, None, true)
                        .map_err(|path| self.conflict(path))?;
                }
            }
        }
        Ok(CopiedFiles {
            entries: layer.finish(),
            _temporary: temporary,
        })
    }

    fn copy_path(
        &self,
        path: &str,
        into_dir: bool,
        layer: &mut Placement,
        temporary: &mut Vec<TempDir>,
    ) -> Result<(), CopyError> {
        if !kubefile::plan::has_wildcard(path) {
            let resolved = select::resolve(&self.tree, path).map_err(|e| self.select(path, e))?;
            if self.copy_resolved(path, &resolved, into_dir, layer, temporary)? {
                return Ok(());
            }
            let detail = format!("`{}` is excluded by .dockerignore", resolved.real);
            return Err(self.select(
                path,
                SelectError::NotFound {
                    detail: Some(detail),
                },
            ));
        }
        let mut copied = 0;
        for candidate in select::expand(&self.tree, path).map_err(|e| self.select(path, e))? {
            let resolved = match select::resolve(&self.tree, &candidate) {
                Ok(resolved) => resolved,
                Err(SelectError::NotFound { .. }) => continue,
                Err(e) => return Err(self.select(&candidate, e)),
            };
            if self.copy_resolved(&candidate, &resolved, true, layer, temporary)? {
                copied += 1;
            }
        }
        if copied == 0 {
            return Err(CopyError::NoMatch {
                site: self.site.clone(),
                pattern: path.to_owned(),
                place: self.place.clone(),
            });
        }
        Ok(())
    }

    /// Copies one resolved source; `false` when it is an excluded directory with nothing
    /// re-included in it (absent for the build).
    fn copy_resolved(
        &self,
        logical: &str,
        resolved: &Resolved,
        into_dir: bool,
        layer: &mut Placement,
        temporary: &mut Vec<TempDir>,
    ) -> Result<bool, CopyError> {
        let dest = self.step.dest.as_str();
        if resolved.metadata.is_dir() {
            let found =
                select::walk(&self.tree, &resolved.real).map_err(|e| self.select(logical, e))?;
            if resolved.excluded && found.is_empty() {
                return Ok(false);
            }
            if !dest.is_empty() {
                let mode = resolved.metadata.mode() & 0o7777;
                layer
                    .put(dest, EntryKind::Dir, mode, None, None, true)
                    .map_err(|path| self.conflict(path))?;
            }
            self.place_found(dest, found, None, layer)?;
            return Ok(true);
        }
        let full = self.tree.dir.join(&resolved.real);
        if self.step.unpack_archives && resolved.metadata.is_file() {
            let sniffed = archive::sniff(&full).map_err(|source| CopyError::Read {
                site: self.site.clone(),
                path: full.clone(),
                source,
            })?;
            match sniffed {
                Sniffed::Archive(compression) => {
                    let unpacked = tempfile::Builder::new()
                        .prefix("unpacked-")
                        .tempdir_in(&self.scratch)
                        .map_err(|source| CopyError::Scratch {
                            site: self.site.clone(),
                            path: self.scratch.clone(),
                            source,
                        })?;
                    let with_owners = self.step.chown.is_none();
                    let owners = archive::unpack(&full, compression, unpacked.path(), with_owners)
                        .map_err(|source| CopyError::Archive {
                            site: self.site.clone(),
                            path: logical.to_owned(),
                            source,
                        })?;
                    layer.ensure_dir(dest).map_err(|path| self.conflict(path))?;
                    let found =
                        select::walk_plain(unpacked.path()).map_err(|e| self.select(logical, e))?;
                    self.place_found(dest, found, Some(&owners), layer)?;
                    temporary.push(unpacked);
                    return Ok(true);
                }
                Sniffed::Unreadable(format) => {
                    return Err(CopyError::Compression {
                        site: self.site.clone(),
                        path: logical.to_owned(),
                        format,
                    });
                }
                Sniffed::NotArchive => {}
            }
        }
        let target = file_target(dest, into_dir, basename(logical));
        let found = select::entry(target.clone(), &resolved.real, full, &resolved.metadata)
            .map_err(|e| self.select(logical, e))?;
        layer
            .put(&target, found.kind, found.mode, None, found.inode, true)
            .map_err(|path| self.conflict(path))?;
        Ok(true)
    }

    /// Places walked entries under `dest`. Entries of an unpacked archive (`archive` gives
    /// the owners it records, empty under `--chown`) keep their modes: `--chmod` does not
    /// apply to them, as in BuildKit.
    fn place_found(
        &self,
        dest: &str,
        found: Vec<Found>,
        archive: Option<&HashMap<String, (u32, u32)>>,
        layer: &mut Placement,
    ) -> Result<(), CopyError> {
        for found in found {
            let owner = archive
                .filter(|owners| !owners.is_empty())
                .map(|owners| owners.get(&found.path).copied().unwrap_or((0, 0)));
            layer
                .put(
                    &join(dest, &found.path),
                    found.kind,
                    found.mode,
                    owner,
                    found.inode,
                    archive.is_none(),
                )
                .map_err(|path| self.conflict(path))?;
        }
        Ok(())
    }

    fn conflict(&self, path: String) -> CopyError {
        CopyError::Conflict {
            site: self.site.clone(),
            path,
        }
    }

    fn select(&self, path: &str, error: SelectError) -> CopyError {
        let site = self.site.clone();
        let path = path.to_owned();
        match error {
            SelectError::NotFound { detail } => CopyError::NotFound {
                site,
                path,
                place: self.place.clone(),
                detail,
            },
            SelectError::Escapes { link, target } => CopyError::Escapes {
                site,
                path,
                link,
                target,
            },
            SelectError::TooManyLinks => CopyError::LinkLoop { site, path },
            SelectError::Io { path, source } => CopyError::Read { site, path, source },
            SelectError::Unsupported { path, what } => CopyError::Unsupported { site, path, what },
        }
    }
}

/// Where a file source goes: inside `dest` when it is a directory, else `dest` itself.
fn file_target(dest: &str, into_dir: bool, name: &str) -> String {
    if into_dir || dest.is_empty() {
        join(dest, name)
    } else {
        dest.to_owned()
    }
}

/// The entries of a step being assembled, by destination path.
struct Placement {
    entries: BTreeMap<String, Placed>,
    owner: (u32, u32),
    chmod: Option<u32>,
}

struct Placed {
    entry: LayerEntry,
    inode: Option<(u64, u64)>,
}

impl Placement {
    /// Makes `path` and its parents directories of the layer where they are not yet there;
    /// `Err` names a path that is already something else.
    fn ensure_dir(&mut self, path: &str) -> Result<(), String> {
        let mut end = 0;
        while end < path.len() {
            end = path[end..].find('/').map_or(path.len(), |at| end + at);
            let prefix = &path[..end];
            match self.entries.get(prefix) {
                Some(placed) if placed.entry.kind != EntryKind::Dir => {
                    return Err(prefix.to_owned());
                }
                Some(_) => {}
                None => {
                    let entry = LayerEntry {
                        path: prefix.to_owned(),
                        kind: EntryKind::Dir,
                        mode: 0o755,
                        uid: self.owner.0,
                        gid: self.owner.1,
                    };
                    self.entries
                        .insert(prefix.to_owned(), Placed { entry, inode: None });
                }
            }
            end += 1;
        }
        Ok(())
    }

    /// Adds an entry (and its missing parents), owned by `owner` or the step's owner, with
    /// `--chmod` replacing `mode` when `chmod_applies`. A directory already there keeps its
    /// metadata; a file already there is replaced; a directory and a non-directory at one
    /// path are a conflict (`Err` names the path).
    fn put(
        &mut self,
        path: &str,
        kind: EntryKind,
        mode: u32,
        owner: Option<(u32, u32)>,
        inode: Option<(u64, u64)>,
        chmod_applies: bool,
    ) -> Result<(), String> {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.ensure_dir(parent)?;
        }
        let is_dir = kind == EntryKind::Dir;
        if let Some(existing) = self.entries.get(path) {
            match (existing.entry.kind == EntryKind::Dir, is_dir) {
                (true, true) => return Ok(()),
                (false, false) => {}
                _ => return Err(path.to_owned()),
            }
        }
        let mode = match kind {
            EntryKind::Symlink(_) => 0o777,
            _ if chmod_applies => self.chmod.unwrap_or(mode),
            _ => mode,
        };
        let (uid, gid) = owner.unwrap_or(self.owner);
        let entry = LayerEntry {
            path: path.to_owned(),
            kind,
            mode,
            uid,
            gid,
        };
        self.entries
            .insert(path.to_owned(), Placed { entry, inode });
        Ok(())
    }

    /// The entries in path order, a file sharing its inode with an earlier one becoming a
    /// hard link to it, with its owner (one inode has one owner).
    fn finish(self) -> Vec<LayerEntry> {
        image::layer::link_shared_inodes(
            self.entries
                .into_values()
                .map(|Placed { entry, inode }| (entry, inode))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests;
