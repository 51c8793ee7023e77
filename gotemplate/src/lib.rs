//! Go's `text/template`, in Rust, for rendering Helm charts without Helm.
//!
//! The parts follow Go's package: [`parse`] turns template text into trees (with `define`d
//! templates split out), [`exec`] runs a tree over a [`Value`] with the semantics Go has
//! (pipelines, variables, `if`/`with`/`range`, missing keys, Go's type rules in comparisons),
//! the builtins (`and`, `eq`, `index`, `printf`, ...) come with every [`Functions`] table, and
//! [`fmt`] reproduces Go's `fmt` verbs. Extra functions (Sprig's, Helm's) are plain Rust
//! functions registered in a [`Functions`] table; the ones that render templates themselves
//! (`include`, `tpl`) reach the executor through [`Runtime`].

pub mod exec;
pub mod fmt;
pub mod parse;
pub mod strconv;
mod template;
pub mod value;

use std::collections::HashMap;

pub use exec::{ExecOptions, MissingKey};
pub use template::Templates;
pub use value::{IntKind, Map, Object, Value};

/// A template function, as registered in Go's `FuncMap`.
///
/// It gets the evaluated arguments and returns a value or an error message; the executor
/// adds the template, line and function name to the message.
pub type Function = fn(&mut dyn Runtime, &[Value]) -> Result<Value, String>;

/// What a [`Function`] can ask of the template run that called it.
#[allow(clippy::result_large_err)] // Error is the crate's public error type.
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
    signatures: HashMap<&'static str, Signature>,
}

/// The Go type of a function parameter, when a function declares its [`Signature`].
///
/// The executor then treats arguments as Go does for a typed parameter: literals must be
/// of the right kind (`expected integer; found "x"`), other values must have the type
/// (`wrong type for value; expected string; got float64`), and `nil` is accepted only
/// where Go accepts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    /// `interface {}`: anything.
    Any,
    /// `string`.
    String,
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `int64`.
    Int64,
    /// `float64`.
    Float64,
    /// A map type, named as Go prints it (`map[string]interface {}`, `chartutil.Values`).
    Map(&'static str),
    /// A slice type, named as Go prints it (`[]interface {}`).
    List(&'static str),
}

impl ArgType {
    /// The Go type name, as error messages print it.
    pub fn go_name(&self) -> &'static str {
        match self {
            ArgType::Any => "interface {}",
            ArgType::String => "string",
            ArgType::Bool => "bool",
            ArgType::Int => "int",
            ArgType::Int64 => "int64",
            ArgType::Float64 => "float64",
            ArgType::Map(name) | ArgType::List(name) => name,
        }
    }
}

/// A function's Go parameter list: fixed parameters, then optionally a variadic one.
/// With it, the executor reports Go's `wrong number of args for NAME: want N got M` and
/// checks argument types before the call.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Signature {
    /// The fixed parameters.
    pub params: Vec<ArgType>,
    /// The type of each variadic argument (`...T`), if the function is variadic.
    pub variadic: Option<ArgType>,
}

impl Signature {
    /// Fixed parameters only.
    pub fn fixed(params: &[ArgType]) -> Self {
        Signature {
            params: params.to_vec(),
            variadic: None,
        }
    }

    /// Fixed parameters followed by `...variadic`.
    pub fn variadic(params: &[ArgType], variadic: ArgType) -> Self {
        Signature {
            params: params.to_vec(),
            variadic: Some(variadic),
        }
    }
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

    /// Adds or replaces a function together with its Go parameter types.
    pub fn insert_typed(&mut self, name: &'static str, function: Function, signature: Signature) {
        self.table.insert(name, function);
        self.signatures.insert(name, signature);
    }

    /// Declares the Go parameter types of a function (registered or not yet).
    pub fn set_signature(&mut self, name: &'static str, signature: Signature) {
        self.signatures.insert(name, signature);
    }

    /// The declared parameter types of a function, if any.
    pub fn signature(&self, name: &str) -> Option<&Signature> {
        self.signatures.get(name)
    }

    /// The names of the registered functions (in no particular order).
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.table.keys().copied()
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
    /// Column, when known, as Go counts it: the byte offset of the node from the start of
    /// its line (the first column is 0).
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
    ///
    /// An error with an empty `template` (such as Go's `no template "x" associated with
    /// template "y"`) prints as `template: MESSAGE`.
    pub fn go_message(&self) -> String {
        use std::fmt::Write as _;
        let mut text = String::from("template: ");
        if self.template.is_empty() && self.line.is_none() && self.context.is_none() {
            if let Some(function) = &self.function {
                let _ = write!(text, "error calling {function}: ");
            }
            text.push_str(&self.message);
            return text;
        }
        text.push_str(&self.template);
        if let Some(line) = self.line {
            let _ = write!(text, ":{line}");
            if let Some(column) = self.column {
                let _ = write!(text, ":{column}");
            }
        }
        text.push_str(": ");
        if let Some(context) = &self.context {
            let _ = write!(text, "executing \"{}\" at <{context}>: ", self.template);
        }
        if let Some(function) = &self.function {
            let _ = write!(text, "error calling {function}: ");
        }
        text.push_str(&self.message);
        text
    }
}
