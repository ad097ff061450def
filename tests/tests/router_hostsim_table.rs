//! The router case table run through the compiled .wasm in host-sim, configured from the very
//! Envoy bootstrap the real-Envoy runner starts Envoy with.

use std::net::SocketAddr;
use std::path::Path;

use host_sim::bootstrap_reader::parse_bootstrap;
use host_sim::{HostSim, HttpOutcome, HttpRequest};
use wasmgate_core::config::RouterConfig;
use wasmgate_harness::router_case_setup::{case_bootstrap, clusters_of, PASS_THROUGH};
use wasmgate_router_cases::{bytes, check, load, Case, Observed};

fn to_request(case: &Case) -> HttpRequest {
    let r = &case.request;
    let mut req = HttpRequest::new(r.method.as_deref().unwrap_or("GET"), "", "");
    req.headers.remove(":authority");
    req.headers.remove(":path");
    if let Some(a) = &r.authority {
        req.headers.add(":authority", bytes(a));
    }
    req.headers.add(":path", bytes(&r.path));
    for (k, v) in &r.headers {
        req.headers.add(k.to_ascii_lowercase(), bytes(v));
    }
    // The listener `case_bootstrap` is given below (port 1), declared on port 80.
    req.destination_address = "127.0.0.1:1".into();
    req
}

fn observe(out: &HttpOutcome) -> Observed {
    let mut seen = Observed::default();
    match (&out.local_reply, &out.cluster) {
        (Some(_), _) | (None, None) => {
            seen.status = Some(out.status);
            seen.body = Some(out.response_body.clone());
        }
        (None, Some(c)) if c == PASS_THROUGH => seen.pass_through = true,
        (None, Some(c)) => seen.cluster = Some(c.clone()),
    }
    seen.upstream = out.upstream_request.clone().unwrap_or_default();
    seen.response_headers = out.response_headers.clone();
    seen
}

#[test]
fn every_router_case_holds_in_host_sim() {
    let file = load();
    let sim = HostSim::new().unwrap();
    let any = SocketAddr::from(([127, 0, 0, 1], 1));
    let mut failures = Vec::new();
    for (name, value) in &file.configs {
        let config: RouterConfig =
            serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap();
        let clusters = clusters_of(&config).into_iter().map(|c| (c, any)).collect();
        let boot = case_bootstrap(&config, any, any, clusters);
        let setup = parse_bootstrap(&boot.to_json().to_string(), Path::new(".")).unwrap();
        let plugin = sim.load(setup.http_filters[0].clone()).unwrap();
        setup.declare_clusters(&sim);
        for case in file.cases.iter().filter(|c| &c.config == name) {
            let out = plugin.http(&setup.routes, to_request(case));
            assert!(
                out.vm_failures.is_empty(),
                "{}: the VM failed: {:?}",
                case.name,
                out.vm_failures
            );
            if let Err(diff) = check(case, &observe(&out)) {
                failures.push(diff);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed in host-sim:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_invalid_config_is_refused_by_the_wasm_with_its_field_path_logged() {
    let file = load();
    let sim = HostSim::new().unwrap();
    let any = SocketAddr::from(([127, 0, 0, 1], 1));
    let base = case_bootstrap(
        &serde_json::from_str("{\"routes\": []}").unwrap(),
        any,
        any,
        vec![],
    );
    let setup = parse_bootstrap(&base.to_json().to_string(), Path::new(".")).unwrap();
    let mut failures = Vec::new();
    for case in &file.errors {
        let mut spec = setup.http_filters[0].clone();
        spec.configuration = case.json();
        match sim.load(spec) {
            Ok(_) => failures.push(format!("{}: accepted", case.name)),
            Err(host_sim::Error::ConfigureRejected { logs, .. }) => {
                if !logs.iter().any(|(_, l)| l.contains(&case.error)) {
                    failures.push(format!(
                        "{}: {:?} not in logs {logs:?}",
                        case.name, case.error
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_tcp_root_steers_each_connection_by_listener_port() {
    let file = load();
    let sim = HostSim::new().unwrap();
    let spec = host_sim::PluginSpec {
        root_id: "wasmgate.router.tcp".into(),
        vm_id: "wasmgate".into(),
        configuration: file.config_json("seed"),
        ..host_sim::PluginSpec::new(
            host_sim::WasmSource::File(wasmgate_harness::paths::wasm("wasmgate_router")),
            "wasmgate.router.tcp",
        )
    };
    let plugin = sim.load(spec).unwrap();
    let connect = |port| {
        plugin.tcp(host_sim::TcpConnection {
            downstream_local_port: port,
            default_cluster: Some("tcp-proxy-default".into()),
            downstream_data: vec![b"hello".to_vec()],
            ..Default::default()
        })
    };
    let routed = connect(9000);
    assert_eq!(
        routed.cluster.as_deref(),
        Some("tcp-app_9000"),
        "{:?}",
        routed.logs
    );
    assert!(!routed.closed);
    assert_eq!(routed.to_upstream, b"hello");
    let unrouted = connect(9001);
    assert!(
        unrouted.closed,
        "a port without a tcp route is closed: {:?}",
        unrouted.logs
    );
    assert!(unrouted.vm_failures.is_empty() && routed.vm_failures.is_empty());
}

#[test]
fn huge_and_odd_requests_get_defined_answers_and_never_trap() {
    let sim = HostSim::new().unwrap();
    let config = serde_json::json!({"routes": [{"http": {"host": "a.com", "rules": [
        {"matches": [{"path": {"type": "RegularExpression", "value": "/r/.*"},
                      "headers": [{"name": "x-h999", "type": "Present"}]}],
         "backend": {"service": "many", "cluster": "many"}},
        {"path": "/", "backend": {"service": "app", "cluster": "app"}}
    ]}}]});
    let spec = host_sim::PluginSpec {
        vm_id: "wasmgate".into(),
        configuration: config.to_string().into_bytes(),
        ..host_sim::PluginSpec::new(
            host_sim::WasmSource::File(wasmgate_harness::paths::wasm("wasmgate_router")),
            "wasmgate.router",
        )
    };
    let plugin = sim.load(spec).unwrap();
    let routes = host_sim::Routes::cluster_header("x-wasmgate-cluster");
    let mut many = HttpRequest::get("a.com", "/r/x");
    for i in 0..1_000 {
        many = many.header(&format!("x-h{i}"), b"v");
    }
    let long = format!("/{}", "a".repeat(9_999));
    let mut no_authority = HttpRequest::get("", "/");
    no_authority.headers.remove(":authority");
    let with = |name: &str, value: &[u8]| {
        let mut r = HttpRequest::get("a.com", "/");
        r.headers.replace(name, value);
        r
    };
    let cases: Vec<(&str, HttpRequest, u16, Option<&str>)> = vec![
        (
            "1,000 headers are read once, by name",
            many,
            200,
            Some("many"),
        ),
        (
            "a 10,000-character path",
            HttpRequest::get("a.com", &long),
            200,
            Some("app"),
        ),
        (
            "a long path through the regex",
            HttpRequest::get("a.com", &format!("/r{long}")),
            200,
            Some("app"),
        ),
        ("a missing :authority", no_authority, 404, None),
        (
            "a non-UTF-8 authority is an invalid authority",
            with(":authority", b"\xff\xfe"),
            400,
            None,
        ),
        (
            "a non-UTF-8 path",
            with(":path", b"/\xff"),
            200,
            Some("app"),
        ),
    ];
    for (name, req, status, cluster) in cases {
        let out = plugin.http(&routes, req);
        assert!(
            out.vm_failures.is_empty(),
            "{name}: the VM trapped: {:?}",
            out.vm_failures
        );
        assert_eq!(
            (out.status, out.cluster.as_deref()),
            (status, cluster),
            "{name}: {:?}",
            out.logs
        );
    }
}

#[test]
fn a_10000_route_config_configures_within_a_32_mib_memory_cap() {
    let sim = HostSim::with_config(host_sim::HostSimConfig {
        memory_limit: 32 << 20,
        ..Default::default()
    })
    .unwrap();
    let config = wasmgate_harness::synthetic_routes::router_config(1_000, 10).to_string();
    let spec = host_sim::PluginSpec {
        vm_id: "wasmgate".into(),
        configuration: config.into_bytes(),
        ..host_sim::PluginSpec::new(
            host_sim::WasmSource::File(wasmgate_harness::paths::wasm("wasmgate_router")),
            "wasmgate.router",
        )
    };
    let plugin = sim.load(spec).unwrap();
    let out = plugin.http(
        &host_sim::Routes::cluster_header("x-wasmgate-cluster"),
        HttpRequest::get("host999.example.com", "/svc4/items/7"),
    );
    assert_eq!(out.cluster.as_deref(), Some("c999-4"));
}

#[test]
fn the_router_counts_each_outcome_by_host_and_rule() {
    let config: RouterConfig = serde_json::from_value(serde_json::json!({"routes": [
        {"http": {"host": "foo.com", "rules": [
            {"path": "/teapot", "statusCode": {"code": 418}},
            {"path": "/old", "redirect": {"hostname": "new.foo.com"}},
            {"path": "/", "backend": {"service": "foo-app", "cluster": "foo-app_80"}}
        ]}},
        {"http": {"host": "*.bar.com", "rules": [{"statusCode": {"code": 503}}]}}
    ]}))
    .unwrap();
    let sim = HostSim::new().unwrap();
    let any = SocketAddr::from(([127, 0, 0, 1], 1));
    let clusters = clusters_of(&config).into_iter().map(|c| (c, any)).collect();
    let boot = case_bootstrap(&config, any, any, clusters);
    let setup = parse_bootstrap(&boot.to_json().to_string(), Path::new(".")).unwrap();
    let plugin = sim.load(setup.http_filters[0].clone()).unwrap();
    setup.declare_clusters(&sim);
    for (host, path) in [
        ("foo.com", "/teapot"),
        ("foo.com", "/teapot"),
        ("foo.com", "/old"),
        ("foo.com", "/a"),
        ("a.bar.com", "/"),
        ("nothing.org", "/"),
    ] {
        let out = plugin.http(&setup.routes, HttpRequest::get(host, path));
        assert!(out.vm_failures.is_empty(), "{:?}", out.vm_failures);
    }
    // (stat, count)
    let want = [
        ("wasmgate.router.host.foo.com.rule.0.matched", 2),
        ("wasmgate.router.host.foo.com.local_reply.418", 2),
        ("wasmgate.router.host.foo.com.rule.1.matched", 1),
        ("wasmgate.router.host.foo.com.redirect", 1),
        ("wasmgate.router.host.foo.com.rule.2.matched", 1),
        ("wasmgate.router.host._.bar.com.rule.0.matched", 1),
        ("wasmgate.router.host._.bar.com.local_reply.503", 1),
        ("wasmgate.router.no_match", 1),
    ];
    for (stat, n) in want {
        assert_eq!(
            sim.metric(stat).map(|m| m.value),
            Some(n),
            "{stat}: {:?}",
            sim.metrics()
        );
    }
}
