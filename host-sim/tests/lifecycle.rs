//! Loading, configuration, traps and the VM failure policy.

mod common;

use common::{guest, load, sim, spec, ROUTER};
use host_sim::{Error, HttpRequest, PluginSpec, Routes, WasmSource};

const CONFIG_CHECK: &str = r#"
  (data (i32.const 1024) "bad config: must not start with x")
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    (drop (call $get_buffer (i32.const 7) (i32.const 0) (local.get $size) (i32.const 256) (i32.const 260)))
    (if (i32.eq (i32.load8_u (call $ret_ptr)) (i32.const 120))
      (then
        (drop (call $proxy_log (i32.const 4) (i32.const 1024) (i32.const 33)))
        (return (i32.const 0))))
    (i32.const 1))
"#;

#[test]
fn configure_returning_false_is_rejected_with_the_logged_reason() {
    let sim = sim();
    let err = sim
        .load(spec(CONFIG_CHECK).with_configuration("xyz"))
        .err()
        .expect("rejected");
    match &err {
        Error::ConfigureRejected { logs } => {
            assert!(
                logs.iter()
                    .any(|(_, m)| m == "bad config: must not start with x"),
                "{logs:?}"
            )
        }
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains("must not start with x"), "{err}");
    assert!(sim
        .load(spec(CONFIG_CHECK).with_configuration("{}"))
        .is_ok());
}

const TRAPS_ON_PATH: &str = r#"
  (data (i32.const 1024) ":path")
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $get_header (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260)))
    ;; trap when the path is "/boom"
    (if (i32.eq (i32.load8_u (i32.add (call $ret_ptr) (i32.const 1))) (i32.const 98))
      (then unreachable))
    (i32.const 0))
"#;

#[test]
fn trap_fails_the_stream_closed_and_every_later_one() {
    let sim = sim();
    let plugin = load(&sim, TRAPS_ON_PATH);
    let routes = Routes::fixed("svc");
    assert_eq!(
        plugin.http(&routes, HttpRequest::get("a", "/ok")).status,
        200
    );
    let out = plugin.http(&routes, HttpRequest::get("a", "/boom"));
    assert_eq!(out.status, 503);
    assert_eq!(out.details, "wasm_fail_stream");
    assert!(out.cluster.is_none());
    assert_eq!(out.vm_failures.len(), 1);
    assert!(out.logged("unreachable"), "{:?}", out.logs);
    assert!(plugin.failed().is_some());
    let later = plugin.http(&routes, HttpRequest::get("a", "/ok"));
    assert_eq!(later.status, 503, "a failed VM fails every later stream");
}

#[test]
fn trap_with_fail_open_lets_streams_through() {
    let sim = sim();
    let plugin = sim
        .load(PluginSpec {
            fail_open: true,
            ..spec(TRAPS_ON_PATH)
        })
        .unwrap();
    let routes = Routes::fixed("svc");
    let out = plugin.http(&routes, HttpRequest::get("a", "/boom"));
    assert_eq!((out.status, out.cluster.as_deref()), (200, Some("svc")));
    assert_eq!(
        plugin.http(&routes, HttpRequest::get("a", "/ok")).status,
        200
    );
}

#[test]
fn infinite_loop_runs_out_of_fuel_instead_of_hanging() {
    let sim = sim();
    let plugin = load(
        &sim,
        r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
             (loop $l (br $l)) (i32.const 0))"#,
    );
    let out = plugin.http(&Routes::fixed("svc"), HttpRequest::get("a", "/"));
    assert_eq!(out.status, 503);
    assert!(out.vm_failures[0].contains("fuel"), "{:?}", out.vm_failures);
}

#[test]
fn load_errors_are_typed() {
    let sim = sim();
    let no_abi = "(module (memory (export \"memory\") 1) (func (export \"malloc\") (param i32) (result i32) (i32.const 0)))";
    type IsExpected = fn(&Error) -> bool;
    let cases: Vec<(&str, String, IsExpected)> = vec![
        ("no ABI marker", no_abi.to_string(), |e| {
            matches!(e, Error::UnknownAbi)
        }),
        (
            "unknown import",
            guest("").replacen(
                "(module",
                "(module (import \"env\" \"proxy_frobnicate\" (func (param i32) (result i32)))",
                1,
            ),
            |e| matches!(e, Error::MissingImport { name, .. } if name == "proxy_frobnicate"),
        ),
        ("not wasm", "(module".to_string(), |e| {
            matches!(e, Error::Compile(_))
        }),
    ];
    for (name, wat, check) in cases {
        let err = sim
            .load(PluginSpec::new(WasmSource::Wat(wat), "t"))
            .err()
            .unwrap_or_else(|| panic!("{name} loaded"));
        assert!(check(&err), "{name}: {err}");
    }
}

#[test]
fn unknown_imports_can_be_stubbed_as_traps() {
    let sim = sim();
    let wat = guest(
        r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
             (drop (call $frob (i32.const 1))) (i32.const 0))"#,
    )
    .replacen(
        "(module",
        "(module (import \"env\" \"proxy_frobnicate\" (func $frob (param i32) (result i32)))",
        1,
    );
    let plugin = sim
        .load(PluginSpec {
            allow_unknown_imports: true,
            ..PluginSpec::new(WasmSource::Wat(wat), "t")
        })
        .unwrap();
    assert_eq!(
        plugin
            .http(&Routes::fixed("svc"), HttpRequest::get("a", "/"))
            .status,
        503
    );
}

#[test]
fn router_guest_loads_once_and_is_cached() {
    let sim = sim();
    let a = load(&sim, ROUTER);
    let b = load(&sim, ROUTER);
    assert_eq!(a.abi_version(), host_sim::AbiVersion::V0_2_1);
    assert_eq!(b.workers(), 1);
}
