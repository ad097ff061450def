//! Adversarial requests through a real Envoy, as raw bytes over a socket (no client-side
//! normalization), against a generated config (`tests/adversarial/edge.yaml`: `secure.example`
//! whose `/admin` answers 403, its `/` to a backend, and a catch-all host). Each request runs
//! through the wasm router (`envoy.yaml`) and through Envoy's own routes for the same config
//! (`envoy-native.yaml`); the test asserts what the client got, what the backend received,
//! and that both agree, except where the router is documented to be stricter.

use std::net::SocketAddr;

use wasmgate_harness::deploy::{deploy, Deployment, Member};
use wasmgate_harness::paths::workspace_root;
use wasmgate_harness::{request_raw, Backend};

/// What came back: the status, and for a forwarded request the backend and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    status: u16,
    backend: Option<String>,
    path: Option<String>,
    host: Option<String>,
    /// Every `x-wasmgate-cluster` value the backend received.
    cluster_header: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Forwarded to this backend, which received this path.
    Backend(&'static str, &'static str),
    /// Answered without reaching a backend (by the router, Envoy's routes or its codec).
    Status(u16),
}

struct Case {
    name: &'static str,
    raw: Vec<u8>,
    expect: Expect,
    /// Envoy's native routes answer otherwise, and why the router's answer is the one wanted.
    native: Option<(Expect, &'static str)>,
}

/// `METHOD target HTTP/1.1`, the given header lines verbatim, then `connection: close`.
fn http11(method: &str, target: &[u8], headers: &[&[u8]]) -> Vec<u8> {
    let mut r = format!("{method} ").into_bytes();
    r.extend_from_slice(target);
    r.extend_from_slice(b" HTTP/1.1\r\n");
    for h in headers {
        r.extend_from_slice(h);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"connection: close\r\n\r\n");
    r
}

fn host(h: &str) -> Vec<u8> {
    format!("host: {h}").into_bytes()
}

fn get(authority: &str, path: &str) -> Vec<u8> {
    http11("GET", path.as_bytes(), &[&host(authority)])
}

const SECURE: &str = "secure-app";
const CATCHALL: &str = "catchall-app";
const INVALID_AUTHORITY: &str = "the router refuses an authority that is not host[:port] \
     (RFC 3986); Envoy's native `secure.example:*` domain takes any text after the colon";

const EMPTY_PORT: &str = "the router refuses `host:` with no port; Envoy's `secure.example:*` \
     needs at least one character after the colon, so it sends it to the catch-all";
const USERINFO: &str = "HTTP forbids userinfo in Host (RFC 9110); Envoy passes it on and \
     routes it to the catch-all";
const TWO_HOSTS: &str = "Envoy joins two Host headers with a comma; the router refuses the \
     comma, since a backend may take either name";

fn cases() -> Vec<Case> {
    use Expect::*;
    let c = |name, raw, expect| Case {
        name,
        raw,
        expect,
        native: None,
    };
    let stricter = |name, raw, native: Expect, why| Case {
        name,
        raw,
        expect: Status(400),
        native: Some((native, why)),
    };
    let long_path = format!("/admin/{}", "a".repeat(8 * 1024));
    let many_headers: Vec<Vec<u8>> = (0..95).map(|i| format!("x-h{i}: v").into_bytes()).collect();
    let mut many: Vec<&[u8]> = vec![b"host: secure.example"];
    many.extend(many_headers.iter().map(Vec::as_slice));
    let big_value = format!("x-big: {}", "v".repeat(60 * 1024));
    vec![
        // Authority forms.
        c("plain host", get("secure.example", "/admin"), Status(403)),
        c(
            "host with port",
            get("secure.example:80", "/admin"),
            Status(403),
        ),
        c(
            "host in upper case",
            get("SECURE.Example", "/admin"),
            Status(403),
        ),
        c(
            "host with a trailing dot",
            get("secure.example.", "/admin"),
            Status(403),
        ),
        c(
            "trailing dot and port",
            get("secure.example.:8080", "/admin"),
            Status(403),
        ),
        stricter(
            "double port",
            get("secure.example:80:80", "/admin"),
            Status(403),
            INVALID_AUTHORITY,
        ),
        stricter(
            "double port on /",
            get("secure.example:80:80", "/"),
            Backend(SECURE, "/"),
            INVALID_AUTHORITY,
        ),
        stricter(
            "letters for a port",
            get("secure.example:http", "/admin"),
            Status(403),
            INVALID_AUTHORITY,
        ),
        stricter(
            "empty port",
            get("secure.example:", "/admin"),
            Backend(CATCHALL, "/admin"),
            EMPTY_PORT,
        ),
        c(
            "IPv6 literal",
            get("[::1]:80", "/admin"),
            Backend(CATCHALL, "/admin"),
        ),
        stricter(
            "userinfo",
            get("user@secure.example", "/admin"),
            Backend(CATCHALL, "/admin"),
            USERINFO,
        ),
        c(
            "other host",
            get("other.example", "/admin"),
            Backend(CATCHALL, "/admin"),
        ),
        c(
            "suffix of the host",
            get("xsecure.example", "/admin"),
            Backend(CATCHALL, "/admin"),
        ),
        stricter(
            "two hosts, other first",
            http11(
                "GET",
                b"/admin",
                &[b"host: other.example", b"host: secure.example"],
            ),
            Backend(CATCHALL, "/admin"),
            TWO_HOSTS,
        ),
        c(
            "HTTP/1.0 without host",
            b"GET /admin HTTP/1.0\r\n\r\n".to_vec(),
            Status(426),
        ),
        c(
            "absolute form wins over host",
            http11(
                "GET",
                b"http://secure.example/admin",
                &[b"host: other.example"],
            ),
            Status(403),
        ),
        c(
            "absolute form elsewhere",
            http11(
                "GET",
                b"http://other.example/admin",
                &[b"host: secure.example"],
            ),
            Backend(CATCHALL, "/admin"),
        ),
        // Path forms.
        c(
            "trailing slash",
            get("secure.example", "/admin/"),
            Status(403),
        ),
        c(
            "dot segments",
            get("secure.example", "/x/../admin/./y"),
            Status(403),
        ),
        c(
            "dot segments above the root",
            get("secure.example", "/../../admin"),
            Status(403),
        ),
        c(
            "repeated slashes",
            get("secure.example", "//admin"),
            Status(403),
        ),
        c(
            "percent-encoded letter",
            get("secure.example", "/%61dmin"),
            Status(403),
        ),
        c(
            "percent-encoded upper",
            get("secure.example", "/%41DMIN"),
            Backend(SECURE, "/ADMIN"),
        ),
        c(
            "double encoding stays encoded",
            get("secure.example", "/%2561dmin"),
            Backend(SECURE, "/%2561dmin"),
        ),
        c(
            "encoded slash",
            get("secure.example", "/admin%2Fx"),
            Status(307),
        ),
        c(
            "encoded backslash",
            get("secure.example", "/admin%5Cx"),
            Status(307),
        ),
        c(
            "raw backslash",
            get("secure.example", "/admin\\x"),
            Status(403),
        ),
        c(
            "semicolon parameter",
            get("secure.example", "/admin;a=b"),
            Backend(SECURE, "/admin;a=b"),
        ),
        c(
            "semicolon in a later element",
            get("secure.example", "/admin/x;a=b"),
            Status(403),
        ),
        c(
            "fragment",
            get("secure.example", "/admin#frag"),
            Status(400),
        ),
        c("query", get("secure.example", "/admin?x=/"), Status(403)),
        c("8 KiB path", get("secure.example", &long_path), Status(403)),
        c(
            "non-UTF-8 byte",
            http11("GET", b"/admin/\xff", &[b"host: secure.example"]),
            Status(400),
        ),
        c(
            "case of the path",
            get("secure.example", "/ADMIN"),
            Backend(SECURE, "/ADMIN"),
        ),
        // Header abuse: the routing header is the router's alone.
        c(
            "spoofed routing header",
            http11(
                "GET",
                b"/",
                &[b"host: other.example", b"x-wasmgate-cluster: secure-app_80"],
            ),
            Backend(CATCHALL, "/"),
        ),
        c(
            "spoofed in upper case, twice",
            http11(
                "GET",
                b"/",
                &[
                    b"host: other.example",
                    b"X-WASMGATE-CLUSTER: secure-app_80",
                    b"X-Wasmgate-Cluster: secure-app_80",
                ],
            ),
            Backend(CATCHALL, "/"),
        ),
        c(
            "spoofed service header",
            http11(
                "GET",
                b"/",
                &[b"host: other.example", b"x-wasmgate-service: secure-app"],
            ),
            Backend(CATCHALL, "/"),
        ),
        c("100 headers", http11("GET", b"/admin", &many), Status(403)),
        c(
            "60 KiB header value",
            http11(
                "GET",
                b"/admin",
                &[b"host: secure.example", big_value.as_bytes()],
            ),
            Status(431),
        ),
        // Methods.
        c(
            "unknown method",
            http11("FOO", b"/admin", &[b"host: secure.example"]),
            Status(400),
        ),
        c(
            "lower-case method",
            http11("get", b"/admin", &[b"host: secure.example"]),
            Status(400),
        ),
        c(
            "DELETE",
            http11("DELETE", b"/admin", &[b"host: secure.example"]),
            Status(403),
        ),
        c(
            "OPTIONS *",
            http11("OPTIONS", b"*", &[b"host: secure.example"]),
            Status(404),
        ),
        c(
            "CONNECT",
            http11(
                "CONNECT",
                b"secure.example:443",
                &[b"host: secure.example:443"],
            ),
            Status(404),
        ),
    ]
}

fn observe(at: SocketAddr, raw: &[u8]) -> Seen {
    match request_raw(at, raw) {
        Ok(r) => {
            let echo = r.json();
            let headers: Vec<(String, String)> = echo["headers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    (
                        h[0].as_str().unwrap_or("").to_string(),
                        h[1].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            Seen {
                status: r.status,
                backend: r.backend(),
                path: echo["path"].as_str().map(str::to_string),
                host: header("host"),
                cluster_header: headers
                    .iter()
                    .filter(|(k, _)| k == "x-wasmgate-cluster")
                    .map(|(_, v)| v.clone())
                    .collect(),
            }
        }
        // Envoy closed the connection without an answer: report it as status 0.
        Err(_) => Seen {
            status: 0,
            backend: None,
            path: None,
            host: None,
            cluster_header: Vec::new(),
        },
    }
}

fn matches(seen: &Seen, want: Expect) -> bool {
    match want {
        Expect::Backend(b, path) => {
            seen.status == 200
                && seen.backend.as_deref() == Some(b)
                && seen.path.as_deref() == Some(path)
        }
        Expect::Status(s) => seen.status == s && seen.backend.is_none(),
    }
}

fn start(label: &str, backends: &[Backend]) -> Deployment {
    let members = [Member {
        name: "local".into(),
        endpoints: backends
            .iter()
            .map(|b| (b.name.clone(), 80, b.endpoint()))
            .collect(),
        ..Member::default()
    }];
    deploy(
        label,
        &[workspace_root().join("tests/adversarial/edge.yaml")],
        &members,
        &[],
    )
    .unwrap()
}

#[test]
fn adversarial_requests_get_the_same_answer_from_the_router_and_envoys_routes() {
    let backends = [
        Backend::start(SECURE).unwrap(),
        Backend::start(CATCHALL).unwrap(),
    ];
    let d = start("adversarial", &backends);
    let at = d.http;
    let cases = cases();
    let wasm: Vec<Seen> = cases.iter().map(|c| observe(at, &c.raw)).collect();
    let log = d.envoy.log_text();
    let (native_envoy, scratch) = d.restart_native().unwrap();
    let native: Vec<Seen> = cases.iter().map(|c| observe(at, &c.raw)).collect();
    drop(native_envoy);

    let mut failures = Vec::new();
    for ((case, w), n) in cases.iter().zip(&wasm).zip(&native) {
        if !matches(w, case.expect) {
            failures.push(format!(
                "{}: router: expected {:?}, saw {w:?}",
                case.name, case.expect
            ));
        }
        let native_want = case.native.map_or(case.expect, |(e, _)| e);
        if !matches(n, native_want) {
            failures.push(format!(
                "{}: native: expected {native_want:?}, saw {n:?}",
                case.name
            ));
        }
        if case.native.is_none()
            && (w.status, &w.backend, &w.path) != (n.status, &n.backend, &n.path)
        {
            failures.push(format!(
                "{}: router and native disagree: {w:?} vs {n:?}",
                case.name
            ));
        }
        if let Some(b) = &w.backend {
            // The router overwrote whatever routing header the client sent.
            let want = format!("{b}_80");
            if w.cluster_header != [want.clone()] {
                failures.push(format!(
                    "{}: the backend got x-wasmgate-cluster {:?}, not [{want}]",
                    case.name, w.cluster_header
                ));
            }
        }
    }
    assert!(
        !log.contains("panicked") && !log.contains("wasm trap"),
        "the VM failed:\n{log}"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    drop(scratch);
}
