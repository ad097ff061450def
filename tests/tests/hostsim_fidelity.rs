//! host-sim against Envoy, host call by host call. The probe module (`tests/probe`) calls
//! every proxy-wasm host function it can from a request-headers callback and answers with a
//! JSON report of each status and value. The same bootstrap runs in a real Envoy and in
//! host-sim; the two reports must agree on every entry, except the differences listed in
//! `KNOWN` with their reason (and in host-sim/README.md, "Known differences").

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use host_sim::envoy_config::parse_bootstrap;
use host_sim::{HostSim, HttpRequest, UpstreamReply};
use wasmgate_tests::bootstrap::{HttpBootstrap, WasmFilter};
use wasmgate_tests::{free_port, paths, post, request, Backend, Envoy, Scratch};

/// Report entries whose value legitimately differs per request or per process; only their
/// status is compared.
const VARYING: &[&str] = &[
    "property request.id",
    "property source.address",
    "property source.port",
    "property destination.address",
    "property destination.port",
];

/// Entries where host-sim knowingly answers otherwise than Envoy 1.40, with the reason.
/// A listed entry that starts to agree fails the test too, so the list stays true.
const KNOWN: &[(&str, &str)] = &[];

const HOST: &str = "probe.test";
const PATH: &str = "/probe/path?x=1&y=two";
const HEADERS: &[(&str, &[u8])] = &[("x-probe-in", b"hello"), ("x-probe-remove", b"bye")];

const FLOW_PATH: &str = "/flow";
const FLOW_BODY: &[u8] = b"hello-body";

fn probe_bootstrap(listen: SocketAddr, admin: SocketAddr, backend: SocketAddr) -> HttpBootstrap {
    HttpBootstrap {
        listen,
        admin,
        filters: vec![WasmFilter {
            name: "probe".into(),
            root_id: "probe".into(),
            wasm: paths::wasm("wasmgate_probe"),
            configuration: String::new(),
            fail_open: false,
        }],
        cluster_header: "x-wasmgate-cluster".into(),
        pass_through: None,
        clusters: vec![("backend".into(), backend)],
    }
}

fn parse(body: &[u8], from: &str) -> BTreeMap<String, String> {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{from}: the probe's report is not JSON ({e}):\n{}",
            String::from_utf8_lossy(body)
        )
    })
}

/// The probe's two reports (host calls at request headers; the whole flow) and the body
/// that reached the upstream.
struct Reports {
    calls: BTreeMap<String, String>,
    flow: BTreeMap<String, String>,
    upstream_body: Vec<u8>,
}

fn reports_from_envoy() -> Reports {
    let backend = Backend::start("backend").unwrap();
    let (listen, admin) = (free_port().unwrap(), free_port().unwrap());
    let boot = probe_bootstrap(
        SocketAddr::from(([127, 0, 0, 1], listen)),
        SocketAddr::from(([127, 0, 0, 1], admin)),
        backend.addr(),
    );
    let scratch = Scratch::new("fidelity").unwrap();
    let config = scratch
        .write("envoy.json", &boot.to_json().to_string())
        .unwrap();
    let envoy = Envoy::start(&config, admin, 1).unwrap();
    let r = request(boot.listen, "GET", HOST, PATH, HEADERS).unwrap();
    assert_eq!(
        (r.status, r.header("x-probe")),
        (200, Some("report")),
        "the probe did not answer in Envoy:\n{}\n{}",
        r.text(),
        envoy.log_text()
    );
    let calls = parse(&r.body, "Envoy");
    let f = post(boot.listen, HOST, FLOW_PATH, HEADERS, FLOW_BODY)
        .unwrap_or_else(|e| panic!("POST {FLOW_PATH}: {e}\n{}", envoy.log_text()));
    assert_eq!(
        f.status,
        200,
        "the flow failed in Envoy:\n{}\n{}",
        f.text(),
        envoy.log_text()
    );
    let upstream_body = backend
        .received()
        .into_iter()
        .find(|r| r.path == FLOW_PATH)
        .map(|r| r.body)
        .unwrap_or_default();
    Reports {
        calls,
        flow: parse(&f.body, "Envoy flow"),
        upstream_body,
    }
}

fn reports_from_host_sim() -> Reports {
    let any = SocketAddr::from(([127, 0, 0, 1], 1));
    let boot = probe_bootstrap(any, any, any);
    let setup = parse_bootstrap(&boot.to_json().to_string(), Path::new(".")).unwrap();
    let sim = HostSim::new().unwrap();
    setup.declare_clusters(&sim);
    // What the test backend answers: its name in `x-backend`, JSON.
    let mut reply = UpstreamReply::status(200);
    reply.headers = vec![
        ("content-type".into(), b"application/json".to_vec()),
        ("x-backend".into(), b"backend".to_vec()),
    ];
    reply.body = b"{}".to_vec();
    sim.set_upstream("backend", reply);
    let plugin = sim.load(setup.http_filters[0].clone()).unwrap();
    let with_headers = |mut req: HttpRequest| {
        for (k, v) in HEADERS {
            req = req.header(k, v);
        }
        req
    };
    let out = plugin.http(&setup.routes, with_headers(HttpRequest::get(HOST, PATH)));
    assert!(out.vm_failures.is_empty(), "{:?}", out.vm_failures);
    assert_eq!(out.status, 200, "{out:?}");
    let calls = parse(&out.response_body, "host-sim");
    let f = plugin.http(
        &setup.routes,
        with_headers(HttpRequest::post(HOST, FLOW_PATH, FLOW_BODY)),
    );
    assert!(f.vm_failures.is_empty(), "{:?}", f.vm_failures);
    assert_eq!(f.status, 200, "the flow failed in host-sim: {f:?}");
    Reports {
        calls,
        flow: parse(&f.response_body, "host-sim flow"),
        upstream_body: f.upstream_request_body.clone(),
    }
}

/// The status part of a `status:value` entry.
fn status(entry: &str) -> &str {
    entry.split_once(':').map_or(entry, |(s, _)| s)
}

/// Entry-by-entry differences that are neither varying nor known.
fn differences(envoy: &BTreeMap<String, String>, sim: &BTreeMap<String, String>) -> Vec<String> {
    let mut diffs = Vec::new();
    let keys: BTreeSet<&String> = envoy.keys().chain(sim.keys()).collect();
    for key in keys {
        let (e, s) = (envoy.get(key), sim.get(key));
        let agree = match (e, s) {
            (Some(e), Some(s)) if VARYING.contains(&key.as_str()) => status(e) == status(s),
            (e, s) => e == s,
        };
        match (KNOWN.iter().any(|(k, _)| k == key), agree) {
            (true, true) => diffs.push(format!(
                "{key}: listed as a known difference but now agrees; drop it from KNOWN"
            )),
            (false, false) => diffs.push(format!(
                "{key}:\n    envoy:    {}\n    host-sim: {}",
                e.map_or("(missing)", String::as_str),
                s.map_or("(missing)", String::as_str)
            )),
            _ => {}
        }
    }
    diffs
}

#[test]
fn the_probe_sees_the_same_host_in_envoy_and_in_host_sim() {
    let envoy = reports_from_envoy();
    let sim = reports_from_host_sim();
    assert!(
        envoy.calls.len() > 70 && envoy.flow.len() > 35,
        "the probe reported too little: {:?} {:?}",
        envoy.calls,
        envoy.flow
    );
    let mut diffs = differences(&envoy.calls, &sim.calls);
    diffs.extend(differences(&envoy.flow, &sim.flow));
    if envoy.upstream_body != sim.upstream_body {
        diffs.push(format!(
            "body forwarded upstream:\n    envoy:    {:?}\n    host-sim: {:?}",
            String::from_utf8_lossy(&envoy.upstream_body),
            String::from_utf8_lossy(&sim.upstream_body)
        ));
    }
    assert!(
        diffs.is_empty(),
        "{} entries differ between Envoy and host-sim (status:value):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
