//! Sprig's path, URL and network functions (POSIX paths for both `base` and `osBase`).

use std::collections::BTreeMap;

use gotemplate::{Functions, Value};

use crate::args::{Outcome, fixed, map, string};

pub(crate) fn register(functions: &mut Functions) {
    functions.insert("base", |_, args| path_function("base", args, base));
    functions.insert("osBase", |_, args| path_function("osBase", args, base));
    functions.insert("dir", |_, args| {
        path_function("dir", args, |path| dir(path).into())
    });
    functions.insert("osDir", |_, args| {
        path_function("osDir", args, |path| dir(path).into())
    });
    functions.insert("clean", |_, args| {
        path_function("clean", args, |path| clean(path).into())
    });
    functions.insert("osClean", |_, args| {
        path_function("osClean", args, |path| clean(path).into())
    });
    functions.insert("ext", |_, args| path_function("ext", args, ext));
    functions.insert("osExt", |_, args| path_function("osExt", args, ext));
    functions.insert("isAbs", |_, args| {
        path_function("isAbs", args, |path| path.starts_with('/').into())
    });
    functions.insert("osIsAbs", |_, args| {
        path_function("osIsAbs", args, |path| path.starts_with('/').into())
    });
    functions.insert("getHostByName", |_, args| {
        path_function("getHostByName", args, |_| "".into())
    });
    functions.insert("urlParse", |_, args| {
        let [text] = fixed("urlParse", args)?;
        url_parse(string(text)?)
    });
    functions.insert("urlJoin", |_, args| {
        let [dict] = fixed("urlJoin", args)?;
        url_join(&map(dict)?.borrow())
    });
}

fn path_function(name: &str, args: &[Value], operation: fn(&str) -> Value) -> Outcome {
    let [path] = fixed(name, args)?;
    Ok(operation(string(path)?))
}

/// Go's `path.Clean`.
pub(crate) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Base`.
fn base(path: &str) -> Value {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).into()
}

/// Go's `path.Dir`.
fn dir(path: &str) -> String {
    let cut = path.rfind('/').map_or(0, |index| index + 1);
    clean(&path[..cut])
}

/// Go's `path.Ext`.
fn ext(path: &str) -> Value {
    let last = path.rsplit('/').next().unwrap_or(path);
    last.rfind('.').map_or("", |index| &last[index..]).into()
}

/// A URL split as Go's `url.Parse` splits it.
struct Url {
    scheme: String,
    opaque: String,
    userinfo: String,
    host: String,
    path: String,
    query: String,
    fragment: String,
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text
                .get(index + 1..index + 3)
                .filter(|hex| hex.bytes().all(|byte| byte.is_ascii_hexdigit()));
            let hex = hex.ok_or_else(|| {
                format!(
                    "invalid URL escape {}",
                    crate::args::go_quote(&text[index..(index + 3).min(text.len())])
                )
            })?;
            out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn parse_url(text: &str) -> Result<Url, String> {
    let (rest, fragment) = text.split_once('#').unwrap_or((text, ""));
    let fragment = percent_decode(fragment)?;
    let mut url = Url {
        scheme: String::new(),
        opaque: String::new(),
        userinfo: String::new(),
        host: String::new(),
        path: String::new(),
        query: String::new(),
        fragment,
    };
    let mut rest = rest;
    if let Some(colon) = rest.find(':') {
        let candidate = &rest[..colon];
        let valid = candidate.starts_with(|c: char| c.is_ascii_alphabetic())
            && candidate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if colon == 0 {
            return Err("missing protocol scheme".into());
        }
        if valid {
            url.scheme = candidate.to_ascii_lowercase();
            rest = &rest[colon + 1..];
        }
    }
    if let Some((before, query)) = rest.split_once('?') {
        url.query = query.to_string();
        rest = before;
    }
    if !url.scheme.is_empty() && !rest.starts_with('/') {
        url.opaque = rest.to_string();
        return Ok(url);
    }
    if let Some(after) = rest
        .strip_prefix("//")
        .filter(|_| !url.scheme.is_empty() || rest.starts_with("//"))
    {
        let end = after.find('/').unwrap_or(after.len());
        let authority = &after[..end];
        rest = &after[end..];
        let host = match authority.rsplit_once('@') {
            Some((user, host)) => {
                url.userinfo = user.to_string();
                host
            }
            None => authority,
        };
        url.host = percent_decode(host)?;
    }
    url.path = percent_decode(rest)?;
    Ok(url)
}

fn url_parse(text: &str) -> Outcome {
    let url = parse_url(text).map_err(|error| {
        format!(
            "unable to parse url: parse {}: {error}",
            crate::args::go_quote(text)
        )
    })?;
    let hostname = if url.host.starts_with('[') {
        url.host[1..].split(']').next().unwrap_or("").to_string()
    } else {
        url.host
            .rsplit_once(':')
            .map_or(url.host.as_str(), |(name, _)| name)
            .to_string()
    };
    let entries: BTreeMap<String, Value> = [
        ("scheme", url.scheme),
        ("host", url.host),
        ("hostname", hostname),
        ("path", url.path),
        ("query", url.query),
        ("opaque", url.opaque),
        ("fragment", url.fragment),
        ("userinfo", url.userinfo),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), Value::from(value)))
    .collect();
    Ok(Value::map(entries))
}

/// Go's `url.URL.String()` for the parts `urlJoin` sets.
fn url_join(dict: &BTreeMap<String, Value>) -> Outcome {
    let part = |key: &str| -> Result<String, String> {
        match dict.get(key) {
            None => Ok(String::new()),
            Some(Value::String(text)) => Ok(text.to_string()),
            Some(other) => Err(format!(
                "unable to parse {key} key, must be of type string, but {} found",
                other.kind_name()
            )),
        }
    };
    let (scheme, host, path, query, opaque, fragment, userinfo) = (
        part("scheme")?,
        part("host")?,
        part("path")?,
        part("query")?,
        part("opaque")?,
        part("fragment")?,
        part("userinfo")?,
    );
    let mut out = String::new();
    if !scheme.is_empty() {
        out.push_str(&scheme);
        out.push(':');
    }
    if opaque.is_empty() {
        if !scheme.is_empty() || !host.is_empty() || !userinfo.is_empty() {
            if !host.is_empty() || !path.is_empty() || !userinfo.is_empty() {
                out.push_str("//");
            }
            if !userinfo.is_empty() {
                out.push_str(&userinfo);
                out.push('@');
            }
            out.push_str(&host);
        }
        if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
            out.push('/');
        }
        out.push_str(&path);
    } else {
        out.push_str(&opaque);
    }
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(&fragment);
    }
    Ok(out.into())
}
