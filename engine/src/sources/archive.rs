//! ADD's local archives: a file is an archive when, once decompressed (gzip, bzip2 or zstd,
//! told by magic bytes, never by name), it starts with a valid tar header, as Docker and
//! BuildKit decide. Archives are unpacked with the image crate's safe unpacker into a
//! temporary directory; the owners their headers record are read in a second pass, since
//! BuildKit keeps them unless `--chown` is given.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use image::layer::{UnpackError, UnpackOptions, read_up_to, unpack_layer};

/// How an archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    Plain,
    Gzip,
    Bzip2,
    Zstd,
}

/// What a local file is, for ADD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sniffed {
    /// Not an archive: copied as a file.
    NotArchive,
    /// A tar archive, possibly compressed.
    Archive(Compression),
    /// A compression this builder cannot read (named), so whether it holds a tar is unknown.
    Unreadable(&'static str),
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

const BLOCK: usize = 512;

/// Tells whether the file at `path` is a tar archive. A file that cannot be decompressed, or
/// whose first block is not a tar header, is not an archive.
pub(super) fn sniff(path: &Path) -> io::Result<Sniffed> {
    let mut magic = [0; 6];
    let read = read_up_to(&mut File::open(path)?, &mut magic)?;
    let magic = &magic[..read];
    let compression = if magic.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if magic.starts_with(BZIP2_MAGIC) {
        Compression::Bzip2
    } else if magic.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else if magic.starts_with(XZ_MAGIC) {
        return Ok(Sniffed::Unreadable("xz"));
    } else {
        Compression::Plain
    };
    let mut first = [0; BLOCK];
    let is_tar = decompressed(path, compression)
        .and_then(|mut reader| read_up_to(&mut reader, &mut first))
        .is_ok_and(|read| read == BLOCK && is_tar_header(&first));
    Ok(if is_tar {
        Sniffed::Archive(compression)
    } else {
        Sniffed::NotArchive
    })
}

/// Unpacks the archive into `target`; returns the owners its headers record by path when
/// `with_owners` is set.
pub(super) fn unpack(
    path: &Path,
    compression: Compression,
    target: &Path,
    with_owners: bool,
) -> Result<HashMap<String, (u32, u32)>, UnpackError> {
    let reader = decompressed(path, compression).map_err(UnpackError::Read)?;
    unpack_layer(reader, target, &UnpackOptions::default())?;
    if !with_owners {
        return Ok(HashMap::new());
    }
    let reader = decompressed(path, compression).map_err(UnpackError::Read)?;
    recorded_owners(reader).map_err(UnpackError::Read)
}

fn decompressed(path: &Path, compression: Compression) -> io::Result<Box<dyn Read>> {
    let file = BufReader::with_capacity(1 << 16, File::open(path)?);
    Ok(match compression {
        Compression::Plain => Box::new(file),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
    })
}

/// The `(uid, gid)` of every entry, by its path as the unpacker writes it; a later entry for
/// the same path wins, as it does on disk.
fn recorded_owners(reader: impl Read) -> io::Result<HashMap<String, (u32, u32)>> {
    let mut owners = HashMap::new();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let Some(path) = relative_path(&entry.path_bytes()) else {
            continue;
        };
        let raw = entry.header().as_old();
        let (mut uid, mut gid) = (numeric_field(&raw.uid), numeric_field(&raw.gid));
        if let Some(extensions) = entry.pax_extensions()? {
            for extension in extensions.filter_map(Result::ok) {
                let value = extension.value().ok().and_then(|v| v.parse().ok());
                match (extension.key_bytes(), value) {
                    (b"uid", Some(value)) => uid = value,
                    (b"gid", Some(value)) => gid = value,
                    _ => {}
                }
            }
        }
        let id = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
        owners.insert(path, (id(uid), id(gid)));
    }
    Ok(owners)
}

/// An entry's path as the unpacker places it: no leading `/`, no `.`; `None` for the root,
/// for a path with `..` (which the unpacker refuses) or one that is not UTF-8.
fn relative_path(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let parts: Vec<&str> = text
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

/// Go's test for a tar header: the checksum (unsigned or signed sum, the checksum field
/// counted as spaces) matches the octal value stored, and the size field parses.
fn is_tar_header(block: &[u8; BLOCK]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return false;
    }
    let Some(stored) = parse_octal(&block[148..156]) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (index, &byte) in block.iter().enumerate() {
        let byte = if (148..156).contains(&index) {
            b' '
        } else {
            byte
        };
        unsigned += u64::from(byte);
        signed += i64::from(byte.cast_signed());
    }
    let checksum_matches =
        stored == unsigned || u64::try_from(signed).is_ok_and(|signed| stored == signed);
    let size_field = &block[124..136];
    let size_parses = size_field[0] & 0x80 != 0 || parse_octal(size_field).is_some();
    checksum_matches && size_parses
}

/// A numeric header field as Go reads it: base-256 when its high bit is set, else octal with
/// an empty field read as 0; an unreadable field counts as 0.
fn numeric_field(field: &[u8]) -> u64 {
    match field.split_first() {
        Some((&first, rest)) if first & 0x80 != 0 => {
            rest.iter().fold(u64::from(first & 0x7f), |value, &byte| {
                value.saturating_mul(256).saturating_add(u64::from(byte))
            })
        }
        _ => parse_octal(field).unwrap_or(0),
    }
}

/// An octal field, NULs and spaces trimmed on both sides; an empty field is 0.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let trimmed: &[u8] = {
        let start = field.iter().position(|&b| b != b' ' && b != 0);
        let end = field.iter().rposition(|&b| b != b' ' && b != 0);
        match (start, end) {
            (Some(start), Some(end)) => &field[start..=end],
            _ => return Some(0),
        }
    };
    u64::from_str_radix(std::str::from_utf8(trimmed).ok()?, 8).ok()
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Write;

    use super::*;

    /// A tar with a directory, a file owned by 1000:1001 and a hard link to it.
    pub(crate) fn sample_tar() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_ustar();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o750);
        dir.set_size(0);
        builder.append_data(&mut dir, "pkg/", io::empty()).unwrap();
        let mut file = tar::Header::new_ustar();
        file.set_mode(0o755);
        file.set_uid(1000);
        file.set_gid(1001);
        file.set_size(5);
        builder
            .append_data(&mut file, "pkg/tool", &b"hello"[..])
            .unwrap();
        let mut link = tar::Header::new_ustar();
        link.set_entry_type(tar::EntryType::Link);
        link.set_size(0);
        builder
            .append_link(&mut link, "pkg/tool-again", "pkg/tool")
            .unwrap();
        builder.into_inner().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn archives_are_told_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let tar = sample_tar();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&tar).unwrap();
        let gzip = gzip.finish().unwrap();
        let mut bzip = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bzip.write_all(&tar).unwrap();
        let bzip = bzip.finish().unwrap();
        let zstd = zstd::encode_all(tar.as_slice(), 1).unwrap();
        let mut gzip_text = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip_text.write_all(&[b'x'; 600]).unwrap();
        let gzip_text = gzip_text.finish().unwrap();

        for (name, bytes, expected) in [
            ("a.txt", &tar[..], Sniffed::Archive(Compression::Plain)),
            ("b.bin", &gzip[..], Sniffed::Archive(Compression::Gzip)),
            ("c", &bzip[..], Sniffed::Archive(Compression::Bzip2)),
            ("d", &zstd[..], Sniffed::Archive(Compression::Zstd)),
            ("e.tar.gz", &gzip_text[..], Sniffed::NotArchive),
            ("f.tar", &[b'x'; 2000][..], Sniffed::NotArchive),
            ("g.tar", &[0; 1024][..], Sniffed::NotArchive),
            ("h.tar", &tar[..100], Sniffed::NotArchive),
            (
                "i.tar.xz",
                &[0xfd, b'7', b'z', b'X', b'Z', 0, 1][..],
                Sniffed::Unreadable("xz"),
            ),
            ("j.tgz", &gzip[..10], Sniffed::NotArchive),
        ] {
            assert_eq!(
                sniff(&write(dir.path(), name, bytes)).unwrap(),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn unpacks_and_reads_owners() {
        let dir = tempfile::tempdir().unwrap();
        let archive = write(dir.path(), "a.tar", &sample_tar());
        let target = dir.path().join("out");
        let owners = unpack(&archive, Compression::Plain, &target, true).unwrap();
        assert_eq!(
            std::fs::read(target.join("pkg/tool-again")).unwrap(),
            b"hello"
        );
        assert_eq!(owners["pkg/tool"], (1000, 1001));
        assert_eq!(owners["pkg"], (0, 0));
        assert!(
            unpack(&archive, Compression::Plain, &dir.path().join("o2"), false)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn octal_fields() {
        assert_eq!(parse_octal(b"0000644\0"), Some(0o644));
        assert_eq!(parse_octal(b" 17 \0\0"), Some(0o17));
        assert_eq!(parse_octal(b"\0\0\0"), Some(0));
        assert_eq!(parse_octal(b"12x4"), None);
        assert_eq!(numeric_field(b"0001750\0"), 1000);
        assert_eq!(numeric_field(&[0x80, 0, 0, 0, 0, 0, 0x01, 0x00]), 256);
        assert_eq!(numeric_field(b"\0\0\0\0\0\0\0\0"), 0);
    }
}
