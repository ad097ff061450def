//! Hand-written WAT guests for host-sim's tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use host_sim::{HostSim, Plugin, PluginSpec, WasmSource};

/// One engine (and module cache) for the whole test binary; each test takes fresh state.
pub fn sim() -> HostSim {
    static SIM: OnceLock<HostSim> = OnceLock::new();
    SIM.get_or_init(|| HostSim::new().expect("engine")).fresh()
}

/// Wraps `body` in a module with a bump allocator, the ABI marker, helper functions and
/// imports of the host calls the tests use. Addresses below 1024 belong to the helpers:
/// 256/260 receive returned pointers and sizes; test data lives at 1024 and above.
pub fn guest(body: &str) -> String {
    format!(
        r#"(module
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $remove_header (param i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $send_local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define_metric (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $inc_metric (param i32 i64) (result i32)))
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_call" (func $grpc_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_status" (func $get_status (param i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_call_foreign_function" (func $foreign (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_effective (param i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.div_u (local.get $n) (i32.const 65536)) (i32.const 1))))))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func $log (param $ptr i32) (param $len i32)
    (drop (call $proxy_log (i32.const 2) (local.get $ptr) (local.get $len))))
  ;; Logs a number 0..99 as two digits.
  (func $log_num (param $v i32)
    (i32.store8 (i32.const 900) (i32.add (i32.const 48) (i32.div_u (local.get $v) (i32.const 10))))
    (i32.store8 (i32.const 901) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
    (call $log (i32.const 900) (i32.const 2)))
  (func $ret_ptr (result i32) (i32.load (i32.const 256)))
  (func $ret_len (result i32) (i32.load (i32.const 260)))
  {body}
)"#
    )
}

pub fn load(sim: &HostSim, body: &str) -> Plugin {
    sim.load(spec(body)).expect("plugin loads")
}

pub fn spec(body: &str) -> PluginSpec {
    PluginSpec::new(WasmSource::Wat(guest(body)), "test")
}

/// A guest that copies request header `x-target` into `x-wasmgate-cluster`, or answers 403
/// with body `denied` when it is missing.
pub const ROUTER: &str = r#"
  (data (i32.const 1024) "x-target")
  (data (i32.const 1040) "x-wasmgate-cluster")
  (data (i32.const 1060) "denied")
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 1024) (i32.const 8) (i32.const 256) (i32.const 260)))
      (then
        (drop (call $replace_header (i32.const 0) (i32.const 1040) (i32.const 18) (call $ret_ptr) (call $ret_len)))
        (return (i32.const 0))))
    (drop (call $send_local (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 1060) (i32.const 6) (i32.const 0) (i32.const 0) (i32.const -1)))
    (i32.const 1))
"#;

/// Escapes bytes for a WAT data segment.
pub fn wat_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\{x:02x}")).collect()
}

/// A serialised header map (proxy-wasm pairs encoding) as a WAT string, and its length.
/// The serialized headers of the guests' `GET /check` callout to the `auth` cluster.
pub fn check_callout_headers() -> (String, usize) {
    wat_pairs(&[
        (":method", "GET"),
        (":path", "/check"),
        (":authority", "auth"),
    ])
}

pub fn wat_pairs(pairs: &[(&str, &str)]) -> (String, usize) {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    (wat_bytes(&out), out.len())
}

/// Builds the Rust-SDK guest of tests/sdk-guest for wasm32-wasip1, once per test binary.
pub fn sdk_guest_wasm() -> PathBuf {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-guest/Cargo.toml");
        let target_dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/host-sim-sdk-guest");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--offline",
                "--target",
                "wasm32-wasip1",
                "--manifest-path",
            ])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building tests/sdk-guest for wasm32-wasip1 failed"
        );
        target_dir.join("wasm32-wasip1/release/host_sim_sdk_guest.wasm")
    })
    .clone()
}

/// Logs `started` at configure and `tick` every 100 ms; rejects a configuration longer
/// than 5 bytes, logging `too long`.
pub const TICKER: &str = r#"
  (data (i32.const 1024) "tick")
  (data (i32.const 1040) "started")
  (data (i32.const 1060) "too long")
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (if (i32.gt_u (local.get 1) (i32.const 5))
      (then
        (drop (call $proxy_log (i32.const 3) (i32.const 1060) (i32.const 8)))
        (return (i32.const 0))))
    (drop (call $set_tick (i32.const 100)))
    (call $log (i32.const 1040) (i32.const 7))
    (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (call $log (i32.const 1024) (i32.const 4)))
"#;
