//! Upload sessions, where distribution keeps them: `repositories/<repo>/_uploads/<id>/` with
//! the bytes received so far in `data` and the start time in `startedat`. A session becomes a
//! blob only when its content has the digest the client names; the data file is then renamed
//! into place, so nothing partial is ever visible under `blobs/`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use image::Digest;
use image::digest::Hasher;

use super::{RepositoryName, Storage, StorageError, io_at, is_valid_upload_id};

/// Size of the reads that hash an upload.
const HASH_BUFFER: usize = 1 << 20;

/// An upload session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The repository it is for.
    pub repository: RepositoryName,
    /// Its id (a UUID).
    pub id: String,
    /// The bytes received so far.
    pub size: u64,
    /// The file holding them.
    pub data: PathBuf,
}

impl Storage {
    /// Starts an upload session for a repository.
    pub fn start_upload(&self, repository: &RepositoryName) -> Result<Upload, StorageError> {
        let id = new_upload_id();
        let dir = self.upload_dir(repository, &id);
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let started = dir.join("startedat");
        fs::write(&started, rfc3339_now()).map_err(io_at(&started))?;
        let data = dir.join("data");
        File::create(&data).map_err(io_at(&data))?;
        Ok(Upload {
            repository: repository.clone(),
            id,
            size: 0,
            data,
        })
    }

    /// An upload session in progress.
    pub fn upload(&self, repository: &RepositoryName, id: &str) -> Result<Upload, StorageError> {
        let unknown = || StorageError::UploadUnknown {
            repository: repository.clone(),
            id: id.to_owned(),
        };
        if !is_valid_upload_id(id) {
            return Err(unknown());
        }
        let data = self.upload_dir(repository, id).join("data");
        match fs::metadata(&data) {
            Ok(metadata) if metadata.is_file() => Ok(Upload {
                repository: repository.clone(),
                id: id.to_owned(),
                size: metadata.len(),
                data,
            }),
            Ok(_) => Err(unknown()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(unknown()),
            Err(e) => Err(StorageError::io(&data, e)),
        }
    }

    /// Ends an upload session, discarding what it received.
    pub fn cancel_upload(&self, repository: &RepositoryName, id: &str) -> Result<(), StorageError> {
        self.upload(repository, id)?;
        let dir = self.upload_dir(repository, id);
        fs::remove_dir_all(&dir).map_err(io_at(&dir))
    }

    /// Completes an upload: checks that its content has `digest`, moves it into place as the
    /// blob and links it into the repository; returns its size. On a mismatch the session is
    /// discarded and nothing becomes visible.
    pub fn complete_upload(
        &self,
        repository: &RepositoryName,
        id: &str,
        digest: &Digest,
    ) -> Result<u64, StorageError> {
        let upload = self.upload(repository, id)?;
        let dir = self.upload_dir(repository, id);
        let actual = hash_file(&upload.data).map_err(io_at(&upload.data))?;
        if actual != *digest {
            fs::remove_dir_all(&dir).map_err(io_at(&dir))?;
            return Err(StorageError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        let size = self
            .writer
            .adopt_blob_file(digest, &upload.data)
            .map_err(io_at(&upload.data))?;
        self.writer.link_layer(repository.as_str(), digest)?;
        fs::remove_dir_all(&dir).map_err(io_at(&dir))?;
        Ok(size)
    }

    fn upload_dir(&self, repository: &RepositoryName, id: &str) -> PathBuf {
        self.repository_dir(repository).join("_uploads").join(id)
    }
}

/// The sha256 digest of a file's content.
fn hash_file(path: &std::path::Path) -> io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = Hasher::new();
    let mut buffer = vec![0; HASH_BUFFER];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buffer[..read]);
    }
}

/// A random version-4 UUID, as distribution names uploads.
fn new_upload_id() -> String {
    let bits: u128 = rand::random();
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The current time as RFC 3339 in UTC (`2024-05-01T12:00:00Z`), as distribution writes
/// `startedat`.
fn rfc3339_now() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    rfc3339(seconds)
}

/// RFC 3339 text of a Unix time (days to civil date after Howard Hinnant's algorithm).
fn rfc3339(unix_seconds: u64) -> String {
    let days = i64::try_from(unix_seconds / 86_400).unwrap_or(0);
    let second_of_day = unix_seconds % 86_400;
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_are_valid_v4_uuids() {
        let id = new_upload_id();
        assert!(is_valid_upload_id(&id), "{id}");
        assert_eq!(&id[14..15], "4", "{id}");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(new_upload_id(), id);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_599), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn a_completed_upload_becomes_a_linked_blob() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path());
        let repository = RepositoryName::parse("team/app").unwrap();
        let upload = storage.start_upload(&repository).unwrap();
        fs::write(&upload.data, b"hello").unwrap();
        assert_eq!(storage.upload(&repository, &upload.id).unwrap().size, 5);
        let digest = Digest::of(b"hello");
        assert_eq!(
            storage
                .complete_upload(&repository, &upload.id, &digest)
                .unwrap(),
            5
        );
        let blob = storage.blob(&repository, &digest).unwrap();
        assert_eq!(fs::read(blob.path).unwrap(), b"hello");
        assert!(matches!(
            storage.upload(&repository, &upload.id),
            Err(StorageError::UploadUnknown { .. })
        ));
    }

    #[test]
    fn a_mismatching_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path());
        let repository = RepositoryName::parse("app").unwrap();
        let upload = storage.start_upload(&repository).unwrap();
        fs::write(&upload.data, b"corrupt").unwrap();
        let claimed = Digest::of(b"hello");
        let error = storage
            .complete_upload(&repository, &upload.id, &claimed)
            .unwrap_err();
        assert!(
            matches!(&error, StorageError::DigestMismatch { expected, .. } if *expected == claimed),
            "{error}"
        );
        assert!(!storage.blob_data(&claimed).exists());
        assert!(!storage.blob_data(&Digest::of(b"corrupt")).exists());
        assert!(matches!(
            storage.upload(&repository, &upload.id),
            Err(StorageError::UploadUnknown { .. })
        ));
        assert!(storage.blob(&repository, &claimed).is_err());
    }
}
