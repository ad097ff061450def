//! The router's answer to what a bucket's store says, through the compiled .wasm in
//! host-sim (the same bootstrap shape the real-Envoy runners use): a missing key (the
//! store's 403 or 404) becomes a 404 with the rule's body and never shows the store's XML;
//! every other answer passes as the store gave it. Natively, `bucket::is_missing_key` holds
//! the same table (filters/core/src/route_table/actions/bucket.rs); in Envoy, tests/tests/bucket_envoy.rs.

use std::net::SocketAddr;
use std::path::Path;

use host_sim::bootstrap_reader::parse_bootstrap;
use host_sim::{HostSim, HttpRequest, UpstreamReply};
use wasmgate_core::config::RouterConfig;
use wasmgate_harness::router_case_setup::{case_bootstrap, clusters_of};

const CONFIG: &str = r#"{"routes": [{"http": {"host": "b.com", "rules": [
  {"path": "/", "bucket": {"name": "site", "cluster": "store", "host": "127.0.0.1:9000",
                           "notFoundBody": "no such page\n"}}]}}]}"#;

const STORE_ERROR: &str =
    "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Key>a</Key></Error>";

#[test]
fn the_stores_missing_key_answers_become_a_404_and_the_rest_pass() {
    let config: RouterConfig = serde_json::from_str(CONFIG).unwrap();
    let any = SocketAddr::from(([127, 0, 0, 1], 1));
    let clusters = clusters_of(&config).into_iter().map(|c| (c, any)).collect();
    let boot = case_bootstrap(&config, any, any, clusters);
    let setup = parse_bootstrap(&boot.to_json().to_string(), Path::new(".")).unwrap();
    let sim = HostSim::new().unwrap();
    let plugin = sim.load(setup.http_filters[0].clone()).unwrap();
    setup.declare_clusters(&sim);
    // (what the store answers, body, what the client sees, body)
    let cases: &[(u16, &str, u16, &str)] = &[
        (200, "object", 200, "object"),
        (206, "obj", 206, "obj"),
        (304, "", 304, ""),
        (403, STORE_ERROR, 404, "no such page\n"),
        (404, STORE_ERROR, 404, "no such page\n"),
        (500, "store failed", 500, "store failed"),
        (503, "slow down", 503, "slow down"),
    ];
    let mut failures = Vec::new();
    for &(store, store_body, want, want_body) in cases {
        sim.set_upstream(
            "store",
            UpstreamReply::status(store)
                .with_body(store_body)
                .with_header("x-amz-request-id", "R1"),
        );
        let mut req = HttpRequest::get("b.com", "/a.txt");
        req.destination_address = "127.0.0.1:1".into();
        let out = plugin.http(&setup.routes, req);
        let body = String::from_utf8_lossy(&out.response_body);
        let request_id = out
            .response_headers
            .iter()
            .any(|(n, _)| n == "x-amz-request-id");
        if out.status != want || body != want_body || request_id || !out.vm_failures.is_empty() {
            failures.push(format!(
                "store {store}: client saw {} {body:?} (want {want} {want_body:?}), store id \
                 header {request_id}, vm failures {:?}",
                out.status, out.vm_failures
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
