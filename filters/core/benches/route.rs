//! Route-table lookup cost per request, natively, by what the request exercises: each
//! path kind, method/header/query conditions, a redirect, and a miss; in a host of 10
//! and of 1,000 rules. `cargo bench -p wasmgate-core --bench route`.

// A bench may unwrap: a failure should stop it loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Instant;

use wasmgate_core::{FixedRandom, Outcome, RequestView, RouteTable};

/// One host with `n` rules cycling through the kinds the requests below hit. Regexes are
/// scanned in order, so only the first ten rules of that kind are regexes.
fn config(n: usize) -> String {
    let rules: Vec<String> = (0..n)
        .map(|i| {
            let forward = format!(r#""backend": {{"service": "s{i}", "cluster": "c{i}"}}"#);
            match i % 6 {
                0 => format!(r#"{{"matches": [{{"path": {{"type": "Exact", "value": "/e{i}"}}}}], {forward}}}"#),
                1 => format!(r#"{{"path": "/p{i}", {forward}}}"#),
                2 => format!(
                    r#"{{"matches": [{{"path": {{"type": "Pattern", "value": "/t{i}/{{id}}"}}}}],
                        "urlRewrite": {{"path": {{"type": "ReplaceFullPath", "value": "/items/{{id}}"}}}}, {forward}}}"#
                ),
                3 if i < 60 => format!(
                    r#"{{"matches": [{{"path": {{"type": "RegularExpression", "value": "/r{i}/[0-9]+"}}}}], {forward}}}"#
                ),
                4 => format!(
                    r#"{{"matches": [{{"path": {{"type": "PathPrefix", "value": "/c{i}"}}, "method": "POST",
                        "headers": [{{"name": "x-tier", "value": "gold"}}],
                        "queryParams": [{{"name": "v", "value": "2"}}]}}],
                        "requestHeaders": {{"set": [{{"name": "x-rule", "value": "c{i}"}}]}}, {forward}}}"#
                ),
                _ => format!(
                    r#"{{"matches": [{{"path": {{"type": "Exact", "value": "/old{i}"}}}}],
                        "redirect": {{"scheme": "https", "statusCode": 301}}}}"#
                ),
            }
        })
        .collect();
    format!(
        r#"{{"routes": [{{"http": {{"host": "bench.example.com", "rules": [{}]}}}}]}}"#,
        rules.join(",")
    )
}

/// Best of five passes over `reqs`: ns per lookup.
fn lookup_ns(table: &RouteTable, reqs: &[RequestView<'_>]) -> f64 {
    let pass = || {
        let mut rng = FixedRandom(0.5);
        let start = Instant::now();
        for _ in 0..2_000 {
            for req in reqs {
                black_box(table.route(black_box(req), &mut rng));
            }
        }
        start.elapsed().as_nanos() as f64 / (2_000 * reqs.len()) as f64
    };
    (0..5).map(|_| pass()).fold(f64::MAX, f64::min)
}

fn main() {
    let headers: &[(&str, &[u8])] = &[("x-tier", b"gold"), (":scheme", b"http")];
    let get = |path: &'static str, method: &'static [u8]| RequestView {
        authority: b"bench.example.com",
        path: path.as_bytes(),
        method,
        headers,
        listener_port: None,
    };
    // (class, request, whether it forwards); rule numbers exist in both table sizes.
    let classes = [
        ("exact", get("/e6", b"GET"), true),
        ("prefix", get("/p7/a/b", b"GET"), true),
        ("pattern + rewrite", get("/t8/42", b"GET"), true),
        ("regex", get("/r9/123", b"GET"), true),
        ("method+header+query", get("/c4/x?v=2", b"POST"), true),
        ("redirect", get("/old5", b"GET"), false),
        ("no match", get("/nothing/here", b"GET"), false),
    ];
    println!(
        "{:<22} {:>12} {:>14}",
        "request", "10 rules ns", "1,000 rules ns"
    );
    let tables = [10, 1_000].map(|n| RouteTable::from_json(config(n).as_bytes()).unwrap());
    for (name, req, forwards) in &classes {
        let ns = tables.each_ref().map(|t| {
            let out = t.route(req, &mut FixedRandom(0.5));
            assert_eq!(
                matches!(out, Outcome::Forward(_)),
                *forwards,
                "{name}: {out:?}"
            );
            lookup_ns(t, std::slice::from_ref(req))
        });
        println!("{name:<22} {:>12.1} {:>14.1}", ns[0], ns[1]);
    }
}
