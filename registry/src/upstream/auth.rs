//! Authentication with an upstream: the `WWW-Authenticate` challenge of a 401, and bearer
//! tokens cached per scope until they expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a 401 asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Challenge {
    /// `Basic realm=...`: send the user name and password with every request.
    Basic,
    /// `Bearer realm=...,service=...,scope=...`: get a token from `realm` first.
    Bearer {
        /// The token service's URL.
        realm: String,
        /// The `service` parameter for the token service.
        service: Option<String>,
        /// The scope the registry says the request needs.
        scope: Option<String>,
    },
}

/// The challenge of the `WWW-Authenticate` header values: Bearer when offered (it is the
/// stronger), else Basic; `None` for anything else.
pub(super) fn parse_challenges<'a>(
    headers: impl IntoIterator<Item = &'a str>,
) -> Option<Challenge> {
    let mut basic = false;
    for header in headers {
        for (scheme, params) in split_challenges(header) {
            if scheme.eq_ignore_ascii_case("bearer") {
                let get = |name: &str| {
                    params
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(name))
                        .map(|(_, value)| value.clone())
                };
                if let Some(realm) = get("realm") {
                    return Some(Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scope: get("scope"),
                    });
                }
            } else if scheme.eq_ignore_ascii_case("basic") {
                basic = true;
            }
        }
    }
    basic.then_some(Challenge::Basic)
}

/// The challenges of one header value: `Scheme k=v, k="v, with comma", Scheme2 ...`.
fn split_challenges(header: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut challenges: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut rest = header.trim_start();
    while !rest.is_empty() {
        let token_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..token_end];
        let after = rest[token_end..].trim_start();
        if let Some(value_text) = after.strip_prefix('=').filter(|_| !token.is_empty()) {
            let (value, remaining) = parse_value(value_text.trim_start());
            if let Some((_, params)) = challenges.last_mut() {
                params.push((token.to_owned(), value));
            }
            rest = remaining;
        } else {
            if !token.is_empty() {
                challenges.push((token.to_owned(), Vec::new()));
            }
            rest = after;
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    challenges
}

/// A quoted string (with `\` escapes) or a token, and the text after it.
fn parse_value(text: &str) -> (String, &str) {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &quoted[index + 1..]),
                _ => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = text
            .find(|c: char| c == ',' || c.is_whitespace())
            .unwrap_or(text.len());
        (text[..end].to_owned(), &text[end..])
    }
}

/// How long a token lives when the token service does not say (the distribution spec's
/// default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// A token is renewed this long before it expires, so it does not expire in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

/// The token of a token service's JSON answer (`token` or `access_token`) and how long it
/// may be used (`expires_in` seconds); an error, without any of the answer's text (it may
/// hold a token), when the answer holds none.
pub(super) fn parse_token_answer(body: &[u8]) -> Result<(String, Duration), String> {
    let answer: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| "the token service's answer is not JSON".to_owned())?;
    let token = ["token", "access_token"]
        .iter()
        .find_map(|key| answer.get(key).and_then(serde_json::Value::as_str))
        .filter(|token| !token.is_empty())
        .ok_or("the token service's answer holds no `token`")?;
    let lifetime = answer
        .get("expires_in")
        .and_then(serde_json::Value::as_u64)
        .filter(|seconds| *seconds > 0)
        .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
    Ok((token.to_owned(), lifetime))
}

/// What an upstream was found to want, and the tokens it gave.
#[derive(Default)]
pub(super) struct AuthState {
    /// The upstream answered a Basic challenge: send credentials up front.
    basic: bool,
    /// Bearer tokens by scope, with the instant they stop being used.
    tokens: HashMap<String, (String, Instant)>,
}

/// What to send with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Authorization {
    /// Nothing (the first request to an upstream, or an anonymous one).
    Anonymous,
    /// The configured user name and password.
    Basic,
    /// A bearer token.
    Bearer(String),
}

/// Most tokens kept per upstream; past that, expired ones are dropped, then all.
const MAX_TOKENS: usize = 1024;

impl AuthState {
    /// What to send for a request needing `scope`, from what is known now.
    pub(super) fn authorization(&self, scope: &str, now: Instant) -> Authorization {
        if let Some((token, until)) = self.tokens.get(scope)
            && *until > now
        {
            return Authorization::Bearer(token.clone());
        }
        if self.basic {
            Authorization::Basic
        } else {
            Authorization::Anonymous
        }
    }

    /// The upstream wants Basic credentials.
    pub(super) fn remember_basic(&mut self) {
        self.basic = true;
    }

    /// Keeps a token for `scope` for `lifetime` (less a margin).
    pub(super) fn remember_token(
        &mut self,
        scope: &str,
        token: String,
        lifetime: Duration,
        now: Instant,
    ) {
        if self.tokens.len() >= MAX_TOKENS {
            self.tokens.retain(|_, (_, until)| *until > now);
            if self.tokens.len() >= MAX_TOKENS {
                self.tokens.clear();
            }
        }
        let usable = lifetime.saturating_sub(EXPIRY_MARGIN.min(lifetime / 2));
        self.tokens.insert(scope.to_owned(), (token, now + usable));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_with_quoted_commas() {
        let header = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#;
        assert_eq!(
            parse_challenges([header]),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
    }

    #[test]
    fn bearer_wins_over_basic_and_unknown_schemes_are_ignored() {
        let headers = [
            r#"Basic realm="x""#,
            r#"Negotiate, bearer realm=http://127.0.0.1:1/t, error="invalid_token""#,
        ];
        assert_eq!(
            parse_challenges(headers),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: None,
                scope: None,
            })
        );
        assert_eq!(
            parse_challenges([r#"Basic realm="registry""#]),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenges(["Negotiate abc"]), None);
        assert_eq!(parse_challenges([r#"Bearer service="no realm""#]), None);
        assert_eq!(parse_challenges([]), None);
    }

    #[test]
    fn escaped_quotes_in_values() {
        assert_eq!(
            parse_challenges([r#"Bearer realm="http://h/t?a=\"b\"""#]),
            Some(Challenge::Bearer {
                realm: r#"http://h/t?a="b""#.into(),
                service: None,
                scope: None,
            })
        );
    }

    #[test]
    fn token_answers() {
        let (token, lifetime) = parse_token_answer(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!(
            (token.as_str(), lifetime),
            ("abc", Duration::from_secs(300))
        );
        let (token, lifetime) = parse_token_answer(br#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!((token.as_str(), lifetime), ("xyz", DEFAULT_TOKEN_LIFETIME));
        assert!(parse_token_answer(br#"{"token":""}"#).is_err());
        assert!(parse_token_answer(b"<html>").is_err());
        let error = parse_token_answer(br#"{"token":{"value":"secret-token"}}"#).unwrap_err();
        assert!(!error.contains("secret-token"), "{error}");
    }

    #[test]
    fn tokens_are_used_until_they_expire_and_per_scope() {
        let mut state = AuthState::default();
        let now = Instant::now();
        assert_eq!(
            state.authorization("repository:a:pull", now),
            Authorization::Anonymous
        );
        state.remember_token(
            "repository:a:pull",
            "t1".into(),
            Duration::from_secs(60),
            now,
        );
        assert_eq!(
            state.authorization("repository:a:pull", now + Duration::from_secs(30)),
            Authorization::Bearer("t1".into())
        );
        assert_eq!(
            state.authorization("repository:a:pull", now + Duration::from_secs(58)),
            Authorization::Anonymous,
            "renewed before it expires"
        );
        assert_eq!(
            state.authorization("repository:b:pull", now),
            Authorization::Anonymous
        );
        state.remember_basic();
        assert_eq!(
            state.authorization("repository:b:pull", now),
            Authorization::Basic
        );
    }
}
