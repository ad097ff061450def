//! The fuzz targets that need only filters/core: config parse and compile, the request
//! matcher, balancer selection and cookie parsing. Kept free of host-sim so cargo-fuzz builds
//! them without wasmtime (`fuzz/` depends on this crate alone for them);
//! `tests/harness/src/fuzz_targets.rs` adds the host-sim targets.

use wasmgate_core::multicluster::cookie::cookie;
use wasmgate_core::multicluster::{Balancer, HealthView, PickInput, WorkerState};
use wasmgate_core::route_table::matchers::host::parse_authority;
use wasmgate_core::{apply_request, FixedRandom, Outcome, RequestView, RouteTable, VecHeaders};

/// The longest error message any input may produce.
const MAX_ERROR_LEN: usize = 2048;

/// Config parse and compile: the first byte picks the router or the balancer, the rest is
/// the JSON. It configures or is refused with a short error.
pub fn config(data: &[u8]) {
    let Some((&which, json)) = data.split_first() else {
        return;
    };
    let err = if which % 2 == 0 {
        RouteTable::from_json(json).err()
    } else {
        Balancer::from_json(json).err()
    };
    if let Some(e) = err {
        let text = e.to_string();
        assert!(
            text.len() <= MAX_ERROR_LEN,
            "a {}-byte error for a {}-byte config",
            text.len(),
            json.len()
        );
    }
}

/// A config touching every matcher: exact and wildcard hosts, the catch-all, every path
/// kind, headers, query parameters, methods, rewrites and redirects.
pub const REQUEST_CONFIG: &str = r#"{"routes": [
 {"http": {"host": "secure.example", "rules": [
   {"path": "/admin", "statusCode": {"code": 403, "body": "forbidden\n"}},
   {"path": "/", "backend": {"service": "secure", "cluster": "secure"}}]}},
 {"http": {"host": "*.wild.example", "rules": [
   {"matches": [{"path": {"type": "Exact", "value": "/exact"}}], "backend": {"service": "exact", "cluster": "exact"}},
   {"matches": [{"path": {"type": "RegularExpression", "value": "/v[0-9]+/[a-z]+"}}], "backend": {"service": "regex", "cluster": "regex"}},
   {"matches": [{"path": {"type": "Pattern", "value": "/users/{id}"}}], "backend": {"service": "user", "cluster": "user"},
    "urlRewrite": {"path": {"type": "ReplaceFullPath", "value": "/u/{id}"}},
    "requestHeaders": {"set": [{"name": "x-user", "value": "{id}"}]}},
   {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}, "method": "POST",
                 "headers": [{"name": "x-env", "value": "canary"}, {"name": "x-team", "type": "RegularExpression", "value": "t-[0-9]+"}],
                 "queryParams": [{"name": "v", "type": "RegularExpression", "value": "[0-9]+"}]}],
    "backend": {"service": "api-post", "cluster": "api-post"}},
   {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backend": {"service": "api", "cluster": "api"},
    "urlRewrite": {"hostname": "api.internal", "path": {"type": "ReplacePrefixMatch", "value": "/v2"}}},
   {"path": "/old", "redirect": {"scheme": "https", "statusCode": 301}}]}},
 {"http": {"host": "*", "rules": [
   {"path": "/", "backend": {"service": "any", "cluster": "any"}}]}}
]}"#;

thread_local! {
    static TABLE: Option<RouteTable> = RouteTable::from_json(REQUEST_CONFIG.as_bytes()).ok();
}

/// Runs `f` on the compiled [`REQUEST_CONFIG`].
pub fn with_table<R>(f: impl FnOnce(&RouteTable) -> R) -> R {
    TABLE.with(|table| match table {
        Some(t) => f(t),
        None => panic!("REQUEST_CONFIG must compile"),
    })
}

/// One request decoded from fuzz bytes: fields separated by `\n`: authority, path, method,
/// then header name/value pairs (names picked among the ones the config reads).
pub struct FuzzRequest {
    pub authority: Vec<u8>,
    pub path: Vec<u8>,
    pub method: Vec<u8>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

const HEADER_NAMES: &[&str] = &["x-env", "x-team", ":scheme", "x-wasmgate-cluster", "cookie"];

impl FuzzRequest {
    pub fn decode(data: &[u8]) -> Self {
        let mut fields = data.split(|&b| b == b'\n');
        let mut next = || fields.next().unwrap_or_default().to_vec();
        let authority = next();
        let path = next();
        let method = next();
        let mut headers = Vec::new();
        loop {
            let name = next();
            let Some(&n) = name.first() else { break };
            headers.push((HEADER_NAMES[n as usize % HEADER_NAMES.len()], next()));
        }
        FuzzRequest {
            authority,
            path,
            method,
            headers,
        }
    }
}

/// The request matcher on arbitrary bytes, plus the authority parser's invariants.
pub fn request(data: &[u8]) {
    let req = FuzzRequest::decode(data);
    if let Ok(host) = parse_authority(&req.authority) {
        // A parsed host parses to itself: no port, no userinfo, nothing left to strip.
        let again = parse_authority(host.as_bytes()).map(|h| h.into_owned());
        assert!(
            again.as_deref() == Ok(&*host) || host.ends_with('.'),
            "{host:?} reparses as {again:?}"
        );
        let outside_brackets = host.rsplit(']').next().unwrap_or_default();
        assert!(!outside_brackets.contains(':'), "{host:?} kept a port");
    }
    TABLE.with(|table| {
        let Some(table) = table else {
            panic!("REQUEST_CONFIG must compile")
        };
        let headers: Vec<(&str, &[u8])> = req.headers.iter().map(|(n, v)| (*n, &v[..])).collect();
        let view = RequestView {
            authority: &req.authority,
            path: &req.path,
            method: &req.method,
            headers: &headers,
            listener_port: None,
        };
        let outcome = table.route(&view, &mut FixedRandom(0.5));
        if parse_authority(&req.authority).is_err() {
            assert!(
                matches!(&outcome, Outcome::Reply(r) if r.status == 400),
                "an invalid authority must get 400, got {outcome:?}"
            );
        }
        let mut map = VecHeaders(
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
        );
        let _ = apply_request(outcome, table, &mut map);
    });
}

const BALANCER_CONFIG: &str = r#"{"serviceFrom": {"header": "x-service"},
 "services": {"shop": {
   "members": [
     {"name": "a", "cluster": "shop_a", "weight": 3, "labels": {"region": "us", "zone": "us-a"}},
     {"name": "b", "cluster": "shop_b", "labels": {"region": "us", "zone": "us-b"}},
     {"name": "eu", "cluster": "shop_eu", "labels": {"region": "eu"}},
     {"name": "canary", "cluster": "shop_canary", "weight": 0, "labels": {"region": "us"}}],
   "affinity": {"cookie": {"name": "sid", "ttlSeconds": 60}},
   "canary": {"member": "canary", "header": {"name": "x-canary", "value": "always"},
              "cookie": {"name": "beta", "value": "1"}, "percent": 5},
   "locality": {"overprovisioning": 140}}}}"#;

thread_local! {
    static BALANCER: Option<Balancer> = Balancer::from_json(BALANCER_CONFIG.as_bytes()).ok();
}

/// Balancer selection and cookie parsing: `\n`-separated cookie header, canary header,
/// service header, source address; the first byte also picks the members that are down.
pub fn balancer(data: &[u8]) {
    let down_mask = data.first().copied().unwrap_or(0);
    let mut fields = data.get(1..).unwrap_or_default().split(|&b| b == b'\n');
    let mut next = || fields.next().unwrap_or_default();
    let (cookie_header, canary, service, source) = (next(), next(), next(), next());
    let headers: Vec<(&str, &[u8])> = vec![
        ("cookie", cookie_header),
        ("x-canary", canary),
        ("x-service", service),
    ];
    if let Some(v) = cookie(&headers, "sid") {
        assert!(v.is_empty() || cookie_header.windows(v.len()).any(|w| w == v));
    }
    BALANCER.with(|b| {
        let Some(b) = b else {
            panic!("BALANCER_CONFIG must compile")
        };
        let _ = b.service(service);
        let Some(sel) = b.selector(0) else { return };
        let n = sel.members().len();
        let down: Vec<usize> = (0..n).filter(|i| down_mask & (1 << i) != 0).collect();
        let view = HealthView::with_down(n, &down);
        let input = PickInput {
            headers: &headers,
            source_address: Some(source),
            affinity_key: None,
        };
        let mut rng = wasmgate_core::XorShift::new(u64::from(down_mask));
        if let Ok(pick) = sel.pick(&input, &view, &mut WorkerState::new(), &mut rng) {
            assert!(pick.member < n, "picked {} of {n}", pick.member);
        }
    });
}
