//! Side by side in one run: the same routes served by Envoy's native route table and by the
//! wasmgate router (.wasm in V8) in front of a `cluster_header` route. Reports microseconds
//! per request over keep-alive connections from one client thread, loopback only.
//! Run with `make bench`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use serde_json::{json, Value};
use wasmgate_harness::bootstrap::{HttpBootstrap, WasmFilter};
use wasmgate_harness::{free_port, Backend, Envoy, Scratch};

const REQUESTS: usize = 20_000;

fn routes(hosts: usize, per_host: usize) -> Vec<(String, String)> {
    (0..hosts)
        .flat_map(|h| {
            (0..per_host).map(move |r| (format!("host{h}.example.com"), format!("/svc{r}")))
        })
        .collect()
}

fn router_config(routes: &[(String, String)], hosts: usize) -> Value {
    let mut by_host: Vec<Vec<Value>> = vec![Vec::new(); hosts];
    for (i, (_, path)) in routes.iter().enumerate() {
        by_host[i / (routes.len() / hosts)]
            .push(json!({"path": path, "backend": {"service": "app", "cluster": "app"}}));
    }
    let routes: Vec<Value> = by_host
        .into_iter()
        .enumerate()
        .map(|(h, rules)| json!({"http": {"host": format!("host{h}.example.com"), "rules": rules}}))
        .collect();
    json!({ "routes": routes })
}

/// Envoy's own equivalent: one virtual host per host, one prefix route per rule.
fn native_bootstrap(boot: &HttpBootstrap, routes: &[(String, String)], hosts: usize) -> Value {
    let mut v = boot.to_json();
    let per_host = routes.len() / hosts;
    let vhosts: Vec<Value> = (0..hosts)
        .map(|h| {
            let rs: Vec<Value> = routes[h * per_host..(h + 1) * per_host]
                .iter()
                .map(|(_, p)| json!({"match": {"path_separated_prefix": p}, "route": {"cluster": "app"}}))
                .collect();
            json!({"name": format!("h{h}"), "domains": [format!("host{h}.example.com")], "routes": rs})
        })
        .collect();
    let hcm = &mut v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["route_config"]["virtual_hosts"] = Value::Array(vhosts);
    let filters = hcm["http_filters"].as_array().cloned().unwrap_or_default();
    hcm["http_filters"] = Value::Array(
        filters
            .into_iter()
            .filter(|f| f["name"] == "envoy.filters.http.router")
            .collect(),
    );
    v
}

fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut len = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(status)
}

/// Median and p99 microseconds per request, and the count of non-200 answers.
fn drive(at: SocketAddr, routes: &[(String, String)]) -> (f64, f64, usize) {
    let conn = TcpStream::connect(at).expect("connect");
    conn.set_nodelay(true).ok();
    let mut writer = conn.try_clone().expect("clone");
    let mut reader = BufReader::new(conn);
    let mut lat = Vec::with_capacity(REQUESTS);
    let mut errors = 0;
    let mut x: u64 = 0x9e37_79b9;
    for _ in 0..REQUESTS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (host, path) = &routes[(x as usize) % routes.len()];
        let req = format!("GET {path}/item HTTP/1.1\r\nhost: {host}\r\n\r\n");
        let t = Instant::now();
        writer.write_all(req.as_bytes()).expect("write");
        let status = read_response(&mut reader).expect("read");
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        if status != 200 {
            errors += 1;
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    (lat[lat.len() / 2], lat[lat.len() * 99 / 100], errors)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = Backend::start("app")?;
    println!("Envoy 1.40 native route table vs wasmgate router (.wasm, V8), {REQUESTS} keep-alive requests, one client");
    println!(
        "{:>7} {:>6}  {:>14} {:>14}  {:>14} {:>14}",
        "routes", "hosts", "native p50 us", "native p99 us", "wasm p50 us", "wasm p99 us"
    );
    for (hosts, per_host) in [(1, 10), (1, 1_000), (1, 10_000), (1_000, 10)] {
        let routes = routes(hosts, per_host);
        let mut row = Vec::new();
        for native in [true, false] {
            let scratch = Scratch::new("envoy-bench")?;
            let admin_port = free_port()?;
            let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let boot = HttpBootstrap {
                listen,
                admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
                filters: vec![WasmFilter::router(
                    router_config(&routes, hosts).to_string(),
                )],
                cluster_header: "x-wasmgate-cluster".into(),
                pass_through: None,
                clusters: vec![("app".into(), backend.addr())],
            };
            let config = if native {
                native_bootstrap(&boot, &routes, hosts)
            } else {
                boot.to_json()
            };
            let path = scratch.write("envoy.json", &config.to_string())?;
            let envoy = Envoy::start(&path, admin_port, 1)?;
            drive(listen, &routes[..routes.len().min(50)]); // warm up
            let (p50, p99, errors) = drive(listen, &routes);
            if errors > 0 {
                return Err(format!(
                    "{errors} requests failed ({})",
                    if native { "native" } else { "wasm" }
                )
                .into());
            }
            row.push((p50, p99));
            drop(envoy);
        }
        println!(
            "{:>7} {:>6}  {:>14.1} {:>14.1}  {:>14.1} {:>14.1}",
            routes.len(),
            hosts,
            row[0].0,
            row[0].1,
            row[1].0,
            row[1].1
        );
    }
    Ok(())
}
