//! `sealer apply`: installs, scales and deletes clusters described by a Clusterfile.
//!
//! - [`clusterfile`]: the Clusterfile's documents (Cluster, Config, Plugin, Application,
//!   kubeadm), read with positions and validated.
//! - [`ssh`]: one reused SSH connection per host (russh), commands with their environment,
//!   streamed uploads, host keys checked against `known_hosts`.
//! - [`prepare`]: the image pulled, its rootfs rendered with the cluster's environment;
//!   [`platforms`]: one such rootfs per platform the hosts have.
//! - [`target`] and [`plan`]: what the cluster should be, and the steps that get it there
//!   (printed by `--dry-run`).
//! - [`distribute`], [`builtin_registry`], [`registry_tls`], [`registry_auth`],
//!   [`docker_daemon`], [`kubeadm`]: what some steps do on the hosts.
//! - [`run`] carries a plan out; [`state`] records it so that runs resume and re-runs are
//!   no-ops; [`apply`] decides which operation a command needs.

pub mod apply;
pub mod builtin_registry;
pub mod clusterfile;
pub mod distribute;
pub mod docker_daemon;
pub mod kubeadm;
pub mod plan;
pub mod platforms;
pub mod prepare;
pub mod registry_auth;
pub mod registry_tls;
pub mod run;
pub mod secret;
pub mod ssh;
pub mod state;
pub mod target;
