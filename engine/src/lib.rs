//! The embedded build engine: runs a Kubefile's build plan without any daemon and writes the
//! resulting ClusterImage into the local store.

pub mod base;
pub mod build;
pub mod cache;
pub mod cache_images;
pub mod dockerignore;
pub mod error;
pub mod fetch_to_dir;
pub mod metadata;
pub mod options;
pub mod progress;
pub mod redact;
pub mod rootfs;
pub mod run;
pub mod sources;
pub mod storage_view;
pub mod view;

pub use build::{BuildOutput, PlatformOutput, build};
