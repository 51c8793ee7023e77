//! Lowering of a Kubefile build plan (`kubefile::plan`) to LLB, step by step, so that the
//! frontend can resolve images, solve and scan between steps.
//!
//! - [`copy`]: COPY, ADD, APP, CNI and CSI as one FileOp per step, with Dockerfile `COPY`
//!   semantics, so the layers equal the embedded engine's.
//! - [`run`]: RUN as an ExecOp, either in the rootfs itself or in a separate run image with
//!   the rootfs mounted at its working directory.
//! - [`cache_images`]: the exec steps that fetch container images into registry storage
//!   layout, and the FileOp that adds one fetched image to the rootfs.

pub mod cache_images;
pub mod copy;
pub mod run;

use crate::pb;

/// `pb::Platform` of a plan platform.
pub fn platform(platform: &kubefile::plan::Platform) -> pb::Platform {
    pb::Platform {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone().unwrap_or_default(),
        ..pb::Platform::default()
    }
}

/// The plan platform of a `pb::Platform` (a worker's, as Ping reports it).
pub fn plan_platform(platform: &pb::Platform) -> kubefile::plan::Platform {
    kubefile::plan::Platform {
        os: platform.os.clone(),
        architecture: platform.architecture.clone(),
        variant: Some(platform.variant.clone()).filter(|variant| !variant.is_empty()),
    }
}

/// Absolute path in a state for a rootfs-relative plan path (`""` is the root).
fn absolute(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}

/// Nanoseconds for whole seconds since the epoch, as FileOp timestamps take them.
pub fn timestamp_nanos(seconds: u64) -> i64 {
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| seconds.checked_mul(1_000_000_000))
        .unwrap_or(i64::MAX)
}
