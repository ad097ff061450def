//! The balancer's .wasm in host-sim, on its virtual clock: distribution per worker, affinity
//! and disruption, canary, every failover path, recovery, panic, TCP, composition with the
//! router. Outcomes only: where each request went and what the client saw.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use host_sim::{
    FilterChain, HostSim, HttpRequest, Plugin, PluginSpec, PropValue, Routes, TcpConnection,
    UpstreamReply, WasmSource,
};
use serde_json::{json, Value};
use wasmgate_harness::paths::wasm;

const HEADER: &str = "x-wasmgate-cluster";

fn spec(config: &Value, root_id: &str, workers: usize) -> PluginSpec {
    PluginSpec {
        configuration: config.to_string().into_bytes(),
        root_id: root_id.into(),
        vm_id: "wasmgate".into(),
        workers,
        ..PluginSpec::new(
            WasmSource::File(wasm("wasmgate_balancer")),
            "wasmgate.balancer",
        )
    }
}

fn load(sim: &HostSim, config: &Value, workers: usize) -> Plugin {
    sim.load(spec(config, "wasmgate.balancer", workers))
        .unwrap()
}

fn member(name: &str, weight: u32, region: &str, zone: &str) -> Value {
    json!({"name": name, "cluster": format!("shop_{name}"), "weight": weight,
           "labels": {"region": region, "zone": zone}})
}

/// A config with one service `shop` named by the `Host`.
fn shop(members: Vec<Value>, extra: Value) -> Value {
    let mut svc = json!({ "members": members });
    if let (Some(s), Some(e)) = (svc.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    json!({"serviceFrom": "host", "services": {"shop": svc}})
}

fn cluster_of(plugin: &Plugin, req: HttpRequest) -> Option<String> {
    plugin.http(&Routes::cluster_header(HEADER), req).cluster
}

fn counts(
    plugin: &Plugin,
    n: usize,
    mut req: impl FnMut(usize) -> HttpRequest,
) -> BTreeMap<String, u32> {
    let mut c = BTreeMap::new();
    for i in 0..n {
        let out = plugin.http(&Routes::cluster_header(HEADER), req(i));
        let key = out
            .cluster
            .unwrap_or_else(|| format!("status {}", out.status));
        *c.entry(key).or_default() += 1;
    }
    c
}

fn pct(c: &BTreeMap<String, u32>, k: &str) -> f64 {
    let total: u32 = c.values().sum();
    100.0 * f64::from(c.get(k).copied().unwrap_or(0)) / f64::from(total.max(1))
}

#[test]
fn weighted_split_is_within_half_a_point_after_100k_requests_on_each_worker() {
    let sim = HostSim::new().unwrap();
    let plugin = load(
        &sim,
        &shop(
            vec![
                member("a", 1, "", ""),
                member("b", 2, "", ""),
                member("c", 7, "", ""),
            ],
            json!({}),
        ),
        2,
    );
    // host-sim hands streams to workers round-robin: even requests to worker 0, odd to 1.
    let mut per_worker = [BTreeMap::new(), BTreeMap::new()];
    for i in 0..100_000 {
        let c = cluster_of(&plugin, HttpRequest::get("shop", "/")).unwrap();
        *per_worker[i % 2].entry(c).or_insert(0u32) += 1;
    }
    for (w, c) in per_worker.iter().enumerate() {
        eprintln!("worker {w}: {c:?}");
        for (k, want) in [("shop_a", 10.0), ("shop_b", 20.0), ("shop_c", 70.0)] {
            assert!(
                (pct(c, k) - want).abs() <= 0.5,
                "worker {w} {k}: {:.3}%",
                pct(c, k)
            );
        }
    }
    assert_eq!(
        sim.metric("wasmgate.balancer.shop.c.requests")
            .map(|m| m.value),
        Some(70_000)
    );
}

#[test]
fn affinity_is_sticky_across_workers_and_a_removed_cluster_moves_only_its_keys() {
    let sim = HostSim::new().unwrap();
    let members = |drop: Option<&str>| -> Vec<Value> {
        [("a", 3), ("b", 1), ("c", 2), ("d", 2), ("e", 2)]
            .iter()
            .filter(|(n, _)| Some(*n) != drop)
            .map(|(n, w)| member(n, *w, "", ""))
            .collect()
    };
    let affinity = json!({"affinity": {"header": "x-user"}});
    let before = load(&sim, &shop(members(None), affinity.clone()), 2);
    let user = |k: usize| HttpRequest::get("shop", "/").header("x-user", format!("user-{k}"));
    let keys = 5_000;
    let first: Vec<String> = (0..keys)
        .map(|k| cluster_of(&before, user(k)).unwrap())
        .collect();
    // Again, now on the other worker for every key.
    cluster_of(&before, HttpRequest::get("shop", "/"));
    for (k, c) in first.iter().enumerate() {
        assert_eq!(
            &cluster_of(&before, user(k)).unwrap(),
            c,
            "key {k} moved between workers"
        );
    }
    // A config change removes "c" (share 20%).
    let after = sim
        .fresh()
        .load(spec(
            &shop(members(Some("c")), affinity),
            "wasmgate.balancer",
            2,
        ))
        .unwrap();
    let mut moved = 0;
    for (k, c) in first.iter().enumerate() {
        let now = cluster_of(&after, user(k)).unwrap();
        if &now != c {
            assert_eq!(c, "shop_c", "key {k} moved between remaining clusters");
            moved += 1;
        }
    }
    let moved_pct = 100.0 * f64::from(moved) / keys as f64;
    eprintln!("removing a 20% cluster moved {moved_pct:.2}% of {keys} keys");
    assert!(moved_pct <= 21.0, "{moved_pct}");
}

#[test]
fn canary_is_forced_by_header_or_cookie_and_takes_its_percentage() {
    let sim = HostSim::new().unwrap();
    let config = shop(
        vec![member("a", 1, "", ""), member("canary", 1, "", "")],
        json!({"canary": {"member": "canary", "header": {"name": "x-canary", "value": "yes"},
                          "cookie": {"name": "beta", "value": "1"}, "percent": 10}}),
    );
    let plugin = load(&sim, &config, 1);
    let canary = Some("shop_canary".to_string());
    assert_eq!(
        cluster_of(
            &plugin,
            HttpRequest::get("shop", "/").header("x-canary", "yes")
        ),
        canary
    );
    assert_eq!(
        cluster_of(
            &plugin,
            HttpRequest::get("shop", "/").header("cookie", "x=1; beta=1")
        ),
        canary
    );
    let c = counts(&plugin, 10_000, |_| {
        HttpRequest::get("shop", "/").header("x-canary", b"\xffno")
    });
    assert!((pct(&c, "shop_canary") - 10.0).abs() <= 0.5, "{c:?}");
}

const SID: &str = "sid";

/// Every `set-cookie` the client saw, as text.
fn set_cookies(out: &host_sim::HttpOutcome) -> Vec<String> {
    out.response_headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// The key of the balancer's `sid` cookie in a response, if it issued one (and only one).
fn issued_key(out: &host_sim::HttpOutcome) -> Option<String> {
    let ours: Vec<String> = set_cookies(out)
        .into_iter()
        .filter(|c| c.starts_with("sid="))
        .collect();
    assert!(ours.len() <= 1, "one sid cookie at most: {ours:?}");
    let c = ours.first()?;
    let (pair, attrs) = c.split_once("; ").unwrap_or((c, ""));
    assert_eq!(attrs, "Max-Age=3600; Path=/; HttpOnly", "{c}");
    Some(pair.strip_prefix("sid=").unwrap_or_default().to_string())
}

fn generating(extra: Value) -> Value {
    let mut svc = json!({"affinity": {"cookie": {"name": SID, "ttlSeconds": 3600, "path": "/"}}});
    if let (Some(s), Some(e)) = (svc.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    shop(
        vec![
            member("a", 3, "", ""),
            member("b", 1, "", ""),
            member("c", 2, "", ""),
            member("canary", 1, "", ""),
        ],
        svc,
    )
}

#[test]
fn a_first_request_without_the_cookie_gets_one_and_replays_stay_on_its_cluster_on_every_worker() {
    let sim = HostSim::new().unwrap();
    // The upstream sets a cookie of its own: the balancer's is added beside it, not over it.
    for n in ["a", "b", "c", "canary"] {
        sim.set_upstream(
            &format!("shop_{n}"),
            UpstreamReply::ok(n).with_header("set-cookie", "app=1; Path=/"),
        );
    }
    let plugin = load(&sim, &generating(json!({})), 2);
    let routes = Routes::cluster_header(HEADER);
    let mut keys = std::collections::BTreeSet::new();
    let mut first_on = BTreeMap::new();
    for client in 0..300 {
        // host-sim alternates workers; the first requests land on both.
        let first = plugin.http(
            &routes,
            HttpRequest::get("shop", "/").header("cookie", "a=1"),
        );
        let m = first.cluster.clone().unwrap();
        let key = issued_key(&first).unwrap_or_else(|| panic!("client {client}: no cookie"));
        assert_eq!(set_cookies(&first).len(), 2, "{:?}", set_cookies(&first));
        assert!(set_cookies(&first).contains(&"app=1; Path=/".to_string()));
        assert!(
            keys.insert(key.clone()),
            "client {client}: key {key} issued twice"
        );
        *first_on.entry(m.clone()).or_insert(0u32) += 1;
        for replay in 0..4 {
            let cookie = if replay % 2 == 0 {
                format!("sid={key}")
            } else {
                format!("a=1; sid={key}; b=2")
            };
            let out = plugin.http(
                &routes,
                HttpRequest::get("shop", "/x").header("cookie", cookie),
            );
            assert_eq!(
                out.cluster.as_ref(),
                Some(&m),
                "client {client} replay {replay}"
            );
            assert_eq!(
                issued_key(&out),
                None,
                "a request with the cookie gets no new one"
            );
            assert_eq!(set_cookies(&out), ["app=1; Path=/"]);
        }
    }
    eprintln!("first requests: {first_on:?}");
    // Weights 3:1:2:1 (no canary policy here): fresh keys spread over every member.
    assert_eq!(first_on.len(), 4, "fresh keys spread: {first_on:?}");
}

#[test]
fn odd_cookie_headers_never_trap_and_only_a_missing_or_empty_cookie_is_replaced() {
    let sim = HostSim::new().unwrap();
    let plugin = load(&sim, &generating(json!({})), 2);
    let routes = Routes::cluster_header(HEADER);
    let cases: [(&str, &[u8], bool); 9] = [
        ("empty value", b"sid=", true),
        ("name without =", b"sid", true),
        ("only separators", b";;; ;=", true),
        ("non-UTF-8 garbage", b"\xff\xfe=\x80", true),
        ("other cookies", b"sidx=1; xsid=2", true),
        ("quoted", b"sid=\"k1\"", false),
        ("non-UTF-8 value", b"a=1; sid=\xff\xfe", false),
        ("value with =", b"sid=a=b", false),
        ("duplicated", b"sid=k1; sid=k2", false),
    ];
    for (name, cookie, issued) in cases {
        let out = plugin.http(
            &routes,
            HttpRequest::get("shop", "/").header("cookie", cookie),
        );
        assert!(out.vm_failures.is_empty(), "{name}: {:?}", out.vm_failures);
        assert_eq!(out.status, 200, "{name}");
        assert!(out.cluster.is_some(), "{name}");
        assert_eq!(issued_key(&out).is_some(), issued, "{name}");
    }
    // Two cookie headers: the proxy hands over the first (Envoy's get_header_map_value).
    let out = plugin.http(
        &routes,
        HttpRequest::get("shop", "/")
            .header("cookie", "sid=k1")
            .header("cookie", "sid=k2"),
    );
    assert!(out.vm_failures.is_empty());
    assert_eq!(issued_key(&out), None);
    // Without `ttlSeconds` the cookie is only read: no client ever gets one.
    let plain = sim
        .fresh()
        .load(spec(
            &shop(
                vec![member("a", 1, "", ""), member("b", 1, "", "")],
                json!({"affinity": {"cookie": SID}}),
            ),
            "wasmgate.balancer",
            1,
        ))
        .unwrap();
    for _ in 0..4 {
        let out = plain.http(&routes, HttpRequest::get("shop", "/"));
        assert!(set_cookies(&out).is_empty(), "{:?}", set_cookies(&out));
    }
}

#[test]
fn the_canary_cookie_still_forces_the_canary_beside_a_generated_affinity_cookie() {
    let sim = HostSim::new().unwrap();
    let plugin = load(
        &sim,
        &generating(
            json!({"canary": {"member": "canary", "cookie": {"name": "beta", "value": "1"}}}),
        ),
        2,
    );
    let routes = Routes::cluster_header(HEADER);
    for _ in 0..20 {
        let first = plugin.http(
            &routes,
            HttpRequest::get("shop", "/").header("cookie", "beta=1"),
        );
        assert_eq!(first.cluster.as_deref(), Some("shop_canary"));
        let key = issued_key(&first).expect("a client without sid gets one, canary or not");
        let both = format!("sid={key}; beta=1");
        let out = plugin.http(
            &routes,
            HttpRequest::get("shop", "/").header("cookie", both),
        );
        assert_eq!(out.cluster.as_deref(), Some("shop_canary"));
        assert_eq!(issued_key(&out), None);
        // Out of the beta, the key keeps its own member on every worker.
        let plain = |_| {
            plugin
                .http(
                    &routes,
                    HttpRequest::get("shop", "/").header("cookie", format!("sid={key}")),
                )
                .cluster
                .unwrap()
        };
        let members: std::collections::BTreeSet<String> = (0..4).map(plain).collect();
        assert_eq!(members.len(), 1, "{members:?}");
        assert!(!members.contains("shop_canary"));
    }
}

#[test]
fn invalid_generating_cookie_configs_are_rejected_with_their_field_path() {
    let sim = HostSim::new().unwrap();
    let cases = [
        (
            json!({"name": "s id", "ttlSeconds": 60}),
            "services.shop.affinity.cookie.name",
        ),
        (
            json!({"name": "sid", "ttlSeconds": 34_560_001}),
            "services.shop.affinity.cookie.ttlSeconds",
        ),
        (
            json!({"name": "sid", "ttlSeconds": -5}),
            "services.shop.affinity.cookie.ttlSeconds",
        ),
        (
            json!({"name": "sid", "ttlSeconds": 60, "path": "shop"}),
            "services.shop.affinity.cookie.path",
        ),
        (
            json!({"name": "sid", "ttlSeconds": 60, "path": "/;Domain=x"}),
            "services.shop.affinity.cookie.path",
        ),
        (
            json!({"name": "sid", "path": "/"}),
            "services.shop.affinity.cookie.path",
        ),
        (
            json!({"name": "sid", "ttl": "1h"}),
            "services.shop.affinity.cookie.ttl",
        ),
        (json!({"ttlSeconds": 60}), "services.shop.affinity.cookie"),
        (json!(""), "services.shop.affinity.cookie"),
    ];
    for (cookie, path) in cases {
        let config = shop(
            vec![member("a", 1, "", "")],
            json!({"affinity": {"cookie": cookie}}),
        );
        match sim.load(spec(&config, "wasmgate.balancer", 1)) {
            Ok(_) => panic!("{cookie}: accepted"),
            Err(host_sim::Error::ConfigureRejected { logs, .. }) => {
                let want = format!("invalid configuration: {path}:");
                assert!(
                    logs.iter().any(|(_, l)| l.contains(&want)),
                    "{cookie}: {want:?} not in {logs:?}"
                );
            }
            Err(e) => panic!("{cookie}: {e}"),
        }
    }
}

/// Proxy in us/us-a (from node metadata). a: same zone, b: same region, c: elsewhere.
/// Clusters answer 503 while their flag is down; passive ejection after 2 errors.
#[test]
fn failover_goes_zone_then_region_then_anywhere_and_recovers_on_the_clock() {
    let sim = HostSim::new().unwrap();
    let down: BTreeMap<&str, Arc<AtomicBool>> = ["a", "b", "c"]
        .iter()
        .map(|n| (*n, Arc::new(AtomicBool::new(false))))
        .collect();
    for (n, flag) in &down {
        let flag = flag.clone();
        let name = format!("shop_{n}");
        sim.set_upstream_fn(&name.clone(), move |_| {
            if flag.load(Ordering::SeqCst) {
                UpstreamReply::status(503)
            } else {
                UpstreamReply::ok(name.clone())
            }
        });
    }
    let config = shop(
        vec![
            member("a", 1, "us", "us-a"),
            member("b", 1, "us", "us-b"),
            member("c", 1, "eu", "eu-a"),
        ],
        json!({"locality": {}, "health": {"passive": {"consecutiveErrors": 2, "baseEjectionMs": 10000, "maxEjectionMs": 60000},
                                          "onAllUnhealthy": "reject"}}),
    );
    let plugin = sim
        .load(
            spec(&config, "wasmgate.balancer", 2)
                .with_property(&["xds", "node", "metadata", "REGION"], PropValue::str("us"))
                .with_property(&["xds", "node", "metadata", "ZONE"], PropValue::str("us-a")),
        )
        .unwrap();
    let req = || HttpRequest::get("shop", "/");
    let all = |c: &BTreeMap<String, u32>| c.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        all(&counts(&plugin, 20, |_| req())),
        ["shop_a"],
        "healthy: own zone only"
    );

    down["a"].store(true, Ordering::SeqCst);
    let c = counts(&plugin, 40, |_| req());
    assert!(
        c.get("status 503").copied().unwrap_or(0) <= 2,
        "a fails at most its 2 errors: {c:?}"
    );
    assert_eq!(
        all(&counts(&plugin, 20, |_| req())),
        ["shop_b"],
        "zone out: region"
    );

    down["b"].store(true, Ordering::SeqCst);
    counts(&plugin, 10, |_| req());
    assert_eq!(
        all(&counts(&plugin, 20, |_| req())),
        ["shop_c"],
        "zone and region out: anywhere"
    );

    down["c"].store(true, Ordering::SeqCst);
    counts(&plugin, 10, |_| req());
    let out = plugin.http(&Routes::cluster_header(HEADER), req());
    assert_eq!(
        (out.status, out.cluster.as_deref()),
        (503, None),
        "all out: reject"
    );
    assert!(out.local_reply.is_some());
    assert!(sim.metric("wasmgate.balancer.shop.rejected").unwrap().value >= 1);

    // Recovery: a comes back; its ejection ends on the virtual clock alone.
    down["a"].store(false, Ordering::SeqCst);
    plugin.advance(Duration::from_secs(11));
    assert_eq!(
        all(&counts(&plugin, 20, |_| req())),
        ["shop_a"],
        "a recovered"
    );
    assert!(
        sim.metric("wasmgate.balancer.shop.b.ejections")
            .unwrap()
            .value
            >= 1
    );
    assert!(sim.metric("wasmgate.balancer.shop.failover").unwrap().value >= 20);
}

#[test]
fn active_checks_on_a_tick_take_a_cluster_out_and_bring_it_back() {
    let sim = HostSim::new().unwrap();
    let b_down = Arc::new(AtomicBool::new(false));
    {
        let b_down = b_down.clone();
        sim.set_upstream_fn("shop_b", move |r| {
            let health = r.from_http_call;
            if health && b_down.load(Ordering::SeqCst) {
                UpstreamReply::status(500)
            } else {
                UpstreamReply::ok("b")
            }
        });
    }
    let config = shop(
        vec![member("a", 1, "", ""), member("b", 1, "", "")],
        json!({"health": {"active": {"path": "/healthz", "intervalMs": 1000, "timeoutMs": 200,
                                     "healthyThreshold": 2, "unhealthyThreshold": 2}}}),
    );
    let plugin = load(&sim, &config, 2);
    let req = |_| HttpRequest::get("shop", "/");
    assert_eq!(counts(&plugin, 20, req).len(), 2);
    b_down.store(true, Ordering::SeqCst);
    plugin.advance(Duration::from_millis(1500));
    assert_eq!(
        counts(&plugin, 20, req).len(),
        2,
        "one failed check is not enough"
    );
    plugin.advance(Duration::from_secs(1));
    let c = counts(&plugin, 20, req);
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        ["shop_a"],
        "two failed checks: b out on every worker"
    );
    b_down.store(false, Ordering::SeqCst);
    plugin.advance(Duration::from_secs(1));
    assert_eq!(
        counts(&plugin, 20, req).len(),
        1,
        "one passing check is not enough"
    );
    plugin.advance(Duration::from_secs(1));
    assert_eq!(counts(&plugin, 20, req).len(), 2, "b is back");
    assert_eq!(
        sim.metric("wasmgate.balancer.shop.b.health_check_down")
            .map(|m| m.value),
        Some(1)
    );
}

#[test]
fn all_unhealthy_panics_over_every_cluster_by_default() {
    let sim = HostSim::new().unwrap();
    sim.set_upstream("shop_a", UpstreamReply::status(503));
    sim.set_upstream("shop_b", UpstreamReply::reset());
    let config = shop(
        vec![member("a", 1, "", ""), member("b", 1, "", "")],
        json!({"health": {"passive": {"consecutiveErrors": 1, "baseEjectionMs": 60000}}}),
    );
    let plugin = load(&sim, &config, 1);
    counts(&plugin, 4, |_| HttpRequest::get("shop", "/"));
    let c = counts(&plugin, 100, |_| HttpRequest::get("shop", "/"));
    assert!(
        c.contains_key("shop_a") && c.contains_key("shop_b"),
        "{c:?}"
    );
    assert!(sim.metric("wasmgate.balancer.shop.panic").unwrap().value >= 100);
    assert!(
        sim.metric("wasmgate.balancer.shop.b.ejections")
            .unwrap()
            .value
            >= 1,
        "a reset counts as an error"
    );
}

/// Four members, three failing, `maxEjectionPercent: 50`: both workers read the ejections
/// from shared data, so only two members are ever ejected at once; the third keeps its traffic
/// (and its errors) and its refused ejections are counted. When the ejections end on the
/// virtual clock, two slots open again.
#[test]
fn max_ejection_percent_caps_concurrent_ejections_across_workers_until_they_end() {
    let sim = HostSim::new().unwrap();
    for n in ["a", "b", "c"] {
        sim.set_upstream(&format!("shop_{n}"), UpstreamReply::status(503));
    }
    sim.set_upstream("shop_d", UpstreamReply::ok("d"));
    let config = shop(
        ["a", "b", "c", "d"]
            .iter()
            .map(|n| member(n, 1, "", ""))
            .collect(),
        json!({"health": {"passive": {"consecutiveErrors": 1, "baseEjectionMs": 10000,
                                      "maxEjectionMs": 10000, "maxEjectionPercent": 50}}}),
    );
    let plugin = load(&sim, &config, 2);
    let metric = |m: &str, what: &str| {
        sim.metric(&format!("wasmgate.balancer.shop.{m}.{what}"))
            .map_or(0, |m| m.value)
    };
    let total = |what: &str| {
        ["a", "b", "c", "d"]
            .iter()
            .map(|m| metric(m, what))
            .sum::<i64>()
    };
    let req = |_| HttpRequest::get("shop", "/");

    counts(&plugin, 40, req);
    assert_eq!(total("ejections"), 2, "two of four is the cap");
    let refused = total("ejections_overflow");
    assert!(refused >= 1, "the third failing member was refused");
    assert_eq!(
        metric("d", "ejections") + metric("d", "ejections_overflow"),
        0
    );
    // Every worker sees the same two ejected: the rest is d and the one left failing.
    let c = counts(&plugin, 100, req);
    let kept: Vec<&str> = ["a", "b", "c"]
        .into_iter()
        .filter(|m| metric(m, "ejections") == 0)
        .collect();
    assert_eq!(kept.len(), 1, "{c:?}");
    assert_eq!(
        c.keys().map(String::as_str).collect::<Vec<_>>(),
        [format!("shop_{}", kept[0]).as_str(), "shop_d"],
        "the failing member left in keeps its traffic"
    );
    assert!(
        total("ejections_overflow") > refused,
        "refused again on each error"
    );
    assert_eq!(total("ejections"), 2);

    // The ejections end on the clock: all four take traffic until two are ejected again.
    plugin.advance(Duration::from_secs(11));
    let c = counts(&plugin, 100, req);
    assert_eq!(c.len(), 4, "{c:?}");
    assert_eq!(total("ejections"), 4, "room again for exactly two");
    let c = counts(&plugin, 100, req);
    assert_eq!(c.len(), 2, "d and one failing member: {c:?}");
}

#[test]
fn client_routing_header_is_stripped_and_unknown_services_pass_through() {
    let sim = HostSim::new().unwrap();
    let plugin = load(&sim, &shop(vec![member("a", 1, "", "")], json!({})), 1);
    let out = plugin.http(
        &Routes::cluster_header(HEADER),
        HttpRequest::get("other", "/").header(HEADER, "shop_a"),
    );
    assert_eq!(out.cluster, None);
    assert_eq!(out.upstream_header(HEADER), None);
    let out = plugin.http(
        &Routes::cluster_header(HEADER),
        HttpRequest::get("SHOP:8080", "/").header(HEADER, b"\xff"),
    );
    assert_eq!(out.cluster.as_deref(), Some("shop_a"));
}

#[test]
fn a_tcp_connection_is_steered_through_filter_state() {
    let sim = HostSim::new().unwrap();
    let mut config = shop(
        vec![member("a", 1, "", ""), member("b", 1, "", "")],
        json!({"affinity": "sourceAddress"}),
    );
    config["tcpPorts"] = json!({"9000": "shop"});
    let plugin = sim.load(spec(&config, "wasmgate.balancer.tcp", 1)).unwrap();
    let conn = |src: &str, port: u16| TcpConnection {
        source_address: src.into(),
        downstream_local_port: port,
        default_cluster: Some("fallback".into()),
        ..Default::default()
    };
    let first = plugin.tcp(conn("10.0.0.7:1000", 9000)).cluster.unwrap();
    assert!(first.starts_with("shop_"), "{first}");
    for port in 1001..1010 {
        assert_eq!(
            plugin
                .tcp(conn(&format!("10.0.0.7:{port}"), 9000))
                .cluster
                .unwrap(),
            first,
            "same client, same cluster"
        );
    }
    assert_eq!(
        plugin.tcp(conn("10.0.0.7:1000", 9001)).cluster.as_deref(),
        Some("fallback"),
        "other ports untouched"
    );
}

#[test]
fn composed_after_the_router_the_service_becomes_a_member_cluster() {
    let sim = HostSim::new().unwrap();
    let members = vec![member("a", 1, "", ""), member("b", 3, "", "")];
    // The router resolves foo.com/ to the multi-cluster service `shop` and hands it over in
    // its service header; the balancer picks the member cluster.
    let router_config = json!({
        "routes": [{"http": {"host": "foo.com", "rules": [
            {"path": "/legacy", "backend": {"service": "legacy", "cluster": "legacy"}},
            {"path": "/", "backend": {"service": "shop"}}
        ]}}],
        "multiClusterServices": {"shop": {"members": members.clone()}}
    });
    let router = sim
        .load(PluginSpec {
            configuration: router_config.to_string().into_bytes(),
            vm_id: "wasmgate".into(),
            ..PluginSpec::new(WasmSource::File(wasm("wasmgate_router")), "wasmgate.router")
        })
        .unwrap();
    let mut config = shop(members, json!({}));
    config["serviceFrom"] = json!({"router": "x-wasmgate-service"});
    let balancer = load(&sim, &config, 1);
    let chain = FilterChain::new(&sim, vec![&router, &balancer]);
    let mut c = BTreeMap::new();
    for _ in 0..400 {
        let req = HttpRequest::get("foo.com", "/x").header(HEADER, "shop_a");
        let out = chain.run_one(&Routes::cluster_header(HEADER), req);
        *c.entry(out.cluster.unwrap_or_default()).or_insert(0u32) += 1;
    }
    assert_eq!(c.get("shop_a"), Some(&100), "{c:?}");
    assert_eq!(c.get("shop_b"), Some(&300), "{c:?}");
    // A plain backend keeps the cluster the router chose, whatever service a client claims.
    let req = HttpRequest::get("foo.com", "/legacy").header("x-wasmgate-service", "shop");
    let out = chain.run_one(&Routes::cluster_header(HEADER), req);
    assert_eq!(out.cluster.as_deref(), Some("legacy"));
}
