//! WASI calls, queues, gRPC, metrics kinds, effective contexts, limits, thread safety.

mod common;

use std::time::Duration;

use common::{guest, load, sim};
use host_sim::{
    HostSim, HostSimConfig, HttpRequest, MetricKind, Plugin, PluginSpec, Routes, WasmSource,
};

fn messages(out: &host_sim::HttpOutcome) -> Vec<String> {
    out.logs.iter().map(|(_, m)| m.clone()).collect()
}

#[test]
fn host_and_plugins_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<HostSim>();
    check::<Plugin>();
}

#[test]
fn parallel_streams_on_one_plugin_from_many_threads() {
    let sim = sim();
    let plugin = sim
        .load(PluginSpec {
            workers: 2,
            ..common::spec(common::ROUTER)
        })
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let plugin = &plugin;
            s.spawn(move || {
                for i in 0..50 {
                    let target = format!("c{t}-{i}");
                    let out = plugin.http(
                        &Routes::cluster_header("x-wasmgate-cluster"),
                        HttpRequest::get("a", "/").header("x-target", &target),
                    );
                    assert_eq!(out.cluster.as_deref(), Some(target.as_str()));
                }
            });
        }
    });
}

const WASI: &str = r#"
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
"#;

#[test]
fn wasi_stdout_goes_to_the_logs_and_clocks_are_virtual() {
    let sim = sim();
    let wat = guest(
        r#"
  (data (i32.const 1024) "hello from stdout\n")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    ;; iovec at 1100: {ptr 1024, len 18}
    (i32.store (i32.const 1100) (i32.const 1024))
    (i32.store (i32.const 1104) (i32.const 18))
    (call $log_num (call $fd_write (i32.const 1) (i32.const 1100) (i32.const 1) (i32.const 1108)))
    (call $log_num (call $fd_write (i32.const 7) (i32.const 1100) (i32.const 1) (i32.const 1108)))
    (call $log_num (call $clock (i32.const 0) (i64.const 1) (i32.const 1200)))
    (call $log_num (call $clock (i32.const 3) (i64.const 1) (i32.const 1200)))
    (call $log_num (call $random (i32.const 1300) (i32.const 16)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (call $exit (i32.const 3))
    (i32.const 0))"#,
    )
    .replacen("(module", &format!("(module {WASI}"), 1);
    let plugin = sim
        .load(PluginSpec::new(WasmSource::Wat(wat), "t"))
        .unwrap();
    let out = plugin.http(&Routes::fixed("svc"), HttpRequest::get("a", "/"));
    assert_eq!(
        messages(&out)[..6],
        ["hello from stdout", "00", "08", "00", "58", "00"].map(String::from),
        "fd_write to stdout logs (newline dropped), bad fd is EBADF, clock 3 is ENOTSUP"
    );
    assert!(out.logged("proc_exit"));
    assert_eq!(out.status, 503, "proc_exit traps: {:?}", out.vm_failures);
}

#[test]
fn shared_queue_notifies_its_owner() {
    let sim = sim();
    let wat = guest(
        r#"
  (data (i32.const 1024) "jobs")
  (data (i32.const 1040) "t")
  (data (i32.const 1044) "payload")
  (global $q (mut i32) (i32.const 0))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $register (i32.const 1024) (i32.const 4) (i32.const 300)))
    (global.set $q (i32.load (i32.const 300)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    ;; resolve by vm_id "t" and enqueue
    (call $log_num (call $resolve (i32.const 1040) (i32.const 1) (i32.const 1024) (i32.const 4) (i32.const 304)))
    (call $log_num (call $enqueue (i32.load (i32.const 304)) (i32.const 1044) (i32.const 7)))
    (call $log_num (call $enqueue (i32.const 999) (i32.const 1044) (i32.const 7)))
    (i32.const 0))
  (func (export "proxy_on_queue_ready") (param i32 i32)
    (if (i32.eqz (call $dequeue (local.get 1) (i32.const 256) (i32.const 260)))
      (then (call $log (call $ret_ptr) (call $ret_len))))
    (call $log_num (call $dequeue (local.get 1) (i32.const 256) (i32.const 260))))"#,
    )
    .replacen(
        "(module",
        r#"(module
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_resolve_shared_queue" (func $resolve (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_dequeue_shared_queue" (func $dequeue (param i32 i32 i32) (result i32)))"#,
        1,
    );
    let plugin = sim
        .load(PluginSpec::new(WasmSource::Wat(wat), "t"))
        .unwrap();
    let out = plugin.http(&Routes::fixed("svc"), HttpRequest::get("a", "/"));
    assert_eq!(
        messages(&out),
        ["00", "00", "01"],
        "resolve ok, enqueue ok, unknown queue NOT_FOUND"
    );
    plugin.advance(Duration::ZERO);
    let logs: Vec<String> = plugin.take_logs().into_iter().map(|(_, m)| m).collect();
    assert_eq!(logs, ["payload", "07"], "dequeue, then EMPTY");
}

#[test]
fn grpc_calls_answer_unimplemented() {
    let sim = sim();
    let wat = guest(
        r#"
  (data (i32.const 1024) "grpc-cluster")
  (data (i32.const 1040) "svc.Service")
  (data (i32.const 1060) "Method")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (i32.store (i32.const 800) (local.get 0))
    (call $log_num (call $grpc (i32.const 1024) (i32.const 12) (i32.const 1040) (i32.const 11) (i32.const 1060) (i32.const 6)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 300)))
    (call $log_num (i32.rem_u (i32.load (i32.const 300)) (i32.const 2)))
    (i32.const 1))
  (func (export "proxy_on_grpc_close") (param i32 i32 i32)
    (drop (call $set_effective (i32.load (i32.const 800))))
    (call $log_num (local.get 2))
    (drop (call $continue (i32.const 0))))"#,
    )
    .replacen(
        "(module",
        r#"(module (import "env" "proxy_grpc_call" (func $grpc (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))"#,
        1,
    );
    let plugin = sim
        .load(PluginSpec::new(WasmSource::Wat(wat), "t"))
        .unwrap();
    let out = plugin.http(&Routes::fixed("svc"), HttpRequest::get("a", "/"));
    assert_eq!(
        messages(&out),
        ["00", "01", "12"],
        "ok, odd token, UNIMPLEMENTED"
    );
    assert_eq!(out.status, 200);
}

#[test]
fn metric_kinds_follow_envoy() {
    let sim = sim();
    let wat = guest(
        r#"
  (data (i32.const 1024) "c") (data (i32.const 1028) "g") (data (i32.const 1032) "h")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (local $c i32) (local $g i32) (local $h i32)
    (drop (call $define_metric (i32.const 0) (i32.const 1024) (i32.const 1) (i32.const 300)))
    (local.set $c (i32.load (i32.const 300)))
    (drop (call $define_metric (i32.const 1) (i32.const 1028) (i32.const 1) (i32.const 300)))
    (local.set $g (i32.load (i32.const 300)))
    (drop (call $define_metric (i32.const 2) (i32.const 1032) (i32.const 1) (i32.const 300)))
    (local.set $h (i32.load (i32.const 300)))
    (call $log_num (call $inc_metric (local.get $c) (i64.const -1)))
    (call $log_num (call $inc_metric (local.get $c) (i64.const 5)))
    (call $log_num (call $inc_metric (local.get $g) (i64.const -3)))
    (call $log_num (call $record (local.get $h) (i64.const 42)))
    (call $log_num (call $get (local.get $h) (i32.const 400)))
    (call $log_num (call $get (local.get $c) (i32.const 400)))
    (call $log_num (i32.load (i32.const 400)))
    (call $log_num (call $inc_metric (i32.const 4000) (i64.const 1)))
    (call $log_num (call $define_metric (i32.const 7) (i32.const 1024) (i32.const 1) (i32.const 300)))
    (i32.const 0))"#,
    )
    .replacen(
        "(module",
        r#"(module
  (import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))
  (import "env" "proxy_get_metric" (func $get (param i32 i32) (result i32)))"#,
        1,
    );
    let plugin = sim
        .load(PluginSpec::new(WasmSource::Wat(wat), "t"))
        .unwrap();
    let out = plugin.http(&Routes::fixed("svc"), HttpRequest::get("a", "/"));
    // counter -1: BAD_ARGUMENT; +5 ok; gauge -3 ok; histogram record ok; get histogram:
    // BAD_ARGUMENT; get counter ok = 5; unknown id NOT_FOUND; bad type BAD_ARGUMENT
    assert_eq!(
        messages(&out),
        ["02", "00", "00", "00", "02", "00", "05", "01", "02"]
    );
    assert_eq!(sim.metric("g").unwrap().value, -3);
    let h = sim.metric("h").unwrap();
    assert_eq!((h.kind, h.samples), (MetricKind::Histogram, vec![42]));
}

#[test]
fn effective_context_must_exist() {
    let sim = sim();
    let wat = guest(
        r#"
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (call $log_num (call $effective (local.get $ctx)))
    (call $log_num (call $effective (i32.const 77)))
    (i32.const 0))"#,
    )
    .replacen("(module", r#"(module (import "env" "proxy_set_effective_context" (func $effective (param i32) (result i32)))"#, 1);
    let plugin = sim
        .load(PluginSpec::new(WasmSource::Wat(wat), "t"))
        .unwrap();
    let out = plugin.http(&Routes::fixed("svc"), HttpRequest::get("a", "/"));
    assert_eq!(messages(&out), ["00", "02"]);
}

#[test]
fn memory_limit_refuses_growth() {
    let sim = HostSim::with_config(HostSimConfig {
        memory_limit: 4 << 16,
        ..Default::default()
    })
    .unwrap();
    let plugin = load(
        &sim,
        r#"
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $log_num (i32.add (memory.grow (i32.const 1)) (i32.const 1)))
    (call $log_num (i32.add (memory.grow (i32.const 8)) (i32.const 1)))
    (i32.const 0))"#,
    );
    let out = plugin.http(&Routes::fixed("svc"), HttpRequest::get("a", "/"));
    // 2 -> 3 pages is allowed (old size 2, +1 = 3); 3 -> 11 pages exceeds 4 pages: -1 (+1 = 0)
    assert_eq!(messages(&out), ["03", "00"]);
}
