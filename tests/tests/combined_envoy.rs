//! The combined module (router and balancer in one .wasm) in a real Envoy, beside the router
//! and balancer modules chained as two filters: the same bootstrap otherwise, the same
//! steering of a multi-cluster route (weights, client headers ignored, cookie affinity, the
//! router's 404 for an unknown host, the balancer's 503 when no member is healthy).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::{json, Value};
use wasmgate_harness::balancer_setup::{FlipBackend, McSetup};
use wasmgate_harness::combined_filter::combine_http_filters;
use wasmgate_harness::paths::wasm;
use wasmgate_harness::{free_port, get, request, Envoy, Scratch};

fn members(names: &[(&str, u32)]) -> Value {
    names
        .iter()
        .map(|(n, w)| json!({"name": n, "cluster": format!("shop_{n}"), "weight": w}))
        .collect()
}

/// Host `shop` goes to the multi-cluster service `shop` (weights 1:2:3, cookie affinity on
/// `/sticky`); `/down` to the service `gone`, whose one member is never healthy.
fn configs() -> (Value, Value) {
    let router = json!({
        "routes": [{"http": {"host": "shop", "rules": [
            {"path": "/down", "backend": {"service": "gone"}},
            {"path": "/", "backend": {"service": "shop"}}
        ]}}],
        "multiClusterServices": {
            "shop": {"members": members(&[("a", 1), ("b", 2), ("c", 3)])},
            "gone": {"members": members(&[("z", 1)])}
        }
    });
    let balancer = json!({
        "serviceFrom": {"router": "x-wasmgate-service"},
        "services": {
            "shop": {
                "members": members(&[("a", 1), ("b", 2), ("c", 3)]),
                "affinity": {"cookie": {"name": "sid", "ttlSeconds": 600, "path": "/sticky"}}
            },
            "gone": {
                "members": members(&[("z", 1)]),
                "health": {"onAllUnhealthy": "reject",
                           "active": {"path": "/health", "intervalMs": 100, "unhealthyThreshold": 1}}
            }
        }
    });
    (router, balancer)
}

/// The balancer's bootstrap from the harness, with the router's filter before it.
fn two_filters(router: &Value, balancer: &Value, backends: &[FlipBackend]) -> RouterSetup {
    let mc = McSetup {
        configuration: balancer.to_string(),
        clusters: backends
            .iter()
            .map(|b| (format!("shop_{}", b.name), b.addr()))
            .collect(),
        tcp: None,
        concurrency: 1,
        node_metadata: None,
    };
    RouterSetup {
        mc,
        router: router.clone(),
    }
}

struct RouterSetup {
    mc: McSetup,
    router: Value,
}

fn http_filters(boot: &mut Value) -> &mut Vec<Value> {
    boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array_mut()
        .unwrap()
}

struct Running {
    envoy: Envoy,
    http: SocketAddr,
    _scratch: Scratch,
}

impl RouterSetup {
    fn start(&self, label: &str, combined: bool) -> Running {
        let scratch = Scratch::new(label).unwrap();
        let (http, admin) = (free_port().unwrap(), free_port().unwrap());
        let mut boot = self.mc.bootstrap(http, admin);
        // A missing member cluster (`shop_z`) makes Envoy answer; the balancer never picks it.
        boot["static_resources"]["clusters"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({"name": "shop_z", "type": "STATIC", "connect_timeout": "1s",
                         "load_assignment": {"cluster_name": "shop_z", "endpoints": []}}),
            );
        let filters = http_filters(&mut boot);
        let mut router = filters[0].clone();
        router["name"] = json!("wasmgate.router");
        let c = &mut router["typed_config"]["config"];
        c["name"] = json!("wasmgate.router");
        c["root_id"] = json!("wasmgate.router");
        c["vm_config"]["vm_id"] = json!("wasmgate.router");
        c["vm_config"]["code"]["local"]["filename"] =
            json!(wasm("wasmgate_router").display().to_string());
        c["configuration"]["value"] = json!(self.router.to_string());
        filters.insert(0, router);
        if combined {
            combine_http_filters(filters).unwrap();
            assert_eq!(filters.len(), 2, "one Wasm filter and Envoy's router");
        }
        let text = serde_json::to_string_pretty(&boot).unwrap();
        let path = scratch.write("envoy.yaml", &text).unwrap();
        let envoy = Envoy::start(&path, admin, 1).unwrap();
        Running {
            envoy,
            http: SocketAddr::from(([127, 0, 0, 1], http)),
            _scratch: scratch,
        }
    }
}

/// Where 600 requests went, and what the checks below saw.
fn steer(d: &Running) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for i in 0..600 {
        // Half the clients try to pick the cluster themselves: the router and balancer drop it.
        let r = if i % 2 == 0 {
            get(d.http, "shop", "/").unwrap()
        } else {
            request(
                d.http,
                "GET",
                "shop",
                "/",
                &[("x-wasmgate-cluster", b"shop_a")],
            )
            .unwrap()
        };
        assert_eq!(r.status, 200, "{}", r.text());
        *counts.entry(r.backend().unwrap_or_default()).or_default() += 1;
    }
    counts
}

fn check(d: &Running, what: &str) {
    let counts = steer(d);
    eprintln!("{what}: split of 600 over weights 1:2:3: {counts:?}");
    for (name, want) in [("a", 100u32), ("b", 200), ("c", 300)] {
        let got = counts.get(name).copied().unwrap_or(0);
        // A random pick: about 4 standard deviations of 600 draws.
        assert!(
            got.abs_diff(want) <= 50,
            "{what}: {name}: {got}, want {want}"
        );
    }
    assert_eq!(
        d.envoy.stat("wasmcustom.wasmgate.balancer.shop.c.requests"),
        counts.get("c").map(|&c| u64::from(c)),
        "{what}: the balancer's counter"
    );
    // Affinity: a cookie issued on the first request brings the replays to the same backend.
    for client in 0..6 {
        let first = get(d.http, "shop", "/sticky").unwrap();
        let backend = first.backend().unwrap();
        let cookie = first
            .headers
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("sid="))
            .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("{what}: client {client}: no cookie"));
        for _ in 0..3 {
            let r = request(
                d.http,
                "GET",
                "shop",
                "/sticky",
                &[("cookie", cookie.as_bytes())],
            )
            .unwrap();
            assert_eq!(r.backend().as_deref(), Some(backend.as_str()), "{what}");
        }
    }
    // An unknown host: the router's 404; the client's cluster header changes nothing.
    let r = request(
        d.http,
        "GET",
        "other",
        "/",
        &[("x-wasmgate-cluster", b"shop_a")],
    )
    .unwrap();
    assert_eq!(r.status, 404, "{what}");
    // A service with no healthy member: the balancer's 503 once its check has failed.
    // (Envoy's own 503 for the empty cluster lacks the balancer's reason header.)
    let rejected = (0..50).any(|_| {
        let r = get(d.http, "shop", "/down").unwrap();
        if r.status == 503 && r.header("x-wasmgate-reason") == Some("no-healthy-cluster") {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        false
    });
    assert!(rejected, "{what}: no 503 from the balancer");
}

#[test]
fn the_combined_module_steers_a_multi_cluster_route_as_router_and_balancer_do() {
    let backends: Vec<FlipBackend> = ["a", "b", "c"]
        .iter()
        .map(|n| FlipBackend::start(n).unwrap())
        .collect();
    let (router, balancer) = configs();
    let setup = two_filters(&router, &balancer, &backends);
    {
        let d = setup.start("combined-two-filters", false);
        check(&d, "router + balancer");
    }
    let d = setup.start("combined-one-module", true);
    check(&d, "combined");
}
