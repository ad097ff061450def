//! The fuzz targets' bodies, shared by the coverage-guided runs (`fuzz/`, `make fuzz`) and
//! the smoke test in `make test` (`tests/tests/fuzz_smoke.rs`), which replays the corpora and
//! mutations of them. Each target panics only when an invariant breaks; any input must get a
//! defined answer.

use std::cell::RefCell;
use std::path::PathBuf;

use host_sim::{HostSim, HostSimConfig, HttpRequest, Plugin, PluginSpec, Routes, WasmSource};
use wasmgate_core::{FixedRandom, Outcome, RequestView};

pub use wasmgate_core_fuzz_targets::{
    balancer, config, request, with_table, FuzzRequest, REQUEST_CONFIG,
};

/// A fuzz target's body: any bytes in, a panic only when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every fuzz target: its name (the corpus and dictionary file names) and body.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("request", request),
    ("balancer", balancer),
    ("hostsim_abi", hostsim_abi),
    ("differential", differential),
];

/// Where the corpora and dictionaries live.
pub fn fuzz_dir() -> PathBuf {
    crate::paths::workspace_root().join("fuzz")
}

/// Every host function a guest may import: (module, name, parameter types).
const HOST_FUNCTIONS: &[(&str, &str, &str)] = &[
    ("env", "proxy_log", "iii"),
    ("env", "proxy_get_log_level", "i"),
    ("env", "proxy_get_current_time_nanoseconds", "i"),
    ("env", "proxy_set_tick_period_milliseconds", "i"),
    ("env", "proxy_get_property", "iiii"),
    ("env", "proxy_set_property", "iiii"),
    ("env", "proxy_get_configuration", "ii"),
    ("env", "proxy_get_status", "iii"),
    ("env", "proxy_set_effective_context", "i"),
    ("env", "proxy_done", ""),
    ("env", "proxy_call_foreign_function", "iiiiii"),
    ("env", "proxy_get_header_map_pairs", "iii"),
    ("env", "proxy_set_header_map_pairs", "iii"),
    ("env", "proxy_get_header_map_value", "iiiii"),
    ("env", "proxy_replace_header_map_value", "iiiii"),
    ("env", "proxy_add_header_map_value", "iiiii"),
    ("env", "proxy_remove_header_map_value", "iii"),
    ("env", "proxy_get_header_map_size", "ii"),
    ("env", "proxy_get_buffer_bytes", "iiiii"),
    ("env", "proxy_get_buffer_status", "iii"),
    ("env", "proxy_set_buffer_bytes", "iiiii"),
    ("env", "proxy_get_shared_data", "iiiii"),
    ("env", "proxy_set_shared_data", "iiiii"),
    ("env", "proxy_register_shared_queue", "iii"),
    ("env", "proxy_resolve_shared_queue", "iiiii"),
    ("env", "proxy_dequeue_shared_queue", "iii"),
    ("env", "proxy_enqueue_shared_queue", "iii"),
    ("env", "proxy_continue_stream", "i"),
    ("env", "proxy_close_stream", "i"),
    ("env", "proxy_continue_request", ""),
    ("env", "proxy_continue_response", ""),
    ("env", "proxy_clear_route_cache", ""),
    ("env", "proxy_send_local_response", "iiiiiiii"),
    ("env", "proxy_http_call", "iiiiiiiiii"),
    ("env", "proxy_grpc_call", "iiiiiiiiiiii"),
    ("env", "proxy_grpc_stream", "iiiiiiiii"),
    ("env", "proxy_grpc_send", "iiii"),
    ("env", "proxy_define_metric", "iiii"),
    ("env", "proxy_increment_metric", "iI"),
    ("env", "proxy_record_metric", "iI"),
    ("env", "proxy_get_metric", "ii"),
    ("wasi_snapshot_preview1", "fd_write", "iiii"),
    ("wasi_snapshot_preview1", "fd_read", "iiii"),
    ("wasi_snapshot_preview1", "fd_seek", "iIii"),
    ("wasi_snapshot_preview1", "fd_close", "i"),
    ("wasi_snapshot_preview1", "fd_fdstat_get", "ii"),
    ("wasi_snapshot_preview1", "fd_prestat_get", "ii"),
    ("wasi_snapshot_preview1", "fd_prestat_dir_name", "iii"),
    ("wasi_snapshot_preview1", "path_open", "iiiiiIIii"),
    ("wasi_snapshot_preview1", "environ_sizes_get", "ii"),
    ("wasi_snapshot_preview1", "environ_get", "ii"),
    ("wasi_snapshot_preview1", "args_sizes_get", "ii"),
    ("wasi_snapshot_preview1", "args_get", "ii"),
    ("wasi_snapshot_preview1", "clock_time_get", "iIi"),
    ("wasi_snapshot_preview1", "random_get", "ii"),
    ("wasi_snapshot_preview1", "sched_yield", ""),
];

/// A guest that runs a program of host calls with arbitrary arguments: its plugin
/// configuration is a list of records, one byte picking the host function, then a
/// little-endian i32 per parameter (i64 parameters sign-extended). It runs the program in
/// `proxy_on_configure` and again in `proxy_on_request_headers` and `proxy_on_tick`.
pub fn abi_guest_wat() -> String {
    let mut imports = String::new();
    let mut cases = String::new();
    let n = HOST_FUNCTIONS.len();
    for (i, (module, name, params)) in HOST_FUNCTIONS.iter().enumerate() {
        let types: Vec<&str> = params
            .chars()
            .map(|c| if c == 'I' { "i64" } else { "i32" })
            .collect();
        imports.push_str(&format!(
            "  (import \"{module}\" \"{name}\" (func $f{i} (param {}) (result i32)))\n",
            types.join(" ")
        ));
        let mut call = String::new();
        for (k, c) in params.chars().enumerate() {
            call.push_str(&format!(
                "        (i32.load (i32.add (local.get $p) (i32.const {})))\n",
                1 + 4 * k
            ));
            if c == 'I' {
                call.push_str("        i64.extend_i32_s\n");
            }
        }
        cases.push_str(&format!(
            "      ;; {name}\n      (if (i32.gt_u (i32.add (local.get $p) (i32.const {need})) (local.get $end)) (then (return)))\n{call}        call $f{i}\n        drop\n        (local.set $p (i32.add (local.get $p) (i32.const {need})))\n        (br $next)\n",
            need = 1 + 4 * params.len()
        ));
    }
    let get_buffer = HOST_FUNCTIONS
        .iter()
        .position(|(_, name, _)| *name == "proxy_get_buffer_bytes")
        .unwrap_or_default();
    // Nested blocks: block k ends right before case k's code; br_table jumps to it.
    let mut body = String::new();
    body.push_str("    (block $next\n");
    for i in (0..n).rev() {
        body.push_str(&format!("    (block $c{i}\n"));
    }
    let labels: Vec<String> = (0..n).map(|i| format!("$c{i}")).collect();
    body.push_str(&format!(
        "      (br_table {} (i32.rem_u (i32.load8_u (local.get $p)) (i32.const {n})))\n",
        labels.join(" ")
    ));
    for (i, case) in cases.split_inclusive("(br $next)\n").enumerate() {
        body.push_str(&format!("    ) ;; $c{i}\n"));
        body.push_str(case);
    }
    body.push_str("    ) ;; $next\n");
    format!(
        r#"(module
{imports}  (memory (export "memory") 2 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $prog (mut i32) (i32.const 0))
  (global $len (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize"))
  ;; A bump allocator over the second page that wraps: host writes land anywhere in it.
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $at i32)
    (if (i32.gt_u (local.get $n) (i32.const 32768)) (then (return (i32.const 0))))
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $n)) (i32.const 131072))
      (then (global.set $heap (i32.const 65536))))
    (local.set $at (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $at))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    ;; Fetch the configuration (buffer type 7) into the heap; its address lands at 0, its
    ;; length at 4.
    (drop (call $f{get_buffer} (i32.const 7) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
    (global.set $prog (i32.load (i32.const 0)))
    (global.set $len (i32.load (i32.const 4)))
    ;; Keep a copy in the first page, away from the allocator.
    (if (i32.gt_u (global.get $len) (i32.const 32000)) (then (global.set $len (i32.const 32000))))
    (memory.copy (i32.const 16) (global.get $prog) (global.get $len))
    (global.set $prog (i32.const 16))
    (call $run)
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $run) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (i32.const 0))
  (func (export "proxy_on_tick") (param i32) (call $run))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
  (func $run
    (local $p i32) (local $end i32)
    (local.set $p (global.get $prog))
    (local.set $end (i32.add (global.get $prog) (global.get $len)))
    (loop $loop
      (if (i32.ge_u (local.get $p) (local.get $end)) (then (return)))
{body}      (br $loop)))
)"#
    )
}

thread_local! {
    static ABI_SIM: RefCell<Option<HostSim>> = const { RefCell::new(None) };
}

fn abi_sim() -> HostSim {
    ABI_SIM.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                HostSim::with_config(HostSimConfig {
                    fuel_per_callback: Some(10_000_000),
                    memory_limit: 1 << 20,
                    max_instances: 16,
                    seed: 1,
                    ..HostSimConfig::default()
                })
                .unwrap_or_else(|e| panic!("host-sim starts: {e}"))
            })
            .clone()
    })
}

/// host-sim's ABI surface: a guest calling every host function with arbitrary pointers,
/// lengths and ids must get error codes or a trap, never crash the host.
pub fn hostsim_abi(data: &[u8]) {
    let sim = abi_sim().fresh();
    static GUEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let wat = GUEST.get_or_init(abi_guest_wat).clone();
    let spec = PluginSpec::new(WasmSource::Wat(wat), "fuzz.abi").with_configuration(data.to_vec());
    // Refusing the configuration or trapping is a defined answer; so is an error.
    let Ok(plugin) = sim.load(spec) else { return };
    let _ = plugin.http(&Routes::fixed("any"), HttpRequest::get("a.example", "/"));
    // At most a few ticks: the program may have set a 1 ms period.
    plugin.advance(std::time::Duration::from_millis(3));
}

thread_local! {
    static ROUTER_SIM: RefCell<Option<Plugin>> = const { RefCell::new(None) };
}

fn with_router_plugin<R>(f: impl FnOnce(&Plugin) -> R) -> R {
    ROUTER_SIM.with(|p| {
        let mut p = p.borrow_mut();
        let plugin = p.get_or_insert_with(|| {
            let sim = HostSim::new().unwrap_or_else(|e| panic!("host-sim starts: {e}"));
            let spec = PluginSpec::new(
                WasmSource::File(crate::paths::wasm("wasmgate_router")),
                "wasmgate.router",
            )
            .with_configuration(REQUEST_CONFIG);
            sim.load(spec)
                .unwrap_or_else(|e| panic!("the router .wasm loads (run `make build`): {e}"))
        });
        f(plugin)
    })
}

/// What a request came to: the cluster it was forwarded to, or the local reply's status.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Cluster(String),
    Status(u16),
}

/// Differential: the native table and the `.wasm` in host-sim decide alike on the request
/// decoded from `data` (authority and path as text: host-sim takes them as strings).
pub fn differential(data: &[u8]) {
    let req = FuzzRequest::decode(data);
    let authority = String::from_utf8_lossy(&req.authority).replace(['\r', '\0'], "");
    let path = String::from_utf8_lossy(&req.path).replace(['\r', '\0'], "");
    let method = String::from_utf8_lossy(&req.method).into_owned();
    let method = if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        "GET".to_string()
    } else {
        method
    };
    // Envoy's codec answers a request target that is not origin-form before any filter.
    if !path.starts_with('/') {
        return;
    }
    let headers: Vec<(&str, Vec<u8>)> = req
        .headers
        .iter()
        .filter(|(n, v)| !n.starts_with(':') && !v.contains(&b'\r') && !v.contains(&0))
        .map(|(n, v)| (*n, v.clone()))
        .collect();
    let native = with_table(|table| {
        let hv: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, &v[..])).collect();
        let view = RequestView {
            authority: authority.as_bytes(),
            path: path.as_bytes(),
            method: method.as_bytes(),
            headers: &hv,
            listener_port: None,
        };
        match table.route(&view, &mut FixedRandom(0.5)) {
            Outcome::Forward(f) => Decision::Cluster(f.cluster.unwrap_or_default().to_string()),
            Outcome::Reply(r) => Decision::Status(r.status),
            Outcome::NoMatch(_) => Decision::Status(404),
        }
    });
    let wasm = with_router_plugin(|plugin| {
        let mut r = HttpRequest::new(&method, &authority, &path).without_envoy_headers();
        for (n, v) in &headers {
            r = r.header(n, v);
        }
        let out = plugin.http(&Routes::cluster_header("x-wasmgate-cluster"), r);
        assert!(
            out.vm_failures.is_empty(),
            "the VM failed: {:?}",
            out.vm_failures
        );
        match (&out.local_reply, &out.cluster) {
            (Some(reply), _) => Decision::Status(reply.status),
            (None, Some(c)) => Decision::Cluster(c.clone()),
            (None, None) => Decision::Status(out.status),
        }
    });
    assert_eq!(
        native, wasm,
        "native and .wasm disagree on {method} {authority:?} {path:?} {headers:?}"
    );
}
