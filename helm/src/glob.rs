//! The glob patterns of `.Files.Glob` (gobwas/glob with `/` as the separator): `*` and `?`
//! stay within a path segment, `**` crosses segments, `[abc]`/`[!a-z]` classes and
//! `{a,b}` alternatives.

/// Whether `path` matches `pattern`.
pub fn matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let path: Vec<char> = path.chars().collect();
    match_from(&pattern, &path, 0)
}

/// Nesting of `{}` and `**` recursion is bounded so that hostile patterns cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

fn match_from(pattern: &[char], path: &[char], depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let Some(&first) = pattern.first() else {
        return path.is_empty();
    };
    match first {
        '*' if pattern.get(1) == Some(&'*') => {
            let rest = &pattern[2..];
            (0..=path.len()).any(|skip| match_from(rest, &path[skip..], depth + 1))
        }
        '*' => {
            let rest = &pattern[1..];
            let segment_end = path.iter().position(|&c| c == '/').unwrap_or(path.len());
            (0..=segment_end).any(|skip| match_from(rest, &path[skip..], depth + 1))
        }
        '?' => {
            path.first().is_some_and(|&c| c != '/') && match_from(&pattern[1..], &path[1..], depth)
        }
        '[' => match (class_end(pattern), path.first()) {
            (Some(end), Some(&c)) if c != '/' => {
                class_matches(&pattern[1..end], c)
                    && match_from(&pattern[end + 1..], &path[1..], depth)
            }
            (None, Some(&c)) => c == '[' && match_from(&pattern[1..], &path[1..], depth),
            (Some(_), _) | (None, None) => false,
        },
        '{' => match alternatives(pattern) {
            Some((options, end)) => options.iter().any(|option| {
                let mut candidate: Vec<char> = option.clone();
                candidate.extend_from_slice(&pattern[end + 1..]);
                match_from(&candidate, path, depth + 1)
            }),
            None => path.first() == Some(&'{') && match_from(&pattern[1..], &path[1..], depth),
        },
        '\\' if pattern.len() > 1 => {
            path.first() == Some(&pattern[1]) && match_from(&pattern[2..], &path[1..], depth)
        }
        literal => path.first() == Some(&literal) && match_from(&pattern[1..], &path[1..], depth),
    }
}

fn class_end(pattern: &[char]) -> Option<usize> {
    pattern
        .iter()
        .skip(2)
        .position(|&c| c == ']')
        .map(|offset| offset + 2)
}

fn class_matches(class: &[char], c: char) -> bool {
    let (negated, class) = match class.first() {
        Some('!' | '^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut found = false;
    let mut index = 0;
    while index < class.len() {
        if index + 2 < class.len() && class[index + 1] == '-' {
            if class[index] <= c && c <= class[index + 2] {
                found = true;
            }
            index += 3;
        } else {
            if class[index] == c {
                found = true;
            }
            index += 1;
        }
    }
    found != negated
}

/// The comma-separated options of a `{...}` group at the start of `pattern`, and the index
/// of its closing brace.
fn alternatives(pattern: &[char]) -> Option<(Vec<Vec<char>>, usize)> {
    let mut depth = 0;
    let mut options = vec![Vec::new()];
    for (index, &c) in pattern.iter().enumerate().skip(1) {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some((options, index)),
            '}' => depth -= 1,
            ',' if depth == 0 => {
                options.push(Vec::new());
                continue;
            }
            _ => {}
        }
        options.last_mut()?.push(c);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_stay_in_their_segment() {
        assert!(matches("files/*.yaml", "files/a.yaml"));
        assert!(!matches("files/*.yaml", "files/sub/a.yaml"));
        assert!(matches("files/**.yaml", "files/sub/a.yaml"));
        assert!(matches("**", "a/b/c"));
        assert!(matches("dashboards/*.json", "dashboards/x.json"));
        assert!(!matches("*.json", "dashboards/x.json"));
    }

    #[test]
    fn classes_alternatives_and_single_characters() {
        assert!(matches("f?le.txt", "file.txt"));
        assert!(!matches("f?le.txt", "f/le.txt"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[!a-c]x", "bx"));
        assert!(matches("conf/{a,b}.conf", "conf/b.conf"));
        assert!(!matches("conf/{a,b}.conf", "conf/c.conf"));
        assert!(matches("{crds,files}/**", "crds/x/y.yaml"));
    }
}
