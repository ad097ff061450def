//! Bad input: every error names the file, the document and the field; all errors of a run
//! are reported together; nothing is written unless everything is valid.

use std::path::PathBuf;
use std::process::Command;

const SERVICE: &str =
    "kind: Service\nmetadata: {name: foo-app}\nspec:\n  ports: [{name: web, port: 80}]\n";
const INVENTORY: &str = "kind: ClusterInventory\nmetadata: {name: inv}\nspec:\n  clusters:\n    - name: c1\n      labels: {region: us}\n      services:\n        foo-app: {80: [\"127.0.0.1:1\"]}\n        mcs: {80: [\"127.0.0.1:2\"]}\n";

/// A multi-cluster service `mcs` and a route to it (two documents).
const MCS_ROUTE: &str = "kind: MultiClusterService\nmetadata: {name: mcs}\nspec:\n  template:\n    ports: [{port: 80}]\n---\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - backendRefs: [{name: mcs, port: 80}]\n";

/// A Gateway whose one HTTP listener serves `*.example.com`.
const GATEWAY: &str = "kind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: wasmgate\n  listeners: [{name: http, port: 8080, protocol: HTTP, hostname: \"*.example.com\"}]\n";

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str, files: &[(&str, &str)]) -> Dir {
        let dir = std::env::temp_dir().join(format!("wasmgate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (n, text) in files {
            std::fs::write(dir.join(n), text).unwrap();
        }
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn errors_of(name: &str, files: &[(&str, &str)]) -> String {
    let dir = Dir::new(name, files);
    match wasmgate::load(std::slice::from_ref(&dir.0)).and_then(|i| {
        // Strict: route faults are refused too, as before route status existed.
        let opts = wasmgate::Options {
            strict: true,
            ..wasmgate::Options::default()
        };
        wasmgate::generate(&i, &opts)
    }) {
        Ok(_) => panic!("{name}: accepted"),
        Err(e) => e.to_string().replace(&format!("{}/", dir.0.display()), ""),
    }
}

#[test]
fn each_error_names_file_document_and_field() {
    let vhost = |rules: &str| {
        format!("kind: Service\nmetadata: {{name: other}}\nspec: {{ports: [{{port: 1}}]}}\n---\nkind: VirtualHost\nmetadata: {{name: foo}}\nspec:\n  routes:\n    - http:\n        host: foo.com\n        rules:\n{rules}")
    };
    // (what, input files, expected message)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "a named port the service lacks (the issue's own example)",
            vec![("vhost.yaml", vhost("          - {path: /, backend: {service: foo-app, servicePort: web}}\n          - {path: /x, backend: {service: foo-app, servicePort: www}}\n")), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "vhost.yaml: document 2 (VirtualHost foo): spec.routes[0].http.rules[1].backend.servicePort: no port named \"www\" on service foo-app",
        ),
        (
            "an unknown field",
            vec![("vhost.yaml", vhost("          - {path: /, colour: blue, backend: {service: foo-app, servicePort: web}}\n"))],
            "vhost.yaml: document 2 (VirtualHost foo): spec.routes[0].http.rules[0].colour: unknown field `colour`",
        ),
        (
            "an unknown service",
            vec![("vhost.yaml", vhost("          - {path: /, backend: {service: nope, servicePort: web}}\n")), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "vhost.yaml: document 2 (VirtualHost foo): spec.routes[0].http.rules[0].backend.service: no service named \"nope\"",
        ),
        (
            "an unsupported kind",
            vec![("x.yaml", "kind: Ingress\nmetadata: {name: old}\n".to_string())],
            "x.yaml: document 1 (Ingress old): unsupported kind \"Ingress\"",
        ),
        (
            "broken YAML",
            vec![("x.yaml", "kind: Service\nmetadata: {name: [\n".to_string())],
            "x.yaml: document 1: invalid YAML",
        ),
        (
            "MultiClusterService ports given twice",
            vec![("mcs.yaml", "kind: MultiClusterService\nmetadata: {name: mcs}\nspec:\n  template:\n    ports: [{port: 80}]\n  ports: [{port: 80}]\n".to_string())],
            "mcs.yaml: document 1 (MultiClusterService mcs): spec.ports: ports are given both in spec and in spec.template",
        ),
        (
            "an HTTPRoute filter wasmgate does not support",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - filters: [{type: ExtensionRef, extensionRef: {group: x, kind: y, name: z}}]\n      backendRefs: [{name: foo-app, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].filters[0].type: filter ExtensionRef is not supported by wasmgate",
        ),
        (
            "a retry backoff Envoy cannot honour as a minimum",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - retry: {codes: [503], attempts: 2, backoff: 100ms}\n      backendRefs: [{name: foo-app, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].retry.backoff: backoff is not supported by wasmgate: Envoy's jittered back-off may retry sooner",
        ),
        (
            "a retry code outside 400-599",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - retry: {codes: [503, 302]}\n      backendRefs: [{name: foo-app, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].retry.codes[1]: retry code 302 is outside 400-599",
        ),
        (
            "a timeout that is not a Gateway API duration",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - timeouts: {request: 1.5s}\n      backendRefs: [{name: foo-app, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].timeouts.request: invalid duration \"1.5s\"",
        ),
        (
            "a backend timeout longer than the request timeout",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - timeouts: {request: 1s, backendRequest: 2s}\n      backendRefs: [{name: foo-app, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].timeouts.backendRequest: backendRequest (2s) must not be longer than request (1s)",
        ),
        (
            "an unknown timeouts field",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - timeouts: {requests: 1s}\n      backendRefs: [{name: foo-app, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].timeouts.requests: unknown field `requests`",
        ),
        (
            "a mirror percentage over 100",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: foo-app, port: 80}, percent: 101}}]\n      backendRefs: [{name: foo-app, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].filters[0].requestMirror.percent: percent 101 is outside 0-100",
        ),
        (
            "a mirror fraction over one",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: foo-app, port: 80}, fraction: {numerator: 3, denominator: 2}}}]\n      backendRefs: [{name: foo-app, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].filters[0].requestMirror.fraction: fraction 3/2 must have",
        ),
        (
            "a mirror to a Service that does not exist",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: nope, port: 80}}}]\n      backendRefs: [{name: foo-app, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].filters[0].requestMirror.backendRef",
        ),
        (
            "a mirror to another namespace",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: foo-app, namespace: other, port: 80}}}]\n      backendRefs: [{name: foo-app, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].filters[0].requestMirror.backendRef.namespace: cross-namespace mirrors are not supported by wasmgate",
        ),
        (
            "a backendRef filter other than the header modifiers",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - backendRefs: [{name: foo-app, port: 80, filters: [{type: URLRewrite, urlRewrite: {hostname: a.com}}]}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].backendRefs[0].filters[0].type: filter URLRewrite is not supported on a backendRef by wasmgate",
        ),
        (
            "a CORS origin with a wildcard inside the host",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - filters: [{type: CORS, cors: {allowOrigins: [\"https://a.*.com\"]}}]\n      backendRefs: [{name: foo-app, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].filters[0].cors.allowOrigins[0]: invalid origin",
        ),
        (
            "an HTTPRoute backend that does not exist",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - backendRefs: [{name: ghost, port: 80}]\n".to_string())],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].backendRefs[0].name: no Service named default/ghost",
        ),
        (
            "a multi-cluster service whose selector matches no cluster",
            vec![("m.yaml", "kind: MultiClusterService\nmetadata: {name: mcs}\nspec:\n  template:\n    ports: [{port: 80}]\n    clusters: [{selector: {matchLabels: {region: mars}}}]\n---\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - backendRefs: [{name: mcs, port: 80}]\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "m.yaml: document 2 (HTTPRoute r): spec.rules[0].backendRefs[0].port: no cluster in the inventory matches the selectors of multi-cluster service mcs",
        ),
        (
            "a route attached to a Gateway that is not in the input",
            vec![("r.yaml", format!("{GATEWAY}---\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec:\n  parentRefs: [{{name: nope}}]\n  rules: [{{backendRefs: [{{name: foo-app, port: 80}}]}}]\n")), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 2 (HTTPRoute r): spec.parentRefs[0].name: no Gateway named default/nope",
        ),
        (
            "a route attached to a listener the Gateway lacks",
            vec![("r.yaml", format!("{GATEWAY}---\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec:\n  parentRefs: [{{name: gw, sectionName: https}}]\n  rules: [{{backendRefs: [{{name: foo-app, port: 80}}]}}]\n")), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 2 (HTTPRoute r): spec.parentRefs[0].sectionName: Gateway default/gw has no listener named \"https\"",
        ),
        (
            "a listener named by sectionName on another port than the parentRef's",
            vec![("r.yaml", format!("{GATEWAY}---\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec:\n  parentRefs: [{{name: gw, sectionName: http, port: 81}}]\n  rules: [{{backendRefs: [{{name: foo-app, port: 80}}]}}]\n")), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 2 (HTTPRoute r): spec.parentRefs[0].port: Gateway default/gw: listener \"http\" is on port 8080, not 81",
        ),
        (
            "route hostnames no attached listener serves",
            vec![("r.yaml", format!("{GATEWAY}---\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [other.org]\n  rules: [{{backendRefs: [{{name: foo-app, port: 80}}]}}]\n")), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 2 (HTTPRoute r): spec.hostnames: none of the hostnames [\"other.org\"] intersects the hostname of a listener it attaches to",
        ),
        (
            "a route without parentRefs next to a Gateway",
            vec![("r.yaml", format!("{GATEWAY}---\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec:\n  rules: [{{backendRefs: [{{name: foo-app, port: 80}}]}}]\n")), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 2 (HTTPRoute r): spec.parentRefs: the route attaches to no Gateway",
        ),
        (
            "a DestinationRule field wasmgate cannot honour",
            vec![("dr.yaml", format!("{MCS_ROUTE}---\nkind: DestinationRule\nmetadata: {{name: d}}\nspec:\n  host: mcs\n  trafficPolicy:\n    outlierDetection: {{consecutive5xxErrors: 3, interval: 10s}}\n")), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "dr.yaml: document 3 (DestinationRule d): spec.trafficPolicy.outlierDetection.interval: not supported by wasmgate: the balancer ejects as responses arrive",
        ),
        (
            "DestinationRule subsets",
            vec![("dr.yaml", format!("{MCS_ROUTE}---\nkind: DestinationRule\nmetadata: {{name: d}}\nspec:\n  host: mcs.default.svc.cluster.local\n  subsets: [{{name: v1, labels: {{v: \"1\"}}}}]\n")), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "dr.yaml: document 3 (DestinationRule d): spec.subsets: not supported by wasmgate",
        ),
        (
            "a DestinationRule duration that is not one",
            vec![("dr.yaml", format!("{MCS_ROUTE}---\nkind: DestinationRule\nmetadata: {{name: d}}\nspec:\n  host: mcs\n  trafficPolicy:\n    connectionPool: {{tcp: {{connectTimeout: soon}}}}\n")), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "dr.yaml: document 3 (DestinationRule d): spec.trafficPolicy.connectionPool.tcp.connectTimeout: invalid duration \"soon\"",
        ),
        (
            "a DestinationRule for a service that is not multi-cluster",
            vec![("dr.yaml", "kind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: foo-app\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "dr.yaml: document 1 (DestinationRule d): spec.host: no multi-cluster service named \"foo-app\"",
        ),
        (
            "an unknown DestinationRule field",
            vec![("dr.yaml", format!("{MCS_ROUTE}---\nkind: DestinationRule\nmetadata: {{name: d}}\nspec:\n  host: mcs\n  trafficPolicy: {{colour: blue}}\n")), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "dr.yaml: document 3 (DestinationRule d): spec.trafficPolicy.colour: unknown field `colour`",
        ),
        (
            "a generated rule the router refuses",
            vec![("vhost.yaml", vhost("          - {path: nope, statusCode: {code: 404}}\n"))],
            "generated filter config is invalid: router: routes[0].http.rules[0].path: invalid path",
        ),
        (
            "a bucket endpoint that is not a URL",
            vec![("vhost.yaml", vhost("          - {path: /, backend: {bucket: {name: site, endpoint: \"s3.example.com\"}}}\n"))],
            "vhost.yaml: document 2 (VirtualHost foo): spec.routes[0].http.rules[0].backend.bucket.endpoint: endpoint \"s3.example.com\": expected http://host[:port] or https://host[:port]",
        ),
        (
            "a bucket name S3 would refuse",
            vec![("vhost.yaml", vhost("          - {path: /, backend: {bucket: {name: My_Site, endpoint: \"http://127.0.0.1:9000\"}}}\n"))],
            "vhost.yaml: document 2 (VirtualHost foo): spec.routes[0].http.rules[0].backend.bucket.name: invalid name",
        ),
        (
            "a bucket and a service in one backend",
            vec![("vhost.yaml", vhost("          - {path: /, backend: {service: other, servicePort: 1, bucket: {name: site, endpoint: \"http://127.0.0.1:9000\"}}}\n"))],
            "vhost.yaml: document 2 (VirtualHost foo): spec.routes[0].http.rules[0].backend: a backend is either a service or a bucket",
        ),
        (
            "one bucket with two endpoints",
            vec![("vhost.yaml", vhost("          - {path: /a, backend: {bucket: {name: site, endpoint: \"http://127.0.0.1:9000\"}}}\n          - {path: /b, backend: {bucket: {name: site, endpoint: \"http://127.0.0.1:9001\"}}}\n"))],
            "spec.routes[0].http.rules[1].backend.bucket: bucket \"site\" is already defined with another endpoint, region or signing",
        ),
        (
            "an HTTPRoute naming a Bucket that does not exist",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - backendRefs: [{group: wasmgate.io, kind: Bucket, name: nope}]\n".to_string())],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].backendRefs[0].name: no Bucket named default/nope",
        ),
        (
            "an HTTPRoute naming a Bucket in another namespace without a grant",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - backendRefs: [{group: wasmgate.io, kind: Bucket, name: b, namespace: media}]\n---\nkind: Bucket\nmetadata: {name: b, namespace: media}\nspec: {name: site, endpoint: \"http://127.0.0.1:9000\"}\n".to_string())],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].backendRefs[0].namespace: a backendRef to namespace media needs a ReferenceGrant there from HTTPRoutes in default",
        ),
        (
            "a Bucket split with a Service",
            vec![("r.yaml", "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n    - backendRefs: [{group: wasmgate.io, kind: Bucket, name: b}, {name: foo-app, port: 80}]\n---\nkind: Bucket\nmetadata: {name: b}\nspec: {name: site, endpoint: \"http://127.0.0.1:9000\"}\n".to_string()), ("base.yaml", format!("{SERVICE}---\n{INVENTORY}"))],
            "r.yaml: document 1 (HTTPRoute r): spec.rules[0].backendRefs[0]: a Bucket must be the rule's only backendRef",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (name, files, want)) in cases.iter().enumerate() {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let got = errors_of(&format!("case{i}"), &files);
        if !got.contains(want) {
            failures.push(format!("{name}:\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_errors_of_a_run_come_together_and_nothing_is_written() {
    let dir = Dir::new("many", &[
        ("a.yaml", "kind: Gizmo\nmetadata: {name: g}\n"),
        ("b.yaml", "kind: VirtualHost\nmetadata: {name: v}\nspec:\n  routes:\n    - http: {host: a.com, rules: [{path: /, backend: {service: s1, servicePort: 1}}]}\n    - http: {host: b.com, rules: [{path: /, backend: {service: s2, servicePort: 1}}]}\n"),
    ]);
    let out = dir.0.join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .args(["generate", "--out"])
        .arg(&out)
        .arg(&dir.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unsupported kind \"Gizmo\""), "{stderr}");
    assert!(stderr.contains("a.yaml"), "{stderr}");
    // b.yaml's two errors are only found once the documents load; the kinds error is enough
    // to stop before writing, and nothing was.
    assert!(!out.exists(), "outputs were written despite errors");

    let dir2 = Dir::new("many2", &[("b.yaml", "kind: VirtualHost\nmetadata: {name: v}\nspec:\n  routes:\n    - http: {host: a.com, rules: [{path: /, backend: {service: s1, servicePort: 1}}]}\n    - http: {host: b.com, rules: [{path: /, backend: {service: s2, servicePort: 1}}]}\n")]);
    let run = Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .args(["check"])
        .arg(&dir2.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("rules[0].backend.service: no service named \"s1\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("routes[1].http.rules[0].backend.service: no service named \"s2\""),
        "{stderr}"
    );
}

#[test]
fn check_exit_codes_are_zero_one_two() {
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/seed");
    let code = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wasmgate"))
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(code(&["check", seed.to_str().unwrap()]), Some(0));
    assert_eq!(code(&["check", "/nonexistent/wasmgate.yaml"]), Some(1));
    assert_eq!(code(&["check", "--bogus", seed.to_str().unwrap()]), Some(2));
    assert_eq!(code(&["frobnicate"]), Some(2));
}

#[test]
fn explain_tells_where_a_request_goes() {
    let ex = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/gateway-api");
    let run = |req: &str, header: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wasmgate"));
        c.args(["explain", "--request", req]);
        if let Some(h) = header {
            c.args(["--header", h]);
        }
        String::from_utf8_lossy(&c.arg(&ex).output().unwrap().stdout).into_owned()
    };
    let v2 = run("GET shop.example.com /api/cart/1", Some("x-version: v2"));
    assert!(
        v2.contains("forward to service cart-v2 via Envoy cluster cart-v2_8080"),
        "{v2}"
    );
    let old = run("GET shop.example.com /old-shop/item", None);
    assert!(
        old.contains("answer 301 locally")
            && old.contains("location: http://shop.example.com/item"),
        "{old}"
    );
    let front = run("GET a.shop.example.com /", None);
    assert!(
        front.contains("multi-cluster service storefront") && front.contains("storefront_80.eu-1"),
        "{front}"
    );
}

#[test]
fn a_route_serves_its_hostnames_as_narrowed_by_the_listeners_it_attaches_to() {
    let gateway = "kind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: wasmgate\n  listeners:\n    - {name: shop, port: 8080, protocol: HTTP, hostname: \"*.shop.example.com\"}\n    - {name: api, port: 8080, protocol: HTTP, hostname: api.example.com}\n    - {name: any, port: 9090, protocol: HTTP}\n";
    let route = |parents: &str, hostnames: &str| {
        format!("{gateway}---\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec:\n  parentRefs: {parents}\n  hostnames: {hostnames}\n  rules: [{{backendRefs: [{{name: foo-app, port: 80}}]}}]\n")
    };
    // (what, parentRefs, route hostnames, router hosts generated)
    let cases: [(&str, &str, &str, &[&str]); 6] = [
        (
            "a wildcard listener keeps the route hostnames it covers",
            "[{name: gw, sectionName: shop}]",
            "[eu.shop.example.com, other.org]",
            &["eu.shop.example.com"],
        ),
        (
            "a route wildcard narrows to the listener hostname",
            "[{name: gw, sectionName: api}]",
            "[\"*.example.com\"]",
            &["api.example.com"],
        ),
        (
            "no route hostnames take the listener's",
            "[{name: gw, sectionName: shop}]",
            "[]",
            &["*.shop.example.com"],
        ),
        (
            "a listener without hostname serves the route's",
            "[{name: gw, port: 9090}]",
            "[other.org]",
            &["other.org"],
        ),
        (
            "every listener of the Gateway without sectionName",
            "[{name: gw}]",
            "[]",
            &["*.shop.example.com", "api.example.com", "*"],
        ),
        (
            "several listeners union their intersections",
            "[{name: gw, sectionName: shop}, {name: gw, sectionName: api}]",
            "[a.shop.example.com, api.example.com]",
            &["a.shop.example.com", "api.example.com"],
        ),
    ];
    let mut failures = Vec::new();
    for (i, (what, parents, hostnames, want)) in cases.iter().enumerate() {
        let dir = Dir::new(
            &format!("attach{i}"),
            &[
                ("r.yaml", &route(parents, hostnames)),
                ("base.yaml", &format!("{SERVICE}---\n{INVENTORY}")),
            ],
        );
        let out = wasmgate::load(std::slice::from_ref(&dir.0))
            .and_then(|i| wasmgate::generate(&i, &wasmgate::Options::default()));
        match out {
            Ok(out) => {
                // Every listener's hosts that forward (not the 404 catch-all that ends a
                // listener hostname on a shared port).
                let mut hosts: Vec<String> = Vec::new();
                for l in &out.listeners {
                    for h in l.router.routes.iter().filter_map(|r| r.http.as_ref()) {
                        if h.rules.iter().any(|r| !r.backends.is_empty())
                            && !hosts.contains(&h.host)
                        {
                            hosts.push(h.host.clone());
                        }
                    }
                }
                if hosts != *want {
                    failures.push(format!("{what}: got {hosts:?}, want {want:?}"));
                }
            }
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn route_faults_are_status_and_what_does_not_route_is_a_note() {
    let gateway = "kind: Gateway\nmetadata: {name: gw}\nspec:\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n";
    let route = "kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs: [{name: gw, sectionName: http, port: 81}]\n  rules: [{backendRefs: [{name: foo-app, port: 80}]}]\n---\nkind: HTTPRoute\nmetadata: {name: ok}\nspec:\n  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: foo-app, port: 80}]}]\n";
    let dir = Dir::new(
        "status",
        &[
            ("r.yaml", &format!("{gateway}---\n{route}")),
            ("base.yaml", &format!("{SERVICE}---\n{INVENTORY}")),
            ("deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n"),
        ],
    );
    let inputs = wasmgate::load(std::slice::from_ref(&dir.0)).unwrap();
    let out = wasmgate::generate(&inputs, &wasmgate::Options::default()).unwrap();
    assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
    assert!(
        out.notes[0].contains("skipped Deployment web"),
        "{:?}",
        out.notes
    );
    let problems: Vec<String> = out.status.iter().flat_map(|r| r.problems()).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("HTTPRoute default/r")
            && problems[0].contains("Accepted False (NoMatchingParent)")
            && problems[0].contains("listener \"http\" is on port 80, not 81"),
        "{problems:?}"
    );
    let files = out.files().unwrap();
    let status = files
        .iter()
        .find(|(n, _)| n == "status.yaml")
        .map(|(_, t)| t.clone())
        .unwrap();
    assert!(status.contains("reason: NoMatchingParent"), "{status}");
    // The healthy route serves.
    assert!(out.router.routes.iter().any(|r| r
        .http
        .as_ref()
        .is_some_and(|h| h.rules.iter().any(|u| !u.backends.is_empty()))));
}

#[test]
fn a_route_fault_is_reported_and_generated_around_unless_strict() {
    let dir = Dir::new(
        "cli-status",
        &[
            ("r.yaml", &format!("{GATEWAY}---\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [a.example.com]\n  rules: [{{backendRefs: [{{name: nonexistent, port: 80}}]}}]\n")),
            ("base.yaml", &format!("{SERVICE}---\n{INVENTORY}")),
        ],
    );
    let out = dir.0.join("out");
    let run = |strict: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wasmgate"));
        c.args(["generate", "--out"]).arg(&out);
        if strict {
            c.arg("--strict");
        }
        c.arg(dir.0.join("r.yaml")).arg(dir.0.join("base.yaml"));
        c.output().unwrap()
    };
    let strict = run(true);
    assert_eq!(strict.status.code(), Some(1));
    assert!(!out.exists(), "--strict wrote outputs");
    let lenient = run(false);
    let stderr = String::from_utf8_lossy(&lenient.stderr);
    assert_eq!(lenient.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "status: HTTPRoute default/r on default/gw: ResolvedRefs False (BackendNotFound)"
        ),
        "{stderr}"
    );
    let status = std::fs::read_to_string(out.join("status.yaml")).unwrap();
    assert!(status.contains("reason: BackendNotFound"), "{status}");
    let router = std::fs::read_to_string(out.join("router.json")).unwrap();
    assert!(router.contains("\"code\": 500"), "{router}");
}
