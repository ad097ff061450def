//! The balancer alone in a real Envoy: three local backends stand in for three member
//! clusters of one multi-cluster service.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;
use wasmgate_harness::balancer_setup::{FlipBackend, McSetup};
use wasmgate_harness::{free_port, get, request, TcpBackend};

fn members(names: &[(&str, u32)]) -> serde_json::Value {
    names
        .iter()
        .map(|(n, w)| json!({"name": n, "cluster": format!("shop_{n}"), "weight": w}))
        .collect()
}

fn tally(counts: &mut BTreeMap<String, u32>, backend: Option<String>) {
    *counts
        .entry(backend.unwrap_or_else(|| "-".into()))
        .or_default() += 1;
}

/// Backends `a`, `b` and `c`, standing in for three member clusters.
fn three_backends() -> Vec<FlipBackend> {
    ["a", "b", "c"]
        .iter()
        .map(|n| FlipBackend::start(n).unwrap())
        .collect()
}

/// The balancer alone for service `shop`, with one Envoy cluster `shop_<name>` per backend.
fn shop_setup(config: &serde_json::Value, backends: &[FlipBackend], concurrency: u32) -> McSetup {
    McSetup {
        configuration: config.to_string(),
        clusters: backends
            .iter()
            .map(|b| (format!("shop_{}", b.name), b.addr()))
            .collect(),
        tcp: None,
        concurrency,
        node_metadata: None,
    }
}

#[test]
fn split_follows_the_weights_and_clients_cannot_pick_the_cluster() {
    let backends = three_backends();
    let config = json!({
        "serviceFrom": "host",
        "services": {"shop": {"members": members(&[("a", 1), ("b", 2), ("c", 3)])}}
    });
    let setup = shop_setup(&config, &backends, 1);
    let d = setup.start("mc-split").unwrap();
    let mut counts = BTreeMap::new();
    for _ in 0..600 {
        let r = get(d.http, "shop", "/").unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        tally(&mut counts, r.backend());
    }
    eprintln!("split of 600 requests over weights 1:2:3: {counts:?}");
    for (name, want) in [("a", 100), ("b", 200), ("c", 300)] {
        let got = counts.get(name).copied().unwrap_or(0);
        assert!(
            got.abs_diff(want) <= 6,
            "{name}: {got} requests, want {want}: {counts:?}"
        );
    }
    // The counters are in Envoy's /stats.
    let requests = d.envoy.stat("wasmcustom.wasmgate.balancer.shop.c.requests");
    assert_eq!(
        requests,
        counts.get("c").map(|&c| u64::from(c)),
        "c's request counter"
    );

    // A client-sent routing header is removed: an unknown service gets no route (404).
    let r = request(
        d.http,
        "GET",
        "other",
        "/",
        &[("x-wasmgate-cluster", b"shop_a")],
    )
    .unwrap();
    assert_eq!(r.status, 404);
    // And it cannot override the pick for a known service either.
    let mut counts = BTreeMap::new();
    for _ in 0..60 {
        let r = request(
            d.http,
            "GET",
            "shop",
            "/",
            &[("x-wasmgate-cluster", b"shop_a")],
        )
        .unwrap();
        tally(&mut counts, r.backend());
    }
    assert!(counts.get("c").copied().unwrap_or(0) >= 20, "{counts:?}");
}

#[test]
fn a_stopped_cluster_is_failed_over_with_few_errors_and_gets_traffic_back_when_restored() {
    let mut backends = three_backends();
    let config = json!({
        "serviceFrom": {"header": "x-service"},
        "services": {"shop": {
            "members": members(&[("a", 1), ("b", 1), ("c", 1)]),
            "health": {
                "active": {"path": "/healthz", "intervalMs": 200, "timeoutMs": 200, "healthyThreshold": 1, "unhealthyThreshold": 2},
                "passive": {"consecutiveErrors": 3, "baseEjectionMs": 1000, "maxEjectionMs": 5000}
            }
        }}
    });
    // Two workers, two VMs: they agree on health only through shared data.
    let setup = shop_setup(&config, &backends, 2);
    let d = setup.start("mc-failover").unwrap();
    let send = || {
        request(
            d.http,
            "GET",
            "shop.example",
            "/",
            &[("x-service", b"shop")],
        )
        .unwrap()
    };
    let pace = || std::thread::sleep(Duration::from_millis(5));

    let mut before = BTreeMap::new();
    for _ in 0..90 {
        let r = send();
        assert_eq!(r.status, 200);
        tally(&mut before, r.backend());
    }
    assert_eq!(before.len(), 3, "all three clusters serve: {before:?}");

    // b goes away under steady traffic.
    backends[1].stop();
    let mut failed = 0;
    let mut during = BTreeMap::new();
    for _ in 0..400 {
        let r = send();
        if r.status != 200 {
            failed += 1;
        }
        tally(&mut during, r.backend());
        pace();
    }
    eprintln!("b stopped: {failed} failed requests of 400; served by {during:?}");
    assert!(
        failed <= 10,
        "{failed} requests failed while failing over; log:\n{}",
        d.envoy.log_text()
    );
    let mut settled = BTreeMap::new();
    for _ in 0..100 {
        let r = send();
        assert_eq!(r.status, 200, "after failover every request succeeds");
        tally(&mut settled, r.backend());
    }
    assert!(!settled.contains_key("b"), "{settled:?}");
    assert!(
        settled.get("a").copied().unwrap_or(0) >= 30
            && settled.get("c").copied().unwrap_or(0) >= 30,
        "{settled:?}"
    );

    // b is restored: active checks bring it back and traffic returns.
    backends[1].restore().unwrap();
    let mut back_after = None;
    for i in 0..3000 {
        let r = send();
        assert_eq!(r.status, 200);
        if r.backend().as_deref() == Some("b") {
            back_after = Some(i);
            break;
        }
        pace();
    }
    let back_after = back_after
        .unwrap_or_else(|| panic!("b never got traffic back; log:\n{}", d.envoy.log_text()));
    eprintln!("b restored: traffic returned after {back_after} requests");
    let mut after = BTreeMap::new();
    for _ in 0..90 {
        let r = send();
        assert_eq!(r.status, 200);
        tally(&mut after, r.backend());
    }
    assert!(
        after.get("b").copied().unwrap_or(0) >= 20,
        "b takes its share again: {after:?}"
    );
    let ejections = d
        .envoy
        .stat("wasmcustom.wasmgate.balancer.shop.b.ejections")
        .unwrap_or(0);
    let down = d
        .envoy
        .stat("wasmcustom.wasmgate.balancer.shop.b.health_check_down")
        .unwrap_or(0);
    eprintln!("b: {ejections} passive ejections, {down} active down verdicts");
    assert!(
        ejections + down >= 1,
        "b was taken out by some health signal"
    );
}

#[test]
fn a_tcp_connection_reaches_the_chosen_cluster() {
    let tcp: Vec<TcpBackend> = ["tcp-a", "tcp-b", "tcp-c"]
        .iter()
        .map(|n| TcpBackend::start(n).unwrap())
        .collect();
    let port = free_port().unwrap();
    let region = |r: &str| json!({"region": r});
    let config = json!({
        "serviceFrom": "host",
        "locality": {"region": "eu"},
        "tcpPorts": {port.to_string(): "db"},
        "services": {"db": {
            "members": [
                {"name": "a", "cluster": "tcp_a", "labels": region("us")},
                {"name": "b", "cluster": "tcp_b", "labels": region("eu")},
                {"name": "c", "cluster": "tcp_c", "labels": region("ap")}
            ],
            "locality": {}
        }}
    });
    let setup = McSetup {
        configuration: config.to_string(),
        clusters: vec![
            ("tcp_a".into(), tcp[0].endpoint().parse().unwrap()),
            ("tcp_b".into(), tcp[1].endpoint().parse().unwrap()),
            ("tcp_c".into(), tcp[2].endpoint().parse().unwrap()),
        ],
        // tcp_proxy's own cluster is a: reaching b proves the balancer steered.
        tcp: Some((port, "tcp_a".into())),
        concurrency: 1,
        node_metadata: None,
    };
    let d = setup.start("mc-tcp").unwrap();
    for _ in 0..5 {
        let conn = TcpStream::connect(d.tcp.unwrap()).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut greeting = String::new();
        BufReader::new(conn).read_line(&mut greeting).unwrap();
        assert_eq!(
            greeting,
            "tcp-b\n",
            "the same-region member; log:\n{}",
            d.envoy.log_text()
        );
    }
    assert_eq!(
        d.envoy.stat("wasmcustom.wasmgate.balancer.db.b.requests"),
        Some(5)
    );
}

#[test]
fn locality_comes_from_node_metadata_and_prefers_the_own_region() {
    let backends = three_backends();
    let config = json!({
        "serviceFrom": "host",
        "services": {"shop": {
            "members": [
                {"name": "a", "cluster": "shop_a", "labels": {"region": "us"}},
                {"name": "b", "cluster": "shop_b", "labels": {"region": "eu"}},
                {"name": "c", "cluster": "shop_c", "labels": {"region": "ap"}}
            ],
            "locality": {}
        }}
    });
    let setup = McSetup {
        node_metadata: Some(json!({"REGION": "ap"})),
        ..shop_setup(&config, &backends, 1)
    };
    let d = setup.start("mc-locality").unwrap();
    let mut counts = BTreeMap::new();
    for _ in 0..30 {
        tally(&mut counts, get(d.http, "shop", "/").unwrap().backend());
    }
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        ["c"],
        "log:\n{}",
        d.envoy.log_text()
    );
}

#[test]
fn a_client_without_the_affinity_cookie_gets_one_through_envoy_and_replays_reach_the_same_backend()
{
    let backends = three_backends();
    let config = json!({
        "serviceFrom": "host",
        "services": {"shop": {
            "members": members(&[("a", 1), ("b", 1), ("c", 1)]),
            "affinity": {"cookie": {"name": "sid", "ttlSeconds": 600, "path": "/"}}
        }}
    });
    let setup = shop_setup(&config, &backends, 2);
    let d = setup.start("mc-cookie").unwrap();
    let sid = |r: &wasmgate_harness::Response| -> Vec<String> {
        r.headers
            .iter()
            .filter(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("sid="))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut first_on = BTreeMap::new();
    for client in 0..12 {
        let first = get(d.http, "shop", "/").unwrap();
        assert_eq!(first.status, 200, "{}", first.text());
        let backend = first.backend().unwrap();
        let cookies = sid(&first);
        assert_eq!(cookies.len(), 1, "client {client}: {:?}", first.headers);
        let (pair, attrs) = cookies[0].split_once("; ").unwrap();
        assert_eq!(attrs, "Max-Age=600; Path=/; HttpOnly");
        tally(&mut first_on, Some(backend.clone()));
        for _ in 0..3 {
            let r = request(d.http, "GET", "shop", "/", &[("cookie", pair.as_bytes())]).unwrap();
            assert_eq!(
                r.backend().as_deref(),
                Some(backend.as_str()),
                "client {client}"
            );
            assert!(
                sid(&r).is_empty(),
                "a request with the cookie gets no new one"
            );
        }
    }
    eprintln!("first requests of 12 clients: {first_on:?}");
}
