//! A BuildKit client: reaches BuildKit (the one inside Docker through its `/grpc` and
//! `/session` endpoints, or a standalone `buildkitd` over unix or TCP, optionally TLS), serves
//! the build's session (context files through FileSync, outputs through FileSend,
//! credentials through Auth and Secrets, health checks) and runs Solves with the Kubefile
//! frontend, folding the Status stream into progress.
//!
//! Protocol facts: `buildkit-notes.md` sections 5 and 7 (BuildKit v0.8 inside Docker 20.10).

pub mod addr;
pub mod control;
pub mod docker_api;
pub mod error;
pub mod filesync;
pub mod session;
pub mod status;
pub mod transport;
