//! A guest built with the Rust proxy-wasm SDK 0.2.5 (tests/sdk-guest): the real return-pointer,
//! status and panic conventions, end to end.

mod common;

use std::time::Duration;

use host_sim::{
    HttpRequest, Plugin, PluginSpec, PropValue, Routes, TcpConnection, UpstreamReply, WasmSource,
};

fn load(sim: &host_sim::HostSim, config: &str) -> Plugin {
    sim.load(PluginSpec {
        configuration: config.as_bytes().to_vec(),
        vm_id: "wasmgate".into(),
        ..PluginSpec::new(WasmSource::File(common::sdk_guest_wasm()), "wasmgate.sdk")
    })
    .expect("SDK guest loads")
}

fn routes() -> Routes {
    Routes::cluster_header("x-wasmgate-cluster")
}

fn messages(out: &host_sim::HttpOutcome) -> Vec<&str> {
    out.logs.iter().map(|(_, m)| m.as_str()).collect()
}

#[test]
fn routes_strips_client_header_and_sets_response_header() {
    let sim = common::sim();
    let p = load(&sim, "{}");
    let cases = [
        (
            HttpRequest::get("a", "/route").header("x-target", "east"),
            200,
            Some("east"),
        ),
        (
            HttpRequest::get("a", "/route").header("x-wasmgate-cluster", "evil"),
            503,
            None,
        ),
        (
            HttpRequest::get("a", "/other").header("x-wasmgate-cluster", "evil"),
            503,
            None,
        ),
    ];
    for (req, status, cluster) in cases {
        let out = p.http(&routes(), req);
        assert_eq!(
            (out.status, out.cluster.as_deref()),
            (status, cluster),
            "{:?}",
            out.logs
        );
        assert_eq!(out.response_header("x-filter"), Some(&b"sdk"[..]));
    }
}

#[test]
fn local_reply_from_send_http_response() {
    let sim = common::sim();
    let p = load(&sim, "{}");
    let out = p.http(&routes(), HttpRequest::get("a", "/deny"));
    assert_eq!(out.status, 403);
    assert_eq!(out.response_body, b"no");
    assert_eq!(out.response_header("x-denied"), Some(&b"1"[..]));
    assert_eq!(
        out.response_header("x-filter"),
        Some(&b"sdk"[..]),
        "local replies run the response path"
    );
    assert!(out.local_reply.is_some());
}

#[test]
fn rejected_configuration_carries_the_log_line() {
    let sim = common::sim();
    let err = sim
        .load(PluginSpec {
            configuration: b"reject: nope".to_vec(),
            ..PluginSpec::new(WasmSource::File(common::sdk_guest_wasm()), "x")
        })
        .err()
        .expect("rejected");
    assert!(
        err.to_string().contains("config rejected: reject: nope"),
        "{err}"
    );
}

#[test]
fn callouts_resume_the_request() {
    let cases = [
        (
            UpstreamReply::ok("west").with_delay(Duration::from_millis(30)),
            200,
            Some("west"),
            "west",
        ),
        (UpstreamReply::status(401), 403, None, "denied"),
        (UpstreamReply::reset(), 503, None, "callout failed"),
    ];
    for (reply, status, cluster, body) in cases {
        let sim = common::sim();
        sim.set_upstream("auth", reply);
        let p = load(&sim, "{}");
        let out = p.http(&routes(), HttpRequest::get("a", "/callout"));
        assert_eq!(out.status, status, "{:?}", out.logs);
        assert_eq!(out.cluster.as_deref(), cluster);
        assert_eq!(String::from_utf8_lossy(&out.response_body), body);
    }
}

#[test]
fn panic_traps_logs_and_fails_closed() {
    let sim = common::sim();
    let p = load(&sim, "{}");
    let out = p.http(&routes(), HttpRequest::get("a", "/panic"));
    assert_eq!(out.status, 503);
    assert!(
        out.logged("boom at /panic"),
        "the SDK's panic hook logs: {:?}",
        out.logs
    );
    assert_eq!(
        p.http(
            &routes(),
            HttpRequest::get("a", "/route").header("x-target", "e")
        )
        .status,
        503
    );
}

#[test]
fn reading_vanished_headers_panics_in_the_sdk() {
    let sim = common::sim();
    let p = load(&sim, "{}");
    let out = p.http(
        &routes(),
        HttpRequest::post("a", "/late", "x").header("x-target", "east"),
    );
    assert_eq!(out.status, 503, "{:?}", out.logs);
    assert!(out.logged("unexpected status: 2"), "{:?}", out.logs);
}

#[test]
fn buffered_body_is_replaced() {
    let sim = common::sim();
    let p = load(&sim, "{}");
    let req = HttpRequest::new("POST", "a", "/body")
        .chunk("hel")
        .chunk("lo");
    let out = p.http(&routes(), req.header("x-target", "east"));
    assert_eq!(out.cluster.as_deref(), Some("east"));
    assert!(messages(&out).contains(&"body=hello"), "{:?}", out.logs);
    assert_eq!(out.upstream_request_body, b"replaced");
}

#[test]
fn properties_through_the_sdk() {
    let sim = common::sim();
    let p = sim
        .load(
            PluginSpec::new(WasmSource::File(common::sdk_guest_wasm()), "wasmgate.sdk")
                .with_configuration("{}")
                .with_property(
                    &["xds", "node", "metadata", "REGION"],
                    PropValue::str("us-east"),
                ),
        )
        .unwrap();
    let out = p.http(
        &Routes::fixed("svc"),
        HttpRequest::get("a", "/props").source("10.0.0.7:3456"),
    );
    let m = messages(&out);
    for want in [
        "request.path=/props",
        "source.address=10.0.0.7:3456",
        "xds.node.metadata.REGION=us-east",
        "plugin_name=wasmgate.sdk",
        "source.port=3456",
    ] {
        assert!(m.contains(&want), "{want} not in {m:?}");
    }
}

#[test]
fn shared_data_and_ticks_across_workers() {
    let sim = common::sim();
    let p = sim
        .load(PluginSpec {
            workers: 3,
            configuration: b"tick".to_vec(),
            vm_id: "wasmgate".into(),
            ..PluginSpec::new(WasmSource::File(common::sdk_guest_wasm()), "s")
        })
        .unwrap();
    for n in 1..=5 {
        let out = p.http(&Routes::fixed("svc"), HttpRequest::get("a", "/shared"));
        assert!(
            messages(&out).contains(&format!("hits={n}").as_str()),
            "{:?}",
            out.logs
        );
    }
    p.advance(Duration::from_millis(2500));
    // Every worker's root context ticks; each counts its own ticks into the shared key.
    assert_eq!(sim.shared_data("wasmgate", b"ticks").unwrap().0, b"2");
}

#[test]
fn tcp_cluster_from_filter_state() {
    let sim = common::sim();
    let p = load(&sim, "tcp:db-west");
    let out = p.tcp(TcpConnection {
        downstream_data: vec![b"ping".to_vec()],
        ..Default::default()
    });
    assert_eq!(out.cluster.as_deref(), Some("db-west"), "{:?}", out.logs);
    assert_eq!(out.to_upstream, b"ping");
}
