//! COPY, ADD, APP, CNI and CSI: one FileOp per step with one action per source, flagged as
//! BuildKit's Dockerfile frontend flags `COPY` (directory contents, followed symlinks,
//! created parents), so both build paths give the same layer contents.

use std::collections::BTreeMap;

use kubefile::plan::{CopyStep, Origin, Source, has_wildcard, url_file_name};

use super::absolute;
use crate::file::{FileBuilder, FileCopy, Owner};
use crate::graph::{Graph, Output};
use crate::{pb, source};

/// Mode of files written from inline (heredoc) sources without `--chmod`.
const INLINE_FILE_MODE: i32 = 0o644;
/// Mode of the parent directories made for inline sources.
const DIR_MODE: i32 = 0o755;

/// What a copy step reads from, besides the state it modifies.
pub struct CopyInputs<'a> {
    /// The `context` local source.
    pub context: &'a Output,
    /// The root filesystems of the images `COPY --from` names, keyed as the plan writes them.
    pub images: &'a BTreeMap<String, Output>,
    /// The platform of the build.
    pub platform: &'a pb::Platform,
    /// Modification time of everything copied, in nanoseconds.
    pub timestamp: i64,
    /// Run the step even when BuildKit has its result cached (`--no-cache`).
    pub ignore_cache: bool,
}

/// A copy step the inputs cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("COPY --from={0}: the image was not resolved before lowering")]
pub struct UnresolvedImage(pub String);

/// Adds the FileOp of `step` on `state` (`None` = scratch), named `name` in the progress
/// output; returns the new state (`state` itself for a step without sources).
pub fn copy_step(
    graph: &mut Graph,
    state: Option<&Output>,
    step: &CopyStep,
    inputs: &CopyInputs<'_>,
    name: &str,
) -> Result<Option<Output>, UnresolvedImage> {
    let origin = match &step.origin {
        Origin::Context => inputs.context.clone(),
        Origin::Image(reference) => inputs
            .images
            .get(reference)
            .cloned()
            .ok_or_else(|| UnresolvedImage(reference.clone()))?,
    };
    let dest_path = absolute(&step.dest);
    let dest = if step.dest_is_dir && !dest_path.ends_with('/') {
        format!("{dest_path}/")
    } else {
        dest_path.clone()
    };
    let owner = step.chown.as_deref().map(parse_owner);
    let mode = step.chmod.and_then(|mode| i32::try_from(mode).ok());
    let mut file = FileBuilder::new(state, inputs.platform);
    for source in &step.sources {
        file = match source {
            Source::Path { path } => {
                let wildcard = has_wildcard(path);
                let copy = FileCopy {
                    owner: owner.clone(),
                    mode,
                    follow_symlink: true,
                    dir_copy_contents: true,
                    attempt_unpack_docker_compatibility: step.unpack_archives,
                    create_dest_path: true,
                    allow_wildcard: wildcard,
                    // A pattern matching nothing is an error, as in the embedded engine.
                    allow_empty_wildcard: false,
                    timestamp: Some(inputs.timestamp),
                    ..FileCopy::new(absolute(path), dest.clone())
                };
                file.copy(&origin, copy)
            }
            Source::Url { url, checksum } => {
                let file_name = url_file_name(url);
                let download =
                    graph.add_vertex(source::http(url, checksum.as_deref(), Some(&file_name)));
                let copy = FileCopy {
                    owner: owner.clone(),
                    mode,
                    create_dest_path: true,
                    timestamp: Some(inputs.timestamp),
                    ..FileCopy::new(absolute(&file_name), dest.clone())
                };
                file.copy(&download, copy)
            }
            Source::Inline { name, content } => {
                let path = if step.dest_is_dir {
                    format!("{}/{name}", dest_path.trim_end_matches('/'))
                } else {
                    dest_path.clone()
                };
                let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
                if !parent.is_empty() {
                    file = file.mkdir(parent, DIR_MODE, true, None, Some(inputs.timestamp));
                }
                file.mkfile(
                    path,
                    mode.unwrap_or(INLINE_FILE_MODE),
                    content.as_bytes().to_vec(),
                    owner.clone(),
                    Some(inputs.timestamp),
                )
            }
        };
    }
    Ok(match file.build() {
        Some(mut vertex) => {
            vertex.metadata = vertex
                .metadata
                .named(name)
                .ignoring_cache(inputs.ignore_cache);
            Some(graph.add_vertex(vertex))
        }
        None => state.cloned(),
    })
}

/// `--chown=user[:group]`: numbers and `root` are ids (a lone user's id is also the group's,
/// as in Docker); anything else is looked up by name in the destination's `/etc/passwd` and
/// `/etc/group` (BuildKit reads numbers given there as ids).
pub fn parse_owner(chown: &str) -> Owner {
    let (user, group) = match chown.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (chown, None),
    };
    let id = |name: &str| match name {
        "root" => Some(0),
        number => number.parse::<u32>().ok(),
    };
    match (id(user), group.map(id)) {
        (Some(uid), None) => Owner::Ids { uid, gid: uid },
        (Some(uid), Some(Some(gid))) => Owner::Ids { uid, gid },
        _ => Owner::Names {
            user: user.to_owned(),
            group: group.map(str::to_owned),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::file_action::Action;
    use kubefile::plan::Location;

    fn step(sources: Vec<Source>, dest: &str, dest_is_dir: bool) -> CopyStep {
        CopyStep {
            location: Location { line: 2, column: 1 },
            instruction: "COPY".to_owned(),
            origin: Origin::Context,
            sources,
            dest: dest.to_owned(),
            dest_is_dir,
            chown: None,
            chmod: None,
            unpack_archives: false,
            app: None,
        }
    }

    fn path(path: &str) -> Source {
        Source::Path {
            path: path.to_owned(),
        }
    }

    fn actions(graph: &Graph, output: &Output) -> (pb::Op, Vec<pb::FileAction>) {
        let definition = graph.definition(output);
        let op = definition
            .def
            .iter()
            .map(|bytes| <pb::Op as prost::Message>::decode(bytes.as_slice()).expect("op"))
            .find(|op| matches!(op.op, Some(pb::op::Op::File(_))))
            .expect("a file op");
        let Some(pb::op::Op::File(file)) = &op.op else {
            unreachable!()
        };
        let actions = file.actions.clone();
        (op, actions)
    }

    fn lower(step: &CopyStep) -> (pb::Op, Vec<pb::FileAction>) {
        let mut graph = Graph::new();
        let context = graph.add_vertex(source::local("context", &source::LocalOpts::default()));
        let images = BTreeMap::new();
        let platform = pb::Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..pb::Platform::default()
        };
        let inputs = CopyInputs {
            context: &context,
            images: &images,
            platform: &platform,
            timestamp: 0,
            ignore_cache: false,
        };
        let out = copy_step(&mut graph, None, step, &inputs, "COPY")
            .expect("lowered")
            .expect("a new state");
        actions(&graph, &out)
    }

    #[test]
    fn sources_chain_into_one_file_op_with_dockerfile_copy_flags() {
        let (op, actions) = lower(&step(vec![path("charts"), path("a*.yaml")], "charts", true));
        assert_eq!(op.inputs.len(), 1, "the context is one input");
        assert_eq!(actions.len(), 2);
        assert_eq!((actions[0].input, actions[0].output), (-1, -1));
        assert_eq!((actions[1].input, actions[1].output), (1, 0));
        let Some(Action::Copy(first)) = &actions[0].action else {
            panic!("copy")
        };
        assert_eq!(
            (first.src.as_str(), first.dest.as_str()),
            ("/charts", "/charts/")
        );
        assert!(first.dir_copy_contents && first.follow_symlink && first.create_dest_path);
        assert!(!first.allow_wildcard);
        assert_eq!((first.mode, first.timestamp), (-1, 0));
        let Some(Action::Copy(second)) = &actions[1].action else {
            panic!("copy")
        };
        assert!(second.allow_wildcard && !second.allow_empty_wildcard);
    }

    #[test]
    fn inline_sources_become_files_in_created_directories() {
        let mut inline = step(
            vec![Source::Inline {
                name: "run.sh".into(),
                content: "echo hi\n".into(),
            }],
            "scripts",
            true,
        );
        inline.chmod = Some(0o755);
        let (_, actions) = lower(&inline);
        let Some(Action::Mkdir(dir)) = &actions[0].action else {
            panic!("mkdir first")
        };
        assert_eq!(dir.path, "/scripts");
        let Some(Action::Mkfile(file)) = &actions[1].action else {
            panic!("mkfile")
        };
        assert_eq!((file.path.as_str(), file.mode), ("/scripts/run.sh", 0o755));
        assert_eq!(file.data, b"echo hi\n");
    }

    #[test]
    fn url_sources_copy_the_named_download() {
        let (op, actions) = lower(&step(
            vec![Source::Url {
                url: "https://example.test/x/tool.tgz?y=1".into(),
                checksum: Some("sha256:ab".into()),
            }],
            "bin/tool.tgz",
            false,
        ));
        assert_eq!(op.inputs.len(), 1);
        let Some(Action::Copy(copy)) = &actions[0].action else {
            panic!("copy")
        };
        assert_eq!(
            (copy.src.as_str(), copy.dest.as_str()),
            ("/tool.tgz", "/bin/tool.tgz")
        );
    }

    #[test]
    fn copy_from_an_unresolved_image_is_an_error() {
        let mut from = step(vec![path("etc")], "etc", true);
        from.origin = Origin::Image("busybox".into());
        let mut graph = Graph::new();
        let context = graph.add_vertex(source::local("context", &source::LocalOpts::default()));
        let platform = pb::Platform::default();
        let inputs = CopyInputs {
            context: &context,
            images: &BTreeMap::new(),
            platform: &platform,
            timestamp: 0,
            ignore_cache: false,
        };
        let error = copy_step(&mut graph, None, &from, &inputs, "COPY").unwrap_err();
        assert_eq!(error, UnresolvedImage("busybox".into()));
    }

    #[test]
    fn owners_parse_as_docker_does() {
        assert_eq!(
            parse_owner("1000"),
            Owner::Ids {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(parse_owner("1:2"), Owner::Ids { uid: 1, gid: 2 });
        assert_eq!(parse_owner("root"), Owner::Ids { uid: 0, gid: 0 });
        assert_eq!(parse_owner("root:5"), Owner::Ids { uid: 0, gid: 5 });
        assert_eq!(
            parse_owner("app:staff"),
            Owner::Names {
                user: "app".into(),
                group: Some("staff".into())
            }
        );
    }
}
