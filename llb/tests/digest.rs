//! Op digests and Definitions compared with Go's LLB output.

use std::collections::BTreeMap;

use llb::graph::{CUSTOM_NAME, digest_of};
use llb::{Graph, OpMetadata, pb};
use prost::Message as _;

/// dockerfile.v0's `local://dockerfile` op as marshalled by Go (BuildKit notes §3.1).
const GO_DOCKERFILE_SOURCE_DIGEST: &str =
    "sha256:8783114a2e420ba58159d4fe03ae58b1f722a758842f65fb4cab108b3dcece57";

fn dockerfile_source_op() -> pb::Op {
    let attrs: BTreeMap<String, String> = [
        (
            "local.followpaths",
            r#"["Kubefile","Kubefile.dockerignore"]"#,
        ),
        ("local.session", "ses29158"),
        ("local.sharedkeyhint", "dockerfile"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    pb::Op {
        inputs: vec![],
        platform: None,
        constraints: Some(pb::WorkerConstraints::default()),
        op: Some(pb::op::Op::Source(pb::SourceOp {
            identifier: "local://dockerfile".to_owned(),
            attrs,
        })),
    }
}

#[test]
fn source_op_digest_equals_go() {
    let mut graph = Graph::new();
    let output = graph.add(&dockerfile_source_op(), OpMetadata::default());
    assert_eq!(output.digest, GO_DOCKERFILE_SOURCE_DIGEST);
    assert_eq!(output.index, 0);
}

#[test]
fn definition_stores_the_hashed_bytes_and_ends_with_the_terminal_op() {
    let mut graph = Graph::new();
    let output = graph.add(
        &dockerfile_source_op(),
        OpMetadata::with_caps(["source.local"]).named("load Kubefile"),
    );
    let definition = graph.definition(&output);
    assert_eq!(definition.def.len(), 2);
    assert_eq!(digest_of(&definition.def[0]), GO_DOCKERFILE_SOURCE_DIGEST);
    assert_eq!(
        &definition.def[0][definition.def[0].len() - 2..],
        &[0x5a, 0x00]
    );

    let terminal = pb::Op::decode(definition.def[1].as_slice()).expect("terminal op decodes");
    assert_eq!(
        terminal,
        pb::Op {
            inputs: vec![pb::Input {
                digest: GO_DOCKERFILE_SOURCE_DIGEST.to_owned(),
                index: 0
            }],
            ..pb::Op::default()
        }
    );

    let metadata = &definition.metadata[GO_DOCKERFILE_SOURCE_DIGEST];
    assert_eq!(metadata.description[CUSTOM_NAME], "load Kubefile");
    assert_eq!(metadata.caps.keys().collect::<Vec<_>>(), ["source.local"]);
    assert!(!metadata.ignore_cache);
    assert_eq!(definition.metadata.len(), 1);
}

fn file_op_on(input: &llb::Output) -> pb::Op {
    pb::Op {
        inputs: vec![input.input()],
        platform: Some(pb::Platform {
            architecture: "amd64".to_owned(),
            os: "linux".to_owned(),
            ..pb::Platform::default()
        }),
        constraints: Some(pb::WorkerConstraints::default()),
        op: Some(pb::op::Op::File(pb::FileOp {
            actions: vec![pb::FileAction {
                input: 0,
                secondary_input: -1,
                output: 0,
                action: Some(pb::file_action::Action::Mkdir(pb::FileActionMkDir {
                    path: "/x".to_owned(),
                    mode: 0o755,
                    make_parents: true,
                    owner: None,
                    timestamp: -1,
                })),
            }],
        })),
    }
}

#[test]
fn identical_ops_are_stored_once_with_merged_metadata() {
    let mut graph = Graph::new();
    let first = graph.add(
        &dockerfile_source_op(),
        OpMetadata::with_caps(["source.local"]),
    );
    let second = graph.add(
        &dockerfile_source_op(),
        OpMetadata::with_caps(["source.local.sessionid"]).ignoring_cache(true),
    );
    assert_eq!(first, second);
    assert_eq!(graph.len(), 1);

    // Two file ops both using the source: the source appears once, before its users.
    let left = graph.add(&file_op_on(&first), OpMetadata::default());
    let both = pb::Op {
        inputs: vec![left.input(), first.input()],
        ..file_op_on(&left)
    };
    let top = graph.add(&both, OpMetadata::default());
    assert_eq!(graph.len(), 3);

    let definition = graph.definition(&top);
    let digests: Vec<String> = definition
        .def
        .iter()
        .map(|bytes| digest_of(bytes))
        .collect();
    assert_eq!(digests.len(), 4);
    assert_eq!(
        digests[..3],
        [first.digest.clone(), left.digest, top.digest.clone()]
    );

    let metadata = graph.metadata(&first.digest).expect("source metadata");
    assert!(metadata.ignore_cache);
    assert_eq!(
        graph.caps(&top).into_iter().collect::<Vec<_>>(),
        ["source.local", "source.local.sessionid"]
    );
}

#[test]
fn definition_leaves_out_ops_the_output_does_not_use() {
    let mut graph = Graph::new();
    let source = graph.add(&dockerfile_source_op(), OpMetadata::default());
    let unused = graph.add(&file_op_on(&source), OpMetadata::default());
    let definition = graph.definition(&source);
    assert_eq!(definition.def.len(), 2);
    assert!(!definition.metadata.contains_key(&unused.digest));
}
