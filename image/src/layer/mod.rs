//! Image layers: writing reproducible layer tarballs from a list of entries, and applying
//! layers (plain, gzip or zstd, with OCI/Docker whiteouts) onto a directory without ever
//! touching anything outside it.

mod unpack;
mod writer;

pub use unpack::{Refusal, UnpackError, UnpackOptions, UnpackStats, read_up_to, unpack_layer};
pub use writer::{
    EntryKind, FileSource, LayerEntry, LayerOptions, WrittenLayer, content_size, entries_from_dir,
    link_shared_inodes, source_date_epoch, write_layer, write_layer_reporting,
};

use crate::manifest::{DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD};

/// Name prefix of an OCI whiteout: `.wh.<name>` deletes `<name>` of the lower layers.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI whiteout that marks its directory opaque: what lower layers put there is removed.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// How a layer tarball is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip, the format every registry and runtime understands.
    Gzip,
    /// zstd: smaller and faster, understood by recent runtimes.
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => OCI_LAYER_TAR,
            Compression::Gzip => OCI_LAYER_GZIP,
            Compression::Zstd => OCI_LAYER_ZSTD,
        }
    }

    /// The compression a layer media type declares, OCI or Docker; `None` for a type that is
    /// not a layer this project can read.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            OCI_LAYER_TAR => Some(Compression::None),
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(Compression::Gzip),
            OCI_LAYER_ZSTD => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The compression of a stream, from its first bytes (at least four for zstd); anything
    /// without a gzip or zstd magic number is taken as a plain tar.
    pub fn from_magic(first_bytes: &[u8]) -> Self {
        if first_bytes.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if first_bytes.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_round_trip() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(
                Compression::from_media_type(compression.media_type()),
                Some(compression)
            );
        }
        assert_eq!(
            Compression::from_media_type(DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type(crate::manifest::OCI_CONFIG),
            None
        );
    }

    #[test]
    fn magic_numbers() {
        assert_eq!(
            Compression::from_magic(&[0x1f, 0x8b, 8, 0]),
            Compression::Gzip
        );
        assert_eq!(Compression::from_magic(&ZSTD_MAGIC), Compression::Zstd);
        assert_eq!(Compression::from_magic(b"etc/"), Compression::None);
        assert_eq!(Compression::from_magic(&[]), Compression::None);
    }
}
