//! Remote commands: a bash script with its environment, and what running it gave.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::secret::Secret;

/// How long a command summary (its first line) may be in logs and errors.
const SUMMARY_CHARS: usize = 80;

/// A script run by `bash -c` on a host, with environment variables exported in the script
/// text (sshd refuses most environment requests). Values of the names in `secret_env` are
/// never logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteCommand {
    /// The bash script.
    pub script: String,
    /// Variables exported before the script runs.
    pub env: BTreeMap<String, String>,
    /// Names in `env` whose values are secret (printed as `***`).
    pub secret_env: BTreeSet<String>,
}

impl RemoteCommand {
    /// A script without environment.
    pub fn new(script: impl Into<String>) -> Self {
        Self {
            script: script.into(),
            ..Self::default()
        }
    }

    /// Adds a variable.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Adds a variable whose value is never logged.
    #[must_use]
    pub fn secret_env(mut self, name: impl Into<String>, value: &Secret) -> Self {
        let name = name.into();
        self.env.insert(name.clone(), value.expose().to_owned());
        self.secret_env.insert(name);
        self
    }

    /// The script's first non-empty line, shortened: the command's name in logs and errors.
    pub fn summary(&self) -> String {
        let line = self
            .script
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("");
        let more = self.script.trim().lines().nth(1).is_some();
        if line.chars().count() > SUMMARY_CHARS {
            let short: String = line.chars().take(SUMMARY_CHARS).collect();
            format!("{short}…")
        } else if more {
            format!("{line} …")
        } else {
            line.to_owned()
        }
    }

    /// The environment and script as logs show them: secret values as `***`.
    pub fn redacted(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.env {
            if self.secret_env.contains(name) {
                let _ = writeln!(text, "{name}=***");
            } else {
                let _ = writeln!(text, "{name}={}", quote(value));
            }
        }
        text.push_str(&self.script);
        text
    }

    /// The exec request's command line: `bash -c '<exports; script>'`, behind
    /// `sudo -n -E` when the user is not root. Errs with the first invalid variable name.
    pub(crate) fn command_line(&self, sudo: bool) -> Result<String, String> {
        let mut body = String::new();
        for (name, value) in &self.env {
            if !is_env_name(name) {
                return Err(name.clone());
            }
            let _ = writeln!(body, "export {name}={}", quote(value));
        }
        body.push_str(&self.script);
        let command = format!("bash -c {}", quote(&body));
        Ok(if sudo {
            format!("sudo -n -E {command}")
        } else {
            command
        })
    }
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(u32),
    /// A signal ended it.
    Signal(String),
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit code {code}"),
            Self::Signal(signal) => write!(f, "signal {signal}"),
        }
    }
}

/// What a remote command gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// From the channel's opening to its end.
    pub duration: Duration,
    /// How many bytes of input were sent to its stdin.
    pub stdin_bytes: u64,
}

impl CommandOutput {
    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        self.status == ExitStatus::Code(0)
    }

    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The last `lines` lines of stderr, for error messages.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = self.stderr_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Quotes `text` as one word for a POSIX shell: as it is when it has only safe characters,
/// else in single quotes with `'` written as `'\''`.
pub fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+".contains(&b))
    {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first == '_' || first.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_runs_the_script_with_the_environment_verbatim() {
        let odd = "it's \"quoted\" $HOME `id` \\ \n second line\t!";
        let command = RemoteCommand::new("printf '%s|%s' \"$ODD\" \"$PLAIN\"")
            .env("ODD", odd)
            .env("PLAIN", "x");
        let line = command.command_line(false).unwrap();
        let output = std::process::Command::new("sh")
            .args(["-c", &line])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            format!("{odd}|x")
        );
        assert!(
            command
                .command_line(true)
                .unwrap()
                .starts_with("sudo -n -E bash -c ")
        );
    }

    #[test]
    fn invalid_names_are_refused() {
        for name in ["", "1A", "A-B", "A B", "A=B"] {
            let command = RemoteCommand::new("true").env(name, "x");
            assert_eq!(command.command_line(false), Err(name.to_owned()));
        }
        assert!(
            RemoteCommand::new("true")
                .env("_a1", "x")
                .command_line(false)
                .is_ok()
        );
    }

    #[test]
    fn secrets_are_redacted_and_summaries_are_short() {
        let command = RemoteCommand::new("\n  login --password \"$PW\"\nmore\n")
            .env("USER_NAME", "admin")
            .secret_env("PW", &Secret::new("hunter2".to_owned()));
        let redacted = command.redacted();
        assert!(redacted.contains("PW=***"), "{redacted}");
        assert!(redacted.contains("USER_NAME=admin"), "{redacted}");
        assert!(!redacted.contains("hunter2"));
        assert_eq!(command.summary(), "login --password \"$PW\" …");
        let long = RemoteCommand::new("x".repeat(200));
        assert_eq!(long.summary().chars().count(), SUMMARY_CHARS + 1);
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let output = CommandOutput {
            status: ExitStatus::Code(1),
            stdout: Vec::new(),
            stderr: b"a\nb\nc\n".to_vec(),
            duration: Duration::ZERO,
            stdin_bytes: 0,
        };
        assert_eq!(output.stderr_tail(2), "b\nc");
        assert!(!output.success());
        assert_eq!(output.status.to_string(), "exit code 1");
    }
}
