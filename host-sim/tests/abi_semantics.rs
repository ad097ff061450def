//! Envoy's answers to host calls: bad pointers, vanished maps, buffers, properties.

mod common;

use common::{load, sim};
use host_sim::{HttpRequest, PluginSpec, PropValue, Routes};

fn status_logs(out: &host_sim::HttpOutcome) -> Vec<String> {
    out.logs.iter().map(|(_, m)| m.clone()).collect()
}

#[test]
fn bad_guest_pointers_return_invalid_memory_access() {
    let sim = sim();
    let plugin = load(
        &sim,
        r#"
        (data (i32.const 1024) "x-a")
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          ;; message pointer past the end of memory
          (call $log_num (call $proxy_log (i32.const 2) (i32.const -16) (i32.const 100)))
          ;; return pointer slot past the end of memory
          (call $log_num (call $get_header (i32.const 0) (i32.const 1024) (i32.const 3) (i32.const -4) (i32.const 260)))
          ;; key length overflowing the address space
          (call $log_num (call $replace_header (i32.const 0) (i32.const 1024) (i32.const -1) (i32.const 0) (i32.const 0)))
          (i32.const 0))"#,
    );
    let out = plugin.http(
        &Routes::fixed("svc"),
        HttpRequest::get("a", "/").header("x-a", "1"),
    );
    assert_eq!(status_logs(&out), ["06", "06", "06"]);
    assert_eq!(out.status, 200, "the host survives");
}

#[test]
fn request_headers_vanish_once_the_filter_continues() {
    let sim = sim();
    let plugin = load(
        &sim,
        r#"
        (data (i32.const 1024) "x-a")
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (call $log_num (call $get_header (i32.const 0) (i32.const 1024) (i32.const 3) (i32.const 256) (i32.const 260)))
          (i32.const 0))
        (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
          (call $log_num (call $get_header (i32.const 0) (i32.const 1024) (i32.const 3) (i32.const 256) (i32.const 260)))
          (call $log_num (call $replace_header (i32.const 0) (i32.const 1024) (i32.const 3) (i32.const 1024) (i32.const 1)))
          ;; pairs of a vanished map: Envoy answers an empty map
          (call $log_num (call $get_pairs (i32.const 0) (i32.const 256) (i32.const 260)))
          (call $log_num (call $ret_len))
          (i32.const 0))
        (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
          (call $log_num (call $get_header (i32.const 0) (i32.const 1024) (i32.const 3) (i32.const 256) (i32.const 260)))
          (i32.const 0))"#,
    );
    let out = plugin.http(
        &Routes::fixed("svc"),
        HttpRequest::post("a", "/", "body").header("x-a", "1"),
    );
    // headers: OK; body: BAD_ARGUMENT twice, pairs OK and empty; response: BAD_ARGUMENT
    assert_eq!(status_logs(&out), ["00", "02", "02", "00", "00", "02"]);
}

#[test]
fn missing_header_is_not_found() {
    let sim = sim();
    let plugin = load(
        &sim,
        r#"
        (data (i32.const 1024) "x-missing")
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (call $log_num (call $get_header (i32.const 0) (i32.const 1024) (i32.const 9) (i32.const 256) (i32.const 260)))
          ;; map type out of range
          (call $log_num (call $get_header (i32.const 9) (i32.const 1024) (i32.const 9) (i32.const 256) (i32.const 260)))
          (i32.const 0))"#,
    );
    let out = plugin.http(&Routes::fixed("svc"), HttpRequest::get("a", "/"));
    assert_eq!(status_logs(&out), ["01", "02"]);
}

#[test]
fn paused_body_is_buffered_and_set_buffer_only_replaces_prefixes_or_appends() {
    let sim = sim();
    let plugin = load(
        &sim,
        r#"
        (data (i32.const 1024) "HELLO")
        (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
          (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
          ;; the whole buffered body is visible at the end
          (drop (call $get_buffer (i32.const 0) (i32.const 0) (local.get $size) (i32.const 256) (i32.const 260)))
          (call $log (call $ret_ptr) (call $ret_len))
          ;; replace the first 5 bytes
          (call $log_num (call $set_buffer (i32.const 0) (i32.const 0) (i32.const 5) (i32.const 1024) (i32.const 5)))
          ;; a write in the middle is refused
          (call $log_num (call $set_buffer (i32.const 0) (i32.const 2) (i32.const 1) (i32.const 1024) (i32.const 1)))
          ;; append
          (call $log_num (call $set_buffer (i32.const 0) (local.get $size) (i32.const 0) (i32.const 1024) (i32.const 1)))
          (i32.const 0))"#,
    );
    let req = HttpRequest::new("POST", "a", "/")
        .chunk("hello")
        .chunk(" wor")
        .chunk("ld");
    let out = plugin.http(&Routes::fixed("svc"), req);
    assert_eq!(status_logs(&out), ["hello world", "00", "02", "00"]);
    assert_eq!(out.upstream_request_body, b"HELLO worldH");
}

#[test]
fn properties_answer_with_envoy_encodings() {
    let sim = sim();
    let plugin = sim
        .load(
            PluginSpec::new(
                host_sim::WasmSource::Wat(common::guest(PROPERTY_LOGGER)),
                "wasmgate.router",
            )
            .with_property(&["node", "metadata", "REGION"], PropValue::str("eu-west")),
        )
        .unwrap();
    let req = HttpRequest::get("foo.com", "/p?q=1").source("10.1.2.3:4567");
    let out = plugin.http(&Routes::fixed("svc"), req);
    let logs = status_logs(&out);
    assert_eq!(logs[0], "/p?q=1");
    assert_eq!(logs[1], "foo.com");
    assert_eq!(logs[2], "10.1.2.3:4567");
    assert_eq!(logs[3], "wasmgate.router");
    assert_eq!(logs[4], "eu-west");
    assert_eq!(logs[5], "01", "a missing property is NOT_FOUND");
    assert_eq!(logs[6], "08", "source.port is an 8-byte integer");
}

const PROPERTY_LOGGER: &str = r#"
  (data (i32.const 1024) "request\00path")
  (data (i32.const 1040) "request\00host")
  (data (i32.const 1056) "source\00address")
  (data (i32.const 1072) "plugin_name")
  (data (i32.const 1088) "node\00metadata\00REGION")
  (data (i32.const 1120) "no\00such")
  (data (i32.const 1136) "source\00port")
  (func $prop (param $p i32) (param $n i32)
    (if (i32.eqz (call $get_property (local.get $p) (local.get $n) (i32.const 256) (i32.const 260)))
      (then (call $log (call $ret_ptr) (call $ret_len)))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $prop (i32.const 1024) (i32.const 12))
    (call $prop (i32.const 1040) (i32.const 12))
    (call $prop (i32.const 1056) (i32.const 14))
    (call $prop (i32.const 1072) (i32.const 11))
    (call $prop (i32.const 1088) (i32.const 20))
    (call $log_num (call $get_property (i32.const 1120) (i32.const 7) (i32.const 256) (i32.const 260)))
    (drop (call $get_property (i32.const 1136) (i32.const 11) (i32.const 256) (i32.const 260)))
    (call $log_num (call $ret_len))
    (i32.const 0))
"#;

#[test]
fn route_cache_is_stale_until_headers_change() {
    // The filter reads xds.cluster_name (the route resolved from the client's headers),
    // then strips the client's routing header; Envoy re-resolves and finds no cluster.
    let sim = sim();
    let plugin = load(
        &sim,
        r#"
        (data (i32.const 1024) "xds\00cluster_name")
        (data (i32.const 1048) "x-wasmgate-cluster")
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (if (i32.eqz (call $get_property (i32.const 1024) (i32.const 16) (i32.const 256) (i32.const 260)))
            (then (call $log (call $ret_ptr) (call $ret_len))))
          (drop (call $remove_header (i32.const 0) (i32.const 1048) (i32.const 18)))
          (i32.const 0))"#,
    );
    let routes = Routes::cluster_header("x-wasmgate-cluster");
    let out = plugin.http(
        &routes,
        HttpRequest::get("a", "/").header("x-wasmgate-cluster", "evil"),
    );
    assert_eq!(status_logs(&out), ["evil"]);
    assert_eq!(out.status, 503);
    assert_eq!(out.details, "cluster_not_found");
    assert!(
        out.cluster.is_none(),
        "a client cannot pick the cluster once the filter strips it"
    );
}

#[test]
fn untouched_headers_keep_the_cached_route() {
    let sim = sim();
    let plugin = load(
        &sim,
        r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))"#,
    );
    let out = plugin.http(
        &Routes::cluster_header("x-c"),
        HttpRequest::get("a", "/").header("x-c", "client-choice"),
    );
    assert_eq!(out.cluster.as_deref(), Some("client-choice"));
}

#[test]
fn foreign_clear_route_cache_and_unknown_functions() {
    let sim = sim();
    let plugin = load(
        &sim,
        r#"
        (data (i32.const 1024) "clear_route_cache")
        (data (i32.const 1048) "no_such_function")
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (call $log_num (call $foreign (i32.const 1024) (i32.const 17) (i32.const 0) (i32.const 0) (i32.const 256) (i32.const 260)))
          (call $log_num (call $foreign (i32.const 1048) (i32.const 16) (i32.const 0) (i32.const 0) (i32.const 256) (i32.const 260)))
          (i32.const 0))"#,
    );
    let out = plugin.http(&Routes::fixed("svc"), HttpRequest::get("a", "/"));
    assert_eq!(status_logs(&out), ["00", "01"]);
}

#[test]
fn response_headers_can_be_modified() {
    let sim = sim();
    let plugin = load(
        &sim,
        r#"
        (data (i32.const 1024) "x-served-by")
        (data (i32.const 1040) "wasm")
        (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
          (drop (call $add_header (i32.const 2) (i32.const 1024) (i32.const 11) (i32.const 1040) (i32.const 4)))
          (i32.const 0))"#,
    );
    let out = plugin.http(&Routes::fixed("svc"), HttpRequest::get("a", "/"));
    assert_eq!(out.response_header("x-served-by"), Some(&b"wasm"[..]));
}

#[test]
fn trailers_and_a_paused_chunked_response_body() {
    let sim = sim();
    sim.set_upstream(
        "svc",
        host_sim::UpstreamReply::status(200)
            .with_chunks(["ab", "cd", "ef"])
            .with_trailer("grpc-status", "0"),
    );
    let plugin = load(
        &sim,
        r#"
        (data (i32.const 1024) "x-t")
        (data (i32.const 1040) "grpc-status")
        (data (i32.const 1060) "XY")
        (func (export "proxy_on_request_trailers") (param i32 i32) (result i32)
          (if (i32.eqz (call $get_header (i32.const 1) (i32.const 1024) (i32.const 3) (i32.const 256) (i32.const 260)))
            (then (call $log (call $ret_ptr) (call $ret_len))))
          (i32.const 0))
        (func (export "proxy_on_response_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
          (call $log_num (local.get $size))
          (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
          (drop (call $set_buffer (i32.const 1) (i32.const 0) (i32.const 2) (i32.const 1060) (i32.const 2)))
          (i32.const 0))
        (func (export "proxy_on_response_trailers") (param i32 i32) (result i32)
          (if (i32.eqz (call $get_header (i32.const 3) (i32.const 1040) (i32.const 11) (i32.const 256) (i32.const 260)))
            (then (call $log (call $ret_ptr) (call $ret_len))))
          (i32.const 0))"#,
    );
    let req = HttpRequest::post("a", "/", "body").trailer("x-t", "trailer-value");
    let out = plugin.http(&Routes::fixed("svc"), req);
    // The upstream's last chunk carries no end_stream (trailers follow), so the buffered
    // body is released by the trailers.
    assert_eq!(status_logs(&out), ["trailer-value", "02", "04", "06", "0"]);
    assert_eq!(out.response_body, b"abcdef");
    assert_eq!(
        out.response_trailers,
        vec![("grpc-status".to_string(), b"0".to_vec())]
    );
}
