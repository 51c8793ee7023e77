//! The OCI model shared by every part of the project: image references and digests, the local
//! image store, the registry client, deterministic layers, unpacking, and the docker-registry
//! storage layout that ClusterImages carry.

pub mod archive;
pub mod digest;
pub mod distribution;
pub mod layer;
pub mod manifest;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod store;

pub use digest::Digest;
pub use reference::Reference;
