//! `.dockerignore` files, read and matched exactly as Docker and BuildKit do: BuildKit's
//! reader (comments, trimming, path cleaning, a leading `/` dropped) feeding moby's
//! `patternmatcher` (patterns turned into the same regular expressions, the same fast paths for
//! `**` prefixes and suffixes, and `MatchesOrParentMatches`: a path is excluded when it or one of
//! its parent directories matches, the last matching pattern winning, `!` re-including).
//!
//! Walks use [`DockerIgnore::dir_state`] and [`DockerIgnore::is_excluded_in`] so that the
//! parents of each path are matched once per directory rather than once per file, and
//! [`DockerIgnore::may_include_below`] to skip excluded directories whole, with Docker's own rule
//! for when that is allowed.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use regex::Regex;

/// The patterns of a `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    /// The patterns as BuildKit's reader gives them (exceptions keep their `!`).
    cleaned: Vec<String>,
    patterns: Vec<Pattern>,
    has_exceptions: bool,
}

/// Why a `.dockerignore` file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    /// A line holds a pattern Docker would refuse.
    #[error("{}line {line}: invalid pattern `{pattern}`: {reason}; fix or remove the line", file_prefix(file.as_deref()))]
    Pattern {
        /// The ignore file, when the patterns came from one.
        file: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
        /// The line's pattern as written (trimmed).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pattern of a list (not of a file) is one Docker would refuse.
    #[error("exclude pattern {position} `{pattern}` is invalid: {reason}")]
    ListPattern {
        /// 1-based position of the pattern in the list.
        position: usize,
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The ignore file exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The ignore file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

fn file_prefix(file: Option<&Path>) -> String {
    file.map(|f| format!("{}: ", f.display()))
        .unwrap_or_default()
}

/// What the patterns say about one directory: for each pattern, whether it matches the
/// directory or one of its parents. Made by [`DockerIgnore::dir_state`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirState {
    matched: Vec<bool>,
}

/// How a pattern is matched, as patternmatcher decides it.
#[derive(Debug, Clone)]
enum Matcher {
    /// No wildcard: the path equals the pattern.
    Exact(String),
    /// `prefix/**` and nothing else wild: the path starts with `prefix/`.
    Prefix(String),
    /// `**` then no wildcard: the path ends with the rest (or is it, without its leading `/`).
    Suffix(String),
    /// Anything else: the translated regular expression.
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct Pattern {
    exception: bool,
    matcher: Matcher,
    /// The pattern without its `!`, for [`DockerIgnore::may_include_below`].
    text: String,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(pattern) => path == pattern,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Matcher::Regex(regex) => regex.is_match(path),
        }
    }
}

impl DockerIgnore {
    /// Reads `.dockerignore` text. Errors name the line of the first invalid pattern.
    pub fn parse(text: &str) -> Result<DockerIgnore, IgnoreError> {
        let mut ignore = DockerIgnore::default();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let Some(cleaned) = reader_pattern(line) else {
                continue;
            };
            let invalid = |reason: String| IgnoreError::Pattern {
                file: None,
                line: index + 1,
                pattern: line.trim().to_owned(),
                reason,
            };
            let pattern = compile(&cleaned).map_err(invalid)?;
            ignore.has_exceptions |= pattern.exception;
            ignore.patterns.push(pattern);
            ignore.cleaned.push(cleaned);
        }
        Ok(ignore)
    }

    /// Patterns already read, such as the exclude patterns a BuildKit daemon sends with a
    /// FileSync request, compiled as patternmatcher's `New` does: each is trimmed, an empty
    /// one is skipped, the rest is cleaned and a leading `!` makes an exception. Unlike
    /// [`DockerIgnore::parse`] nothing is a comment: a pattern starting with `#` is a pattern.
    pub fn from_patterns(patterns: &[String]) -> Result<DockerIgnore, IgnoreError> {
        let mut ignore = DockerIgnore::default();
        for (index, given) in patterns.iter().enumerate() {
            let trimmed = given.trim();
            if trimmed.is_empty() {
                continue;
            }
            let pattern = compile(trimmed).map_err(|reason| IgnoreError::ListPattern {
                position: index + 1,
                pattern: given.clone(),
                reason,
            })?;
            ignore.has_exceptions |= pattern.exception;
            ignore.patterns.push(pattern);
            ignore.cleaned.push(trimmed.to_owned());
        }
        Ok(ignore)
    }

    /// The ignore file of a build: `<Kubefile name>.dockerignore` beside the Kubefile when it
    /// exists (BuildKit's rule for a named Dockerfile), else `.dockerignore` at the root of the
    /// context, else no patterns.
    pub fn load(context_dir: &Path, kubefile: &Path) -> Result<DockerIgnore, IgnoreError> {
        let mut candidates = Vec::with_capacity(2);
        if let Some(name) = kubefile.file_name() {
            let mut specific = name.to_os_string();
            specific.push(".dockerignore");
            candidates.push(kubefile.with_file_name(specific));
        }
        candidates.push(context_dir.join(".dockerignore"));
        for path in candidates {
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(IgnoreError::Read { path, source }),
            };
            let text = String::from_utf8(bytes).map_err(|_| IgnoreError::Read {
                path: path.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, "the file is not UTF-8 text"),
            })?;
            return DockerIgnore::parse(&text).map_err(|error| match error {
                IgnoreError::Pattern {
                    line,
                    pattern,
                    reason,
                    ..
                } => IgnoreError::Pattern {
                    file: Some(path),
                    line,
                    pattern,
                    reason,
                },
                other @ (IgnoreError::Read { .. } | IgnoreError::ListPattern { .. }) => other,
            });
        }
        Ok(DockerIgnore::default())
    }

    /// The patterns, cleaned as BuildKit's reader cleans them, exceptions with their `!`: what a
    /// BuildKit frontend passes on as exclude patterns.
    pub fn patterns(&self) -> &[String] {
        &self.cleaned
    }

    /// True when there is no pattern: nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when `path` (relative to the context, `/`-separated) or one of its parent
    /// directories matches a pattern, the last matching pattern deciding (`!` re-includes).
    /// The context root itself is never excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let path = clean(path);
        if path == "." || path == "/" {
            return false;
        }
        let mut state = self.root_state();
        let mut end = 0;
        while let Some(offset) = path[end..].find('/') {
            end += offset;
            state = self.dir_state(&state, &path[..end]);
            end += 1;
        }
        self.is_excluded_in(&state, &path)
    }

    /// The state of the context root, where a walk starts.
    pub fn root_state(&self) -> DirState {
        DirState {
            matched: vec![false; self.patterns.len()],
        }
    }

    /// The state of the directory `dir` (its full path relative to the context), from the
    /// state of its parent directory.
    pub fn dir_state(&self, parent: &DirState, dir: &str) -> DirState {
        DirState {
            matched: self
                .patterns
                .iter()
                .zip(&parent.matched)
                .map(|(pattern, &above)| above || pattern.matches(dir))
                .collect(),
        }
    }

    /// [`DockerIgnore::is_excluded`] for `path`, given the state of its parent directory.
    pub fn is_excluded_in(&self, parent: &DirState, path: &str) -> bool {
        let mut excluded = false;
        for (pattern, &parent_matched) in self.patterns.iter().zip(&parent.matched) {
            if pattern.exception != excluded {
                continue;
            }
            if parent_matched || pattern.matches(path) {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether something under the excluded directory `dir` could be re-included, so a walk
    /// must enter it. This is Docker's and BuildKit's own rule: only an exception whose text
    /// starts with `dir/` (or is `dir`) counts, so an exception such as `!**/keep` does not
    /// reach into an excluded directory, and a walk skips the directory whole when this is
    /// false.
    pub fn may_include_below(&self, dir: &str) -> bool {
        if !self.has_exceptions {
            return false;
        }
        let dir = clean(dir);
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|pattern| pattern.exception)
            .any(|pattern| format!("{}/", pattern.text).starts_with(&dir_slash))
    }
}

/// One line as BuildKit's reader turns it into a pattern, or `None` for a comment or an
/// empty line. A `#` only starts a comment in the first column.
fn reader_pattern(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let mut pattern = line.trim();
    if pattern.is_empty() {
        return None;
    }
    let exception = pattern.starts_with('!');
    if exception {
        pattern = pattern[1..].trim();
    }
    let mut cleaned = String::new();
    if !pattern.is_empty() {
        cleaned = clean(pattern);
        if cleaned.len() > 1 && cleaned.starts_with('/') {
            cleaned.remove(0);
        }
    }
    if exception {
        cleaned.insert(0, '!');
    }
    Some(cleaned)
}

/// patternmatcher's `New` for one pattern, then its compilation.
fn compile(pattern: &str) -> Result<Pattern, String> {
    let mut text = clean(pattern.trim());
    let exception = text.starts_with('!');
    if exception {
        if text.len() == 1 {
            return Err("`!` alone excludes nothing; write `!path` to re-include a path".into());
        }
        text.remove(0);
    }
    check_glob_syntax(&text)?;
    let matcher = translate(&text)?;
    Ok(Pattern {
        exception,
        matcher,
        text,
    })
}

/// Go's `path.Clean`: one `/` between names, no `.`, `..` resolved lexically (kept at the
/// start of a relative path), no trailing `/`, `.` for an empty result.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            name => parts.push(name),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// The syntax check Go's `filepath.Match` makes: every `\` escapes a character and every `[`
/// opens a well-formed class (`[^` negates, at least one item, ranges `a-z`, no bare `-`
/// or `]` as an item).
fn check_glob_syntax(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        match chars[at] {
            '\\' => {
                if at + 1 == chars.len() {
                    return Err("a trailing `\\` escapes nothing".into());
                }
                at += 2;
            }
            '[' => at = check_class(&chars, at + 1)?,
            _ => at += 1,
        }
    }
    Ok(())
}

/// Checks a class body starting at `at` (after `[`); returns the index after its `]`.
fn check_class(chars: &[char], mut at: usize) -> Result<usize, String> {
    const UNTERMINATED: &str = "a `[` character class is not closed or is malformed";
    if chars.get(at) == Some(&'^') {
        at += 1;
    }
    let mut items = 0;
    loop {
        if chars.get(at) == Some(&']') && items > 0 {
            return Ok(at + 1);
        }
        at = class_char(chars, at).ok_or(UNTERMINATED)?;
        if chars.get(at) == Some(&'-') {
            at = class_char(chars, at + 1).ok_or(UNTERMINATED)?;
        }
        items += 1;
    }
}

/// Go's `getEsc`: one (possibly escaped) class character at `at`, which must be followed by
/// more pattern; returns the index after it.
fn class_char(chars: &[char], mut at: usize) -> Option<usize> {
    match chars.get(at)? {
        '-' | ']' => return None,
        '\\' => at += 1,
        _ => {}
    }
    chars.get(at)?;
    (at + 1 < chars.len()).then_some(at + 1)
}

/// patternmatcher's `compile`: the match type and, for wild patterns, the regular expression
/// (built in Go's syntax, then carried over to the `regex` crate's).
fn translate(pattern: &str) -> Result<Matcher, String> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut go_regex = String::from("^");
    let mut kind = Kind::Exact;
    let mut at = 0;
    let mut iteration = 0;
    while at < chars.len() {
        let c = chars[at];
        at += 1;
        match c {
            '*' if chars.get(at) == Some(&'*') => {
                at += 1;
                if chars.get(at) == Some(&'/') {
                    at += 1;
                }
                if at == chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        go_regex.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    go_regex.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if iteration == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                go_regex.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                go_regex.push_str("[^/]");
                kind = Kind::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                go_regex.push('\\');
                go_regex.push(c);
            }
            '\\' => {
                go_regex.push('\\');
                if let Some(&next) = chars.get(at) {
                    go_regex.push(next);
                    at += 1;
                    kind = Kind::Regex;
                }
            }
            '[' | ']' => {
                go_regex.push(c);
                kind = Kind::Regex;
            }
            other => go_regex.push(other),
        }
        iteration += 1;
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact(pattern.to_owned()),
        Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_owned()),
        Kind::Suffix => Matcher::Suffix(pattern[2..].to_owned()),
        Kind::Regex => {
            go_regex.push('$');
            let rust_regex = go_to_rust_regex(&go_regex);
            Matcher::Regex(Regex::new(&rust_regex).map_err(|e| {
                format!(
                    "it is not a valid pattern once translated to the regular expression `{go_regex}`: {}",
                    e.to_string().lines().last().unwrap_or_default()
                )
            })?)
        }
    })
}

/// Carries a regular expression from Go's RE2 syntax to the `regex` crate's where they differ
/// in what patterns can produce: `\d`, `\s`, `\w` and `\b` are ASCII-only in Go, and inside a
/// class a `[` that does not open `[:name:]` is a literal, as are `&&`, `~~` and `--`.
fn go_to_rust_regex(go: &str) -> String {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut at = 0;
    while at < chars.len() {
        match chars[at] {
            '\\' if at + 1 < chars.len() => {
                push_escape(&mut out, chars[at + 1], false);
                at += 2;
            }
            '[' => at = push_class(&chars, at, &mut out),
            c => {
                out.push(c);
                at += 1;
            }
        }
    }
    out
}

/// Writes a class starting at `chars[start] == '['`; returns the index after it.
fn push_class(chars: &[char], start: usize, out: &mut String) -> usize {
    out.push('[');
    let mut at = start + 1;
    if chars.get(at) == Some(&'^') {
        out.push('^');
        at += 1;
    }
    if chars.get(at) == Some(&']') {
        out.push_str("\\]");
        at += 1;
    }
    let mut previous = None;
    while let Some(&c) = chars.get(at) {
        match c {
            ']' => {
                out.push(']');
                return at + 1;
            }
            '\\' if at + 1 < chars.len() => {
                push_escape(out, chars[at + 1], true);
                previous = None;
                at += 2;
                continue;
            }
            '[' => {
                if let Some(end) = posix_class_end(chars, at) {
                    out.extend(&chars[at..end]);
                    previous = None;
                    at = end;
                    continue;
                }
                out.push_str("\\[");
            }
            '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '-' if previous == Some('-') => out.push_str("\\-"),
            other => out.push(other),
        }
        previous = Some(c);
        at += 1;
    }
    at
}

/// The end of a `[:name:]` or `[:^name:]` class at `at`, if there is one.
fn posix_class_end(chars: &[char], at: usize) -> Option<usize> {
    if chars.get(at + 1) != Some(&':') {
        return None;
    }
    let mut end = at + 2;
    if chars.get(end) == Some(&'^') {
        end += 1;
    }
    let name_start = end;
    while chars.get(end).is_some_and(char::is_ascii_lowercase) {
        end += 1;
    }
    (end > name_start && chars.get(end) == Some(&':') && chars.get(end + 1) == Some(&']'))
        .then_some(end + 2)
}

/// Writes the escape `\c` with Go's meaning.
fn push_escape(out: &mut String, c: char, in_class: bool) {
    let ascii_class = match c {
        'd' => Some(("0-9", false)),
        'D' => Some(("0-9", true)),
        's' => Some(("\\t\\n\\f\\r ", false)),
        'S' => Some(("\\t\\n\\f\\r ", true)),
        'w' => Some(("0-9A-Za-z_", false)),
        'W' => Some(("0-9A-Za-z_", true)),
        _ => None,
    };
    match ascii_class {
        Some((set, false)) if in_class => out.push_str(set),
        Some((set, negated)) => {
            let _ = write!(out, "[{}{set}]", if negated { "^" } else { "" });
        }
        None if matches!(c, 'b' | 'B') && !in_class => {
            let _ = write!(out, "(?-u:\\{c})");
        }
        None => {
            out.push('\\');
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(lines: &[&str]) -> DockerIgnore {
        DockerIgnore::parse(&lines.join("\n")).unwrap()
    }

    /// `(patterns, path, excluded)`: Docker's documented examples and moby/patternmatcher's
    /// test cases.
    #[test]
    fn matches_like_docker() {
        let cases: &[(&[&str], &str, bool)] = &[
            // The .dockerignore documentation.
            (&["*/temp*"], "somedir/temporary.txt", true),
            (&["*/temp*"], "somedir/temp", true),
            (&["*/temp*"], "temp", false),
            (&["*/temp*"], "a/b/temp", false),
            (&["*/*/temp*"], "somedir/subdir/temporary.txt", true),
            (&["*/*/temp*"], "somedir/temporary.txt", false),
            (&["temp?"], "tempa", true),
            (&["temp?"], "temp", false),
            (&["temp?"], "tempab", false),
            (&["temp?"], "dir/tempa", false),
            (&["**/*.go"], "main.go", true),
            (&["**/*.go"], "a/b/c/main.go", true),
            (&["**/*.go"], "main.gox", false),
            (&["*.md", "!README.md"], "README.md", false),
            (&["*.md", "!README.md"], "CHANGES.md", true),
            (
                &["*.md", "!README*.md", "README-secret.md"],
                "README-secret.md",
                true,
            ),
            (
                &["*.md", "!README*.md", "README-secret.md"],
                "README-public.md",
                false,
            ),
            (
                &["*.md", "!README*.md", "README-secret.md"],
                "other.md",
                true,
            ),
            (
                &["*.md", "README-secret.md", "!README*.md"],
                "README-secret.md",
                false,
            ),
            // A directory excludes what is under it; an exception brings a path back.
            (&["docs"], "docs/a/b.txt", true),
            (&["docs", "!docs/keep"], "docs/keep", false),
            (&["docs", "!docs/keep"], "docs/keep/inner/file", false),
            (&["docs", "!docs/keep"], "docs/other", true),
            (&["/docs/"], "docs/x", true),
            // patternmatcher's table.
            (&["**"], "file", true),
            (&["**"], "file/", true),
            (&["**/"], "file", true),
            (&["**/"], "dir/file", true),
            (&["**/file"], "file", true),
            (&["**/file"], "dir/file", true),
            (&["**/file"], "dir/dir/file", true),
            (&["**/file*"], "dir/dir/file", true),
            (&["**/file*"], "dir/dir/file.txt", true),
            (&["**/file*txt"], "dir/dir/file.txt", true),
            (&["**/file*.txt"], "dir/dir/file.txt", true),
            (&["**/file*.txt*"], "dir/dir/file.txt", true),
            (&["**/**/*.txt"], "dir/dir/file.txt", true),
            (&["**/**/*.txt2"], "dir/dir/file.txt", false),
            (&["**/*.txt"], "file.txt", true),
            (&["**/**/*.txt"], "file.txt", true),
            (&["a**/*.txt"], "a/file.txt", true),
            (&["a**/*.txt"], "a/dir/file.txt", true),
            (&["a**/*.txt"], "a/dir/dir/file.txt", true),
            (&["a/*.txt"], "a/dir/file.txt", false),
            (&["a/*.txt"], "a/file.txt", true),
            (&["a/*.txt**"], "a/file.txt", true),
            (&["a[b-d]e"], "ae", false),
            (&["a[b-d]e"], "ace", true),
            (&["a[b-d]e"], "aae", false),
            (&["a[^b-d]e"], "aze", true),
            (&[".*"], ".foo", true),
            (&[".*"], "foo", false),
            (&["abc.def"], "abcdef", false),
            (&["abc.def"], "abc.def", true),
            (&["abc.def"], "abcZdef", false),
            (&["abc?def"], "abcZdef", true),
            (&["abc?def"], "abcdef", false),
            (&["a\\\\"], "a\\", true),
            (&["**/foo/bar"], "foo/bar", true),
            (&["**/foo/bar"], "dir/foo/bar", true),
            (&["**/foo/bar"], "dir/dir2/foo/bar", true),
            (&["abc/**"], "abc", false),
            (&["abc/**"], "abc/def", true),
            (&["abc/**"], "abc/def/ghi", true),
            (&["**/.foo"], ".foo", true),
            (&["**/.foo"], "bar.foo", false),
            (&["a(b)c/def"], "a(b)c/def", true),
            (&["a(b)c/def"], "a(b)c/xyz", false),
            (&["a.|)$(}+{bc"], "a.|)$(}+{bc", true),
            (
                &["dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                &["dist/*.whl"],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            // patternmatcher's fast paths keep their quirks.
            (&["**.go"], "a/b.go", true),
            (&["**foo"], "xfoo", true),
            // Parents: `**/*.go` excludes a directory named `x.go` and what is in it.
            (&["**/*.go"], "pkg/x.go/readme", true),
            // A leading `/` is dropped; `./` and `..` are cleaned.
            (&["/a/b"], "a/b", true),
            (&["./a/./b/../c"], "a/c", true),
            (&["!/a"], "a", false),
            // Comments only in the first column; whitespace trimmed.
            (&["  # not a comment"], "# not a comment", true),
            (&["# a comment", "x"], "# a comment", false),
            (&["  spaced  "], "spaced", true),
            // Escapes.
            (&["\\*"], "*", true),
            (&["\\*"], "a", false),
            (&["a[\\]]b"], "a]b", true),
        ];
        for (patterns, path, expected) in cases {
            assert_eq!(
                ignore(patterns).is_excluded(path),
                *expected,
                "patterns {patterns:?}, path {path}"
            );
        }
    }

    #[test]
    fn pattern_lists_compile_without_comments() {
        let list = |patterns: &[&str]| {
            DockerIgnore::from_patterns(
                &patterns.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>(),
            )
        };
        let hashed = list(&["#secret", "  ", "", " logs/ ", "!logs/keep"]).unwrap();
        assert!(hashed.is_excluded("#secret"));
        assert!(hashed.is_excluded("logs/other"));
        assert!(!hashed.is_excluded("logs/keep"));
        assert!(!hashed.is_excluded("other"));
        assert!(hashed.may_include_below("logs"));
        assert_eq!(hashed.patterns(), ["#secret", "logs/", "!logs/keep"]);
        // The same patterns read as a file: the first line is a comment there.
        assert!(!ignore(&["#secret"]).is_excluded("#secret"));
        assert!(list(&[" ", ""]).unwrap().is_empty());

        let error = list(&["ok", "[abc"]).unwrap_err();
        assert!(
            matches!(error, IgnoreError::ListPattern { position: 2, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("`[abc`"), "{error}");
        assert!(list(&["!"]).is_err());
    }

    #[test]
    fn the_root_is_never_excluded() {
        let all = ignore(&["**", "*"]);
        assert!(!all.is_excluded(""));
        assert!(!all.is_excluded("."));
        assert!(all.is_excluded("x"));
    }

    #[test]
    fn reader_cleans_like_buildkit() {
        let parsed =
            DockerIgnore::parse("\u{feff}# comment\n\n  /a/../b/  \r\n! /c//d\n!e\n*.tmp\n/\n")
                .unwrap();
        assert_eq!(parsed.patterns(), ["b", "!c/d", "!e", "*.tmp", "/"]);
        assert!(!parsed.is_empty());
        assert!(DockerIgnore::parse("# only\n\n   \n").unwrap().is_empty());
    }

    #[test]
    fn invalid_patterns_name_their_line() {
        for (text, line) in [
            ("ok\n[abc\n", 2),
            ("a\\", 1),
            ("x\ny\n!\n", 3),
            ("[]a]", 1),
            ("[a-]", 1),
            ("!/", 1),
        ] {
            let error = DockerIgnore::parse(text).unwrap_err();
            let IgnoreError::Pattern { line: found, .. } = &error else {
                panic!("{error}");
            };
            assert_eq!(*found, line, "{text:?}: {error}");
            assert!(
                error.to_string().contains(&format!("line {line}")),
                "{error}"
            );
        }
        for valid in ["[a-c]", "[^a]", "[\\]]", "a\\*", "[[:alpha:]]"] {
            assert!(DockerIgnore::parse(valid).is_ok(), "{valid}");
        }
    }

    #[test]
    fn go_regex_features_keep_their_meaning() {
        // In Go, `\d` is an ASCII digit and `[[:alpha:]]` a POSIX class.
        let digits = ignore(&["v\\d"]);
        assert!(digits.is_excluded("v1"));
        assert!(!digits.is_excluded("v٣"));
        let alpha = ignore(&["[[:alpha:]]x"]);
        assert!(alpha.is_excluded("ax"));
        assert!(!alpha.is_excluded("1x"));
        // A `[` inside a class is a literal in Go.
        let bracket = ignore(&["a[[]b"]);
        assert!(bracket.is_excluded("a[b"));
        // `&&` inside a class is not an intersection in Go.
        let ampersand = ignore(&["a[&&x]b"]);
        assert!(ampersand.is_excluded("a&b"));
        assert!(ampersand.is_excluded("axb"));
    }

    #[test]
    fn walks_reuse_parent_results() {
        let patterns = ignore(&["build", "!build/keep", "*.log", "!important.log"]);
        let root = patterns.root_state();
        let build = patterns.dir_state(&root, "build");
        assert!(patterns.is_excluded_in(&root, "build"));
        assert!(!patterns.is_excluded_in(&build, "build/keep"));
        assert!(patterns.is_excluded_in(&build, "build/other"));
        assert!(patterns.is_excluded_in(&root, "x.log"));
        assert!(!patterns.is_excluded_in(&root, "important.log"));
        for path in ["build/keep", "build/other", "src/a.log", "important.log"] {
            let (dir, _) = path.rsplit_once('/').unwrap_or(("", path));
            let state = if dir.is_empty() {
                root.clone()
            } else {
                patterns.dir_state(&root, dir)
            };
            assert_eq!(
                patterns.is_excluded_in(&state, path),
                patterns.is_excluded(path),
                "{path}"
            );
        }
    }

    #[test]
    fn excluded_directories_are_entered_only_for_exceptions_naming_them() {
        let named = ignore(&["build", "!build/keep"]);
        assert!(named.may_include_below("build"));
        assert!(!named.may_include_below("other"));
        let nested = ignore(&["a", "!a/b/c"]);
        assert!(nested.may_include_below("a"));
        assert!(nested.may_include_below("a/b"));
        assert!(!nested.may_include_below("a/x"));
        // Docker does not enter `build` for a wildcard exception.
        let wild = ignore(&["build", "!**/keep"]);
        assert!(!wild.may_include_below("build"));
        assert!(!ignore(&["build"]).may_include_below("build"));
        // An exception naming the directory itself counts.
        assert!(ignore(&["*", "!build"]).may_include_below("build"));
    }

    #[test]
    fn load_prefers_the_kubefile_specific_file() {
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path().join("ctx");
        std::fs::create_dir(&context).unwrap();
        let kubefile = dir.path().join("Kubefile.prod");
        std::fs::write(&kubefile, "FROM scratch\n").unwrap();

        assert!(DockerIgnore::load(&context, &kubefile).unwrap().is_empty());

        std::fs::write(context.join(".dockerignore"), "*.log\n").unwrap();
        let loaded = DockerIgnore::load(&context, &kubefile).unwrap();
        assert_eq!(loaded.patterns(), ["*.log"]);

        std::fs::write(
            dir.path().join("Kubefile.prod.dockerignore"),
            "secrets\n[x\n",
        )
        .unwrap();
        let error = DockerIgnore::load(&context, &kubefile)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("Kubefile.prod.dockerignore") && error.contains("line 2"),
            "{error}"
        );
        std::fs::write(dir.path().join("Kubefile.prod.dockerignore"), "secrets\n").unwrap();
        let loaded = DockerIgnore::load(&context, &kubefile).unwrap();
        assert_eq!(loaded.patterns(), ["secrets"]);

        std::fs::write(context.join(".dockerignore"), [0xff, 0xfe]).unwrap();
        let error = DockerIgnore::load(&context, &context.join("Kubefile")).unwrap_err();
        assert!(matches!(error, IgnoreError::Read { .. }), "{error}");
    }

    #[test]
    fn go_path_clean() {
        for (input, expected) in [
            ("", "."),
            (".", "."),
            ("a/b/", "a/b"),
            ("a//b/./c/..", "a/b"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("!./x", "!./x"),
        ] {
            assert_eq!(clean(input), expected, "{input:?}");
        }
    }
}
