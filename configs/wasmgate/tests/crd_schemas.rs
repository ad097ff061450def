//! Generated Istio manifests and the Gateway API / MCS API example inputs checked against the
//! upstream CRD schemas in tests/crds (openAPIV3Schema), without a cluster: types, required
//! fields, enums, and no field the schema does not know.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn crds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crds")
}

/// The schema of `kind` at `apiVersion` among the CRD files of `dir`.
fn schema(dir: &str, api_version: &str, kind: &str) -> Value {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    for entry in std::fs::read_dir(crds().join(dir)).expect("tests/crds") {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let crd: Value = serde::Deserialize::deserialize(doc).unwrap();
            if crd["spec"]["group"] != group || crd["spec"]["names"]["kind"] != kind {
                continue;
            }
            for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
                if v["name"] == version {
                    return v["schema"]["openAPIV3Schema"].clone();
                }
            }
        }
    }
    panic!("no CRD for {api_version} {kind} in tests/crds/{dir}");
}

/// Structural validation: every problem as `path: message`.
fn validate(value: &Value, schema: &Value, path: &str, problems: &mut Vec<String>) {
    let ty = schema["type"].as_str();
    let ok = match (ty, value) {
        (None, _) => true,
        (Some("object"), Value::Object(_)) | (Some("array"), Value::Array(_)) => true,
        (Some("string"), Value::String(_)) | (Some("boolean"), Value::Bool(_)) => true,
        (Some("integer"), Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Some("number"), Value::Number(_)) => true,
        _ => {
            schema["x-kubernetes-int-or-string"] == true && (value.is_string() || value.is_number())
        }
    };
    if !ok {
        problems.push(format!(
            "{path}: expected {}, got {value}",
            ty.unwrap_or("?")
        ));
        return;
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            problems.push(format!("{path}: {value} is not one of {options:?}"));
        }
    }
    match value {
        Value::Object(map) => {
            for req in schema["required"].as_array().into_iter().flatten() {
                if let Some(r) = req.as_str().filter(|r| !map.contains_key(*r)) {
                    problems.push(format!("{path}: missing required field {r}"));
                }
            }
            let props = schema["properties"].as_object();
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
            for (k, v) in map {
                match (
                    props.and_then(|p| p.get(k)),
                    &schema["additionalProperties"],
                ) {
                    (Some(s), _) => validate(v, s, &format!("{path}.{k}"), problems),
                    (None, add) if add.is_object() => {
                        validate(v, add, &format!("{path}.{k}"), problems)
                    }
                    (None, _) if preserve || props.is_none() => {}
                    // Every Kubernetes object has these; some CRDs leave them implicit.
                    (None, _)
                        if path.is_empty()
                            && ["apiVersion", "kind", "metadata"].contains(&k.as_str()) => {}
                    (None, _) => problems.push(format!("{path}.{k}: unknown field")),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                validate(v, &schema["items"], &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

fn check_doc(dir: &str, doc: &Value, problems: &mut Vec<String>, label: &str) {
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    let s = schema(dir, api, kind);
    let mut found = Vec::new();
    validate(doc, &s, "", &mut found);
    problems.extend(found.into_iter().map(|p| format!("{label} {kind}{p}")));
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

#[test]
fn generated_istio_manifests_fit_the_istio_crds() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for ex in ["seed-multicluster", "gateway-api", "seed", "buckets"] {
        let inputs = wasmgate::load(&[examples_dir().join(ex)]).unwrap();
        let out = wasmgate::generate(&inputs, &wasmgate::Options::default()).unwrap();
        for doc in &out.istio {
            // EnvoyFilter has no CRD in tests/crds; the others must fit theirs.
            if doc["kind"] == "EnvoyFilter" {
                continue;
            }
            check_doc("istio", doc, &mut problems, ex);
            checked += 1;
        }
    }
    assert!(checked >= 5, "checked {checked}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Several listeners (one port of its own, one declared by two Gateways): the per-listener
/// router plugins, with `match` and `targetRefs`, fit the WasmPlugin schema too.
#[test]
fn per_listener_istio_manifests_fit_the_istio_crds() {
    let dir = std::env::temp_dir().join(format!("wasmgate-crd-listeners-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let input = "kind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: wasmgate\n  listeners: [{name: a, port: 8080, protocol: HTTP}, {name: b, port: 8090, protocol: HTTP}]\n---\nkind: Gateway\nmetadata: {name: other}\nspec:\n  gatewayClassName: wasmgate\n  listeners: [{name: a, port: 8080, protocol: HTTP}]\n---\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs: [{name: gw}, {name: other}]\n  rules: [{backendRefs: [{name: web, port: 80}]}]\n---\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n---\nkind: ClusterInventory\nmetadata: {name: inv}\nspec:\n  clusters: [{name: c1, services: {web: {80: [\"127.0.0.1:1\"]}}}]\n";
    std::fs::write(dir.join("in.yaml"), input).unwrap();
    let inputs = wasmgate::load(std::slice::from_ref(&dir)).unwrap();
    let mut opts = wasmgate::Options::default();
    opts.gateway_port_map.insert(("other".into(), 8080), 18080);
    let out = wasmgate::generate(&inputs, &opts).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut problems = Vec::new();
    let mut plugins = 0;
    for doc in out.istio.iter().filter(|d| d["kind"] == "WasmPlugin") {
        check_doc("istio", doc, &mut problems, "listeners");
        // The schema's own rule (a CEL validation this checker does not run).
        let spec = &doc["spec"];
        assert!(
            !(spec.get("selector").is_some() && spec.get("targetRefs").is_some()),
            "only one of targetRefs or selector can be set: {doc}"
        );
        plugins += 1;
    }
    assert_eq!(plugins, 3, "one router plugin per listener");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_gateway_api_and_mcs_example_inputs_fit_the_upstream_crds() {
    let mut problems = Vec::new();
    let dir = examples_dir().join("gateway-api");
    let mut checked = 0;
    for file in ["gateway.yaml", "httproutes.yaml", "services.yaml"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap();
            let crds = match v["apiVersion"].as_str().unwrap_or_default() {
                a if a.starts_with("gateway.networking.k8s.io/") => "gateway-api",
                a if a.starts_with("multicluster.x-k8s.io/") => "mcs-api",
                _ => continue,
            };
            check_doc(crds, &v, &mut problems, file);
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "Gateway, two HTTPRoutes, ServiceImport");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_example_destination_rule_fits_istios_crd() {
    let text =
        std::fs::read_to_string(examples_dir().join("ha-failover/destinationrule.yaml")).unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc).unwrap();
        check_doc("istio", &v, &mut problems, "destinationrule.yaml");
        checked += 1;
    }
    assert_eq!(checked, 1);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_validator_catches_what_it_should() {
    let inputs = wasmgate::load(&[examples_dir().join("gateway-api")]).unwrap();
    let out = wasmgate::generate(&inputs, &wasmgate::Options::default()).unwrap();
    let mut plugin = out
        .istio
        .iter()
        .find(|d| d["kind"] == "WasmPlugin")
        .unwrap()
        .clone();
    plugin["spec"]["phase"] = "SOMETIME".into();
    plugin["spec"]["colour"] = "blue".into();
    let mut problems = Vec::new();
    check_doc("istio", &plugin, &mut problems, "mutated");
    assert!(
        problems.iter().any(|p| p.contains(".spec.phase")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains(".spec.colour: unknown field")),
        "{problems:?}"
    );
}
