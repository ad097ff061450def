//! The router's cost, side by side in one run: the route table natively (filters/core) and
//! the compiled .wasm in host-sim (wasmtime), per request, with host calls per request and the
//! time to configure the .wasm. Run with `make bench`.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use host_sim::bootstrap_reader::parse_bootstrap;
use host_sim::{HostSim, HttpRequest, Routes};
use wasmgate_core::seeded_hash::SeededState;
use wasmgate_core::{FixedRandom, Outcome, RequestView, RouteTable};
use wasmgate_harness::bootstrap::WasmFilter;
use wasmgate_harness::hash_keysets::{probe_stats, KEY_SETS};
use wasmgate_harness::synthetic_routes::{keyset_config, keyset_requests, requests, router_config};

/// Best of five passes: ns per native lookup.
fn native_ns(table: &RouteTable, reqs: &[(String, String)]) -> f64 {
    let pass = || {
        let mut rng = FixedRandom(0.5);
        let start = Instant::now();
        for _ in 0..20 {
            for (host, path) in reqs {
                let req = RequestView {
                    authority: host.as_bytes(),
                    path: path.as_bytes(),
                    method: b"GET",
                    headers: &[],
                    listener_port: None,
                };
                let out = black_box(table.route(&req, &mut rng));
                assert!(
                    matches!(out, Outcome::Forward(_)),
                    "{host}{path} must match"
                );
            }
        }
        start.elapsed().as_nanos() as f64 / (20 * reqs.len()) as f64
    };
    (0..5).map(|_| pass()).fold(f64::MAX, f64::min)
}

/// A first-match scan over (host, prefix) pairs: the shape of Envoy's native route matching,
/// for scale.
fn linear_scan_ns(hosts: usize, per_host: usize, reqs: &[(String, String)]) -> f64 {
    let routes: Vec<(String, String)> = (0..hosts)
        .flat_map(|h| {
            (0..per_host).map(move |r| (format!("host{h}.example.com"), format!("/svc{r}")))
        })
        .collect();
    let start = Instant::now();
    for (host, path) in reqs {
        black_box(
            routes
                .iter()
                .position(|(h, p)| h == host && path.starts_with(p.as_str())),
        );
    }
    start.elapsed().as_nanos() as f64 / reqs.len() as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = HostSim::new()?;
    let wasm = wasmgate_harness::paths::wasm("wasmgate_router");
    // One placeholder bootstrap gives the plugin spec Envoy would use.
    let boot = wasmgate_harness::bootstrap::HttpBootstrap {
        listen: ([127, 0, 0, 1], 1).into(),
        admin: ([127, 0, 0, 1], 2).into(),
        filters: vec![WasmFilter::router("{\"routes\": []}")],
        cluster_header: "x-wasmgate-cluster".into(),
        pass_through: None,
        clusters: vec![],
    };
    let base = parse_bootstrap(&boot.to_json().to_string(), Path::new("."))?
        .http_filters
        .remove(0);
    let _ = sim.load(base.clone())?; // compile once; later loads hit the module cache
    println!(
        "router: native lookup (filters/core) vs the .wasm in host-sim ({})",
        wasm.display()
    );
    println!(
        "{:>7} {:>6}  {:>10} {:>13} {:>12} {:>14} {:>12} {:>11} {:>10}",
        "routes",
        "hosts",
        "native ns",
        "native vs 10",
        "scan ns",
        "wasm ns/req",
        "host calls/req",
        "configure ms",
        "memory MiB"
    );
    let mut first = 0.0;
    for (hosts, per_host) in [(1, 10), (100, 10), (1, 10_000), (1_000, 10)] {
        let config = router_config(hosts, per_host).to_string();
        let table = RouteTable::from_json(config.as_bytes())?;
        let reqs = requests(hosts, per_host, 10_000);
        let native = native_ns(&table, &reqs);
        let mut spec = base.clone();
        spec.configuration = config.into_bytes();
        let t = Instant::now();
        let plugin = sim.load(spec)?;
        let configure_ms = t.elapsed().as_secs_f64() * 1e3;
        // The VM's linear memory once configured: what Envoy's per-VM limit applies to.
        let memory_mib = plugin.memory_bytes() as f64 / (1024.0 * 1024.0);
        let routes = Routes::cluster_header("x-wasmgate-cluster");
        let mut calls = 0;
        let n = 20_000;
        let start = Instant::now();
        for (host, path) in reqs.iter().cycle().take(n) {
            let out = plugin.http(
                &routes,
                HttpRequest::get(host, path).without_envoy_headers(),
            );
            if out.cluster.is_none() {
                return Err(format!("{host}{path} was not routed: {:?}", out.local_reply).into());
            }
            calls += out.host_calls;
        }
        let wasm_ns = start.elapsed().as_nanos() as f64 / n as f64;
        if first == 0.0 {
            first = native;
        }
        let scan = linear_scan_ns(hosts, per_host, &reqs);
        println!(
            "{:>7} {:>6}  {:>10.1} {:>12.2}x {:>12.0} {:>14.0} {:>12.1} {:>11.1} {:>10.1}",
            hosts * per_host,
            hosts,
            native,
            native / first,
            scan,
            wasm_ns,
            calls as f64 / n as f64,
            configure_ms,
            memory_mib
        );
    }
    adversarial(&sim, &base)?;
    Ok(())
}

/// Best of five passes: ns per native lookup of `paths` in the one host of a key-set table.
fn keyset_native_ns(table: &RouteTable, paths: &[String]) -> f64 {
    let pass = || {
        let mut rng = FixedRandom(0.5);
        let start = Instant::now();
        for _ in 0..20 {
            for path in paths {
                let req = RequestView {
                    authority: b"keys.example.com",
                    path: path.as_bytes(),
                    method: b"GET",
                    headers: &[],
                    listener_port: None,
                };
                black_box(table.route(&req, &mut rng));
            }
        }
        start.elapsed().as_nanos() as f64 / (20 * paths.len()) as f64
    };
    (0..5).map(|_| pass()).fold(f64::MAX, f64::min)
}

/// Adversarial key sets (issue 12): 10 and 10,000 prefix rules in one host, half the
/// requests hits, half made-up misses; the lookup must cost the same within 2x, and the
/// `.wasm` must configure 10,000 of them quickly and in little memory.
fn adversarial(
    sim: &HostSim,
    base: &host_sim::PluginSpec,
) -> Result<(), Box<dyn std::error::Error>> {
    println!();
    println!("router: adversarial key sets, PathPrefix rules in one host (half hits, half misses)");
    println!(
        "{:<24} {:>9} {:>11} {:>6} {:>12} {:>12} {:>12} {:>10}",
        "key set",
        "10 ns",
        "10,000 ns",
        "ratio",
        "groups max",
        "wasm ns/req",
        "configure ms",
        "memory MiB"
    );
    for set in KEY_SETS {
        let mut ns = Vec::new();
        for n in [10, 10_000] {
            let table = RouteTable::from_json(keyset_config(set, n).to_string().as_bytes())?;
            ns.push(keyset_native_ns(&table, &keyset_requests(set, n, 10_000)));
        }
        let n = 10_000;
        let probes = probe_stats(set, n, &SeededState::default(), 16, 64);
        let mut spec = base.clone();
        spec.configuration = keyset_config(set, n).to_string().into_bytes();
        let t = Instant::now();
        let plugin = sim.load(spec)?;
        let configure_ms = t.elapsed().as_secs_f64() * 1e3;
        let memory_mib = plugin.memory_bytes() as f64 / (1024.0 * 1024.0);
        let routes = Routes::cluster_header("x-wasmgate-cluster");
        let paths = keyset_requests(set, n, 10_000);
        let count = 20_000;
        let start = Instant::now();
        for path in paths.iter().cycle().take(count) {
            let out = plugin.http(
                &routes,
                HttpRequest::get("keys.example.com", path).without_envoy_headers(),
            );
            if out.cluster.is_none() {
                return Err(format!("{path} was not routed: {:?}", out.local_reply).into());
            }
        }
        let wasm_ns = start.elapsed().as_nanos() as f64 / count as f64;
        println!(
            "{:<24} {:>9.1} {:>11.1} {:>5.2}x {:>12} {:>12.0} {:>12.1} {:>10.1}",
            set.name,
            ns[0],
            ns[1],
            ns[1] / ns[0],
            probes.max_groups,
            wasm_ns,
            configure_ms,
            memory_mib
        );
    }
    Ok(())
}
