//! Test support shared by the crates' integration tests: real components started on loopback
//! for a test and stopped when it ends.
//!
//! - [`registry::Registry`] runs Debian's `docker-registry` (distribution 2.8) on
//!   `127.0.0.1:<free port>` over a filesystem storage directory, optionally behind htpasswd
//!   authentication, and kills it on drop.
//! - [`skopeo`] runs `/usr/bin/skopeo` against such loopback registries (TLS verification off,
//!   no signature policy) and returns its output or panics with its error.
//! - [`http`] sends a plain `GET` to a loopback server, for checks skopeo cannot make.
//! - [`corpus`] finds the shared corpus of real charts, manifests and Kubefiles, or says why a
//!   test is skipped.
//! - [`template_cases`] reads the template case tables and runs them, reporting every failure.
//! - [`images`] writes test images of seeded random data as OCI layouts (one platform or an
//!   index of several), for skopeo to push into a test registry.
//! - [`docker`] reaches the private dockerd 20.10 that `scripts/test` starts (BuildKit builds
//!   with `/usr/bin/docker`), and pushes the frontend and busybox images those builds use.

pub mod corpus;
pub mod docker;
pub mod http;
pub mod images;
pub mod netns;
pub mod pki;
pub mod registry;
pub mod skopeo;
pub mod template_cases;
