//! Where requests go: the cluster Envoy's router picks after the filter ran.

mod common;

use common::{load, sim, ROUTER};
use host_sim::{HttpRequest, Routes, UpstreamReply};

#[test]
fn filter_written_cluster_header_picks_the_upstream() {
    let sim = sim();
    let plugin = load(&sim, ROUTER);
    let routes = Routes::cluster_header("x-wasmgate-cluster");
    let out = plugin.http(
        &routes,
        HttpRequest::get("foo.com", "/a").header("x-target", "east"),
    );
    assert_eq!(out.cluster.as_deref(), Some("east"));
    assert_eq!(out.status, 200);
    assert_eq!(
        out.response_body, b"east",
        "default upstream answers its own name"
    );
    assert_eq!(
        out.upstream_header("x-wasmgate-cluster"),
        Some(&b"east"[..])
    );
    assert_eq!(out.details, "via_upstream");
    assert!(out.local_reply.is_none());
    assert!(out.host_calls >= 2, "get + replace, got {}", out.host_calls);
}

#[test]
fn routing_outcomes_table() {
    struct Case {
        name: &'static str,
        request: HttpRequest,
        declared: Option<&'static [&'static str]>,
        status: u16,
        cluster: Option<&'static str>,
        details: &'static str,
    }
    let cases = [
        Case {
            name: "local reply from the filter",
            request: HttpRequest::get("foo.com", "/"),
            declared: None,
            status: 403,
            cluster: None,
            details: "",
        },
        Case {
            name: "empty cluster name is not found",
            request: HttpRequest::get("foo.com", "/").header("x-target", ""),
            declared: None,
            status: 503,
            cluster: None,
            details: "cluster_not_found",
        },
        Case {
            name: "undeclared cluster is not found",
            request: HttpRequest::get("foo.com", "/").header("x-target", "mars"),
            declared: Some(&["east", "west"]),
            status: 503,
            cluster: None,
            details: "cluster_not_found",
        },
        Case {
            name: "declared cluster is found",
            request: HttpRequest::get("foo.com", "/").header("x-target", "west"),
            declared: Some(&["east", "west"]),
            status: 200,
            cluster: Some("west"),
            details: "via_upstream",
        },
    ];
    for c in cases {
        let sim = sim();
        if let Some(d) = c.declared {
            sim.declare_clusters(d.iter().copied());
        }
        let plugin = load(&sim, ROUTER);
        let out = plugin.http(&Routes::cluster_header("x-wasmgate-cluster"), c.request);
        assert_eq!(out.status, c.status, "{}", c.name);
        assert_eq!(out.cluster.as_deref(), c.cluster, "{}", c.name);
        if !c.details.is_empty() {
            assert_eq!(out.details, c.details, "{}", c.name);
        }
    }
}

#[test]
fn local_reply_is_reported_with_body_and_goes_through_response_path() {
    let sim = sim();
    let plugin = load(&sim, ROUTER);
    let out = plugin.http(
        &Routes::cluster_header("x-wasmgate-cluster"),
        HttpRequest::get("foo.com", "/"),
    );
    let lr = out.local_reply.expect("local reply");
    assert_eq!(lr.status, 403);
    assert_eq!(lr.body, b"denied");
    assert_eq!(out.response_body, b"denied");
    assert!(
        out.upstream_request.is_none(),
        "nothing reached an upstream"
    );
}

#[test]
fn scripted_upstream_replies_and_resets() {
    let sim = sim();
    sim.set_upstream(
        "east",
        UpstreamReply::status(503)
            .with_body("busy")
            .with_header("x-up", "1"),
    );
    sim.set_upstream("west", UpstreamReply::reset());
    let plugin = load(&sim, ROUTER);
    let routes = Routes::cluster_header("x-wasmgate-cluster");
    let out = plugin.http(
        &routes,
        HttpRequest::get("a", "/").header("x-target", "east"),
    );
    assert_eq!(
        (out.status, out.response_body.as_slice()),
        (503, &b"busy"[..])
    );
    assert_eq!(out.response_header("x-up"), Some(&b"1"[..]));
    let out = plugin.http(
        &routes,
        HttpRequest::get("a", "/").header("x-target", "west"),
    );
    assert_eq!(out.status, 503);
    assert_eq!(out.cluster.as_deref(), Some("west"));
    assert!(out.details.starts_with("upstream_reset"), "{}", out.details);
}

#[test]
fn fixed_route_ignores_headers_and_direct_routes_match_hosts() {
    let sim = sim();
    let plugin = load(&sim, ROUTER);
    let out = plugin.http(
        &Routes::fixed("static"),
        HttpRequest::get("a", "/").header("x-target", "east"),
    );
    assert_eq!(out.cluster.as_deref(), Some("static"));
}

#[test]
fn non_utf8_header_values_survive_the_round_trip() {
    let sim = sim();
    let plugin = load(&sim, ROUTER);
    let value = [0xffu8, 0xfe, b'a', 0x80];
    let out = plugin.http(
        &Routes::cluster_header("x-wasmgate-cluster"),
        HttpRequest::get("a", "/").header("x-target", value),
    );
    assert_eq!(out.upstream_header("x-wasmgate-cluster"), Some(&value[..]));
    assert_eq!(
        out.cluster.as_deref(),
        Some(String::from_utf8_lossy(&value).as_ref())
    );
}
