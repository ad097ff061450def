//! Virtual time, callouts, ticks, metrics, shared data, workers, TCP and filter chains.

mod common;

use std::time::Duration;

use common::{check_callout_headers, load, sim, wat_bytes, ROUTER};
use host_sim::{FilterChain, HttpRequest, PluginSpec, Routes, TcpConnection, UpstreamReply};

fn callout_guest() -> String {
    let (headers, len) = check_callout_headers();
    format!(
        r#"
  (data (i32.const 1024) "auth")
  (data (i32.const 1040) "{headers}")
  (data (i32.const 1200) ":status")
  (data (i32.const 1220) "x-wasmgate-cluster")
  (data (i32.const 1240) "callout failed")
  (data (i32.const 1260) "denied")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    ;; The callback comes to the root context: remember the stream's (as SDKs do).
    (i32.store (i32.const 800) (local.get 0))
    (call $log_num (call $http_call (i32.const 1024) (i32.const 4) (i32.const 1040) (i32.const {len})
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 300)))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param $ctx i32) (param $token i32) (param $nh i32) (param $body i32) (param $nt i32)
    (drop (call $set_effective (i32.load (i32.const 800))))
    (if (i32.eqz (local.get $nh)) (then
      (drop (call $send_local (i32.const 503) (i32.const 0) (i32.const 0) (i32.const 1240) (i32.const 14) (i32.const 0) (i32.const 0) (i32.const -1)))
      (return)))
    (drop (call $get_header (i32.const 6) (i32.const 1200) (i32.const 7) (i32.const 256) (i32.const 260)))
    (if (i32.eq (i32.load8_u (call $ret_ptr)) (i32.const 50)) (then
      (drop (call $get_buffer (i32.const 4) (i32.const 0) (local.get $body) (i32.const 256) (i32.const 260)))
      (drop (call $replace_header (i32.const 0) (i32.const 1220) (i32.const 18) (call $ret_ptr) (call $ret_len)))
      (drop (call $continue (i32.const 0)))
      (return)))
    (drop (call $send_local (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 1260) (i32.const 6) (i32.const 0) (i32.const 0) (i32.const -1))))
"#
    )
}

#[test]
fn http_call_pauses_the_stream_until_its_callback_resumes_it() {
    struct Case {
        name: &'static str,
        reply: Option<UpstreamReply>,
        status: u16,
        cluster: Option<&'static str>,
        body: &'static str,
    }
    let cases = [
        Case {
            name: "allowed",
            reply: Some(UpstreamReply::ok("east").with_delay(Duration::from_millis(200))),
            status: 200,
            cluster: Some("east"),
            body: "east",
        },
        Case {
            name: "denied",
            reply: Some(UpstreamReply::status(401)),
            status: 403,
            cluster: None,
            body: "denied",
        },
        Case {
            name: "reset gives a callback without headers",
            reply: Some(UpstreamReply::reset()),
            status: 503,
            cluster: None,
            body: "callout failed",
        },
        Case {
            name: "timeout answers 504",
            reply: Some(UpstreamReply::ok("x").with_delay(Duration::from_secs(9))),
            status: 403,
            cluster: None,
            body: "denied",
        },
    ];
    for c in cases {
        let sim = sim();
        if let Some(r) = c.reply {
            sim.set_upstream("auth", r);
        }
        let plugin = load(&sim, &callout_guest());
        let before = sim.now();
        let out = plugin.http(
            &Routes::cluster_header("x-wasmgate-cluster"),
            HttpRequest::get("a", "/"),
        );
        assert_eq!(
            out.logs.first().map(|(_, m)| m.as_str()),
            Some("00"),
            "{}: dispatch ok",
            c.name
        );
        assert_eq!(out.status, c.status, "{}", c.name);
        assert_eq!(out.cluster.as_deref(), c.cluster, "{}", c.name);
        assert_eq!(
            String::from_utf8_lossy(&out.response_body),
            c.body,
            "{}",
            c.name
        );
        if c.name == "allowed" {
            assert_eq!(
                sim.now().duration_since(before).unwrap(),
                Duration::from_millis(200)
            );
        }
    }
}

#[test]
fn http_call_to_unknown_cluster_is_bad_argument() {
    let sim = sim();
    sim.declare_clusters(["other"]);
    let plugin = load(&sim, &callout_guest());
    let out = plugin.http(&Routes::fixed("other"), HttpRequest::get("a", "/"));
    assert_eq!(out.logs[0].1, "02");
}

const TICKER: &str = r#"
  (data (i32.const 1024) "ticks")
  (global $metric (mut i32) (i32.const 0))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $define_metric (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 300)))
    (global.set $metric (i32.load (i32.const 300)))
    (drop (call $set_tick (i32.const 1000)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (drop (call $inc_metric (global.get $metric) (i64.const 1))))
"#;

#[test]
fn ticks_follow_the_virtual_clock_and_metrics_are_readable() {
    let sim = sim();
    let plugin = load(&sim, TICKER);
    assert_eq!(sim.metric("ticks").unwrap().value, 0);
    plugin.advance(Duration::from_millis(3500));
    assert_eq!(sim.metric("ticks").unwrap().value, 3);
    plugin.advance(Duration::from_millis(500));
    assert_eq!(sim.metric("ticks").unwrap().value, 4);
}

const COUNTER: &str = r#"
  (data (i32.const 1024) "hits")
  (global $local (mut i32) (i32.const 0))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (local $cas i32) (local $v i32)
    (global.set $local (i32.add (global.get $local) (i32.const 1)))
    (if (i32.eqz (call $get_shared (i32.const 1024) (i32.const 4) (i32.const 256) (i32.const 260) (i32.const 264)))
      (then
        (local.set $v (i32.load8_u (call $ret_ptr)))
        (local.set $cas (i32.load (i32.const 264)))))
    (i32.store8 (i32.const 1100) (i32.add (local.get $v) (i32.const 1)))
    (call $log_num (call $set_shared (i32.const 1024) (i32.const 4) (i32.const 1100) (i32.const 1) (local.get $cas)))
    (call $log_num (global.get $local))
    (i32.const 0))
"#;

#[test]
fn workers_have_separate_memory_but_common_shared_data() {
    let sim = sim();
    let plugin = sim
        .load(PluginSpec {
            workers: 2,
            ..common::spec(COUNTER)
        })
        .unwrap();
    let mut local_counts = Vec::new();
    for _ in 0..4 {
        let out = plugin.http(&Routes::fixed("svc"), HttpRequest::get("a", "/"));
        assert_eq!(out.logs[0].1, "00", "cas write succeeds");
        local_counts.push(out.logs[1].1.clone());
    }
    assert_eq!(local_counts, ["01", "01", "02", "02"]);
    assert_eq!(sim.shared_data("test", b"hits").unwrap().0, [4]);
    assert!(sim.shared_data("other-vm-id", b"hits").is_none());
}

#[test]
fn tcp_filter_picks_the_cluster_through_filter_state() {
    let sim = sim();
    let args = host_sim::encode_set_envoy_filter_state("envoy.tcp_proxy.cluster", b"db-east", 0);
    let bad = host_sim::encode_set_envoy_filter_state("no.such.key", b"x", 0);
    let guest = format!(
        r#"
  (data (i32.const 1024) "set_envoy_filter_state")
  (data (i32.const 1060) "{}")
  (data (i32.const 1160) "{}")
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (call $log_num (call $foreign (i32.const 1024) (i32.const 22) (i32.const 1160) (i32.const {}) (i32.const 0) (i32.const 0)))
    (call $log_num (call $foreign (i32.const 1024) (i32.const 22) (i32.const 1060) (i32.const {}) (i32.const 256) (i32.const 260)))
    (i32.const 0))
  (func (export "proxy_on_downstream_data") (param i32 i32 i32) (result i32) (i32.const 0))
"#,
        wat_bytes(&args),
        wat_bytes(&bad),
        bad.len(),
        args.len()
    );
    let plugin = load(&sim, &guest);
    let out = plugin.tcp(TcpConnection {
        downstream_data: vec![b"hello".to_vec()],
        default_cluster: Some("fallback".into()),
        ..Default::default()
    });
    assert_eq!(
        out.logs.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(),
        ["01", "00"]
    );
    assert_eq!(out.cluster.as_deref(), Some("db-east"));
    assert_eq!(out.to_upstream, b"hello");
}

#[test]
fn filter_chain_runs_in_order_and_responses_in_reverse() {
    let sim = sim();
    let tagger = load(
        &sim,
        r#"
  (data (i32.const 1024) "x-target")
  (data (i32.const 1040) "east")
  (data (i32.const 1060) "x-order")
  (data (i32.const 1070) "a")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $add_header (i32.const 0) (i32.const 1024) (i32.const 8) (i32.const 1040) (i32.const 4)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add_header (i32.const 2) (i32.const 1060) (i32.const 7) (i32.const 1070) (i32.const 1)))
    (i32.const 0))
"#,
    );
    let router = load(
        &sim,
        &format!(
            r#"{ROUTER}
  (data (i32.const 1100) "x-order")
  (data (i32.const 1110) "b")
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add_header (i32.const 2) (i32.const 1100) (i32.const 7) (i32.const 1110) (i32.const 1)))
    (i32.const 0))"#
        ),
    );
    let chain = FilterChain::new(&sim, vec![&tagger, &router]);
    let out = chain.run_one(
        &Routes::cluster_header("x-wasmgate-cluster"),
        HttpRequest::get("a", "/"),
    );
    assert_eq!(out.cluster.as_deref(), Some("east"));
    let order: Vec<&[u8]> = out
        .response_headers
        .iter()
        .filter(|(k, _)| k == "x-order")
        .map(|(_, v)| v.as_slice())
        .collect();
    assert_eq!(order, [&b"b"[..], &b"a"[..]]);
}

#[test]
fn baseline_without_filters_routes_on_client_headers() {
    let sim = sim();
    let routes = Routes::cluster_header("x-wasmgate-cluster");
    let out = FilterChain::new(&sim, Vec::new()).run_one(
        &routes,
        HttpRequest::get("a", "/").header("x-wasmgate-cluster", "east"),
    );
    assert_eq!((out.status, out.cluster.as_deref()), (200, Some("east")));
    assert_eq!(
        FilterChain::new(&sim, Vec::new())
            .run_one(&routes, HttpRequest::get("a", "/"))
            .status,
        503
    );
}

#[test]
fn failed_vm_fails_the_stream_at_its_place_in_the_chain() {
    let sim = sim();
    let first = load(
        &sim,
        r#"
  (data (i32.const 1024) "first ran")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $log (i32.const 1024) (i32.const 9)) (i32.const 0))"#,
    );
    let second = load(
        &sim,
        r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)"#,
    );
    let chain = FilterChain::new(&sim, vec![&first, &second]);
    let routes = Routes::fixed("svc");
    assert_eq!(
        chain.run_one(&routes, HttpRequest::get("a", "/")).status,
        503
    );
    let out = chain.run_one(&routes, HttpRequest::get("a", "/"));
    assert_eq!(out.status, 503);
    assert!(
        out.logged("first ran"),
        "filters before the failed one still run: {:?}",
        out.logs
    );
}
