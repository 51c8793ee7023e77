//! Go's `path/filepath.Match` on Unix, which fsutil uses for include patterns and wildcard
//! follow paths: `*` is any run of non-`/` characters, `?` one non-`/` character, `[...]` a
//! class (`[^...]` negated, `a-z` ranges, `\` escapes) and `\c` the character `c`. A malformed
//! pattern matches nothing (fsutil ignores Match's error).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Whether `name` matches the Go glob `pattern`.
pub fn go_match(pattern: &str, name: &str) -> bool {
    let Some(tokens) = tokenize(pattern) else {
        return false;
    };
    let name: Vec<char> = name.chars().collect();
    // matches[t][n]: tokens[t..] match name[n..]; filled from the end.
    let mut next = vec![false; name.len() + 1];
    next[name.len()] = true;
    for token in tokens.iter().rev() {
        let mut current = vec![false; name.len() + 1];
        for at in (0..=name.len()).rev() {
            current[at] = match token {
                Token::Star => next[at] || (at < name.len() && name[at] != '/' && current[at + 1]),
                single => at < name.len() && matches_one(single, name[at]) && next[at + 1],
            };
        }
        next = current;
    }
    next[0]
}

/// Whether a path element holds a wildcard (fsutil's `containsWildcards`: `*`, `?` or `[`
/// not escaped by `\`).
pub fn contains_wildcards(name: &str) -> bool {
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

fn matches_one(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(literal) => *literal == c,
        Token::AnyOne => c != '/',
        Token::Class { negated, ranges } => {
            ranges.iter().any(|&(low, high)| low <= c && c <= high) != *negated
        }
        Token::Star => false,
    }
}

/// The pattern as tokens, or `None` when Go would call it malformed.
fn tokenize(pattern: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        match chars[at] {
            '*' => {
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
                at += 1;
            }
            '?' => {
                tokens.push(Token::AnyOne);
                at += 1;
            }
            '\\' => {
                tokens.push(Token::Literal(*chars.get(at + 1)?));
                at += 2;
            }
            '[' => {
                let (token, end) = class(&chars, at + 1)?;
                tokens.push(token);
                at = end;
            }
            c => {
                tokens.push(Token::Literal(c));
                at += 1;
            }
        }
    }
    Some(tokens)
}

/// A class body starting at `at` (after `[`): the token and the index after its `]`.
fn class(chars: &[char], mut at: usize) -> Option<(Token, usize)> {
    let negated = chars.get(at) == Some(&'^');
    if negated {
        at += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(at) == Some(&']') && !ranges.is_empty() {
            return Some((Token::Class { negated, ranges }, at + 1));
        }
        let (low, after_low) = class_char(chars, at)?;
        at = after_low;
        let mut high = low;
        if chars.get(at) == Some(&'-') {
            let (end, after_high) = class_char(chars, at + 1)?;
            high = end;
            at = after_high;
        }
        ranges.push((low, high));
    }
}

/// Go's `getEsc`: one (possibly escaped) class character; a bare `-` or `]` is malformed.
fn class_char(chars: &[char], mut at: usize) -> Option<(char, usize)> {
    match chars.get(at)? {
        '-' | ']' => return None,
        '\\' => at += 1,
        _ => {}
    }
    let c = *chars.get(at)?;
    Some((c, at + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases from Go's `path/filepath` match tests.
    #[test]
    fn matches_like_go() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("[]a]", "]", false),
            ("[-]", "-", false),
            ("[x-]", "x", false),
            ("[x-]", "-", false),
            ("[x-]", "z", false),
            ("[-x]", "x", false),
            ("[-x]", "-", false),
            ("[-x]", "a", false),
            ("\\", "a", false),
            ("[a-b-c]", "a", false),
            ("[", "a", false),
            ("[^", "a", false),
            ("[^bc", "a", false),
            ("a[", "a", false),
            ("a[", "ab", false),
            ("*x", "xxx", true),
            ("Kubefile", "Kubefile", true),
            ("dir/*.yaml", "dir/a.yaml", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(go_match(pattern, name), *expected, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn wildcards_are_found_unless_escaped() {
        assert!(contains_wildcards("*.yaml"));
        assert!(contains_wildcards("a?"));
        assert!(contains_wildcards("[ab]"));
        assert!(!contains_wildcards("plain"));
        assert!(!contains_wildcards("a\\*b"));
    }
}
