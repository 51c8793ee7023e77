//! YAML and JSON as Kubernetes tools read and write them.
//!
//! Reading follows go-yaml v2 (what Helm, through `sigs.k8s.io/yaml`, and `kubectl` use):
//! plain scalars are typed by YAML 1.1 rules (`yes` is a bool, `0x1F` an int, timestamps stay
//! strings), anchors, aliases and merge keys are expanded, and the last of duplicate keys wins.
//! [`parse_documents`] keeps every node's line and column for provenance, [`documents`] reads a
//! stream one document at a time; [`Node::to_value`] and [`from_yaml`] give template data typed
//! as Helm sees it (every number a `float64`).
//!
//! Writing follows Go byte for byte: [`to_json`] is `encoding/json.Marshal`, [`to_yaml`] is
//! `sigs.k8s.io/yaml.Marshal` (JSON, then go-yaml v2's emitter with its quoting, literal blocks
//! and folding of long lines at 80 columns).
//!
//! Parsing is bounded for untrusted input: see [`Limits`].

mod emit;
mod error;
mod json;
mod load;
mod node;
mod plain;
mod scalar;

pub use emit::to_yaml;
pub use error::{Limits, YamlError};
pub use json::{from_json, from_json_array, to_json, to_pretty_json, to_raw_json};
pub use load::{
    Documents, documents, from_yaml, from_yaml_array, from_yaml_value, parse_documents,
    parse_documents_lenient,
};
pub use node::{Document, Node, NodeKind};
