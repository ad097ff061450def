//! The combined module (router and balancer in one .wasm) in host-sim, beside the router and
//! balancer modules chained as two filters: the same requests, on the same virtual clock,
//! must end the same (cluster, status, headers, filter state), with no more host calls.

use host_sim::{FilterChain, HostSim, HttpOutcome, HttpRequest, Plugin, PluginSpec, Routes};
use serde_json::{json, Value};
use wasmgate_harness::paths::wasm;

const HEADER: &str = "x-wasmgate-cluster";

fn member(name: &str, weight: u32) -> Value {
    json!({"name": name, "cluster": format!("shop_{name}"), "weight": weight})
}

/// foo.com: `/legacy` to a plain cluster, `/old` redirected, `/` to the multi-cluster `shop`
/// (two members and a canary forced by header, cookie affinity). Nothing random: the same
/// requests must reach the same clusters in two fresh hosts.
fn router_config() -> Value {
    json!({
        "routes": [{"http": {"host": "foo.com", "rules": [
            {"path": "/legacy", "backend": {"service": "legacy", "cluster": "legacy"}},
            {"path": "/old", "redirect": {"path": {"type": "ReplaceFullPath", "value": "/new"},
                                          "statusCode": 301}},
            {"path": "/", "backend": {"service": "shop"},
             "responseHeaders": {"set": [{"name": "x-served-by", "value": "wasmgate"}]}}
        ]}}],
        "multiClusterServices": {"shop": {"members": [member("a", 1), member("b", 3)]}}
    })
}

fn balancer_config() -> Value {
    json!({
        "serviceFrom": {"router": "x-wasmgate-service"},
        "services": {"shop": {
            "members": [member("a", 1), member("b", 3), member("canary", 1)],
            "canary": {"member": "canary", "header": {"name": "x-canary", "value": "yes"}},
            "affinity": {"cookie": "sid"}
        }}
    })
}

fn load(sim: &HostSim, module: &str, root_id: &str, config: &Value) -> Plugin {
    sim.load(PluginSpec {
        configuration: config.to_string().into_bytes(),
        vm_id: module.into(),
        ..PluginSpec::new(host_sim::WasmSource::File(wasm(module)), root_id)
    })
    .unwrap()
}

fn combined_config() -> Value {
    json!({"router": router_config(), "balancer": balancer_config()})
}

/// What the client and the upstream saw, without what differs by module (logs, call counts).
fn seen(out: &HttpOutcome) -> Value {
    // Envoy's request id counts streams host-wide, not per filter chain.
    let text = |v: &[(String, Vec<u8>)]| {
        v.iter()
            .filter(|(k, _)| k != "x-request-id")
            .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v)))
            .collect::<Vec<_>>()
    };
    json!({
        "status": out.status,
        "cluster": out.cluster,
        "response": text(&out.response_headers),
        "upstream": out.upstream_request.as_deref().map(text),
        "filter_state": text(&out.filter_state),
        "vm_failures": out.vm_failures,
    })
}

fn requests() -> Vec<(&'static str, HttpRequest)> {
    vec![
        (
            "multi-cluster, client's cluster header ignored",
            HttpRequest::get("foo.com", "/x")
                .header(HEADER, "shop_a")
                .header("cookie", "sid=client-3"),
        ),
        (
            "multi-cluster, affinity cookie",
            HttpRequest::get("foo.com", "/x").header("cookie", "sid=client-7"),
        ),
        (
            "multi-cluster, canary header",
            HttpRequest::get("foo.com", "/x").header("x-canary", "yes"),
        ),
        (
            "plain backend, a claimed service ignored",
            HttpRequest::get("foo.com", "/legacy").header("x-wasmgate-service", "shop"),
        ),
        ("redirect", HttpRequest::get("foo.com", "/old")),
        ("unknown host", HttpRequest::get("bar.com", "/x")),
        (
            "odd header bytes",
            HttpRequest::get("foo.com", "/x").header("cookie", b"\xff\x00; sid=client-9"),
        ),
    ]
}

#[test]
fn the_combined_module_ends_every_request_as_router_then_balancer_do_with_no_more_host_calls() {
    let two = HostSim::new().unwrap();
    let router = load(&two, "wasmgate_router", "wasmgate.router", &router_config());
    let balancer = load(
        &two,
        "wasmgate_balancer",
        "wasmgate.balancer",
        &balancer_config(),
    );
    let chain = FilterChain::new(&two, vec![&router, &balancer]);
    let one = HostSim::new().unwrap();
    let combined = load(
        &one,
        "wasmgate_combined",
        "wasmgate.combined",
        &combined_config(),
    );
    let routes = Routes::cluster_header(HEADER);
    for round in 0..50 {
        for (name, req) in requests() {
            let a = chain.run_one(&routes, req.clone());
            let b = combined.http(&routes, req);
            assert_eq!(seen(&b), seen(&a), "round {round}: {name}");
            assert!(
                b.host_calls <= a.host_calls,
                "{name}: combined {} host calls, two filters {}",
                b.host_calls,
                a.host_calls
            );
            if round == 0 {
                eprintln!(
                    "{name}: host calls two filters {}, combined {}",
                    a.host_calls, b.host_calls
                );
            }
        }
    }
    // Without affinity the pick is random: the weights (1:3) hold through the combined
    // module as through the two filters.
    for (what, run) in [
        (
            "two filters",
            &(|r| chain.run_one(&routes, r)) as &dyn Fn(HttpRequest) -> HttpOutcome,
        ),
        ("combined", &|r| combined.http(&routes, r)),
    ] {
        let b = (0..4000)
            .filter(|_| run(HttpRequest::get("foo.com", "/x")).cluster.as_deref() == Some("shop_b"))
            .count();
        assert!(b.abs_diff(3000) <= 120, "{what}: {b} of 4000 to b");
    }
}

#[test]
fn a_bad_half_rejects_the_whole_config_with_its_field_path() {
    let sim = HostSim::new().unwrap();
    let mut bad_router = combined_config();
    bad_router["router"]["routes"][0]["http"]["host"] = json!("bad host!");
    let mut bad_balancer = combined_config();
    bad_balancer["balancer"]["services"]["shop"]["members"] = json!([]);
    let mut extra = combined_config();
    extra["unknown"] = json!(1);
    let cases = [
        (
            json!({"router": router_config()}),
            "invalid configuration: ",
        ),
        (
            bad_router,
            "invalid configuration: router.routes[0].http.host",
        ),
        (
            bad_balancer,
            "invalid configuration: balancer.services.shop.members",
        ),
        (extra, "unknown"),
    ];
    for (config, want) in cases {
        let spec = PluginSpec {
            configuration: config.to_string().into_bytes(),
            ..PluginSpec::new(
                host_sim::WasmSource::File(wasm("wasmgate_combined")),
                "wasmgate.combined",
            )
        };
        match sim.load(spec) {
            Ok(_) => panic!("{config}: accepted"),
            Err(host_sim::Error::ConfigureRejected { logs, .. }) => assert!(
                logs.iter().any(|(_, l)| l.contains(want)),
                "{want:?} not in {logs:?}"
            ),
            Err(e) => panic!("{config}: {e}"),
        }
    }
}

#[test]
fn a_tcp_root_is_refused_the_combined_module_serves_http_only() {
    let sim = HostSim::new().unwrap();
    let spec = PluginSpec {
        configuration: combined_config().to_string().into_bytes(),
        root_id: "wasmgate.combined.tcp".into(),
        ..PluginSpec::new(
            host_sim::WasmSource::File(wasm("wasmgate_combined")),
            "wasmgate.combined",
        )
    };
    match sim.load(spec) {
        Err(host_sim::Error::ConfigureRejected { logs, .. }) => assert!(
            logs.iter().any(|(_, l)| l.contains("serves HTTP only")),
            "{logs:?}"
        ),
        other => panic!("expected a rejection, got {:?}", other.map(|_| ())),
    }
}
