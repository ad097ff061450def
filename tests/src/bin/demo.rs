//! `make demo`: the seed's examples generated, running in Envoy, with traffic and where it went.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::Duration;

use wasmgate_tests::deploy::{deploy, Member};
use wasmgate_tests::paths::examples;
use wasmgate_tests::{get, Backend, TcpBackend};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let foo = Backend::start("foo-app")?;
    let tcp_app = TcpBackend::start("tcp-app")?;
    let seed = examples().join("seed");
    let inputs = [
        seed.join("services.yaml"),
        seed.join("virtualhost.yaml"),
        seed.join("status-code.yaml"),
    ];
    println!("generating from:");
    for i in &inputs {
        println!(
            "  {}",
            i.strip_prefix(examples().parent().unwrap_or(&seed))
                .unwrap_or(i)
                .display()
        );
    }
    let d = deploy(
        "demo",
        &inputs,
        &[Member {
            name: "local".into(),
            labels: vec![("region".into(), "local".into())],
            endpoints: vec![
                ("foo-app".into(), 80, foo.endpoint()),
                ("tcp-app".into(), 9000, tcp_app.endpoint()),
            ],
        }],
        &[9000],
    )?;
    println!(
        "envoy is up: http on {}, tcp port 9000 on {}, config {}",
        d.http,
        d.ports[&9000],
        d.config_path.display()
    );
    println!();
    println!("{:<34} {:>6}  {}", "request", "status", "outcome");
    for (host, path) in [
        ("foo.com", "/"),
        ("foo.com", "/cart/checkout?step=2"),
        ("FOO.COM:10000", "/"),
        ("status.foo.com", "/teapot"),
        ("status.foo.com", "/anything"),
        ("bar.com", "/"),
    ] {
        let r = get(d.http, host, path)?;
        let outcome = match r.backend() {
            Some(b) => format!(
                "reached backend {b} (cluster {})",
                r.json()["headers"]
                    .as_array()
                    .and_then(|h| h.iter().find(|p| p[0] == "x-wasmgate-cluster"))
                    .map(|p| p[1].to_string())
                    .unwrap_or_default()
            ),
            None => format!("local reply: {:?}", r.text().trim_end()),
        };
        println!(
            "{:<34} {:>6}  {}",
            format!("GET {host}{path}"),
            r.status,
            outcome
        );
    }
    let conn = TcpStream::connect(d.ports[&9000])?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut greeting = String::new();
    BufReader::new(conn).read_line(&mut greeting)?;
    println!(
        "{:<34} {:>6}  reached backend {}",
        "TCP connect :9000",
        "-",
        greeting.trim_end()
    );
    Ok(())
}
