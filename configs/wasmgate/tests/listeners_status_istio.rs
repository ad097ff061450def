//! Gateway and listener status (PortUnavailable, strict mode, the status.yaml document), the
//! Istio manifests of several listeners (one router WasmPlugin per listener), and Services of
//! one name in two namespaces, through the generator's library API.

use std::path::PathBuf;

use serde_json::Value;

const SERVICE: &str = "kind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n";
const INVENTORY: &str = "kind: ClusterInventory\nmetadata: {name: inv}\nspec:\n  clusters:\n    - name: c1\n      services:\n        web: {80: [\"127.0.0.1:1\"]}\n        team-a/api: {80: [\"127.0.0.1:2\"]}\n        team-b/api: {80: [\"127.0.0.1:3\"]}\n";

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str, files: &[(&str, &str)]) -> Dir {
        let dir = std::env::temp_dir().join(format!("wasmgate-lsi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (n, text) in files {
            std::fs::write(dir.join(n), text).unwrap();
        }
        Dir(dir)
    }

    fn generate(&self, opts: &wasmgate::Options) -> Result<wasmgate::Output, String> {
        let inputs = wasmgate::load(std::slice::from_ref(&self.0)).map_err(|e| e.to_string())?;
        wasmgate::generate(&inputs, opts).map_err(|e| e.to_string())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gateway(name: &str, listeners: &str) -> String {
    format!("kind: Gateway\nmetadata: {{name: {name}}}\nspec:\n  gatewayClassName: wasmgate\n  listeners: {listeners}\n---\nkind: HTTPRoute\nmetadata: {{name: {name}-route}}\nspec:\n  parentRefs: [{{name: {name}}}]\n  rules: [{{backendRefs: [{{name: web, port: 80}}]}}]\n")
}

fn condition(l: &wasmgate::status::ListenerStatus, kind: &str) -> String {
    l.conditions
        .iter()
        .find(|c| c.kind == kind)
        .map(|c| format!("{}/{}", c.status, c.reason))
        .unwrap_or_default()
}

#[test]
fn a_second_gateway_on_a_taken_port_is_not_accepted_there_unless_strict_refuses_it() {
    let dir = Dir::new(
        "port",
        &[
            ("one.yaml", &gateway("one", "[{name: http, port: 80, protocol: HTTP}]")),
            ("two.yaml", &gateway("two", "[{name: http, port: 80, protocol: HTTP}, {name: alt, port: 81, protocol: HTTP}]")),
            ("base.yaml", &format!("{SERVICE}---\n{INVENTORY}")),
        ],
    );
    let out = dir.generate(&wasmgate::Options::default()).unwrap();
    let names: Vec<&str> = out.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["http_80", "http_81"],
        "the first Gateway keeps port 80"
    );
    assert_eq!(out.listeners[0].gateway, "default/one");
    let two = out.gateways.iter().find(|g| g.name == "two").unwrap();
    let http = &two.listeners[0];
    assert_eq!(condition(http, "Accepted"), "false/PortUnavailable");
    assert_eq!(condition(http, "Programmed"), "false/Invalid");
    assert_eq!(
        http.attached_routes, 0,
        "a listener that is not accepted takes no route"
    );
    assert_eq!(condition(&two.listeners[1], "Accepted"), "true/Accepted");
    assert_eq!(two.listeners[1].attached_routes, 1);
    let accepted = two
        .conditions
        .iter()
        .find(|c| c.kind == "Accepted")
        .unwrap();
    assert!(accepted.status && accepted.reason == "ListenersNotValid");
    assert!(
        accepted.message.contains("not accepted: http"),
        "{}",
        accepted.message
    );
    let problems: Vec<String> = out.gateways.iter().flat_map(|g| g.problems()).collect();
    assert!(
        problems.iter().any(|p| p
            .contains("Gateway default/two listener http: Accepted False (PortUnavailable)")
            && p.contains("--port-map two:80=PORT")),
        "{problems:?}"
    );
    // The Gateway's status document has the shape of Gateway API's `.status`.
    let files = out.files().unwrap();
    let status = &files.iter().find(|(n, _)| n == "status.yaml").unwrap().1;
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(status)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let doc = docs
        .iter()
        .find(|d| d["kind"] == "Gateway" && d["metadata"]["name"] == "two")
        .unwrap();
    let l = &doc["status"]["listeners"][1];
    assert_eq!(l["name"], "alt");
    assert_eq!(l["attachedRoutes"], 1);
    assert_eq!(l["supportedKinds"][0]["kind"], "HTTPRoute");
    assert_eq!(
        doc["status"]["conditions"][0]["reason"],
        "ListenersNotValid"
    );

    let strict = wasmgate::Options {
        strict: true,
        ..wasmgate::Options::default()
    };
    let err = dir.generate(&strict).unwrap_err();
    assert!(err.contains("give this one its own port"), "{err}");
}

#[test]
fn conflicted_listeners_are_errors_under_strict() {
    let dir = Dir::new(
        "conflict",
        &[
            ("gw.yaml", &gateway("gw", "[{name: a, port: 80, protocol: HTTP, hostname: x.example.com}, {name: b, port: 80, protocol: HTTP, hostname: X.example.com}, {name: c, port: 81, protocol: HTTP}]")),
            ("base.yaml", &format!("{SERVICE}---\n{INVENTORY}")),
        ],
    );
    let out = dir.generate(&wasmgate::Options::default()).unwrap();
    let gw = &out.gateways[0];
    for l in &gw.listeners[..2] {
        assert_eq!(
            condition(l, "Conflicted"),
            "true/HostnameConflict",
            "{}",
            l.name
        );
        assert_eq!(
            condition(l, "Accepted"),
            "false/HostnameConflict",
            "{}",
            l.name
        );
    }
    assert_eq!(
        condition(&gw.listeners[2], "Conflicted"),
        "false/NoConflicts"
    );
    // No conflicted listener wins: only port 81 is served.
    let ports: Vec<u16> = out.listeners.iter().map(|l| l.declared_port).collect();
    assert_eq!(ports, [81]);
    let strict = wasmgate::Options {
        strict: true,
        ..wasmgate::Options::default()
    };
    let err = dir.generate(&strict).unwrap_err();
    assert!(err.contains("spec.listeners[0].port"), "{err}");
    assert!(err.contains("spec.listeners[1].port"), "{err}");
}

#[test]
fn istio_gets_one_router_plugin_per_listener_with_that_listeners_routes() {
    let two_ports = "kind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: wasmgate\n  listeners: [{name: a, port: 8080, protocol: HTTP}, {name: b, port: 8090, protocol: HTTP}]\n---\nkind: HTTPRoute\nmetadata: {name: ra}\nspec:\n  parentRefs: [{name: gw, sectionName: a}]\n  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: web, port: 80}]}]\n---\nkind: HTTPRoute\nmetadata: {name: rb}\nspec:\n  parentRefs: [{name: gw, sectionName: b}]\n  hostnames: [b.example.com]\n  rules: [{backendRefs: [{name: web, port: 80}]}]\n";
    let dir = Dir::new(
        "istio",
        &[
            ("gw.yaml", two_ports),
            (
                "other.yaml",
                &gateway("other", "[{name: http, port: 8080, protocol: HTTP}]"),
            ),
            ("base.yaml", &format!("{SERVICE}---\n{INVENTORY}")),
        ],
    );
    let mut opts = wasmgate::Options::default();
    opts.gateway_port_map.insert(("other".into(), 8080), 18080);
    let out = dir.generate(&opts).unwrap();
    let plugins: Vec<&Value> = out
        .istio
        .iter()
        .filter(|d| d["kind"] == "WasmPlugin" && d["spec"]["pluginName"] == "wasmgate.router")
        .collect();
    assert_eq!(plugins.len(), 3, "{plugins:#?}");
    let hosts = |p: &Value| -> Vec<String> {
        p["spec"]["pluginConfig"]["routes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["http"]["host"].as_str().map(str::to_string))
            .collect()
    };
    let by_name = |n: &str| *plugins.iter().find(|p| p["metadata"]["name"] == n).unwrap();
    // gw's 8090 listener has a port of its own: the workload selector and that port.
    let b = by_name("wasmgate-router-http-8090");
    assert_eq!(hosts(b), ["b.example.com"]);
    assert_eq!(b["spec"]["match"][0]["mode"], "CLIENT");
    assert_eq!(b["spec"]["match"][0]["ports"][0]["number"], 8090);
    assert!(b["spec"]["selector"].is_object() && b["spec"].get("targetRefs").is_none());
    // Port 8080 is declared by two Gateways: each plugin names its Gateway.
    let a = plugins
        .iter()
        .find(|p| p["spec"]["targetRefs"][0]["name"] == "gw")
        .unwrap();
    assert_eq!(hosts(a), ["a.example.com"]);
    assert_eq!(a["spec"]["match"][0]["ports"][0]["number"], 8080);
    assert!(
        a["spec"].get("selector").is_none(),
        "selector and targetRefs exclude each other"
    );
    assert_eq!(
        a["metadata"]["namespace"], "default",
        "targetRefs name a Gateway of the plugin's namespace"
    );
    let other = plugins
        .iter()
        .find(|p| p["spec"]["targetRefs"][0]["name"] == "other")
        .unwrap();
    assert_eq!(hosts(other), ["*"]);
    assert_eq!(out.listeners.len(), 3);
}

#[test]
fn services_of_one_name_in_two_namespaces_get_their_own_clusters_everywhere() {
    let routes = "kind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: wasmgate\n  listeners: [{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]\n---\nkind: HTTPRoute\nmetadata: {name: a, namespace: team-a}\nspec:\n  parentRefs: [{name: gw, namespace: default}]\n  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: api, port: 80}]}]\n---\nkind: HTTPRoute\nmetadata: {name: b, namespace: team-b}\nspec:\n  parentRefs: [{name: gw, namespace: default}]\n  hostnames: [b.example.com]\n  rules: [{backendRefs: [{name: api, port: 80}]}]\n---\nkind: HTTPRoute\nmetadata: {name: w}\nspec:\n  parentRefs: [{name: gw}]\n  hostnames: [w.example.com]\n  rules: [{backendRefs: [{name: web, port: 80}]}]\n";
    let services = "kind: Service\nmetadata: {name: api, namespace: team-a}\nspec: {ports: [{port: 80}]}\n---\nkind: Service\nmetadata: {name: api, namespace: team-b}\nspec: {ports: [{port: 80}]}\n";
    let dir = Dir::new(
        "ns",
        &[
            ("r.yaml", routes),
            ("s.yaml", services),
            ("base.yaml", &format!("{SERVICE}---\n{INVENTORY}")),
        ],
    );
    let out = dir.generate(&wasmgate::Options::default()).unwrap();
    let clusters = |boot: &Value| -> Vec<(String, String)> {
        boot["static_resources"]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let ep = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
                    ["address"]["socket_address"];
                (
                    c["name"].as_str().unwrap().to_string(),
                    ep["port_value"].to_string(),
                )
            })
            .collect()
    };
    let want = [
        ("api.team-a_80".to_string(), "2".to_string()),
        ("api.team-b_80".to_string(), "3".to_string()),
        ("web_80".to_string(), "1".to_string()),
    ];
    for boot in [&out.envoy, &out.envoy_native] {
        let got = clusters(boot);
        for w in &want {
            assert!(got.contains(w), "{w:?} not in {got:?}");
        }
    }
    let istio = serde_json::to_string(&out.istio).unwrap();
    for host in [
        "outbound|80||api.team-a.svc.cluster.local",
        "outbound|80||api.team-b.svc.cluster.local",
        "outbound|80||web.default.svc.cluster.local",
    ] {
        assert!(istio.contains(host), "{host} not in istio.yaml");
    }
}
