//! `.helmignore`: files a chart directory leaves out of the chart. Patterns are shell globs;
//! one with a `/` matches the whole path, one without matches any path component's name;
//! a trailing `/` matches directories only; `!` re-includes. Dotfiles under `templates/` are
//! always left out, as Helm's defaults do.

use crate::glob;

/// One rule of a `.helmignore`.
struct Rule {
    pattern: String,
    negated: bool,
    directory_only: bool,
    whole_path: bool,
}

/// The rules of a `.helmignore` file, plus Helm's defaults.
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// Parses a `.helmignore` text (`None`: only the defaults).
    pub fn parse(text: Option<&str>) -> Rules {
        let mut rules = vec![Rule {
            pattern: "templates/.?*".into(),
            negated: false,
            directory_only: false,
            whole_path: true,
        }];
        for line in text.unwrap_or_default().lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, line) = match line.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let (directory_only, line) = match line.strip_suffix('/') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let pattern = line.trim_start_matches('/');
            if pattern.is_empty() {
                continue;
            }
            rules.push(Rule {
                whole_path: pattern.contains('/'),
                pattern: pattern.to_owned(),
                negated,
                directory_only,
            });
        }
        Rules { rules }
    }

    /// Whether the file at `path` (relative to the chart) is left out: it, or one of the
    /// directories it is in, is ignored by the last rule that matches it.
    pub fn ignores(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        (1..=parts.len()).any(|depth| {
            let prefix = parts[..depth].join("/");
            self.ignores_entry(&prefix, parts[depth - 1], depth < parts.len())
        })
    }

    fn ignores_entry(&self, path: &str, name: &str, is_dir: bool) -> bool {
        let mut ignored = false;
        for rule in &self.rules {
            if rule.directory_only && !is_dir {
                continue;
            }
            let target = if rule.whole_path { path } else { name };
            if glob::matches(&rule.pattern, target) {
                ignored = !rule.negated;
            }
        }
        ignored
    }
}

#[cfg(test)]
mod tests {
    use super::Rules;

    #[test]
    fn helmignore_rules() {
        let rules = Rules::parse(Some("# comment\n*.bak\nsecret/\n/docs/*.md\n!keep.bak\n"));
        assert!(rules.ignores("a.bak"));
        assert!(rules.ignores("files/b.bak"));
        assert!(!rules.ignores("keep.bak"));
        assert!(rules.ignores("secret/x"));
        assert!(!rules.ignores("secret"));
        assert!(rules.ignores("docs/a.md"));
        assert!(!rules.ignores("other/docs/a.md"));
        assert!(rules.ignores("templates/.hidden.yaml"));
        assert!(!rules.ignores("templates/x.yaml"));
        assert!(!rules.ignores("values.yaml"));
    }
}
