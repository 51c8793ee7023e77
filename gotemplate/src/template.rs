//! A set of templates that can call each other (Go's `*template.Template` and its
//! associated templates).

// Error is the crate's public error type, returned as is.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::rc::Rc;

use crate::exec::{self, ExecOptions};
use crate::parse::{self, Tree};
use crate::{Error, Functions, Value};

/// A set of named templates sharing one function table: every file of a chart and every
/// `define` in them.
///
/// Parsing a text registers its top-level tree under the given name and every
/// `define`/`block` it contains under theirs. A later definition of a name replaces an
/// earlier one, except that an empty (white space and comments only) body never replaces
/// an existing template, as Go's `AddParseTree` does.
#[derive(Clone)]
pub struct Templates {
    name: String,
    functions: Functions,
    trees: HashMap<String, Rc<Tree>>,
}

impl Templates {
    /// An empty set using `functions` on top of the builtins.
    pub fn new(functions: Functions) -> Self {
        Templates {
            name: String::new(),
            functions,
            trees: HashMap::new(),
        }
    }

    /// Names the set itself, as Go's `template.New(name)` does; the name shows in
    /// `no template "x" associated with template "NAME"` (Helm's is `gotpl`).
    #[must_use]
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The set's own name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The function table.
    pub fn functions(&self) -> &Functions {
        &self.functions
    }

    /// Parses `text` as the template `name` and adds every tree it defines. On a parse
    /// error nothing is added.
    pub fn parse(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let trees = parse::parse(name, text, &self.functions)?;
        for tree in trees {
            self.add_tree(tree);
        }
        Ok(())
    }

    /// Adds one parsed tree under its name with Go's rule: an empty tree does not replace
    /// an existing template. Returns whether the tree was added.
    pub fn add_tree(&mut self, tree: Tree) -> bool {
        if tree.is_empty() && self.trees.contains_key(&tree.name) {
            return false;
        }
        self.trees.insert(tree.name.clone(), Rc::new(tree));
        true
    }

    /// Whether a template of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// The tree of a template.
    pub fn lookup(&self, name: &str) -> Option<&Tree> {
        self.trees.get(name).map(Rc::as_ref)
    }

    pub(crate) fn lookup_rc(&self, name: &str) -> Option<&Rc<Tree>> {
        self.trees.get(name)
    }

    /// The names of all templates (in no particular order).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.trees.keys().map(String::as_str)
    }

    /// How many templates the set holds.
    pub fn len(&self) -> usize {
        self.trees.len()
    }

    /// Whether the set holds no template.
    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }

    /// Executes the template `name` with `dot` as its data and returns the output. A
    /// missing value prints as `<no value>`, as in Go (Helm removes those afterwards).
    pub fn execute(&self, name: &str, dot: Value, options: &ExecOptions) -> Result<String, Error> {
        let mut out = String::new();
        self.execute_into(name, dot, options, &mut out)?;
        Ok(out)
    }

    /// Like [`execute`](Self::execute), appending to `out`; on error, `out` holds the
    /// output written before the failure.
    pub fn execute_into(
        &self,
        name: &str,
        dot: Value,
        options: &ExecOptions,
        out: &mut String,
    ) -> Result<(), Error> {
        let Some(tree) = self.trees.get(name) else {
            return Err(self.no_template(name));
        };
        exec::execute_tree(self, tree, dot, options, out).map_err(|error| *error)
    }

    /// Parses `text` as a new template called `name` that sees every template of the set
    /// (its own `define`s shadow the set's for this run only) and executes it with `dot`:
    /// what Helm's `tpl` does.
    pub fn execute_text(
        &self,
        name: &str,
        text: &str,
        dot: Value,
        options: &ExecOptions,
    ) -> Result<String, Error> {
        exec::execute_text_in(self, &[], name, text, dot, options, 0, &mut 0)
            .map_err(|error| *error)
    }

    pub(crate) fn no_template(&self, name: &str) -> Error {
        Error {
            template: String::new(),
            line: None,
            column: None,
            context: None,
            function: None,
            message: format!(
                "no template {} associated with template {}",
                crate::strconv::quote(name),
                crate::strconv::quote(&self.name)
            ),
        }
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        formatter
            .debug_struct("Templates")
            .field("name", &self.name)
            .field("templates", &names)
            .finish_non_exhaustive()
    }
}
