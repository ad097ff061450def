//! Outcomes that follow Envoy where host-sim used to differ (issue 11): HEAD responses,
//! local-reply header order, callouts in the outcome, scripted gRPC answers, bootstrap
//! shapes (TypedStruct, filters host-sim cannot run, singleton Wasm services). The
//! side-by-side test in `tests/tests/sdk_assemblyscript.rs` checks the same against Envoy.

mod common;

use std::path::Path;
use std::time::Duration;

use host_sim::bootstrap_reader::{parse_bootstrap, parse_bootstrap_with, BootstrapOptions};
use host_sim::scenario::{LoadOptions, Target};
use host_sim::{Error, FilterChain, GrpcReply, HttpRequest, Routes, UpstreamReply};

fn routes() -> Routes {
    Routes::cluster_header("x-wasmgate-cluster")
}

#[test]
fn head_responses_have_headers_and_no_body() {
    let sim = common::sim();
    let p = common::load(&sim, common::ROUTER);
    // (request, status, body length announced)
    let cases = [
        (HttpRequest::new("HEAD", "foo.com", "/"), 403, "6"),
        (
            HttpRequest::new("HEAD", "foo.com", "/").header("x-target", "east"),
            200,
            "4",
        ),
    ];
    for (req, status, length) in cases {
        let out = p.http(&routes(), req);
        assert_eq!(out.status, status, "{out:?}");
        assert!(out.response_body.is_empty(), "{out:?}");
        assert_eq!(
            out.response_header("content-length"),
            Some(length.as_bytes())
        );
    }
    let direct = Routes {
        virtual_hosts: vec![host_sim::VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes: vec![host_sim::Route {
                name: String::new(),
                path: host_sim::PathMatch::Prefix("/".into()),
                headers: Vec::new(),
                action: host_sim::RouteAction::DirectResponse {
                    status: 200,
                    body: b"hello".to_vec(),
                },
                timeout: Duration::from_secs(15),
                remove_request_headers: Vec::new(),
            }],
        }],
        ..Routes::empty()
    };
    let out = FilterChain::new(&sim, Vec::new())
        .run_one(&direct, HttpRequest::new("HEAD", "foo.com", "/"));
    assert_eq!((out.status, out.response_body.len()), (200, 0));
    assert_eq!(out.response_header("content-length"), Some(b"5".as_slice()));
}

const LOCAL_WITH_HEADERS: &str = r#"
  (data (i32.const 1024) "{pairs}")
  (data (i32.const 2048) "teapot")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $send_local (i32.const 418) (i32.const 0) (i32.const 0) (i32.const 2048) (i32.const 6)
      (i32.const 1024) (i32.const {len}) (i32.const -1)))
    (i32.const 1))
"#;

#[test]
fn local_reply_headers_come_before_length_and_type() {
    let sim = common::sim();
    let (pairs, len) = common::wat_pairs(&[("x-first", "1"), ("x-second", "2")]);
    let body = LOCAL_WITH_HEADERS
        .replace("{pairs}", &pairs)
        .replace("{len}", &len.to_string());
    let out = common::load(&sim, &body).http(&routes(), HttpRequest::get("foo.com", "/"));
    let names: Vec<&str> = out
        .response_headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        names,
        [
            ":status",
            "x-first",
            "x-second",
            "content-length",
            "content-type"
        ]
    );
}

#[test]
fn http_calls_are_in_the_outcome() {
    let sim = common::sim();
    let (pairs, len) = common::check_callout_headers();
    let body = format!(
        r#"
  (data (i32.const 1024) "auth")
  (data (i32.const 1100) "{pairs}")
  (data (i32.const 1400) "ask")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $http_call (i32.const 1024) (i32.const 4) (i32.const 1100) (i32.const {len})
      (i32.const 1400) (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 700) (i32.const 300)))
    (i32.const 0))"#
    );
    let out = common::load(&sim, &body).http(&routes(), HttpRequest::get("foo.com", "/"));
    assert_eq!(out.callouts.len(), 1, "{out:?}");
    let c = &out.callouts[0];
    assert_eq!(
        (
            c.kind.as_str(),
            c.cluster.as_str(),
            c.body.as_slice(),
            c.timeout_ms
        ),
        ("http", "auth", b"ask".as_slice(), 700)
    );
    assert!(c.headers.contains(&(":path".into(), b"/check".to_vec())));
    assert!(c
        .headers
        .contains(&("content-length".into(), b"3".to_vec())));
}

/// A guest that makes two unary gRPC calls at request headers (`Check`, then `Allow`),
/// pauses, and logs per callback what `proxy_get_status` reads (the code as two digits,
/// then the message), then the message received or `closed`.
const GRPC_GUEST: &str = r#"
  (data (i32.const 1024) "authz")
  (data (i32.const 1040) "pkg.Auth")
  (data (i32.const 1060) "Check")
  (data (i32.const 1070) "Allow")
  (data (i32.const 1080) "req")
  (data (i32.const 1100) "closed")
  (func $call (param $method i32)
    (drop (call $grpc_call (i32.const 1024) (i32.const 5) (i32.const 1040) (i32.const 8)
      (local.get $method) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 1080) (i32.const 3)
      (i32.const 1000) (i32.const 512))))
  (func $log_status
    (drop (call $get_status (i32.const 200) (i32.const 256) (i32.const 260)))
    (call $log_num (i32.load (i32.const 200)))
    (call $log (call $ret_ptr) (call $ret_len)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $call (i32.const 1060))
    (call $call (i32.const 1070))
    ;; Wait: the stream stays open until the idle timeout, so the answers arrive.
    (i32.const 1))
  (func (export "proxy_on_grpc_receive") (param i32 i32 i32)
    (call $log_status)
    (drop (call $get_buffer (i32.const 5) (i32.const 0) (local.get 2) (i32.const 256) (i32.const 260)))
    (call $log (call $ret_ptr) (call $ret_len)))
  (func (export "proxy_on_grpc_close") (param i32 i32 i32)
    (call $log_status)
    (call $log (i32.const 1100) (i32.const 6)))
"#;

#[test]
fn grpc_calls_get_the_scripted_answer() {
    // (scripted answer, what the guest logs)
    let cases = [
        (Some(GrpcReply::ok("allowed")), "allowed"),
        (Some(GrpcReply::error(7, "denied")), "closed"),
        (None, "closed"),
    ];
    for (reply, logged) in cases {
        let sim = common::sim();
        if let Some(r) = reply {
            sim.set_grpc_reply("authz/pkg.Auth/Check", r);
        }
        let p = common::load(&sim, GRPC_GUEST);
        let out = p.http(&routes(), HttpRequest::get("foo.com", "/"));
        assert!(out.logged(logged), "{logged}: {:?}", out.logs);
        let c = &out.callouts[0];
        assert_eq!(
            (
                c.kind.as_str(),
                c.cluster.as_str(),
                c.service.as_str(),
                c.method.as_str()
            ),
            ("grpc", "authz", "pkg.Auth", "Check")
        );
        assert_eq!(c.body, b"req");
    }
}

/// Envoy keeps a closed call's status code on the root context (only a close or a failed
/// `http_call` sets it) and clears the message after the close callback: a success
/// answered later reads the earlier failure's code with no message.
#[test]
fn a_grpc_failure_status_stays_after_its_close() {
    // (Check's answer, Allow's answer, what the guest logs, in order)
    let ms = Duration::from_millis;
    let cases = [
        (
            GrpcReply::error(7, "denied"),
            GrpcReply::ok("yes").with_delay(ms(10)),
            ["07", "denied{via_upstream}", "closed", "07", "", "yes"],
        ),
        (
            GrpcReply::ok("yes"),
            GrpcReply::error(7, "denied").with_delay(ms(10)),
            ["00", "", "yes", "07", "denied{via_upstream}", "closed"],
        ),
    ];
    for (check, allow, want) in cases {
        let sim = common::sim();
        sim.set_grpc_reply("authz/pkg.Auth/Check", check);
        sim.set_grpc_reply("authz/pkg.Auth/Allow", allow);
        let p = common::load(&sim, GRPC_GUEST);
        let out = p.http(&routes(), HttpRequest::get("foo.com", "/"));
        let logged: Vec<&str> = out.logs.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(logged, want);
    }
}

fn hcm_bootstrap(filters: &str, extensions: &str) -> String {
    format!(
        r#"
{extensions}
static_resources:
  listeners:
  - name: http
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          route_config:
            virtual_hosts:
            - {{name: all, domains: ["*"], routes: [{{match: {{prefix: "/"}}, route: {{cluster: east}}}}]}}
          http_filters:
{filters}
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: east
"#
    )
}

const WASM_CONFIG: &str = r#"{config: {name: f, root_id: f, vm_config: {vm_id: v, code: {local: {filename: f.wasm}}}, configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: "cfg"}}}"#;

#[test]
fn a_typed_struct_wrapped_wasm_filter_is_read() {
    for wrapper in ["udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct"] {
        let filters = format!(
            r#"          - name: f
            typed_config:
              "@type": type.googleapis.com/{wrapper}
              type_url: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              value: {WASM_CONFIG}"#
        );
        let s = parse_bootstrap(&hcm_bootstrap(&filters, ""), Path::new("/")).unwrap();
        assert_eq!(s.http_filters.len(), 1, "{wrapper}");
        assert_eq!(s.http_filters[0].configuration, b"cfg", "{wrapper}");
    }
}

#[test]
fn filters_host_sim_cannot_run_are_refused_unless_skipped() {
    let filters = format!(
        r#"          - name: envoy.filters.http.lua
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua}}
          - name: f
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm, config: {}}}"#,
        &WASM_CONFIG[9..WASM_CONFIG.len() - 1]
    );
    let text = hcm_bootstrap(&filters, "");
    match parse_bootstrap(&text, Path::new("/")) {
        Err(Error::UnsupportedFilter { name, position, .. }) => {
            assert_eq!(name, "envoy.filters.http.lua");
            assert_eq!(
                position,
                "listeners[0].filter_chains[0].filters[0].http_connection_manager.http_filters[0]"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let by_type = BootstrapOptions {
        skip_filters: vec!["envoy.extensions.filters.http.lua.v3.Lua".into()],
    };
    let s = parse_bootstrap_with(&text, Path::new("/"), &by_type).unwrap();
    assert_eq!(s.skipped_filters, ["envoy.filters.http.lua"]);
    assert_eq!(s.http_filters.len(), 1);
}

#[test]
fn a_singleton_wasm_service_runs_on_its_ticks() {
    let dir = std::env::temp_dir().join(format!("host-sim-service-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ticker.wat"), common::guest(common::TICKER)).unwrap();
    let service = format!(
        r#"bootstrap_extensions:
- name: envoy.bootstrap.wasm
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.wasm.v3.WasmService
    singleton: true
    config: {{name: svc, root_id: svc, vm_config: {{vm_id: svc, code: {{local: {{filename: {}}}}}}}}}"#,
        dir.join("ticker.wat").display()
    );
    // With no listener at all, and next to a listener.
    for text in [service.clone(), hcm_bootstrap("", &service)] {
        let path = dir.join("envoy.yaml");
        std::fs::write(&path, &text).unwrap();
        let sim = common::sim();
        let t = Target::from_envoy(&sim, &path, &LoadOptions::default()).unwrap();
        assert_eq!(t.services.len(), 1);
        let start = t.take_root_logs();
        assert_eq!(start.len(), 1, "{start:?}");
        t.advance(Duration::from_millis(350));
        let ticks = t.take_root_logs();
        assert_eq!(
            ticks.iter().filter(|(_, m)| m == "tick").count(),
            3,
            "{ticks:?}"
        );
        if t.routes.virtual_hosts.is_empty() {
            continue;
        }
        // It lives on while a stream waits for its upstream (ticks at 400 and 500 ms), as
        // on Envoy's main thread (checked in Envoy by tests/tests/hostsim_grpc_service.rs).
        sim.set_upstream(
            "east",
            UpstreamReply::ok("late").with_delay(Duration::from_millis(220)),
        );
        let out = t.run(HttpRequest::get("a.test", "/"));
        assert_eq!(
            (out.status, out.response_body.as_slice()),
            (200, &b"late"[..])
        );
        let during = t.take_root_logs();
        assert_eq!(
            during.iter().filter(|(_, m)| m == "tick").count(),
            2,
            "{during:?}"
        );
        assert!(
            out.logs.is_empty(),
            "a service's ticks are not the stream's: {:?}",
            out.logs
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
