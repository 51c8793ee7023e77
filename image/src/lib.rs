//! The OCI model shared by every part of the project: image references and digests, the local
//! image store, the registry client, deterministic layers, unpacking, and the docker-registry
//! storage layout that ClusterImages carry.

pub mod digest;
pub mod manifest;
pub mod reference;

pub use digest::Digest;
pub use reference::Reference;
