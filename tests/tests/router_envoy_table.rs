//! The router case table (tests/router-cases/router_cases.yaml) run through a real Envoy:
//! one local backend per cluster, named after it, so the backend that answers tells the
//! cluster Envoy reached; its echo tells how the request arrived.

use std::net::SocketAddr;

use wasmgate_core::config::RouterConfig;
use wasmgate_harness::router_case_setup::{case_bootstrap, clusters_of, PASS_THROUGH};
use wasmgate_harness::{free_port, request_bytes, Backend, Envoy, Scratch};
use wasmgate_router_cases::{bytes, check, load, Case, Observed};

/// Cases Envoy's HTTP/1 codec answers itself, before any filter runs: (case, status, why).
const ANSWERED_BY_CODEC: &[(&str, u16, &str)] = &[
    (
        "missing authority answers 404",
        400,
        "HTTP/1.1 requires Host",
    ),
    (
        "non-UTF-8 path falls back to prefixes",
        400,
        "the request target must be ASCII",
    ),
];

fn observe(addr: SocketAddr, case: &Case) -> Observed {
    let req = &case.request;
    let headers: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), bytes(v)))
        .collect();
    let headers: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let authority = req.authority.as_deref().map(bytes);
    let r = request_bytes(
        addr,
        req.method.as_deref().unwrap_or("GET"),
        authority.as_deref(),
        &bytes(&req.path),
        &headers,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut seen = Observed::default();
    match r.backend() {
        Some(b) if b == PASS_THROUGH => seen.pass_through = true,
        Some(b) => seen.cluster = Some(b),
        None => {
            seen.status = Some(r.status);
            seen.body = Some(r.body.clone());
        }
    }
    if r.backend().is_some() {
        let echo = r.json();
        let mut upstream = vec![(
            ":path".to_string(),
            echo["path"].as_str().unwrap_or("").as_bytes().to_vec(),
        )];
        for pair in echo["headers"].as_array().into_iter().flatten() {
            let (k, v) = (
                pair[0].as_str().unwrap_or(""),
                pair[1].as_str().unwrap_or(""),
            );
            let k = if k == "host" { ":authority" } else { k };
            upstream.push((k.to_string(), v.as_bytes().to_vec()));
        }
        seen.upstream = upstream;
    }
    seen.response_headers = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    seen
}

#[test]
fn every_router_case_holds_in_envoy() {
    let file = load();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (name, value) in &file.configs {
        let cases: Vec<&Case> = file.cases.iter().filter(|c| &c.config == name).collect();
        if cases.is_empty() {
            continue;
        }
        let config: RouterConfig =
            serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap();
        let backends: Vec<Backend> = clusters_of(&config)
            .into_iter()
            .map(|c| Backend::start(&c).unwrap())
            .collect();
        let scratch = Scratch::new("router-table").unwrap();
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
        let admin_port = free_port().unwrap();
        let boot = case_bootstrap(
            &config,
            listen,
            SocketAddr::from(([127, 0, 0, 1], admin_port)),
            backends
                .iter()
                .map(|b| (b.name.clone(), b.addr()))
                .collect(),
        );
        let path = scratch
            .write("envoy.json", &boot.to_json().to_string())
            .unwrap();
        let envoy = Envoy::start(&path, admin_port, 1).unwrap();
        for case in cases {
            ran += 1;
            let seen = observe(listen, case);
            let result = match ANSWERED_BY_CODEC.iter().find(|(n, ..)| *n == case.name) {
                Some((_, status, why))
                    if seen.status != Some(*status) || seen.cluster.is_some() =>
                {
                    Err(format!(
                        "{}: expected Envoy's codec to answer {status} ({why}), saw {seen:?}",
                        case.name
                    ))
                }
                Some(_) => Ok(()),
                None => match &case.envoy {
                    Some(expect) => check(
                        &Case {
                            expect: expect.clone(),
                            ..case.clone()
                        },
                        &seen,
                    ),
                    None => check(case, &seen),
                },
            };
            if let Err(diff) = result {
                failures.push(diff);
            }
        }
        drop(envoy);
    }
    assert!(ran > 40, "only {ran} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed in Envoy:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
