//! The typed Kubefile AST: one variant per instruction, every word with the span it came from.
//!
//! Words are kept as written (quotes, escapes and `$VARS` intact); ARG/ENV expansion happens
//! when the build plan is made ([`crate::plan`]), because build arguments are only known then.

mod parse;

use serde::Serialize;

pub use crate::lexer::Directive;
use crate::source::Span;
pub use parse::KEYWORDS;
pub(crate) use parse::{is_identifier as is_arg_name, parse_line};

/// A word of an instruction as written, with its place in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Word {
    /// The text as written (for JSON arrays: the decoded string).
    pub text: String,
    /// Where it is in the file.
    pub span: Span,
}

/// Whether arguments were written as a JSON array (`["a", "b"]`) or in shell form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgsForm {
    /// Whitespace-separated words, or one shell command.
    Shell,
    /// A JSON array of strings.
    Json,
}

/// A parsed Kubefile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kubefile {
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// Parser directives at the top of the file.
    pub directives: Vec<Directive>,
    /// Instructions in file order.
    pub instructions: Vec<Instruction>,
}

impl Kubefile {
    /// The value of a parser directive, such as `syntax`.
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// From the keyword to the end of the instruction (continuations and heredocs included).
    pub span: Span,
    /// The keyword as written.
    pub keyword_span: Span,
    /// What the instruction says.
    pub command: Command,
}

/// The instructions a Kubefile may contain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "UPPERCASE")]
pub enum Command {
    /// `FROM [--platform=P] image|scratch`
    From(From),
    /// `COPY [--from=image] [--chown=u:g] [--chmod=mode] src... dest`
    Copy(Copy),
    /// `ADD [--chown=u:g] [--chmod=mode] [--checksum=sha256:...] src... dest` (URLs, local tars)
    Add(Copy),
    /// `RUN [--network=default|none|host] command`
    Run(Run),
    /// `ARG name[=default] ...`
    Arg(Arg),
    /// `ENV key=value ...` or `ENV key value`
    Env(KeyValues),
    /// `LABEL key=value ...`
    Label(KeyValues),
    /// `MAINTAINER name`
    Maintainer(Text),
    /// `APP name local://path|https://url ...`
    App(App),
    /// `CNI name source...`: an APP that is the cluster's network plugin.
    Cni(App),
    /// `CSI name source...`: an APP that is the cluster's storage plugin.
    Csi(App),
    /// `APPCMDS name ["cmd", ...]`
    #[serde(rename = "APPCMDS")]
    AppCmds(AppCmds),
    /// `APPENV name key=value ...`
    #[serde(rename = "APPENV")]
    AppEnv(AppEnv),
    /// `KUBEVERSION range`
    #[serde(rename = "KUBEVERSION")]
    KubeVersion(Text),
    /// `LAUNCH ["app", ...]` or `LAUNCH app ...`
    Launch(Launch),
    /// `CMDS ["cmd", ...]` or `CMDS cmd`
    Cmds(Commands),
    /// Deprecated `CMD cmd` or `CMD ["cmd", ...]`
    Cmd(Commands),
}

impl Command {
    /// The instruction keyword in upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::From(_) => "FROM",
            Command::Copy(_) => "COPY",
            Command::Add(_) => "ADD",
            Command::Run(_) => "RUN",
            Command::Arg(_) => "ARG",
            Command::Env(_) => "ENV",
            Command::Label(_) => "LABEL",
            Command::Maintainer(_) => "MAINTAINER",
            Command::App(_) => "APP",
            Command::Cni(_) => "CNI",
            Command::Csi(_) => "CSI",
            Command::AppCmds(_) => "APPCMDS",
            Command::AppEnv(_) => "APPENV",
            Command::KubeVersion(_) => "KUBEVERSION",
            Command::Launch(_) => "LAUNCH",
            Command::Cmds(_) => "CMDS",
            Command::Cmd(_) => "CMD",
        }
    }
}

/// `FROM`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    /// `--platform=...`
    pub platform: Option<Word>,
    /// The image reference, or `scratch`.
    pub image: Word,
}

/// `COPY` and `ADD`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// `--from=<image>` (COPY only): copy out of another image instead of the context.
    pub from: Option<Word>,
    /// `--chown=user[:group]`
    pub chown: Option<Word>,
    /// `--chmod=mode`
    pub chmod: Option<Word>,
    /// `--checksum=sha256:...` (ADD only): expected digest of a URL source.
    pub checksum: Option<Word>,
    /// JSON or shell form.
    pub form: ArgsForm,
    /// One or more sources.
    pub sources: Vec<CopySource>,
    /// The destination in the rootfs.
    pub dest: Word,
}

/// A COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopySource {
    /// A path in the context (or in the `--from` image), a wildcard, or a URL.
    Path(Word),
    /// A file given inline as a heredoc.
    Heredoc(Heredoc),
}

/// A heredoc (`<<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word as written, such as `<<-"EOF"`.
    pub word: Word,
    /// The delimiter name (`EOF`), also the file name when used as a COPY source.
    pub name: String,
    /// `<<-`: leading tabs were removed from the body.
    pub strip_tabs: bool,
    /// False when the delimiter was quoted: the body is taken literally.
    pub expand: bool,
    /// The body, every line ending with a newline.
    pub content: String,
    /// Where the body is in the file.
    pub content_span: Span,
}

/// `RUN`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// `--network=default|none|host`
    pub network: Option<Word>,
    /// The command.
    pub command: RunCommand,
    /// Heredocs that follow the line; the shell reads them.
    pub heredocs: Vec<Heredoc>,
}

/// The command of a RUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunCommand {
    /// Shell form, run with `/bin/sh -c`.
    Shell(Word),
    /// Exec form: program and arguments.
    Exec(Vec<Word>),
}

/// `ARG`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arg {
    /// One or more declarations.
    pub args: Vec<ArgDecl>,
}

/// `name` or `name=default` in an ARG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    /// The argument name.
    pub name: Word,
    /// Its default value as written.
    pub default: Option<Word>,
}

/// `ENV` and `LABEL`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValues {
    /// The pairs in order.
    pub pairs: Vec<KeyValue>,
    /// Written in the legacy `KEY value` form (one pair, the value is the rest of the line).
    pub legacy: bool,
}

/// `key=value`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The key as written.
    pub key: Word,
    /// The value as written.
    pub value: Word,
}

/// An instruction whose argument is one piece of text (`MAINTAINER`, `KUBEVERSION`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Text {
    /// The text.
    pub text: Word,
}

/// `APP`, `CNI`, `CSI`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    /// JSON or shell form.
    pub form: ArgsForm,
    /// The app name.
    pub name: Word,
    /// `local://path` or `http(s)://url` sources.
    pub sources: Vec<Word>,
}

/// `APPCMDS`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppCmds {
    /// The app name.
    pub name: Word,
    /// Commands run in order, in the app's directory.
    pub commands: Vec<Word>,
}

/// `APPENV`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppEnv {
    /// The app name.
    pub name: Word,
    /// Variables for the app.
    pub pairs: Vec<KeyValue>,
}

/// `LAUNCH`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Launch {
    /// JSON or shell form.
    pub form: ArgsForm,
    /// Apps to launch, in order.
    pub apps: Vec<Word>,
}

/// `CMDS` and `CMD`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commands {
    /// JSON form (one command per element) or shell form (one command).
    pub form: ArgsForm,
    /// The commands.
    pub commands: Vec<Word>,
}
