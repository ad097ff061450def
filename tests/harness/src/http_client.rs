//! A minimal HTTP/1.1 client: enough to drive Envoy from tests without a dependency.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (what the test backends answer), or `Null`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The test backend that answered, if any.
    pub fn backend(&self) -> Option<String> {
        self.header("x-backend").map(str::to_string)
    }
}

/// `GET path` with the given `Host`.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> std::io::Result<Response> {
    request(addr, "GET", host, path, &[])
}

/// Sends one request on a fresh connection and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &[u8])],
) -> std::io::Result<Response> {
    request_bytes(
        addr,
        method,
        Some(host.as_bytes()),
        path.as_bytes(),
        headers,
    )
}

/// Like [`request`], with a raw request target and an optional `Host` of any bytes.
pub fn request_bytes(
    addr: SocketAddr,
    method: &str,
    host: Option<&[u8]>,
    path: &[u8],
    headers: &[(&str, &[u8])],
) -> std::io::Result<Response> {
    exchange(addr, method, host, path, headers, &[])
}

/// `POST path` with a body (sent in the same write as the headers).
pub fn post(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> std::io::Result<Response> {
    exchange(
        addr,
        "POST",
        Some(host.as_bytes()),
        path.as_bytes(),
        headers,
        body,
    )
}

/// `POST path` with `transfer-encoding: chunked`: each of `chunks` as a chunk, then the last
/// chunk with `trailers` (all in one write).
pub fn post_chunked(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    chunks: &[&[u8]],
    trailers: &[(&str, &[u8])],
) -> std::io::Result<Response> {
    let mut all: Vec<(&str, &[u8])> = headers.to_vec();
    all.push(("transfer-encoding", b"chunked"));
    let mut body = Vec::new();
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n");
    for (k, v) in trailers {
        push_field(&mut body, k, v);
    }
    body.extend_from_slice(b"\r\n");
    send(
        addr,
        "POST",
        Some(host.as_bytes()),
        path.as_bytes(),
        &all,
        &body,
        false,
    )
}

/// Appends one `name: value` header or trailer line.
fn push_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn exchange(
    addr: SocketAddr,
    method: &str,
    host: Option<&[u8]>,
    path: &[u8],
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> std::io::Result<Response> {
    send(addr, method, host, path, headers, body, true)
}

/// Writes the request; `length`: a `content-length` header for a non-empty `body` (else the
/// headers say how the body is framed).
fn send(
    addr: SocketAddr,
    method: &str,
    host: Option<&[u8]>,
    path: &[u8],
    headers: &[(&str, &[u8])],
    body: &[u8],
    length: bool,
) -> std::io::Result<Response> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} ").into_bytes();
    req.extend_from_slice(path);
    req.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(h) = host {
        req.extend_from_slice(b"host: ");
        req.extend_from_slice(h);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"connection: close\r\n");
    for (k, v) in headers {
        push_field(&mut req, k, v);
    }
    if length && !body.is_empty() {
        req.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    conn.write_all(&req)?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)?;
    parse(&raw)
}

/// Sends `raw` bytes exactly as given (no client-side normalization) on a fresh connection
/// and reads the response until the server closes; the request should say
/// `connection: close` (or be HTTP/1.0).
pub fn request_raw(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Response> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.write_all(raw)?;
    let mut out = Vec::new();
    conn.read_to_end(&mut out)?;
    parse(&out)
}

fn parse(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Decodes an HTTP/1.1 chunked body (chunk extensions and trailers ignored).
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(raw.get(..line_end)?).ok()?;
        let size_hex = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        raw = raw.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}
