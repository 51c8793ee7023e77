//! Copy sources in the context: path cleaning and wildcard matching (Go's `filepath.Match`
//! rules, one path segment at a time, as Docker's COPY uses them).

use crate::context::{ContextView, join};

/// True when `path` has a wildcard character (`*`, `?` or `[`).
pub fn has_wildcard(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Matches one path segment against a pattern with `*`, `?`, `[a-z]`, `[^a]` and `\` escapes.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> bool {
    let Some((&first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    match first {
        '*' => (0..=name.len()).any(|skip| match_from(rest, &name[skip..])),
        '?' => !name.is_empty() && match_from(rest, &name[1..]),
        '[' => {
            let Some((&c, name_rest)) = name.split_first() else {
                return false;
            };
            match class(rest, c) {
                Some((true, after)) => match_from(after, name_rest),
                _ => false,
            }
        }
        '\\' if !rest.is_empty() => {
            !name.is_empty() && name[0] == rest[0] && match_from(&rest[1..], &name[1..])
        }
        literal => !name.is_empty() && name[0] == literal && match_from(rest, &name[1..]),
    }
}

/// Matches `c` against a class body (after `[`); returns whether it matched and the pattern
/// after the closing `]`, or `None` for a malformed class.
fn class(body: &[char], c: char) -> Option<(bool, &[char])> {
    let (negated, mut rest) = match body.split_first() {
        Some(('^', r)) => (true, r),
        _ => (false, body),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let (&lo, after) = rest.split_first()?;
        if lo == ']' && !first {
            return Some((matched != negated, after));
        }
        first = false;
        let (lo, after) = if lo == '\\' {
            let (&e, a) = after.split_first()?;
            (e, a)
        } else {
            (lo, after)
        };
        if let ['-', hi, tail @ ..] = after
            && *hi != ']'
        {
            matched |= lo <= c && c <= *hi;
            rest = tail;
            continue;
        }
        matched |= lo == c;
        rest = after;
    }
}

/// Every context path matching a cleaned pattern, sorted.
pub(crate) fn expand_pattern(view: &dyn ContextView, pattern: &str) -> Vec<String> {
    let mut current = vec![String::new()];
    for segment in pattern.split('/').filter(|s| !s.is_empty()) {
        let mut next = Vec::new();
        for dir in &current {
            if has_wildcard(segment) {
                next.extend(
                    view.list(dir)
                        .into_iter()
                        .filter(|name| wildcard_match(segment, name))
                        .map(|name| join(dir, &name)),
                );
            } else {
                let path = join(dir, segment);
                if view.kind(&path).is_some() {
                    next.push(path);
                }
            }
        }
        current = next;
    }
    current.sort();
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::MemoryContext;

    #[test]
    fn go_match_rules() {
        assert!(wildcard_match("*.yaml", "a.yaml"));
        assert!(!wildcard_match("*.yaml", "a.yml"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(wildcard_match("[a-c]x", "bx"));
        assert!(!wildcard_match("[^a-c]x", "bx"));
        assert!(wildcard_match("[]]", "]"));
        assert!(wildcard_match(r"\*", "*"));
        assert!(!wildcard_match("[a", "a"));
    }

    #[test]
    fn expands_per_segment() {
        let ctx = MemoryContext::new()
            .with_file("amd64/bin/kubectl")
            .with_file("arm64/bin/kubectl")
            .with_file("x.yaml");
        assert_eq!(
            expand_pattern(&ctx, "*/bin"),
            vec!["amd64/bin", "arm64/bin"]
        );
        assert_eq!(expand_pattern(&ctx, "*.yaml"), vec!["x.yaml"]);
        assert!(expand_pattern(&ctx, "*.json").is_empty());
    }
}
