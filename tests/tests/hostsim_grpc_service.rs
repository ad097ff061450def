//! host-sim against Envoy where a module talks to something other than its stream: unary
//! gRPC calls answered by a real gRPC server (grpcio on loopback, `tests/grpc`), and a
//! singleton Wasm service that ticks while a stream waits for a slow upstream.
//!
//! The probe (`tests/probe`) makes two unary calls from `GET /grpc` (one the server answers
//! with a message and metadata, one it refuses with PERMISSION_DENIED and a message) and
//! reports every callback: the status and size the host gave, `proxy_get_status`, the
//! received message, and both gRPC metadata maps. host-sim gets the same answers scripted
//! with `set_grpc_reply`; the reports must agree entry by entry, and the calls host-sim
//! records as callouts must be what the server received.
//!
//! The bootstrap wraps the Wasm filter in an `xds.type.v3.TypedStruct`, so the same
//! config is read by both through that shape too.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use host_sim::scenario::{LoadOptions, Target};
use host_sim::{GrpcReply, HostSim, HttpRequest, UpstreamReply};
use serde_json::{json, Value};
use wasmgate_harness::bootstrap::HttpBootstrap;
use wasmgate_harness::grpc_server::GrpcServer;
use wasmgate_harness::{free_port, paths, request, Backend, Envoy, Scratch};

const HOST: &str = "probe.test";
/// What the server answers to `Ok` (`pong:` + the probe's message `ping`) and to `Fail`.
const OK_RESPONSE: &[u8] = b"pong:ping";
const FAIL_STATUS: u32 = 7;
const FAIL_MESSAGE: &str = "denied: no ticket";
/// How long the backend keeps `/service-tick` waiting: longer than the service's 100 ms tick.
const SLOW_MS: u64 = 600;

/// Report entries where host-sim knowingly answers otherwise than Envoy 1.40, with the
/// reason. A listed entry that starts to agree fails the test too.
const KNOWN: &[(&str, &str)] = &[];

fn probe_wasm() -> Value {
    json!({
        "vm_id": "wasmgate",
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": paths::wasm("wasmgate_probe").display().to_string()}}
    })
}

/// The probe as an HTTP filter (in an `xds.type.v3.TypedStruct`) routing by
/// `x-wasmgate-cluster`, the clusters `backend` (HTTP/1.1) and `grpc` (HTTP/2), and the
/// probe as a singleton service (root id `probe.service`).
fn bootstrap(
    listen: SocketAddr,
    admin: SocketAddr,
    backend: SocketAddr,
    grpc: SocketAddr,
) -> Value {
    let boot = HttpBootstrap::probe(listen, admin, &[("backend", backend), ("grpc", grpc)]);
    let mut json = boot.to_json();
    let filters = &mut json["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"];
    filters[0]["typed_config"] = json!({
        "@type": "type.googleapis.com/xds.type.v3.TypedStruct",
        "type_url": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "value": {"config": {
            "name": "probe",
            "root_id": "probe",
            "vm_config": probe_wasm(),
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": ""}
        }}
    });
    json["static_resources"]["clusters"][1]["typed_extension_protocol_options"] = json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}
        }
    });
    json["bootstrap_extensions"] = json!([{
        "name": "envoy.bootstrap.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.wasm.v3.WasmService",
            "singleton": true,
            "config": {"name": "probe.service", "root_id": "probe.service", "vm_config": probe_wasm()}
        }
    }]);
    json
}

/// One unary call as the server (or host-sim) received it: method, the probe's `x-probe-*`
/// metadata (sorted), message.
type Call = (String, Vec<(String, String)>, Vec<u8>);

/// What one side saw: the gRPC report, the calls as the server (or host-sim's callout
/// record) received them, and the `/service-tick` report header.
#[derive(Debug)]
struct Seen {
    grpc: BTreeMap<String, String>,
    /// Every call, sorted.
    calls: Vec<Call>,
    service: String,
}

fn parse(body: &[u8], from: &str) -> BTreeMap<String, String> {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{from}: the probe's gRPC report is not JSON ({e}):\n{}",
            String::from_utf8_lossy(body)
        )
    })
}

fn probe_metadata(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut md: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| k.starts_with("x-probe"))
        .collect();
    md.sort();
    md
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| s.get(i * 2..i * 2 + 2))
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect()
}

/// Envoy's run, in the order host-sim scripts the answers: the two calls are in flight
/// together, so the server may answer the refused one first; such a run is repeated (a few
/// times at most). The order matters: after a refused call, Envoy's `proxy_get_status` in a
/// later successful callback still reports the refusal (only a close sets the status).
fn seen_in_envoy() -> Seen {
    let mut seen = envoy_once();
    for _ in 0..8 {
        let first = seen.grpc.get("grpc callback 1").map(String::as_str);
        if !first.is_some_and(|v| v.contains("fail")) {
            break;
        }
        seen = envoy_once();
    }
    seen
}

fn envoy_once() -> Seen {
    let backend = Backend::start("backend").unwrap();
    let grpc = GrpcServer::start().unwrap();
    let (listen, admin) = (free_port().unwrap(), free_port().unwrap());
    let listen = SocketAddr::from(([127, 0, 0, 1], listen));
    let json = bootstrap(
        listen,
        SocketAddr::from(([127, 0, 0, 1], admin)),
        backend.addr(),
        grpc.addr(),
    );
    let scratch = Scratch::new("grpc-service").unwrap();
    let config = scratch.write("envoy.json", &json.to_string()).unwrap();
    let envoy = Envoy::start(&config, admin, 1).unwrap();
    let r = request(listen, "GET", HOST, "/grpc", &[])
        .unwrap_or_else(|e| panic!("GET /grpc: {e}\n{}", envoy.log_text()));
    assert_eq!(
        (r.status, r.header("x-probe")),
        (200, Some("grpc")),
        "the gRPC flow did not answer in Envoy:\n{}\n{}",
        r.text(),
        envoy.log_text()
    );
    let s = request(
        listen,
        "GET",
        HOST,
        "/service-tick",
        &[
            ("x-wasmgate-cluster", b"backend"),
            ("x-echo-delay-ms", SLOW_MS.to_string().as_bytes()),
        ],
    )
    .unwrap_or_else(|e| panic!("GET /service-tick: {e}\n{}", envoy.log_text()));
    // The server logs a call after answering it: wait for both lines.
    let waited = Instant::now();
    while grpc.calls().len() < 2 && waited.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut calls: Vec<_> = grpc
        .calls()
        .iter()
        .map(|c| {
            let md = c["metadata"].as_array().cloned().unwrap_or_default();
            let md = md.iter().map(|kv| {
                (
                    kv[0].as_str().unwrap_or("").to_string(),
                    kv[1].as_str().unwrap_or("").to_string(),
                )
            });
            (
                c["method"].as_str().unwrap_or("").to_string(),
                probe_metadata(md),
                hex(c["message"].as_str().unwrap_or("")),
            )
        })
        .collect();
    calls.sort();
    Seen {
        grpc: parse(&r.body, "Envoy"),
        calls,
        service: s.header("x-probe-service").unwrap_or("(none)").to_string(),
    }
}

fn seen_in_host_sim() -> Seen {
    let any = SocketAddr::from(([127, 0, 0, 1], 1));
    let scratch = Scratch::new("grpc-service-sim").unwrap();
    let config = scratch
        .write("envoy.json", &bootstrap(any, any, any, any).to_string())
        .unwrap();
    let sim = HostSim::new().unwrap();
    let target = Target::from_envoy(&sim, &config, &LoadOptions::default()).unwrap();
    assert_eq!(target.services.len(), 1, "the probe service was not loaded");
    sim.set_grpc_reply("grpc/probe.Echo/Ok", GrpcReply::ok(OK_RESPONSE));
    sim.set_grpc_reply(
        "grpc/probe.Echo/Fail",
        GrpcReply::error(FAIL_STATUS, FAIL_MESSAGE),
    );
    sim.set_upstream(
        "backend",
        UpstreamReply::ok("{}").with_delay(Duration::from_millis(SLOW_MS)),
    );
    let out = target.run(HttpRequest::get(HOST, "/grpc"));
    assert!(out.vm_failures.is_empty(), "{:?}", out.vm_failures);
    assert_eq!(out.status, 200, "the gRPC flow failed in host-sim: {out:?}");
    let mut calls: Vec<_> = out
        .callouts
        .iter()
        .filter(|c| c.kind == "grpc")
        .map(|c| {
            let md = c
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()));
            (c.method.clone(), probe_metadata(md), c.body.clone())
        })
        .collect();
    calls.sort();
    let s = target
        .run(HttpRequest::get(HOST, "/service-tick").header("x-wasmgate-cluster", b"backend"));
    assert!(s.vm_failures.is_empty(), "{:?}", s.vm_failures);
    Seen {
        grpc: parse(&out.response_body, "host-sim"),
        calls,
        service: String::from_utf8_lossy(s.response_header("x-probe-service").unwrap_or(b"(none)"))
            .into_owned(),
    }
}

#[test]
fn grpc_calls_and_service_ticks_match_envoy() {
    let envoy = seen_in_envoy();
    let sim = seen_in_host_sim();
    // The run must exercise what it claims: both calls answered, the service woken.
    assert!(
        envoy
            .grpc
            .keys()
            .filter(|k| k.starts_with("grpc callback "))
            .count()
            == 2,
        "Envoy's gRPC report: {:?}",
        envoy.grpc
    );
    assert_eq!(
        envoy.calls.len(),
        2,
        "the gRPC server received {:?}",
        envoy.calls
    );
    let mut diffs = Vec::new();
    let keys: BTreeSet<&String> = envoy.grpc.keys().chain(sim.grpc.keys()).collect();
    for key in keys {
        let (e, s) = (envoy.grpc.get(key), sim.grpc.get(key));
        match (KNOWN.iter().any(|(k, _)| k == key), e == s) {
            (true, true) => diffs.push(format!("{key}: listed in KNOWN but now agrees")),
            (false, false) => diffs.push(format!(
                "{key}:\n    envoy:    {}\n    host-sim: {}",
                e.map_or("(missing)", String::as_str),
                s.map_or("(missing)", String::as_str)
            )),
            _ => {}
        }
    }
    if envoy.calls != sim.calls {
        diffs.push(format!(
            "gRPC calls (method, metadata, message):\n    server received: {:?}\n    host-sim callouts: {:?}",
            envoy.calls, sim.calls
        ));
    }
    if envoy.service != sim.service {
        diffs.push(format!(
            "/service-tick (the service's ticks before the request and at the response):\n    envoy:    {}\n    host-sim: {}",
            envoy.service, sim.service
        ));
    }
    assert!(
        diffs.is_empty(),
        "{} entries differ between Envoy and host-sim:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
