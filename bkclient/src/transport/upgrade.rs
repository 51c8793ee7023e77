//! dockerd's HTTP upgrade (`POST /grpc`, `POST /session` with `Upgrade: h2c`), written by hand
//! on a fresh connection so the bytes that follow the `101` head are kept.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::dial::Dialed;
use super::io::SessionIo;

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The largest error body read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How long an error body may take to arrive; what came by then is shown.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an upgrade failed (the caller adds the address).
#[derive(Debug)]
pub(crate) enum UpgradeError {
    /// A header cannot be sent as given.
    BadHeader(String),
    /// Writing or reading the connection failed, or the answer is not HTTP.
    Transport(String),
    /// The daemon answered with something else than `101`.
    Refused {
        /// HTTP status code.
        status: u16,
        /// dockerd's JSON `message`, the body text, or the reason phrase.
        message: String,
    },
}

/// Sends `POST path` with `Upgrade: h2c` and `headers`, and returns the connection after a `101`.
pub(crate) async fn upgrade(
    mut stream: Dialed,
    path: &str,
    headers: &[(String, String)],
) -> Result<SessionIo, UpgradeError> {
    let request = request_head(path, headers)?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| {
            UpgradeError::Transport(format!("sending the upgrade request failed: {error}"))
        })?;
    stream.flush().await.map_err(|error| {
        UpgradeError::Transport(format!("sending the upgrade request failed: {error}"))
    })?;

    let mut buffer = Vec::with_capacity(1024);
    let head_end = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut buffer))
        .await
        .map_err(|_| {
            UpgradeError::Transport(format!(
                "no HTTP response within {} s",
                HEAD_TIMEOUT.as_secs()
            ))
        })??;
    let head = ResponseHead::parse(&buffer[..head_end])?;
    let rest = buffer.split_off(head_end);
    if head.status == 101 {
        return Ok(SessionIo::from_boxed(rest, stream));
    }
    let body = read_error_body(&mut stream, rest, &head).await;
    Err(UpgradeError::Refused {
        status: head.status,
        message: error_message(&body, &head.reason),
    })
}

fn request_head(path: &str, headers: &[(String, String)]) -> Result<String, UpgradeError> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n"
    );
    for (name, value) in headers {
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
        if !name_ok {
            return Err(UpgradeError::BadHeader(format!(
                "`{name}` is not a valid HTTP header name"
            )));
        }
        if value
            .bytes()
            .any(|byte| byte.is_ascii_control() && byte != b'\t')
        {
            return Err(UpgradeError::BadHeader(format!(
                "the value of header {name} contains control characters: {value:?}"
            )));
        }
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    Ok(request)
}

/// How long the daemon may take to answer the upgrade request.
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads until the end of the response head; returns the index just past `\r\n\r\n`.
async fn read_head(stream: &mut Dialed, buffer: &mut Vec<u8>) -> Result<usize, UpgradeError> {
    let mut chunk = [0_u8; 4096];
    loop {
        let searched_from = buffer.len().saturating_sub(3);
        let count = stream.read(&mut chunk).await.map_err(|error| {
            UpgradeError::Transport(format!("reading the upgrade response failed: {error}"))
        })?;
        if count == 0 {
            return Err(UpgradeError::Transport(if buffer.is_empty() {
                "the connection closed without an HTTP response".to_owned()
            } else {
                "the connection closed in the middle of the HTTP response head".to_owned()
            }));
        }
        buffer.extend_from_slice(&chunk[..count]);
        if let Some(position) = find(&buffer[searched_from..], b"\r\n\r\n") {
            return Ok(searched_from + position + 4);
        }
        if buffer.len() > MAX_HEAD {
            return Err(UpgradeError::Transport(format!(
                "the HTTP response head is larger than {} KiB",
                MAX_HEAD / 1024
            )));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The parts of a response head this client needs.
#[derive(Debug)]
struct ResponseHead {
    status: u16,
    reason: String,
    content_length: Option<usize>,
    chunked: bool,
}

impl ResponseHead {
    fn parse(head: &[u8]) -> Result<Self, UpgradeError> {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let not_http =
            || UpgradeError::Transport(format!("the answer is not HTTP: {status_line:?}"));
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(not_http());
        }
        let status = parts
            .next()
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(not_http)?;
        let reason = parts.next().unwrap_or_default().trim().to_owned();
        let mut content_length = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = value.parse().ok();
            } else if name.trim().eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
        Ok(Self {
            status,
            reason,
            content_length,
            chunked,
        })
    }
}

/// Reads the body of a refusal (bounded in size and time), already-read bytes first.
async fn read_error_body(stream: &mut Dialed, mut body: Vec<u8>, head: &ResponseHead) -> Vec<u8> {
    let wanted = head.content_length.map(|length| length.min(MAX_ERROR_BODY));
    let complete = |body: &[u8]| match wanted {
        Some(length) => body.len() >= length,
        None => head.chunked && find(body, b"0\r\n\r\n").is_some(),
    };
    let read = async {
        let mut chunk = [0_u8; 4096];
        while !complete(&body) && body.len() < MAX_ERROR_BODY {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(count) => body.extend_from_slice(&chunk[..count]),
            }
        }
    };
    // A slow or silent peer only shortens the message.
    let _ = tokio::time::timeout(ERROR_BODY_TIMEOUT, read).await;
    if let Some(length) = wanted {
        body.truncate(length);
    }
    if head.chunked { dechunk(&body) } else { body }
}

/// Decodes a chunked body, keeping what is complete.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(body, b"\r\n") {
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        let start = line_end + 2;
        let Some(end) = start.checked_add(size) else {
            break;
        };
        if size == 0 || body.len() < end {
            out.extend_from_slice(&body[start.min(body.len())..end.min(body.len())]);
            break;
        }
        out.extend_from_slice(&body[start..end]);
        body = body.get(end + 2..).unwrap_or_default();
    }
    out
}

/// dockerd's JSON `{"message": "..."}`, else the body text, else the reason phrase.
pub(crate) fn error_message(body: &[u8], reason: &str) -> String {
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(serde_json::Value::String(message)) = object.get("message")
    {
        return message.trim().to_owned();
    }
    let text = String::from_utf8_lossy(body).trim().to_owned();
    if text.is_empty() {
        reason.to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_head_has_one_line_per_header() {
        let head = request_head(
            "/session",
            &[
                (
                    "X-Docker-Expose-Session-Grpc-Method".to_owned(),
                    "/a/B".to_owned(),
                ),
                (
                    "X-Docker-Expose-Session-Grpc-Method".to_owned(),
                    "/c/D".to_owned(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            head,
            "POST /session HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\
             X-Docker-Expose-Session-Grpc-Method: /a/B\r\nX-Docker-Expose-Session-Grpc-Method: /c/D\r\n\r\n"
        );
    }

    #[test]
    fn header_values_with_line_breaks_are_refused() {
        let error = request_head(
            "/session",
            &[("X-Name".to_owned(), "a\r\nEvil: 1".to_owned())],
        )
        .unwrap_err();
        assert!(matches!(error, UpgradeError::BadHeader(message) if message.contains("X-Name")));
        let error =
            request_head("/session", &[("Bad Name".to_owned(), "v".to_owned())]).unwrap_err();
        assert!(matches!(error, UpgradeError::BadHeader(message) if message.contains("Bad Name")));
    }

    #[test]
    fn heads_are_parsed_case_insensitively() {
        let head = ResponseHead::parse(
            b"HTTP/1.1 400 Bad Request\r\ncontent-LENGTH: 12\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!(head.status, 400);
        assert_eq!(head.reason, "Bad Request");
        assert_eq!(head.content_length, Some(12));
        assert!(head.chunked);
        assert!(matches!(
            ResponseHead::parse(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(UpgradeError::Transport(_))
        ));
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            b"hello world"
        );
        assert_eq!(dechunk(b"5\r\nhel"), b"hel");
        assert_eq!(dechunk(b"ffffffffffffffff\r\nhello\r\n"), b"");
    }

    #[test]
    fn error_messages_prefer_the_json_message() {
        assert_eq!(
            error_message(br#"{"message":"page not found"}"#, "Not Found"),
            "page not found"
        );
        assert_eq!(error_message(b"plain text\n", "Not Found"), "plain text");
        assert_eq!(error_message(b"", "Not Found"), "Not Found");
    }
}
