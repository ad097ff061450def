//! Native route lookup cost: ns per match as the table grows (flat is the goal), next to a
//! linear scan over the same routes, which is how Envoy's own route table matches.
//! Run with `make bench` (or `cargo bench -p wasmgate-core --bench route_lookup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Instant;

use serde_json::json;
use wasmgate_core::{FixedRandom, Outcome, RequestView, RouteTable};

/// `hosts` hosts with `per_host` rules each: a mix of exact, prefix and pattern paths.
pub fn config(hosts: usize, per_host: usize) -> serde_json::Value {
    let routes: Vec<_> = (0..hosts)
        .map(|h| {
            let rules: Vec<_> = (0..per_host)
                .map(|r| {
                    let path = match r % 3 {
                        0 => json!({"type": "Exact", "value": format!("/svc{r}/exact")}),
                        1 => json!({"type": "PathPrefix", "value": format!("/svc{r}")}),
                        _ => json!({"type": "Pattern", "value": format!("/svc{r}/items/{{id}}")}),
                    };
                    json!({"matches": [{"path": path}], "backend": {"service": format!("s{h}-{r}"), "cluster": format!("c{h}-{r}")}})
                })
                .collect();
            json!({"http": {"host": format!("host{h}.example.com"), "rules": rules}})
        })
        .collect();
    json!({ "routes": routes })
}

fn requests(hosts: usize, per_host: usize, n: usize) -> Vec<(String, String)> {
    let mut x: u64 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let h = (x as usize) % hosts;
            let r = (x as usize >> 20) % per_host;
            let path = match r % 3 {
                0 => format!("/svc{r}/exact"),
                1 => format!("/svc{r}/a/b"),
                _ => format!("/svc{r}/items/42"),
            };
            (format!("host{h}.example.com"), path)
        })
        .collect()
}

/// The best of five timed passes, each over every request several times.
fn ns_per_lookup(table: &RouteTable, reqs: &[(String, String)]) -> f64 {
    (0..5)
        .map(|_| one_pass(table, reqs))
        .fold(f64::MAX, f64::min)
}

fn one_pass(table: &RouteTable, reqs: &[(String, String)]) -> f64 {
    let mut rng = FixedRandom(0.5);
    let rounds = 20;
    let start = Instant::now();
    let mut hits = 0usize;
    for _ in 0..rounds {
        for (host, path) in reqs {
            let req = RequestView {
                authority: host.as_bytes(),
                path: path.as_bytes(),
                method: b"GET",
                headers: &[],
            };
            if matches!(black_box(table.route(&req, &mut rng)), Outcome::Forward(_)) {
                hits += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(hits, rounds * reqs.len(), "every request must match");
    elapsed.as_nanos() as f64 / (rounds * reqs.len()) as f64
}

/// A first-match scan over (host, prefix) pairs: the shape of Envoy's native matching.
fn ns_per_linear_scan(hosts: usize, per_host: usize, reqs: &[(String, String)]) -> f64 {
    let routes: Vec<(String, String)> = (0..hosts)
        .flat_map(|h| {
            (0..per_host).map(move |r| (format!("host{h}.example.com"), format!("/svc{r}")))
        })
        .collect();
    let rounds = 2;
    let start = Instant::now();
    for _ in 0..rounds {
        for (host, path) in reqs {
            let hit = routes
                .iter()
                .position(|(h, p)| h == host && path.starts_with(p.as_str()));
            black_box(hit);
        }
    }
    start.elapsed().as_nanos() as f64 / (rounds * reqs.len()) as f64
}

fn main() {
    println!("route lookup, native (filters/core), ns per request; linear scan = Envoy-style first match");
    println!(
        "{:>8} {:>7} {:>12} {:>12} {:>14}",
        "routes", "hosts", "compile ms", "ns/lookup", "linear ns"
    );
    let mut baseline = 0.0;
    for (hosts, per_host) in [(1, 10), (10, 10), (100, 10), (1_000, 10)] {
        let cfg = serde_json::to_vec(&config(hosts, per_host)).unwrap();
        let t = Instant::now();
        let table = RouteTable::from_json(&cfg).unwrap();
        let compile = t.elapsed().as_secs_f64() * 1e3;
        let reqs = requests(hosts, per_host, 10_000);
        let ns = ns_per_lookup(&table, &reqs);
        let linear = ns_per_linear_scan(hosts, per_host, &reqs);
        if baseline == 0.0 {
            baseline = ns;
        }
        println!(
            "{:>8} {:>7} {:>12.2} {:>12.1} {:>14.1}   ({:.2}x the 10-route lookup)",
            hosts * per_host,
            hosts,
            compile,
            ns,
            linear,
            ns / baseline
        );
    }
}
