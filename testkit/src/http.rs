//! A minimal HTTP client for loopback checks (one GET per connection over a plain TCP stream),
//! and a server that answers exactly one request, for downloads a test must see happen once.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The status code and body of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, such as 200 or 401.
    pub status: u16,
    /// Everything after the headers.
    pub body: Vec<u8>,
}

/// Sends `GET path` to `addr`, with `authorization` as the `Authorization` header when given.
///
/// The request is HTTP/1.0 so that the server closes the connection after the response and
/// never uses chunked encoding: the body is simply everything after the headers.
pub fn get(addr: &str, path: &str, authorization: Option<&str>) -> io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let authorization = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n{authorization}\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    parse(&response)
}

fn parse(response: &[u8]) -> io::Result<Response> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let header_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("the response has no end of headers"))?;
    let status_line = response[..header_end]
        .split(|&b| b == b'\r')
        .next()
        .unwrap_or_default();
    let status = std::str::from_utf8(status_line)
        .ok()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("the response has no valid status line"))?;
    Ok(Response {
        status,
        body: response[header_end + 4..].to_vec(),
    })
}

/// Serves one request on `127.0.0.1:<free port>` with `status` (`200 OK`) and `body`, then
/// stops listening; returns `http://ADDR` and a handle giving the request line it received.
pub fn serve_once(
    status: &'static str,
    body: &'static [u8],
) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept the one request");
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = stream.read(&mut buf).expect("read the request");
            if read == 0 {
                break;
            }
            request.extend_from_slice(&buf[..read]);
        }
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .and_then(|()| stream.write_all(body))
        .expect("write the response");
        String::from_utf8_lossy(&request)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    (format!("http://{addr}"), handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let response = parse(b"HTTP/1.0 401 Unauthorized\r\nA: b\r\n\r\n{}").unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (401, &b"{}"[..])
        );
        assert!(parse(b"HTTP/1.0 200 OK\r\n").is_err());
        assert!(parse(b"garbage\r\n\r\n").is_err());
    }
}
