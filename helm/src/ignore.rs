//! `.helmignore`: files a chart directory leaves out of the chart, with Helm's rules (its
//! `pkg/ignore`, which is not gitignore): patterns are `filepath.Match` globs; one starting
//! with `/` or containing `/` matches the whole path, one without matches the base name; a
//! trailing `/` matches directories only; the first rule that decides wins, and a `!rule`
//! decides "ignore" for every path it does NOT match. Dotfiles under `templates/` are always
//! left out, as Helm's defaults do. A directory that is ignored takes its files with it.

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
        let mut rules = Vec::new();
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
            let whole_path = line.contains('/');
            let pattern = line.trim_start_matches('/');
            if pattern.is_empty() || pattern.contains("**") {
                continue;
            }
            rules.push(Rule {
                whole_path,
                pattern: pattern.to_owned(),
                negated,
                directory_only,
            });
        }
        rules.push(Rule {
            pattern: "templates/.?*".into(),
            negated: false,
            directory_only: false,
            whole_path: true,
        });
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
        for rule in &self.rules {
            let target = if rule.whole_path { path } else { name };
            if rule.negated {
                if (rule.directory_only && !is_dir) || !glob::matches_path(&rule.pattern, target) {
                    return true;
                }
                continue;
            }
            if rule.directory_only && !is_dir {
                continue;
            }
            if glob::matches_path(&rule.pattern, target) {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::Rules;

    #[test]
    fn helmignore_rules() {
        let rules = Rules::parse(Some("# comment\n*.bak\nsecret/\n/docs/*.md\n/tests\n"));
        assert!(rules.ignores("a.bak"));
        assert!(
            rules.ignores("files/b.bak"),
            "a pattern without / matches base names"
        );
        assert!(rules.ignores("secret/x"));
        assert!(!rules.ignores("secret"), "secret/ matches directories only");
        assert!(rules.ignores("docs/a.md"));
        assert!(!rules.ignores("other/docs/a.md"));
        assert!(rules.ignores("tests/t.yaml"));
        assert!(
            !rules.ignores("templates/tests/t.yaml"),
            "a rooted pattern matches from the root only"
        );
        assert!(rules.ignores("templates/.hidden.yaml"));
        assert!(!rules.ignores("templates/x.yaml"));
        assert!(!rules.ignores("values.yaml"));
    }

    #[test]
    fn a_negated_rule_ignores_what_it_does_not_match() {
        let rules = Rules::parse(Some("!*.yaml\n"));
        assert!(rules.ignores("notes.txt"));
        assert!(!rules.ignores("values.yaml"));
    }
}
