//! Go's `os.FileMode` bits, which fsutil puts in `Stat.mode` instead of `st_mode`, and the
//! device number split Go's fsutil uses.

/// `os.ModeDir`.
pub const MODE_DIR: u32 = 1 << 31;
/// `os.ModeSymlink`.
pub const MODE_SYMLINK: u32 = 1 << 27;
/// `os.ModeDevice` (block devices, and character devices with [`MODE_CHAR_DEVICE`]).
pub const MODE_DEVICE: u32 = 1 << 26;
/// `os.ModeNamedPipe`.
pub const MODE_NAMED_PIPE: u32 = 1 << 25;
/// `os.ModeSocket`.
pub const MODE_SOCKET: u32 = 1 << 24;
/// `os.ModeSetuid`.
pub const MODE_SETUID: u32 = 1 << 23;
/// `os.ModeSetgid`.
pub const MODE_SETGID: u32 = 1 << 22;
/// `os.ModeCharDevice`.
pub const MODE_CHAR_DEVICE: u32 = 1 << 21;
/// `os.ModeSticky`.
pub const MODE_STICKY: u32 = 1 << 20;
/// `os.ModeIrregular`.
pub const MODE_IRREGULAR: u32 = 1 << 19;
/// `os.ModeType`: the bits that make an entry something else than a regular file.
pub const MODE_TYPE: u32 = MODE_DIR
    | MODE_SYMLINK
    | MODE_NAMED_PIPE
    | MODE_SOCKET
    | MODE_DEVICE
    | MODE_CHAR_DEVICE
    | MODE_IRREGULAR;
/// `os.ModePerm`.
pub const MODE_PERM: u32 = 0o777;

const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// The Go `FileMode` of a Linux `st_mode`, as Go's `os.Lstat` builds it; `None` for a socket
/// (fsutil would send it as a bogus empty regular file; we leave it out, as the engine refuses
/// it in a layer) and for an unknown file type.
pub fn from_unix(st_mode: u32) -> Option<u32> {
    let kind = match st_mode & S_IFMT {
        S_IFREG => 0,
        S_IFDIR => MODE_DIR,
        S_IFLNK => MODE_SYMLINK,
        S_IFBLK => MODE_DEVICE,
        S_IFCHR => MODE_DEVICE | MODE_CHAR_DEVICE,
        S_IFIFO => MODE_NAMED_PIPE,
        // S_IFSOCK, or a type Linux does not have.
        _ => return None,
    };
    let mut mode = kind | (st_mode & MODE_PERM);
    if st_mode & S_ISUID != 0 {
        mode |= MODE_SETUID;
    }
    if st_mode & S_ISGID != 0 {
        mode |= MODE_SETGID;
    }
    if st_mode & S_ISVTX != 0 {
        mode |= MODE_STICKY;
    }
    Some(mode)
}

/// The permission bits of a Go `FileMode` as a Unix mode (`0o7777` range), which is what Go's
/// `os.Chmod` applies: permissions plus setuid, setgid and sticky.
pub fn unix_permissions(go_mode: u32) -> u32 {
    let mut mode = go_mode & MODE_PERM;
    if go_mode & MODE_SETUID != 0 {
        mode |= S_ISUID;
    }
    if go_mode & MODE_SETGID != 0 {
        mode |= S_ISGID;
    }
    if go_mode & MODE_STICKY != 0 {
        mode |= S_ISVTX;
    }
    mode
}

/// What a Go `FileMode` describes, as a receiver creates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A regular file (or a hardlink to one, when the stat has a link name).
    File,
    /// A socket or an irregular file: nothing a receiver can create.
    Other,
}

/// The kind of entry a Go `FileMode` describes.
pub fn kind(go_mode: u32) -> Kind {
    if go_mode & MODE_DIR != 0 {
        Kind::Dir
    } else if go_mode & MODE_SYMLINK != 0 {
        Kind::Symlink
    } else if go_mode & MODE_NAMED_PIPE != 0 {
        Kind::Fifo
    } else if go_mode & MODE_DEVICE != 0 {
        if go_mode & MODE_CHAR_DEVICE != 0 {
            Kind::CharDevice
        } else {
            Kind::BlockDevice
        }
    } else if go_mode & (MODE_SOCKET | MODE_IRREGULAR | MODE_CHAR_DEVICE) != 0 {
        Kind::Other
    } else {
        Kind::File
    }
}

/// fsutil's `fileCanRequestData`: only entries without any type bit carry content, so only
/// they get a file id a receiver may request.
pub fn can_request_data(go_mode: u32) -> bool {
    go_mode & MODE_TYPE == 0
}

/// Whether fsutil fills `devmajor`/`devminor` for this `st_mode`: its test is
/// `mode & S_IFBLK != 0 || mode & S_IFCHR != 0` on a non-directory, which also holds for
/// symlinks and sockets (whose `rdev` is 0).
pub fn records_device(st_mode: u32) -> bool {
    st_mode & S_IFMT != S_IFDIR && (st_mode & S_IFBLK != 0 || st_mode & S_IFCHR != 0)
}

/// The major number of a device as fsutil computes it (the old 8+12-bit split).
pub fn major(rdev: u64) -> i64 {
    i64::try_from((rdev >> 8) & 0xfff).unwrap_or_default()
}

/// The minor number of a device as fsutil computes it.
pub fn minor(rdev: u64) -> i64 {
    i64::try_from((rdev & 0xff) | ((rdev >> 12) & 0xfff00)).unwrap_or_default()
}

/// fsutil's `mkdev`: a device number from the major and minor a sender recorded.
pub fn make_dev(major: i64, minor: i64) -> u64 {
    let (major, minor) = (major.cast_unsigned(), minor.cast_unsigned());
    ((minor & 0xfff00) << 12) | ((major & 0xfff) << 8) | (minor & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_modes_become_go_modes() {
        for (st_mode, expected) in [
            (0o100_644, Some(0o644)),
            (0o100_755 | S_ISUID, Some(0o755 | MODE_SETUID)),
            (0o102_750, Some(0o750 | MODE_SETGID)),
            (0o040_755, Some(MODE_DIR | 0o755)),
            (0o041_777, Some(MODE_DIR | MODE_STICKY | 0o777)),
            (0o120_777, Some(MODE_SYMLINK | 0o777)),
            (0o060_660, Some(MODE_DEVICE | 0o660)),
            (0o020_666, Some(MODE_DEVICE | MODE_CHAR_DEVICE | 0o666)),
            (0o010_644, Some(MODE_NAMED_PIPE | 0o644)),
            (0o140_755, None),
        ] {
            assert_eq!(from_unix(st_mode), expected, "{st_mode:o}");
        }
        assert_eq!(MODE_DIR | 0o755, 2_147_484_141);
        assert_eq!(MODE_SYMLINK | 0o777, 134_218_239);
    }

    #[test]
    fn kinds_and_requests_follow_the_type_bits() {
        let cases = [
            (0o100_644, Kind::File, true),
            (0o104_755, Kind::File, true),
            (0o040_755, Kind::Dir, false),
            (0o120_777, Kind::Symlink, false),
            (0o010_600, Kind::Fifo, false),
            (0o020_600, Kind::CharDevice, false),
            (0o060_600, Kind::BlockDevice, false),
        ];
        for (st_mode, expected_kind, requestable) in cases {
            let go_mode = from_unix(st_mode).unwrap();
            assert_eq!(kind(go_mode), expected_kind, "{st_mode:o}");
            assert_eq!(can_request_data(go_mode), requestable, "{st_mode:o}");
        }
        assert_eq!(kind(MODE_SOCKET | 0o644), Kind::Other);
        assert!(!can_request_data(MODE_IRREGULAR));
    }

    #[test]
    fn permissions_round_trip() {
        for st_mode in [0o100_644, 0o104_755, 0o102_700, 0o041_777, 0o100_000] {
            let go_mode = from_unix(st_mode).unwrap();
            assert_eq!(unix_permissions(go_mode), st_mode & 0o7777, "{st_mode:o}");
        }
    }

    #[test]
    fn devices_split_like_fsutil() {
        // /dev/sda1 = 8:1, /dev/null = 1:3, a large minor uses the high bits.
        let rdev = (8 << 8) | 1;
        assert_eq!((major(rdev), minor(rdev)), (8, 1));
        assert_eq!(make_dev(8, 1), rdev);
        let large = make_dev(259, 0x12345);
        assert_eq!((major(large), minor(large)), (259, 0x12345));
        assert!(records_device(0o020_666));
        assert!(records_device(0o060_660));
        assert!(records_device(0o120_777));
        assert!(!records_device(0o100_644));
        assert!(!records_device(0o010_644));
        assert!(!records_device(0o040_755));
    }
}
