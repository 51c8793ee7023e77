//! The Docker API calls the BuildKit client needs besides BuildKit itself: pushing an image
//! (dockerd 20.10's BuildKit cannot push what its `moby` exporter stored).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::addr::DockerHost;
use crate::error::{ClientError, Result};
use crate::transport::error_message;

/// `X-Registry-Auth` for no credentials: base64 of `{}`.
const NO_AUTH: &str = "e30=";
/// The registry address Docker uses for Docker Hub credentials.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Pushes `image` (`repo:tag`; no tag = `latest`) from the daemon's image store to its registry
/// (`POST /images/{repo}/push?tag={tag}`), passing each progress line to `on_line`.
///
/// `auth` = `(username, password)` for the image's registry; `None` pushes anonymously.
pub async fn push(
    host: &DockerHost,
    image: &str,
    auth: Option<(String, String)>,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<()> {
    let failed = |message: String| ClientError::Push {
        image: image.to_owned(),
        address: host.label(),
        message,
    };
    let (repository, tag) = split_reference(image).map_err(&failed)?;
    let registry_auth = match auth {
        Some((username, password)) => {
            let json = serde_json::json!({
                "username": username,
                "password": password,
                "serveraddress": server_address(repository),
            });
            URL_SAFE.encode(json.to_string())
        }
        None => NO_AUTH.to_owned(),
    };
    let request = hyper::Request::post(format!("/images/{repository}/push?tag={tag}"))
        .header(hyper::header::HOST, "docker")
        .header("X-Registry-Auth", registry_auth)
        .header(hyper::header::CONTENT_LENGTH, "0")
        .body(Empty::<Bytes>::new())
        .map_err(|error| failed(format!("cannot build the request: {error}")))?;

    let stream = host.dial().await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| ClientError::Connect {
            address: host.label(),
            cause: error.to_string(),
        })?;
    let connection = tokio::spawn(connection);
    let outcome = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| failed(format!("the request failed: {error}")))?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            let reason = status.canonical_reason().unwrap_or("error");
            return Err(failed(format!(
                "HTTP {}: {}",
                status.as_u16(),
                error_message(&bytes, reason)
            )));
        }
        let mut pending = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|error| failed(format!("reading the progress failed: {error}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                handle_line(&line, on_line).map_err(&failed)?;
            }
        }
        handle_line(&pending, on_line).map_err(&failed)
    }
    .await;
    connection.abort();
    outcome
}

/// Splits `repo:tag` (the registry's port is not a tag); digests cannot be pushed by name.
fn split_reference(image: &str) -> std::result::Result<(&str, &str), String> {
    if image.contains('@') {
        return Err("a reference with a digest cannot be pushed; give repo:tag".to_owned());
    }
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    let (repository, tag) = match image[name_start..].rfind(':') {
        Some(colon) => (
            &image[..name_start + colon],
            &image[name_start + colon + 1..],
        ),
        None => (image, "latest"),
    };
    let valid_repository = !repository.is_empty()
        && repository
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._-/:".contains(&byte));
    let valid_tag = !tag.is_empty()
        && tag
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte));
    if !valid_repository || !valid_tag {
        return Err("not a valid image reference (expected repo:tag)".to_owned());
    }
    Ok((repository, tag))
}

/// The registry part of a repository, as Docker names it in credentials.
fn server_address(repository: &str) -> String {
    match repository.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_owned()
        }
        _ => DOCKER_HUB_SERVER.to_owned(),
    }
}

/// One JSON line of the push progress: shown when it has a status or progress, an error when
/// it carries `error`/`errorDetail`.
fn handle_line(
    line: &[u8],
    on_line: &mut (dyn FnMut(&str) + Send),
) -> std::result::Result<(), String> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(());
    }
    let Ok(serde_json::Value::Object(message)) = serde_json::from_slice::<serde_json::Value>(line)
    else {
        on_line(&String::from_utf8_lossy(line));
        return Ok(());
    };
    let text = |key: &str| {
        message
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    };
    let detail = message
        .get("errorDetail")
        .and_then(|detail| detail.get("message"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if !detail.is_empty() {
        return Err(detail.to_owned());
    }
    if !text("error").is_empty() {
        return Err(text("error").to_owned());
    }
    let (id, status, progress) = (text("id"), text("status"), text("progress"));
    if status.is_empty() && progress.is_empty() {
        return Ok(());
    }
    let mut shown = String::new();
    if !id.is_empty() {
        shown.push_str(id);
        shown.push_str(": ");
    }
    shown.push_str(status);
    if !progress.is_empty() {
        if !status.is_empty() {
            shown.push(' ');
        }
        shown.push_str(progress);
    }
    on_line(&shown);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        assert_eq!(
            split_reference("127.0.0.1:5000/it/k:1"),
            Ok(("127.0.0.1:5000/it/k", "1"))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/it/k"),
            Ok(("127.0.0.1:5000/it/k", "latest"))
        );
        assert_eq!(split_reference("busybox:1.36"), Ok(("busybox", "1.36")));
        assert!(split_reference("app@sha256:abcd").is_err());
        assert!(split_reference("app:bad tag").is_err());
        assert!(split_reference(":1").is_err());
    }

    #[test]
    fn credentials_name_the_registry_like_docker() {
        assert_eq!(server_address("127.0.0.1:5000/it/k"), "127.0.0.1:5000");
        assert_eq!(server_address("localhost/app"), "localhost");
        assert_eq!(server_address("library/busybox"), DOCKER_HUB_SERVER);
        assert_eq!(server_address("busybox"), DOCKER_HUB_SERVER);
    }

    /// A fake dockerd answering one request with `response`; returns its port and the request
    /// head it received.
    async fn fake_daemon(response: String) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0_u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
            String::from_utf8(head).unwrap()
        });
        (port, server)
    }

    fn host(port: u16) -> DockerHost {
        DockerHost::Tcp {
            host: "127.0.0.1".to_owned(),
            port,
            tls: None,
        }
    }

    fn chunked(lines: &[&str]) -> String {
        let mut body = String::new();
        for line in lines {
            let text = format!("{line}\r\n");
            write!(body, "{:x}\r\n{text}\r\n", text.len()).unwrap();
        }
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{body}0\r\n\r\n"
        )
    }

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    #[tokio::test]
    async fn push_streams_progress_and_sends_the_credentials() {
        let (port, server) = fake_daemon(chunked(&[
            r#"{"status":"The push refers to repository [127.0.0.1:5000/it/k]"}"#,
            r#"{"status":"Pushing","progressDetail":{"current":1,"total":2},"progress":"[=>  ] 1B/2B","id":"abc"}"#,
            r#"{"progressDetail":{},"aux":{"Tag":"1","Digest":"sha256:00","Size":528}}"#,
            r#"{"status":"1: digest: sha256:00 size: 528"}"#,
        ]))
        .await;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&lines);
        let mut on_line = move |line: &str| seen.lock().unwrap().push(line.to_owned());
        push(
            &host(port),
            "127.0.0.1:5000/it/k:1",
            Some(("user".to_owned(), "pa ss".to_owned())),
            &mut on_line,
        )
        .await
        .unwrap();
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "The push refers to repository [127.0.0.1:5000/it/k]",
                "abc: Pushing [=>  ] 1B/2B",
                "1: digest: sha256:00 size: 528",
            ]
        );
        let head = server.await.unwrap();
        assert!(
            head.starts_with("POST /images/127.0.0.1:5000/it/k/push?tag=1 HTTP/1.1\r\n"),
            "{head}"
        );
        let auth = header(&head, "X-Registry-Auth").expect("X-Registry-Auth header");
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE.decode(auth).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"username": "user", "password": "pa ss", "serveraddress": "127.0.0.1:5000"})
        );
    }

    #[tokio::test]
    async fn anonymous_pushes_send_an_empty_auth_object() {
        let (port, server) = fake_daemon(chunked(&[r#"{"status":"done"}"#])).await;
        push(&host(port), "127.0.0.1:5000/app", None, &mut |_: &str| {})
            .await
            .unwrap();
        let head = server.await.unwrap();
        assert!(
            head.contains("/images/127.0.0.1:5000/app/push?tag=latest "),
            "{head}"
        );
        assert_eq!(header(&head, "X-Registry-Auth"), Some(NO_AUTH));
    }

    #[tokio::test]
    async fn an_error_line_fails_the_push_naming_the_image() {
        let (port, _server) = fake_daemon(chunked(&[
            r#"{"status":"Preparing","id":"abc"}"#,
            r#"{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}"#,
        ]))
        .await;
        let error = push(
            &host(port),
            "127.0.0.1:5000/it/k:1",
            None,
            &mut |_: &str| {},
        )
        .await
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("127.0.0.1:5000/it/k:1"), "{text}");
        assert!(
            text.contains("unauthorized: authentication required"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn http_errors_show_the_daemons_message() {
        let body = r#"{"message":"No such image: 127.0.0.1:5000/it/k:1"}"#;
        let (port, _server) = fake_daemon(format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
        .await;
        let error = push(
            &host(port),
            "127.0.0.1:5000/it/k:1",
            None,
            &mut |_: &str| {},
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().contains("HTTP 404: No such image"),
            "{error}"
        );
    }
}
