//! The op graph: ops deduplicated by digest, their metadata, and the Definition.

use std::collections::{BTreeSet, HashMap, HashSet};

use prost::Message as _;
use sha2::{Digest as _, Sha256};

use crate::pb;

/// The description key BuildKit shows as a vertex's name in the progress output.
pub const CUSTOM_NAME: &str = "llb.customname";

/// One output of an op: the op's digest and the output's index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Output {
    /// `sha256:<hex>` of the op's marshalled bytes.
    pub digest: String,
    /// The output index (0 for sources and file ops; the mount's output for exec ops).
    pub index: i64,
}

impl Output {
    /// Another output of the same op.
    #[must_use]
    pub fn at(&self, index: i64) -> Output {
        Output {
            digest: self.digest.clone(),
            index,
        }
    }

    /// This output as an op input.
    pub fn input(&self) -> pb::Input {
        pb::Input {
            digest: self.digest.clone(),
            index: self.index,
        }
    }
}

/// Per-op metadata, kept beside the op (it is not part of the digest).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpMetadata {
    /// The progress label (`llb.customname`).
    pub custom_name: Option<String>,
    /// Run the op even if its cache key is known.
    pub ignore_cache: bool,
    /// The BuildKit caps the op relies on (checked by the daemon).
    pub caps: BTreeSet<String>,
}

impl OpMetadata {
    /// Metadata requiring the given caps.
    pub fn with_caps<I, S>(caps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OpMetadata {
            caps: caps.into_iter().map(Into::into).collect(),
            ..OpMetadata::default()
        }
    }

    /// Sets the progress label.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.custom_name = Some(name.into());
        self
    }

    /// Sets `ignore_cache`.
    #[must_use]
    pub fn ignoring_cache(mut self, ignore: bool) -> Self {
        self.ignore_cache = ignore;
        self
    }

    /// Combines the metadata of two adds of the same op: caps are united, `ignore_cache`
    /// holds if either asked for it, and the first name wins.
    fn merge(&mut self, other: OpMetadata) {
        self.caps.extend(other.caps);
        self.ignore_cache |= other.ignore_cache;
        if self.custom_name.is_none() {
            self.custom_name = other.custom_name;
        }
    }

    fn to_pb(&self) -> pb::OpMetadata {
        pb::OpMetadata {
            ignore_cache: self.ignore_cache,
            description: self
                .custom_name
                .iter()
                .map(|name| (CUSTOM_NAME.to_owned(), name.clone()))
                .collect(),
            caps: self.caps.iter().map(|cap| (cap.clone(), true)).collect(),
            ..pb::OpMetadata::default()
        }
    }
}

/// An op with its metadata, as the builders produce them.
#[derive(Debug, Clone, PartialEq)]
pub struct Vertex {
    /// The op, marshalled as is.
    pub op: pb::Op,
    /// Its metadata (caps, name, cache policy).
    pub metadata: OpMetadata,
}

/// `sha256:<hex>` of the given bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[derive(Debug)]
struct StoredOp {
    bytes: Vec<u8>,
    inputs: Vec<String>,
    metadata: OpMetadata,
}

/// Ops collected by digest; adding the same op twice stores it once.
#[derive(Debug, Default)]
pub struct Graph {
    ops: HashMap<String, StoredOp>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Graph::default()
    }

    /// Marshals `op` and stores it, returning its output 0. The op's inputs must have been
    /// added before (they are outputs of this graph).
    pub fn add(&mut self, op: &pb::Op, metadata: OpMetadata) -> Output {
        let bytes = op.encode_to_vec();
        let digest = digest_of(&bytes);
        if let Some(stored) = self.ops.get_mut(&digest) {
            stored.metadata.merge(metadata);
        } else {
            let inputs = op.inputs.iter().map(|input| input.digest.clone()).collect();
            self.ops.insert(
                digest.clone(),
                StoredOp {
                    bytes,
                    inputs,
                    metadata,
                },
            );
        }
        Output { digest, index: 0 }
    }

    /// Stores a builder's op with its metadata; see [`Graph::add`].
    pub fn add_vertex(&mut self, vertex: Vertex) -> Output {
        self.add(&vertex.op, vertex.metadata)
    }

    /// How many distinct ops the graph holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the graph holds no op.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The Definition solving `output`: the ops it depends on, inputs before the ops using
    /// them (as Go's marshaller orders them), then the terminal op pointing at `output`.
    pub fn definition(&self, output: &Output) -> pb::Definition {
        let mut definition = pb::Definition::default();
        let mut visited = HashSet::new();
        self.push_op(&output.digest, &mut visited, &mut definition);
        let terminal = pb::Op {
            inputs: vec![output.input()],
            ..pb::Op::default()
        };
        definition.def.push(terminal.encode_to_vec());
        definition
    }

    fn push_op(
        &self,
        digest: &str,
        visited: &mut HashSet<String>,
        definition: &mut pb::Definition,
    ) {
        if !visited.insert(digest.to_owned()) {
            return;
        }
        // An input that is not in this graph is left to the daemon, which rejects it by name.
        let Some(stored) = self.ops.get(digest) else {
            return;
        };
        for input in &stored.inputs {
            self.push_op(input, visited, definition);
        }
        definition.def.push(stored.bytes.clone());
        definition
            .metadata
            .insert(digest.to_owned(), stored.metadata.to_pb());
    }

    /// The metadata stored for an op, if the graph holds it.
    pub fn metadata(&self, digest: &str) -> Option<&OpMetadata> {
        self.ops.get(digest).map(|stored| &stored.metadata)
    }

    /// All caps required by the ops `output` depends on.
    pub fn caps(&self, output: &Output) -> BTreeSet<String> {
        self.definition(output)
            .metadata
            .into_values()
            .flat_map(|metadata| metadata.caps.into_keys())
            .collect()
    }
}
