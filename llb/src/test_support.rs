//! What the unit tests of the op builders share.

use crate::pb;

/// `linux/amd64`.
pub fn amd64() -> pb::Platform {
    pb::Platform {
        architecture: "amd64".to_owned(),
        os: "linux".to_owned(),
        ..pb::Platform::default()
    }
}
