//! `--build-arg` values.

use std::collections::BTreeMap;

/// Build argument values given on the command line (`--build-arg NAME=value`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildArgs {
    values: BTreeMap<String, String>,
}

impl BuildArgs {
    /// Parses `NAME=value` and `NAME` arguments; a bare `NAME` takes its value from `env` (the
    /// process environment) and is skipped when that has none, as `docker build` does.
    pub fn from_cli<S: AsRef<str>>(
        args: &[S],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut build_args = BuildArgs::default();
        for arg in args {
            if let Some((name, value)) = parse_build_arg(arg.as_ref(), env)? {
                build_args.values.insert(name, value);
            }
        }
        Ok(build_args)
    }

    /// Sets one value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    /// The value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every name given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

/// Parses one `--build-arg`: `NAME=value` keeps everything after the first `=` (so `A=b=c`
/// gives `b=c`); a bare `NAME` takes its value from `env`, or is skipped when unset.
pub fn parse_build_arg(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(String, String)>, String> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (text, None),
    };
    if name.is_empty() {
        return Err(format!(
            "invalid --build-arg `{text}`: expected NAME=value or NAME"
        ));
    }
    if !crate::instructions::is_arg_name(name) {
        return Err(format!(
            "invalid --build-arg `{text}`: `{name}` is not a valid argument name"
        ));
    }
    Ok(value
        .or_else(|| env(name))
        .map(|value| (name.to_owned(), value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_after_the_first_equals() {
        let none = |_: &str| None;
        assert_eq!(
            parse_build_arg("A=b=c", &none).unwrap(),
            Some(("A".into(), "b=c".into()))
        );
        assert_eq!(
            parse_build_arg("A=", &none).unwrap(),
            Some(("A".into(), String::new()))
        );
        assert_eq!(parse_build_arg("A", &none).unwrap(), None);
        let env = |n: &str| (n == "A").then(|| "from-env".to_owned());
        assert_eq!(
            parse_build_arg("A", &env).unwrap(),
            Some(("A".into(), "from-env".into()))
        );
        assert!(parse_build_arg("=x", &none).is_err());
        assert!(parse_build_arg("a b=x", &none).is_err());
    }
}
