//! FileOp builder: a chain of copy/mkdir/mkfile/rm actions producing one state (one
//! layer), numbered as Go's `client/llb/fileop.go` numbers them.
//!
//! The first action works on the base state (input 0) or on scratch (input -1). Each
//! later action works on the previous action's result, which Go addresses as
//! `len(inputs) + index of that action`. Only the last action has output 0; the others
//! have output -1. Copy sources are extra inputs, deduplicated, in order of first use.

use crate::graph::{OpMetadata, Output, Vertex};
use crate::pb;

/// Owner of created or copied files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Numeric ids.
    Ids {
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
    },
    /// Names looked up in the modified state's `/etc/passwd` and `/etc/group`.
    Names {
        /// User name.
        user: String,
        /// Group name; `None` leaves the group to the daemon.
        group: Option<String>,
    },
}

impl Owner {
    fn to_pb(&self, base: i64) -> pb::ChownOpt {
        let by_name = |name: &str| pb::UserOpt {
            user: Some(pb::user_opt::User::ByName(pb::NamedUserOpt {
                name: name.to_owned(),
                input: base,
            })),
        };
        let by_id = |id: u32| pb::UserOpt {
            user: Some(pb::user_opt::User::ById(id)),
        };
        match self {
            Owner::Ids { uid, gid } => pb::ChownOpt {
                user: Some(by_id(*uid)),
                group: Some(by_id(*gid)),
            },
            Owner::Names { user, group } => pb::ChownOpt {
                user: Some(by_name(user)),
                group: group.as_deref().map(by_name),
            },
        }
    }
}

/// One copy: what [`FileBuilder::copy`] writes into a `FileActionCopy`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "mirrors the flags of pb::FileActionCopy"
)]
pub struct FileCopy {
    /// Absolute source path in the source state.
    pub src: String,
    /// Absolute destination path; a trailing `/` means "into this directory".
    pub dest: String,
    /// Owner of the copied files; `None` keeps the source's.
    pub owner: Option<Owner>,
    /// Permission bits; `None` keeps the source's (-1).
    pub mode: Option<i32>,
    /// Follow a symlink named by `src`.
    pub follow_symlink: bool,
    /// Copy a directory's contents rather than the directory.
    pub dir_copy_contents: bool,
    /// Unpack archives as Dockerfile `ADD` does.
    pub attempt_unpack_docker_compatibility: bool,
    /// Create missing parents of `dest`.
    pub create_dest_path: bool,
    /// Treat `src` as a wildcard pattern.
    pub allow_wildcard: bool,
    /// A wildcard matching nothing is not an error.
    pub allow_empty_wildcard: bool,
    /// Modification time in nanoseconds since the epoch; `None` keeps the source's (-1).
    pub timestamp: Option<i64>,
}

impl FileCopy {
    /// A copy of `src` to `dest` with every option off.
    pub fn new(src: impl Into<String>, dest: impl Into<String>) -> Self {
        FileCopy {
            src: src.into(),
            dest: dest.into(),
            owner: None,
            mode: None,
            follow_symlink: false,
            dir_copy_contents: false,
            attempt_unpack_docker_compatibility: false,
            create_dest_path: false,
            allow_wildcard: false,
            allow_empty_wildcard: false,
            timestamp: None,
        }
    }
}

#[derive(Debug, Clone)]
enum Action {
    Copy {
        source: Output,
        copy: FileCopy,
    },
    Mkdir {
        path: String,
        mode: i32,
        make_parents: bool,
        owner: Option<Owner>,
        timestamp: Option<i64>,
    },
    Mkfile {
        path: String,
        mode: i32,
        data: Vec<u8>,
        owner: Option<Owner>,
        timestamp: Option<i64>,
    },
    Rm {
        path: String,
        allow_not_found: bool,
        allow_wildcard: bool,
    },
}

/// Builds one FileOp on a base state (or scratch).
#[derive(Debug, Clone)]
pub struct FileBuilder {
    base: Option<Output>,
    platform: pb::Platform,
    actions: Vec<Action>,
}

impl FileBuilder {
    /// A FileOp modifying `base`, or starting from scratch when `base` is `None`.
    pub fn new(base: Option<&Output>, platform: &pb::Platform) -> Self {
        FileBuilder {
            base: base.cloned(),
            platform: platform.clone(),
            actions: Vec::new(),
        }
    }

    /// Whether no action was added yet.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Copies from `source` into the current state.
    #[must_use]
    pub fn copy(mut self, source: &Output, copy: FileCopy) -> Self {
        self.actions.push(Action::Copy {
            source: source.clone(),
            copy,
        });
        self
    }

    /// Creates a directory. `timestamp` is in nanoseconds (`None` = now).
    #[must_use]
    pub fn mkdir(
        mut self,
        path: impl Into<String>,
        mode: i32,
        make_parents: bool,
        owner: Option<Owner>,
        timestamp: Option<i64>,
    ) -> Self {
        self.actions.push(Action::Mkdir {
            path: path.into(),
            mode,
            make_parents,
            owner,
            timestamp,
        });
        self
    }

    /// Creates a file holding `data`. `timestamp` is in nanoseconds (`None` = now).
    #[must_use]
    pub fn mkfile(
        mut self,
        path: impl Into<String>,
        mode: i32,
        data: Vec<u8>,
        owner: Option<Owner>,
        timestamp: Option<i64>,
    ) -> Self {
        self.actions.push(Action::Mkfile {
            path: path.into(),
            mode,
            data,
            owner,
            timestamp,
        });
        self
    }

    /// Removes a path.
    #[must_use]
    pub fn rm(
        mut self,
        path: impl Into<String>,
        allow_not_found: bool,
        allow_wildcard: bool,
    ) -> Self {
        self.actions.push(Action::Rm {
            path: path.into(),
            allow_not_found,
            allow_wildcard,
        });
        self
    }

    /// The FileOp with its caps (`file.base`, plus `file.rm.wildcard` if used), or `None`
    /// when no action was added (an empty FileOp is invalid).
    pub fn build(self) -> Option<Vertex> {
        if self.actions.is_empty() {
            return None;
        }
        let mut inputs: Vec<Output> = Vec::new();
        let base_input = self
            .base
            .as_ref()
            .map_or(-1, |base| input_index(&mut inputs, base));
        let secondary: Vec<i64> = self
            .actions
            .iter()
            .map(|action| match action {
                Action::Copy { source, .. } => input_index(&mut inputs, source),
                _ => -1,
            })
            .collect();
        let input_count = i64::try_from(inputs.len()).unwrap_or(i64::MAX);

        let mut caps = vec!["file.base"];
        let last = self.actions.len() - 1;
        let mut actions = Vec::with_capacity(self.actions.len());
        for (position, (action, secondary_input)) in
            self.actions.into_iter().zip(secondary).enumerate()
        {
            let input = if position == 0 {
                base_input
            } else {
                input_count + i64::try_from(position - 1).unwrap_or(i64::MAX)
            };
            if matches!(
                action,
                Action::Rm {
                    allow_wildcard: true,
                    ..
                }
            ) {
                caps.push("file.rm.wildcard");
            }
            actions.push(pb::FileAction {
                input,
                secondary_input,
                output: if position == last { 0 } else { -1 },
                action: Some(action.into_pb(input)),
            });
        }
        Some(Vertex {
            op: pb::Op {
                inputs: inputs.iter().map(Output::input).collect(),
                platform: Some(self.platform),
                constraints: Some(pb::WorkerConstraints::default()),
                op: Some(pb::op::Op::File(pb::FileOp { actions })),
            },
            metadata: OpMetadata::with_caps(caps),
        })
    }
}

fn input_index(inputs: &mut Vec<Output>, output: &Output) -> i64 {
    let position = inputs
        .iter()
        .position(|known| known == output)
        .unwrap_or_else(|| {
            inputs.push(output.clone());
            inputs.len() - 1
        });
    i64::try_from(position).unwrap_or(i64::MAX)
}

impl Action {
    fn into_pb(self, base: i64) -> pb::file_action::Action {
        use pb::file_action::Action as A;
        let owner = |owner: Option<Owner>| owner.map(|owner| owner.to_pb(base));
        match self {
            Action::Copy { copy, .. } => A::Copy(pb::FileActionCopy {
                src: copy.src,
                dest: copy.dest,
                owner: owner(copy.owner),
                mode: copy.mode.unwrap_or(-1),
                follow_symlink: copy.follow_symlink,
                dir_copy_contents: copy.dir_copy_contents,
                attempt_unpack_docker_compatibility: copy.attempt_unpack_docker_compatibility,
                create_dest_path: copy.create_dest_path,
                allow_wildcard: copy.allow_wildcard,
                allow_empty_wildcard: copy.allow_empty_wildcard,
                timestamp: copy.timestamp.unwrap_or(-1),
                ..pb::FileActionCopy::default()
            }),
            Action::Mkdir {
                path,
                mode,
                make_parents,
                owner: o,
                timestamp,
            } => A::Mkdir(pb::FileActionMkDir {
                path,
                mode,
                make_parents,
                owner: owner(o),
                timestamp: timestamp.unwrap_or(-1),
            }),
            Action::Mkfile {
                path,
                mode,
                data,
                owner: o,
                timestamp,
            } => A::Mkfile(pb::FileActionMkFile {
                path,
                mode,
                data,
                owner: owner(o),
                timestamp: timestamp.unwrap_or(-1),
            }),
            Action::Rm {
                path,
                allow_not_found,
                allow_wildcard,
            } => A::Rm(pb::FileActionRm {
                path,
                allow_not_found,
                allow_wildcard,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Graph;
    use crate::source::{LocalOpts, local};
    use crate::test_support::amd64;

    fn file_op(vertex: &Vertex) -> &pb::FileOp {
        match &vertex.op.op {
            Some(pb::op::Op::File(file)) => file,
            other => panic!("expected a file op, got {other:?}"),
        }
    }

    fn indexes(vertex: &Vertex) -> Vec<(i64, i64, i64)> {
        file_op(vertex)
            .actions
            .iter()
            .map(|a| (a.input, a.secondary_input, a.output))
            .collect()
    }

    #[test]
    fn empty_builder_builds_nothing() {
        assert!(FileBuilder::new(None, &amd64()).build().is_none());
    }

    #[test]
    fn chained_actions_on_scratch_follow_go_numbering() {
        let mut graph = Graph::new();
        let context = graph.add_vertex(local("context", &LocalOpts::default()));
        let other = graph.add_vertex(local("other", &LocalOpts::default()));
        let vertex = FileBuilder::new(None, &amd64())
            .mkfile("/a", 0o644, b"x".to_vec(), None, Some(0))
            .copy(&context, FileCopy::new("/", "/ctx/"))
            .copy(&other, FileCopy::new("/b", "/b"))
            .copy(&context, FileCopy::new("/c", "/c"))
            .build()
            .expect("actions were added");
        // Inputs: context (0), other (1); action k>0 reads len(inputs) + k - 1.
        assert_eq!(vertex.op.inputs, [context.input(), other.input()]);
        assert_eq!(
            indexes(&vertex),
            [(-1, -1, -1), (2, 0, -1), (3, 1, -1), (4, 0, 0)]
        );
        assert_eq!(vertex.op.platform, Some(amd64()));
        assert_eq!(
            vertex.op.constraints,
            Some(pb::WorkerConstraints::default())
        );
        assert_eq!(
            vertex.metadata.caps.iter().collect::<Vec<_>>(),
            ["file.base"]
        );
    }

    #[test]
    fn actions_on_a_base_start_at_input_zero_and_share_it_with_copies() {
        let mut graph = Graph::new();
        let base = graph.add_vertex(local("base", &LocalOpts::default()));
        let vertex = FileBuilder::new(Some(&base), &amd64())
            .copy(&base, FileCopy::new("/x", "/y"))
            .rm("/tmp/*", true, true)
            .build()
            .expect("actions were added");
        assert_eq!(vertex.op.inputs, [base.input()]);
        assert_eq!(indexes(&vertex), [(0, 0, -1), (1, -1, 0)]);
        assert_eq!(
            vertex.metadata.caps.iter().collect::<Vec<_>>(),
            ["file.base", "file.rm.wildcard"]
        );
    }

    #[test]
    fn unset_mode_and_timestamps_are_minus_one_and_owners_by_name_point_at_the_input() {
        let mut graph = Graph::new();
        let base = graph.add_vertex(local("base", &LocalOpts::default()));
        let owner = Owner::Names {
            user: "app".to_owned(),
            group: None,
        };
        let mut copy = FileCopy::new("/s", "/d/");
        copy.owner = Some(owner.clone());
        let vertex = FileBuilder::new(Some(&base), &amd64())
            .mkdir("/d", 0o755, true, Some(Owner::Ids { uid: 1, gid: 2 }), None)
            .copy(&base, copy)
            .build()
            .expect("actions were added");
        let actions = &file_op(&vertex).actions;
        let Some(pb::file_action::Action::Mkdir(mkdir)) = &actions[0].action else {
            panic!("mkdir")
        };
        assert_eq!(mkdir.timestamp, -1);
        assert_eq!(mkdir.owner, Some(Owner::Ids { uid: 1, gid: 2 }.to_pb(0)));
        let Some(pb::file_action::Action::Copy(copied)) = &actions[1].action else {
            panic!("copy")
        };
        assert_eq!((copied.mode, copied.timestamp), (-1, -1));
        let Some(pb::user_opt::User::ByName(named)) = copied
            .owner
            .as_ref()
            .and_then(|o| o.user.as_ref())
            .and_then(|u| u.user.as_ref())
        else {
            panic!("owner by name")
        };
        assert_eq!((named.name.as_str(), named.input), ("app", 1));
        assert_eq!(copied.owner.as_ref().and_then(|o| o.group.as_ref()), None);
    }
}
