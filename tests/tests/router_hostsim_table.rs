//! The router case table run through the compiled .wasm in host-sim, configured from the very
//! Envoy bootstrap the real-Envoy runner starts Envoy with.

#[path = "../../filters/core/tests/cases/mod.rs"]
mod cases;

use std::net::SocketAddr;
use std::path::Path;

use cases::{bytes, check, load, Case, Observed};
use host_sim::envoy_config::parse_bootstrap;
use host_sim::{HostSim, HttpOutcome, HttpRequest};
use wasmgate_core::config::RouterConfig;
use wasmgate_tests::router_cases::{case_bootstrap, clusters_of, PASS_THROUGH};

fn to_request(case: &Case) -> HttpRequest {
    let r = &case.request;
    let mut req = HttpRequest::new(r.method.as_deref().unwrap_or("GET"), "", "");
    req.headers.remove(":authority");
    req.headers.remove(":path");
    if let Some(a) = &r.authority {
        req.headers.add(":authority", bytes(a));
    }
    req.headers.add(":path", bytes(&r.path));
    for (k, v) in &r.headers {
        req.headers.add(k.to_ascii_lowercase(), bytes(v));
    }
    req
}

fn observe(out: &HttpOutcome) -> Observed {
    let mut seen = Observed::default();
    match (&out.local_reply, &out.cluster) {
        (Some(_), _) | (None, None) => {
            seen.status = Some(out.status);
            seen.body = Some(out.response_body.clone());
        }
        (None, Some(c)) if c == PASS_THROUGH => seen.pass_through = true,
        (None, Some(c)) => seen.cluster = Some(c.clone()),
    }
    seen.upstream = out.upstream_request.clone().unwrap_or_default();
    seen.response_headers = out.response_headers.clone();
    seen
}

#[test]
fn every_router_case_holds_in_host_sim() {
    let file = load();
    let sim = HostSim::new().unwrap();
    let any = SocketAddr::from(([127, 0, 0, 1], 1));
    let mut failures = Vec::new();
    for (name, value) in &file.configs {
        let config: RouterConfig =
            serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap();
        let clusters = clusters_of(&config).into_iter().map(|c| (c, any)).collect();
        let boot = case_bootstrap(&config, any, any, clusters);
        let setup = parse_bootstrap(&boot.to_json().to_string(), Path::new(".")).unwrap();
        let plugin = sim.load(setup.http_filters[0].clone()).unwrap();
        sim.declare_clusters(&setup.clusters);
        for case in file.cases.iter().filter(|c| &c.config == name) {
            let out = plugin.http(&setup.routes, to_request(case));
            assert!(out.vm_failures.is_empty(), "{}: the VM failed: {:?}", case.name, out.vm_failures);
            if let Err(diff) = check(case, &observe(&out)) {
                failures.push(diff);
            }
        }
    }
    assert!(failures.is_empty(), "{} cases failed in host-sim:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_invalid_config_is_refused_by_the_wasm_with_its_field_path_logged() {
    let file = load();
    let sim = HostSim::new().unwrap();
    let any = SocketAddr::from(([127, 0, 0, 1], 1));
    let base = case_bootstrap(&serde_json::from_str("{\"routes\": []}").unwrap(), any, any, vec![]);
    let setup = parse_bootstrap(&base.to_json().to_string(), Path::new(".")).unwrap();
    let mut failures = Vec::new();
    for case in &file.errors {
        let mut spec = setup.http_filters[0].clone();
        spec.configuration = case.json();
        match sim.load(spec) {
            Ok(_) => failures.push(format!("{}: accepted", case.name)),
            Err(host_sim::Error::ConfigureRejected { logs, .. }) => {
                if !logs.iter().any(|(_, l)| l.contains(&case.error)) {
                    failures.push(format!("{}: {:?} not in logs {logs:?}", case.name, case.error));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
