//! Executing templates with Go's semantics: pipelines, variables and their scopes,
//! `if`/`with`/`range`/`template`, the builtin functions, missing keys and nil handling,
//! and errors located and worded as Go's are.
//!
//! Go distinguishes two kinds of "nothing" while evaluating: the invalid value (no value at
//! all: the result of a pipeline that produced nil, a missing key with the default option)
//! and a nil `interface {}` (a nil map entry or list element, a missing key with
//! `missingkey=zero`). Field access on the first yields no value, on the second it fails
//! with `nil pointer evaluating interface {}.x`. [`Slot`] keeps that distinction.

#![allow(
    // Go's int is 64 bits; lengths and indexes convert between usize and i64 as in Go.
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    // Errors are boxed on purpose: they are large and rare, results are hot.
    clippy::unnecessary_box_returns
)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

use crate::parse::{
    self, Arg, BranchNode, ChainNode, CommandNode, ListNode, Node, NumberNode, PipeNode,
    TemplateNode, Tree, VariableNode, with_stack,
};
use crate::{ArgType, Error, IntKind, Runtime, Signature, Templates, Value};

/// What a missing map key yields (Go's `missingkey` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// Go's default (`missingkey=default` or `invalid`): no value; printing it writes
    /// `<no value>` and fields of it are again no value.
    #[default]
    Invalid,
    /// `missingkey=zero` (Helm's): the zero value of the map's element type, a nil
    /// `interface {}` for `map[string]interface {}`; fields of it fail with
    /// `nil pointer evaluating interface {}.x`.
    Zero,
    /// `missingkey=error` (Helm's `--strict`): `map has no entry for key "x"`.
    Error,
}

/// How to execute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOptions {
    /// What a missing map key yields.
    pub missing_key: MissingKey,
    /// How deeply `{{template}}` calls (and `include`/`tpl` runs through [`Runtime`]) may
    /// nest before failing with `exceeded maximum template depth (N)`.
    pub max_depth: usize,
    /// How many nodes one execution may visit (counting those run through [`Runtime`])
    /// before failing with `exceeded maximum number of steps (N)`; `None` (the default,
    /// as in Go) for no limit. A bound for untrusted input: `{{range 10000000000}}` or
    /// templates that call themselves twice would otherwise run for ages.
    pub max_steps: Option<u64>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            missing_key: MissingKey::Invalid,
            max_depth: 1000,
            max_steps: None,
        }
    }
}

impl ExecOptions {
    /// Helm's options: `missingkey=zero`.
    pub fn helm() -> Self {
        ExecOptions {
            missing_key: MissingKey::Zero,
            ..ExecOptions::default()
        }
    }

    /// Helm's `--strict` options: `missingkey=error`.
    pub fn strict() -> Self {
        ExecOptions {
            missing_key: MissingKey::Error,
            ..ExecOptions::default()
        }
    }
}

/// A value during evaluation: Go's invalid `reflect.Value`, a concrete value, or a value
/// held in an `interface {}` (a map entry, a list element; `Iface(Value::Nil)` is a nil
/// interface). Go reports the static type `interface {}` for the last kind.
#[derive(Clone, Debug)]
enum Slot {
    Invalid,
    Val(Value),
    Iface(Value),
}

impl Slot {
    fn from_value(value: Value) -> Slot {
        match value {
            Value::Nil => Slot::Invalid,
            other => Slot::Val(other),
        }
    }

    /// A function's result: a nil result is a nil `interface {}`.
    fn from_result(value: Value) -> Slot {
        match value {
            Value::Nil => Slot::Iface(Value::Nil),
            other => Slot::Val(other),
        }
    }

    /// The value a function receives (an untyped nil for no value).
    fn into_value(self) -> Value {
        match self {
            Slot::Invalid => Value::Nil,
            Slot::Val(value) | Slot::Iface(value) => value,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Slot::Invalid => Value::Nil,
            Slot::Val(value) | Slot::Iface(value) => value.clone(),
        }
    }

    /// What evalPipeline keeps of a command's result: the concrete value inside an
    /// interface, so a nil interface becomes no value.
    fn dig(self) -> Slot {
        match self {
            Slot::Iface(Value::Nil) | Slot::Val(Value::Nil) => Slot::Invalid,
            Slot::Iface(value) => Slot::Val(value),
            other => other,
        }
    }

    fn truth(&self) -> bool {
        match self {
            Slot::Invalid => false,
            Slot::Val(value) | Slot::Iface(value) => value.is_true(),
        }
    }
}

/// The node being evaluated, for error positions and contexts (Go's `state.at`).
#[derive(Clone, Copy)]
enum At<'a> {
    None,
    Node(&'a Node),
    Pipe(&'a PipeNode),
    Cmd(&'a CommandNode),
    Arg(&'a Arg),
    Var(&'a VariableNode),
}

impl At<'_> {
    fn pos(&self) -> usize {
        match self {
            At::None => 0,
            At::Node(node) => node.pos(),
            At::Pipe(pipe) => pipe.pos,
            At::Cmd(cmd) => cmd.pos,
            At::Arg(arg) => arg.pos(),
            At::Var(variable) => variable.pos,
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        match self {
            At::None => {}
            At::Node(node) => node.write_to(&mut out),
            At::Pipe(pipe) => pipe.write_to(&mut out),
            At::Cmd(cmd) => cmd.write_to(&mut out),
            At::Arg(arg) => arg.write_to(&mut out),
            At::Var(variable) => variable.write_to(&mut out),
        }
        out
    }
}

/// How a list of nodes finished.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// The parameter type an argument is evaluated for.
#[derive(Clone, Copy)]
enum Ty {
    /// Go's `reflect.Value` parameters of the builtins (nil stays no value).
    Reflect,
    /// No type: the term of a chain `(x).f`.
    Untyped,
    /// A declared type.
    Typed(ArgType),
}

type Overlay = HashMap<String, Rc<Tree>>;

struct State<'a> {
    set: &'a Templates,
    overlays: Vec<&'a Overlay>,
    options: &'a ExecOptions,
    tree: &'a Tree,
    node: At<'a>,
    vars: Vec<(&'a str, Slot)>,
    depth: usize,
    steps: u64,
    out: String,
}

/// Errors travel boxed inside the executor (the public API returns [`Error`]).
type Result<T> = std::result::Result<T, Box<Error>>;

/// Executes `tree` of `set` with `dot`, appending to `out`.
pub(crate) fn execute_tree(
    set: &Templates,
    tree: &Rc<Tree>,
    dot: Value,
    options: &ExecOptions,
    out: &mut String,
) -> Result<()> {
    let dot = Slot::from_value(dot);
    let mut state = State {
        set,
        overlays: Vec::new(),
        options,
        tree,
        node: At::None,
        vars: vec![("$", dot.clone())],
        depth: 0,
        steps: 0,
        out: std::mem::take(out),
    };
    let result = state.walk_list(&dot, &tree.root);
    *out = std::mem::take(&mut state.out);
    result.map(|_| ())
}

/// Parses `text` as the template `name` on top of `set` (and `overlays`) and executes it:
/// Helm's `tpl`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn execute_text_in(
    set: &Templates,
    overlays: &[&Overlay],
    name: &str,
    text: &str,
    dot: Value,
    options: &ExecOptions,
    depth: usize,
    steps: &mut u64,
) -> Result<String> {
    let trees = parse::parse(name, text, set.functions())?;
    let mut overlay: Overlay = HashMap::new();
    let mut top = None;
    for tree in trees {
        let tree = Rc::new(tree);
        if tree.name == name {
            top = Some(tree.clone());
        }
        let exists = overlay.contains_key(&tree.name)
            || overlays.iter().any(|layer| layer.contains_key(&tree.name))
            || set.contains(&tree.name);
        if tree.is_empty() && exists {
            continue;
        }
        overlay.insert(tree.name.clone(), tree);
    }
    let top = top.expect("parse returns the top-level tree");
    let mut layers: Vec<&Overlay> = overlays.to_vec();
    layers.push(&overlay);
    let dot = Slot::from_value(dot);
    let mut state = State {
        set,
        overlays: layers,
        options,
        tree: &top,
        node: At::None,
        vars: vec![("$", dot.clone())],
        depth,
        steps: *steps,
        out: String::new(),
    };
    let result = with_stack(|| state.walk_list(&dot, &top.root));
    *steps = state.steps;
    result?;
    Ok(state.out)
}

fn type_name_of(value: &Value) -> String {
    match value {
        Value::Nil => "interface {}".to_string(),
        other => other.type_name(),
    }
}

impl<'a> State<'a> {
    fn lookup(&self, name: &str) -> Option<&'a Tree> {
        for layer in self.overlays.iter().rev() {
            if let Some(tree) = layer.get(name) {
                return Some(tree);
            }
        }
        self.set.lookup_rc(name).map(Rc::as_ref)
    }

    fn at(&mut self, node: At<'a>) {
        self.node = node;
    }

    fn error(&self, message: impl Into<String>) -> Box<Error> {
        self.error_with(None, message.into())
    }

    fn error_with(&self, function: Option<&str>, message: String) -> Box<Error> {
        if let At::None = self.node {
            return Box::new(Error {
                template: self.tree.name.clone(),
                line: None,
                column: None,
                context: None,
                function: function.map(str::to_string),
                message,
            });
        }
        let (line, column) = self.tree.location(self.node.pos());
        Box::new(Error {
            template: self.tree.parse_name.to_string(),
            line: Some(line),
            column: Some(column),
            context: Some(self.node.text()),
            function: function.map(str::to_string),
            message,
        })
    }

    // ---- walking ----

    /// Counts one step against [`ExecOptions::max_steps`].
    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if let Some(limit) = self.options.max_steps
            && self.steps > limit
        {
            return Err(self.error(format!("exceeded maximum number of steps ({limit})")));
        }
        Ok(())
    }

    fn walk_list(&mut self, dot: &Slot, list: &'a ListNode) -> Result<Flow> {
        for node in &list.nodes {
            let flow = self.walk(dot, node)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Slot, node: &'a Node) -> Result<Flow> {
        self.at(At::Node(node));
        self.step()?;
        match node {
            Node::Text(text) => self.out.push_str(&text.text),
            Node::Action(action) => {
                let value = self.eval_pipeline(dot, &action.pipe)?;
                if action.pipe.decl.is_empty() {
                    self.at(At::Node(node));
                    self.print_value(&value);
                }
            }
            Node::Break(_) => return Ok(Flow::Break),
            Node::Continue(_) => return Ok(Flow::Continue),
            Node::If(branch) => {
                return with_stack(|| self.walk_if_or_with(false, dot, branch));
            }
            Node::With(branch) => {
                return with_stack(|| self.walk_if_or_with(true, dot, branch));
            }
            Node::Range(branch) => return with_stack(|| self.walk_range(dot, node, branch)),
            Node::Template(template) => {
                with_stack(|| self.walk_template(dot, node, template))?;
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Slot, branch: &'a BranchNode) -> Result<Flow> {
        let mark = self.vars.len();
        let value = self.eval_pipeline(dot, &branch.pipe)?;
        let flow = if value.truth() {
            if with {
                self.walk_list(&value, &branch.list)?
            } else {
                self.walk_list(dot, &branch.list)?
            }
        } else if let Some(else_list) = &branch.else_list {
            self.walk_list(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Slot, node: &'a Node, range: &'a BranchNode) -> Result<Flow> {
        self.at(At::Node(node));
        let outer_mark = self.vars.len();
        let value = self.eval_pipeline(dot, &range.pipe)?;
        let mark = self.vars.len();
        let mut ran = false;
        let (value, _) = match &value {
            Slot::Invalid => (None, false),
            Slot::Val(value) => (Some(value), false),
            Slot::Iface(value) => (Some(value), true),
        };
        match value {
            Some(Value::List(items)) if !items.is_empty() => {
                ran = true;
                for (index, item) in items.iter().enumerate() {
                    let index = Slot::Val(Value::int(index as i64));
                    if self.one_iteration(range, mark, index, &Slot::Iface(item.clone()))? {
                        break;
                    }
                }
            }
            Some(Value::Bytes(bytes)) if !bytes.is_empty() => {
                ran = true;
                for (index, byte) in bytes.iter().enumerate() {
                    let index = Slot::Val(Value::int(index as i64));
                    let element = Slot::Val(Value::int(i64::from(*byte)));
                    if self.one_iteration(range, mark, index, &element)? {
                        break;
                    }
                }
            }
            Some(Value::Map(map)) if !map.borrow().is_empty() => {
                ran = true;
                let entries: Vec<(String, Value)> = map
                    .borrow()
                    .iter()
                    .map(|(key, item)| (key.clone(), item.clone()))
                    .collect();
                for (key, item) in entries {
                    let key = Slot::Val(Value::string(key));
                    if self.one_iteration(range, mark, key, &Slot::Iface(item))? {
                        break;
                    }
                }
            }
            Some(Value::Object(object)) if object.entries().is_some() => {
                let mut entries = object.entries().unwrap_or_default();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                if !entries.is_empty() {
                    ran = true;
                    for (key, item) in entries {
                        let key = Slot::Val(Value::string(key));
                        if self.one_iteration(range, mark, key, &Slot::from_result(item))? {
                            break;
                        }
                    }
                }
            }
            Some(Value::Int(count, kind)) => {
                if range.pipe.decl.len() > 1 {
                    return Err(self.error(format!(
                        "can't use {count} to iterate over more than one variable"
                    )));
                }
                if *count > 0 {
                    ran = true;
                    for index in 0..*count {
                        let element = Slot::Val(Value::Int(index, *kind));
                        if self.one_iteration(range, mark, Slot::Invalid, &element)? {
                            break;
                        }
                    }
                }
            }
            None | Some(Value::List(_) | Value::Bytes(_) | Value::Map(_) | Value::Nil) => {}
            Some(other) => {
                return Err(
                    self.error(format!("range can't iterate over {}", other.to_go_string()))
                );
            }
        }
        let flow = if !ran && let Some(else_list) = &range.else_list {
            self.walk_list(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(outer_mark);
        // break/continue inside the else list belong to an outer range.
        Ok(if ran { Flow::Normal } else { flow })
    }

    /// One iteration of a range body; returns whether the loop must stop (`break`).
    fn one_iteration(
        &mut self,
        range: &'a BranchNode,
        mark: usize,
        index: Slot,
        element: &Slot,
    ) -> Result<bool> {
        self.step()?;
        let decl = &range.pipe.decl;
        if !decl.is_empty() {
            if range.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(&decl[0].ident[0], index.clone())?;
                } else {
                    self.set_var(&decl[0].ident[0], element.clone())?;
                }
            } else {
                let top = self.vars.len() - 1;
                self.vars[top].1 = element.clone();
            }
        }
        if decl.len() > 1 {
            if range.pipe.is_assign {
                self.set_var(&decl[1].ident[0], element.clone())?;
            } else {
                let second = self.vars.len() - 2;
                self.vars[second].1 = index;
            }
        }
        let flow = self.walk_list(element, &range.list)?;
        self.vars.truncate(mark);
        Ok(flow == Flow::Break)
    }

    fn walk_template(
        &mut self,
        dot: &Slot,
        node: &'a Node,
        template: &'a TemplateNode,
    ) -> Result<()> {
        self.at(At::Node(node));
        let Some(tree) = self.lookup(&template.name) else {
            return Err(self.error(format!(
                "template {} not defined",
                crate::strconv::quote(&template.name)
            )));
        };
        if self.depth >= self.options.max_depth {
            return Err(self.error(format!(
                "exceeded maximum template depth ({})",
                self.options.max_depth
            )));
        }
        let new_dot = match &template.pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Slot::Invalid,
        };
        let saved_tree = std::mem::replace(&mut self.tree, tree);
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$", new_dot.clone())]);
        self.depth += 1;
        let result = self.walk_list(&new_dot, &tree.root);
        self.depth -= 1;
        self.vars = saved_vars;
        self.tree = saved_tree;
        result.map(|_| ())
    }

    fn print_value(&mut self, value: &Slot) {
        match value {
            Slot::Invalid | Slot::Iface(Value::Nil) => self.out.push_str("<no value>"),
            Slot::Val(Value::String(text)) | Slot::Iface(Value::String(text)) => {
                self.out.push_str(text);
            }
            Slot::Val(Value::Int(number, _)) | Slot::Iface(Value::Int(number, _)) => {
                let _ = write!(self.out, "{number}");
            }
            Slot::Val(other) | Slot::Iface(other) => self.out.push_str(&other.to_go_string()),
        }
    }

    // ---- variables ----

    fn var_value(&self, name: &str) -> Result<Slot> {
        for (var_name, value) in self.vars.iter().rev() {
            if *var_name == name {
                return Ok(value.clone());
            }
        }
        Err(self.error(format!("undefined variable: {name}")))
    }

    fn set_var(&mut self, name: &str, value: Slot) -> Result<()> {
        for (var_name, slot) in self.vars.iter_mut().rev() {
            if *var_name == name {
                *slot = value;
                return Ok(());
            }
        }
        Err(self.error(format!("undefined variable: {name}")))
    }

    // ---- evaluation ----

    fn eval_pipeline(&mut self, dot: &Slot, pipe: &'a PipeNode) -> Result<Slot> {
        self.at(At::Pipe(pipe));
        let mut value: Option<Slot> = None;
        for cmd in &pipe.cmds {
            let result = self.eval_command(dot, cmd, value.take())?;
            value = Some(result.dig());
        }
        let value = value.unwrap_or(Slot::Invalid);
        for variable in &pipe.decl {
            if pipe.is_assign {
                self.set_var(&variable.ident[0], value.clone())?;
            } else {
                self.vars.push((&variable.ident[0], value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd_args: &'a [Arg], final_value: Option<&Slot>) -> Result<()> {
        if cmd_args.len() > 1 || final_value.is_some() {
            return Err(self.error(format!(
                "can't give argument to non-function {}",
                cmd_args[0]
            )));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Slot,
        cmd: &'a CommandNode,
        final_value: Option<Slot>,
    ) -> Result<Slot> {
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        match first {
            Arg::Field(_, ident) => {
                return self.eval_field_node(dot, first, ident, rest, final_value);
            }
            Arg::Chain(chain) => return self.eval_chain_node(dot, first, chain, rest, final_value),
            Arg::Identifier(_, name) => {
                return self.eval_function(dot, name, first, At::Cmd(cmd), rest, final_value);
            }
            Arg::Pipe(pipe) => {
                self.not_a_function(&cmd.args, final_value.as_ref())?;
                return with_stack(|| self.eval_pipeline(dot, pipe));
            }
            Arg::Variable(variable) => {
                return self.eval_variable_node(dot, variable, rest, final_value);
            }
            _ => {}
        }
        self.at(At::Arg(first));
        self.not_a_function(&cmd.args, final_value.as_ref())?;
        match first {
            Arg::Bool(_, value) => Ok(Slot::Val(Value::Bool(*value))),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Err(self.error("nil is not a command")),
            Arg::Number(number) => self.ideal_constant(first, number),
            Arg::String(_, _, value) => Ok(Slot::Val(value.clone())),
            _ => Err(self.error(format!(
                "can't evaluate command {}",
                crate::strconv::quote(&first.to_string())
            ))),
        }
    }

    /// A number literal where no type is known: Go's ideal-constant rules.
    fn ideal_constant(&mut self, arg: &'a Arg, number: &NumberNode) -> Result<Slot> {
        self.at(At::Arg(arg));
        let text = &number.text;
        if number.is_complex {
            return Err(self.error(format!("complex constant {text} is not supported")));
        }
        let is_hex_int = text.len() > 2
            && text.as_bytes()[0] == b'0'
            && matches!(text.as_bytes()[1], b'x' | b'X')
            && !text.contains(['p', 'P']);
        let is_rune = text.starts_with('\'');
        if number.is_float && !is_hex_int && !is_rune && text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Slot::Val(Value::Float(number.float64)));
        }
        if number.is_int {
            return Ok(Slot::Val(Value::int(number.int64)));
        }
        if number.is_uint {
            return Err(self.error(format!("{text} overflows int")));
        }
        Ok(Slot::Invalid)
    }

    fn eval_field_node(
        &mut self,
        dot: &Slot,
        node: &'a Arg,
        ident: &'a [String],
        args: &'a [Arg],
        final_value: Option<Slot>,
    ) -> Result<Slot> {
        self.at(At::Arg(node));
        self.eval_field_chain(dot, dot.clone(), At::Arg(node), ident, args, final_value)
    }

    fn eval_chain_node(
        &mut self,
        dot: &Slot,
        node: &'a Arg,
        chain: &'a ChainNode,
        args: &'a [Arg],
        final_value: Option<Slot>,
    ) -> Result<Slot> {
        self.at(At::Arg(node));
        if chain.field.is_empty() {
            return Err(self.error("internal error: no fields in evalChainNode"));
        }
        if let Arg::Nil(_) = chain.node {
            return Err(self.error(format!("indirection through explicit nil in {node}")));
        }
        let receiver = self.eval_arg(dot, Ty::Untyped, &chain.node)?;
        self.eval_field_chain(
            dot,
            receiver,
            At::Arg(node),
            &chain.field,
            args,
            final_value,
        )
    }

    fn eval_variable_node(
        &mut self,
        dot: &Slot,
        variable: &'a VariableNode,
        args: &'a [Arg],
        final_value: Option<Slot>,
    ) -> Result<Slot> {
        self.at(At::Var(variable));
        let value = self.var_value(&variable.ident[0])?;
        if variable.ident.len() == 1 {
            if !args.is_empty() || final_value.is_some() {
                return Err(self.error(format!("can't give argument to non-function {variable}")));
            }
            return Ok(value);
        }
        self.eval_field_chain(
            dot,
            value,
            At::Var(variable),
            &variable.ident[1..],
            args,
            final_value,
        )
    }

    fn eval_field_chain(
        &mut self,
        dot: &Slot,
        mut receiver: Slot,
        node: At<'a>,
        ident: &'a [String],
        args: &'a [Arg],
        final_value: Option<Slot>,
    ) -> Result<Slot> {
        let last = ident.len() - 1;
        for name in &ident[..last] {
            receiver = self.eval_field(dot, name, node, &[], None, receiver)?;
        }
        self.eval_field(dot, &ident[last], node, args, final_value, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Slot,
        name: &str,
        node: At<'a>,
        args: &'a [Arg],
        final_value: Option<Slot>,
        receiver: Slot,
    ) -> Result<Slot> {
        let (value, in_interface) = match receiver {
            Slot::Invalid => {
                if self.options.missing_key == MissingKey::Error {
                    return Err(self.error(format!(
                        "nil data; no entry for key {}",
                        crate::strconv::quote(name)
                    )));
                }
                return Ok(Slot::Invalid);
            }
            Slot::Val(value) => (value, false),
            Slot::Iface(value) => (value, true),
        };
        let has_args = !args.is_empty() || final_value.is_some();
        match &value {
            Value::Nil => Err(self.error(format!("nil pointer evaluating interface {{}}.{name}"))),
            Value::Map(map) => {
                if has_args {
                    return Err(self.error(format!("{name} is not a method but has arguments")));
                }
                let found = map.borrow().get(name).cloned();
                match found {
                    Some(item) => Ok(Slot::Iface(item)),
                    None => self.missing_key(name),
                }
            }
            Value::Object(object) => {
                let object = object.clone();
                if let Some(field) = object.field(name) {
                    if has_args {
                        return Err(self.error(format!(
                            "{name} has arguments but cannot be invoked as function"
                        )));
                    }
                    return Ok(Slot::from_result(field));
                }
                // A method call: evaluate the arguments, then the final value.
                let values = self.eval_untyped_args(dot, args, final_value)?;
                match object.call_method(name, &values) {
                    Some(Ok(result)) => Ok(Slot::from_result(result)),
                    Some(Err(message)) => {
                        self.at(node);
                        Err(self.error_with(Some(name), message))
                    }
                    None => {
                        self.at(node);
                        if object.kind() == "map"
                            && let Some(entries) = object.entries()
                        {
                            // A map type with methods (Helm's `.Files`): other names are keys.
                            if has_args {
                                return Err(
                                    self.error(format!("{name} is not a method but has arguments"))
                                );
                            }
                            return match entries.into_iter().find(|(key, _)| key == name) {
                                Some((_, item)) => Ok(Slot::Iface(item)),
                                None => self.missing_key(name),
                            };
                        }
                        Err(self.error(format!(
                            "can't evaluate field {name} in type {}",
                            object.type_name()
                        )))
                    }
                }
            }
            other => Err(self.error(format!(
                "can't evaluate field {name} in type {}",
                if in_interface {
                    "interface {}".to_string()
                } else {
                    other.type_name()
                }
            ))),
        }
    }

    /// What a missing map key yields, per [`ExecOptions::missing_key`].
    fn missing_key(&self, name: &str) -> Result<Slot> {
        match self.options.missing_key {
            MissingKey::Invalid => Ok(Slot::Invalid),
            MissingKey::Zero => Ok(Slot::Iface(Value::Nil)),
            MissingKey::Error => Err(self.error(format!(
                "map has no entry for key {}",
                crate::strconv::quote(name)
            ))),
        }
    }

    fn eval_arg(&mut self, dot: &Slot, ty: Ty, arg: &'a Arg) -> Result<Slot> {
        self.at(At::Arg(arg));
        let value = match arg {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => {
                return match ty {
                    Ty::Reflect | Ty::Untyped => Ok(Slot::Invalid),
                    Ty::Typed(ArgType::Any | ArgType::Map(_) | ArgType::List(_)) => {
                        Ok(Slot::Iface(Value::Nil))
                    }
                    Ty::Typed(other) => {
                        Err(self.error(format!("cannot assign nil to {}", other.go_name())))
                    }
                };
            }
            Arg::Field(_, ident) => self.eval_field_node(dot, arg, ident, &[], None)?,
            Arg::Variable(variable) => self.eval_variable_node(dot, variable, &[], None)?,
            Arg::Pipe(pipe) => with_stack(|| self.eval_pipeline(dot, pipe))?,
            Arg::Identifier(_, name) => {
                self.eval_function(dot, name, arg, At::Arg(arg), &[], None)?
            }
            Arg::Chain(chain) => self.eval_chain_node(dot, arg, chain, &[], None)?,
            Arg::Bool(_, value) => {
                return match ty {
                    Ty::Typed(ArgType::Bool | ArgType::Any) | Ty::Reflect | Ty::Untyped => {
                        Ok(Slot::Val(Value::Bool(*value)))
                    }
                    Ty::Typed(other) => Err(self.literal_type_error(arg, other)),
                };
            }
            Arg::String(_, _, value) => {
                return match ty {
                    Ty::Typed(ArgType::String | ArgType::Any) | Ty::Reflect | Ty::Untyped => {
                        Ok(Slot::Val(value.clone()))
                    }
                    Ty::Typed(other) => Err(self.literal_type_error(arg, other)),
                };
            }
            Arg::Number(number) => {
                return match ty {
                    Ty::Typed(ArgType::Int) if number.is_int => {
                        Ok(Slot::Val(Value::int(number.int64)))
                    }
                    Ty::Typed(ArgType::Int64) if number.is_int => {
                        Ok(Slot::Val(Value::int64(number.int64)))
                    }
                    Ty::Typed(ArgType::Float64) if number.is_float => {
                        Ok(Slot::Val(Value::Float(number.float64)))
                    }
                    Ty::Typed(ArgType::Any) | Ty::Reflect | Ty::Untyped => {
                        self.ideal_constant(arg, number)
                    }
                    Ty::Typed(other) => Err(self.literal_type_error(arg, other)),
                };
            }
        };
        self.validate_type(value, ty)
    }

    fn literal_type_error(&self, arg: &Arg, ty: ArgType) -> Box<Error> {
        let expected = match ty {
            ArgType::Bool => "bool",
            ArgType::String => "string",
            ArgType::Int | ArgType::Int64 => "integer",
            ArgType::Float64 => "float",
            ArgType::Any => "interface",
            ArgType::Map(name) | ArgType::List(name) => {
                return self.error(format!("can't handle {arg} for arg of type {name}"));
            }
        };
        self.error(format!("expected {expected}; found {arg}"))
    }

    /// Go's `validateType`: whether a value can be passed as a parameter of type `ty`.
    fn validate_type(&self, value: Slot, ty: Ty) -> Result<Slot> {
        let ty = match ty {
            Ty::Reflect | Ty::Untyped => return Ok(value),
            Ty::Typed(ArgType::Any) => {
                return Ok(match value {
                    Slot::Invalid => Slot::Iface(Value::Nil),
                    other => other,
                });
            }
            Ty::Typed(ty) => ty,
        };
        let value = match value {
            Slot::Invalid => {
                if matches!(ty, ArgType::Map(_) | ArgType::List(_)) {
                    return Ok(Slot::Iface(Value::Nil));
                }
                return Err(self.error(format!("invalid value; expected {}", ty.go_name())));
            }
            Slot::Val(value) | Slot::Iface(value) => value,
        };
        let assignable = matches!(
            (ty, &value),
            (ArgType::String, Value::String(_))
                | (ArgType::Bool, Value::Bool(_))
                | (ArgType::Int, Value::Int(_, IntKind::Int))
                | (ArgType::Int64, Value::Int(_, IntKind::Int64))
                | (ArgType::Float64, Value::Float(_))
                | (ArgType::Map(_), Value::Map(_))
                | (ArgType::List(_), Value::List(_))
        );
        if assignable {
            return Ok(Slot::Val(value));
        }
        if let (ArgType::Map(_), Value::Object(object)) = (ty, &value)
            && object.kind() == "map"
        {
            return Ok(Slot::Val(value));
        }
        Err(self.error(format!(
            "wrong type for value; expected {}; got {}",
            ty.go_name(),
            type_name_of(&value)
        )))
    }

    fn eval_function(
        &mut self,
        dot: &Slot,
        name: &str,
        ident: &'a Arg,
        call_node: At<'a>,
        args: &'a [Arg],
        final_value: Option<Slot>,
    ) -> Result<Slot> {
        self.at(At::Arg(ident));
        if let Some(function) = self.set.functions().get(name) {
            let signature = self.set.functions().signature(name).cloned();
            let values = self.eval_call_args(dot, name, signature.as_ref(), args, final_value)?;
            let result = function(self, &values);
            return match result {
                Ok(value) => Ok(Slot::from_result(value)),
                Err(message) => {
                    self.at(call_node);
                    Err(self.error_with(Some(name), message))
                }
            };
        }
        if parse::is_builtin(name) {
            return self.call_builtin(dot, name, call_node, args, final_value);
        }
        Err(self.error(format!(
            "{} is not a defined function",
            crate::strconv::quote(name)
        )))
    }

    /// Evaluates arguments taken as `interface{}` (then the piped value, when there is one).
    fn eval_untyped_args(
        &mut self,
        dot: &Slot,
        args: &'a [Arg],
        final_value: Option<Slot>,
    ) -> Result<Vec<Value>> {
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(
                self.eval_arg(dot, Ty::Typed(ArgType::Any), arg)?
                    .into_value(),
            );
        }
        if let Some(final_value) = final_value {
            values.push(final_value.into_value());
        }
        Ok(values)
    }

    /// Evaluates the arguments of a call to a table function, checking them against its
    /// signature when it has one.
    fn eval_call_args(
        &mut self,
        dot: &Slot,
        name: &str,
        signature: Option<&Signature>,
        args: &'a [Arg],
        final_value: Option<Slot>,
    ) -> Result<Vec<Value>> {
        let Some(signature) = signature else {
            return self.eval_untyped_args(dot, args, final_value);
        };
        let num_in = args.len() + usize::from(final_value.is_some());
        let mut values = Vec::with_capacity(num_in);
        let fixed = signature.params.len();
        match signature.variadic {
            Some(_) => {
                if num_in < fixed {
                    return Err(self.error(format!(
                        "wrong number of args for {name}: want at least {fixed} got {}",
                        args.len()
                    )));
                }
            }
            None => {
                if num_in != fixed {
                    return Err(self.error(format!(
                        "wrong number of args for {name}: want {fixed} got {num_in}"
                    )));
                }
            }
        }
        let param = |index: usize| -> ArgType {
            if index < fixed {
                signature.params[index]
            } else {
                signature.variadic.unwrap_or(ArgType::Any)
            }
        };
        for (index, arg) in args.iter().enumerate() {
            values.push(
                self.eval_arg(dot, Ty::Typed(param(index)), arg)?
                    .into_value(),
            );
        }
        if let Some(final_value) = final_value {
            let ty = param(num_in - 1);
            values.push(self.validate_type(final_value, Ty::Typed(ty))?.into_value());
        }
        Ok(values)
    }

    // ---- builtins ----

    fn arity(
        &self,
        name: &str,
        args: &[Arg],
        final_value: Option<&Slot>,
        fixed: usize,
        variadic: bool,
    ) -> Result<()> {
        let num_in = args.len() + usize::from(final_value.is_some());
        if variadic {
            if num_in < fixed {
                return Err(self.error(format!(
                    "wrong number of args for {name}: want at least {fixed} got {}",
                    args.len()
                )));
            }
        } else if num_in != fixed {
            return Err(self.error(format!(
                "wrong number of args for {name}: want {fixed} got {num_in}"
            )));
        }
        Ok(())
    }

    fn eval_reflect_args(
        &mut self,
        dot: &Slot,
        args: &'a [Arg],
        final_value: Option<Slot>,
    ) -> Result<Vec<Slot>> {
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.eval_arg(dot, Ty::Reflect, arg)?);
        }
        if let Some(final_value) = final_value {
            values.push(final_value);
        }
        Ok(values)
    }

    fn call_builtin(
        &mut self,
        dot: &Slot,
        name: &str,
        call_node: At<'a>,
        args: &'a [Arg],
        final_value: Option<Slot>,
    ) -> Result<Slot> {
        let (fixed, variadic) = match name {
            "and" | "or" | "index" | "slice" | "eq" | "call" | "printf" => (1, true),
            "print" | "println" | "html" | "js" | "urlquery" => (0, true),
            "not" | "len" => (1, false),
            _ => (2, false), // ne lt le gt ge
        };
        self.arity(name, args, final_value.as_ref(), fixed, variadic)?;

        if name == "and" || name == "or" {
            let mut value = Slot::Invalid;
            for arg in args {
                value = self.eval_arg(dot, Ty::Reflect, arg)?;
                if value.truth() == (name == "or") {
                    return Ok(value);
                }
            }
            if let Some(final_value) = final_value {
                value = final_value;
            }
            return Ok(value);
        }

        let result: std::result::Result<Slot, String> = match name {
            "print" | "println" | "html" | "js" | "urlquery" => {
                let values = self.eval_untyped_args(dot, args, final_value)?;
                Ok(Slot::Val(Value::string(match name {
                    "print" => crate::fmt::sprint(&values),
                    "println" => crate::fmt::sprintln(&values),
                    "html" => html_escape(&eval_args_text(&values)),
                    "js" => js_escape(&eval_args_text(&values)),
                    _ => url_query_escape(&eval_args_text(&values)),
                })))
            }
            "printf" => {
                let mut values = Vec::with_capacity(args.len() + 1);
                let mut format = None;
                for (index, arg) in args.iter().enumerate() {
                    if index == 0 {
                        format = Some(
                            self.eval_arg(dot, Ty::Typed(ArgType::String), arg)?
                                .into_value(),
                        );
                    } else {
                        values.push(
                            self.eval_arg(dot, Ty::Typed(ArgType::Any), arg)?
                                .into_value(),
                        );
                    }
                }
                if let Some(final_value) = final_value {
                    if format.is_none() {
                        format = Some(
                            self.validate_type(final_value, Ty::Typed(ArgType::String))?
                                .into_value(),
                        );
                    } else {
                        values.push(final_value.into_value());
                    }
                }
                let format = format.unwrap_or(Value::Nil);
                Ok(Slot::Val(Value::string(crate::fmt::sprintf(
                    format.as_str().unwrap_or(""),
                    &values,
                ))))
            }
            "call" => {
                let values = self.eval_reflect_args(dot, args, final_value)?;
                let callee = match args.first() {
                    Some(arg) => arg.to_string(),
                    None => values[0].to_value().to_go_string(),
                };
                match &values[0] {
                    Slot::Invalid | Slot::Val(Value::Nil) | Slot::Iface(Value::Nil) => {
                        Err("call of nil".to_string())
                    }
                    Slot::Val(other) | Slot::Iface(other) => Err(format!(
                        "non-function {callee} of type {}",
                        other.type_name()
                    )),
                }
            }
            _ => {
                let values = self.eval_reflect_args(dot, args, final_value)?;
                match name {
                    "not" => Ok(Slot::Val(Value::Bool(!values[0].truth()))),
                    "len" => builtin_len(&values[0]),
                    "index" => builtin_index(&values[0], &values[1..]),
                    "slice" => builtin_slice(&values[0], &values[1..]),
                    "eq" => builtin_eq(&values[0], &values[1..]).map(|b| Slot::Val(Value::Bool(b))),
                    "ne" => {
                        builtin_eq(&values[0], &values[1..2]).map(|b| Slot::Val(Value::Bool(!b)))
                    }
                    "lt" => builtin_lt(&values[0], &values[1]).map(|b| Slot::Val(Value::Bool(b))),
                    "le" => builtin_le(&values[0], &values[1]).map(|b| Slot::Val(Value::Bool(b))),
                    "gt" => builtin_le(&values[0], &values[1]).map(|b| Slot::Val(Value::Bool(!b))),
                    "ge" => builtin_lt(&values[0], &values[1]).map(|b| Slot::Val(Value::Bool(!b))),
                    _ => Err(format!("unknown builtin {name}")),
                }
            }
        };
        match result {
            Ok(value) => Ok(value),
            Err(message) => {
                self.at(call_node);
                Err(self.error_with(Some(name), message))
            }
        }
    }

    fn depth_error(&self) -> Box<Error> {
        self.error(format!(
            "exceeded maximum template depth ({})",
            self.options.max_depth
        ))
    }
}

impl Runtime for State<'_> {
    fn execute_named(&mut self, name: &str, dot: Value) -> std::result::Result<String, Error> {
        let Some(tree) = self.lookup(name) else {
            return Err(self.set.no_template(name));
        };
        if self.depth >= self.options.max_depth {
            return Err(*self.depth_error());
        }
        let dot = Slot::from_value(dot);
        let mut child = State {
            set: self.set,
            overlays: self.overlays.clone(),
            options: self.options,
            tree,
            node: At::None,
            vars: vec![("$", dot.clone())],
            depth: self.depth + 1,
            steps: self.steps,
            out: String::new(),
        };
        let result = with_stack(|| child.walk_list(&dot, &tree.root));
        self.steps = child.steps;
        result.map_err(|error| *error)?;
        Ok(child.out)
    }

    fn execute_text(
        &mut self,
        name: &str,
        text: &str,
        dot: Value,
    ) -> std::result::Result<String, Error> {
        if self.depth >= self.options.max_depth {
            return Err(*self.depth_error());
        }
        let mut steps = self.steps;
        let result = execute_text_in(
            self.set,
            &self.overlays,
            name,
            text,
            dot,
            self.options,
            self.depth + 1,
            &mut steps,
        );
        self.steps = steps;
        result.map_err(|error| *error)
    }
}

// ---- builtin implementations ----

/// The concrete value inside (Go's `indirectInterface`): a nil interface is no value.
fn concrete(slot: &Slot) -> Option<&Value> {
    match slot {
        Slot::Invalid | Slot::Val(Value::Nil) | Slot::Iface(Value::Nil) => None,
        Slot::Val(value) | Slot::Iface(value) => Some(value),
    }
}

fn builtin_len(item: &Slot) -> std::result::Result<Slot, String> {
    let length = match item {
        Slot::Invalid => return Err("reflect: call of reflect.Value.Type on zero Value".into()),
        Slot::Val(value) | Slot::Iface(value) => match value {
            Value::Nil => return Err("len of nil pointer".into()),
            Value::String(text) => text.len(),
            Value::Bytes(bytes) => bytes.len(),
            Value::List(items) => items.len(),
            Value::Map(map) => map.borrow().len(),
            Value::Object(object) => match object.entries() {
                Some(entries) => entries.len(),
                None => return Err(format!("len of type {}", object.type_name())),
            },
            other => return Err(format!("len of type {}", other.type_name())),
        },
    };
    Ok(Slot::Val(Value::int(length as i64)))
}

/// Go's `indexArg`.
fn index_arg(index: &Slot, cap: usize) -> std::result::Result<usize, String> {
    let value = match concrete(index) {
        None => return Err("cannot index slice/array with nil".into()),
        Some(Value::Int(value, _)) => *value,
        Some(other) => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    if value < 0 || value as u64 > cap as u64 {
        return Err(format!("index out of range: {value}"));
    }
    Ok(value as usize)
}

fn builtin_index(item: &Slot, indexes: &[Slot]) -> std::result::Result<Slot, String> {
    let Some(first) = concrete(item) else {
        return Err("index of untyped nil".into());
    };
    let mut item = first.clone();
    for index in indexes {
        item = match &item {
            Value::Nil => return Err("index of nil pointer".into()),
            Value::List(items) => {
                let position = index_arg(index, items.len())?;
                match items.get(position) {
                    Some(element) => element.clone(),
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            Value::Bytes(bytes) => {
                let position = index_arg(index, bytes.len())?;
                match bytes.get(position) {
                    Some(byte) => Value::int(i64::from(*byte)),
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            Value::String(text) => {
                let position = index_arg(index, text.len())?;
                match text.as_bytes().get(position) {
                    Some(byte) => Value::int(i64::from(*byte)),
                    None => return Err("reflect: string index out of range".into()),
                }
            }
            Value::Map(map) => {
                let key = map_key(index)?;
                map.borrow()
                    .get(key.as_str())
                    .cloned()
                    .unwrap_or(Value::Nil)
            }
            Value::Object(object) if object.kind() == "map" => {
                let key = map_key(index)?;
                match object.entries() {
                    Some(entries) => entries
                        .into_iter()
                        .find(|(name, _)| *name == key)
                        .map_or(Value::Nil, |(_, value)| value),
                    None => object.field(&key).unwrap_or(Value::Nil),
                }
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(Slot::Iface(item))
}

/// Go's `prepareArg` for a `string` map key.
fn map_key(index: &Slot) -> std::result::Result<String, String> {
    match concrete(index) {
        None => Err("value is nil; should be of type string".into()),
        Some(Value::String(key)) => Ok(key.to_string()),
        Some(other) => Err(format!(
            "value has type {}; should be string",
            other.type_name()
        )),
    }
}

fn builtin_slice(item: &Slot, indexes: &[Slot]) -> std::result::Result<Slot, String> {
    let Some(item) = concrete(item) else {
        return Err("slice of untyped nil".into());
    };
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let length = match item {
        Value::String(text) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            text.len()
        }
        Value::List(items) => items.len(),
        Value::Bytes(bytes) => bytes.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut bounds = [0, length, 0];
    for (position, index) in indexes.iter().enumerate() {
        // Unlike index, slice does not look inside an interface (a map entry, a list element).
        if let Slot::Iface(_) = index {
            return Err("cannot index slice/array with type interface {}".into());
        }
        bounds[position] = index_arg(index, length)?;
    }
    if bounds[0] > bounds[1] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        ));
    }
    if indexes.len() == 3 && bounds[1] > bounds[2] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[1], bounds[2]
        ));
    }
    let (start, end) = (bounds[0], bounds[1]);
    Ok(Slot::Val(match item {
        Value::String(text) => {
            let bytes = &text.as_bytes()[start..end];
            Value::string(String::from_utf8_lossy(bytes).into_owned())
        }
        Value::List(items) => Value::list(items[start..end].to_vec()),
        Value::Bytes(bytes) => Value::Bytes(Rc::from(&bytes[start..end])),
        _ => unreachable!("checked above"),
    }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BasicKind {
    Bool,
    Int,
    Float,
    String,
}

fn basic_kind(value: Option<&Value>) -> Option<BasicKind> {
    match value? {
        Value::Bool(_) => Some(BasicKind::Bool),
        Value::Int(..) => Some(BasicKind::Int),
        Value::Float(_) => Some(BasicKind::Float),
        Value::String(_) => Some(BasicKind::String),
        _ => None,
    }
}

/// The reflect kind of a non-basic value, for `canCompare`.
fn reflect_kind(value: Option<&Value>) -> &'static str {
    match value {
        None => "invalid",
        Some(Value::List(_) | Value::Bytes(_)) => "slice",
        Some(Value::Map(_)) => "map",
        Some(Value::Object(object)) => object.kind(),
        Some(other) => other.kind_name(),
    }
}

fn builtin_eq(arg1: &Slot, rest: &[Slot]) -> std::result::Result<bool, String> {
    let a = concrete(arg1);
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic_kind(a);
    for arg in rest {
        let b = concrete(arg);
        let k2 = basic_kind(b);
        let truth = if k1 == k2 {
            match (a, b) {
                (Some(Value::Bool(x)), Some(Value::Bool(y))) => x == y,
                (Some(Value::Int(x, _)), Some(Value::Int(y, _))) => x == y,
                (Some(Value::Float(x)), Some(Value::Float(y))) => x == y,
                (Some(Value::String(x)), Some(Value::String(y))) => x == y,
                _ => {
                    let (kind_a, kind_b) = (reflect_kind(a), reflect_kind(b));
                    if kind_a != kind_b && kind_a != "invalid" && kind_b != "invalid" {
                        let (a, b) = (a.expect("valid"), b.expect("valid"));
                        return Err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            crate::fmt::format_value(a, 's'),
                            a.type_name(),
                            b.type_name(),
                            crate::fmt::format_value(b, 'v')
                        ));
                    }
                    match (a, b) {
                        (None, None) => true,
                        (None, Some(_)) | (Some(_), None) => false,
                        (Some(_), Some(b @ (Value::Map(_) | Value::List(_) | Value::Bytes(_)))) => {
                            return Err(format!(
                                "non-comparable type {}: {}",
                                crate::fmt::format_value(b, 's'),
                                b.type_name()
                            ));
                        }
                        (Some(Value::Object(x)), Some(Value::Object(y))) => Rc::ptr_eq(x, y),
                        (Some(x), Some(y)) => x == y,
                    }
                }
            }
        } else {
            if let (Some(a), Some(b)) = (a, b) {
                return Err(format!(
                    "incompatible types for comparison: {} and {}",
                    a.type_name(),
                    b.type_name()
                ));
            }
            false
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn builtin_lt(arg1: &Slot, arg2: &Slot) -> std::result::Result<bool, String> {
    let (a, b) = (concrete(arg1), concrete(arg2));
    let bad = || "invalid type for comparison".to_string();
    let k1 = basic_kind(a).ok_or_else(bad)?;
    let k2 = basic_kind(b).ok_or_else(bad)?;
    let (a, b) = (a.expect("basic"), b.expect("basic"));
    if k1 != k2 {
        return Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        ));
    }
    Ok(match (a, b) {
        (Value::Int(x, _), Value::Int(y, _)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::String(x), Value::String(y)) => x < y,
        _ => return Err(bad()),
    })
}

fn builtin_le(arg1: &Slot, arg2: &Slot) -> std::result::Result<bool, String> {
    if builtin_lt(arg1, arg2)? {
        return Ok(true);
    }
    builtin_eq(arg1, std::slice::from_ref(arg2))
}

/// Go's `evalArgs` for `html`, `js` and `urlquery`: one string as is, else `fmt.Sprint`
/// with nil printed as `<no value>`.
fn eval_args_text(values: &[Value]) -> String {
    if let [Value::String(text)] = values {
        return text.to_string();
    }
    let converted: Vec<Value> = values
        .iter()
        .map(|value| match value {
            Value::Nil => Value::string("<no value>"),
            other => other.clone(),
        })
        .collect();
    crate::fmt::sprint(&converted)
}

/// Go's `template.HTMLEscapeString`.
pub fn html_escape(text: &str) -> String {
    if !text.contains(['\'', '"', '&', '<', '>', '\0']) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for character in text.chars() {
        match character {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            other => out.push(other),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub fn js_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if (c as u32) < 0x80 => out.push(c),
            c if crate::strconv::is_print(c) => out.push(c),
            c => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn url_query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
