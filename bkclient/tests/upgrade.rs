//! dockerd's HTTP upgrade against fake daemons on 127.0.0.1 and on a unix socket: leftover
//! bytes after the `101` head, refusals with dockerd's JSON message, unreachable daemons.

use std::path::PathBuf;

use bkclient::addr::{Address, DockerHost};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

const SWITCHING: &str =
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";

/// Reads the request head byte by byte (so nothing past it is consumed).
async fn read_request_head<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.expect("request head");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("UTF-8 head")
}

/// Plays dockerd: reads the head, answers `reply` in one write, then (after a 101) answers
/// `ping` with `pong`. Returns the request head.
async fn play_daemon<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, reply: Vec<u8>) -> String {
    let head = read_request_head(&mut stream).await;
    stream.write_all(&reply).await.expect("reply");
    if reply.starts_with(b"HTTP/1.1 101") {
        let mut ping = [0_u8; 4];
        stream.read_exact(&mut ping).await.expect("ping");
        assert_eq!(&ping, b"ping");
        stream.write_all(b"pong").await.expect("pong");
    }
    stream.shutdown().await.expect("shutdown");
    head
}

fn session_headers() -> Vec<(String, String)> {
    vec![
        (
            "X-Docker-Expose-Session-Uuid".to_owned(),
            "abc123".to_owned(),
        ),
        (
            "X-Docker-Expose-Session-Name".to_owned(),
            "context".to_owned(),
        ),
        (
            "X-Docker-Expose-Session-Sharedkey".to_owned(),
            "f00d".to_owned(),
        ),
        (
            "X-Docker-Expose-Session-Grpc-Method".to_owned(),
            "/grpc.health.v1.Health/Check".to_owned(),
        ),
        (
            "X-Docker-Expose-Session-Grpc-Method".to_owned(),
            "/moby.filesync.v1.FileSync/DiffCopy".to_owned(),
        ),
    ]
}

fn tcp_host(port: u16) -> DockerHost {
    DockerHost::Tcp {
        host: "127.0.0.1".to_owned(),
        port,
        tls: None,
    }
}

/// Uses an upgraded connection: everything read after the round trip must be the leftover
/// followed by the daemon's `pong`.
async fn check_upgraded<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, leftover: &[u8]) {
    io.write_all(b"ping").await.expect("ping");
    let mut received = Vec::new();
    io.read_to_end(&mut received).await.expect("read");
    let mut expected = leftover.to_vec();
    expected.extend_from_slice(b"pong");
    assert_eq!(received, expected);
}

#[tokio::test]
async fn session_upgrade_over_tcp_keeps_the_bytes_glued_to_the_head() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let leftover = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04";
    let mut reply = SWITCHING.as_bytes().to_vec();
    reply.extend_from_slice(leftover);
    let daemon = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        play_daemon(socket, reply).await
    });

    let io = tcp_host(port)
        .upgrade_session(&session_headers())
        .await
        .expect("upgrade");
    check_upgraded(io, leftover).await;

    let head = daemon.await.unwrap();
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(lines[0], "POST /session HTTP/1.1");
    for expected in [
        "Host: docker",
        "Connection: Upgrade",
        "Upgrade: h2c",
        "Content-Length: 0",
        "X-Docker-Expose-Session-Uuid: abc123",
        "X-Docker-Expose-Session-Name: context",
        "X-Docker-Expose-Session-Sharedkey: f00d",
        "X-Docker-Expose-Session-Grpc-Method: /grpc.health.v1.Health/Check",
        "X-Docker-Expose-Session-Grpc-Method: /moby.filesync.v1.FileSync/DiffCopy",
    ] {
        assert!(
            lines.contains(&expected),
            "`{expected}` missing in:\n{head}"
        );
    }
}

#[tokio::test]
async fn session_upgrade_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let mut reply = SWITCHING.as_bytes().to_vec();
    reply.extend_from_slice(b"early");
    let daemon = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        play_daemon(stream, reply).await
    });

    let io = DockerHost::Unix(socket)
        .upgrade_session(&session_headers())
        .await
        .expect("upgrade");
    check_upgraded(io, b"early").await;
    assert!(
        daemon
            .await
            .unwrap()
            .starts_with("POST /session HTTP/1.1\r\n")
    );
}

#[tokio::test]
async fn refusals_show_the_daemons_json_message() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = r#"{"message":"protocol h3 not supported"}"#;
    let reply = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        play_daemon(socket, reply.into_bytes()).await
    });
    let error = tcp_host(port)
        .upgrade_session(&session_headers())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "the Docker daemon at docker (tcp://127.0.0.1:{port}) refused `POST /session` (HTTP 400): protocol h3 not supported"
        )
    );
}

#[tokio::test]
async fn chunked_refusals_are_decoded() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reply = "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n\
                 b\r\n{\"message\":\r\n11\r\n\"session failed\"}\r\n0\r\n\r\n";
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        play_daemon(socket, reply.as_bytes().to_vec()).await
    });
    let error = tcp_host(port).upgrade_session(&[]).await.unwrap_err();
    assert!(
        error.to_string().ends_with("(HTTP 500): session failed"),
        "{error}"
    );
}

#[tokio::test]
async fn a_daemon_without_grpc_has_no_buildkit_api() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = r#"{"message":"page not found"}"#;
    let reply = format!(
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let daemon = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        play_daemon(socket, reply.into_bytes()).await
    });
    let error = Address::Docker(tcp_host(port))
        .control_channel()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "this Docker daemon (docker (tcp://127.0.0.1:{port})) has no BuildKit API (is it older than 18.09 or started without BuildKit?)"
        )
    );
    assert!(daemon.await.unwrap().starts_with("POST /grpc HTTP/1.1\r\n"));
}

#[tokio::test]
async fn a_connection_closed_before_answering_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request_head(&mut socket).await;
    });
    let error = tcp_host(port).upgrade_session(&[]).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot reach BuildKit at docker (tcp://127.0.0.1:{port}): POST /session: the connection closed without an HTTP response"
        )
    );
}

#[tokio::test]
async fn refused_connections_name_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let error = tcp_host(port).upgrade_session(&[]).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot reach BuildKit at docker (tcp://127.0.0.1:{port}): "
        )),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let missing: PathBuf = dir.path().join("missing.sock");
    let error = Address::Unix(missing.clone())
        .control_channel()
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with(&format!(
            "cannot reach BuildKit at unix://{}: ",
            missing.display()
        )),
        "{error}"
    );
    let error = Address::Docker(DockerHost::Unix(missing.clone()))
        .control_channel()
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with(&format!(
            "cannot reach BuildKit at docker (unix://{}): ",
            missing.display()
        )),
        "{error}"
    );
}
