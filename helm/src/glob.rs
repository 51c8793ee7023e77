//! Glob matching for `.Files.Glob` (gobwas/glob with `/` as the separator: `*` and `?` stay
//! within a path segment, `**` crosses segments, `[abc]`/`[!a-z]` classes, `{a,b}`
//! alternatives) and for `.helmignore` (Go's `filepath.Match`: no `**`, no braces, `[^a-z]`).
//! Matching is dynamic programming over pattern and path positions, so a hostile pattern
//! (`*a*a*a*a*a*x`) costs pattern length times path length, never exponential time.

/// Most alternatives a `{a,b}` pattern expands to; more never match.
const MAX_ALTERNATIVES: usize = 256;

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character other than `/`.
    One,
    /// `*`: any run without `/`.
    Segment,
    /// `**`: any run.
    Any,
    /// `[...]`: one character other than `/` in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Whether `path` matches the `.Files.Glob` pattern.
pub fn matches(pattern: &str, path: &str) -> bool {
    let path: Vec<char> = path.chars().collect();
    expand_braces(pattern).iter().any(|alternative| {
        tokens(alternative, true).is_some_and(|tokens| match_tokens(&tokens, &path))
    })
}

/// Whether `path` matches the pattern with Go's `filepath.Match` rules.
pub fn matches_path(pattern: &str, path: &str) -> bool {
    let path: Vec<char> = path.chars().collect();
    tokens(pattern, false).is_some_and(|tokens| match_tokens(&tokens, &path))
}

/// Compiles a pattern (`gobwas` adds `**` and `!` negation in classes); `None` when malformed.
fn tokens(pattern: &str, gobwas: bool) -> Option<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        match chars[index] {
            '*' if gobwas && chars.get(index + 1) == Some(&'*') => {
                out.push(Token::Any);
                index += 2;
            }
            '*' => {
                out.push(Token::Segment);
                index += 1;
            }
            '?' => {
                out.push(Token::One);
                index += 1;
            }
            '\\' => {
                out.push(Token::Literal(*chars.get(index + 1)?));
                index += 2;
            }
            '[' => {
                let mut position = index + 1;
                let negated = matches!(chars.get(position), Some('^'))
                    || (gobwas && matches!(chars.get(position), Some('!')));
                if negated {
                    position += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let low = *chars.get(position)?;
                    if low == ']' && !ranges.is_empty() {
                        break;
                    }
                    if chars.get(position + 1) == Some(&'-')
                        && chars.get(position + 2).is_some_and(|c| *c != ']')
                    {
                        ranges.push((low, chars[position + 2]));
                        position += 3;
                    } else {
                        ranges.push((low, low));
                        position += 1;
                    }
                }
                out.push(Token::Class { negated, ranges });
                index = position + 1;
            }
            literal => {
                out.push(Token::Literal(literal));
                index += 1;
            }
        }
    }
    Some(out)
}

/// `reachable[j]`: the pattern's first `i` tokens can match the path's first `j` characters.
fn match_tokens(tokens: &[Token], path: &[char]) -> bool {
    let mut reachable = vec![false; path.len() + 1];
    reachable[0] = true;
    for token in tokens {
        let mut next = vec![false; path.len() + 1];
        if matches!(token, Token::Any | Token::Segment) {
            // A star extends any reachable start to every later position (within its
            // segment for `*`).
            let mut open = false;
            for end in 0..=path.len() {
                if matches!(token, Token::Segment) && end > 0 && path[end - 1] == '/' {
                    open = false;
                }
                open |= reachable[end];
                next[end] = open;
            }
            reachable = next;
            continue;
        }
        for start in 0..path.len() {
            if reachable[start] && accepts(token, path[start]) {
                next[start + 1] = true;
            }
        }
        reachable = next;
    }
    reachable[path.len()]
}

/// Whether a one-character token accepts `c` (stars span runs and are handled apart).
fn accepts(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(literal) => *literal == c,
        Token::One => c != '/',
        Token::Class { negated, ranges } => {
            c != '/' && ranges.iter().any(|(low, high)| *low <= c && c <= *high) != *negated
        }
        Token::Any | Token::Segment => false,
    }
}

/// Every pattern a `{a,b}` group stands for (none when there are too many).
fn expand_braces(pattern: &str) -> Vec<String> {
    let Some(open) = pattern.find('{') else {
        return vec![pattern.to_owned()];
    };
    let mut depth = 0;
    let mut options = vec![String::new()];
    for (offset, c) in pattern[open + 1..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                let rest = &pattern[open + 1 + offset + 1..];
                let mut out = Vec::new();
                for option in options {
                    for tail in expand_braces(&format!("{option}{rest}")) {
                        if out.len() >= MAX_ALTERNATIVES {
                            return Vec::new();
                        }
                        out.push(format!("{}{tail}", &pattern[..open]));
                    }
                }
                return out;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                options.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = options.last_mut() {
            last.push(c);
        }
    }
    vec![pattern.to_owned()]
}

#[cfg(test)]
mod tests {
    use super::{matches, matches_path};

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

    #[test]
    fn filepath_match_has_no_double_star_or_braces() {
        assert!(matches_path("docs/*.md", "docs/a.md"));
        assert!(matches_path("[^a]x", "bx"));
        assert!(!matches_path("{a,b}", "a"));
        assert!(matches_path("{a,b}", "{a,b}"));
        assert!(!matches_path("*", "a/b"));
    }

    #[test]
    fn hostile_patterns_take_polynomial_time() {
        let path = "a".repeat(5_000);
        assert!(!matches(&format!("{}x", "**a".repeat(60)), &path));
        assert!(!matches_path(&format!("{}x", "*a".repeat(60)), &path));
        assert!(matches(&"*a".repeat(60), &path));
    }
}
