//! The generator's output running in a real Envoy: every example's bootstraps validate (the
//! filters' one also loads in host-sim), and traffic through the seed's multi-cluster example and the Gateway API
//! example reaches the right backends, through the filters and through the native fallback
//! alike.

use std::collections::BTreeMap;

use wasmgate_harness::deploy::{deploy, Member};
use wasmgate_harness::paths::{examples, wasm};
use wasmgate_harness::{get, request, Backend, Envoy, Scratch};

#[test]
fn every_example_bootstrap_and_its_native_twin_validate_in_envoy() {
    let mut dirs: Vec<_> = std::fs::read_dir(examples())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let scratch = Scratch::new("gen-validate").unwrap();
    for dir in dirs {
        let inputs = wasmgate::load(std::slice::from_ref(&dir)).unwrap();
        let opts = wasmgate::Options {
            router_wasm: wasm("wasmgate_router"),
            balancer_wasm: wasm("wasmgate_balancer"),
            ..Default::default()
        };
        let out = wasmgate::generate(&inputs, &opts).unwrap();
        for (name, text) in out.files().unwrap() {
            if !name.starts_with("envoy") {
                continue;
            }
            let label = dir.file_name().unwrap().to_string_lossy();
            let path = scratch.write(&format!("{label}-{name}"), &text).unwrap();
            if let Err(e) = Envoy::validate(&path) {
                panic!("{label}/{name} does not validate:\n{e}");
            }
            // host-sim runs the filters' bootstrap (`host-sim run --envoy-config`); the native
            // one has no filters to run.
            if name != "envoy.yaml" {
                continue;
            }
            if let Err(e) = host_sim::bootstrap_reader::load_bootstrap(&path) {
                panic!("{label}/{name} does not load in host-sim: {e}");
            }
        }
    }
}

fn member(name: &str, service: &str, port: u16, backend: &Backend) -> Member {
    Member {
        name: name.into(),
        endpoints: vec![(service.into(), port, backend.endpoint())],
        ..Member::default()
    }
}

#[test]
fn the_seeds_multicluster_ingress_spreads_over_the_us_clusters_only() {
    let us_east = Backend::start("us-east").unwrap();
    let us_west = Backend::start("us-west").unwrap();
    let eu_west = Backend::start("eu-west").unwrap();
    let ex = examples().join("seed-multicluster");
    let mut members = vec![
        member("us-east", "my-mc-service", 80, &us_east),
        member("us-west", "my-mc-service", 80, &us_west),
        member("eu-west", "my-mc-service", 80, &eu_west),
    ];
    members[0].labels = vec![("region".into(), "us".into())];
    members[1].labels = vec![("region".into(), "us".into())];
    members[2].labels = vec![("region".into(), "eu".into())];
    let d = deploy(
        "seed-mc",
        &[
            ex.join("multiclusterservice.yaml"),
            ex.join("multiclusteringress.yaml"),
        ],
        &members,
        &[],
    )
    .unwrap();
    let mut seen = BTreeMap::new();
    for host in ["foo.bar.com", "anything.else"] {
        for _ in 0..30 {
            let r = get(d.http, host, "/cart").unwrap();
            assert_eq!(r.status, 200, "{host}: {}", r.text());
            *seen.entry(r.backend().unwrap_or_default()).or_insert(0) += 1;
        }
    }
    // One worker, equal weights: smooth round robin alternates exactly.
    assert_eq!(
        seen,
        BTreeMap::from([("us-east".to_string(), 30), ("us-west".to_string(), 30)]),
        "{}",
        d.envoy.log_text()
    );
}

fn gateway_backends() -> Vec<Backend> {
    ["eu-1", "us-1", "cart-v1", "cart-v2", "assets"]
        .iter()
        .map(|n| Backend::start(n).unwrap())
        .collect()
}

fn gateway_members(b: &[Backend]) -> Vec<Member> {
    vec![
        Member {
            name: "eu-1".into(),
            labels: vec![("region".into(), "eu".into())],
            endpoints: vec![
                ("storefront".into(), 80, b[0].endpoint()),
                ("cart-v1".into(), 8080, b[2].endpoint()),
                ("cart-v2".into(), 8080, b[3].endpoint()),
                ("assets".into(), 80, b[4].endpoint()),
            ],
        },
        Member {
            name: "us-1".into(),
            labels: vec![("region".into(), "us".into())],
            endpoints: vec![("storefront".into(), 80, b[1].endpoint())],
        },
    ]
}

/// What the Gateway API example promises, checked against whatever Envoy `d` runs.
fn check_gateway_example(at: std::net::SocketAddr, label: &str, multi_cluster: bool) {
    let v2 = request(
        at,
        "GET",
        "shop.example.com",
        "/api/cart/1",
        &[("x-version", b"v2")],
    )
    .unwrap();
    assert_eq!(
        v2.backend().as_deref(),
        Some("cart-v2"),
        "{label}: the x-version header forces v2"
    );

    // Gateway API: a redirect without port or scheme names the listener's port (declared
    // 8080). Envoy's native redirect keeps the Host header's (none here): the native
    // routes are one table for every listener and cannot know which one a request used.
    let old = get(at, "shop.example.com", "/old-shop/item?id=3").unwrap();
    let location = if label == "wasm filters" {
        "http://shop.example.com:8080/item?id=3"
    } else {
        "http://shop.example.com/item?id=3"
    };
    assert_eq!(
        (old.status, old.header("location")),
        (301, Some(location)),
        "{label}"
    );

    let asset = get(at, "shop.example.com", "/static/site.css").unwrap();
    assert_eq!(asset.backend().as_deref(), Some("assets"), "{label}");
    assert_eq!(
        asset.json()["path"],
        "/assets/site.css",
        "{label}: prefix rewrite"
    );
    assert_eq!(
        asset.header("cache-control"),
        Some("max-age=3600"),
        "{label}"
    );

    let mut carts = BTreeMap::new();
    for _ in 0..200 {
        let r = get(at, "shop.example.com", "/api/cart").unwrap();
        let echo = r.json();
        let gateway_header = echo["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|h| h[0] == "x-gateway" && h[1] == "wasmgate");
        assert!(
            gateway_header,
            "{label}: the request header modifier applies"
        );
        *carts.entry(r.backend().unwrap_or_default()).or_insert(0) += 1;
    }
    assert_eq!(
        carts.keys().cloned().collect::<Vec<_>>(),
        ["cart-v1", "cart-v2"],
        "{label}: 90/10 split {carts:?}"
    );
    assert!(carts["cart-v1"] > carts["cart-v2"], "{label}: {carts:?}");

    let mut fronts = BTreeMap::new();
    for host in ["shop.example.com", "www.shop.example.com"] {
        for _ in 0..10 {
            let r = get(at, host, "/").unwrap();
            *fronts.entry(r.backend().unwrap_or_default()).or_insert(0) += 1;
        }
    }
    let want: BTreeMap<String, i32> = if multi_cluster {
        BTreeMap::from([("eu-1".into(), 10), ("us-1".into(), 10)])
    } else {
        fronts.clone()
    };
    assert_eq!(
        fronts, want,
        "{label}: the storefront spreads over both clusters"
    );
    assert!(
        fronts.keys().all(|k| k == "eu-1" || k == "us-1"),
        "{label}: {fronts:?}"
    );

    let miss = get(at, "unknown.example.org", "/").unwrap();
    assert_eq!(miss.status, 404, "{label}");
}

#[test]
fn the_gateway_api_example_routes_as_written_with_the_filters_and_natively() {
    let backends = gateway_backends();
    let ex = examples().join("gateway-api");
    let d = deploy(
        "gateway-api",
        &[
            ex.join("gateway.yaml"),
            ex.join("httproutes.yaml"),
            ex.join("services.yaml"),
        ],
        &gateway_members(&backends),
        &[8080],
    )
    .unwrap();
    let at = d.ports[&8080];
    check_gateway_example(at, "wasm filters", true);

    // The native fallback: same listeners and clusters, Envoy's own routes, no Wasm.
    let (_native, scratch) = d.restart_native().unwrap();
    check_gateway_example(at, "native routes", false);
    drop(scratch);
}
