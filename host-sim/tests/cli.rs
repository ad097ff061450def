//! The `host-sim` binary: run, test and bench against an Envoy bootstrap or a module.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// A scratch folder removed when the test ends.
struct Workdir(PathBuf);

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Workdir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

fn workdir(name: &str) -> Workdir {
    let dir = std::env::temp_dir().join(format!("host-sim-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Workdir(dir)
}

fn bootstrap(wasm: &str) -> String {
    format!(
        r#"
static_resources:
  listeners:
  - name: http
    address: {{socket_address: {{address: 127.0.0.1, port_value: 10000}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            name: wasmgate
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster_header: x-wasmgate-cluster}}
          http_filters:
          - name: wasmgate.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: wasmgate.router
                root_id: wasmgate.router
                fail_open: false
                vm_config: {{vm_id: wasmgate, runtime: envoy.wasm.runtime.v8, code: {{local: {{filename: {wasm}}}}}}}
                configuration: {{"@type": type.googleapis.com/google.protobuf.StringValue, value: '{{"routes":[]}}'}}
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: east
  - name: west
"#
    )
}

fn setup(name: &str) -> Workdir {
    let dir = workdir(name);
    std::fs::write(dir.join("router.wat"), common::guest(common::ROUTER)).unwrap();
    std::fs::write(
        dir.join("envoy.yaml"),
        bootstrap(&dir.join("router.wat").display().to_string()),
    )
    .unwrap();
    dir
}

fn host_sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_host-sim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_prints_one_json_result_per_request() {
    let dir = setup("run");
    let requests = dir.join("requests.jsonl");
    std::fs::write(
        &requests,
        concat!(
            r#"{"name": "east", "host": "foo.com", "path": "/", "headers": {"x-target": "east"}}"#,
            "\n",
            r#"{"name": "unknown", "host": "foo.com", "headers": {"x-target": "mars"}}"#,
            "\n",
            r#"{"name": "binary", "headers": [["x-target", {"hex": "ff00"}]]}"#,
            "\n"
        ),
    )
    .unwrap();
    let envoy = dir.join("envoy.yaml");
    let (code, stdout, stderr) = host_sim(&[
        "run",
        "--envoy-config",
        envoy.to_str().unwrap(),
        "--requests",
        requests.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["cluster"], "east");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[1]["status"], 503, "clusters come from the bootstrap");
    assert_eq!(lines[1]["cluster"], serde_json::Value::Null);
    assert_eq!(
        lines[2]["status"], 503,
        "a binary cluster name is not a declared cluster"
    );
}

#[test]
fn test_reports_mismatches_and_fails() {
    let dir = setup("test");
    let scenario = dir.join("scenario.yaml");
    std::fs::write(
        &scenario,
        r#"
envoy_config: envoy.yaml
upstreams:
  west: {status: 503, body: down}
cases:
- name: routes east
  request: {host: foo.com, headers: {x-target: east}}
  expect: {status: 200, cluster: east, upstream_headers: {x-wasmgate-cluster: east}}
- name: west is down
  request: {host: foo.com, headers: {x-target: west}}
  expect: {status: 503, body: down, cluster: west}
- name: no target is denied
  request: {host: foo.com}
  expect: {status: 403, cluster: null, local_reply: true, body: denied}
- name: wrong on purpose
  request: {host: foo.com, headers: {x-target: east}}
  expect: {status: 418, cluster: west}
"#,
    )
    .unwrap();
    let (code, stdout, _) = host_sim(&["test", scenario.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("PASS routes east"), "{stdout}");
    assert!(stdout.contains("PASS west is down"), "{stdout}");
    assert!(stdout.contains("PASS no target is denied"), "{stdout}");
    assert!(stdout.contains("FAIL wrong on purpose"), "{stdout}");
    assert!(stdout.contains("status: expected 418, got 200"), "{stdout}");
    assert!(
        stdout.contains(r#"cluster: expected Some("west"), got Some("east")"#),
        "{stdout}"
    );
    assert!(stdout.contains("3 passed, 1 failed"), "{stdout}");
}

#[test]
fn bench_reports_throughput() {
    let dir = setup("bench");
    let wat = dir.join("router.wat");
    let (code, stdout, stderr) = host_sim(&[
        "bench",
        "--wasm",
        wat.to_str().unwrap(),
        "--iterations",
        "200",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("requests/s"), "{stdout}");
    assert!(stdout.contains("instantiate"), "{stdout}");
    assert!(stdout.contains("cached module"), "{stdout}");
}

#[test]
fn engine_and_log_options_take_effect_or_are_refused() {
    let dir = setup("options");
    let requests = dir.join("requests.jsonl");
    std::fs::write(
        &requests,
        r#"{"host": "foo.com", "headers": {"x-target": "east"}}"#,
    )
    .unwrap();
    let envoy = dir.join("envoy.yaml");
    let base = [
        "run",
        "--envoy-config",
        envoy.to_str().unwrap(),
        "--requests",
        requests.to_str().unwrap(),
    ];
    // (options, exit code, text expected in stdout or stderr)
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &["--log-level", "debug", "--fuel", "0", "--memory-mib", "64"],
            0,
            "\"cluster\":\"east\"",
        ),
        (&["--fuel", "5000000"], 0, "\"cluster\":\"east\""),
        (
            &["--log-level", "loud"],
            2,
            "invalid value 'loud' for '--log-level <LEVEL>': unknown level \"loud\"",
        ),
        (
            &["--fuel", "lots"],
            2,
            "invalid value 'lots' for '--fuel <N>'",
        ),
        (&["--memory-mib", "0"], 2, "host-sim:"),
    ];
    for (options, want_code, want_text) in cases {
        let args: Vec<&str> = base.iter().chain(options).copied().collect();
        let (code, stdout, stderr) = host_sim(&args);
        assert_eq!(code, want_code, "{options:?}: {stdout}{stderr}");
        assert!(
            stdout.contains(want_text) || stderr.contains(want_text),
            "{options:?}: {want_text} not in {stdout}{stderr}"
        );
    }
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let (code, _, stderr) = host_sim(&[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("Usage: host-sim <COMMAND>"), "{stderr}");
    let (code, _, stderr) = host_sim(&["run", "--frobnicate"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unexpected argument '--frobnicate'"),
        "{stderr}"
    );
    // Options that would be silently ignored with the other kind of target are refused.
    for refused in [
        &["--wasm", "a.wasm", "--envoy-config", "e.yaml"][..],
        &["--envoy-config", "e.yaml", "--config", "c.json"],
        &["--envoy-config", "e.yaml", "--cluster", "east"],
        &["--envoy-config", "e.yaml", "--name", "n"],
        &[
            "--wasm",
            "a.wasm",
            "--skip-filter",
            "envoy.filters.http.lua",
        ],
    ] {
        let args: Vec<&str> = ["run", "--requests", "r.jsonl"]
            .iter()
            .chain(refused)
            .copied()
            .collect();
        let (code, _, stderr) = host_sim(&args);
        assert_eq!(code, 2, "{refused:?}");
        assert!(
            stderr.contains("cannot be used with"),
            "{refused:?}: {stderr}"
        );
    }
}

#[test]
fn completions_name_every_command() {
    let (code, stdout, stderr) = host_sim(&["completions", "bash"]);
    assert_eq!(code, 0, "{stderr}");
    for command in ["run", "test", "bench", "check-config"] {
        assert!(stdout.contains(command), "{command} missing from {stdout}");
    }
}

#[test]
fn test_runs_tcp_cases() {
    let dir = workdir("tcp");
    let args = host_sim::encode_set_envoy_filter_state("envoy.tcp_proxy.cluster", b"db-east", 0);
    let wat = common::guest(&format!(
        r#"
  (data (i32.const 1024) "set_envoy_filter_state")
  (data (i32.const 1060) "{}")
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (drop (call $foreign (i32.const 1024) (i32.const 22) (i32.const 1060) (i32.const {}) (i32.const 0) (i32.const 0)))
    (i32.const 0))"#,
        common::wat_bytes(&args),
        args.len()
    ));
    std::fs::write(dir.join("tcp.wat"), wat).unwrap();
    let scenario = dir.join("tcp.yaml");
    std::fs::write(
        &scenario,
        r#"
wasm: tcp.wat
cluster: fallback
tcp_cases:
- name: filter picks the cluster
  connection: {port: 5432, data: [hello], upstream_data: [world]}
  expect: {cluster: db-east, closed: false, to_upstream: hello, to_downstream: world,
           filter_state: {envoy.tcp_proxy.cluster: db-east}}
"#,
    )
    .unwrap();
    let (code, stdout, stderr) = host_sim(&["test", scenario.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("PASS filter picks the cluster"), "{stdout}");
}

fn host_sim_env(args: &[&str], env: &[(&str, &std::path::Path)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-sim"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `host-sim run --wasm WAT` on these request lines with `options`: the exit code, the
/// result lines and stderr.
fn run_lines(
    dir: &Workdir,
    wat: &str,
    requests: &str,
    options: &[&str],
) -> (i32, Vec<serde_json::Value>, String) {
    let path = dir.join("requests.jsonl");
    std::fs::write(&path, requests).unwrap();
    let wat = dir.join(wat);
    let base = [
        "run",
        "--wasm",
        wat.to_str().unwrap(),
        "--requests",
        path.to_str().unwrap(),
    ];
    let args: Vec<&str> = base.iter().chain(options).copied().collect();
    let (code, stdout, stderr) = host_sim(&args);
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (code, lines, stderr)
}

#[test]
fn run_shows_root_context_logs() {
    let dir = workdir("root-logs");
    std::fs::write(dir.join("ticker.wat"), common::guest(common::TICKER)).unwrap();
    let requests =
        "{\"name\": \"first\"}\n{\"name\": \"later\", \"advance_ms\": 250, \"advance_only\": true}\n";
    let (code, lines, stderr) = run_lines(&dir, "ticker.wat", requests, &["--no-cache"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        lines[0]["root_logs"],
        serde_json::json!([["info", "started"]])
    );
    assert_eq!(
        lines[1]["root_logs"],
        serde_json::json!([["info", "tick"], ["info", "tick"]])
    );
    assert!(lines[1].get("status").is_none(), "{}", lines[1]);
}

#[test]
fn check_config_reports_each_configuration_in_one_process() {
    let dir = workdir("check-config");
    std::fs::write(dir.join("ticker.wat"), common::guest(common::TICKER)).unwrap();
    let wat = dir.join("ticker.wat");
    let files = [
        ("ok.json", "{}"),
        ("long.json", "{\"a\": 1}"),
        ("broken.json", "{\"a\" 1}"),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let mut args = vec!["check-config", "--wasm", wat.to_str().unwrap()];
    let paths: Vec<String> = files
        .iter()
        .map(|(n, _)| dir.join(n).display().to_string())
        .collect();
    args.extend(paths.iter().map(String::as_str));
    let (code, stdout, stderr) = host_sim_env(&args, &[("HOST_SIM_CACHE_DIR", &dir.join("cache"))]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0]["configured"], true);
    assert_eq!(lines[1]["configured"], false);
    assert_eq!(lines[1]["logs"], serde_json::json!([["warn", "too long"]]));
    assert!(lines[1].get("hint").is_none(), "valid JSON needs no hint");
    assert!(
        lines[2]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("not valid JSON") && h.contains("column 6")),
        "{}",
        lines[2]
    );
}

#[test]
fn a_json_syntax_error_in_config_string_says_where() {
    let dir = workdir("json-hint");
    std::fs::write(dir.join("ticker.wat"), common::guest(common::TICKER)).unwrap();
    let requests = dir.join("requests.jsonl");
    std::fs::write(&requests, "{}\n").unwrap();
    let wat = dir.join("ticker.wat");
    let (code, _, stderr) = host_sim(&[
        "run",
        "--wasm",
        wat.to_str().unwrap(),
        "--config-string",
        "{routes: []}",
        "--requests",
        requests.to_str().unwrap(),
        "--no-cache",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            "the configuration (--config-string) is not valid JSON: key must be a string"
        ) && stderr.contains("at line 1 column 2"),
        "{stderr}"
    );
}

#[test]
fn compiled_modules_are_reused_from_the_cache_folder() {
    let dir = setup("disk-cache");
    let cache = dir.join("cache");
    let requests = dir.join("requests.jsonl");
    std::fs::write(&requests, "{\"headers\": {\"x-target\": \"east\"}}\n").unwrap();
    let wat = dir.join("router.wat");
    let args = [
        "run",
        "--wasm",
        wat.to_str().unwrap(),
        "--requests",
        requests.to_str().unwrap(),
    ];
    let entries = || -> Vec<PathBuf> {
        std::fs::read_dir(&cache)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    let (code, first, stderr) = host_sim_env(&args, &[("HOST_SIM_CACHE_DIR", &cache)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(entries().len(), 1, "one compiled module stored");
    // A damaged entry is not used: the module compiles again and the result is the same.
    std::fs::write(&entries()[0], b"not a module").unwrap();
    let (code, again, stderr) = host_sim_env(&args, &[("HOST_SIM_CACHE_DIR", &cache)]);
    assert_eq!((code, &again), (0, &first), "{stderr}");
    let (code, cached, _) = host_sim_env(&args, &[("HOST_SIM_CACHE_DIR", &cache)]);
    assert_eq!((code, &cached), (0, &first));
    let no_cache = dir.join("unused");
    let with_flag: Vec<&str> = args.iter().copied().chain(["--no-cache"]).collect();
    let (code, _, _) = host_sim_env(&with_flag, &[("HOST_SIM_CACHE_DIR", &no_cache)]);
    assert_eq!(code, 0);
    assert!(!no_cache.exists(), "--no-cache writes nothing");
}

#[test]
fn scenarios_check_every_header_value_root_logs_and_callouts() {
    let dir = workdir("scenario-fields");
    let (pairs, len) = common::check_callout_headers();
    let guest = common::guest(&format!(
        r#"
  (data (i32.const 1024) "auth")
  (data (i32.const 1100) "{pairs}")
  (data (i32.const 1400) "x-many")
  (data (i32.const 1410) "one")
  (data (i32.const 1420) "two")
  (data (i32.const 1430) "configured")
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (call $log (i32.const 1430) (i32.const 10))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $http_call (i32.const 1024) (i32.const 4) (i32.const 1100) (i32.const {len})
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 500) (i32.const 300)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add_header (i32.const 2) (i32.const 1400) (i32.const 6) (i32.const 1410) (i32.const 3)))
    (drop (call $add_header (i32.const 2) (i32.const 1400) (i32.const 6) (i32.const 1420) (i32.const 3)))
    (i32.const 0))"#
    ));
    std::fs::write(dir.join("g.wat"), guest).unwrap();
    let scenario = dir.join("s.yaml");
    std::fs::write(
        &scenario,
        r#"
wasm: g.wat
cluster: east
cases:
- name: all values and the callout
  request: {path: /}
  expect:
    headers: {x-many: [one, two]}
    root_logs_contain: [configured]
    callouts: [{cluster: auth, headers: {":path": /check}}]
- name: only the first value is wrong
  request: {path: /}
  expect: {headers: {x-many: one}}
"#,
    )
    .unwrap();
    let (code, stdout, _) = host_sim(&["test", scenario.to_str().unwrap(), "--no-cache"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("PASS all values and the callout"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"response header x-many: expected "one", got "one", "two""#),
        "{stdout}"
    );
}

/// A root context that calls `auth` from its tick, outside any stream: `run` reports the
/// call as a root callout on the line during which it happened, and a scenario can expect it.
#[test]
fn root_callouts_outside_streams_are_in_run_and_test_results() {
    let dir = workdir("root-callouts");
    let (pairs, len) = common::check_callout_headers();
    let guest = common::guest(&format!(
        r#"
  (data (i32.const 1024) "auth")
  (data (i32.const 1100) "{pairs}")
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $set_tick (i32.const 100)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (drop (call $set_tick (i32.const 0)))
    (drop (call $http_call (i32.const 1024) (i32.const 4) (i32.const 1100) (i32.const {len})
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 500) (i32.const 300))))"#
    ));
    std::fs::write(dir.join("g.wat"), guest).unwrap();
    let requests = "{\"name\": \"before\", \"advance_only\": true}\n{\"name\": \"tick\", \"advance_ms\": 150, \"advance_only\": true}\n";
    let options = ["--cluster", "east", "--no-cache"];
    let (code, lines, stderr) = run_lines(&dir, "g.wat", requests, &options);
    assert_eq!(code, 0, "{stderr}");
    assert!(lines[0].get("root_callouts").is_none(), "{}", lines[0]);
    let calls = lines[1]["root_callouts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(calls.len(), 1, "{}", lines[1]);
    assert_eq!(calls[0]["cluster"], "auth", "{}", lines[1]);
    let scenario = dir.join("s.yaml");
    std::fs::write(
        &scenario,
        r#"
wasm: g.wat
cluster: east
cases:
- name: the tick calls auth
  advance_ms: 150
  expect: {root_callouts: [{cluster: auth, headers: {":path": /check}}]}
- name: no second call
  advance_ms: 150
  expect: {root_callouts: [{cluster: auth}]}
"#,
    )
    .unwrap();
    let (code, stdout, _) = host_sim(&["test", scenario.to_str().unwrap(), "--no-cache"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("PASS the tick calls auth"), "{stdout}");
    assert!(
        stdout.contains("root_callouts: expected 1, got 0"),
        "{stdout}"
    );
}
