//! Template text to trees, as Go's `text/template/parse` does it: the same tokens, the same
//! grammar, the same error messages (`template: NAME:LINE: MESSAGE`).
//!
//! [`parse`] returns every tree the text defines: the top-level one under the given name,
//! plus one per `{{define}}` and `{{block}}`.

#![allow(
    // Number literals are held under every Go type that can represent them, converted as Go does.
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::float_cmp,
    clippy::struct_excessive_bools,
    // Errors are boxed on purpose: they are large and rare, results are hot.
    clippy::unnecessary_box_returns
)]

mod lex;

use std::fmt::{self, Write as _};
use std::rc::Rc;

use crate::{Error, Functions, Value};
use lex::{Item, ItemType, Lexer};

/// A byte offset in the template text.
pub type Pos = usize;

/// Go's `maxStackDepth`: how deeply parenthesized pipelines may nest.
pub const MAX_PAREN_DEPTH: usize = 10_000;

/// How deeply control structures (`if`, `range`, `with`, `block`) may nest. Go has no such
/// limit; this one keeps pathological input from using unbounded memory and time.
pub const MAX_CONTROL_DEPTH: usize = 10_000;

const STACK_RED_ZONE: usize = 64 * 1024;
const STACK_GROWTH: usize = 1024 * 1024;

/// Runs `f` with enough stack, growing it on the heap when little is left.
pub(crate) fn with_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(STACK_RED_ZONE, STACK_GROWTH, f)
}

/// One parsed template (the top level of a file, or a `define`/`block` body).
#[derive(Debug)]
pub struct Tree {
    /// The template's name.
    pub name: String,
    /// The name of the top-level template the text was parsed as (the file), used in
    /// error locations.
    pub parse_name: Rc<str>,
    /// The body.
    pub root: ListNode,
    text: Rc<str>,
}

impl Tree {
    /// Go's `parse.IsEmptyTree`: nothing but white space and comments.
    pub fn is_empty(&self) -> bool {
        self.root.is_empty_tree()
    }

    /// The (line, column) of a position in this tree's text, as Go's `ErrorContext`
    /// computes them: 1-based line, byte offset from the start of the line.
    pub fn location(&self, pos: Pos) -> (usize, usize) {
        let pos = pos.min(self.text.len());
        let before = &self.text.as_bytes()[..pos];
        let line = 1 + lex::count_newlines_bytes(before);
        let column = match before.iter().rposition(|&byte| byte == b'\n') {
            Some(index) => pos - (index + 1),
            None => pos,
        };
        (line, column)
    }
}

/// A sequence of nodes.
#[derive(Debug, Default)]
pub struct ListNode {
    /// Where the list starts.
    pub pos: Pos,
    /// The nodes in order.
    pub nodes: Vec<Node>,
}

impl Drop for ListNode {
    fn drop(&mut self) {
        if self.nodes.iter().any(|node| {
            matches!(
                node,
                Node::If(_) | Node::Range(_) | Node::With(_) | Node::Action(_)
            )
        }) {
            let nodes = std::mem::take(&mut self.nodes);
            with_stack(move || drop(nodes));
        }
    }
}

impl ListNode {
    fn is_empty_tree(&self) -> bool {
        self.nodes.iter().all(|node| match node {
            Node::Text(text) => text
                .text
                .trim_matches([' ', '\t', '\r', '\n', '\u{b}', '\u{c}', '\u{85}', '\u{a0}'])
                .is_empty(),
            _ => false,
        })
    }

    fn write_to(&self, out: &mut String) {
        for node in &self.nodes {
            node.write_to(out);
        }
    }
}

/// A node of a template body.
#[derive(Debug)]
pub enum Node {
    /// Plain text.
    Text(TextNode),
    /// `{{pipeline}}`.
    Action(ActionNode),
    /// `{{if}}`.
    If(BranchNode),
    /// `{{range}}`.
    Range(BranchNode),
    /// `{{with}}`.
    With(BranchNode),
    /// `{{template "name" pipeline}}` (also what a `{{block}}` leaves in place).
    Template(TemplateNode),
    /// `{{break}}`.
    Break(Pos),
    /// `{{continue}}`.
    Continue(Pos),
}

/// Plain text.
#[derive(Debug)]
pub struct TextNode {
    /// Where it starts.
    pub pos: Pos,
    /// The text.
    pub text: Box<str>,
}

/// An action that evaluates a pipeline and prints it.
#[derive(Debug)]
pub struct ActionNode {
    /// Where the pipeline starts.
    pub pos: Pos,
    /// The line of the action.
    pub line: usize,
    /// The pipeline.
    pub pipe: PipeNode,
}

/// `if`, `range` and `with`.
#[derive(Debug)]
pub struct BranchNode {
    /// Where the pipeline starts.
    pub pos: Pos,
    /// The line of the action.
    pub line: usize,
    /// The controlling pipeline.
    pub pipe: PipeNode,
    /// What runs when the pipeline is non-empty.
    pub list: ListNode,
    /// What runs otherwise.
    pub else_list: Option<ListNode>,
}

/// `{{template "name" pipeline}}`.
#[derive(Debug)]
pub struct TemplateNode {
    /// Where the name starts.
    pub pos: Pos,
    /// The line of the action.
    pub line: usize,
    /// The template invoked.
    pub name: String,
    /// Its data.
    pub pipe: Option<PipeNode>,
}

/// A pipeline with optional variable declarations.
#[derive(Debug)]
pub struct PipeNode {
    /// Where it starts.
    pub pos: Pos,
    /// Its line.
    pub line: usize,
    /// `=` rather than `:=`.
    pub is_assign: bool,
    /// The variables declared or assigned, in order.
    pub decl: Vec<VariableNode>,
    /// The commands.
    pub cmds: Vec<CommandNode>,
}

impl Drop for PipeNode {
    fn drop(&mut self) {
        if self.cmds.iter().any(|cmd| {
            cmd.args
                .iter()
                .any(|arg| matches!(arg, Arg::Pipe(_) | Arg::Chain(_)))
        }) {
            let cmds = std::mem::take(&mut self.cmds);
            with_stack(move || drop(cmds));
        }
    }
}

/// A command: a function or method call, or a simple value.
#[derive(Debug)]
pub struct CommandNode {
    /// Where it starts.
    pub pos: Pos,
    /// The operands; the first is the function, method or value.
    pub args: Vec<Arg>,
}

/// `$x` or `$x.a.b`.
#[derive(Debug)]
pub struct VariableNode {
    /// Where it starts.
    pub pos: Pos,
    /// The variable name (with `$`) and the fields after it.
    pub ident: Vec<String>,
}

/// `(pipeline).a.b` or another term followed by fields.
#[derive(Debug)]
pub struct ChainNode {
    /// Where it starts.
    pub pos: Pos,
    /// The term.
    pub node: Arg,
    /// The fields.
    pub field: Vec<String>,
}

/// A number literal with its values under every type that can hold it (Go's ideal
/// constants).
#[derive(Debug)]
pub struct NumberNode {
    /// Where it is.
    pub pos: Pos,
    /// The literal text.
    pub text: String,
    /// Integral value.
    pub is_int: bool,
    /// Unsigned integral value.
    pub is_uint: bool,
    /// Floating-point value.
    pub is_float: bool,
    /// Complex value.
    pub is_complex: bool,
    /// As `int64`.
    pub int64: i64,
    /// As `uint64`.
    pub uint64: u64,
    /// As `float64`.
    pub float64: f64,
    /// Real and imaginary parts, when complex.
    pub complex: (f64, f64),
}

/// An operand of a command.
#[derive(Debug)]
pub enum Arg {
    /// A function name.
    Identifier(Pos, String),
    /// `.a.b`.
    Field(Pos, Vec<String>),
    /// `(x).a.b`.
    Chain(Box<ChainNode>),
    /// `$x.a`.
    Variable(VariableNode),
    /// A parenthesized pipeline.
    Pipe(Box<PipeNode>),
    /// `.`.
    Dot(Pos),
    /// `nil`.
    Nil(Pos),
    /// `true` or `false`.
    Bool(Pos, bool),
    /// A number or character constant.
    Number(Box<NumberNode>),
    /// A string literal: its position, its source text and its value.
    String(Pos, Box<str>, Value),
}

impl Arg {
    /// Where the operand starts.
    pub fn pos(&self) -> Pos {
        match self {
            Arg::Identifier(pos, _)
            | Arg::Field(pos, _)
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::String(pos, _, _) => *pos,
            Arg::Chain(chain) => chain.pos,
            Arg::Variable(variable) => variable.pos,
            Arg::Pipe(pipe) => pipe.pos,
            Arg::Number(number) => number.pos,
        }
    }

    pub(crate) fn write_to(&self, out: &mut String) {
        match self {
            Arg::Identifier(_, name) => out.push_str(name),
            Arg::Field(_, ident) => {
                for name in ident {
                    out.push('.');
                    out.push_str(name);
                }
            }
            Arg::Chain(chain) => {
                if let Arg::Pipe(pipe) = &chain.node {
                    out.push('(');
                    pipe.write_to(out);
                    out.push(')');
                } else {
                    chain.node.write_to(out);
                }
                for name in &chain.field {
                    out.push('.');
                    out.push_str(name);
                }
            }
            Arg::Variable(variable) => variable.write_to(out),
            Arg::Pipe(pipe) => pipe.write_to(out),
            Arg::Dot(_) => out.push('.'),
            Arg::Nil(_) => out.push_str("nil"),
            Arg::Bool(_, value) => out.push_str(if *value { "true" } else { "false" }),
            Arg::Number(number) => out.push_str(&number.text),
            Arg::String(_, quoted, _) => out.push_str(quoted),
        }
    }
}

impl VariableNode {
    pub(crate) fn write_to(&self, out: &mut String) {
        for (index, name) in self.ident.iter().enumerate() {
            if index > 0 {
                out.push('.');
            }
            out.push_str(name);
        }
    }
}

impl CommandNode {
    pub(crate) fn write_to(&self, out: &mut String) {
        for (index, arg) in self.args.iter().enumerate() {
            if index > 0 {
                out.push(' ');
            }
            if let Arg::Pipe(pipe) = arg {
                out.push('(');
                pipe.write_to(out);
                out.push(')');
                continue;
            }
            arg.write_to(out);
        }
    }
}

impl PipeNode {
    pub(crate) fn write_to(&self, out: &mut String) {
        with_stack(|| {
            if !self.decl.is_empty() {
                for (index, variable) in self.decl.iter().enumerate() {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    variable.write_to(out);
                }
                out.push_str(" := ");
            }
            for (index, cmd) in self.cmds.iter().enumerate() {
                if index > 0 {
                    out.push_str(" | ");
                }
                cmd.write_to(out);
            }
        });
    }
}

impl Node {
    pub(crate) fn write_to(&self, out: &mut String) {
        match self {
            Node::Text(text) => out.push_str(&text.text),
            Node::Action(action) => {
                out.push_str("{{");
                action.pipe.write_to(out);
                out.push_str("}}");
            }
            Node::If(branch) => branch.write_to("if", out),
            Node::Range(branch) => branch.write_to("range", out),
            Node::With(branch) => branch.write_to("with", out),
            Node::Template(template) => {
                out.push_str("{{template ");
                out.push_str(&crate::strconv::quote(&template.name));
                if let Some(pipe) = &template.pipe {
                    out.push(' ');
                    pipe.write_to(out);
                }
                out.push_str("}}");
            }
            Node::Break(_) => out.push_str("{{break}}"),
            Node::Continue(_) => out.push_str("{{continue}}"),
        }
    }

    /// Where the node starts.
    pub fn pos(&self) -> Pos {
        match self {
            Node::Text(text) => text.pos,
            Node::Action(action) => action.pos,
            Node::If(branch) | Node::Range(branch) | Node::With(branch) => branch.pos,
            Node::Template(template) => template.pos,
            Node::Break(pos) | Node::Continue(pos) => *pos,
        }
    }
}

impl BranchNode {
    fn write_to(&self, name: &str, out: &mut String) {
        with_stack(|| {
            out.push_str("{{");
            out.push_str(name);
            out.push(' ');
            self.pipe.write_to(out);
            out.push_str("}}");
            self.list.write_to(out);
            if let Some(else_list) = &self.else_list {
                out.push_str("{{else}}");
                else_list.write_to(out);
            }
            out.push_str("{{end}}");
        });
    }
}

macro_rules! display_via_write_to {
    ($($type:ty),*) => {$(
        impl fmt::Display for $type {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut out = String::new();
                self.write_to(&mut out);
                formatter.write_str(&out)
            }
        }
    )*};
}

display_via_write_to!(Node, Arg, PipeNode, CommandNode, VariableNode);

impl fmt::Display for ListNode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_to(&mut out);
        formatter.write_str(&out)
    }
}

/// Names every builtin function; a parsed identifier must be one of these or a function
/// of the table.
pub const BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

/// Whether `name` is a builtin function.
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// Parses `text` as the template `name`. Returns every tree it defines, in the order they
/// were completed (each `define`/`block` at its `{{end}}`, the top level last).
#[allow(clippy::result_large_err)] // Error is the crate's public error type.
pub fn parse(name: &str, text: &str, functions: &Functions) -> Result<Vec<Tree>, Error> {
    let text_rc: Rc<str> = Rc::from(text);
    let parse_name: Rc<str> = Rc::from(name);
    let has_function = |name: &str| functions.contains(name) || is_builtin(name);
    let mut parser = Parser {
        lex: Lexer::new(text, !has_function("break"), !has_function("continue")),
        token: [
            Item::placeholder(),
            Item::placeholder(),
            Item::placeholder(),
        ],
        peek_count: 0,
        vars: vec!["$".to_string()],
        functions,
        parse_name: parse_name.clone(),
        text: text_rc,
        action_line: 0,
        range_depth: 0,
        paren_depth: 0,
        control_depth: 0,
        trees: Vec::new(),
    };
    let root = parser.parse_top().map_err(|error| *error)?;
    let tree = Tree {
        name: name.to_string(),
        parse_name,
        root,
        text: parser.text.clone(),
    };
    parser.add(tree).map_err(|error| *error)?;
    Ok(parser.trees)
}

/// Errors travel boxed inside the parser.
type PResult<T> = Result<T, Box<Error>>;

struct Parser<'s, 'f> {
    lex: Lexer<'s>,
    token: [Item<'s>; 3],
    peek_count: usize,
    vars: Vec<String>,
    functions: &'f Functions,
    parse_name: Rc<str>,
    text: Rc<str>,
    action_line: usize,
    range_depth: usize,
    paren_depth: usize,
    control_depth: usize,
    trees: Vec<Tree>,
}

/// What an item list ended with (`{{else}}` keeps its position for `else if` lists).
enum ListEnd {
    End,
    Else(Pos),
}

/// The result of `textOrAction`: a node, or an `{{end}}`/`{{else}}` marker.
enum Parsed {
    Node(Node),
    End,
    Else(Pos),
}

impl<'s> Parser<'s, '_> {
    fn next(&mut self) -> Item<'s> {
        if self.peek_count > 0 {
            self.peek_count -= 1;
        } else {
            self.token[0] = self.lex.next_item();
        }
        self.token[self.peek_count].clone()
    }

    fn backup(&mut self) {
        self.peek_count += 1;
    }

    fn backup2(&mut self, t1: Item<'s>) {
        self.token[1] = t1;
        self.peek_count = 2;
    }

    fn backup3(&mut self, t2: Item<'s>, t1: Item<'s>) {
        self.token[1] = t1;
        self.token[2] = t2;
        self.peek_count = 3;
    }

    fn peek(&mut self) -> Item<'s> {
        if self.peek_count > 0 {
            return self.token[self.peek_count - 1].clone();
        }
        self.peek_count = 1;
        self.token[0] = self.lex.next_item();
        self.token[0].clone()
    }

    fn peek_type(&mut self) -> ItemType {
        if self.peek_count > 0 {
            return self.token[self.peek_count - 1].typ;
        }
        self.peek().typ
    }

    fn next_non_space(&mut self) -> Item<'s> {
        loop {
            let token = self.next();
            if token.typ != ItemType::Space {
                return token;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item<'s> {
        let token = self.next_non_space();
        self.backup();
        token
    }

    fn error(&self, message: impl Into<String>) -> Box<Error> {
        Box::new(Error {
            template: self.parse_name.to_string(),
            line: Some(self.token[0].line),
            column: None,
            context: None,
            function: None,
            message: message.into(),
        })
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> PResult<Item<'s>> {
        let token = self.next_non_space();
        if token.typ != expected {
            return Err(self.unexpected(&token, context));
        }
        Ok(token)
    }

    fn unexpected(&self, token: &Item<'s>, context: &str) -> Box<Error> {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(
                    " in action started at {}:{}",
                    self.parse_name, self.action_line
                );
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.error(format!("{token}{extra}"));
        }
        self.error(format!("unexpected {token} in {context}"))
    }

    fn has_function(&self, name: &str) -> bool {
        self.functions.contains(name) || is_builtin(name)
    }

    /// Go's `Tree.add` within one parse: a second non-empty definition is an error.
    fn add(&mut self, tree: Tree) -> PResult<()> {
        if let Some(index) = self.trees.iter().position(|old| old.name == tree.name) {
            if self.trees[index].is_empty() {
                self.trees[index] = tree;
                return Ok(());
            }
            if !tree.is_empty() {
                return Err(self.error(format!(
                    "template: multiple definition of template {}",
                    crate::strconv::quote(&tree.name)
                )));
            }
            return Ok(());
        }
        self.trees.push(tree);
        Ok(())
    }

    fn new_tree(&self, name: String, root: ListNode) -> Tree {
        Tree {
            name,
            parse_name: self.parse_name.clone(),
            root,
            text: self.text.clone(),
        }
    }

    /// The top level, which also parses `{{define}}`s. Runs to EOF.
    fn parse_top(&mut self) -> PResult<ListNode> {
        let mut root = ListNode {
            pos: self.peek().pos,
            nodes: Vec::new(),
        };
        while self.peek_type() != ItemType::Eof {
            if self.peek_type() == ItemType::LeftDelim {
                let delim = self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.backup2(delim);
            }
            match self.text_or_action()? {
                Parsed::End => return Err(self.error("unexpected {{end}}")),
                Parsed::Else(_) => return Err(self.error("unexpected {{else}}")),
                Parsed::Node(node) => root.nodes.push(node),
            }
        }
        Ok(root)
    }

    /// Saves the per-tree parser state and starts a fresh one (Go's `startParse` of a new
    /// tree sharing the lexer).
    fn start_nested_tree(&mut self) -> (Vec<String>, usize, usize, usize) {
        let saved = (
            std::mem::replace(&mut self.vars, vec!["$".to_string()]),
            self.action_line,
            self.range_depth,
            self.paren_depth,
        );
        self.action_line = 0;
        self.range_depth = 0;
        self.paren_depth = 0;
        saved
    }

    fn end_nested_tree(&mut self, saved: (Vec<String>, usize, usize, usize)) {
        self.vars = saved.0;
        self.action_line = saved.1;
        self.range_depth = saved.2;
        self.paren_depth = saved.3;
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let saved = self.start_nested_tree();
        let result = self.parse_definition_body();
        self.end_nested_tree(saved);
        let tree = result?;
        self.add(tree)
    }

    fn parse_definition_body(&mut self) -> PResult<Tree> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space();
        if token.typ != ItemType::String && token.typ != ItemType::RawString {
            return Err(self.unexpected(&token, CONTEXT));
        }
        let name = crate::strconv::unquote(&token.val)
            .map_err(|()| self.error(crate::strconv::INVALID_SYNTAX))?;
        self.expect(ItemType::RightDelim, CONTEXT)?;
        let (root, end) = self.item_list()?;
        if let ListEnd::Else(_) = end {
            return Err(self.error(format!("unexpected {{{{else}}}} in {CONTEXT}")));
        }
        Ok(self.new_tree(name, root))
    }

    /// `textOrAction*`, up to an `{{end}}` or `{{else}}`.
    fn item_list(&mut self) -> PResult<(ListNode, ListEnd)> {
        let mut list = ListNode {
            pos: self.peek_non_space().pos,
            nodes: Vec::new(),
        };
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Parsed::End => return Ok((list, ListEnd::End)),
                Parsed::Else(pos) => return Ok((list, ListEnd::Else(pos))),
                Parsed::Node(node) => list.nodes.push(node),
            }
        }
        Err(self.error("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => Ok(Parsed::Node(Node::Text(TextNode {
                pos: token.pos,
                text: token.val.into(),
            }))),
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let result = self.action();
                self.action_line = 0;
                result
            }
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => return self.block_control().map(Parsed::Node),
            ItemType::Break => return self.break_control(token.pos, "{{break}}", true),
            ItemType::Continue => return self.break_control(token.pos, "{{continue}}", false),
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            ItemType::If => return self.branch_control("if").map(Parsed::Node),
            ItemType::Range => return self.branch_control("range").map(Parsed::Node),
            ItemType::Template => return self.template_control().map(Parsed::Node),
            ItemType::With => return self.branch_control("with").map(Parsed::Node),
            _ => {}
        }
        self.backup();
        let token = self.peek();
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Parsed::Node(Node::Action(ActionNode {
            pos: token.pos,
            line: token.line,
            pipe,
        })))
    }

    fn break_control(&mut self, pos: Pos, context: &str, is_break: bool) -> PResult<Parsed> {
        let token = self.next_non_space();
        if token.typ != ItemType::RightDelim {
            return Err(self.unexpected(&token, context));
        }
        if self.range_depth == 0 {
            return Err(self.error(format!("{context} outside {{{{range}}}}")));
        }
        Ok(Parsed::Node(if is_break {
            Node::Break(pos)
        } else {
            Node::Continue(pos)
        }))
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            return Ok(Parsed::Else(peek.pos));
        }
        let token = self.expect(ItemType::RightDelim, "else")?;
        Ok(Parsed::Else(token.pos))
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<PipeNode> {
        let token = self.peek_non_space();
        let mut pipe = PipeNode {
            pos: token.pos,
            line: token.line,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations or assignments.
        loop {
            let variable = self.peek_non_space();
            if variable.typ != ItemType::Variable {
                break;
            }
            self.next();
            let token_after_variable = self.peek();
            let next = self.peek_non_space();
            if next.typ == ItemType::Assign || next.typ == ItemType::Declare {
                pipe.is_assign = next.typ == ItemType::Assign;
                self.next_non_space();
                pipe.decl.push(VariableNode {
                    pos: variable.pos,
                    ident: split_ident(&variable.val),
                });
                self.vars.push(variable.val.to_string());
            } else if next.typ == ItemType::Char && next.val == "," {
                self.next_non_space();
                pipe.decl.push(VariableNode {
                    pos: variable.pos,
                    ident: split_ident(&variable.val),
                });
                self.vars.push(variable.val.to_string());
                if context == "range" && pipe.decl.len() < 2 {
                    match self.peek_non_space().typ {
                        ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                            continue;
                        }
                        _ => return Err(self.error("range can only initialize variables")),
                    }
                }
                return Err(self.error(format!("too many declarations in {context}")));
            } else if token_after_variable.typ == ItemType::Space {
                self.backup3(variable, token_after_variable);
            } else {
                self.backup2(variable);
            }
            break;
        }
        loop {
            let token = self.next_non_space();
            if token.typ == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match token.typ {
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let command = self.command()?;
                    pipe.cmds.push(command);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &PipeNode, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.error(format!("missing value for {context}")));
        }
        for (index, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                cmd.args[0],
                Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(_) | Arg::String(..)
            ) {
                return Err(self.error(format!(
                    "non executable command in pipeline stage {}",
                    index + 1
                )));
            }
        }
        Ok(())
    }

    fn branch_control(&mut self, context: &'static str) -> PResult<Node> {
        if self.control_depth >= MAX_CONTROL_DEPTH {
            return Err(self.error("max control structure depth exceeded"));
        }
        self.control_depth += 1;
        let result = with_stack(|| self.parse_control(context));
        self.control_depth -= 1;
        let branch = result?;
        Ok(match context {
            "if" => Node::If(branch),
            "range" => Node::Range(branch),
            _ => Node::With(branch),
        })
    }

    fn parse_control(&mut self, context: &'static str) -> PResult<BranchNode> {
        let vars = self.vars.len();
        let result = self.parse_control_inner(context);
        self.vars.truncate(vars);
        result
    }

    fn parse_control_inner(&mut self, context: &'static str) -> PResult<BranchNode> {
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = listed?;
        let mut else_list = None;
        if let ListEnd::Else(pos) = next {
            // `{{else if}}` and `{{else with}}` are `{{else}}{{if}}...{{end}}{{end}}`.
            if context == "if" && self.peek_type() == ItemType::If {
                self.next();
                let node = self.branch_control("if")?;
                else_list = Some(ListNode {
                    pos,
                    nodes: vec![node],
                });
            } else if context == "with" && self.peek_type() == ItemType::With {
                self.next();
                let node = self.branch_control("with")?;
                else_list = Some(ListNode {
                    pos,
                    nodes: vec![node],
                });
            } else {
                let (list, next) = self.item_list()?;
                if let ListEnd::Else(_) = next {
                    return Err(self.error("expected end; found {{else}}"));
                }
                else_list = Some(list);
            }
        }
        Ok(BranchNode {
            pos: pipe.pos,
            line: pipe.line,
            pipe,
            list,
            else_list,
        })
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemType::RightDelim)?;
        if self.control_depth >= MAX_CONTROL_DEPTH {
            return Err(self.error("max control structure depth exceeded"));
        }
        self.control_depth += 1;
        let saved = self.start_nested_tree();
        let result = with_stack(|| self.item_list());
        self.end_nested_tree(saved);
        self.control_depth -= 1;
        let (root, end) = result?;
        if let ListEnd::Else(_) = end {
            return Err(self.error(format!("unexpected {{{{else}}}} in {CONTEXT}")));
        }
        let tree = self.new_tree(name.clone(), root);
        self.add(tree)?;
        Ok(Node::Template(TemplateNode {
            pos: token.pos,
            line: token.line,
            name,
            pipe: Some(pipe),
        }))
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, ItemType::RightDelim)?);
        }
        Ok(Node::Template(TemplateNode {
            pos: token.pos,
            line: token.line,
            name,
            pipe,
        }))
    }

    fn parse_template_name(&self, token: &Item<'s>, context: &str) -> PResult<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => crate::strconv::unquote(&token.val)
                .map_err(|()| self.error(crate::strconv::INVALID_SYNTAX)),
            _ => Err(self.unexpected(token, context)),
        }
    }

    fn command(&mut self) -> PResult<CommandNode> {
        let mut cmd = CommandNode {
            pos: self.peek_non_space().pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                cmd.args.push(operand);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.error("empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek_type() != ItemType::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek_type() == ItemType::Field {
            let token = self.next();
            fields.push(token.val[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field(_, mut ident) => {
                ident.extend(fields);
                Arg::Field(pos, ident)
            }
            Arg::Variable(mut variable) => {
                variable.ident.extend(fields);
                variable.pos = pos;
                Arg::Variable(variable)
            }
            Arg::Bool(..) | Arg::String(..) | Arg::Number(_) | Arg::Nil(_) | Arg::Dot(_) => {
                let mut text = String::new();
                node.write_to(&mut text);
                return Err(self.error(format!(
                    "unexpected . after term {}",
                    crate::strconv::quote(&text)
                )));
            }
            node => Arg::Chain(Box::new(ChainNode {
                pos,
                node,
                field: fields,
            })),
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        Ok(Some(match token.typ {
            ItemType::Identifier => {
                if !self.has_function(&token.val) {
                    return Err(self.error(format!(
                        "function {} not defined",
                        crate::strconv::quote(&token.val)
                    )));
                }
                Arg::Identifier(token.pos, token.val.into_owned())
            }
            ItemType::Dot => Arg::Dot(token.pos),
            ItemType::Nil => Arg::Nil(token.pos),
            ItemType::Variable => {
                let ident = split_ident(&token.val);
                if !self.vars.iter().any(|name| *name == ident[0]) {
                    return Err(self.error(format!(
                        "undefined variable {}",
                        crate::strconv::quote(&ident[0])
                    )));
                }
                Arg::Variable(VariableNode {
                    pos: token.pos,
                    ident,
                })
            }
            ItemType::Field => Arg::Field(token.pos, split_ident(&token.val[1..])),
            ItemType::Bool => Arg::Bool(token.pos, token.val == "true"),
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                let number = new_number(token.pos, &token.val, token.typ)
                    .map_err(|message| self.error(message))?;
                Arg::Number(Box::new(number))
            }
            ItemType::LeftParen => {
                if self.paren_depth >= MAX_PAREN_DEPTH {
                    return Err(self.error("max expression depth exceeded"));
                }
                self.paren_depth += 1;
                let result =
                    with_stack(|| self.pipeline("parenthesized pipeline", ItemType::RightParen));
                self.paren_depth -= 1;
                Arg::Pipe(Box::new(result?))
            }
            ItemType::String | ItemType::RawString => {
                let text = crate::strconv::unquote(&token.val)
                    .map_err(|()| self.error(crate::strconv::INVALID_SYNTAX))?;
                Arg::String(token.pos, token.val.as_ref().into(), Value::string(text))
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

fn split_ident(text: &str) -> Vec<String> {
    text.split('.').map(str::to_string).collect()
}

/// Go's `newNumber`: the value of a number or character literal under every type that can
/// represent it.
fn new_number(pos: Pos, text: &str, typ: ItemType) -> Result<NumberNode, String> {
    use crate::strconv::{parse_float, parse_int, parse_uint, unquote_char};
    let mut node = NumberNode {
        pos,
        text: text.to_string(),
        is_int: false,
        is_uint: false,
        is_float: false,
        is_complex: false,
        int64: 0,
        uint64: 0,
        float64: 0.0,
        complex: (0.0, 0.0),
    };
    match typ {
        ItemType::CharConstant => {
            let (value, _, tail) = unquote_char(&text[1..], b'\'')
                .map_err(|()| crate::strconv::INVALID_SYNTAX.to_string())?;
            if tail != "'" {
                return Err(format!("malformed character constant: {text}"));
            }
            node.int64 = i64::from(value);
            node.is_int = true;
            node.uint64 = u64::from(value);
            node.is_uint = true;
            node.float64 = f64::from(value);
            node.is_float = true;
            return Ok(node);
        }
        ItemType::Complex => {
            // "re+imi" or "re-imi": split at the sign that starts the imaginary part.
            let body = &text[..text.len() - 1];
            let split = body
                .char_indices()
                .skip(1)
                .filter(|&(index, c)| {
                    (c == '+' || c == '-')
                        && !matches!(body.as_bytes()[index - 1], b'e' | b'E' | b'p' | b'P')
                })
                .map(|(index, _)| index)
                .last()
                .ok_or_else(|| "expected integer".to_string())?;
            let real = parse_float(&body[..split]).map_err(|_| "expected integer".to_string())?;
            let imaginary =
                parse_float(&body[split..]).map_err(|_| "expected integer".to_string())?;
            node.is_complex = true;
            node.complex = (real, imaginary);
            simplify_complex(&mut node);
            return Ok(node);
        }
        _ => {}
    }
    if let Some(body) = text.strip_suffix('i')
        && let Ok(imaginary) = parse_float(body)
    {
        node.is_complex = true;
        node.complex = (0.0, imaginary);
        simplify_complex(&mut node);
        return Ok(node);
    }
    let unsigned = parse_uint(text);
    if let Ok(value) = unsigned {
        node.is_uint = true;
        node.uint64 = value;
    }
    if let Ok(value) = parse_int(text) {
        node.is_int = true;
        node.int64 = value;
        if value == 0 {
            node.is_uint = true;
            node.uint64 = unsigned.unwrap_or(0);
        }
    }
    if node.is_int {
        node.is_float = true;
        node.float64 = node.int64 as f64;
    } else if node.is_uint {
        node.is_float = true;
        node.float64 = node.uint64 as f64;
    } else if let Ok(value) = parse_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", crate::strconv::quote(text)));
        }
        node.is_float = true;
        node.float64 = value;
        if !node.is_int && float_is_int64(value) {
            node.is_int = true;
            node.int64 = value as i64;
        }
        if !node.is_uint && float_is_uint64(value) {
            node.is_uint = true;
            node.uint64 = value as u64;
        }
    }
    if !node.is_int && !node.is_uint && !node.is_float {
        return Err(format!(
            "illegal number syntax: {}",
            crate::strconv::quote(text)
        ));
    }
    Ok(node)
}

/// Whether `float64(int64(f)) == f` holds in Go (conversions of out-of-range floats are
/// implementation-defined there; amd64 yields the minimum int64).
fn float_is_int64(value: f64) -> bool {
    (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&value)
        && (value as i64) as f64 == value
}

fn float_is_uint64(value: f64) -> bool {
    (0.0..18_446_744_073_709_551_616.0).contains(&value) && (value as u64) as f64 == value
}

fn simplify_complex(node: &mut NumberNode) {
    node.is_float = node.complex.1 == 0.0;
    if node.is_float {
        node.float64 = node.complex.0;
        node.is_int = float_is_int64(node.float64);
        if node.is_int {
            node.int64 = node.float64 as i64;
        }
        node.is_uint = float_is_uint64(node.float64);
        if node.is_uint {
            node.uint64 = node.float64 as u64;
        }
    }
}

// Keep `Write` in scope for the `write!` calls some Display impls may grow.
#[allow(dead_code)]
fn _uses_write(out: &mut String) {
    let _ = write!(out, "");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(text: &str) -> String {
        parse("t", text, &Functions::new()).unwrap_err().to_string()
    }

    #[test]
    fn parse_errors_are_worded_as_go() {
        for (text, message) in [
            ("{{/* c */ }}x", "comment ends before closing delimiter"),
            ("{{ /* c */}}x", "unexpected \"/\" in command"),
            ("{{/* c", "unclosed comment"),
            ("{{ \"abc }}", "unterminated quoted string"),
            ("{{ `abc }}", "unterminated raw quoted string"),
            ("{{ 3x }}", "bad number syntax: \"3x\""),
            ("{{ .a# }}", "bad character U+0023 '#'"),
            ("{{ ) }}", "unexpected right paren"),
            ("{{ print ) }}", "unexpected right paren"),
            ("{{ ( }}", "unclosed left paren"),
            ("{{ .a ", "unclosed action"),
            ("{{ \\u0001 }}", "unexpected \"\\\\\" in command"),
            ("{{ }}", "missing value for command"),
            ("{{ end }}", "unexpected {{end}}"),
            ("{{ else }}", "unexpected {{else}}"),
            ("{{ if }}{{ end }}", "missing value for if"),
            ("{{ if .a }}", "unexpected EOF"),
            (
                "{{ if .a }}{{ else }}{{ else }}{{ end }}",
                "expected end; found {{else}}",
            ),
            (
                "{{ range $i, $v, $w := . }}{{ end }}",
                "too many declarations in range",
            ),
            (
                "{{ range $i, 3 := . }}{{ end }}",
                "range can only initialize variables",
            ),
            ("{{ $x, $y := 1 }}", "too many declarations in command"),
            ("{{ $x := 1 | $y := 2 }}", "undefined variable \"$y\""),
            ("{{ foo }}", "function \"foo\" not defined"),
            (
                "{{ if false }}{{ foo }}{{ end }}",
                "function \"foo\" not defined",
            ),
            ("{{ $x }}", "undefined variable \"$x\""),
            ("{{ break }}", "{{break}} outside {{range}}"),
            ("{{ continue }}", "{{continue}} outside {{range}}"),
            (
                "{{ range . }}{{ break 1 }}{{ end }}",
                "unexpected \"1\" in {{break}}",
            ),
            (
                "{{ range . }}{{ block \"b\" . }}{{ break }}{{ end }}{{ end }}",
                "{{break}} outside {{range}}",
            ),
            (
                "{{ $x := 1 }}{{ define \"a\" }}{{ $x }}{{ end }}",
                "undefined variable \"$x\"",
            ),
            (
                "{{ define \"a\" }}x{{ end }}{{ define \"a\" }}y{{ end }}",
                "template: multiple definition of template \"a\"",
            ),
            (
                "{{ define a }}{{ end }}",
                "unexpected \"a\" in define clause",
            ),
            (
                "{{ define \"a\" 1 }}{{ end }}",
                "unexpected \"1\" in define clause",
            ),
            (
                "{{ define \"a\" }}{{ else }}{{ end }}",
                "unexpected {{else}} in define clause",
            ),
            (
                "{{ if 1 }}{{ define \"a\" }}{{ end }}{{ end }}",
                "unexpected <define> in command",
            ),
            ("{{ template a }}", "unexpected \"a\" in template clause"),
            (
                "{{ \"a\" | \"b\" }}",
                "non executable command in pipeline stage 2",
            ),
            (
                "{{ .a | nil }}",
                "non executable command in pipeline stage 2",
            ),
            ("{{ 1.2.3 }}", "unexpected \".3\" in operand"),
            ("{{ \"a\".b }}", "unexpected . after term \"\\\"a\\\"\""),
            ("{{ nil.y }}", "unexpected . after term \"nil\""),
            ("{{ \"\\q\" }}", "invalid syntax"),
            ("{{ 'ab' }}", "malformed character constant: 'ab'"),
            ("{{ '\n' }}", "unterminated character constant"),
            ("{{ '' }}", "invalid syntax"),
            ("{{ 0x }}", "illegal number syntax: \"0x\""),
            ("{{ 1__0 }}", "illegal number syntax: \"1__0\""),
            ("{{ - }}", "illegal number syntax: \"-\""),
            ("{{ 08 }}", "integer overflow: \"08\""),
        ] {
            assert_eq!(
                parse_error(text),
                format!("template: t:1: {message}"),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse_error("a\nb\n{{ if .x }}\n\n{{ else }}\n{{ end"),
            "template: t:6: unclosed action"
        );
        assert_eq!(
            parse_error("{{ 3 \n 4 \n\n (}}"),
            "template: t:4: unclosed left paren in action started at t:1"
        );
        assert_eq!(
            parse_error("{{ if true }}\n{{ \"abc\n}}"),
            "template: t:2: unterminated quoted string"
        );
        assert_eq!(
            parse_error("{{ if\n.a\n\"x }}"),
            "template: t:3: unterminated quoted string in action started at t:1"
        );
        assert_eq!(
            parse_error("{{/*\n\n*/}}\n{{ nope }}"),
            "template: t:4: function \"nope\" not defined"
        );
    }

    #[test]
    fn defines_and_blocks_become_trees() {
        let trees = parse(
            "file.tpl",
            "{{ define \"a\" }}A{{ end }}x{{ block \"b\" . }}B{{ end }}",
            &Functions::new(),
        )
        .unwrap();
        let names: Vec<&str> = trees.iter().map(|tree| tree.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "file.tpl"]);
        assert!(trees.iter().all(|tree| &*tree.parse_name == "file.tpl"));
        assert_eq!(trees[2].root.to_string(), "x{{template \"b\" .}}");
        assert!(parse("e", " \n{{/* c */}}\t", &Functions::new()).unwrap()[0].is_empty());
        assert!(!parse("e", "{{ 1 }}", &Functions::new()).unwrap()[0].is_empty());
    }

    #[test]
    fn nodes_print_as_go_prints_them() {
        let trees = parse(
            "t",
            "{{ $x := .a.b | printf \"%s\" (.c).d $y.e }}{{ if .a }}x{{ else }}y{{ end }}{{ range $i, $v := . }}{{ end }}{{ with 1 }}{{ end }}",
            &Functions::new(),
        )
        .unwrap_err();
        assert_eq!(trees.message, "undefined variable \"$y\"");
        let trees = parse(
            "t",
            "{{ $x := .a.b | printf \"%s\" (.c).d $x.e 1.5 nil true }}{{ if .a }}x{{ else }}y{{ end }}{{ range $i, $v := . }}{{ end }}",
            &Functions::new(),
        )
        .unwrap();
        assert_eq!(
            trees[0].root.to_string(),
            "{{$x := .a.b | printf \"%s\" (.c).d $x.e 1.5 nil true}}{{if .a}}x{{else}}y{{end}}{{range $i, $v := .}}{{end}}"
        );
    }

    #[test]
    fn trimming_and_comments() {
        let trees = parse(
            "t",
            "a  \n {{- 3 -}} \n b {{- /* c */ -}} c{{/* d */}}",
            &Functions::new(),
        )
        .unwrap();
        assert_eq!(trees[0].root.to_string(), "a{{3}}bc");
    }

    #[test]
    fn break_and_continue_are_functions_when_defined() {
        #[allow(clippy::unnecessary_wraps)]
        fn f(_: &mut dyn crate::Runtime, _: &[Value]) -> Result<Value, String> {
            Ok(Value::Nil)
        }
        let mut table = Functions::new();
        table.insert("break", f);
        assert!(parse("t", "{{ break }}", &table).is_ok());
    }
}
