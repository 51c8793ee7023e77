//! The built-in registry (`sealer registry serve`).
//!
//! At install time every node pulls its images from a registry running on the cluster. This
//! crate is that registry: it serves the distribution v2 API from a registry storage
//! directory as the build writes it (the layout a stock `docker-registry` reads), optionally
//! accepts pushes, and acts as a pull-through cache for several upstream registries at once,
//! each with its own credentials, chosen by containerd's `ns` parameter or by repository
//! prefix.

pub mod config;
pub mod server;
pub mod storage;
pub mod upstream;
