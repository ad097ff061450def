//! Local backends that stand in for a service in one cluster.
//!
//! An HTTP backend answers every request with 200 and a JSON body naming itself and echoing
//! what it received, so tests can assert both where a request went and how it arrived.
//! A TCP backend greets each connection with its name and then echoes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let handler = Arc::new(handler);
        let thread = {
            let stop = stop.clone();
            let served = served.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    served.fetch_add(1, Ordering::Relaxed);
                    let handler = handler.clone();
                    std::thread::spawn(move || handler(conn));
                }
            })
        };
        Ok(Server {
            addr,
            stop,
            served,
            thread: Some(thread),
        })
    }

    fn shutdown(&mut self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            // Wake the accept loop so it sees the flag; the listener closes with the thread.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// An HTTP/1.1 backend named `name`.
pub struct Backend {
    pub name: String,
    server: Server,
    received: Arc<Mutex<Vec<Received>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// One request a backend served: its path, body (de-chunked) and trailers (of a chunked
/// body, names lower-cased, in order).
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub path: String,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

/// One request's method, target and headers (names lower-cased, in order).
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Backend {
    pub fn start(name: &str) -> std::io::Result<Self> {
        let label = name.to_string();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let failures = Arc::new(Mutex::new(std::collections::HashMap::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen_log = seen.clone();
        let server =
            Server::start(move |conn| serve_http(&label, conn, &log, &seen_log, &failures))?;
        Ok(Backend {
            name: name.to_string(),
            server,
            received,
            seen,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn endpoint(&self) -> String {
        self.server.addr.to_string()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.server.served.load(Ordering::Relaxed)
    }

    /// Every request served so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Method, target and headers of every request served so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Stops accepting; later connections are refused.
    pub fn stop(&mut self) {
        self.server.shutdown();
    }
}

/// `CODE:TIMES:KEY` of an `x-echo-fail` header.
fn parse_fail(v: &str) -> Option<(u16, u32, &str)> {
    let mut parts = v.splitn(3, ':');
    let code = parts.next()?.parse().ok()?;
    let times = parts.next()?.parse().ok()?;
    Some((code, times, parts.next()?))
}

fn serve_http(
    name: &str,
    conn: TcpStream,
    received: &Mutex<Vec<Received>>,
    seen: &Mutex<Vec<Seen>>,
    failures: &Mutex<std::collections::HashMap<String, u32>>,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut out = write_half;
    loop {
        // Header values may be any bytes: read raw lines, echo them lossily.
        let mut raw = Vec::new();
        if reader.read_until(b'\n', &mut raw).unwrap_or(0) == 0 {
            return;
        }
        let line = String::from_utf8_lossy(&raw).into_owned();
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        let mut content_length = 0usize;
        let mut chunked = false;
        loop {
            let mut raw = Vec::new();
            if reader.read_until(b'\n', &mut raw).unwrap_or(0) == 0 {
                return;
            }
            let h = String::from_utf8_lossy(&raw);
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim().to_string();
                if k == "content-length" {
                    content_length = v.parse().unwrap_or(0);
                }
                if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
                headers.push((k, v));
            }
        }
        let (body, trailers) = if chunked {
            let Some(read) = read_chunked(&mut reader) else {
                return;
            };
            read
        } else {
            let mut body = vec![0; content_length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            (body, Vec::new())
        };
        if let Ok(mut r) = seen.lock() {
            r.push(Seen {
                method: method.clone(),
                path: path.clone(),
                headers: headers.clone(),
            });
        }
        if let Ok(mut r) = received.lock() {
            r.push(Received {
                path: path.clone(),
                body: body.clone(),
                trailers,
            });
        }
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        // `x-echo-delay-ms: N` answers after N ms, at most 10 s (timeouts, a stream waiting
        // upstream); `x-echo-fail: CODE:TIMES:KEY` answers CODE to the first TIMES requests
        // carrying KEY (retries).
        if let Some(ms) = header("x-echo-delay-ms").and_then(|v| v.parse::<u64>().ok()) {
            std::thread::sleep(Duration::from_millis(ms.min(10_000)));
        }
        let mut status = 200;
        if let Some((code, times, key)) = header("x-echo-fail").and_then(parse_fail) {
            if let Ok(mut seen) = failures.lock() {
                let n = seen.entry(key.to_string()).or_insert(0);
                *n += 1;
                if *n <= times {
                    status = code;
                }
            }
        }
        let reply = serde_json::json!({
            "backend": name,
            "method": method,
            "path": path,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        })
        .to_string();
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nx-backend: {name}\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// A chunked request body and its trailers; `None` if the connection ends or lies.
/// Header or trailer fields: lower-cased names and values, in order.
type Fields = Vec<(String, String)>;

fn read_chunked(reader: &mut impl BufRead) -> Option<(Vec<u8>, Fields)> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&line);
        let size_hex = text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        if size == 0 {
            break;
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        body.extend_from_slice(chunk.get(..size)?);
    }
    let mut trailers = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            return Some((body, trailers));
        }
        if let Some((k, v)) = text.split_once(':') {
            trailers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

/// A TCP backend: writes `<name>\n`, then echoes.
pub struct TcpBackend {
    pub name: String,
    server: Server,
}

impl TcpBackend {
    pub fn start(name: &str) -> std::io::Result<Self> {
        let greeting = format!("{name}\n");
        let server = Server::start(move |mut conn| {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            if conn.write_all(greeting.as_bytes()).is_err() {
                return;
            }
            let mut buf = [0u8; 4096];
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 || conn.write_all(buf.get(..n).unwrap_or_default()).is_err() {
                    break;
                }
            }
            let _ = conn.shutdown(Shutdown::Both);
        })?;
        Ok(TcpBackend {
            name: name.to_string(),
            server,
        })
    }

    pub fn endpoint(&self) -> String {
        self.server.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}
