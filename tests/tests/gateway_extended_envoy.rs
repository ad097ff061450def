//! Gateway API's Extended HTTPRoute features, generated and run in a real Envoy with echo
//! backends: backendRef filters, CORS (GEP-1767), timeouts (GEP-1742), retry (GEP-1731),
//! request mirrors with percentages and fractions, and the redirect port rule. Each check
//! is what the spec text says the client and the backend must see.

use std::time::{Duration, Instant};

use wasmgate_harness::deploy::{deploy, Deployment, Member};
use wasmgate_harness::paths::workspace_root;
use wasmgate_harness::{request, Backend};

struct World {
    d: Deployment,
    echo: Backend,
    mirror_all: Backend,
    mirror_none: Backend,
    mirror_half: Backend,
    _echo_b: Backend,
}

fn world() -> World {
    let echo = Backend::start("echo").unwrap();
    let echo_b = Backend::start("echo-b").unwrap();
    let mirror_all = Backend::start("mirror-all").unwrap();
    let mirror_none = Backend::start("mirror-none").unwrap();
    let mirror_half = Backend::start("mirror-half").unwrap();
    let member = Member {
        name: "c1".into(),
        endpoints: [
            ("echo", &echo),
            ("echo-b", &echo_b),
            ("mirror-all", &mirror_all),
            ("mirror-none", &mirror_none),
            ("mirror-half", &mirror_half),
        ]
        .iter()
        .map(|(s, b)| (s.to_string(), 80, b.endpoint()))
        .collect(),
        ..Member::default()
    };
    let input = workspace_root().join("tests/fixtures/extended/routes.yaml");
    let d = deploy("gw-extended", &[input], &[member], &[80, 8080]).unwrap();
    World {
        d,
        echo,
        mirror_all,
        mirror_none,
        mirror_half,
        _echo_b: echo_b,
    }
}

/// A request on the listener declared on `port`, with `Host: x.example`.
fn send(
    w: &World,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> wasmgate_harness::http_client::Response {
    let addr = w.d.ports[&port];
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    request(addr, method, "x.example", path, &headers).unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn extended_httproute_features_behave_as_gateway_api_says_in_envoy() {
    let w = world();
    // The policy routes are Envoy config host-sim must read too.
    if let Err(e) = host_sim::bootstrap_reader::load_bootstrap(&w.d.config_path) {
        panic!("the generated bootstrap does not load in host-sim: {e}");
    }
    backend_filters_apply_to_the_picked_backend_only(&w);
    cors_preflights_are_answered_at_the_gateway_and_never_forwarded(&w);
    request_and_backend_timeouts_answer_504(&w);
    retries_repeat_listed_codes_up_to_the_attempts(&w);
    mirrors_copy_requests_by_their_share(&w);
    a_redirect_without_port_or_scheme_names_the_listener_port(&w);
}

fn backend_filters_apply_to_the_picked_backend_only(w: &World) {
    let r = send(w, 80, "GET", "/backend-filters", &[("x-drop", "1")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend().as_deref(), Some("echo"));
    assert_eq!(r.header("x-answered-by"), Some("echo"));
    let seen = w.echo.seen();
    let last = seen.last().unwrap();
    assert_eq!(last.header("x-picked"), Some("echo"));
    assert_eq!(last.header("x-drop"), None);
}

fn cors_preflights_are_answered_at_the_gateway_and_never_forwarded(w: &World) {
    let before = w.echo.seen().len();
    let r = send(
        w,
        80,
        "OPTIONS",
        "/cors",
        &[
            ("origin", "https://a.b.apps.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "x-token"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://a.b.apps.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(r.header("access-control-allow-headers"), Some("x-token"));
    assert_eq!(r.header("access-control-max-age"), Some("3600"));
    // An origin that is not allowed: still answered here, without CORS headers.
    let r = send(
        w,
        80,
        "OPTIONS",
        "/cors",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.backend(), None);
    assert_eq!(
        w.echo.seen().len(),
        before,
        "a preflight reached the backend"
    );
    // The actual request is forwarded; its response carries the CORS headers.
    let r = send(w, 80, "GET", "/cors", &[("origin", "https://app.example")]);
    assert_eq!(r.backend().as_deref(), Some("echo"));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-expose-headers"), Some("x-trace"));
    let r = send(w, 80, "GET", "/cors", &[("origin", "http://app.example")]);
    assert_eq!(r.backend().as_deref(), Some("echo"));
    assert_eq!(r.header("access-control-allow-origin"), None);
}

fn request_and_backend_timeouts_answer_504(w: &World) {
    let r = send(w, 80, "GET", "/timeout", &[("x-echo-delay-ms", "100")]);
    assert_eq!(r.status, 200);
    let start = Instant::now();
    let r = send(w, 80, "GET", "/timeout", &[("x-echo-delay-ms", "3000")]);
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(start.elapsed() < Duration::from_millis(2500));
    // Without a timeout of its own the rule waits (Envoy's default is 15 s).
    let r = send(w, 80, "GET", "/no-retry", &[("x-echo-delay-ms", "800")]);
    assert_eq!(r.status, 200);
    let start = Instant::now();
    let r = send(
        w,
        80,
        "GET",
        "/backend-timeout",
        &[("x-echo-delay-ms", "2000")],
    );
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(start.elapsed() < Duration::from_millis(1500));
}

fn attempts(w: &World, key: &str) -> usize {
    w.echo
        .seen()
        .iter()
        .filter(|s| s.header("x-echo-fail").is_some_and(|v| v.ends_with(key)))
        .count()
}

fn retries_repeat_listed_codes_up_to_the_attempts(w: &World) {
    // Two failures, two retries: the third attempt answers.
    let r = send(w, 80, "GET", "/retry", &[("x-echo-fail", "503:2:k1")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(attempts(w, ":k1"), 3);
    // Three failures: the retries are spent and the client sees the backend's 503.
    let r = send(w, 80, "GET", "/retry", &[("x-echo-fail", "503:3:k2")]);
    assert_eq!(r.status, 503);
    assert_eq!(attempts(w, ":k2"), 3);
    // A code that is not listed is not retried.
    let r = send(w, 80, "GET", "/retry", &[("x-echo-fail", "500:1:k3")]);
    assert_eq!(r.status, 500);
    assert_eq!(attempts(w, ":k3"), 1);
    // A rule without retry keeps the generated route's: no retry on a status code.
    let r = send(w, 80, "GET", "/no-retry", &[("x-echo-fail", "503:1:k4")]);
    assert_eq!(r.status, 503);
    assert_eq!(attempts(w, ":k4"), 1);
}

fn mirrors_copy_requests_by_their_share(w: &World) {
    let r = send(w, 80, "GET", "/mirror/one", &[("x-mirror-probe", "1")]);
    assert_eq!(r.backend().as_deref(), Some("echo"));
    wait_for("the mirror-all copy", || !w.mirror_all.seen().is_empty());
    let copy = w.mirror_all.seen().remove(0);
    assert_eq!(copy.path, "/mirror/one");
    assert_eq!(copy.header("x-mirror-probe"), Some("1"));
    // The mirror is sent to the same host, not Envoy's `-shadow` suffixed one.
    assert_eq!(copy.header("host"), Some("x.example"));
    let n = 200;
    for i in 0..n {
        let r = send(w, 80, "GET", &format!("/mirror/{i}"), &[]);
        assert_eq!(r.status, 200);
    }
    wait_for("every mirror-all copy", || {
        w.mirror_all.seen().len() > n as usize
    });
    let half = w.mirror_half.seen().len();
    // 1/2 of 200 requests: far outside [60, 140] happens with odds below 1e-8.
    assert!((60..=140).contains(&half), "mirror-half saw {half} of {n}");
    assert!(w.mirror_none.seen().is_empty(), "percent 0 mirrored");
}

fn a_redirect_without_port_or_scheme_names_the_listener_port(w: &World) {
    // The client reaches Envoy on a moved port; the Location names the declared one, and
    // leaves out 80 for http.
    let r = send(w, 80, "GET", "/redirect/a?b=c", &[]);
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("http://y.example/redirect/a?b=c")
    );
    let r = send(w, 8080, "GET", "/redirect/a", &[]);
    assert_eq!(
        r.header("location"),
        Some("http://y.example:8080/redirect/a")
    );
    // A scheme without a port means the scheme's well-known port.
    let r = send(w, 8080, "GET", "/redirect-https", &[]);
    assert_eq!(
        r.header("location"),
        Some("https://x.example/redirect-https")
    );
}
