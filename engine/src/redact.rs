//! Hiding what a URL can carry in secret (`user:password@`, query strings that hold tokens)
//! before it is printed or recorded in an image's history.

/// `text` with the user information and the query of every URL in it replaced by `***`.
pub fn redact_urls(text: &str) -> String {
    text.split(' ')
        .map(redact_word)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A Kubefile line as progress output shows it: trimmed, without a trailing `\`, at most
/// 120 characters (then ` ...`), with URLs redacted.
pub fn instruction_text(line: &str) -> String {
    let line = redact_urls(line.trim());
    let mut text: String = line
        .trim_end_matches('\\')
        .trim_end()
        .chars()
        .take(120)
        .collect();
    if text.len() < line.len() {
        text.push_str(" ...");
    }
    text
}

fn redact_word(word: &str) -> String {
    let Some(scheme_end) = word.find("://") else {
        return word.to_owned();
    };
    let (scheme, rest) = word.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let path = match path.find('?') {
        Some(query) => {
            let fragment = path[query..].find('#').map_or("", |f| &path[query + f..]);
            format!("{}?***{fragment}", &path[..query])
        }
        None => path.to_owned(),
    };
    format!("{scheme}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::redact_urls;

    #[test]
    fn credentials_and_queries_are_hidden() {
        assert_eq!(
            redact_urls("ADD https://user:secret@host:8443/a.tgz?token=abc#x /opt/"),
            "ADD https://***@host:8443/a.tgz?***#x /opt/"
        );
        assert_eq!(
            redact_urls("ADD https://host/a.tgz /opt/"),
            "ADD https://host/a.tgz /opt/"
        );
        assert_eq!(redact_urls("COPY a b"), "COPY a b");
    }
}
