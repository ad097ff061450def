//! The router case table, run natively against filters/core.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use wasmgate_core::{
    apply_edits, apply_request, FixedRandom, Outcome, RequestView, RouteTable, Step, TcpOutcome,
    VecHeaders,
};
use wasmgate_router_cases::{check, load, Case, Observed};

fn run(table: &RouteTable, case: &Case) -> Observed {
    let all = case.request.header_list();
    let get = |n: &str| {
        all.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (authority, path, method) = (get(":authority"), get(":path"), get(":method"));
    // Only the headers the table asks for, as the filter reads them.
    let wanted: Vec<(&str, &[u8])> = all
        .iter()
        .filter(|(n, _)| table.header_names().iter().any(|w| w == n))
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let req = RequestView {
        authority: &authority,
        path: &path,
        method: &method,
        headers: &wanted,
        // Every runner of the table presents its listener as declared on port 80.
        listener_port: Some(80),
    };
    let outcome = table.route(&req, &mut FixedRandom(0.5));
    let mut response = VecHeaders::default();
    let forwarded = matches!(outcome, Outcome::Forward(_));
    if let Outcome::Forward(f) = &outcome {
        apply_edits(&mut response, &f.response_headers);
        if let Some(b) = &f.backend_headers {
            apply_edits(&mut response, &b.response);
        }
    }
    let mut upstream = VecHeaders(all.clone());
    let mut seen = Observed::default();
    match apply_request(outcome, table, &mut upstream) {
        // Forwarded without a cluster header: left to the proxy (or the balancer after us).
        Step::Continue if forwarded && upstream.get(table.cluster_header()).is_some() => {
            seen.cluster = upstream
                .get(table.cluster_header())
                .map(|c| String::from_utf8_lossy(c).into_owned());
        }
        Step::Continue => seen.pass_through = true,
        Step::Reply(r) => {
            seen.status = Some(r.status);
            seen.body = Some(r.body.as_bytes().to_vec());
            response = VecHeaders(
                r.headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                    .collect(),
            );
        }
    }
    seen.upstream = upstream.0;
    seen.response_headers = response.0;
    seen
}

#[test]
fn every_router_case_holds_natively() {
    let file = load();
    let mut failures = Vec::new();
    for case in &file.cases {
        let table = RouteTable::from_json(&file.config_json(&case.config))
            .unwrap_or_else(|e| panic!("config {}: {e}", case.config));
        if let Err(diff) = check(case, &run(&table, case)) {
            failures.push(diff);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        file.cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_invalid_config_is_rejected_with_its_field_path() {
    let file = load();
    let mut failures = Vec::new();
    for case in &file.errors {
        match RouteTable::from_json(&case.json()) {
            Ok(_) => failures.push(format!("{}: accepted", case.name)),
            Err(e) if !e.to_string().contains(&case.error) => failures.push(format!(
                "{}:\n  expected {:?}\n  got      {:?}",
                case.name,
                case.error,
                e.to_string()
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tcp_routes_pick_by_listener_port() {
    let file = load();
    let table = RouteTable::from_json(&file.config_json("seed")).unwrap();
    let mut rng = FixedRandom(0.0);
    assert_eq!(
        table.route_tcp(9000, &mut rng),
        TcpOutcome::Cluster("tcp-app_9000")
    );
    assert_eq!(table.route_tcp(9001, &mut rng), TcpOutcome::NoRoute);
}

#[test]
fn errors_quote_a_bounded_prefix_of_huge_values() {
    let huge = "a".repeat(1 << 20);
    let configs = [
        format!(r#"{{"routes": [{{"http": {{"host": "{huge}..com", "rules": []}}}}]}}"#),
        format!(
            r#"{{"routes": [{{"http": {{"host": "a.com", "rules": [{{"path": "{huge}", "statusCode": {{"code": 200}}}}]}}}}]}}"#
        ),
        format!(
            r#"{{"routes": [{{"http": {{"host": "a.com", "rules": [{{"matches": [{{"path": {{"type": "RegularExpression", "value": "({huge}"}}}}], "statusCode": {{"code": 200}}}}]}}}}]}}"#
        ),
        format!(
            r#"{{"routes": [{{"http": {{"host": "a.com", "rules": [{{"matches": [{{"method": "{huge}"}}], "statusCode": {{"code": 200}}}}]}}}}]}}"#
        ),
        format!(r#"{{"noMatch": "{huge}", "routes": []}}"#),
        format!(r#"{{"{huge}": 1, "routes": []}}"#),
    ];
    for config in &configs {
        let err = RouteTable::from_json(config.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.len() < 1024,
            "a {}-byte error: {}",
            err.len(),
            &err[..200]
        );
    }
    let err = RouteTable::from_json(configs[0].as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("routes[0].http.host: invalid host \"aaaa")
            && err.to_string().contains("...(1048581 bytes)"),
        "the quote is a prefix with the full length: {err}"
    );
}

#[test]
fn a_redirect_without_port_or_scheme_takes_the_declared_listener_port() {
    let config = br#"{
        "listenerPorts": {"18080": 80, "18081": 8080, "18443": 443},
        "routes": [{"http": {"host": "x.com", "rules": [
            {"path": "/plain", "redirect": {"hostname": "y.com"}},
            {"path": "/https", "redirect": {"scheme": "https"}},
            {"path": "/port", "redirect": {"port": 9443}}
        ]}}]
    }"#;
    let table = RouteTable::from_json(config).unwrap();
    assert!(table.needs_listener_port());
    // (path, :scheme, :authority, listener port, Location)
    let cases = [
        (
            "/plain",
            "http",
            "x.com:18080",
            Some(18080),
            "http://y.com/plain",
        ),
        (
            "/plain",
            "http",
            "x.com",
            Some(18081),
            "http://y.com:8080/plain",
        ),
        (
            "/plain",
            "https",
            "x.com",
            Some(18443),
            "https://y.com/plain",
        ),
        (
            "/plain",
            "http",
            "x.com",
            Some(18443),
            "http://y.com:443/plain",
        ),
        (
            "/plain",
            "http",
            "x.com",
            Some(7000),
            "http://y.com:7000/plain",
        ),
        // Without Envoy's destination.port the Host header's port is the fallback.
        ("/plain", "http", "x.com:81", None, "http://y.com:81/plain"),
        (
            "/https",
            "http",
            "x.com:18081",
            Some(18081),
            "https://x.com/https",
        ),
        (
            "/port",
            "http",
            "x.com",
            Some(18080),
            "http://x.com:9443/port",
        ),
    ];
    for (path, scheme, authority, port, want) in cases {
        let headers = [(":scheme", scheme.as_bytes())];
        let req = RequestView {
            authority: authority.as_bytes(),
            path: path.as_bytes(),
            method: b"GET",
            headers: &headers,
            listener_port: port,
        };
        match table.route(&req, &mut FixedRandom(0.5)) {
            Outcome::Reply(r) => {
                let location = r.headers.iter().find(|(n, _)| *n == "location");
                assert_eq!(
                    location.map(|(_, v)| v.as_ref()),
                    Some(want),
                    "{path} {scheme} {authority} {port:?}"
                );
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}
