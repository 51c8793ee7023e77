//! `sealer apply`: installs, scales and deletes clusters described by a Clusterfile.
//!
//! - [`clusterfile`]: the Clusterfile's documents (Cluster, Config, Plugin, Application,
//!   kubeadm), read with positions and validated.
//! - [`ssh`]: one reused SSH connection per host (russh), commands with their environment,
//!   streamed uploads, host keys checked against `known_hosts`.

pub mod clusterfile;
pub mod ssh;
