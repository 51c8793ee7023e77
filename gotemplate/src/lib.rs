//! Go's `text/template`, in Rust, for rendering Helm charts without Helm.
//!
//! The parts follow Go's package: [`parse`] turns template text into trees (with `define`d
//! templates split out), [`exec`] runs a tree over a [`Value`] with the semantics Go has
//! (pipelines, variables, `if`/`with`/`range`, missing keys, Go's type rules in comparisons),
//! the builtins (`and`, `eq`, `index`, `printf`, ...) come with every [`Functions`] table, and
//! [`fmt`] reproduces Go's `fmt` verbs. Extra functions (Sprig's, Helm's) are plain Rust
//! functions registered in a [`Functions`] table; the ones that render templates themselves
//! (`include`, `tpl`) reach the executor through [`Runtime`].

pub mod value;

use std::collections::HashMap;

pub use value::{IntKind, Map, Object, Value};

/// A template function, as registered in Go's `FuncMap`.
///
/// It gets the evaluated arguments and returns a value or an error message; the executor
/// adds the template, line and function name to the message.
pub type Function = fn(&mut dyn Runtime, &[Value]) -> Result<Value, String>;

/// What a [`Function`] can ask of the template run that called it.
pub trait Runtime {
    /// Executes the template `name` of the current set with `dot` as its data, returning
    /// its output (Helm's `include`).
    fn execute_named(&mut self, name: &str, dot: Value) -> Result<String, Error>;

    /// Parses `text` as a new template called `name` that sees every template of the
    /// current set, and executes it with `dot` (Helm's `tpl`).
    fn execute_text(&mut self, name: &str, text: &str, dot: Value) -> Result<String, Error>;
}

/// A table of named functions (Go's `FuncMap`).
#[derive(Clone, Default)]
pub struct Functions {
    table: HashMap<&'static str, Function>,
}

impl Functions {
    /// An empty table; the builtins are always available on top of it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a function.
    pub fn insert(&mut self, name: &'static str, function: Function) {
        self.table.insert(name, function);
    }

    /// Looks a function up.
    pub fn get(&self, name: &str) -> Option<Function> {
        self.table.get(name).copied()
    }

    /// Whether a function of this name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.table.contains_key(name)
    }
}

/// A parse or execution error, located as Go locates them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.go_message())]
pub struct Error {
    /// The template (file) name the error is in.
    pub template: String,
    /// 1-based line in that template, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The expression being evaluated (`<.Values.x>` in Go's messages), when executing.
    pub context: Option<String>,
    /// The function whose call failed, when a function failed.
    pub function: Option<String>,
    /// What went wrong.
    pub message: String,
}

impl Error {
    /// The message in Go's format: `template: NAME:LINE:COL: executing "NAME" at <X>: MESSAGE`.
    pub fn go_message(&self) -> String {
        let mut text = format!("template: {}", self.template);
        if let Some(line) = self.line {
            text.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                text.push_str(&format!(":{column}"));
            }
        }
        text.push_str(": ");
        if let Some(context) = &self.context {
            text.push_str(&format!("executing \"{}\" at <{context}>: ", self.template));
        }
        if let Some(function) = &self.function {
            text.push_str(&format!("error calling {function}: "));
        }
        text.push_str(&self.message);
        text
    }
}
