//! The balancer's decisions over a mock proxy (`mock_host.rs`): what the `.wasm` does per
//! callback, natively. The same behaviour runs through the compiled module in host-sim
//! (`tests/tests/balancer_hostsim.rs`) and Envoy (`tests/tests/balancer_envoy.rs`).

use std::rc::Rc;

use serde_json::{json, Value};

use super::mock_host::MockHost;
use super::store::{read_health, CAS_RETRIES};
use super::{
    tcp_connection, BalancerStream, BalancerWorker, HealthChecker, Locality, LogLevel, MemoryStore,
    Picked, StreamAction,
};

const HEADER: &str = "x-wasmgate-cluster";

type Worker = BalancerWorker<MockHost>;

fn member(name: &str, region: &str, zone: &str) -> Value {
    json!({"name": name, "cluster": format!("shop_{name}"), "weight": 1,
           "labels": {"region": region, "zone": zone}})
}

/// `shop` with members a (us-0), b (us-1), c (eu-0) and `extra` fields.
fn shop(extra: Value) -> Value {
    let mut svc = json!({"members": [member("a", "us", "us-0"), member("b", "us", "us-1"),
                                     member("c", "eu", "eu-0")]});
    if let (Some(s), Some(e)) = (svc.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    svc
}

/// A balancer at us/us-0 naming its service by `:authority`.
fn config(services: Value) -> Vec<u8> {
    json!({"serviceFrom": "host", "clusterHeader": HEADER,
           "locality": {"region": "us", "zone": "us-0"}, "services": services})
    .to_string()
    .into_bytes()
}

fn worker(store: &Rc<MemoryStore>, seed: u64, config: &[u8]) -> (Worker, HealthChecker) {
    BalancerWorker::configure(MockHost::new(store, seed), config).unwrap()
}

fn one(svc: Value) -> (Rc<MemoryStore>, Worker, HealthChecker) {
    let store = Rc::new(MemoryStore::new());
    let (w, c) = worker(&store, 7, &config(json!({ "shop": svc })));
    (store, w, c)
}

/// One request to `shop` through the stream's callbacks; the upstream answers `status`
/// (`None`: the stream ends without a response). Returns the cluster steered to.
fn request(
    w: &Worker,
    extra: &[(&str, &str)],
    status: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let host = w.host();
    let mut headers = vec![(":authority", "shop")];
    headers.extend_from_slice(extra);
    host.start_request(&headers);
    let mut s = BalancerStream::new();
    let action = s.on_request_headers(w);
    let cluster = host.request_value(HEADER);
    if action == StreamAction::Continue {
        if let Some(st) = status(cluster.as_deref().unwrap_or("")) {
            host.set_response(&[(":status", st.as_str())]);
            s.on_response_headers(w);
        }
    }
    s.on_log(w);
    cluster
}

fn ok(_: &str) -> Option<String> {
    Some("200".into())
}

/// Answers every check sent so far with `status` (`None`: no headers, a failed call).
fn answer_all(w: &Worker, c: &mut HealthChecker, status: Option<&str>) {
    let tokens: Vec<u32> = w.host().checks.borrow().iter().map(|s| s.token).collect();
    *w.host().check_status.borrow_mut() = status.map(|s| s.as_bytes().to_vec());
    for t in tokens {
        c.on_response(w, t, status.is_some());
    }
}

fn errors_of(store: &MemoryStore, w: &Worker, member: &str) -> u32 {
    let (st, _) = read_health(store, w.balancer().health_key(0));
    st.get(member).map_or(0, |h| h.errors)
}

#[test]
fn one_worker_holds_the_check_lease_renews_it_and_another_takes_over_when_it_expires() {
    let store = Rc::new(MemoryStore::new());
    // Checks every second: the lease lasts three ticks.
    let cfg = config(
        json!({"shop": shop(json!({"health": {"active": {"path": "/healthz", "intervalMs": 1000}}}))}),
    );
    let (a, mut ca) = worker(&store, 2, &cfg);
    let (b, mut cb) = worker(&store, 4, &cfg);
    let table = [
        ("the first worker to tick takes the lease", 'a', 0, true),
        (
            "another worker leaves it while it is held",
            'b',
            1000,
            false,
        ),
        ("the holder renews it", 'a', 2000, true),
        ("it is held until the renewal expires", 'b', 4999, false),
        ("expired: another worker takes over", 'b', 5000, true),
        ("the old holder has lost it", 'a', 6000, false),
    ];
    for (what, who, at, sends) in table {
        let (w, c) = if who == 'a' {
            (&a, &mut ca)
        } else {
            (&b, &mut cb)
        };
        w.host().clock_ms.set(at);
        let before = w.host().checks.borrow().len();
        c.on_tick(w);
        assert_eq!(w.host().checks.borrow().len() > before, sends, "{what}");
        answer_all(w, c, Some("200"));
    }
}

#[test]
fn a_tick_checks_each_member_with_the_configured_request_and_skips_those_in_flight() {
    let store = Rc::new(MemoryStore::new());
    let cart = json!({"members": [{"name": "x", "cluster": "cart_x"}],
                      "health": {"active": {"path": "/ready", "intervalMs": 500}}});
    let shop = shop(
        json!({"health": {"active": {"path": "/healthz", "host": "shop.internal",
                                                "intervalMs": 2000, "timeoutMs": 300}}}),
    );
    let (w, mut c) = worker(&store, 2, &config(json!({"shop": shop, "cart": cart})));
    assert_eq!(
        w.host().tick_period_ms.get(),
        Some(500),
        "the shortest interval"
    );
    c.on_tick(&w);
    type Sent = (String, Vec<(String, String)>, u64);
    let sent: Vec<Sent> = w
        .host()
        .checks
        .borrow()
        .iter()
        .map(|s| (s.cluster.clone(), s.headers.clone(), s.timeout_ms))
        .collect();
    let req = |path: &str, authority: &str| {
        vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), authority.to_string()),
        ]
    };
    let mut expected: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|m| (format!("shop_{m}"), req("/healthz", "shop.internal"), 300))
        .collect();
    expected.push(("cart_x".into(), req("/ready", "cart"), 500));
    let mut sorted = sent.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(
        sorted, expected,
        "the authority defaults to the service name"
    );
    assert_eq!(c.in_flight().count(), 4);

    c.on_tick(&w);
    assert_eq!(
        w.host().checks.borrow().len(),
        4,
        "no second check while one is in flight"
    );
    *w.host().check_status.borrow_mut() = Some(b"200".to_vec());
    c.on_response(&w, 1, true);
    c.on_tick(&w);
    let checks = w.host().checks.borrow();
    assert_eq!(checks.len(), 5, "only the answered member is checked again");
    assert_eq!(
        checks.last().map(|s| &s.cluster),
        checks.first().map(|s| &s.cluster)
    );
}

#[test]
fn check_verdicts_take_members_down_and_bring_them_back_in_shared_health() {
    // Default thresholds: two failures take a member down, one pass brings it back.
    // (what, answers per tick (None: no headers), checks refused, up after, down count)
    type Row<'a> = (&'a str, &'a [Option<&'a str>], bool, bool, u64);
    let table: [Row; 7] = [
        (
            "one failure is below the threshold",
            &[Some("503")],
            false,
            true,
            0,
        ),
        (
            "two failures take it down",
            &[Some("503"), Some("500")],
            false,
            false,
            1,
        ),
        (
            "a failed call (no headers) is a failure",
            &[None, None],
            false,
            false,
            1,
        ),
        (
            "a 3xx is not a pass",
            &[Some("302"), Some("302")],
            false,
            false,
            1,
        ),
        (
            "an unreadable status is a failure",
            &[Some("abc"), Some("")],
            false,
            false,
            1,
        ),
        (
            "any 2xx brings it back",
            &[None, None, Some("204")],
            false,
            true,
            1,
        ),
        (
            "a check that cannot be sent is a failure",
            &[None, None],
            true,
            false,
            1,
        ),
    ];
    for (what, answers, refused, up, downs) in table {
        let (store, w, mut c) = one(shop(json!({"health": {"active": {"path": "/h"}}})));
        w.host().refuse_checks.set(refused);
        for (i, answer) in answers.iter().enumerate() {
            w.host().clock_ms.set(1000 * i as u64);
            c.on_tick(&w);
            answer_all(&w, &mut c, *answer);
        }
        let now = 1000 * answers.len() as u64;
        let (st, _) = read_health(&*store, w.balancer().health_key(0));
        for m in ["a", "b", "c"] {
            assert_eq!(st.get(m).map(|h| h.healthy(now)), Some(up), "{what}: {m}");
        }
        let host = w.host();
        assert_eq!(
            host.metric("wasmgate.balancer.shop.a.health_check_down"),
            Some(downs),
            "{what}"
        );
        assert_eq!(
            host.logged("shop/a is down (active check)"),
            downs > 0,
            "{what}"
        );
        // The health gauge follows once the worker reads shared health again.
        w.refresh_all(now);
        assert_eq!(
            host.metric("wasmgate.balancer.shop.a.healthy"),
            Some(u64::from(up)),
            "{what}"
        );
    }
}

#[test]
fn what_a_response_says_about_its_member_is_recorded_as_passive_health() {
    // (what, response headers (None: reset before them), errors recorded)
    type Row<'a> = (&'a str, Option<&'a [(&'a str, &'a str)]>, u32);
    let table: [Row; 7] = [
        ("a 2xx is a success", Some(&[(":status", "200")]), 0),
        (
            "a 4xx is the client's, a success",
            Some(&[(":status", "404")]),
            0,
        ),
        ("a 5xx is an error", Some(&[(":status", "503")]), 1),
        ("no status is an error", Some(&[]), 1),
        (
            "one attempt is no retry",
            Some(&[(":status", "200"), ("x-envoy-attempt-count", "1")]),
            0,
        ),
        (
            "a success after a retry: the picked member failed",
            Some(&[(":status", "200"), ("x-envoy-attempt-count", "2")]),
            1,
        ),
        ("a stream reset before the response is an error", None, 1),
    ];
    for (what, response, errors) in table {
        let (store, w, _) = one(json!({"members": [member("a", "us", "us-0")],
                                       "health": {"passive": {"consecutiveErrors": 5}}}));
        let host = w.host();
        host.start_request(&[(":authority", "shop")]);
        let mut s = BalancerStream::new();
        assert_eq!(s.on_request_headers(&w), StreamAction::Continue, "{what}");
        if let Some(headers) = response {
            host.set_response(headers);
            s.on_response_headers(&w);
            assert!(
                host.response_values("x-envoy-attempt-count").is_empty(),
                "{what}: hidden from the client"
            );
        }
        s.on_log(&w);
        assert_eq!(errors_of(&store, &w, "a"), errors, "{what}");
    }
}

#[test]
fn consecutive_errors_eject_a_member_until_its_time_is_up_and_picks_go_around_it() {
    let (_, w, _) = one(shop(
        json!({"health": {"passive": {"consecutiveErrors": 2, "baseEjectionMs": 10000}}}),
    ));
    let a_fails = |c: &str| Some(if c == "shop_a" { "503" } else { "200" }.to_string());
    for _ in 0..20 {
        request(&w, &[], a_fails);
    }
    let host = w.host();
    assert_eq!(host.metric("wasmgate.balancer.shop.a.ejections"), Some(1));
    assert!(host.logged("shop/a ejected for 10000 ms"));
    assert_eq!(host.metric("wasmgate.balancer.shop.a.ejected"), Some(1));
    assert_eq!(host.metric("wasmgate.balancer.shop.a.healthy"), Some(0));
    for _ in 0..20 {
        assert_ne!(request(&w, &[], ok).as_deref(), Some("shop_a"), "ejected");
    }
    host.clock_ms.set(10_000);
    let back = (0..20)
        .filter(|_| request(&w, &[], ok).as_deref() == Some("shop_a"))
        .count();
    assert!(back > 0, "the ejection ends on the clock");
    assert_eq!(host.metric("wasmgate.balancer.shop.a.ejected"), Some(0));
}

#[test]
fn an_ejection_over_max_ejection_percent_is_refused_and_counted() {
    let (_, w, _) = one(
        json!({"members": [member("a", "us", "us-0"), member("b", "us", "us-0")],
        "health": {"passive": {"consecutiveErrors": 1, "maxEjectionPercent": 50}}}),
    );
    for _ in 0..10 {
        request(&w, &[], |_| Some("503".into()));
    }
    let host = w.host();
    let count = |m: &str, what: &str| {
        host.metric(&format!("wasmgate.balancer.shop.{m}.{what}"))
            .unwrap_or(0)
    };
    assert_eq!(count("a", "ejections") + count("b", "ejections"), 1);
    assert!(count("a", "ejections_overflow") + count("b", "ejections_overflow") >= 1);
    assert!(host.logged("not ejected: maxEjectionPercent 50 reached"));
}

#[test]
fn the_proxy_locality_comes_from_config_then_node_metadata_then_node_locality() {
    // (what, locality configured, node properties "x:" = `xds.node.` (Envoy 1.40) and
    // "n:" = `node.` (older Envoy), expected "region/zone" ("" for none))
    let table = [
        ("configured wins", true, "x:metadata.REGION=eu", "us/us-0"),
        (
            "xds.node metadata",
            false,
            "x:metadata.REGION=eu,x:metadata.ZONE=eu-1",
            "eu/eu-1",
        ),
        ("node metadata", false, "n:metadata.REGION=ap", "ap/"),
        (
            "node locality",
            false,
            "x:locality.region=us,x:locality.zone=us-2",
            "us/us-2",
        ),
        (
            "metadata, then locality",
            false,
            "x:metadata.REGION=eu,n:locality.zone=eu-3",
            "eu/eu-3",
        ),
        ("an empty region is none", false, "x:metadata.REGION=", ""),
        ("a zone alone is none", false, "x:metadata.ZONE=z", ""),
    ];
    for (what, configured, props, expected) in table {
        let mut cfg = json!({"serviceFrom": "host", "services": {"shop": shop(json!({}))}});
        if configured {
            cfg["locality"] = json!({"region": "us", "zone": "us-0"});
        }
        let host = MockHost::new(&Rc::new(MemoryStore::new()), 1);
        for (path, value) in props.split(',').filter_map(|p| p.split_once('=')) {
            let path = path.replace("x:", "xds.node.").replace("n:", "node.");
            host.set_property(&path, value.as_bytes());
        }
        let (w, _) = BalancerWorker::configure(host, cfg.to_string().as_bytes()).unwrap();
        let expected = expected
            .split_once('/')
            .map(|(r, z)| Locality::new(Some(r), Some(z)));
        assert_eq!(
            w.balancer().configured_locality(),
            expected.as_ref(),
            "{what}"
        );
    }
}

#[test]
fn picks_count_requests_per_member_failovers_panics_and_rejections() {
    let down = json!({"health": {"active": {"path": "/h", "unhealthyThreshold": 1}}});
    let mut reject = down.clone();
    reject["health"]["onAllUnhealthy"] = json!("reject");
    // (what, service, members taken down, counters expected after 3 requests, steered)
    type Row<'a> = (&'a str, Value, bool, &'a [(&'a str, u64)], bool);
    let table: [Row; 4] = [
        (
            "each pick counts for its member",
            json!({"members": [member("a", "us", "us-0")]}),
            false,
            &[
                ("a.requests", 3),
                ("failover", 0),
                ("panic", 0),
                ("rejected", 0),
            ],
            true,
        ),
        (
            "a pick outside the proxy's zone is a failover",
            json!({"members": [member("c", "eu", "eu-0")], "locality": {}}),
            false,
            &[("c.requests", 3), ("failover", 3)],
            true,
        ),
        (
            "all down: panic mode picks anyway, counted",
            shop(down),
            true,
            &[("panic", 3), ("rejected", 0)],
            true,
        ),
        (
            "all down and onAllUnhealthy reject: a 503, counted",
            shop(reject),
            true,
            &[("panic", 0), ("rejected", 3)],
            false,
        ),
    ];
    for (what, svc, all_down, counters, steered) in table {
        let (_, w, _) = one(svc);
        if all_down {
            for m in 0..w.balancer().selector(0).unwrap().members().len() {
                w.record_check(0, m, false);
            }
        }
        for _ in 0..3 {
            let cluster = request(&w, &[(HEADER, "client-choice")], ok);
            assert_eq!(cluster.is_some(), steered, "{what}");
            assert_ne!(
                cluster.as_deref(),
                Some("client-choice"),
                "{what}: never the client's"
            );
        }
        let host = w.host();
        for (name, n) in counters {
            assert_eq!(
                host.metric(&format!("wasmgate.balancer.shop.{name}")),
                Some(*n),
                "{what}: {name}"
            );
        }
        if !steered {
            let reply = host.reply.borrow().clone().unwrap();
            assert_eq!(reply.0, 503, "{what}");
            assert_eq!(
                reply.1,
                vec![(
                    "x-wasmgate-reason".to_string(),
                    "no-healthy-cluster".to_string()
                )]
            );
        }
    }
}

#[test]
fn a_shared_write_that_loses_a_race_is_redone_on_fresh_state_and_given_up_after_the_retries() {
    let table = [
        ("no race: written at once", 0, 1, false),
        ("a few races: retried", 3, 1, false),
        (
            "the retries run out: logged, not written",
            CAS_RETRIES,
            0,
            true,
        ),
    ];
    for (what, races, errors, gave_up) in table {
        let (store, w, _) = one(shop(json!({"health": {"passive": {}}})));
        w.host().races.set(races);
        w.report(
            Picked {
                service: 0,
                member: 0,
                passive: true,
            },
            true,
        );
        assert_eq!(errors_of(&store, &w, "a"), errors, "{what}");
        let logged =
            w.host().logs.borrow().iter().any(|(l, m)| {
                *l == LogLevel::Warn && m.contains("cannot record health of a: Failed")
            });
        assert_eq!(logged, gave_up, "{what}");
    }
}

#[test]
fn a_steady_request_makes_as_few_host_calls_as_the_module_measured_in_host_sim() {
    // The same figures as the .wasm in host-sim (steady request, response included).
    // (what, service, authority, extra request headers, host calls)
    type Row<'a> = (&'a str, Value, &'a str, &'a [(&'a str, &'a str)], u32);
    let table: [Row; 6] = [
        ("no affinity", shop(json!({})), "shop", &[], 6),
        (
            "header affinity",
            shop(json!({"affinity": {"header": "x-user"}})),
            "shop",
            &[("x-user", "u1")],
            7,
        ),
        (
            "source address affinity",
            shop(json!({"affinity": "sourceAddress"})),
            "shop",
            &[],
            7,
        ),
        (
            "passive health, a success on a clean member",
            shop(json!({"health": {"passive": {}}})),
            "shop",
            &[],
            8,
        ),
        (
            "a generated cookie",
            shop(json!({"affinity": {"cookie": {"name": "sid", "ttlSeconds": 60}}})),
            "shop",
            &[],
            8,
        ),
        ("not our service", shop(json!({})), "other", &[], 3),
    ];
    for (what, svc, authority, extra, calls) in table {
        let (_, w, _) = one(svc);
        let host = w.host();
        host.set_property("source.address", b"10.0.0.1:5");
        let mut headers = vec![(":authority", authority)];
        headers.extend_from_slice(extra);
        let run = || {
            host.start_request(&headers);
            let mut s = BalancerStream::new();
            s.on_request_headers(&w);
            host.set_response(&[(":status", "200")]);
            s.on_response_headers(&w);
            s.on_log(&w);
        };
        run();
        let before = host.calls.get();
        run();
        assert_eq!(host.calls.get() - before, calls, "{what}");
    }
}

#[test]
fn a_generated_affinity_cookie_is_handed_over_with_the_response() {
    let (_, w, _) = one(shop(
        json!({"affinity": {"cookie": {"name": "sid", "ttlSeconds": 60}}}),
    ));
    request(&w, &[], ok);
    let cookies = w.host().response_values("set-cookie");
    assert_eq!(cookies.len(), 1);
    assert!(cookies.iter().all(|c| c.starts_with("sid=")), "{cookies:?}");
    request(&w, &[("cookie", "sid=0123")], ok);
    assert!(
        w.host().response_values("set-cookie").is_empty(),
        "a request with the cookie keeps it"
    );
}

#[test]
fn a_tcp_connection_on_a_service_port_is_steered_and_others_are_left_alone() {
    let port = |p: u64| p.to_le_bytes().to_vec();
    // (what, service health, destination port, steered to, closed)
    type Row<'a> = (&'a str, bool, Option<u64>, Option<&'a str>, bool);
    let table: [Row; 4] = [
        (
            "a service port goes to a member cluster",
            false,
            Some(9000),
            Some("shop_a"),
            false,
        ),
        (
            "another port keeps tcp_proxy's cluster",
            false,
            Some(9001),
            None,
            false,
        ),
        ("no port: left alone", false, None, None, false),
        (
            "no member may take it: closed",
            true,
            Some(9000),
            None,
            true,
        ),
    ];
    for (what, all_down, dport, steered, closed) in table {
        let mut svc = json!({"members": [member("a", "us", "us-0")]});
        if all_down {
            svc["health"] = json!({"active": {"path": "/h", "unhealthyThreshold": 1}, "onAllUnhealthy": "reject"});
        }
        let cfg =
            json!({"serviceFrom": "host", "tcpPorts": {"9000": "shop"}, "services": {"shop": svc}});
        let host = MockHost::new(&Rc::new(MemoryStore::new()), 1);
        host.set_property("plugin_root_id", b"wasmgate.balancer.tcp");
        if let Some(p) = dport {
            host.set_property("destination.port", &port(p));
        }
        let (w, _) = BalancerWorker::configure(host, cfg.to_string().as_bytes()).unwrap();
        assert!(w.serves_tcp(), "{what}");
        if all_down {
            w.record_check(0, 0, false);
        }
        tcp_connection::on_new_connection(&w);
        assert_eq!(w.host().tcp_cluster.borrow().as_deref(), steered, "{what}");
        assert_eq!(w.host().closed.get(), closed, "{what}");
    }
}
