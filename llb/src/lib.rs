//! BuildKit LLB construction for the sealer frontend.
//!
//! Ops are built from the `bollard-buildkit-proto` types and marshalled with prost, whose
//! encoding matches Go's gogo marshaller field for field, so op digests equal those of Go's
//! `client/llb` (see `tests/digest.rs`). [`graph::Graph`] collects ops deduplicated by
//! digest and produces the `pb::Definition` sent to the gateway's Solve.

pub mod caps;
pub mod exec;
pub mod file;
pub mod graph;
pub mod lower;
pub mod source;

pub use bollard_buildkit_proto::pb;

#[cfg(test)]
mod test_support;
pub use graph::{Graph, OpMetadata, Output, Vertex};
