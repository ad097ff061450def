//! The seed's VirtualHost example, generated and running in a real Envoy.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use wasmgate_harness::deploy::{deploy, Member};
use wasmgate_harness::paths::examples;
use wasmgate_harness::{get, Backend, TcpBackend};

#[test]
fn seed_virtualhost_routes_http_tcp_and_status_codes_in_envoy() {
    let foo = Backend::start("foo-app").unwrap();
    let tcp_app = TcpBackend::start("tcp-app").unwrap();
    let seed = examples().join("seed");
    let d = deploy(
        "seed",
        &[
            seed.join("services.yaml"),
            seed.join("virtualhost.yaml"),
            seed.join("status-code.yaml"),
        ],
        &[Member {
            name: "local".into(),
            endpoints: vec![
                ("foo-app".into(), 80, foo.endpoint()),
                ("tcp-app".into(), 9000, tcp_app.endpoint()),
            ],
            ..Member::default()
        }],
        &[9000],
    )
    .unwrap();

    struct Case {
        name: &'static str,
        host: &'static str,
        path: &'static str,
        status: u16,
        backend: Option<&'static str>,
        body: Option<&'static str>,
    }
    let cases = [
        Case {
            name: "foo.com/ reaches foo-app",
            host: "foo.com",
            path: "/",
            status: 200,
            backend: Some("foo-app"),
            body: None,
        },
        Case {
            name: "a deeper path is under the / prefix",
            host: "foo.com",
            path: "/a/b?c=d",
            status: 200,
            backend: Some("foo-app"),
            body: None,
        },
        Case {
            name: "host matching ignores case and port",
            host: "FOO.com:8080",
            path: "/",
            status: 200,
            backend: Some("foo-app"),
            body: None,
        },
        Case {
            name: "status-code rule answers locally",
            host: "status.foo.com",
            path: "/teapot",
            status: 418,
            backend: None,
            body: Some("I'm a teapot\n"),
        },
        Case {
            name: "status-code catch-all",
            host: "status.foo.com",
            path: "/other",
            status: 503,
            backend: None,
            body: Some("down for maintenance\n"),
        },
        Case {
            name: "unknown host answers 404",
            host: "bar.com",
            path: "/",
            status: 404,
            backend: None,
            body: None,
        },
    ];
    for c in cases {
        let r = get(d.http, c.host, c.path).unwrap();
        assert_eq!(r.status, c.status, "{}: {}", c.name, r.text());
        assert_eq!(r.backend().as_deref(), c.backend, "{}", c.name);
        if let Some(body) = c.body {
            assert_eq!(r.text(), body, "{}", c.name);
        }
    }

    // A client cannot pick the cluster by sending the routing header itself.
    let r = wasmgate_harness::request(
        d.http,
        "GET",
        "bar.com",
        "/",
        &[("x-wasmgate-cluster", b"foo-app_80")],
    )
    .unwrap();
    assert_eq!(r.status, 404, "a client-sent routing header must not steer");

    // TCP: the listener declared as port 9000 reaches tcp-app.
    let mut conn = TcpStream::connect(d.ports[&9000]).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    assert_eq!(greeting, "tcp-app\n", "envoy log:\n{}", d.envoy.log_text());
    conn.write_all(b"ping\n").unwrap();
    let mut echo = String::new();
    reader.read_line(&mut echo).unwrap();
    assert_eq!(echo, "ping\n");
}
